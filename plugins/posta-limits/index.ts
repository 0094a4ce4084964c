// posta-limits: limits that keep one client from holding a shared server up (config/posta-limits.ini,
// docs/limits.md): recipients per message, concurrent connections per client address, a TLS handshake timeout on
// the SMTPS port, and DATA lines with a bare CR refused. Everything is in this process's memory: no Redis, so no
// limit here can fail open.
//
// The connection cap and the handshake timeout work on the listening sockets themselves (installed from
// init_master / init_child, once Haraka listens): a refused connection never becomes a Haraka connection, so it costs
// no hooks, no reverse DNS and no log lines, and a socket on the SMTPS port is watched from its first byte, before
// Haraka knows of it.
import type * as net from 'node:net'
import * as path from 'node:path'
import type * as tls from 'node:tls'
import { clientKey } from '../../lib/authguard'
import { LIMITS_INI } from '../../lib/inis'
import { refused } from '../../lib/metrics'
import { bareCrIndex, ConnectionCount, DEFAULT_LIMITS, RefusalLog, type LimitSettings } from '../../lib/limits'
import { constants, DSN, messageFields, type Connection, type Next, type Plugin, type Transaction } from '../shared/haraka'
import { chained } from '../shared/chain'
import { loadIni } from '../shared/settings'

let cfg: LimitSettings = DEFAULT_LIMITS

export function register(this: Plugin) {
  load_limits_ini.call(this)
  if (cfg.recipients.enabled) this.register_hook('rcpt', 'check_recipients', -100)
  if (cfg.bare_cr.enabled) {
    this.register_hook('connect_init', 'watch_data_lines')
    this.register_hook('data_post', 'refuse_bare_cr', -100)
  }
  if (cfg.connections.enabled) this.register_hook('lookup_rdns', 'count_proxied', -100)
}

/** A bad value refuses to start (register), or keeps the values in force when edited on a running server. */
function load_limits_ini(this: Plugin) {
  loadIni(this, LIMITS_INI, ({ values }) => {
    cfg = values
  })
}

// ---- connections per client, and the SMTPS handshake timeout (on the listening sockets) ----

type Socket = net.Socket
interface Listener extends net.Server {
  /** Haraka marks the SMTPS listener; with [haproxy] on, the TLS server sits in `tlsServer`. */
  has_tls?: boolean
  tlsServer?: tls.Server
}

/** A socket, or Haraka's wrapper around one (whose `destroyed` is its current socket's). */
const isOpen = (s: Socket) => !(s.destroyed ?? (s as Socket & { targetsocket?: { destroyed?: boolean } }).targetsocket?.destroyed)
/** Connections counted against the cap. */
const connections = new ConnectionCount<Socket>(isOpen)
/** SMTPS connections over the cap still in their handshake, to be told 421 inside TLS (bounded by the cap too). */
const refusing = new ConnectionCount<Socket>(isOpen)
const refusals = new RefusalLog(60000)
/** SMTPS sockets between their first byte and the end of their handshake, by address tuple. */
const handshaking = new Map<string, { refuse: boolean; timer?: NodeJS.Timeout }>()
const guarded = new WeakSet<object>()
let sweeper: NodeJS.Timeout | null = null

export function hook_init_master(this: Plugin, next: Next, server: { listeners?: Listener[] }) {
  guard_listeners(this, server)
  next()
}

export function hook_init_child(this: Plugin, next: Next, server: { listeners?: Listener[] }) {
  guard_listeners(this, server)
  next()
}

function guard_listeners(plugin: Plugin, server: { listeners?: Listener[] }) {
  // In cluster mode the master has no listeners (its workers run init_child with theirs).
  for (const listener of server?.listeners ?? []) {
    if (guarded.has(listener)) continue
    guarded.add(listener)
    const tlsServer = listener.tlsServer ?? (listener.has_tls ? (listener as unknown as tls.Server) : null)
    gate(plugin, listener, 'connection', (socket, admit) => on_socket(plugin, socket, tlsServer !== null, admit))
    if (tlsServer) gate(plugin, tlsServer, 'secureConnection', (cleartext, admit) => on_secure(cleartext, admit))
  }
  if (!sweeper) {
    // drops connections whose close was never seen, so the maps stay as small as what is really open
    sweeper = setInterval(() => {
      connections.sweep()
      refusing.sweep()
    }, 60000)
    sweeper.unref()
  }
}

