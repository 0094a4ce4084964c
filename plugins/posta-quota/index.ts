// posta-quota: the monthly traffic quota. A message costs its size (as the client sent it in DATA: dot-stuffing
// removed, without the final "." line) times its accepted recipients.
// MAIL FROM SIZE= too big for what is left: refused at once. End of DATA: reserve atomically, or refuse.
// This plugin owns the queue hand-off (queue_outbound, after every other queue_outbound hook): it writes the queue
// file itself and commits in the callback, whatever the client did meanwhile; the reservation travels in the queue
// file, and a delivery of a message whose commit was lost commits it first (the commit is idempotent).
// Not queued for any reason: released at once. Redis unreachable: 451 4.3.0, never an unaccounted 250.
// On a Sentinel set a commit counts once a replica confirms it (WAIT, after the 250): see docs/redis.md.
// The whole life of a reservation: docs/quota.md.
import { commit, quotaState, release, replicaConfirmer, reservationFor, reserve, type CommitResult, type QuotaOptions, type Reservation } from '../../lib/quota'
import { connectHotPath, isSentinelClient, type RedisClient } from '../../lib/redis'
import { formatDay, monthEnd } from '../../lib/period'
import { QUOTA_INI } from '../../lib/inis'
import { keys } from '../../lib/keys'
import { quotaTimed } from '../../lib/metrics'
import { formatSize } from '../../lib/size'
import { noticeNotes, reservationOf, setReservation, setSize, tenantOf } from '../../lib/submission'
import { constants, debugOn, deliveryLogFields, DSN, getRedis, getSettings, guard, messageFields, type Connection, type HMailItem, type Next, type Plugin, type Transaction } from '../shared/haraka'
import { chained } from '../shared/chain'
import { deliveryNotes } from '../shared/submission'
import { loadIni } from '../shared/settings'
import { LatencyStats } from '../shared/stats'

interface QuotaConfig extends QuotaOptions {
  warnings: boolean
  from: string
  statsInterval: number
  /** A delivery whose message could not be counted yet (Redis unreachable) waits this long before trying again. */
  commitRetrySeconds: number
  /** On a Sentinel set: how long a commit waits for a replica to confirm it (WAIT 1); 0 = not at all. */
  replicaWaitMs: number
  /** A delivery no replica confirmed the count of leaves anyway this long after its queueing (counted on the master). */
  replicaHoldMs: number
}

let cfg: QuotaConfig
const reserveStats = new LatencyStats()
const commitStats = new LatencyStats()
let statsTimer: NodeJS.Timeout | null = null

/**
 * On a Sentinel set with replica_wait_ms > 0: confirms commits through a client of its own (lib/quota.ts
 * replicaConfirmer: WAIT blocks its connection, which must not be the hot path's). Null elsewhere.
 */
let confirm: ReturnType<typeof replicaConfirmer> | null = null
let confirmClient: RedisClient | null = null
let confirmWaitMs = 0
function confirmer(plugin: Plugin): ReturnType<typeof replicaConfirmer> | null {
  if (cfg.replicaWaitMs <= 0 || !isSentinelClient(getRedis(plugin))) return null
  if (confirm && confirmWaitMs === cfg.replicaWaitMs) return confirm
  const settings = getSettings()
  if (!confirmClient) {
    confirmClient = connectHotPath(settings.redisUrl)
    // its errors are the hot path's too (getRedis logs them); a check that fails says so itself
    confirmClient.on('error', () => {})
  }
  confirmWaitMs = cfg.replicaWaitMs
  confirm = replicaConfirmer(confirmClient, settings.node, cfg.replicaWaitMs)
  return confirm
}

/**
 * Where a transaction's reservation stands. reserving: the script is running; reserved: held, not handed to the
 * queue; handoff: the queue file is being written (only the hand-off's callback decides then); queued: in the
 * queue, committed or to be committed at delivery; released: given back.
 */
type Phase = 'none' | 'reserving' | 'reserved' | 'handoff' | 'queued' | 'released'

