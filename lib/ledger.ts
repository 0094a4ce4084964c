// The delivery ledger: every delivery attempt, with tenant and source IP, kept in forms that answer questions
// without scanning: per IP and hour (who sent how much, with what results: one count per attempt), per tenant and
// day (delivered, deferred, bounced: one count per recipient) and a tenant's recent attempts (bounded, for the panel).
// Mail Posta itself sends about a tenant (its bounces, its quota notices) is ledgered under that tenant, apart from
// the tenant's own messages: `dsn_*` / `notice_*` fields, kind `dsn` / `notice`.
import type { RedisClient as Redis } from './redis'
import { keys } from './keys'
import { runScript } from './lua'
import { dayOf } from './period'
import { DEFAULT_QUOTA } from './quota'

export type DeliveryResult = 'delivered' | 'deferred' | 'bounced'
/** Whose mail: the tenant's own message, a bounce (DSN) Posta sent to its sender, or a notice Posta sent to it. */
export type MailKind = 'message' | 'dsn' | 'notice'

export interface Attempt {
  at: number
  tenant: string
  /** The id the client saw in its 250 (the transaction); for Posta's own mail, that mail's transaction. */
  tx: string
  /** Haraka's id of this delivery (tx plus a per-domain suffix). */
  delivery?: string
  /** Source IP the attempt left from; 'default' when the pool is empty (the machine's own address). */
  ip: string
  domain: string
  mx: string
  result: DeliveryResult
  code: string
  response: string
  size: number
  rcpts: number
  /** The recipients whose result this is (delivered, deferred or bounced ones); default: `rcpts` of them. */
  recipients?: string[]
  /** Default: message. */
  kind?: MailKind
}

export interface LedgerOptions {
  timeZone: string
  hourlyDays: number
  rawDays: number
  recentMax: number
}

export const DEFAULT_LEDGER: LedgerOptions = { timeZone: 'Europe/Rome', hourlyDays: 30, rawDays: 7, recentMax: 200 }

/** How long a message remembers which of its recipients were counted deferred: longer than any retry schedule. */
export const DEFERRED_MEMORY_DAYS = 30

/** `YYYY-MM-DDTHH` in UTC: the ledger's hours are UTC so that no hour is ambiguous. */
export function hourOf(at: number): string {
  return new Date(at).toISOString().slice(0, 13)
}

/** The day-hash field of a result: `delivered` for the tenant's messages, `dsn_delivered` for its bounces, ... */
export function resultField(kind: MailKind, result: DeliveryResult): string {
  return kind === 'message' ? result : `${kind}_${result}`
}

/** When each source IP was last written as used, per client: `posta ip list`'s "last used", to the second. */
const lastUseWritten = new WeakMap<object, Map<string, number>>()

/** The pool's last use of an IP: written at most once a second per IP and client (every delivery asks). */
function noteLastUse(redis: Redis, ip: string, at: number): Promise<unknown> | null {
  let written = lastUseWritten.get(redis)
  if (!written) lastUseWritten.set(redis, (written = new Map()))
  const prev = written.get(ip)
  if (prev !== undefined && at >= prev && at - prev < 1000) return null
  written.set(ip, at)
  return redis.hset(keys.poolLastUse(), ip, String(at))
}

/**
 * Records one attempt. The hour hash of the IP counts attempts; the tenant's day counts recipients: delivered and
 * bounced ones each time (each recipient ends once), deferred ones only the first time that recipient of that
 * message waits (a recipient deferred five times, then delivered, counts one deferred and one delivered).
 * Mail with no tenant (Haraka's own) counts under "-", in the hour hash only.
 */
