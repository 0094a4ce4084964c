// posta-service: what Haraka 3.3.4 needs to run as a supervised service under `npm start` (service/start.ts).
//
// - Shutdown drains: on a graceful shutdown (SIGINT with graceful_shutdown=true in smtp.ini) Haraka stops
//   listening but leaves open sessions alone until its force timeout, then exits without a word to them. Here each
//   open session finishes the message it is in, then gets `421 4.3.2` and is closed; at the drain deadline
//   (force_shutdown_timeout - 2 s, at most 28 s in a cluster worker, whose disconnect Haraka kills after 30 s) the
//   rest get the 421 too. Once no session and no outbound delivery is left, the process exits: the queue stays on
//   disk for the next start.
// - Queued mail is retried at its due time after a restart: Haraka's outbound/queue.js sets `cur_time` once when
//   it loads the queue, and compares every reloaded file against that stale time again when its timer fires, so
//   it waits the remaining interval twice. `cur_time` is made to read the clock (docs/haraka-upstream.md).
// - A launcher that died (kill -9) leaves no Haraka behind: the master watches its parent (service/parent.ts).
import * as path from 'node:path'
import { exitWithParent } from '../../service/parent'
import { constants, type Connection, type Next, type Plugin } from '../shared/haraka'

const STATE = constants.connection.state
const open = new Set<Connection & { state: number }>()
let draining = false

function harakaModule<T>(name: string): T {
  const dir = path.dirname(require.resolve('Haraka/package.json'))
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(dir, name)) as T
}

export function register(this: Plugin) {
  keepQueueClockFresh()
  this.register_hook('connect_init', 'track_connection', -100)
}

function keepQueueClockFresh() {
  const queue = harakaModule<{ cur_time?: unknown }>('outbound/queue')
  const desc = Object.getOwnPropertyDescriptor(queue, 'cur_time')
  if (desc?.get) return
  // Haraka assigns it (ignored) and reads it as "now"
  Object.defineProperty(queue, 'cur_time', { get: () => new Date(), set: () => undefined, configurable: true, enumerable: true })
}

export function track_connection(this: Plugin, next: Next, connection: Connection & { state: number }) {
  if (draining) {
    next(constants.denysoftdisconnect, '4.3.2 Service shutting down, try again later')
    return
  }
  open.add(connection)
  next()
}

export function hook_disconnect(this: Plugin, next: Next, connection: Connection & { state: number }) {
  open.delete(connection)
  next()
}

export function hook_init_master(this: Plugin, next: Next) {
  // the master (or the single process) is the launcher's child; a cluster worker's parent is the master
  exitWithParent(() => {
    this.logwarn(this, 'the launcher is gone: shutting down')
    process.kill(process.pid, 'SIGINT')
  })
  next()
}

function drainSeconds(plugin: Plugin): number {
  const smtp = plugin.config.get('smtp.ini') as { main?: { force_shutdown_timeout?: unknown } }
  const force = Number(smtp?.main?.force_shutdown_timeout) > 0 ? Number(smtp.main!.force_shutdown_timeout) : 30
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const worker = !require('node:cluster').isPrimary
  return Math.max(1, Math.min(force - 2, worker ? 28 : Infinity))
}

const BYE = '4.3.2 Service shutting down, try again later'

function tellAndClose(connection: Connection & { state: number }) {
  open.delete(connection)
  if (connection.state >= STATE.DISCONNECTING) return
  connection.respond(421, BYE, () => connection.disconnect())
}

/** Runs on a graceful shutdown (Haraka emits plugins.shutdown once it stopped listening). */
export function shutdown(this: Plugin) {
  if (draining) return
  draining = true
  const seconds = drainSeconds(this)
  const deadline = Date.now() + seconds * 1000
  this.lognotice(this, 'draining open sessions before exit', { sessions: open.size, seconds })
  const queue = harakaModule<{ get_stats(): string }>('outbound/queue')
  const tick = () => {
    for (const c of open) {
      if (c.state >= STATE.DISCONNECTING) open.delete(c)
      // between commands and outside a message: the session is told now
      else if (c.state === STATE.CMD && !c.transaction) tellAndClose(c)
    }
    const deliveries = Number(queue.get_stats().split('/')[0]) || 0
    if (Date.now() >= deadline) {
      if (open.size) this.lognotice(this, 'drain deadline reached: closing the sessions left', { sessions: open.size })
      for (const c of [...open]) tellAndClose(c)
    } else if (open.size || deliveries) {
      setTimeout(tick, 100).unref()
      return
    }
    // a moment for the last 421s to reach their sockets
    setTimeout(() => {
      this.lognotice(this, 'drained: exiting, the queue stays on disk', { deliveries_in_flight: deliveries })
      process.exit(0)
    }, 200)
  }
  tick()
}
