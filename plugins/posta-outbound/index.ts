// posta-outbound: static routes before MX lookup; the source IP of each delivery from the current rotation slot of
// the pool (never a suspended IP, never the machine's default address while a pool exists); the delivery ledger
// and one log line per delivery result with tenant and source IP; bounces in the tenant's language, ledgered under
// the tenant. docs/pool.md and docs/bounces.md tell the design.
import * as path from 'node:path'
import { isExpiry, recipientLine, txOfDelivery, type RecipientOutcome } from '../../lib/bounce'
import { now } from '../../lib/clock'
import { DEFAULT_LANGUAGE, type Language } from '../../lib/language'
import { recordAttempt, type DeliveryResult, type LedgerOptions, type MailKind } from '../../lib/ledger'
import { OUTBOUND_INI, TRAP_INI } from '../../lib/inis'
import { deliveryAttempted } from '../../lib/metrics'
import { keys } from '../../lib/keys'
import { chooseSources, getPoolFresh, ipFamily, nodePool, sourceOf, type PoolEntry, type SourcedMx } from '../../lib/pool'
import { activeByOwner, slotAt, type RotationOptions } from '../../lib/rotation'
import { findRoute } from '../../lib/routes'
import { bounceNotes, bounceOf, isDropped, markDropped, noticeOf, senderFields, setSourceIp, sizeOf, sourceIpOf, tenantOf, type Notes } from '../../lib/submission'
import { DEFAULT_SUPPRESSION, isHardBounce, suppress, type SuppressionOptions } from '../../lib/suppression'
import { tenantLanguage, tenantStatus } from '../../lib/tenants'
import { addr, constants, debugOn, getRedis, getSettings, guard, type Address, type HMailItem, type Next, type Plugin } from '../shared/haraka'
import { chained } from '../shared/chain'
import { loadIni, useServiceResolvers } from '../shared/settings'
import { deliveryNotes } from '../shared/submission'

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
  useServiceResolvers(getSettings().resolvers)
  load_outbound_ini.call(this)
  load_trap_ini.call(this)
  localiseBounceTemplates()
  // First of the pre_send_trans_email hooks: it must run inside the synchronous rendering of a bounce, before any
  // hook that answers later (haraka-plugin-dkim signs there asynchronously).
  this.register_hook('pre_send_trans_email', 'tag_bounce', -100)
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

// ---- what Haraka's outbound keeps on a queued message, beyond shared/haraka.ts ----

/** A recipient as Haraka's outbound keeps it: an Address with the remote server's reply (outbound/hmail.js). */
type Recipient = Address & RecipientOutcome

type BounceRenderer = (from: unknown, to: unknown, reason: unknown, header: unknown, cb: (err: unknown, lines?: string[]) => void) => void

/** The outbound item with what this plugin keeps on it for the length of one attempt (in memory only). */
type Outbound = HMailItem & {
  todo: HMailItem['todo'] & { rcpt_to: Recipient[] }
  /** This attempt's route: computed before the attempt (hook_send_email), handed to Haraka at get_mx. */
  posta_plan?: Plan
  populate_bounce_message_with_headers: BounceRenderer
}

/** Haraka's error about a message it bounces (hmail.js _bounce). */
interface BounceError {
  message?: string
  mx?: { exchange?: string }
  bounced_rcpt?: Recipient[]
}

// ---- routing: where an attempt goes and from which pool IP ----

type Plan =
  | { kind: 'mx'; list: Mx[]; sources: SourcedMx[]; sticky: string | null } // use this list as given; sticky: the IP read at planning
  | { kind: 'haraka' } // no pool and no route: Haraka's own MX lookup and the default address
  | { kind: 'deny'; message: string } // bounce
  | { kind: 'soft'; message: string } // a failed attempt: retried on the schedule
  | { kind: 'wait'; message: string } // no usable pool IP now: wait, no failure counted

/**
 * The MX addresses handed to Haraka for a delivery (by Haraka's delivery id), with their source IPs: tells which IP
 * a result left from. Kept by id, not on the item: Haraka reports a partial failure on a new item split from it.
 */
const sourcesByDelivery = new Map<string, SourcedMx[]>()
const SOURCES_KEPT = 10000

