// A small raw SMTP client for end-to-end tests: it sends exactly the lines a test writes (AUTH with broken
// base64, routing-syntax recipients, ...) and returns every reply as it came, which nodemailer cannot do.
import * as net from 'node:net'
import * as tls from 'node:tls'

export interface SmtpReply {
  code: number
  /** The text of each line, without the code and separator. */
  lines: string[]
  /** The lines joined with a newline. */
  text: string
  /** The reply as sent, e.g. "535 5.7.8 Authentication failed". Multi-line replies are joined with a newline. */
  raw: string
}

export interface SmtpConnectOptions {
  host?: string
  port: number
  /** Implicit TLS (SMTPS) from the first byte. */
  tls?: boolean
  /** The client's source address, e.g. 127.0.0.5 (all of 127.0.0.0/8 is local on Linux). */
  localAddress?: string
  /** Longest wait for a connection or a reply, in milliseconds (default 10000). */
  timeoutMs?: number
}

export class SmtpClient {
  greeting!: SmtpReply
  private socket: net.Socket | tls.TLSSocket
  /** The TCP socket under any TLS layer (STARTTLS wraps it): what reset() aborts. */
  private readonly tcp: net.Socket
  private buffer = ''
  private pending: string[] = []
  private replies: SmtpReply[] = []
  private waiters: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void }[] = []
  private closedFlag = false
  private readonly closedPromise: Promise<void>
  private markClosed!: () => void
  private readonly timeoutMs: number

  private constructor(socket: net.Socket | tls.TLSSocket, timeoutMs: number) {
    this.socket = socket
    this.tcp = socket
    this.timeoutMs = timeoutMs
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve))
    this.attach(socket)
  }

  /** Connects and reads the greeting. */
  static async connect(opts: SmtpConnectOptions): Promise<SmtpClient> {
    const host = opts.host ?? '127.0.0.1'
    const timeoutMs = opts.timeoutMs ?? 10000
    const socket = await new Promise<net.Socket | tls.TLSSocket>((resolve, reject) => {
      const base = { host, port: opts.port, localAddress: opts.localAddress }
      const s = opts.tls
        ? tls.connect({ ...base, rejectUnauthorized: false }, () => done())
        : net.connect(base, () => done())
      const timer = setTimeout(() => fail(new Error(`SMTP connect to ${host}:${opts.port} timed out`)), timeoutMs)
      function done() {
        clearTimeout(timer)
        s.off('error', fail)
        resolve(s)
      }
      function fail(err: Error) {
        clearTimeout(timer)
        s.destroy()
        reject(err)
      }
      s.once('error', fail)
    })
    const client = new SmtpClient(socket, timeoutMs)
    client.greeting = await client.read()
    return client
  }

  get closed(): boolean {
    return this.closedFlag
  }

  get encrypted(): boolean {
    return this.socket instanceof tls.TLSSocket
  }

  /** The local address the connection really uses. */
  get localAddress(): string | undefined {
    return this.socket.localAddress
  }

  private attach(socket: net.Socket) {
    socket.setEncoding('utf8')
    socket.on('data', this.onData)
    socket.on('error', this.onEnd)
    socket.on('close', this.onEnd)
  }

  private detach(socket: net.Socket) {
    socket.off('data', this.onData)
    socket.off('error', this.onEnd)
    socket.off('close', this.onEnd)
  }

  private onData = (chunk: string) => {
    this.buffer += chunk
    let i: number
    while ((i = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, i).replace(/\r$/, '')
      this.buffer = this.buffer.slice(i + 1)
      this.pending.push(line)
      // "250-..." continues a reply, "250 ..." (or a bare "250") ends it
      if (!/^\d{3}-/.test(line)) {
        const lines = this.pending
        this.pending = []
        this.deliver({
          code: Number(lines[lines.length - 1].slice(0, 3)) || 0,
          lines: lines.map((l) => l.slice(4)),
          text: lines.map((l) => l.slice(4)).join('\n'),
          raw: lines.join('\n'),
        })
      }
    }
  }

  private onEnd = () => {
    if (this.closedFlag) return
    this.closedFlag = true
    this.markClosed()
    for (const w of this.waiters.splice(0)) w.reject(new Error('SMTP connection closed before a reply'))
  }

  private deliver(reply: SmtpReply) {
    const w = this.waiters.shift()
    if (w) w.resolve(reply)
    else this.replies.push(reply)
  }

  /** The next reply (already received, or the next to arrive). */
  read(timeoutMs = this.timeoutMs): Promise<SmtpReply> {
    const queued = this.replies.shift()
    if (queued) return Promise.resolve(queued)
    if (this.closedFlag) return Promise.reject(new Error('SMTP connection closed before a reply'))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new Error(`no SMTP reply within ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter = {
        resolve: (r: SmtpReply) => {
          clearTimeout(timer)
          resolve(r)
        },
        reject: (e: Error) => {
          clearTimeout(timer)
          reject(e)
        },
      }
      this.waiters.push(waiter)
    })
  }

  /** Writes one line (CRLF added) without waiting for a reply. */
  write(line: string): void {
    this.socket.write(`${line}\r\n`)
  }

  /**
   * Writes `data` as is (no CRLF added) and, as soon as it has been handed to the kernel, resets the TCP connection
   * (RST, as a client with SO_LINGER 0 closing does): the client vanishes right after its last bytes, without
   * reading a reply; `afterMs` later when given. Works under STARTTLS (it resets the TCP socket below the TLS
   * layer), not under implicit TLS.
   */
  writeThenReset(data: string, afterMs = 0): Promise<void> {
    this.tcp.on('error', () => {}) // the reset's own echo
    this.tcp.setNoDelay(true) // the last bytes leave at once, before the reset
    return new Promise((resolve) => {
      this.socket.write(data, () => {
        const reset = () => {
          this.tcp.resetAndDestroy()
          resolve()
        }
        if (afterMs > 0) setTimeout(reset, afterMs)
        else reset()
      })
    })
  }

  /** Sends one line and returns its reply. */
  async send(line: string, timeoutMs = this.timeoutMs): Promise<SmtpReply> {
    this.write(line)
    return this.read(timeoutMs)
  }

  async ehlo(name = 'client.test'): Promise<SmtpReply> {
    return this.send(`EHLO ${name}`)
  }

  /** The EHLO keywords after the first line, upper-cased (e.g. "AUTH PLAIN LOGIN", "STARTTLS"). */
  static extensions(ehlo: SmtpReply): string[] {
    return ehlo.lines.slice(1).map((l) => l.toUpperCase())
  }

  /** STARTTLS, then the TLS handshake over the same socket; returns the 220 (throws on any other reply). */
  async starttls(): Promise<SmtpReply> {
    const reply = await this.send('STARTTLS')
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.raw}`)
    const plain = this.socket as net.Socket
    this.detach(plain)
    plain.on('error', () => {}) // from now on the TLS socket reports the connection's errors
    this.socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: plain, rejectUnauthorized: false }, () => {
        t.off('error', reject)
        resolve(t)
      })
      t.once('error', reject)
      setTimeout(() => reject(new Error('TLS handshake timed out')), this.timeoutMs).unref()
    })
    this.buffer = ''
    this.attach(this.socket)
    return reply
  }

  /** Resolves true once the server has closed the connection, false if it is still open after timeoutMs. */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    if (this.closedFlag) return true
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))
    const r = await Promise.race([this.closedPromise.then(() => true), timeout])
    clearTimeout(timer)
    return r
  }

  /** QUIT when still open, then closes the socket. Never throws. */
  async close(): Promise<void> {
    if (!this.closedFlag) {
      await this.send('QUIT', 2000).catch(() => undefined)
    }
    this.socket.destroy()
    await this.waitClosed(1000)
  }
}

/** SMTP AUTH PLAIN's initial response: base64 of authzid NUL authcid NUL password. */
export function plainResponse(user: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64')
}

export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64')
}
