// The delivery ledger: every delivery attempt, with tenant and source IP, kept in forms that answer questions
// without scanning: per IP and hour (who sent how much, with what results), per tenant and day (delivered,
// deferred, bounced) and a tenant's recent attempts (bounded, for the panel).
import type Redis from 'ioredis'
import { keys } from './keys'
import { dayOf } from './period'
import { DEFAULT_QUOTA } from './quota'

export type DeliveryResult = 'delivered' | 'deferred' | 'bounced'

export interface Attempt {
  at: number
  tenant: string
  tx: string
  /** Source IP the attempt left from; 'default' when the pool is empty (the machine's own address). */
  ip: string
  domain: string
  mx: string
  result: DeliveryResult
  code: string
  response: string
  size: number
  rcpts: number
}

export interface LedgerOptions {
  timeZone: string
  hourlyDays: number
  rawDays: number
  recentMax: number
}

export const DEFAULT_LEDGER: LedgerOptions = { timeZone: 'Europe/Rome', hourlyDays: 30, rawDays: 7, recentMax: 200 }

/** `YYYY-MM-DDTHH` in UTC: the ledger's hours are UTC so that no hour is ambiguous. */
export function hourOf(at: number): string {
  return new Date(at).toISOString().slice(0, 13)
}

/** Records one attempt: one pipelined round trip. Mail with no tenant (DSNs, notices) counts under "-". */
export async function recordAttempt(redis: Redis, a: Attempt, o: LedgerOptions): Promise<void> {
  const t = a.tenant || '-'
  const hourKey = keys.ledgerIpHour(a.ip, hourOf(a.at))
  const p = redis
    .pipeline()
    .hincrby(hourKey, `${t}|attempts`, 1)
    .hincrby(hourKey, `${t}|${a.result}`, 1)
    .hincrby(hourKey, `${t}|bytes`, a.size * a.rcpts)
    .hincrby(hourKey, `${t}|rcpts`, a.rcpts)
    .expire(hourKey, o.hourlyDays * 86400)
    .hset(keys.poolLastUse(), a.ip, String(a.at))
  if (t !== '-') {
    const dayKey = keys.usageDay(t, dayOf(new Date(a.at), o.timeZone))
    const recent = keys.ledgerRecent(t)
    p.hincrby(dayKey, a.result, 1)
      // the day hash is shared with the quota's counters, which set the longer lifetime when they write first
      .expire(dayKey, (DEFAULT_QUOTA.retentionDays + 31) * 86400, 'NX')
      .zadd(recent, a.at, JSON.stringify(a))
      .zremrangebyscore(recent, '-inf', a.at - o.rawDays * 86400000)
      .zremrangebyrank(recent, 0, -(o.recentMax + 1))
      .expire(recent, o.rawDays * 86400)
  }
  if (t !== '-') p.hsetnx(keys.ledgerDomains(t), a.domain, String(a.at))
  const res = (await p.exec()) ?? []
  const err = res.find(([e]) => e)
  if (err) throw err[0]
  // The first attempt ever of this tenant to this domain: counted, for the investigation's new-recipient share.
  if (t !== '-' && res[res.length - 1][1] === 1) await redis.hincrby(hourKey, `${t}|newdomains`, 1)
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
      const row = by.get(tenant) ?? { tenant, attempts: 0, delivered: 0, deferred: 0, bounced: 0, bytes: 0, rcpts: 0, newdomains: 0 }
      if (what in row && what !== 'tenant') (row[what] as number) += Number(v)
      by.set(tenant, row)
    }
  }
  return { hours, tenants: [...by.values()].sort((a, b) => b.bytes - a.bytes || b.attempts - a.attempts) }
}

export async function recentAttempts(redis: Redis, tenant: string, limit = 50): Promise<Attempt[]> {
  return (await redis.zrevrange(keys.ledgerRecent(tenant), 0, limit - 1)).map((v) => JSON.parse(v) as Attempt)
}
