// Replies to a pipelined group go out as one write (RFC 2920 3.2: a server "SHOULD elect to store responses to
// grouped ... MAIL FROM ... and RCPT TO commands in an internal buffer so they can be sent as a unit").
//
// A client that pipelines sends MAIL FROM, its RCPT TOs and DATA at once and reads the replies when the 354 comes.
// Stock Haraka answers such a group within one event-loop turn and Node joins the replies into one write. Posta's
// MAIL FROM and RCPT TO hooks wait for Redis, so each reply went out as a write, a TLS record and a system call of
// its own (docs/benchmarks.md, "Where Posta's CPU goes"). This plugin holds (corks) the socket while Haraka answers
// MAIL FROM or RCPT TO and another complete command line is already waiting in its input, and lets the replies go
// as soon as a reply is written with nothing complete left to read: at the 354 of DATA at the latest, or at any
// reply to a command that is not MAIL FROM or RCPT TO. Only inside TLS (never around STARTTLS), and never for more
// than five seconds (a fallback that no reply should need). The bytes and their order are unchanged.
import type { Connection, Next } from '../shared/haraka'

type Reply = (code: number, msg: unknown, func?: () => void) => void
interface Corkable { cork(): void; uncork(): void }
type Conn = Connection & {
  current_data: Buffer | null
  respond: Reply
  [method: string]: unknown
}

/** Haraka's methods that answer MAIL FROM and RCPT TO (rcpt_ok_respond after the rcpt_ok hooks). */
const GROUPED = ['mail_respond', 'rcpt_respond', 'rcpt_ok_respond']
const FALLBACK_MS = 5000

/** Lets the held replies of a connection go: set while its socket is corked. */
const held = new WeakMap<Connection, () => void>()

export function hook_connect_init(next: Next, connection: Connection) {
  group(connection as Conn)
  next()
}

export function hook_disconnect(next: Next, connection: Connection) {
  held.get(connection)?.()
  next()
}

/** Another complete command line waits in Haraka's input (the line being answered is no longer in it). */
function lineWaiting(c: Conn): boolean {
  const d = c.current_data
  return !!d && d.length > 0 && d.indexOf(10) !== -1
}

function group(c: Conn): void {
  let answering = 0 // > 0: inside Haraka's answer to MAIL FROM or RCPT TO (rcpt_respond calls rcpt_ok_respond)
  for (const name of GROUPED) {
    const method = c[name] as ((...a: unknown[]) => unknown) | undefined
    if (typeof method !== 'function') continue
    c[name] = function (this: Conn, ...args: unknown[]) {
      answering++
      try {
        return method.apply(this, args)
      } finally {
        answering--
      }
    }
  }

  const respond = c.respond
  c.respond = function (this: Conn, code: number, msg: unknown, func?: () => void) {
    const release = held.get(this)
    if (answering > 0 && code !== 354 && this.tls?.enabled && lineWaiting(this)) {
      if (!release) hold(this)
      return respond.call(this, code, msg, func)
    }
    if (!release) return respond.call(this, code, msg, func)
    // Let the group go right after this reply is written, before whatever Haraka runs next (func).
    return respond.call(this, code, msg, () => {
      release()
      if (func) func()
    })
  }
}

function hold(c: Conn): void {
  // STARTTLS: Haraka's wrapper, with the TLS socket under it; SMTPS: the TLS socket itself.
  const client = c.client as { targetsocket?: unknown } | undefined
  const socket = (client?.targetsocket ?? client) as Partial<Corkable> | undefined
  if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return
  socket.cork()
  const timer = setTimeout(() => release(), FALLBACK_MS)
  timer.unref?.()
  const release = () => {
    if (held.get(c) !== release) return
    held.delete(c)
    clearTimeout(timer)
    socket.uncork!()
  }
  held.set(c, release)
}
