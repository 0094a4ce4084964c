// Failed-login throttling shared by every node: fixed-window counters in Redis per client IP and per username,
// read before any password hashing so a flood of guesses costs us one Redis read each, not a scrypt.
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

export async function checkLockout(redis: Redis, ip: string, user: string, limits: AuthLimits): Promise<Lockout> {
  const [[, ipFails], [, ipTtl], [, userFails], [, userTtl]] = (await redis
    .pipeline()
    .get(keys.authFailIp(ip))
    .ttl(keys.authFailIp(ip))
    .get(userKey(user))
    .ttl(userKey(user))
    .exec()) as [unknown, string | number | null][]
  if (Number(ipFails ?? 0) >= limits.ipMax) return { locked: true, by: 'ip', retryAfter: Math.max(1, Number(ipTtl)) }
  if (Number(userFails ?? 0) >= limits.userMax) return { locked: true, by: 'user', retryAfter: Math.max(1, Number(userTtl)) }
  return { locked: false }
}

/** Counts one failed login against the IP and the username; returns both counts. */
export async function recordFailure(redis: Redis, ip: string, user: string, limits: AuthLimits): Promise<{ ip: number; user: number }> {
  const [ipCount, userCount] = await Promise.all([
    runScript<number>(redis, 'incr_window', 1, [keys.authFailIp(ip)], [limits.ipWindow]),
    runScript<number>(redis, 'incr_window', 1, [userKey(user)], [limits.userWindow]),
  ])
  return { ip: ipCount, user: userCount }
}

/**
 * After a good login the username's counter starts over. The IP's counter is left to expire: a customer's
 * own valid login must not reset the budget of guesses an attacker behind the same address has against others.
 */
export async function recordSuccess(redis: Redis, user: string): Promise<void> {
  await redis.del(userKey(user))
}
