// posta-quota: the monthly traffic quota. A message costs its size (as the client sent it in DATA: dot-stuffing
// removed, without the final "." line) times its accepted recipients.
// MAIL FROM SIZE= too big for what is left: refused at once. End of DATA: reserve atomically, or refuse.
// Queued: commit. Not queued for any reason: release. Redis unreachable: 451 4.3.0, never an unaccounted 250.
import { commit, quotaState, release, reserve, DEFAULT_QUOTA, type QuotaOptions, type Reservation } from '../../lib/quota'
import { formatDay, monthEnd } from '../../lib/period'
import { keys } from '../../lib/keys'
import { formatSize } from '../../lib/size'
import { noticeNotes, setSize, tenantOf } from '../../lib/submission'
import { constants, DSN, getRedis, getSettings, guard, messageFields, type Connection, type Next, type Plugin, type Transaction } from '../shared/haraka'
import { LatencyStats } from '../shared/stats'

interface QuotaConfig extends QuotaOptions {
  warnings: boolean
  from: string
  statsInterval: number
}

let cfg: QuotaConfig
const reserveStats = new LatencyStats()
const commitStats = new LatencyStats()
let statsTimer: NodeJS.Timeout | null = null

/** Per-transaction state; kept off transaction.notes, which is serialised into every queue file. */
interface TxQuota {
  stuffed: number
  reservation?: Reservation
  committed?: boolean
}
const state = new WeakMap<Transaction, TxQuota>()

export function register(this: Plugin) {
  load_quota_ini.call(this)
}

function load_quota_ini(this: Plugin) {
  const ini = this.config.get('posta-quota.ini', { booleans: ['+warnings.enabled'] }, () => load_quota_ini.call(this))
  const num = (v: unknown, d: number) => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? d : Number(v))
  const settings = getSettings()
  cfg = {
    timeZone: settings.timeZone,
    reservationMs: num(ini.main?.reservation_seconds, DEFAULT_QUOTA.reservationMs / 1000) * 1000,
    retentionDays: num(ini.main?.retention_days, DEFAULT_QUOTA.retentionDays),
    thresholds: String(ini.warnings?.thresholds ?? '80,90,100').split(',').map(Number).filter((n) => n > 0 && n <= 1000),
    warnings: ini.warnings?.enabled !== false,
    from: ini.warnings?.from || `postmaster@${settings.serviceDomain}`,
    statsInterval: num(ini.main?.stats_interval, 300),
  }
}

function startStats(plugin: Plugin) {
  if (statsTimer || cfg.statsInterval <= 0) return
  statsTimer = setInterval(() => {
    if (reserveStats.count() === 0) return
    plugin.loginfo(plugin, 'quota latency', {
      reserve_n: reserveStats.count(), reserve_p50_ms: reserveStats.p(0.5), reserve_p99_ms: reserveStats.p(0.99),
      commit_n: commitStats.count(), commit_p50_ms: commitStats.p(0.5), commit_p99_ms: commitStats.p(0.99),
    })
    reserveStats.reset()
    commitStats.reset()
  }, cfg.statsInterval * 1000)
  statsTimer.unref()
}

export function hook_init_master(this: Plugin, next: Next) {
  getRedis(this)
  startStats(this)
  next()
}
export function hook_init_child(this: Plugin, next: Next) {
  getRedis(this)
  startStats(this)
  next()
}

const unavailable = () => DSN.create(451, 'Traffic accounting is temporarily unavailable, please try again later', 3, 0)

/** A size for a reply: rounded for people, exact for when the two figures compared are close. */
const exact = (n: number) => (n < 1000 ? `${n} bytes` : `${formatSize(n)} (${n} bytes)`)

function overQuotaText(used: number, limit: number, resetsAt: Date, what: string): string {
  return `Monthly traffic quota exceeded: ${what}, and ${exact(Math.max(0, limit - used))} of your ` +
    `${formatSize(limit)} are left this month (${formatSize(used)} used). The allowance resets on ${formatDay(resetsAt, cfg.timeZone)}.`
}

