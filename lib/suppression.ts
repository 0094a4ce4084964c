// Per-tenant suppression of addresses that hard-bounced: a later RCPT to one is refused instead of hurting the
// shared IPs again. Entries expire: a ZSET scored by expiry time per tenant, trimmed of expired entries on every
// write and capped in size (bounded, and one ZMSCORE to check a recipient). Addresses are compared in the one
// normalisation of lib/addresses.ts: `dead@ｂounce.test` is `dead@bounce.test`, and `dead+x@bounce.test` is refused
// when its base mailbox `dead@bounce.test` is suppressed (a tag-aware server delivers it there).
import type { RedisClient as Redis } from './redis'
import { normaliseAddress, type Normalised } from './addresses'
import { NotFoundError } from './errors'
import { keys } from './keys'

export interface Suppressed {
  address: string
  expires_at: string
}

export interface SuppressionOptions {
  /** How long an address stays suppressed. */
  days: number
  /** At most this many entries per tenant; past it, those closest to expiry go first. */
  maxEntries: number
}

export const DEFAULT_SUPPRESSION: SuppressionOptions = { days: 30, maxEntries: 100000 }

/** Suppresses an address for a tenant (again: the lifetime starts over). One round trip. */
export async function suppress(redis: Redis, tenant: string, address: string, opts: SuppressionOptions = DEFAULT_SUPPRESSION, now = Date.now()): Promise<Suppressed> {
  const a = normaliseAddress(address).address
  const k = keys.suppression(tenant)
  const ttl = Math.round(opts.days * 86400000)
  const res = await redis
    .multi()
    .zadd(k, now + ttl, a)
    .zremrangebyscore(k, '-inf', now)
    .zremrangebyrank(k, 0, -opts.maxEntries - 1)
    .pexpire(k, ttl) // the newest entry expires last: the key goes with it
    .exec()
  const err = res?.find(([e]) => e)
  if (err) throw err[0]
  return { address: a, expires_at: new Date(now + ttl).toISOString() }
}

/**
 * When the suppression of an address ends, or null when it is not suppressed: the address itself, or its base
 * mailbox for a +tag (the later of the two). An address that does not normalise throws its InputError: the caller
 * refuses it rather than let it pass unchecked.
 */
export async function suppressedUntil(redis: Redis, tenant: string, address: string | Normalised, now = Date.now()): Promise<Date | null> {
  const n = typeof address === 'string' ? normaliseAddress(address) : address
  const members = n.base === n.address ? [n.address] : [n.address, n.base]
  const scores = (await redis.zmscore(keys.suppression(tenant), ...members)).map((v) => (v === null ? 0 : Number(v)))
  const until = Math.max(...scores)
  return until > now ? new Date(until) : null
}

/** A tenant's suppressed addresses, soonest to expire first. */
export async function listSuppressed(redis: Redis, tenant: string, now = Date.now()): Promise<Suppressed[]> {
  const v = await redis.zrangebyscore(keys.suppression(tenant), now, '+inf', 'WITHSCORES')
  const out: Suppressed[] = []
  for (let i = 0; i < v.length; i += 2) out.push({ address: v[i], expires_at: new Date(Number(v[i + 1])).toISOString() })
  return out
}

export async function unsuppress(redis: Redis, tenant: string, address: string): Promise<string> {
  const a = normaliseAddress(address).address
  if (!(await redis.zrem(keys.suppression(tenant), a))) throw new NotFoundError(`${a} is not suppressed for ${tenant}: see "posta suppression list ${tenant}"`)
  return a
}

/** How many addresses a tenant has suppressed now, for investigations. */
export async function suppressedCount(redis: Redis, tenant: string, now = Date.now()): Promise<number> {
  return redis.zcount(keys.suppression(tenant), now, '+inf')
}

/** Replies that say the mailbox does not exist, for servers that give no telling enhanced status code. */
const NO_SUCH_MAILBOX =
  /\b(no such (user|mailbox|recipient|address)|user unknown|unknown (user|recipient|mailbox)|recipient unknown|mailbox (does not exist|not found|unknown)|(user|recipient|address|account) does ?n[o']t exist|invalid (recipient|mailbox)|no mailbox here)\b/i

/**
 * A permanent failure that says the mailbox does not exist: 550, 551 or 553 with enhanced status 5.1.1-5.1.6 or
 * 5.1.10 (bad mailbox, bad domain, bad syntax, moved, null MX), or, with no status or only 5.0.0/5.1.0, a reply such
 * as "no such user". Policy and content refusals (5.7.x), full mailboxes (5.2.x) and temporary failures never
 * suppress an address.
 */
export function isHardBounce(code: string | number | undefined, extc: string | undefined, text: string | undefined): boolean {
  if (!/^55[013]$/.test(String(code ?? ''))) return false
  const status = String(extc ?? '').trim()
  if (/^5\.1\.([1-6]|10)$/.test(status)) return true
  // 5.1.0 ("other address status") also refuses senders ("550 5.1.0 Sender denied"): only its text can tell.
  if (status && !/^5\.[01]\.0$/.test(status)) return false
  return NO_SUCH_MAILBOX.test(text ?? '')
}
