// Monthly traffic quota: a message costs its size times its accepted recipients, counted against the tenant's
// package allowance (plus any top-up) for the calendar month in the service's time zone.
// Reserve at end of DATA (one Lua script), commit once queued (idempotent: again at delivery when the hand-off's
// commit was lost), release otherwise; see docs/quota.md.
import { Cluster, Command } from 'ioredis'
import type { RedisClient as Redis } from './redis'
import { InputError } from './errors'
import { keys } from './keys'
import { runScript } from './lua'
import { dayOf, daysOfMonth, monthEnd, monthOf, periodOf } from './period'
import { requireTenant } from './tenants'

export interface QuotaOptions {
  timeZone: string
  /** A reservation frees itself after this long (a crashed node's reservations do not block a tenant). */
  reservationMs: number
  /**
   * The marker that a message was counted lives this long: longer than a message can stay in the queue (the retry
   * schedule), so that a delivery after a crash never counts it twice.
   */
  committedMs: number
  /** Usage counters live this long after the end of their month. */
  retentionDays: number
  /** Warning thresholds, percent of the allowance. */
  thresholds: number[]
}

export const DEFAULT_QUOTA: QuotaOptions = {
  timeZone: 'Europe/Rome', reservationMs: 600_000, committedMs: 7 * 86_400_000, retentionDays: 400, thresholds: [80, 90, 100],
}

/** What a reservation needs to be committed or released later, in the same month it was made. */
export interface Reservation {
  tenant: string
  id: string
  bytes: number
  recipients: number
  month: string
  day: string
}

/**
 * `used` is committed plus in flight (what a new message must fit beside); `committed` is counted traffic only and
 * `pending` the bytes held by reservations of messages still being sent. An 'over' refusal is `permanent` when the
 * message does not fit even beside the committed traffic alone; otherwise messages in flight hold the room, and
 * they may yet be released.
 */
export type ReserveResult =
  | { ok: true; reservation: Reservation; used: number; committed: number; pending: number; limit: number }
  | { ok: false; reason: 'over'; used: number; committed: number; pending: number; limit: number; needed: number; permanent: boolean; resetsAt: Date }
  | { ok: false; reason: 'unknown-tenant' }

export interface CommitResult {
  counted: boolean
  used: number
  limit: number
  /** Thresholds (percent) this message crossed for the first time this month. */
  crossed: number[]
  /** host:port of the server that answered (a single server or Sentinel master; none on a Cluster): see replicaConfirmer. */
  server?: string
}

function usageTtlSeconds(at: Date, o: QuotaOptions): number {
  return Math.ceil((periodOf(at, o.timeZone).monthEnd.getTime() - at.getTime()) / 1000) + o.retentionDays * 86400
}

/** Bytes a message costs: its size as the client sent it in DATA times its accepted recipients. */
export function messageCost(size: number, recipients: number): number {
  return size * recipients
}

/** The reservation a message of `size` bytes to `recipients` would take now (in this month and day). */
export function reservationFor(o: QuotaOptions, tenant: string, id: string, size: number, recipients: number, now = new Date()): Reservation {
  const { month, day } = periodOf(now, o.timeZone)
  return { tenant, id, bytes: messageCost(size, recipients), recipients, month, day }
}

export async function reserve(redis: Redis, o: QuotaOptions, tenant: string, id: string, size: number, recipients: number, now = new Date()): Promise<ReserveResult> {
  const r = reservationFor(o, tenant, id, size, recipients, now)
  const [status, committed, pending, limit] = await runScript<number[]>(
    redis, 'quota_reserve', 4,
    [keys.tenant(tenant), keys.usageMonth(tenant, r.month), keys.reservations(tenant, r.month), keys.committed(tenant, id)],
    [id, r.bytes, now.getTime(), o.reservationMs],
  )
  if (status === 4) return { ok: false, reason: 'unknown-tenant' }
  if (status === 0) {
    return {
      ok: false, reason: 'over', used: committed + pending, committed, pending, limit, needed: r.bytes,
      permanent: committed + r.bytes > limit, resetsAt: periodOf(now, o.timeZone).monthEnd,
    }
  }
  // 2 (already committed) and 3 (already reserved) are a retried call for the same transaction: nothing new to hold.
  return { ok: true, reservation: r, used: committed + pending, committed, pending, limit }
}

