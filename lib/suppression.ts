// Per-tenant suppression of addresses that hard-bounced: a later RCPT to one is refused instead of hurting the
// shared IPs again. Entries expire (a ZSET scored by expiry time: bounded, cheap to read).
import type Redis from 'ioredis'
import { normaliseAddress } from './addresses'
import { NotFoundError } from './errors'
import { keys } from './keys'

export interface Suppressed {
  address: string
  expires_at: string
}

export async function suppress(redis: Redis, tenant: string, address: string, days: number, now = Date.now()): Promise<void> {
  const a = normaliseAddress(address).address
  const k = keys.suppression(tenant)
  await redis
    .multi()
    .zadd(k, now + days * 86400000, a)
    .zremrangebyscore(k, '-inf', now)
    .pexpire(k, days * 86400000)
    .exec()
}

/** When the suppression of an address ends, or null when it is not suppressed. */
export async function suppressedUntil(redis: Redis, tenant: string, address: string, now = Date.now()): Promise<Date | null> {
  let a
  try {
    a = normaliseAddress(address).address
  } catch {
    return null
  }
  const score = await redis.zscore(keys.suppression(tenant), a)
  return score !== null && Number(score) > now ? new Date(Number(score)) : null
}

export async function listSuppressed(redis: Redis, tenant: string, now = Date.now()): Promise<Suppressed[]> {
  const v = await redis.zrangebyscore(keys.suppression(tenant), now, '+inf', 'WITHSCORES')
  const out: Suppressed[] = []
  for (let i = 0; i < v.length; i += 2) out.push({ address: v[i], expires_at: new Date(Number(v[i + 1])).toISOString() })
  return out
}

export async function unsuppress(redis: Redis, tenant: string, address: string): Promise<void> {
  const a = normaliseAddress(address).address
  if (!(await redis.zrem(keys.suppression(tenant), a))) throw new NotFoundError(`${a} is not suppressed for ${tenant}`)
}

/** How many addresses a tenant has suppressed now, for investigations. */
export async function suppressedCount(redis: Redis, tenant: string, now = Date.now()): Promise<number> {
  return redis.zcount(keys.suppression(tenant), now, '+inf')
}

/** A permanent failure that says the mailbox does not exist (not a policy or content refusal). */
export function isHardBounce(code: string | number | undefined, extc: string | undefined, text: string | undefined): boolean {
  if (!/^5/.test(String(code ?? ''))) return false
  if (extc && /^5\.1\.[0-36]$/.test(extc)) return true
  return /no such (user|mailbox)|user unknown|unknown user|does not exist|mailbox unavailable|invalid (recipient|mailbox)|recipient rejected|address rejected/i.test(text ?? '')
}