/**
 * The last figures seen per tenant (from reservations and checks), so that a SIZE= that plainly fits costs no Redis
 * call at MAIL FROM. Only a possible refusal is checked against Redis; the exact, atomic check is the reservation at
 * the end of DATA, which nothing skips.
 */
const lastSeen = new Map<string, { used: number; limit: number; at: number }>()
const LAST_SEEN_MS = 2000

export const hook_mail = guard('quota check failed', async function (this: Plugin, next: Next, connection: Connection, params: [unknown, Record<string, string>]) {
  const tenant = tenantOf(connection.transaction?.notes)
  const declared = Number(params[1]?.SIZE ?? params[1]?.size)
  if (!tenant || !(declared > 0)) return next()
  const seen = lastSeen.get(tenant)
  if (seen && Date.now() - seen.at < LAST_SEEN_MS && declared <= seen.limit - seen.used) return next()
  let s
  try {
    s = await quotaState(getRedis(this), cfg, tenant)
  } catch (err) {
    connection.logerror(this, `quota backend unavailable: ${(err as Error).message}`, messageFields(connection))
    return next(constants.denysoft, unavailable())
  }
  if (s.found) lastSeen.set(tenant, { used: s.used + s.pending, limit: s.limit, at: Date.now() })
  if (s.found && declared > s.limit - s.used - s.pending) {
    connection.lognotice(this, 'over quota at MAIL FROM', { ...messageFields(connection), declared_size: declared, used: s.used, pending: s.pending, limit: s.limit })
    return next(constants.deny, DSN.create(552, overQuotaText(s.used + s.pending, s.limit, s.resetsAt, `this message declares ${exact(declared)}`), 2, 3))
  }
  next()
})

export function hook_data(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  if (tx && tenantOf(tx.notes)) {
    // Count dot-stuffed lines: every DATA line starting with "." carries one stuffing dot (RFC 5321 4.5.2).
    const q: TxQuota = { stuffed: 0 }
    state.set(tx, q)
    const add = (tx as unknown as { add_data: (line: Buffer) => void }).add_data.bind(tx)
    ;(tx as unknown as { add_data: (line: Buffer) => void }).add_data = (line: Buffer) => {
      if (line[0] === 0x2e) q.stuffed++
      add(line)
    }
  }
  next()
}

/** Size as the client sent it: data_bytes counts raw lines including stuffing dots and the final ".\r\n". */
function messageSize(tx: Transaction, q: TxQuota): number {
  return Math.max(0, tx.data_bytes - 3 - q.stuffed)
}

export const hook_data_post = guard('quota reservation failed', async function (this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const tenant = tenantOf(tx?.notes)
  const q = tx && state.get(tx)
  if (!tx || !tenant || !q) return next()
  const size = messageSize(tx, q)
  setSize(tx.notes, size)
  const recipients = tx.rcpt_to.length
  const t0 = process.hrtime.bigint()
  let r
  try {
    r = await reserve(getRedis(this), cfg, tenant, tx.uuid, size, recipients)
  } catch (err) {
    connection.logerror(this, `quota backend unavailable: ${(err as Error).message}`, messageFields(connection))
    return next(constants.denysoft, unavailable())
  }
  reserveStats.add(Number(process.hrtime.bigint() - t0) / 1e6)
  if (!r.ok && r.reason === 'unknown-tenant') {
    connection.logerror(this, 'tenant has no quota record', messageFields(connection))
    return next(constants.denysoft, unavailable())
  }
  if (!r.ok) {
    lastSeen.set(tenant, { used: r.used, limit: r.limit, at: Date.now() })
    connection.lognotice(this, 'over quota', { ...messageFields(connection), size, rcpts: recipients, needed: r.needed, used: r.used, limit: r.limit })
    const what = recipients > 1
      ? `this message needs ${exact(r.needed)}, its size times ${recipients} recipients`
      : `this message needs ${exact(r.needed)}`
    return next(constants.deny, DSN.create(552, overQuotaText(r.used, r.limit, r.resetsAt, what), 2, 3))
  }
  q.reservation = r.reservation
  if (lastSeen.size > 10000) lastSeen.clear()
  if (r.used > 0) lastSeen.set(tenant, { used: r.used, limit: r.limit, at: Date.now() })
  connection.logdebug(this, 'quota reserved', { ...messageFields(connection), bytes: r.reservation.bytes, used: r.used, limit: r.limit })
  next()
})