export async function commit(redis: Redis, o: QuotaOptions, r: Reservation, now = new Date()): Promise<CommitResult> {
  const res = await runScript<number[]>(
    redis, 'quota_commit', 5,
    [keys.tenant(r.tenant), keys.usageMonth(r.tenant, r.month), keys.reservations(r.tenant, r.month), keys.committed(r.tenant, r.id), keys.usageDay(r.tenant, r.day)],
    [r.id, r.bytes, r.recipients, usageTtlSeconds(now, o), Math.ceil(o.committedMs / 1000), o.thresholds.join(',')],
  )
  return { counted: res[0] === 1, used: res[1], limit: res[2], crossed: res.slice(3), server: serverOf(redis) }
}

/** Where a single-server (or Sentinel) client is connected now, as host:port; none on a Cluster or unconnected. */
function serverOf(redis: Redis): string | undefined {
  if (redis instanceof Cluster || !redis.stream) return undefined
  const s = redis.stream as { remoteAddress?: string; remotePort?: number }
  return s.remoteAddress && s.remotePort ? `${s.remoteAddress}:${s.remotePort}` : undefined
}

export type Confirmation = { confirmed: true; replicas: number } | { confirmed: false; replicas: number; why: string }

/**
 * Confirms that quota commits reached a replica, for a Sentinel set: an orderly failover promotes the replica while
 * the old master still acknowledges writes for a few seconds, writes its resync then drops (docs/redis.md).
 * `own` is a client of its own, never the hot path's: WAIT blocks the connection it runs on, and a WAIT that waits
 * for an absent replica would hold every command queued behind it. A round writes one key on `own` (after the
 * commits it confirms were answered: the replication stream is one sequence, so a replica that has this write has
 * theirs), then `WAIT 1 <timeoutMs>`; the commits answered meanwhile go in the next round. Not confirmed: no replica
 * answered in time (a single server, which has none, always ends so), a command failed, `own` reconnected during
 * the round, or it talks to another server than the one that answered the commit (one side followed a failover).
 */
export function replicaConfirmer(own: Redis, node: string, timeoutMs: number): (c: Pick<CommitResult, 'server'>) => Promise<Confirmation> {
  let waiting: { server?: string; resolve: (c: Confirmation) => void }[] = []
  let running = false
  const round = async () => {
    running = true
    while (waiting.length) {
      const batch = waiting
      waiting = []
      const stream = own instanceof Cluster ? undefined : own.stream
      const server = serverOf(own)
      let result: Confirmation
      try {
        if (!server) throw new Error('not connected')
        await own.set(keys.replicaCheck(node), String(Date.now()), 'EX', 60)
        // its own command timeout, past the WAIT's: the client's (500 ms on the hot path) would cut a longer WAIT short
        const wait = new Command('wait', [1, timeoutMs])
        wait.setTimeout(timeoutMs + 1000)
        const replicas = Number(await own.sendCommand(wait))
        if (own instanceof Cluster || own.stream !== stream) result = { confirmed: false, replicas, why: 'the connection changed during the check' }
        else if (!(replicas >= 1)) result = { confirmed: false, replicas, why: `no replica confirmed within ${timeoutMs} ms` }
        else result = { confirmed: true, replicas }
      } catch (err) {
        result = { confirmed: false, replicas: 0, why: `the check failed: ${(err as Error).message}` }
      }
      for (const w of batch) {
        if (result.confirmed && w.server !== server) w.resolve({ confirmed: false, replicas: 0, why: `the commit was answered by ${w.server ?? 'no known server'}, the check by ${server}` })
        else w.resolve(result)
      }
    }
    running = false
  }
  return (c) => new Promise<Confirmation>((resolve) => {
    waiting.push({ server: c.server, resolve })
    if (!running) void round()
  })
}

/**
 * Frees a reservation of a message that will not be queued. Harmless when there is none: it also serves to undo a
 * reservation whose reply never arrived (sent on the same client after the reserve, Redis runs it after it).
 */
export async function release(redis: Redis, r: Reservation): Promise<void> {
  await redis.zrem(keys.reservations(r.tenant, r.month), `${r.id}|${r.bytes}`)
}

export interface QuotaState {
  found: boolean
  used: number
  pending: number
  limit: number
  messages: number
  month: string
  resetsAt: Date
}

/** Committed and in-flight traffic of the current month, and the limit. */
export async function quotaState(redis: Redis, o: QuotaOptions, tenant: string, now = new Date()): Promise<QuotaState> {
  const { month, monthEnd: resetsAt } = periodOf(now, o.timeZone)
  const [found, used, pending, limit, messages] = await runScript<number[]>(
    redis, 'quota_state', 3,
    [keys.tenant(tenant), keys.usageMonth(tenant, month), keys.reservations(tenant, month)],
    [now.getTime()],
  )
  return { found: found === 1, used, pending, limit, messages, month, resetsAt }
}

