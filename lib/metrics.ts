// The process's Prometheus metrics (README "Metrics"): counters and histograms that the SMTP and delivery paths
// bump in memory (never a Redis call per message), in one registry per process. plugins/posta-metrics serves them;
// under Haraka's cluster mode each worker holds its own and the master serves their sum (prom-client's aggregator).
// The few values that only one plugin knows (why an AUTH failed, how long a quota script took, which pool IP a
// delivery left from) are handed in by that plugin with a one-line call to a function of this module.
import { performance } from 'node:perf_hooks'
import type { RedisClient as Redis } from './redis'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** This process's metrics: the ones a cluster worker reports to the master. */
export const registry = new Registry()

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

const connections = new Counter({
  name: 'posta_smtp_connections_total', help: 'SMTP connections accepted, by local port', labelNames: ['port'], registers: [registry],
})
const sessions = new Gauge({
  name: 'posta_smtp_sessions', help: 'SMTP sessions open now', registers: [registry],
})
const authSuccesses = new Counter({
  name: 'posta_auth_successes_total', help: 'SMTP AUTH logins accepted', registers: [registry],
})
const authFailures = new Counter({
  name: 'posta_auth_failures_total', help: 'SMTP AUTH logins refused, by reason', labelNames: ['reason'], registers: [registry],
})
const refusals = new Counter({
  name: 'posta_smtp_refusals_total',
  help: 'SMTP commands refused by a plugin (a RCPT, a MAIL, a whole message at DATA ...), by reason, SMTP stage and type (permanent 5xx, temporary 4xx)',
  labelNames: ['reason', 'stage', 'type'], registers: [registry],
})
const accepted = new Counter({
  name: 'posta_messages_accepted_total', help: 'Messages queued for delivery (the client got its 250)', registers: [registry],
})
const acceptedRecipients = new Counter({
  name: 'posta_recipients_accepted_total', help: 'Recipients of the messages queued for delivery', registers: [registry],
})
const acceptedBytes = new Counter({
  name: 'posta_bytes_accepted_total', help: 'Bytes of the messages queued for delivery, as the client sent them', registers: [registry],
})
const deliveries = new Counter({
  name: 'posta_deliveries_total', help: 'Delivery attempts by source IP (pool IP, or "default") and result (delivered, deferred, bounced)',
  labelNames: ['source_ip', 'result'], registers: [registry],
})
const quotaSeconds = new Histogram({
  name: 'posta_quota_seconds', help: 'Time of the quota scripts in Redis, by operation (reserve at end of DATA, commit at the queue hand-off or delivery)',
  labelNames: ['op'], buckets: SECONDS, registers: [registry],
})
const redisSeconds = new Histogram({
  name: 'posta_redis_command_seconds', help: 'Round trip of the Redis commands of the SMTP and delivery paths, by command',
  labelNames: ['command'], buckets: SECONDS, registers: [registry],
})
const redisErrors = new Counter({
  name: 'posta_redis_command_errors_total', help: 'Redis commands of the SMTP and delivery paths that failed (unreachable, timeout, error reply), by command',
  labelNames: ['command'], registers: [registry],
})

// ---- SMTP sessions ----

export function connectionOpened(localPort: number): void {
  connections.inc({ port: String(localPort) })
  sessions.inc()
}

export function connectionClosed(): void {
  sessions.dec()
}

// ---- AUTH (posta-auth) ----

export function authSucceeded(): void {
  authSuccesses.inc()
}

/**
 * An AUTH refused, with its reason as a label word: `wrong_password`, `no_such_login`, `locked_ip`, `tenant_suspended`
 * ... (the words of posta-auth's own reasons, lower case, spaces as underscores; posta-auth's reasons are fixed words,
 * never client input, so the label has a handful of values).
 */
export function authFailed(reason: string): void {
  authFailures.inc({ reason: labelWord(reason) })
}

// ---- refusals (observed in posta-metrics' deny hook) ----

/** What a refusal was about. */
export type RefusalReason = 'quota' | 'trap' | 'suppression' | 'auth' | 'relay' | 'tenant' | 'policy'

