// The small part of Haraka's API that Posta's plugins use (Haraka ships no types, #3470),
// and the helpers every plugin shares: the per-process Redis client, settings, and the async-hook guard.
import type { RedisClient as Redis } from '../../lib/redis'
import { timeRedisCommands } from '../../lib/metrics'
import { connectHotPath, describeRedisUrl } from '../../lib/redis'
import { loadSettings, type Settings } from '../../lib/settings'
import { loginOf, senderFields, tenantOf } from '../../lib/submission'

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const constants: {
  cont: number; stop: number; deny: number; denysoft: number; denydisconnect: number; disconnect: number
  ok: number; delay: number; denysoftdisconnect: number
  /** A connection's states (connection.state): DISCONNECTING and after, the client is gone. */
  connection: { state: { CMD: number; DISCONNECTING: number; DISCONNECTED: number } }
} = require('haraka-constants')
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const DSN: { create(code: number, msg: string, subject?: number, detail?: number): unknown } = require('haraka-dsn')

export type Next = (code?: number, msg?: unknown) => void

type LogFn = (...args: unknown[]) => void
/**
 * Haraka's log methods: `x.loginfo(plugin, 'what happened', { tenant, client_ip, ... })`. Pass fields as a plain
 * object, never inside the message string: posta-log escapes every `=` of the message (README "Logs"), so a
 * `key=${value}` written into the text is no field.
 */
export interface Loggable {
  logdebug: LogFn; loginfo: LogFn; lognotice: LogFn; logwarn: LogFn; logerror: LogFn; logcrit: LogFn
}

export interface Address {
  user: string | null
  host: string | null
  original: string
  /** `user@host` (a getter in @haraka/email-address); empty for the null sender. */
  readonly address: string
  format(): string
}

/** An envelope address for a log line: user@host, or <> for the null sender. */
export function addr(a: Address | undefined | null): string {
  return a?.address || '<>'
}

export interface Transaction extends Loggable {
  uuid: string
  notes: Record<string, unknown>
  mail_from: Address
  rcpt_to: Address[]
  data_bytes: number
  header: {
    get(name: string): string
    add(name: string, value: string): void
    /** Every header of that name, raw (one entry per header line). */
    get_all(name: string): readonly string[]
    /** The header parsed as an address list (@haraka/email-address Address or Group objects); throws when it does not parse. */
    get_addresses(name: string): unknown[]
  }
  add_header(name: string, value: string): void
  remove_header(name: string): void
}

export interface Connection extends Loggable {
  uuid: string
  remote: { ip: string; port: number; host?: string; is_private?: boolean; is_local?: boolean }
  local: { ip: string; port: number; host: string }
  tls: { enabled: boolean }
  relaying: boolean
  notes: Record<string, unknown>
  transaction: Transaction | null
  capabilities: string[]
  results: { add(plugin: unknown, obj: Record<string, unknown>): void }
  client?: { targetsocket?: { setNoDelay?: (b: boolean) => void } }
  respond(code: number, msg: string | string[], cb?: () => void): void
  disconnect(): void
  auth_results(msg: string): void
  authheader?: string
}

export interface HMailItem extends Loggable {
  uuid: string
  todo: {
    uuid?: string
    domain: string
    mail_from: Address
    rcpt_to: Address[]
    notes: Record<string, unknown>
    queue_time: number
  }
  num_failures: number
  file_size?: number
}

export interface PluginConfig {
  get(name: string, type?: string, cb?: () => void): unknown
  get(name: string, opts: { booleans?: string[] }, cb?: () => void): unknown
  get(name: string, type: string, opts: { booleans?: string[] }, cb?: () => void): unknown
}

export interface Plugin extends Loggable {
  name: string
  config: { get(...args: unknown[]): any }
  register_hook(hook: string, method: string, priority?: number): void
  [k: string]: unknown
}

// ---- log level ----

let harakaLogger: { loglevel: number; levels: Record<string, number> } | null = null

/** posta-log hands over Haraka's logger at register, so that plugins can ask for the level. */
export function shareLogger(logger: { loglevel: number; levels: Record<string, number> }): void {
  harakaLogger = logger
}