/** Puts `decide` in front of the listeners Haraka (or Node's TLS server) has on `event`: they run only on admit(). */
function gate(plugin: Plugin, emitter: net.Server | tls.Server, event: string, decide: (socket: Socket, admit: () => void) => void) {
  const original = emitter.listeners(event) as ((...a: unknown[]) => void)[]
  emitter.removeAllListeners(event)
  emitter.on(event, function (this: unknown, socket: Socket) {
    let admitted = false
    const admit = () => {
      admitted = true
      for (const fn of original) fn.call(this, socket)
    }
    try {
      decide(socket, admit)
    } catch (err) {
      // An exception in a listener's event would reach Haraka's uncaughtException handler and end the process
      // with all its sessions: a bug here must cost this one decision, not the server.
      if (admitted) throw err
      plugin.logerror(plugin, 'connection check failed, connection let through', { error: (err as Error).message, event })
      admit()
    }
  })
}

const tuple = (s: Socket) => `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`
const plainIp = (ip: string) => ip.replace(/^::ffff:(?=\d+\.)/i, '')

/** Haraka's own haraka-net-utils (resolved from Haraka's directory: the copy that decides who may send PROXY). */
let netUtils: { is_haproxy_allowed(ip: string): boolean } | null = null

/** Connections through a PROXY-protocol balancer are counted by the client the balancer names (count_proxied). */
function fromBalancer(ip: string): boolean {
  if (!netUtils) {
    const harakaDir = path.dirname(require.resolve('Haraka/package.json'))
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    netUtils = require(require.resolve('haraka-net-utils', { paths: [harakaDir] }))
  }
  return netUtils!.is_haproxy_allowed(plainIp(ip))
}

const tooMany = (max: number) =>
  `Too many connections from your address (at most ${max} at once): close some and try again`

function on_socket(plugin: Plugin, socket: Socket, smtps: boolean, admit: () => void) {
  const ip = socket.remoteAddress
  if (!ip) return admit() // Haraka drops a socket without an address itself
  let refuse = false
  if (cfg.connections.enabled && !fromBalancer(ip)) {
    const client = clientKey(ip)
    const max = cfg.connections.max_per_client
    if (connections.tryOpen(client, socket, max)) {
      socket.once('close', () => connections.close(client, socket))
    } else {
      refuse = true
      note_refusal(plugin, client, ip, socket.localPort, max)
      refused('policy', 'connect', false) // refused before Haraka sees the socket: no deny hook runs for it
      socket.on('error', () => {}) // nobody else listens to this socket: a reset must not become an uncaught error
      if (!smtps) return refuse_socket(socket, max)
      // SMTPS: the reply can only be given inside TLS. Past another `max` of these in their handshake, just close.
      if (!refusing.tryOpen(client, socket, max)) return void socket.destroy()
      socket.once('close', () => refusing.close(client, socket))
    }
  }
  if (smtps) watch_handshake(plugin, socket, refuse)
  admit()
}

function note_refusal(plugin: Plugin, client: string, ip: string, port: number | undefined, max: number) {
  const { log, refused } = refusals.note(client)
  if (!log) return
  plugin.lognotice(plugin, 'connection refused: too many connections from one client', {
    client_ip: plainIp(ip), client, local_port: port, open: connections.of(client), max_per_client: max, refused,
  })
}

/** A 421 as the greeting, then the socket is closed (at once if the client does not close it first). */
function refuse_socket(socket: Socket | tls.TLSSocket, max: number) {
  const text = DSN.create(421, tooMany(max), 7, 0) as { reply: string }
  socket.end(`421 ${text.reply}\r\n`)
  setTimeout(() => socket.destroy(), 2000).unref()
}

function watch_handshake(plugin: Plugin, socket: Socket, refuse: boolean) {
  const key = tuple(socket)
  const state: { refuse: boolean; timer?: NodeJS.Timeout } = { refuse }
  handshaking.set(key, state)
  if (cfg.tls_handshake.enabled) {
    const seconds = cfg.tls_handshake.timeout_seconds
    state.timer = setTimeout(() => {
      handshaking.delete(key)
      plugin.lognotice(plugin, 'SMTPS connection closed: no TLS handshake', {
        client_ip: plainIp(socket.remoteAddress ?? '-'), local_port: socket.localPort, timeout_seconds: seconds,
      })
      socket.destroy()
    }, seconds * 1000)
    state.timer.unref()
  }
  socket.once('close', () => {
    clearTimeout(state.timer)
    if (handshaking.get(key) === state) handshaking.delete(key)
  })
}

function on_secure(cleartext: Socket, admit: () => void) {
  const key = tuple(cleartext)
  const state = handshaking.get(key)
  handshaking.delete(key)
  clearTimeout(state?.timer)
  if (!state?.refuse) return admit()
  cleartext.on('error', () => {})
  refuse_socket(cleartext, cfg.connections.max_per_client)
}