function keepSources(delivery: string, sources: SourcedMx[]) {
  sourcesByDelivery.delete(delivery)
  sourcesByDelivery.set(delivery, sources)
  if (sourcesByDelivery.size > SOURCES_KEPT) sourcesByDelivery.delete(sourcesByDelivery.keys().next().value as string)
}

const deliveryId = (hmail: HMailItem) => hmail.todo?.uuid ?? hmail.uuid

let usableMemo: { pool: PoolEntry[]; slot: number; mine: PoolEntry[]; usable: PoolEntry[] } | null = null

/**
 * This node's part of the pool (the IPs it owns and the shared ones: POSTA_NODE) and the usable ones of the current
 * slot: active in the node's rotation and not suspended (memoised per pool read and slot).
 */
function poolNow(pool: PoolEntry[]): { mine: PoolEntry[]; usable: PoolEntry[] } {
  const slot = slotAt(now(), cfg.rotation).number
  if (usableMemo && usableMemo.pool === pool && usableMemo.slot === slot) return usableMemo
  const mine = nodePool(pool, getSettings().node)
  const active = new Set(activeByOwner(mine, slot, cfg.rotation))
  usableMemo = { pool, slot, mine, usable: mine.filter((p) => active.has(p.ip) && p.state === 'active') }
  return usableMemo
}

async function plan(plugin: Plugin, hmail: Outbound): Promise<Plan> {
  const redis = getRedis(plugin)
  const domain = hmail.todo.domain
  const notes = deliveryNotes(hmail)
  const tenant = tenantOf(notes)
  // The sticky IP is written at the first attempt (get_mx) for the retries: a first attempt has none to read.
  const [route, all, sticky, status] = await Promise.all([
    findRoute(redis, domain), getPoolFresh(redis), hmail.num_failures > 0 ? redis.get(keys.sticky(deliveryId(hmail))) : null,
    tenant ? tenantStatus(redis, tenant) : null,
  ])
  // a node with no IPs of its own and no shared ones sends from the machine's address, as with an empty pool
  const { mine: pool, usable } = poolNow(all)
  if (status === 'closed') {
    // A banned tenant's queued mail is never delivered: refused here, and hook_bounce drops it without a DSN.
    markDropped(notes)
    return { kind: 'deny', message: 'tenant closed' }
  }
  if (pool.length > 0 && usable.length === 0) return { kind: 'wait', message: "no usable outbound IP (all of this slot's pool IPs are suspended)" }
  let mxs: Mx[]
  if (route) {
    mxs = [{ exchange: route.host, port: route.port, priority: 0 }]
    if (debugOn()) hmail.logdebug(plugin, 'static route', deliveryFields(hmail, { route: route.domain, mx: `${route.host}:${route.port}` }))
  } else if (pool.length === 0) {
    return { kind: 'haraka' }
  } else {
    try {
      mxs = await netUtils.get_mx(domain)
    } catch (err) {
      return { kind: 'soft', message: `MX lookup for ${domain} failed: ${(err as Error).message}` }
    }
    if (!mxs.length) return { kind: 'deny', message: `no MX for ${domain}` }
  }
  const resolved = await netUtils.resolve_mx_hosts(mxs)
  if (route) for (const mx of resolved) delete mx.from_dns // a route may point at this machine on purpose
  if (pool.length === 0) return { kind: 'mx', list: resolved, sources: [], sticky }
  const list = chooseSources(resolved, usable, sticky, () => roundRobin++)
  if (!list.length) {
    const families = new Set(resolved.map((mx) => ipFamily(mx.exchange)))
    const mxText = resolved.map((m) => m.exchange).join(',') || mxs.map((m) => m.exchange).join(',')
    // An IP of that family exists but is suspended or resting in this slot: wait for it. None at all: the pool
    // cannot reach this destination, which is a real failure (retried, then bounced) until an operator adds one.
    if (pool.some((p) => families.has(ipFamily(p.ip)))) return { kind: 'wait', message: `no usable outbound IP of the MX address family (mx ${mxText})` }
    return { kind: 'soft', message: `the pool has no IP of the address family of ${domain}'s MX (${mxText})` }
  }
  return { kind: 'mx', list, sources: list, sticky }
}