export function hook_queue_ok(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const q = tx && state.get(tx)
  if (!tx || !q?.reservation || q.committed) return next()
  q.committed = true
  const reservation = q.reservation
  const fields = messageFields(connection)
  const t0 = process.hrtime.bigint()
  // The message is queued and its bytes are held by the reservation until it turns into counted traffic, so the
  // quota stays exact while the 250 goes out at once. A failed commit is retried in the background and, at the
  // last, logged with what an operator needs to reconcile by hand.
  next()
  void commitWithRetry(this, reservation, fields).then((res) => {
    commitStats.add(Number(process.hrtime.bigint() - t0) / 1e6)
    if (!res) return
    connection.logdebug(this, 'traffic counted', { ...fields, bytes: reservation.bytes, used: res.used, limit: res.limit })
    for (const pct of res.crossed) void warn(this, reservation.tenant, pct, res.used, res.limit)
  })
}

async function commitWithRetry(plugin: Plugin, r: Reservation, fields: Record<string, unknown>) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await commit(getRedis(plugin), cfg, r)
    } catch (err) {
      if (attempt >= 5) {
        plugin.logcrit(plugin, 'quota commit FAILED: message queued but not counted, reconcile by hand', {
          ...fields, bytes: r.bytes, month: r.month, error: (err as Error).message,
        })
        return null
      }
      plugin.logerror(plugin, `quota commit failed (attempt ${attempt}), retrying: ${(err as Error).message}`, fields)
      await new Promise((res) => setTimeout(res, 200 * 2 ** attempt))
    }
  }
}

export function hook_reset_transaction(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const q = tx && state.get(tx)
  if (tx && q?.reservation && !q.committed) {
    // Refused later, queue failure or disconnect: the traffic was never used.
    const r = q.reservation
    q.reservation = undefined
    release(getRedis(this), r)
      .then(() => connection.logdebug(this, 'quota released', { ...messageFields(connection), bytes: r.bytes }))
      .catch((err: Error) => connection.logwarn(this, `quota release failed, the reservation expires by itself: ${err.message}`, messageFields(connection)))
  }
  next()
}

async function warn(plugin: Plugin, tenant: string, pct: number, used: number, limit: number) {
  const fields = { tenant, percent: pct, used, limit }
  plugin.lognotice(plugin, `tenant crossed ${pct}% of its monthly traffic`, fields)
  if (!cfg.warnings) return
  try {
    const contact = await getRedis(plugin).hget(keys.tenant(tenant), 'contact')
    if (!contact) return
    const resets = formatDay(monthEnd(new Date(), cfg.timeZone), cfg.timeZone)
    const body = [
      `From: Posta <${cfg.from}>`,
      `To: <${contact}>`,
      `Subject: Posta: ${tenant} has used ${pct}% of its monthly traffic`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <quota-${tenant}-${Date.now()}-${pct}@${cfg.from.split('@')[1]}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Auto-Submitted: auto-generated',
      '',
      `Your account ${tenant} has used ${formatSize(used)} of its ${formatSize(limit)} monthly traffic (${Math.floor((used / limit) * 100)}%).`,
      pct >= 100
        ? `New messages are refused until the allowance resets on ${resets}, or until a top-up is added.`
        : `When the allowance is used up, new messages are refused until it resets on ${resets}.`,
      '',
    ].join('\r\n')
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const outbound = (plugin as any).haraka_require('outbound')
    outbound.send_email(cfg.from, contact, body, (code: number, msg: string) => {
      if (code === constants.ok) plugin.loginfo(plugin, 'quota notice queued', { ...fields, to: contact })
      else plugin.logerror(plugin, `quota notice not queued: ${msg}`, { ...fields, to: contact })
    }, { notes: noticeNotes('quota', tenant) })
  } catch (err) {
    plugin.logerror(plugin, `quota notice failed: ${(err as Error).message}`, fields)
  }
}