/** Per-transaction state of this process; what must survive the queue is in the notes (lib/submission.ts). */
interface TxQuota {
  stuffed: number
  phase: Phase
  reservation?: Reservation
  /** The transaction was reset (RSET, refusal, disconnect) while something was in flight. */
  ended: boolean
}
const state = new WeakMap<Transaction, TxQuota>()

export function register(this: Plugin) {
  load_quota_ini.call(this)
  // Last of the queue_outbound hooks (priority 100): those that change the message (dkim signing) run first, and
  // none of them may answer OK themselves (reference/haraka.md).
  this.register_hook('queue_outbound', 'queue_handoff', 100)
}

function load_quota_ini(this: Plugin) {
  loadIni(this, QUOTA_INI, ({ values: v }) => {
    const settings = getSettings()
    cfg = {
      timeZone: settings.timeZone,
      reservationMs: v.main.reservation_seconds * 1000,
      committedMs: v.main.committed_days * 86_400_000,
      commitRetrySeconds: v.main.commit_retry_seconds,
      replicaWaitMs: v.main.replica_wait_ms,
      replicaHoldMs: v.main.replica_hold_seconds * 1000,
      retentionDays: v.main.retention_days,
      thresholds: v.warnings.thresholds,
      warnings: v.warnings.enabled,
      from: v.warnings.from || `postmaster@${settings.serviceDomain}`,
      statsInterval: v.main.stats_interval,
    }
  })
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
  confirmer(this)
  startStats(this)
  next()
}
export function hook_init_child(this: Plugin, next: Next) {
  getRedis(this)
  confirmer(this)
  startStats(this)
  next()
}

const unavailable = () => DSN.create(451, 'Traffic accounting is temporarily unavailable, please try again later', 3, 0)

/** A size for a reply: rounded for people, exact for when the two figures compared are close. */
const exact = (n: number) => (n < 1000 ? `${n} bytes` : `${formatSize(n)} (${n} bytes)`)

/**
 * The refusal of a message that does not fit. Permanent (552 5.2.3) when it does not fit beside the month's counted
 * traffic alone; when messages still being sent hold the room (they may yet fail and be released), temporary
 * (452 4.2.3 at MAIL FROM, 451 4.2.3 at the end of DATA): the client keeps the message and tries again.
 */
function overQuota(f: { committed: number; pending: number; limit: number; needed: number; resetsAt: Date }, what: string, temporaryCode: number) {
  const left = Math.max(0, f.limit - f.committed - f.pending)
  const held = f.pending > 0 ? `, ${exact(f.pending)} held by messages still being sent` : ''
  const figures = `${exact(left)} of your ${formatSize(f.limit)} are left this month (${exact(f.committed)} used${held})`
  if (f.committed + f.needed > f.limit) {
    return DSN.create(552, `Monthly traffic quota exceeded: ${what}, and ${figures}. The allowance resets on ${formatDay(f.resetsAt, cfg.timeZone)}.`, 2, 3)
  }
  return DSN.create(temporaryCode, `Monthly traffic quota nearly used: ${what}, and ${figures}. Please try again in a few minutes.`, 2, 3)
}

/**
 * The last figures seen per tenant (from reservations and checks), so that a SIZE= that plainly fits costs no Redis
 * call at MAIL FROM. Only a possible refusal is checked against Redis; the exact, atomic check is the reservation at
 * the end of DATA, which nothing skips.
 */
const lastSeen = new Map<string, { used: number; limit: number; at: number }>()
const LAST_SEEN_MS = 2000

export const hook_mail = chained(guard('quota check failed', async function (this: Plugin, next: Next, connection: Connection, params: [unknown, Record<string, string>]) {
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
    const permanent = s.used + declared > s.limit
    return next(permanent ? constants.deny : constants.denysoft,
      overQuota({ committed: s.used, pending: s.pending, limit: s.limit, needed: declared, resetsAt: s.resetsAt }, `this message declares ${exact(declared)}`, 452))
  }
  next()
}))

export const hook_data = chained(function hook_data(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  if (tx && tenantOf(tx.notes)) {
    // Count dot-stuffed lines: every DATA line starting with "." carries one stuffing dot (RFC 5321 4.5.2).
    const q: TxQuota = { stuffed: 0, phase: 'none', ended: false }
    state.set(tx, q)
    const add = (tx as unknown as { add_data: (line: Buffer) => void }).add_data.bind(tx)
    ;(tx as unknown as { add_data: (line: Buffer) => void }).add_data = (line: Buffer) => {
      if (line[0] === 0x2e) q.stuffed++
      add(line)
    }
  }
  next()
})