export interface Usage {
  tenant: string
  month: string
  used_bytes: number
  limit_bytes: number
  remaining_bytes: number
  percent: number
  messages: number
  package: string
  package_bytes: number
  topup_bytes: number
  resets_at: string
  /** Delivery results this month, one per recipient (lib/ledger.ts writes them into the day hashes). */
  delivered: number
  deferred: number
  bounced: number
  days: { day: string; bytes: number; messages: number; recipients: number; delivered: number; deferred: number; bounced: number }[]
}

/** The month's figures for the CLI and the panel, read from counters (never from messages). */
export async function usage(redis: Redis, o: QuotaOptions, tenant: string, now = new Date()): Promise<Usage> {
  const t = await requireTenant(redis, tenant)
  const { month, day: today, monthEnd: resetsAt } = periodOf(now, o.timeZone)
  const days = daysOfMonth(month).filter((d) => d <= today)
  const pipe = redis.pipeline().hgetall(keys.usageMonth(tenant, month)).hget(keys.tenant(tenant), 'traffic_bytes')
  for (const d of days) pipe.hgetall(keys.usageDay(tenant, d))
  const res = ((await pipe.exec()) ?? []).map(([err, v]) => {
    if (err) throw err
    return v
  })
  const m = res[0] as Record<string, string>
  const packageBytes = Number(res[1] ?? 0)
  const topup = Number(m.topup ?? 0)
  const used = Number(m.bytes ?? 0)
  const limit = packageBytes + topup
  const perDay = days.map((day, i) => {
    const h = res[i + 2] as Record<string, string>
    const n = (f: string) => Number(h[f] ?? 0)
    return { day, bytes: n('bytes'), messages: n('messages'), recipients: n('recipients'), delivered: n('delivered'), deferred: n('deferred'), bounced: n('bounced') }
  })
  const total = (f: 'delivered' | 'deferred' | 'bounced') => perDay.reduce((a, d) => a + d[f], 0)
  return {
    tenant,
    month,
    used_bytes: used,
    limit_bytes: limit,
    remaining_bytes: Math.max(0, limit - used),
    percent: limit > 0 ? Math.round((used / limit) * 1000) / 10 : 0,
    messages: Number(m.messages ?? 0),
    package: t.package,
    package_bytes: packageBytes,
    topup_bytes: topup,
    resets_at: resetsAt.toISOString(),
    delivered: total('delivered'),
    deferred: total('deferred'),
    bounced: total('bounced'),
    days: perDay,
  }
}

/** The month's totals of one tenant, as usage() computes them, without the days (the operator area's list). */
export type UsageSummary = Pick<Usage, 'tenant' | 'month' | 'used_bytes' | 'limit_bytes' | 'remaining_bytes' | 'percent' | 'messages'>

/**
 * usage()'s totals for many tenants in one go: the month hash and the allowance of each, sent as concurrent commands
 * (one pipeline per Redis node on an auto-pipelining client, lib/redis.ts connectHotPath; one explicit pipeline may
 * not span a Cluster's nodes). Does not check that the tenants exist: the caller lists existing ones. For the panel.
 */
export async function usageSummaries(redis: Redis, o: QuotaOptions, tenants: readonly string[], now = new Date()): Promise<UsageSummary[]> {
  const { month } = periodOf(now, o.timeZone)
  const read = await Promise.all(tenants.map((t) => Promise.all([redis.hgetall(keys.usageMonth(t, month)), redis.hget(keys.tenant(t), 'traffic_bytes')])))
  return read.map(([m, traffic], i) => {
    const used = Number(m.bytes ?? 0)
    const limit = Number(traffic ?? 0) + Number(m.topup ?? 0)
    return {
      tenant: tenants[i], month, used_bytes: used, limit_bytes: limit, remaining_bytes: Math.max(0, limit - used),
      percent: limit > 0 ? Math.round((used / limit) * 1000) / 10 : 0, messages: Number(m.messages ?? 0),
    }
  })
}

/** A one-off addition to this month's allowance. */
export async function topUp(redis: Redis, o: QuotaOptions, tenant: string, bytes: number, now = new Date()): Promise<number> {
  await requireTenant(redis, tenant)
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InputError(`bad top-up ${bytes}: must be a positive number of bytes`)
  const k = keys.usageMonth(tenant, monthOf(now, o.timeZone))
  const [[, total]] = (await redis.multi().hincrby(k, 'topup', bytes).expire(k, usageTtlSeconds(now, o)).exec()) as [[unknown, number]]
  return total
}