/**
 * Behind a PROXY-protocol balancer ([haproxy] hosts[] in connection.ini) the socket's address is the balancer's:
 * such connections are counted here, by the client address the PROXY line gave, before the reverse DNS lookup.
 */
export function count_proxied(this: Plugin, next: Next, connection: Connection) {
  const c = connection as Connection & { proxy?: { ip?: string }; client?: Socket }
  if (!cfg.connections.enabled || !c.proxy?.ip || !c.client) return next()
  const socket = c.client
  const client = clientKey(connection.remote.ip)
  const max = cfg.connections.max_per_client
  if (connections.tryOpen(client, socket, max)) {
    socket.once('close', () => connections.close(client, socket))
    return next()
  }
  note_refusal(this, client, connection.remote.ip, connection.local.port, max)
  next(constants.denysoftdisconnect, DSN.create(421, tooMany(max), 7, 0))
}

// ---- recipients per message ----

/** Recipients refused past the limit, per message: one log line per message, and a bound on what Haraka keeps. */
const overRecipients = new WeakMap<Transaction, number>()

export const check_recipients = chained(function check_recipients(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  if (!tx || !cfg.recipients.enabled) return next()
  const max = cfg.recipients.max_recipients
  // Haraka adds the recipient under test to rcpt_to before the rcpt hooks (and takes it out again if refused)
  if (tx.rcpt_to.length - 1 < max) return next()
  const over = (overRecipients.get(tx) ?? 0) + 1
  overRecipients.set(tx, over)
  if (over === 1) {
    connection.lognotice(this, 'RCPT refused: too many recipients in one message', { ...messageFields(connection), max_recipients: max })
  }
  // Haraka keeps every refused recipient in the transaction's results: a client that goes on past another `max`
  // refusals (a client honouring 452 stops at the first) is disconnected, so it cannot grow memory without end.
  if (over > max) {
    connection.lognotice(this, 'connection closed: recipients kept coming after 452', { ...messageFields(connection), max_recipients: max, refused: over })
    return next(constants.denysoftdisconnect, DSN.create(421, `Too many recipients: at most ${max} per message, and ${max} more were refused; closing the connection`, 5, 3))
  }
  next(constants.denysoft, DSN.create(452, `Too many recipients: at most ${max} per message; send to the others in another message`, 5, 3))
})

// ---- bare CR in DATA ----

interface DataState {
  lines: number
  /** The first DATA line (1 = the first line the client sent) with a bare CR. */
  bareCrLine?: number
}
const dataState = new WeakMap<Transaction, DataState>()

type DataConnection = Connection & { accumulate_data(line: Buffer): void; lognotice: Connection['lognotice'] }

/**
 * Haraka has no hook per DATA line: this wraps the connection's own accumulate_data, which every DATA line goes
 * through (Haraka's bare-LF check and end-of-DATA test live there). After a bare CR the rest of the message is
 * not kept; the end-of-DATA line and Haraka's own checks still run, and data_post refuses the message.
 */
export function watch_data_lines(this: Plugin, next: Next, connection: Connection) {
  const plugin = this
  const conn = connection as DataConnection
  const original = conn.accumulate_data
  if (typeof original !== 'function') return next()
  // the state of the transaction being received, kept at hand: this runs for every line of every message
  let current: Transaction | null = null
  let st: DataState = { lines: 0 }
  conn.accumulate_data = function (this: DataConnection, line: Buffer) {
    const tx = this.transaction
    if (!tx || !cfg.bare_cr.enabled || !Buffer.isBuffer(line)) return original.call(this, line) // Haraka's Received line is a string
    if (tx !== current) {
      current = tx
      const known = dataState.get(tx)
      if (known) st = known
      else dataState.set(tx, (st = { lines: 0 }))
    }
    st.lines++
    if (st.bareCrLine === undefined) {
      if (bareCrIndex(line) === -1) return original.call(this, line)
      st.bareCrLine = st.lines
      this.lognotice(plugin, 'bare CR in DATA: the message will be refused', { ...messageFields(this), line: st.lines })
    }
    const end = line.length === 3 && line[0] === 0x2e && line[1] === 0x0d && line[2] === 0x0a
    const bareLf = line[line.length - 1] === 0x0a && line[line.length - 2] !== 0x0d
    if (end || bareLf) return original.call(this, line)
    tx.data_bytes += line.length
  }
  next()
}

export const refuse_bare_cr = chained(function refuse_bare_cr(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const line = tx ? dataState.get(tx)?.bareCrLine : undefined
  if (line === undefined || !cfg.bare_cr.enabled) return next()
  next(constants.deny, DSN.create(550, `Message refused: its line ${line} holds a bare CR (a carriage return not followed by a line feed), which SMTP does not allow; fix the line endings in the sending software`, 6, 0))
})
