// A real SMTP server standing in for the destination MX: records what it receives, and can refuse or defer.
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server'
import type { AddressInfo } from 'node:net'
import { waitFor } from '../service/redis-server'

export interface SunkMessage {
  from: string
  to: string[]
  raw: string
  remoteAddress: string
  helo: string
}

export interface Sink {
  port: number
  host: string
  messages: SunkMessage[]
  /** Return an Error with responseCode to refuse a recipient (e.g. 550). */
  rcptPolicy: (address: string, session: SMTPServerSession) => (Error & { responseCode?: number }) | null
  waitFor(count: number, timeoutMs?: number): Promise<SunkMessage[]>
  close(): Promise<void>
}

export function smtpError(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code })
}

export async function startSink(host = '127.0.0.1'): Promise<Sink> {
  const sink = { messages: [] as SunkMessage[], rcptPolicy: () => null } as unknown as Sink
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    size: 50 * 1024 * 1024,
    onRcptTo(address: SMTPServerAddress, session, cb) {
      cb(sink.rcptPolicy(address.address, session) ?? undefined)
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        sink.messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          remoteAddress: session.remoteAddress,
          helo: session.hostNameAppearsAs,
        })
        cb()
      })
    },
  })
  // smtp-server re-emits every connection's error on the server: a sending relay that is killed mid-delivery
  // (ECONNRESET) must not crash the test process
  server.on('error', () => {})
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()))
  sink.port = (server.server.address() as AddressInfo).port
  sink.host = host
  sink.waitFor = async (count, timeoutMs = 20000) => {
    await waitFor(async () => sink.messages.length >= count, `${count} message(s) at the sink`, timeoutMs)
    return sink.messages
  }
  sink.close = () => new Promise<void>((resolve) => server.close(() => resolve()))
  return sink
}