/**
 * Every attempt's route is decided here, before Haraka's MX step: only this hook can postpone an attempt without
 * counting a failure (DELAY), so a wait for a usable pool IP never uses up the retry schedule nor ends in a bounce.
 */
export const hook_send_email = chained(guard('route or pool lookup failed, will retry', async function (this: Plugin, next: Next, hmail: Outbound) {
  const p = await plan(this, hmail)
  if (p.kind === 'wait') {
    hmail.logwarn(this, `${p.message}: waiting ${cfg.waitSeconds}s`, deliveryFields(hmail))
    return next(constants.delay, cfg.waitSeconds)
  }
  hmail.posta_plan = p
  next()
}))

export const hook_get_mx = chained(guard('route or pool lookup failed, will retry', async function (this: Plugin, next: Next, hmail: Outbound) {
  // The plan of hook_send_email, made a moment ago for this attempt (made here only if that hook did not run).
  const p = hmail.posta_plan ?? (await plan(this, hmail))
  delete hmail.posta_plan
  switch (p.kind) {
    case 'haraka':
      return next()
    case 'deny':
      return next(constants.deny, p.message)
    case 'soft':
    case 'wait': // only when the plan was made here: a race with a suspension
      hmail.logwarn(this, `${p.message}: will retry`, deliveryFields(hmail))
      return next(constants.denysoft, p.message)
  }
  keepSources(deliveryId(hmail), p.sources)
  if (p.sources.length) {
    const first = p.sources[0].bind
    const notes = deliveryNotes(hmail)
    setSourceIp(notes, first)
    // The sticky IP was read when the plan was made: no second round trip per attempt.
    if (first !== p.sticky) await getRedis(this).set(keys.sticky(deliveryId(hmail)), first, 'EX', cfg.stickySeconds)
  }
  next(constants.ok, p.list)
}))

// ---- results: log lines and the ledger ----

/** The pool IP this attempt left from: the bind of the MX address that answered, else the first one planned. */
function sourceIp(hmail: Outbound, mxIp?: string): string {
  return sourceOf(sourcesByDelivery.get(deliveryId(hmail)) ?? [], mxIp) ?? sourceIpOf(deliveryNotes(hmail)) ?? 'default'
}

/** Whose mail this is, for the ledger: the tenant's own message, or mail Posta sent about a tenant. */
function ownerOf(notes: Notes): { tenant: string; kind: MailKind } {
  const own = tenantOf(notes)
  if (own) return { tenant: own, kind: 'message' }
  const notice = noticeOf(notes)
  if (notice?.tenant) return { tenant: notice.tenant, kind: notice.kind === 'dsn' ? 'dsn' : 'notice' }
  return { tenant: '', kind: 'message' }
}

function deliveryFields(hmail: Outbound, extra: Record<string, unknown> = {}) {
  const notes = deliveryNotes(hmail)
  const delivery = hmail.todo?.uuid ?? hmail.uuid
  const owner = ownerOf(notes)
  const dsnFor = bounceOf(notes)
  return {
    ...senderFields(notes),
    ...(owner.kind !== 'message' ? { tenant: owner.tenant, kind: owner.kind } : {}),
    // the id the client saw in its 250; Haraka's own id of this delivery adds a per-domain suffix
    tx: txOfDelivery(delivery),
    delivery,
    ...(dsnFor ? { dsn_for: dsnFor } : {}),
    source_ip: sourceIpOf(notes) ?? 'default',
    domain: hmail.todo?.domain,
    from: addr(hmail.todo?.mail_from),
    to: (hmail.todo?.rcpt_to ?? []).map(addr).join(','),
    ...extra,
  }
}

function record(plugin: Plugin, hmail: Outbound, result: DeliveryResult, mx: string, response: string, source: string, recipients: string[]) {
  const notes = deliveryNotes(hmail)
  const owner = ownerOf(notes)
  const delivery = hmail.todo?.uuid ?? hmail.uuid
  deliveryAttempted(source, result)
  const code = /^\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?/.exec(response)?.[0] ?? ''
  recordAttempt(getRedis(plugin), {
    at: Date.now(),
    tenant: owner.tenant,
    kind: owner.kind,
    tx: txOfDelivery(delivery),
    delivery,
    ip: source,
    domain: hmail.todo?.domain,
    mx,
    result,
    code,
    response: response.slice(0, 300),
    size: sizeOf(notes),
    rcpts: hmail.todo?.rcpt_to?.length ?? 0,
    recipients,
  }, cfg.ledger).catch((err: Error) => hmail.logerror(plugin, `ledger write failed: ${err.message}`, deliveryFields(hmail)))
}