/** Why each Posta plugin refuses, when it has one reason; posta-relay refuses for two (MAIL: auth, RCPT: relay). */
const PLUGIN_REASONS: Record<string, RefusalReason> = {
  'posta-quota': 'quota',
  'posta-trap': 'trap',
  'posta-auth': 'auth',
  'posta-limits': 'policy',
}

/** The refusals a plugin named itself (its plugin has more than one reason), until the deny hook reads them. */
const named = new WeakMap<object, RefusalReason>()

/**
 * Names the reason of the refusal this plugin is about to answer on this connection, when its plugin refuses for more
 * than one reason (posta-trap: a trap, a suppressed recipient, a tenant that is not active). One line before the
 * `next(DENY ...)`.
 */
export function refusing(connection: object, reason: RefusalReason): void {
  named.set(connection, reason)
}

/** The reason of a refusal Haraka's deny hook reports: named by the plugin, else its plugin's, else policy. */
export function refusalReason(connection: object, plugin: string, stage: string): RefusalReason {
  const own = named.get(connection)
  named.delete(connection)
  if (own) return own
  if (plugin === 'posta-relay') return stage === 'rcpt' ? 'relay' : 'auth'
  return PLUGIN_REASONS[plugin] ?? 'policy'
}

export function refused(reason: RefusalReason, stage: string, permanent: boolean): void {
  refusals.inc({ reason, stage: labelWord(stage), type: permanent ? 'permanent' : 'temporary' })
}

// ---- accepted messages (posta-metrics' queue_ok hook) ----

export function messageAccepted(bytes: number, recipients: number): void {
  accepted.inc()
  acceptedRecipients.inc(recipients)
  if (bytes > 0) acceptedBytes.inc(bytes)
}

// ---- deliveries (posta-outbound, which knows the source IP of each attempt) ----

export type DeliveryOutcome = 'delivered' | 'deferred' | 'bounced'

export function deliveryAttempted(sourceIp: string, result: DeliveryOutcome): void {
  deliveries.inc({ source_ip: sourceIp, result })
}

// ---- latencies ----

/** A quota script's round trip (posta-quota): `reserve` or `commit`, in milliseconds. */
export function quotaTimed(op: 'reserve' | 'commit', ms: number): void {
  quotaSeconds.observe({ op }, ms / 1000)
}

interface SentCommand {
  name: string
  promise: Promise<unknown>
}

const INSTRUMENTED = Symbol.for('posta.metrics.redis')

/** Each command's label and histogram child, made once per command name as ioredis spells it. */
const redisTimers = new Map<string, { command: string; timer: { observe(v: number): void } }>()
function redisTimer(name: string) {
  let t = redisTimers.get(name)
  if (!t) {
    const command = String(name || 'unknown').toLowerCase()
    redisTimers.set(name, (t = { command, timer: redisSeconds.labels({ command }) }))
  }
  return t
}

/**
 * Times every command this client sends (pipelined and scripted ones included) into posta_redis_command_seconds:
 * one clock read when it is sent and one when its reply comes, nothing sent to Redis. Idempotent.
 */
export function timeRedisCommands(redis: Redis): Redis {
  const r = redis as Redis & { [INSTRUMENTED]?: true; sendCommand: (cmd: SentCommand, ...rest: unknown[]) => unknown }
  if (r[INSTRUMENTED]) return redis
  r[INSTRUMENTED] = true
  const send = r.sendCommand.bind(r)
  r.sendCommand = (cmd: SentCommand, ...rest: unknown[]) => {
    const { command, timer } = redisTimer(cmd?.name)
    // the client's own housekeeping at connect (CLIENT SETINFO, which older servers refuse) is not the mail path's
    if (command === 'client') return send(cmd, ...rest)
    const t0 = performance.now()
    const seconds = () => (performance.now() - t0) / 1000
    cmd?.promise?.then(
      () => timer.observe(seconds()),
      (err: Error) => {
        timer.observe(seconds())
        // NOSCRIPT: ioredis sends the script itself right after (EVAL): not a failure of the command
        if (!String(err?.message).startsWith('NOSCRIPT')) redisErrors.inc({ command })
      },
    )
    return send(cmd, ...rest)
  }
  return redis
}

/** A fixed reason or stage as a label word: lower case, runs of other characters as one underscore. */
function labelWord(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '') || 'unknown'
}
