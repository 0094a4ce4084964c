// posta-outbound: static routes before MX lookup; the source IP of each delivery from the current rotation slot of
// the pool (never a suspended IP, never the machine's default address while a pool exists); the delivery ledger
// and one log line per delivery result with tenant and source IP.
import { now } from '../../lib/clock'
import { recordAttempt, type DeliveryResult, type LedgerOptions } from '../../lib/ledger'
import { OUTBOUND_INI, TRAP_INI } from '../../lib/inis'
import { keys } from '../../lib/keys'
import { getPoolFresh, ipFamily, type PoolEntry } from '../../lib/pool'
import { activeIps, slotAt, type RotationOptions } from '../../lib/rotation'
import { findRoute } from '../../lib/routes'
import { DEFAULT_SUPPRESSION, isHardBounce, suppress, type SuppressionOptions } from '../../lib/suppression'
import { addr, constants, getRedis, getSettings, guard, type HMailItem, type Next, type Plugin } from '../shared/haraka'
import { loadIni } from '../shared/settings'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const netUtils: {
  get_mx(domain: string): Promise<Mx[]>
  resolve_mx_hosts(mxs: Mx[]): Promise<Mx[]>
} = require('haraka-net-utils')

interface Mx {
  exchange: string
  priority: number
  port?: number
  from_dns?: string
  bind?: string
  bind_helo?: string
}

interface OutboundConfig {
  rotation: RotationOptions
  waitSeconds: number
  stickySeconds: number
  ledger: LedgerOptions
}

let cfg: OutboundConfig
let roundRobin = 0
let suppression: SuppressionOptions & { enabled: boolean } = { ...DEFAULT_SUPPRESSION, enabled: true }

export function register(this: Plugin) {
  load_outbound_ini.call(this)
  load_trap_ini.call(this)
}

function load_trap_ini(this: Plugin) {
  // Suppression is posta-trap's setting ([suppression] in posta-trap.ini): that plugin refuses suppressed recipients.
  loadIni(this, TRAP_INI, ({ values: { suppression: s } }) => {
    suppression = { enabled: s.enabled, days: s.days, maxEntries: s.max_entries }
  })
}

function load_outbound_ini(this: Plugin) {
  loadIni(this, OUTBOUND_INI, ({ values: { rotation: r, ledger: l } }) => {
    const tz = getSettings().timeZone
    cfg = {
      rotation: { timeZone: tz, slotMinutes: r.slot_minutes, active: r.active },
      waitSeconds: r.wait_seconds,
      stickySeconds: r.sticky_days * 86400,
      ledger: { timeZone: tz, hourlyDays: l.hourly_days, rawDays: l.raw_days, recentMax: l.recent_max },
    }
  })
}

function init(plugin: Plugin, next: Next) {
  const redis = getRedis(plugin)
  // The CLI shows the schedule as the service computes it.
  redis.once('ready', () => {
    redis.hset(keys.published(), { rotation_slot_minutes: String(cfg.rotation.slotMinutes), rotation_active: String(cfg.rotation.active) }).catch(() => {})
  })
  next()
}
export function hook_init_master(this: Plugin, next: Next) {
  init(this, next)
}
export function hook_init_child(this: Plugin, next: Next) {
  init(this, next)
}

let usableMemo: { pool: PoolEntry[]; slot: number; usable: PoolEntry[] } | null = null

/** The usable IPs of the current slot: active in the rotation and not suspended (memoised per pool and slot). */
function usableNow(pool: PoolEntry[]): PoolEntry[] {
  const slot = slotAt(now(), cfg.rotation).number
  if (usableMemo && usableMemo.pool === pool && usableMemo.slot === slot) return usableMemo.usable
  const active = new Set(activeIps(pool.map((p) => p.ip), slot, cfg.rotation))
  const usable = pool.filter((p) => active.has(p.ip) && p.state === 'active')
  usableMemo = { pool, slot, usable }
  return usable
}

function deliveryFields(hmail: HMailItem, extra: Record<string, unknown> = {}) {
  const notes = hmail.todo?.notes ?? {}
  return {
    tenant: (notes.tenant as string) ?? '-',
    auth_user: (notes.auth_user as string) ?? '-',
    client_ip: (notes.client_ip as string) ?? '-',
    tx: hmail.todo?.uuid ?? hmail.uuid,
    source_ip: (notes.posta_source_ip as string) ?? 'default',
    domain: hmail.todo?.domain,
    from: addr(hmail.todo?.mail_from),
    to: (hmail.todo?.rcpt_to ?? []).map(addr).join(','),
    ...extra,
  }
}