/**
 * Whether a debug line would be written: a hot path builds a debug line's fields only then (Haraka drops the line
 * after they are built). True when the logger is unknown (posta-log not listed): the line is built as before.
 */
export function debugOn(): boolean {
  return !harakaLogger || harakaLogger.loglevel >= harakaLogger.levels.DEBUG
}

// ---- per-process shared state (module state is shared by every Posta plugin in one Haraka process) ----

let settings: Settings | null = null
let redis: Redis | null = null

export function getSettings(): Settings {
  if (!settings) settings = loadSettings()
  return settings
}

/** The process's one hot-path Redis client, opened on first use (from init_master / init_child). */
export function getRedis(log?: Loggable): Redis {
  if (redis) return redis
  const url = getSettings().redisUrl
  redis = timeRedisCommands(connectHotPath(url))
  let down = false
  redis.on('error', (err: Error) => {
    if (!down) log?.logerror(`redis ${describeRedisUrl(url)} unreachable: ${err.message}`)
    down = true
  })
  redis.on('ready', () => {
    if (down) log?.lognotice(`redis ${describeRedisUrl(url)} reachable again`)
    down = false
  })
  return redis
}

export async function closeRedis(): Promise<void> {
  const r = redis
  redis = null
  if (r) await r.quit().catch(() => r.disconnect())
}

/**
 * Wraps an async hook so that it calls next() exactly once on every path. An error becomes DENYSOFT with
 * `failMsg` (a temporary failure: the client keeps the message and retries), never an unhandled rejection,
 * which would kill the Haraka process (reference/haraka.md).
 */
export function guard<A extends unknown[]>(
  failMsg: string,
  fn: (this: Plugin, next: Next, ...args: A) => Promise<void>,
): (this: Plugin, next: Next, ...args: A) => void {
  return function (this: Plugin, next: Next, ...args: A) {
    let called = false
    const once: Next = (code, msg) => {
      if (called) return
      called = true
      next(code, msg)
    }
    fn.call(this, once, ...args).catch((err: Error) => {
      // The error line names the message like every other line: tenant, login, client IP, transaction, whatever
      // the hook's first argument is (a connection on the SMTP side, an hmail on the outbound side).
      const first = args[0] as Partial<Loggable> | undefined
      const target = typeof first?.logerror === 'function' ? (first as Loggable) : this
      target.logerror.call(target, this, `${failMsg}: ${err?.message ?? err}`, logFields(first))
      once(constants.denysoft, failMsg)
    })
  }
}

/** Log fields that every line about a message carries. */
export function messageFields(connection: Connection): Record<string, unknown> {
  const tx = connection.transaction
  return {
    tenant: tenantOf(tx?.notes) ?? loginOf(connection.notes)?.tenant ?? '-',
    auth_user: loginOf(connection.notes)?.auth_user ?? '-',
    client_ip: connection.remote.ip,
    tx: tx?.uuid ?? connection.uuid,
  }
}

/**
 * tenant, auth_user, client_ip and tx of a queued message: `tx` is the id the client saw in its 250
 * (`<connection>.<n>`), `delivery` Haraka's per-domain item (`<tx>.<m>`).
 */
export function deliveryLogFields(hmail: HMailItem): Record<string, unknown> {
  const delivery = hmail.todo?.uuid ?? hmail.uuid
  return {
    ...senderFields(hmail.todo?.notes),
    tx: typeof delivery === 'string' ? delivery.replace(/^(.+\.\d+)\.\d+$/, '$1') : '-',
    delivery,
  }
}

/** The message fields of a hook's first argument: a connection, an outbound item, or anything else (none). */
export function logFields(target: unknown): Record<string, unknown> {
  const t = target as Partial<Connection & HMailItem> | null | undefined
  if (!t || typeof t !== 'object') return {}
  try {
    if (t.remote && t.notes) return messageFields(t as Connection)
    if (t.todo) return deliveryLogFields(t as HMailItem)
  } catch {
    /* a half-built object: the line goes out without the fields rather than not at all */
  }
  return {}
}
