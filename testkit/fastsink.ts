// A minimal, fast SMTP sink on a raw `net` server, for benchmarks: it answers every command at once and only
// counts what it receives (testkit/sink.ts uses smtp-server, whose 100 ms greeting delay caps a relay that opens
// a connection per delivery). Speaks EHLO/HELO (PIPELINING, 8BITMIME, SIZE), MAIL, RCPT, DATA with a
// dot-terminated body, RSET, NOOP and QUIT; no TLS, no AUTH. Replies are written per input chunk in one write,
// so pipelined command groups get one packet back.
import * as net from 'node:net'

export interface FastSink {
  host: string
  port: number
  /** Messages accepted (one per completed DATA). */
  readonly messages: number
  /** Recipients over all accepted messages. */
  readonly recipients: number
  /** Body bytes over all accepted messages, about (dot-stuffed, as on the wire). */
  readonly bytes: number
  /** Connections accepted so far. */
  readonly connections: number
  /** Connections per client address (Haraka opens one per delivery): where deliveries came from. */
  readonly fromAddresses: Record<string, number>
  /** Accepted messages per client address: which source address each delivery really came from. */
  readonly messagesFrom: Record<string, number>
  /** Resolves once `messages` >= count; rejects after timeoutMs. */
  waitFor(count: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

const MAX_LINE = 4096
const EOD = '\r\n.\r\n'

export async function startFastSink(host = '127.0.0.1', port = 0): Promise<FastSink> {
  let messages = 0
  let recipients = 0
  let bytes = 0
  let connections = 0
  const fromAddresses: Record<string, number> = {}
  const messagesFrom: Record<string, number> = {}
  const sockets = new Set<net.Socket>()
  const waiters: { count: number; resolve: () => void }[] = []

  const delivered = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (messages >= waiters[i].count) {
        waiters[i].resolve()
        waiters.splice(i, 1)
      }
    }
  }

  const server = net.createServer((socket) => {
    connections++
    const from = String(socket.remoteAddress ?? '').replace(/^::ffff:/, '')
    fromAddresses[from] = (fromAddresses[from] ?? 0) + 1
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())

    let buf = '' // latin1: one char per byte
    let inData = false
    let dataBytes = 0
    let tail = '' // last bytes of the body seen so far, to find a terminator split across chunks
    let hasFrom = false
    let rcpts = 0
    let quitting = false

    const reset = () => {
      hasFrom = false
      rcpts = 0
    }

    const command = (line: string, out: string[]): void => {
      const verb = line.slice(0, 4).toUpperCase()
      switch (verb) {
        case 'EHLO':
          reset()
          out.push('250-fastsink.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n')
          return
        case 'HELO':
          reset()
          out.push('250 fastsink.localhost\r\n')
          return
        case 'MAIL':
          if (hasFrom) return void out.push('503 5.5.1 Nested MAIL command\r\n')
          hasFrom = true
          rcpts = 0
          out.push('250 2.1.0 Ok\r\n')
          return
        case 'RCPT':
          if (!hasFrom) return void out.push('503 5.5.1 Need MAIL first\r\n')
          rcpts++
          out.push('250 2.1.5 Ok\r\n')
          return
        case 'DATA':
          if (!hasFrom || rcpts === 0) return void out.push('503 5.5.1 Need RCPT first\r\n')
          inData = true
          dataBytes = 0
          tail = '\r\n' // the DATA line's CRLF: a body of just ".\r\n" is an empty message
          out.push('354 End data with <CR><LF>.<CR><LF>\r\n')
          return
        case 'RSET':
          reset()
          out.push('250 2.0.0 Ok\r\n')
          return
        case 'NOOP':
          out.push('250 2.0.0 Ok\r\n')
          return
        case 'QUIT':
          quitting = true
          out.push('221 2.0.0 Bye\r\n')
          return
        default:
          out.push('502 5.5.2 Command not recognized\r\n')
      }
    }

    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1')
      const out: string[] = []
      while (buf.length > 0 && !quitting) {
        if (inData) {
          const hay = tail + buf
          const at = hay.indexOf(EOD)
          if (at < 0) {
            dataBytes += buf.length
            tail = hay.slice(-4)
            buf = ''
            break
          }
          // the body ends at `at` in hay; hay = tail + buf, so the rest of buf starts after the terminator
          const consumed = at + EOD.length - tail.length
          dataBytes += Math.max(0, at - tail.length)
          buf = buf.slice(consumed)
          inData = false
          messages++
          messagesFrom[from] = (messagesFrom[from] ?? 0) + 1
          recipients += rcpts
          bytes += dataBytes
          reset()
          out.push('250 2.0.0 Ok: queued\r\n')
          continue
        }
        const nl = buf.indexOf('\n')
        if (nl < 0) {
          if (buf.length > MAX_LINE) {
            out.push('500 5.5.2 Line too long\r\n')
            quitting = true
          }
          break
        }
        const line = buf.slice(0, nl).replace(/\r$/, '')
        buf = buf.slice(nl + 1)
        command(line, out)
      }
      if (out.length) socket.write(out.join(''))
      if (quitting) socket.end()
      if (messages > 0 && waiters.length) delivered()
    })

    socket.write('220 fastsink.localhost ESMTP\r\n')
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })

  return {
    host,
    port: (server.address() as net.AddressInfo).port,
    get messages() {
      return messages
    },
    get recipients() {
      return recipients
    },
    get bytes() {
      return bytes
    },
    get connections() {
      return connections
    },
    get fromAddresses() {
      return fromAddresses
    },
    get messagesFrom() {
      return messagesFrom
    },
    waitFor(count, timeoutMs = 60000) {
      if (messages >= count) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const w = {
          count,
          resolve: () => {
            clearTimeout(timer)
            resolve()
          },
        }
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w)
          if (i >= 0) waiters.splice(i, 1)
          reject(new Error(`fast sink: timed out waiting for ${count} message(s), have ${messages}`))
        }, timeoutMs)
        waiters.push(w)
      })
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