/** No usable IP in the pool: the message waits in the queue (no failure counted) rather than leave through a flagged one. */
export const hook_send_email = guard('pool lookup failed, will retry', async function (this: Plugin, next: Next, hmail: HMailItem) {
  const pool = await getPoolFresh(getRedis(this))
  if (pool.length > 0 && usableNow(pool).length === 0) {
    hmail.logwarn(this, `no usable outbound IP (all of this slot's pool IPs are suspended): waiting ${cfg.waitSeconds}s`, deliveryFields(hmail))
    return next(constants.delay, cfg.waitSeconds)
  }
  next()
})

export const hook_get_mx = guard('route or pool lookup failed, will retry', async function (this: Plugin, next: Next, hmail: HMailItem, domain: string) {
  const redis = getRedis(this)
  const id = hmail.todo?.uuid ?? hmail.uuid
  const tenant = hmail.todo?.notes?.tenant as string | undefined
  const [route, pool, sticky, status] = await Promise.all([
    findRoute(redis, domain), getPoolFresh(redis), redis.get(keys.sticky(id)), tenant ? redis.hget(keys.tenant(tenant), 'status') : null,
  ])
  if (status === 'closed') {
    // A banned tenant's queued mail is never delivered: refused here, and hook_bounce drops it without a DSN.
    hmail.todo.notes.posta_dropped = true
    return next(constants.deny, 'tenant closed')
  }
  let mxs: Mx[]
  if (route) {
    mxs = [{ exchange: route.host, port: route.port, priority: 0 }]
    hmail.logdebug(this, 'static route', deliveryFields(hmail, { route: route.domain, mx: `${route.host}:${route.port}` }))
  } else if (pool.length === 0) {
    return next() // a single-address install: Haraka's own MX lookup and the default address
  } else {
    mxs = await netUtils.get_mx(domain)
    if (!mxs.length) return next(constants.deny, `no MX for ${domain}`)
  }
  if (pool.length === 0) return next(constants.ok, mxs)

  const usable = usableNow(pool)
  if (usable.length === 0) {
    hmail.logwarn(this, 'no usable outbound IP: waiting in the queue', deliveryFields(hmail))
    return next(constants.denysoft, 'no usable outbound IP')
  }
  const resolved = await netUtils.resolve_mx_hosts(mxs)
  if (route) for (const mx of resolved) delete mx.from_dns // a route may point at this machine on purpose
  // One source per address family: the message's sticky IP while it is usable, else the next in turn.
  const chosen = new Map<number, PoolEntry>()
  const stuck = usable.find((p) => p.ip === sticky)
  if (stuck) chosen.set(ipFamily(stuck.ip), stuck)
  for (const fam of [4, 6]) {
    if (chosen.has(fam)) continue
    const candidates = usable.filter((p) => ipFamily(p.ip) === fam)
    if (candidates.length) chosen.set(fam, candidates[roundRobin++ % candidates.length])
  }
  const list = resolved
    .filter((mx) => chosen.has(ipFamily(mx.exchange)))
    .map((mx) => ({ ...mx, bind: chosen.get(ipFamily(mx.exchange))!.ip, bind_helo: chosen.get(ipFamily(mx.exchange))!.helo }))
    .sort((a, b) => a.priority - b.priority)
  if (!list.length) {
    hmail.logwarn(this, 'no usable outbound IP of the MX address family: waiting in the queue', deliveryFields(hmail, { mx: resolved.map((m) => m.exchange).join(',') }))
    return next(constants.denysoft, 'no usable outbound IP for this destination')
  }
  const source = list[0].bind
  hmail.todo.notes.posta_source_ip = source
  if (source !== sticky) await redis.set(keys.sticky(id), source, 'EX', cfg.stickySeconds)
  next(constants.ok, list)
})