export async function recordAttempt(redis: Redis, a: Attempt, o: LedgerOptions): Promise<void> {
  const t = a.tenant || '-'
  const kind: MailKind = a.kind ?? 'message'
  const hourKey = keys.ledgerIpHour(a.ip, hourOf(a.at))
  // One script per hash tag (the IP's hour, the tenant), so that each works on a Redis Cluster too; one command
  // each instead of a pipeline of 13 (the client's cost per command is most of a delivery's ledger cost).
  const ipArgs: (string | number)[] = kind === 'message'
    ? [`${t}|attempts`, 1, `${t}|${a.result}`, 1, `${t}|bytes`, a.size * a.rcpts, `${t}|rcpts`, a.rcpts]
    : [`${t}|${kind}_attempts`, 1, `${t}|${kind}_${a.result}`, 1]
  const dayKey = keys.usageDay(t, dayOf(new Date(a.at), o.timeZone))
  // the day hash is shared with the quota's counters, which set the longer lifetime when they write first
  const dayTtl = (DEFAULT_QUOTA.retentionDays + 31) * 86400
  const recipients = a.recipients ?? Array.from({ length: a.rcpts }, (_, i) => `#${i}`)
  const newDomain = t !== '-' && kind === 'message'
  const tenantWrite = t === '-' ? null : runScript<number>(redis, 'ledger_tenant', 3, [dayKey, keys.ledgerRecent(t), keys.ledgerDomains(t)], [
    a.result !== 'deferred' && recipients.length ? resultField(kind, a.result) : '', recipients.length, dayTtl,
    a.at, JSON.stringify(a), a.at - o.rawDays * 86400000, o.recentMax, o.rawDays * 86400, newDomain ? a.domain : '',
  ])
  const [, first] = await Promise.all([
    runScript<number>(redis, 'ledger_ip', 1, [hourKey], [o.hourlyDays * 86400, ...ipArgs]),
    tenantWrite,
    noteLastUse(redis, a.ip, a.at),
  ])
  // The first attempt ever of this tenant to this domain: counted, for the investigation's new-recipient share.
  if (newDomain && first === 1) await redis.hincrby(hourKey, `${t}|newdomains`, 1)
  if (t !== '-' && a.result === 'deferred' && recipients.length) {
    await runScript<number>(redis, 'ledger_deferred', 2, [keys.ledgerDeferred(t, a.tx), dayKey], [
      DEFERRED_MEMORY_DAYS * 86400, dayTtl, resultField(kind, 'deferred'), ...recipients.map((r) => r.toLowerCase()),
    ])
  }
}

export interface TenantTraffic {
  tenant: string
  attempts: number
  delivered: number
  deferred: number
  bounced: number
  bytes: number
  rcpts: number
  /** Attempts that were the tenant's first ever to their destination domain. */
  newdomains: number
  /** Attempts to deliver the bounces (DSNs) Posta sent to the tenant's senders, and how many were delivered. */
  dsn_attempts: number
  dsn_delivered: number
}

/** The hours (UTC) from since to until, inclusive of the hour containing each end. */
export function hoursBetween(since: Date, until: Date): string[] {
  const out: string[] = []
  const start = Math.floor(since.getTime() / 3600000) * 3600000
  for (let t = start; t <= until.getTime(); t += 3600000) out.push(hourOf(t))
  return out
}

/** Who sent through an IP between two times (hour granularity), largest traffic first. */
export async function ipTraffic(redis: Redis, ip: string, since: Date, until: Date): Promise<{ hours: string[]; tenants: TenantTraffic[] }> {
  const hours = hoursBetween(since, until)
  const p = redis.pipeline()
  for (const h of hours) p.hgetall(keys.ledgerIpHour(ip, h))
  const res = (await p.exec()) ?? []
  const by = new Map<string, TenantTraffic>()
  for (const [err, h] of res) {
    if (err) throw err
    for (const [field, v] of Object.entries(h as Record<string, string>)) {
      const i = field.lastIndexOf('|')
      const tenant = field.slice(0, i)
      const what = field.slice(i + 1) as keyof TenantTraffic
      const row = by.get(tenant) ?? { tenant, attempts: 0, delivered: 0, deferred: 0, bounced: 0, bytes: 0, rcpts: 0, newdomains: 0, dsn_attempts: 0, dsn_delivered: 0 }
      if (what in row && what !== 'tenant') (row[what] as number) += Number(v)
      by.set(tenant, row)
    }
  }
  return { hours, tenants: [...by.values()].sort((a, b) => b.bytes - a.bytes || b.attempts - a.attempts) }
}

export async function recentAttempts(redis: Redis, tenant: string, limit = 50): Promise<Attempt[]> {
  return (await redis.zrevrange(keys.ledgerRecent(tenant), 0, limit - 1)).map((v) => JSON.parse(v) as Attempt)
}

/** A tenant's delivery results per day, counted per recipient: what `posta usage` shows. */
export interface DeliveryCounts {
  delivered: number
  deferred: number
  bounced: number
}

/** The per-recipient results of a day hash (keys.usageDay), as written by recordAttempt. */
export function deliveryCounts(day: Record<string, string> | null | undefined): DeliveryCounts {
  return { delivered: Number(day?.delivered ?? 0), deferred: Number(day?.deferred ?? 0), bounced: Number(day?.bounced ?? 0) }
}