/** Size as the client sent it: data_bytes counts raw lines including stuffing dots and the final ".\r\n". */
function messageSize(tx: Transaction, q: TxQuota): number {
  return Math.max(0, tx.data_bytes - 3 - q.stuffed)
}

export const hook_data_post = chained(guard('quota reservation failed', async function (this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const tenant = tenantOf(tx?.notes)
  const q = tx && state.get(tx)
  if (!tx || !tenant || !q) return next()
  const size = messageSize(tx, q)
  setSize(tx.notes, size)
  const recipients = tx.rcpt_to.length
  const fields = messageFields(connection)
  const now = new Date()
  const t0 = process.hrtime.bigint()
  q.phase = 'reserving'
  let r
  try {
    r = await reserve(getRedis(this), cfg, tenant, tx.uuid, size, recipients, now)
  } catch (err) {
    q.phase = 'none'
    // A timeout is only this client giving up: Redis may still run the script. The release goes out on the same
    // connection after it, so Redis runs it after the reserve, and the retry of this message finds its room.
    releaseWithRetry(this, reservationFor(cfg, tenant, tx.uuid, size, recipients, now), fields, 'its reservation had no answer')
    connection.logerror(this, `quota backend unavailable: ${(err as Error).message}`, fields)
    return next(constants.denysoft, unavailable())
  }
  reserveStats.add(Number(process.hrtime.bigint() - t0) / 1e6)
  quotaTimed('reserve', Number(process.hrtime.bigint() - t0) / 1e6)
  if (!r.ok && r.reason === 'unknown-tenant') {
    q.phase = 'none'
    connection.logerror(this, 'tenant has no quota record', fields)
    return next(constants.denysoft, unavailable())
  }
  if (!r.ok) {
    q.phase = 'none'
    lastSeen.set(tenant, { used: r.used, limit: r.limit, at: Date.now() })
    connection.lognotice(this, 'over quota', { ...fields, size, rcpts: recipients, needed: r.needed, used: r.committed, pending: r.pending, limit: r.limit })
    const what = recipients > 1
      ? `this message needs ${exact(r.needed)}, its size times ${recipients} recipients`
      : `this message needs ${exact(r.needed)}`
    return next(r.permanent ? constants.deny : constants.denysoft, overQuota(r, what, 451))
  }
  q.reservation = r.reservation
  // Into the notes, hence into every queue file: a delivery can count the message if the hand-off's commit is lost.
  setReservation(tx.notes, r.reservation)
  if (q.ended) {
    // The client left while the script ran: Haraka will not queue this transaction.
    q.phase = 'released'
    releaseWithRetry(this, r.reservation, fields, 'the transaction ended while it was reserved')
    return next()
  }
  q.phase = 'reserved'
  if (lastSeen.size > 10000) lastSeen.clear()
  if (r.used > 0) lastSeen.set(tenant, { used: r.used, limit: r.limit, at: Date.now() })
  if (debugOn()) connection.logdebug(this, 'quota reserved', { ...fields, bytes: r.reservation.bytes, used: r.committed, pending: r.pending, limit: r.limit })
  next()
}))

/**
 * The queue hand-off (registered as queue_outbound, last): writes the queue file through Haraka's outbound and
 * answers from its callback, which runs whatever the client does meanwhile (Haraka skips queue_ok for a client
 * that has gone). Queued: committed before the 250 (or, when Redis fails at that moment, at delivery). Not
 * queued: released, and a temporary 451 4.3.0 (Haraka would turn a failed queue write into a permanent 550).
 */
