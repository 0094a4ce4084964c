// The blocklist monitor's cycle: every pool IP against every configured zone, through the configured resolvers.
// A listing on an actionable zone suspends the IP at once, keeps the evidence and opens an investigation;
// UNKNOWN changes nothing; exactly one node runs the cycle of each interval window.
import type { RedisClient as Redis } from './redis'
import { canary, check, makeResolver, zoneFromIni, type CheckResult, type Zone } from './dnsbl'
import { investigate, saveInvestigation, type TenantSignals } from './investigation'
import { readSettings, type ReadResult } from './config'
import { MONITOR_INI } from './inis'
import { keys } from './keys'
import { getPool, ipFamily, recordIpEvent, reinstateIp, suspendIp } from './pool'

export interface MonitorOptions {
  zones: Zone[]
  /** host:port of the resolvers to ask; empty = the system's. */
  resolvers: string[]
  timeoutMs: number
  concurrency: number
  autoReinstate: boolean
  investigationHours: number
  intervalMs: number
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void
  notice(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  crit(msg: string, fields?: Record<string, unknown>): void
}

export interface StoredCheck {
  state: 'LISTED' | 'NOT_LISTED'
  answers: string[]
  meaning: string
  actionable: boolean
  txt?: string
  since: string
}

export interface CycleReport {
  node: string
  started_at: string
  /** The interval window this cycle claimed (claimCycle), when run by the service's schedule. */
  window?: number
  duration_ms: number
  ips: number
  queries: number
  zones: { zone: string; healthy: boolean; reason: string }[]
  listed: (CheckResult & { ip: string })[]
  unknown: number
  suspended: string[]
  cleared: string[]
  reinstated: string[]
  investigations: string[]
  warnings: string[]
}

/** Claims the cycle of the current interval window for this node; false when another node has it. */
export async function claimCycle(redis: Redis, intervalMs: number, node: string, now = Date.now()): Promise<boolean> {
  const window = Math.floor(now / intervalMs)
  return (await redis.set(keys.monitorCycle(window), node, 'PX', intervalMs * 2, 'NX')) === 'OK'
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i])
      }
    }),
  )
  return out
}