/** The remote reply of an attempt: per recipient when the server answered about each, else Haraka's reason. */
function responseOf(rcpts: Recipient[], fallback: string): string {
  const replies = [...new Set(rcpts.map((r) => recipientLine(r, fallback, 'en')))]
  return replies.join(' | ')
}

/** The MX an attempt reached: the one Haraka names, else the one its recipients' replies came from, else those planned. */
function mxOf(hmail: Outbound, named?: string): string {
  return named || hmail.todo?.rcpt_to?.map((r) => (r as { dsn_remote_mta?: string }).dsn_remote_mta).find(Boolean) || (sourcesByDelivery.get(deliveryId(hmail)) ?? []).map((s) => s.exchange).join(',')
}

export const hook_delivered = chained(function hook_delivered(this: Plugin, next: Next, hmail: Outbound, params: unknown[]) {
  const [host, ip, response, delay, port, , okRecips] = params as [string, string, string, number, number, string, Recipient[]]
  const ok = (okRecips ?? hmail.todo?.rcpt_to ?? []).map(addr)
  const source = sourceIp(hmail, ip)
  hmail.loginfo(this, 'delivered', deliveryFields(hmail, { source_ip: source, result: 'delivered', mx: host, mx_ip: ip, mx_port: port, delivered: ok.join(','), response, delay }))
  record(this, hmail, 'delivered', host, String(response ?? ''), source, ok)
  next()
})

export const hook_deferred = chained(function hook_deferred(this: Plugin, next: Next, hmail: Outbound, params: { delay: number; err: unknown; mx?: { exchange?: string } }) {
  const error = String((params?.err as Error)?.message ?? params?.err ?? '')
  const rcpts = hmail.todo?.rcpt_to ?? []
  const mx = mxOf(hmail, params?.mx?.exchange)
  const source = sourceIp(hmail, mx)
  const response = responseOf(rcpts, error)
  hmail.lognotice(this, 'deferred', deliveryFields(hmail, { source_ip: source, result: 'deferred', mx, response, retry_in: params?.delay, attempts: hmail.num_failures }))
  record(this, hmail, 'deferred', mx, response, source, rcpts.map(addr))
  next()
})

// ---- bounces ----

/** While Haraka renders a bounce for a tenant (synchronously, see localiseBounceTemplates), what it is about. */
let rendering: { lang: Language; tenant: string; tx: string } | null = null

const TEMPLATES = new Set(['outbound.bounce_message', 'outbound.bounce_message_html', 'outbound.bounce_message_image'])

/**
 * Haraka reads its bounce templates by fixed names (outbound/hmail.js populate_bounce_message_with_headers), from
 * the haraka-config instance it shares with us. While it renders a bounce for a tenant, a name
 * `outbound.bounce_message*` is read as `outbound.bounce_message*.<lang>` when that file exists (the unsuffixed files are
 * English): the tenant's language, with Haraka's own DSN (multipart/report, delivery-status, original headers) and no fork of it.
 */
function localiseBounceTemplates() {
  const hmailDir = path.dirname(require.resolve('Haraka/outbound/hmail.js'))
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const config = require(require.resolve('haraka-config', { paths: [hmailDir] })) as { get: (...a: unknown[]) => unknown; __posta_lang?: boolean }
  if (config.__posta_lang) return
  const get = config.get
  config.get = function (this: unknown, ...args: unknown[]) {
    const name = args[0]
    if (rendering && rendering.lang !== DEFAULT_LANGUAGE && typeof name === 'string' && TEMPLATES.has(name)) {
      const local = get.call(this, `${name}.${rendering.lang}`, ...args.slice(1))
      if (Array.isArray(local) && local.length) return local
    }
    return get.apply(this, args)
  }
  config.__posta_lang = true
}

/**
 * For the bounce of a tenant's message: Haraka renders it (reading the templates) and queues it (running
 * pre_send_trans_email) in one synchronous run from this function; `rendering` says, meanwhile, in which language
 * and for which tenant.
 */