export function queue_handoff(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const q = tx && state.get(tx)
  if (!tx || !q?.reservation || q.phase !== 'reserved') return next() // not ours: Haraka's own hand-off
  const r = q.reservation
  const fields = messageFields(connection)
  q.phase = 'handoff'
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const outbound = (this as any).haraka_require('outbound')
  let answered = false
  const plugin = this
  outbound.send_trans_email(tx, (code: number, msg: unknown) => {
    if (answered) return
    answered = true
    if (code !== constants.ok) {
      q.phase = 'released'
      releaseWithRetry(plugin, r, fields, 'the queue write failed')
      connection.logerror(plugin, `queue write failed: ${(msg as Error)?.message ?? msg}`, fields)
      return next(constants.denysoft, DSN.create(451, 'The message could not be queued, please try again later', 3, 0))
    }
    q.phase = 'queued'
    // the 250 follows the commit's answer, not a replica's confirmation (countOnce: that runs after it)
    void countOnce(plugin, r, fields, 'queued').committed.then((committed) => {
      if (!committed) plugin.logwarn(plugin, 'quota commit failed at the queue hand-off: the message is counted before its delivery', { ...fields, bytes: r.bytes })
      next(constants.ok, 'Message Queued')
    })
  })
}

/** Another plugin queued the message itself (it answered OK on queue_outbound before us): commit now. */
export const hook_queue_ok = chained(function hook_queue_ok(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const q = tx && state.get(tx)
  if (!tx || !q?.reservation || q.phase !== 'reserved') return next()
  q.phase = 'queued'
  void countOnce(this, q.reservation, messageFields(connection), 'queued').outcome
  next()
})

export const hook_reset_transaction = chained(function hook_reset_transaction(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const q = tx && state.get(tx)
  if (q) {
    q.ended = true
    // reserving: the reservation is released when its answer comes; handoff: the hand-off's callback decides.
    if (q.phase === 'reserved' && q.reservation) {
      q.phase = 'released'
      releaseWithRetry(this, q.reservation, messageFields(connection), 'the transaction ended without a queue')
    }
  }
  next()
})

/**
 * Delivery (outbound send_email, every attempt): a message that carries a reservation is counted before it leaves.
 * Usually the hand-off counted it already (this process remembers); after a crash or a lost commit the idempotent
 * commit counts it now, or finds it counted. When Redis cannot say, the delivery waits: no message leaves uncounted.
 * On a Sentinel set it also waits, committing again at each attempt, while no replica confirms the count (a failover
 * may yet drop it), for up to replica_hold_seconds after the queueing; then it leaves, counted on the master.
 */
export const hook_send_email = chained(function hook_send_email(this: Plugin, next: Next, hmail: HMailItem) {
  const r = reservationOf(deliveryNotes(hmail))
  // An earlier attempt failed after passing here: it was counted then.
  if (!r || hmail.num_failures > 0) return next()
  const fields = { ...deliveryLogFields(hmail), bytes: r.bytes }
  countOnce(this, r, fields, 'delivery').outcome.then(
    (outcome) => {
      if (outcome === 'counted') return next()
      if (outcome === 'unconfirmed' && Date.now() - hmail.todo.queue_time >= cfg.replicaHoldMs) {
        // past a failover's window: the count is on the master now, as on a single server
        hmail.logwarn(this, `message counted on the master, no replica confirmed it for ${cfg.replicaHoldMs / 1000}s: delivered`, fields)
        return next()
      }
      hmail.logwarn(this, `message not counted yet (traffic accounting unavailable, or no replica confirmed the count): delivery waits ${cfg.commitRetrySeconds}s`, fields)
      next(constants.delay, cfg.commitRetrySeconds)
    },
    (err: Error) => {
      hmail.logerror(this, `quota check before delivery failed: ${err.message}; delivery waits ${cfg.commitRetrySeconds}s`, fields)
      next(constants.delay, cfg.commitRetrySeconds)
    },
  )
})

/**
 * Messages this process counted (or is counting), by id: a delivery that follows the hand-off in the same process
 * needs no Redis call. Bounded; an id forgotten is asked of Redis again (the commit is idempotent). On a Sentinel set
 * an id stays only once a replica confirmed its commit: an orderly failover can drop what the old master
 * acknowledged, and a message dropped from here is committed again at its delivery (docs/redis.md).
 */
const counting = new Map<string, Promise<boolean>>()
const COUNTING_MAX = 100_000