export async function runCycle(
  redis: Redis, o: MonitorOptions, ctx: { node: string; log: Logger; signals?: TenantSignals; now?: () => Date; window?: number },
): Promise<CycleReport> {
  const clock = ctx.now ?? (() => new Date())
  const t0 = Date.now()
  const started = clock()
  const resolver = makeResolver(o.resolvers, o.timeoutMs)
  const report: CycleReport = {
    node: ctx.node, started_at: started.toISOString(), ...(ctx.window !== undefined ? { window: ctx.window } : {}), duration_ms: 0, ips: 0, queries: 0, zones: [], listed: [], unknown: 0,
    suspended: [], cleared: [], reinstated: [], investigations: [], warnings: [],
  }

  // 1. Canaries: a zone that fails its self-test is ignored this cycle.
  const health = await mapLimit(o.zones, o.concurrency, async (z) => ({ zone: z, ...(await canary(resolver, z)) }))
  report.queries += o.zones.length * 2
  report.zones = health.map((h) => ({ zone: h.zone.name, healthy: h.healthy, reason: h.reason }))
  for (const h of health) if (!h.healthy) ctx.log.warn(`DNSBL zone ${h.zone.name} failed its canary, ignored this cycle: ${h.reason}`, { zone: h.zone.name })
  const zones = health.filter((h) => h.healthy).map((h) => h.zone)

  // 2. Every pool IP against every healthy zone that covers its family.
  const pool = await getPool(redis)
  report.ips = pool.length
  const jobs = pool.flatMap((p) => zones.filter((z) => ipFamily(p.ip) === 4 || z.ipv6).map((z) => ({ ip: p.ip, zone: z })))
  const results = await mapLimit(jobs, o.concurrency, async (j) => ({ ip: j.ip, ...(await check(resolver, j.ip, j.zone)) }))
  report.queries += jobs.length
  report.unknown = results.filter((r) => r.state === 'UNKNOWN').length
  const unknownZones = o.zones.length - zones.length + new Set(results.filter((r) => r.state === 'UNKNOWN').map((r) => r.zone)).size
  if (o.zones.length > 0 && unknownZones * 2 > o.zones.length) {
    const w = `DNS infrastructure problem: ${unknownZones} of ${o.zones.length} zones unhealthy or answering UNKNOWN; listings may go unseen`
    report.warnings.push(w)
    ctx.log.warn(w, { zones: o.zones.length, unknown: unknownZones })
  }

  // 3. Transitions, per IP. A suspension follows a listing that *becomes* actionable in this cycle, not the stored
  // state: an operator who reinstates a still-listed IP (a false positive) keeps it in service.
  const configured = new Set(o.zones.map((z) => z.name))
  for (const p of pool) {
    const mine = results.filter((r) => r.ip === p.ip)
    const storedRaw = await redis.hgetall(keys.monitorIp(p.ip))
    const stored: Record<string, StoredCheck> = Object.fromEntries(Object.entries(storedRaw).map(([z, v]) => [z, JSON.parse(v) as StoredCheck]))
    const at = clock().toISOString()
    const newlyActionable: [string, StoredCheck][] = []
    let noLongerActionable = false
    for (const r of mine) {
      if (r.state === 'UNKNOWN') continue // never changes an IP's state
      const prev = stored[r.zone]
      const wasListed = prev?.state === 'LISTED'
      const wasActionable = wasListed && prev.actionable
      if (r.state === 'LISTED') {
        report.listed.push(r)
        const next: StoredCheck = { state: 'LISTED', answers: r.answers, meaning: r.meaning, actionable: r.actionable, txt: r.txt, since: wasListed ? prev.since : at }
        if (!wasListed || (r.actionable && !wasActionable)) {
          const reason = `${r.zone}: ${r.meaning} (${r.answers.join(',')})${r.txt ? ` ${r.txt}` : ''}${r.actionable ? '' : ' [informational]'}`
          await recordIpEvent(redis, p.ip, { at, event: 'listed', by: 'monitor', reason })
          ;(r.actionable ? ctx.log.crit : ctx.log.notice).call(ctx.log, `${p.ip} listed on ${r.zone}`, { ip: p.ip, zone: r.zone, meaning: r.meaning, answers: r.answers.join(','), txt: r.txt ?? '', actionable: r.actionable })
          if (r.actionable) newlyActionable.push([r.zone, next])
        } else if (wasActionable && !r.actionable) {
          await recordIpEvent(redis, p.ip, { at, event: 'cleared', by: 'monitor', reason: `${r.zone}: only an informational listing is left (${r.meaning})` })
          report.cleared.push(`${p.ip} ${r.zone}`)
          noLongerActionable = true
        }
        stored[r.zone] = next
      } else if (wasListed) {
        await recordIpEvent(redis, p.ip, { at, event: 'cleared', by: 'monitor', reason: `${r.zone}: no longer listed` })
        ctx.log.notice(`${p.ip} no longer listed on ${r.zone}`, { ip: p.ip, zone: r.zone })
        report.cleared.push(`${p.ip} ${r.zone}`)
        if (wasActionable) noLongerActionable = true
        stored[r.zone] = { state: 'NOT_LISTED', answers: [], meaning: '', actionable: false, since: at }
      }
    }

    // only zones still configured count: a listing kept from a zone since removed from the ini must not hold a
    // suspension for ever, since nothing will ever clear it
    const actionable = Object.entries(stored).filter(([z, v]) => configured.has(z) && v.state === 'LISTED' && v.actionable)
    // A new actionable listing opens an investigation whoever suspended the IP before: an operator's suspension
    // (complaints, a false positive kept out) does not make a blocklist's verdict less worth looking into. Only an
    // IP the monitor itself holds for an earlier listing gets no second one.
    const heldByMonitor = p.state === 'suspended' && p.suspended_by === 'monitor' &&
      Object.entries(stored).some(([z, v]) => configured.has(z) && v.state === 'LISTED' && v.actionable && !newlyActionable.some(([n]) => n === z))
    if (newlyActionable.length && !heldByMonitor) {
      const [zone, v] = newlyActionable[0]
      const zonesText = newlyActionable.map(([z]) => z).join(', ')
      if (p.state !== 'suspended') {
        await suspendIp(redis, p.ip, `listed on ${zone} (${v.meaning})${v.txt ? `: ${v.txt}` : ''}`, 'monitor')
        report.suspended.push(p.ip)
        ctx.log.crit(`${p.ip} SUSPENDED: listed on ${zonesText}`, { ip: p.ip, zones: newlyActionable.map(([z]) => z).join(','), meaning: v.meaning })
      } else {
        ctx.log.crit(`${p.ip} listed on ${zonesText}; already suspended by ${p.suspended_by ?? 'an operator'}, it stays so`, { ip: p.ip, zones: newlyActionable.map(([z]) => z).join(','), meaning: v.meaning, suspended_by: p.suspended_by ?? '-' })
      }
      const until = clock()
      const inv = await investigate(redis, p.ip, new Date(until.getTime() - o.investigationHours * 3600000), until, {
        trigger: 'listing', evidence: newlyActionable.map(([z, st]) => ({ zone: z, ...st })), signals: ctx.signals, now: until,
      })
      await saveInvestigation(redis, inv)
      report.investigations.push(inv.id)
      ctx.log.crit(`investigation ${inv.id} opened for ${p.ip}`, { ip: p.ip, investigation: inv.id, top_tenant: inv.tenants[0]?.tenant ?? '-', top_share: inv.tenants[0]?.share ?? 0 })
    } else if (!actionable.length && noLongerActionable && p.state === 'suspended' && p.suspended_by === 'monitor') {
      if (o.autoReinstate) {
        await reinstateIp(redis, p.ip, 'monitor')
        report.reinstated.push(p.ip)
        ctx.log.notice(`${p.ip} reinstated: its listings cleared (auto_reinstate)`, { ip: p.ip })
      } else {
        ctx.log.notice(`${p.ip} no longer listed; it stays suspended until an operator runs "posta ip reinstate ${p.ip}"`, { ip: p.ip })
      }
    }
    // Stored last: if suspending failed above, the next cycle sees the listing as new again and retries.
    const changed = Object.entries(stored).filter(([z, v]) => storedRaw[z] !== JSON.stringify(v))
    if (changed.length) await redis.hset(keys.monitorIp(p.ip), Object.fromEntries(changed.map(([z, v]) => [z, JSON.stringify(v)])))
  }
  report.duration_ms = Date.now() - t0
  await redis.multi().lpush(keys.monitorCycles(), JSON.stringify(report)).ltrim(keys.monitorCycles(), 0, 999).exec()
  return report
}

