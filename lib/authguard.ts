// Failed-login throttling shared by every node: fixed-window counters in Redis per client IP and per username,
// read before any password hashing so a flood of guesses costs us one Redis read each, not a scrypt.
import * as net from 'node:net'
import type Redis from 'ioredis'
import { keys } from './keys'
import { runScript } from './lua'

export interface AuthLimits {
  /** Failures allowed per client IP in ip_window seconds. */
  ipMax: number
  ipWindow: number
  /** Failures allowed per username in user_window seconds. */
  userMax: number
  userWindow: number
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = { ipMax: 10, ipWindow: 900, userMax: 20, userWindow: 3600 }

export type Lockout = { locked: false } | { locked: true; by: 'ip' | 'user'; retryAfter: number }

/** Usernames are counted case-insensitively and bounded in length, so a key cannot be made huge. */
function userKey(user: string): string {
  return keys.authFailUser(user.toLowerCase().slice(0, 320))
}

/**
 * The client "address" whose attempts are counted: an IPv4 address, or the /64 of an IPv6 address (one customer
 * line holds a whole /64, so counting single IPv6 addresses would give unlimited guesses).
 */
export function clientKey(ip: string): string {
  const raw = ip.replace(/^::ffff:(?=\d+\.)/, '')
  if (!net.isIPv6(raw)) return raw
  const [head, tail = ''] = raw.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const full = raw.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  return `${full.slice(0, 4).map((x) => x.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`
}

function ipKey(ip: string): string {
  return keys.authFailIp(clientKey(ip))
}

/**
 * Counts a login attempt against the client and the username *before* the password is hashed, so parallel
 * attempts cannot overrun the budget; refuses without counting when either budget is spent.
 */
export async function beginAttempt(redis: Redis, ip: string, user: string, limits: AuthLimits): Promise<Lockout> {
  const [n, ttl] = await runScript<number[]>(redis, 'attempt_begin', 1, [ipKey(ip)], [limits.ipMax, limits.ipWindow])
  if (n < 0) return { locked: true, by: 'ip', retryAfter: Math.max(1, ttl) }
  const [m, uttl] = await runScript<number[]>(redis, 'attempt_begin', 1, [userKey(user)], [limits.userMax, limits.userWindow])
  if (m < 0) {
    await runScript<number>(redis, 'attempt_uncount', 1, [ipKey(ip)], [])
    return { locked: true, by: 'user', retryAfter: Math.max(1, uttl) }
  }
  return { locked: false }
}

/** A counted attempt succeeded: it does not count against the client, and the username starts over. */
export async function attemptSucceeded(redis: Redis, ip: string, user: string): Promise<void> {
  await Promise.all([runScript<number>(redis, 'attempt_uncount', 1, [ipKey(ip)], []), redis.del(userKey(user))])
}

/** Whether a client or username is locked out now: a read, no counting (the cheap first gate before anything else). */
export async function lockoutState(redis: Redis, ip: string, user: string, limits: AuthLimits): Promise<Lockout> {
  const [[, ipFails], [, ipTtl], [, userFails], [, userTtl]] = (await redis
    .pipeline()
    .get(ipKey(ip))
    .ttl(ipKey(ip))
    .get(userKey(user))
    .ttl(userKey(user))
    .exec()) as [unknown, string | number | null][]
  if (Number(ipFails ?? 0) >= limits.ipMax) return { locked: true, by: 'ip', retryAfter: Math.max(1, Number(ipTtl)) }
  if (Number(userFails ?? 0) >= limits.userMax) return { locked: true, by: 'user', retryAfter: Math.max(1, Number(userTtl)) }
  return { locked: false }
}

/** Current failure counts (for log lines). */
export async function failureCounts(redis: Redis, ip: string, user: string): Promise<{ ip: number; user: number }> {
  const [a, b] = await redis.mget(ipKey(ip), userKey(user))
  return { ip: Number(a ?? 0), user: Number(b ?? 0) }
}