/**
 * Commits once (idempotent in Redis). `committed`: the commit's answer (true: counted now or before; false: it
 * failed), what the hand-off's 250 waits for. `outcome`: what a delivery waits for: counted (committed and, on a
 * Sentinel set with replica_wait_ms > 0, confirmed by a replica: WAIT, after the commit's answer), unconfirmed
 * (committed, no replica confirmed it) or failed. A commit not counted so is forgotten here: the delivery commits again.
 */
type Outcome = 'counted' | 'unconfirmed' | 'failed'
function countOnce(plugin: Plugin, r: Reservation, fields: Record<string, unknown>, at: 'queued' | 'delivery'): { committed: Promise<boolean>; outcome: Promise<Outcome> } {
  const known = counting.get(r.id)
  if (known) {
    const again = known.then((ok) => (ok ? 'counted' as const : countOnce(plugin, r, fields, at).outcome))
    return { committed: again.then((o) => o !== 'failed'), outcome: again }
  }
  const redis = getRedis(plugin)
  const t0 = process.hrtime.bigint()
  const committed = commit(redis, cfg, r).then(
    (res: CommitResult) => {
      commitStats.add(Number(process.hrtime.bigint() - t0) / 1e6)
      quotaTimed('commit', Number(process.hrtime.bigint() - t0) / 1e6)
      if (res.counted) {
        plugin.logdebug(plugin, at === 'delivery' ? 'traffic counted at delivery' : 'traffic counted', { ...fields, bytes: r.bytes, used: res.used, limit: res.limit })
        for (const pct of res.crossed) void warn(plugin, r.tenant, pct, res.used, res.limit)
      }
      return res
    },
    (err: Error) => {
      plugin.logerror(plugin, `quota commit failed (${at}): ${err.message}`, { ...fields, bytes: r.bytes, month: r.month })
      return null
    },
  )
  const outcome = committed.then(async (res): Promise<Outcome> => {
    if (!res) return 'failed'
    const check = confirmer(plugin)
    if (!check) return 'counted'
    const c = await check(res)
    if (c.confirmed) return 'counted'
    const then = at === 'queued' ? 'committed again at its delivery' : 'committed again at its next attempt'
    plugin.logwarn(plugin, `quota commit not confirmed by a replica (${c.why}): the message is ${then}`, { ...fields, bytes: r.bytes, month: r.month, replicas: c.replicas })
    return 'unconfirmed'
  })
  const entry: Promise<boolean> = outcome.then((o) => {
    if (o !== 'counted' && counting.get(r.id) === entry) counting.delete(r.id)
    return o === 'counted'
  })
  if (counting.size >= COUNTING_MAX) counting.delete(counting.keys().next().value as string)
  counting.set(r.id, entry)
  return { committed: committed.then((res) => res !== null), outcome: entry.then(() => outcome) }
}

/**
 * Gives a reservation back, retrying while Redis is unreachable until the reservation would have expired by
 * itself (reservation_seconds): the tenant's room is free again as soon as Redis can be told.
 */
function releaseWithRetry(plugin: Plugin, r: Reservation, fields: Record<string, unknown>, why: string) {
  const deadline = Date.now() + cfg.reservationMs
  const attempt = (n: number) => {
    release(getRedis(plugin), r).then(
      () => plugin.logdebug(plugin, `quota released: ${why}`, { ...fields, bytes: r.bytes }),
      (err: Error) => {
        const wait = Math.min(5000, 250 * 2 ** n)
        if (Date.now() + wait > deadline) {
          plugin.logwarn(plugin, `quota release failed, the reservation expires by itself: ${err.message}`, { ...fields, bytes: r.bytes })
          return
        }
        setTimeout(() => attempt(n + 1), wait).unref()
      },
    )
  }
  attempt(0)
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
      // skip_plugins: Haraka's hook runner reads notes.skip_plugins of the notice's transaction (a plain object here)
      // as soon as any plugin has a pre_send_trans_email hook (posta-outbound has one)
    }, { notes: { ...noticeNotes('quota', tenant), skip_plugins: [] } })
  } catch (err) {
    plugin.logerror(plugin, `quota notice failed: ${(err as Error).message}`, fields)
  }
}