/** The last known check of each zone for each IP (what the monitor stored), for the operator area. */
export async function ipChecks(redis: Redis, ips: string[]): Promise<Record<string, Record<string, StoredCheck>>> {
  if (!ips.length) return {}
  const pipe = redis.pipeline()
  for (const ip of ips) pipe.hgetall(keys.monitorIp(ip))
  const res = (await pipe.exec()) ?? []
  return Object.fromEntries(
    ips.map((ip, i) => {
      const [err, raw] = res[i] ?? [null, {}]
      if (err) throw err
      return [ip, Object.fromEntries(Object.entries((raw ?? {}) as Record<string, string>).map(([z, v]) => [z, JSON.parse(v) as StoredCheck]))]
    }),
  )
}

export async function lastCycles(redis: Redis, n = 10): Promise<CycleReport[]> {
  return (await redis.lrange(keys.monitorCycles(), 0, n - 1)).map((v) => JSON.parse(v) as CycleReport)
}

/** Monitor settings from the plugin's ini, checked (lib/inis.ts): the plugin reads it through Haraka's loader. */
export function monitorOptions({ values: { main: m }, prefixed }: ReadResult<typeof MONITOR_INI.sections, NonNullable<typeof MONITOR_INI.prefixed>['keys']>): MonitorOptions {
  return {
    zones: m.zones.map((n) => zoneFromIni(n, prefixed[n] ?? {})),
    resolvers: m.resolvers,
    timeoutMs: m.timeout_ms,
    concurrency: m.concurrency,
    autoReinstate: m.auto_reinstate,
    investigationHours: m.investigation_hours,
    intervalMs: m.interval * 1000,
  }
}

/** Monitor settings from an ini as lib/ini.ts parses it (the CLI); throws SettingsError for a refused value. */
export function monitorOptionsFromIni(ini: Record<string, Record<string, unknown> | undefined>): MonitorOptions {
  return monitorOptions(readSettings(MONITOR_INI, ini))
}