function bounceInLanguage(hmail: Outbound, ctx: { lang: Language; tenant: string; tx: string }) {
  const render = hmail.populate_bounce_message_with_headers
  hmail.populate_bounce_message_with_headers = function (this: Outbound, ...args: Parameters<BounceRenderer>) {
    const outer = rendering
    rendering = ctx
    try {
      return render.apply(this, args)
    } finally {
      rendering = outer
    }
  }
}

/** The DSN of a tenant's message carries the tenant (as a notice about it): its delivery is ledgered under it. */
export function tag_bounce(this: Plugin, next: Next, connection: { transaction?: { notes: Notes; mail_from?: Address } }) {
  const tx = connection?.transaction
  if (rendering && tx && !tx.mail_from?.user) Object.assign(tx.notes, bounceNotes(rendering.tenant, rendering.tx))
  next()
}

/** Never lose a bounce: an error here (Redis unreachable) still sends Haraka's DSN, in the service's language. */
export const hook_bounce = chained(function hook_bounce(this: Plugin, next: Next, hmail: Outbound, err: BounceError) {
  let called = false
  const once = (code?: number) => {
    if (called) return
    called = true
    next(code)
  }
  bounce(this, hmail, err).then(once, (e: Error) => {
    hmail.logerror(this, `bounce handling failed, sending the bounce as is: ${e?.message ?? e}`, deliveryFields(hmail))
    once()
  })
})

async function bounce(plugin: Plugin, hmail: Outbound, err: BounceError): Promise<number | undefined> {
  const notes = deliveryNotes(hmail)
  const reason = err?.message ?? String(err)
  if (isDropped(notes)) {
    hmail.lognotice(plugin, 'dropped: the tenant is closed, no delivery and no bounce', deliveryFields(hmail, { result: 'dropped' }))
    return constants.ok // anything but CONT: Haraka discards the mail without a DSN
  }
  const tenant = tenantOf(notes)
  const todo = hmail.todo?.rcpt_to ?? []
  // Refused at RCPT: Haraka lists the refused recipients (a partial delivery splits them into their own bounce).
  // Refused after DATA: the reply is about the whole message, which tells one dead mailbox only when it had one recipient.
  const refused = err?.bounced_rcpt ?? []
  if (suppression.enabled && tenant) suppressHardBounces(plugin, hmail, refused.length ? refused : todo.length === 1 ? todo : [])
  const mx = mxOf(hmail, err?.mx?.exchange)
  const source = sourceIp(hmail, mx)
  const response = responseOf(todo, reason)
  const expiredRetries = isExpiry(reason)
  hmail.lognotice(plugin, 'bounced', deliveryFields(hmail, {
    source_ip: source, result: 'bounced', mx, response, attempts: hmail.num_failures + (expiredRetries ? 0 : 1), ...(expiredRetries ? { expired: true } : {}),
  }))
  record(plugin, hmail, 'bounced', mx, response, source, todo.map(addr))
  if (!tenant || !hmail.todo?.mail_from?.user) return undefined // Haraka's own mail, or a bounce of a bounce (not sent)

  // Redis unreachable (the hot-path client fails within 500 ms): the bounce still goes, in the service's language
  const lang = (await tenantLanguage(getRedis(plugin), tenant).catch((e: Error) => {
    hmail.logwarn(plugin, `tenant language unknown (${e.message}): the bounce is in the service's language`, deliveryFields(hmail))
    return undefined
  })) ?? getSettings().language
  // Each recipient's line in the bounce ({extended_reason}): the receiving server's reply, and how long it was tried.
  const expired = expiredRetries ? { attempts: hmail.num_failures, ms: Date.now() - hmail.todo.queue_time } : undefined
  for (const r of todo) r.reason = recipientLine(r, reason, lang, expired)
  bounceInLanguage(hmail, { lang, tenant, tx: txOfDelivery(hmail.todo.uuid ?? hmail.uuid) })
  return undefined
}

/** Recipients that do not exist are suppressed for the tenant: its next RCPT to them is refused (posta-trap). */
function suppressHardBounces(plugin: Plugin, hmail: Outbound, rcpts: Recipient[]) {
  const tenant = tenantOf(deliveryNotes(hmail))
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
