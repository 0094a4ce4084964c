// Failed-login throttling shared by every node, in Redis, judged before any password hashing so a flood of guesses
// costs us Redis round trips, not scrypt. Three fixed-window rules:
// - per client (an IPv4 address or an IPv6 /64): ipMax attempts in ipWindow, over every login;
// - per (login, client) pair: pairMax attempts in pairWindow; a success clears the pair;
// - per login: past userMax failures in userWindow the login is under attack, and from then on only clients that
//   have not failed for it may try (one attempt at a time each). A stranger's guesses can therefore never refuse
//   the right password from an address that did not fail itself, and a success never clears other clients' counts.
import * as net from 'node:net'
import type { RedisClient as Redis } from './redis'
import { keys } from './keys'
import { runScript } from './lua'

export interface AuthLimits {
  /** Attempts allowed per client in ipWindow seconds, over every login. */
  ipMax: number
  ipWindow: number
  /** Attempts allowed per (login, client) pair in pairWindow seconds. */
  pairMax: number
  pairWindow: number
  /** Failures per login (from every client) in userWindow seconds past which only clients without failures may try. */
  userMax: number
  userWindow: number
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = { ipMax: 10, ipWindow: 900, pairMax: 10, pairWindow: 3600, userMax: 20, userWindow: 3600 }

/**
 * How long an attempt counts as "in flight" for its pair at most (ms): a node that dies mid-verify frees its
 * clients after this. Longer than any verify, shorter than Haraka's 30 s plugin timeout.
 */
export const IN_FLIGHT_MS = 20000

export type LockedBy = 'ip' | 'pair' | 'user'

/**
 * The gate's answer. `go`: the attempt may be verified (and was counted, for beginAttempt). `locked`: refused,
 * nothing counted. `wait`: the login is under attack and this client's previous attempt is still being verified;
 * ask again after a moment (pooled connections logging in at once), nothing counted.
 */
export type Gate = { kind: 'go' } | { kind: 'locked'; by: LockedBy; retryAfter: number } | { kind: 'wait'; ms: number }

/** Logins are counted case-insensitively and bounded in length, so a key cannot be made huge; braces would break the hash tag. */
function loginPart(user: string): string {
  return user.toLowerCase().replace(/[{}]/g, '').slice(0, 320)
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

/** The Redis keys of one attempt. */
export function attemptKeys(ip: string, user: string): { ip: string; pair: string; user: string; busy: string } {
  const login = loginPart(user)
  const client = clientKey(ip)
  return { ip: keys.authFailIp(client), pair: keys.authFailPair(login, client), user: keys.authFailUser(login), busy: keys.authBusy(login, client) }
}

async function gate(redis: Redis, ip: string, user: string, limits: AuthLimits, count: boolean): Promise<Gate> {
  const k = attemptKeys(ip, user)
  const flag = count ? 1 : 0
  // The client's budget first: a locked client is refused before anything about the login is looked at.
  const [n, ttl] = await runScript<number[]>(redis, 'attempt_begin', 1, [k.ip], [limits.ipMax, limits.ipWindow, flag])
  if (n < 0) return { kind: 'locked', by: 'ip', retryAfter: Math.max(1, ttl) }
  const [code, t] = await runScript<number[]>(redis, 'attempt_login', 3, [k.pair, k.user, k.busy], [
    limits.pairMax, limits.pairWindow, limits.userMax, limits.userWindow, IN_FLIGHT_MS, flag,
  ])
  if (code === 0) return { kind: 'go' }
  // Refused by a login rule: the client's counted attempt is taken back.
  if (count) await runScript<number>(redis, 'attempt_uncount', 1, [k.ip], [])
  if (code === 4) return { kind: 'wait', ms: t }
  return { kind: 'locked', by: code === 2 ? 'pair' : 'user', retryAfter: Math.max(1, t) }
}

/**
 * Counts a login attempt against the client, the pair and the login *before* the password is hashed, so parallel
 * attempts cannot overrun any budget; refuses (or asks to wait) without counting. A `go` must be followed by
 * exactly one endAttempt.
 */
export function beginAttempt(redis: Redis, ip: string, user: string, limits: AuthLimits): Promise<Gate> {
  return gate(redis, ip, user, limits, true)
}

/**
 * The outcome of a counted attempt. A failure stays counted. A success is taken back from the client and the
 * login counters and clears this client's pair; other clients' counts stay as they are.
 */
export async function endAttempt(redis: Redis, ip: string, user: string, ok: boolean): Promise<void> {
  const k = attemptKeys(ip, user)
  await Promise.all([
    runScript<number>(redis, 'attempt_end', 3, [k.pair, k.user, k.busy], [ok ? 'ok' : 'fail']),
    ok ? runScript<number>(redis, 'attempt_uncount', 1, [k.ip], []) : null,
  ])
}

/** What beginAttempt would answer now, counting nothing (the cheap first gate before anything else). */
export function lockoutState(redis: Redis, ip: string, user: string, limits: AuthLimits): Promise<Gate> {
  return gate(redis, ip, user, limits, false)
}

/** Current counts (for log lines). */
export async function failureCounts(redis: Redis, ip: string, user: string): Promise<{ ip: number; pair: number; user: number }> {
  const k = attemptKeys(ip, user)
  const [a, b, c] = await Promise.all([redis.get(k.ip), redis.get(k.pair), redis.get(k.user)])
  return { ip: Number(a ?? 0), pair: Number(b ?? 0), user: Number(c ?? 0) }
}