function record(plugin: Plugin, hmail: HMailItem, result: DeliveryResult, mx: string, response: string) {
  const notes = hmail.todo?.notes ?? {}
  const code = /^\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?/.exec(response)?.[0] ?? ''
  recordAttempt(getRedis(plugin), {
    at: Date.now(),
    tenant: (notes.tenant as string) ?? '',
    tx: hmail.todo?.uuid ?? hmail.uuid,
    ip: (notes.posta_source_ip as string) ?? 'default',
    domain: hmail.todo?.domain,
    mx,
    result,
    code,
    response: response.slice(0, 300),
    size: Number(notes.size ?? 0),
    rcpts: hmail.todo?.rcpt_to?.length ?? 0,
  }, cfg.ledger).catch((err: Error) => hmail.logerror(plugin, `ledger write failed: ${err.message}`, deliveryFields(hmail)))
}

export function hook_delivered(this: Plugin, next: Next, hmail: HMailItem, params: unknown[]) {
  const [host, ip, response, delay, port] = params as [string, string, string, number, number]
  hmail.loginfo(this, 'delivered', deliveryFields(hmail, { result: 'delivered', mx: host, mx_ip: ip, mx_port: port, response, delay }))
  record(this, hmail, 'delivered', host, String(response ?? ''))
  next()
}

export function hook_deferred(this: Plugin, next: Next, hmail: HMailItem, params: { delay: number; err: unknown }) {
  const error = String((params?.err as Error)?.message ?? params?.err ?? '')
  hmail.lognotice(this, 'deferred', deliveryFields(hmail, { result: 'deferred', retry_in: params?.delay, error }))
  record(this, hmail, 'deferred', '', error)
  next()
}

export function hook_bounce(this: Plugin, next: Next, hmail: HMailItem, err: { message?: string; mx?: { exchange?: string }; bounced_rcpt?: BouncedRcpt[] }) {
  const error = err?.message ?? String(err)
  if (hmail.todo?.notes?.posta_dropped) {
    hmail.lognotice(this, 'dropped: the tenant is closed, no delivery and no bounce', deliveryFields(hmail, { result: 'dropped' }))
    return next(constants.ok) // anything but CONT: Haraka discards the mail without a DSN
  }
  // Refused at RCPT: Haraka lists the refused recipients (a partial delivery splits them into their own bounce).
  // Refused after DATA: the reply is about the whole message, which tells one dead mailbox only when it had one recipient.
  const rcpts = (err?.bounced_rcpt ?? []) as BouncedRcpt[]
  const todo = (hmail.todo?.rcpt_to ?? []) as unknown as BouncedRcpt[]
  if (suppression.enabled) suppressHardBounces(this, hmail, rcpts.length ? rcpts : todo.length === 1 ? todo : [])
  hmail.lognotice(this, 'bounced', deliveryFields(hmail, { result: 'bounced', mx: err?.mx?.exchange, error }))
  record(this, hmail, 'bounced', err?.mx?.exchange ?? '', error)
  next()
}

/** A recipient as Haraka's outbound keeps it: an Address with the remote server's reply (hmail.js). */
interface BouncedRcpt {
  address?: string
  dsn_smtp_code?: string
  dsn_smtp_extc?: string
  dsn_smtp_response?: string
  reason?: string
}

/** Recipients that do not exist are suppressed for the tenant: its next RCPT to them is refused (posta-trap). */
function suppressHardBounces(plugin: Plugin, hmail: HMailItem, rcpts: BouncedRcpt[]) {
  const tenant = hmail.todo?.notes?.tenant as string | undefined
  if (!tenant) return // a DSN or other mail of the relay itself
  for (const r of rcpts) {
    const address = r.address // an @haraka/email-address Address: user@host
    if (!address || !isHardBounce(r.dsn_smtp_code, r.dsn_smtp_extc, r.dsn_smtp_response ?? r.reason)) continue
    const response = `${r.dsn_smtp_code} ${r.dsn_smtp_extc ?? ''} ${r.dsn_smtp_response ?? ''}`.replace(/\s+/g, ' ').trim()
    suppress(getRedis(plugin), tenant, address, suppression)
      .then((s) => hmail.lognotice(plugin, 'recipient suppressed after a hard bounce', deliveryFields(hmail, { suppressed: s.address, until: s.expires_at, response })))
      .catch((e: Error) => hmail.logerror(plugin, `suppression failed: ${e.message}`, deliveryFields(hmail, { suppressed: address })))
  }
}
