// posta-pipelining end to end: the replies to a pipelined MAIL FROM / RCPT TO / DATA group reach the client as one
// unit (one TLS read), in order, the message is relayed as usual; a group the client does not close with DATA, a
// refusal inside a group and a client that stops mid-group each get every reply.
import { strict as assert } from 'node:assert'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { cliTenant, posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse } from '../testkit/smtp-client'

/** An SMTPS client that keeps each chunk of decrypted bytes as it came (a reply split over chunks shows). */
class ChunkClient {
  chunks: string[] = []
  private seen = ''
  private waiters: { test: (s: string) => boolean; resolve: () => void }[] = []
  private constructor(readonly socket: tls.TLSSocket) {
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      this.chunks.push(d)
      this.seen += d
      this.waiters = this.waiters.filter((w) => (w.test(this.seen) ? (w.resolve(), false) : true))
    })
  }

  /** SMTPS: TLS from the first byte. */
  static async connect(port: number): Promise<ChunkClient> {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
    const c = new ChunkClient(socket)
    await c.until(/^220 /m)
    return c
  }

  /** The submission port: EHLO and STARTTLS in the clear, then TLS over the same connection. */
  static async starttls(port: number): Promise<ChunkClient> {
    const plain = net.connect({ host: '127.0.0.1', port })
    let seen = ''
    const expect = (re: RegExp) => new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        seen += d.toString('utf8')
        if (re.test(seen)) { plain.off('data', onData); seen = ''; resolve() }
      }
      plain.on('data', onData).once('error', reject)
    })
    await expect(/^220 /m)
    plain.write('EHLO client.test\r\n')
    await expect(/^250 /m)
    plain.write('STARTTLS\r\n')
    await expect(/^220 /m)
    const socket = tls.connect({ socket: plain, rejectUnauthorized: false })
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
    return new ChunkClient(socket)
  }

  /** Waits until everything received since the last mark() matches `re`; returns that text and its chunks. */
  async until(re: RegExp, timeoutMs = 10000): Promise<{ text: string; chunks: string[] }> {
    const from = this.mark
    const test = (s: string) => re.test(s.slice(from.bytes))
    if (!test(this.seen)) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(this.seen.slice(from.bytes))}`)), timeoutMs)
        this.waiters.push({ test, resolve: () => { clearTimeout(timer); resolve() } })
      })
    }
    const out = { text: this.seen.slice(from.bytes), chunks: this.chunks.slice(from.chunks) }
    this.mark = { bytes: this.seen.length, chunks: this.chunks.length }
    return out
  }

  private mark = { bytes: 0, chunks: 0 }

  write(s: string) { this.socket.write(s) }
  close() { this.socket.destroy() }
}

const codes = (text: string) => text.split('\r\n').filter(Boolean).map((l) => l.slice(0, 4))

describe('posta-pipelining: the replies to a pipelined group go out as one unit', function () {
  this.timeout(60000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let creds: { login: string; password: string }
  const sinkDomain = `${uniqueName('sink')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    const env = { REDIS_URL: redis.url }
    haraka = await startHaraka({ redisUrl: redis.url })
    creds = await cliTenant(env)
    assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  async function session(how: 'smtps' | 'starttls' = 'smtps'): Promise<ChunkClient> {
    const c = how === 'smtps' ? await ChunkClient.connect(haraka.smtpsPort) : await ChunkClient.starttls(haraka.submissionPort)
    c.write('EHLO client.test\r\n')
    assert.match((await c.until(/^250 /m)).text, /PIPELINING/)
    c.write(`AUTH PLAIN ${plainResponse(creds.login, creds.password)}\r\n`)
    assert.match((await c.until(/^235 /m)).text, /^235 /m)
    return c
  }

  /** Runs `fn` on a fresh authenticated session, and closes it whatever happens. */
  async function inSession(fn: (c: ChunkClient) => Promise<void>, how: 'smtps' | 'starttls' = 'smtps'): Promise<void> {
    const c = await session(how)
    try {
      await fn(c)
    } finally {
      c.close()
    }
  }

  for (const how of ['smtps', 'starttls'] as const) it(`answers MAIL FROM, two RCPT TOs and DATA in one read, in order, and relays the message (${how})`, async () => {
    await inSession(async (c) => {
      const subject = `grouped ${Date.now()}`
      const before = sink.messages.length
      c.write(`MAIL FROM:<sender@customer.example>\r\nRCPT TO:<a@${sinkDomain}>\r\nRCPT TO:<b@${sinkDomain}>\r\nDATA\r\n`)
      const group = await c.until(/^354 /m)
      assert.deepEqual(codes(group.text), ['250 ', '250 ', '250 ', '354 '])
      assert.equal(group.chunks.length, 1, `one unit, got ${JSON.stringify(group.chunks)}`)
      c.write(`From: <sender@customer.example>\r\nSubject: ${subject}\r\n\r\nHello.\r\n.\r\n`)
      assert.match((await c.until(/^250 /m)).text, /^250 .*Message Queued/m)
      const msgs = await sink.waitFor(before + 1)
      const got = msgs.filter((m) => m.raw.includes(subject))
      assert.equal(got.length, 1)
      assert.deepEqual(got[0].to.slice().sort(), [`a@${sinkDomain}`, `b@${sinkDomain}`])
    }, how)
  })

  it('answers a group the client does not close with DATA as soon as its last command is answered', async () => {
    await inSession(async (c) => {
      c.write(`MAIL FROM:<sender@customer.example>\r\nRCPT TO:<a@${sinkDomain}>\r\n`)
      const group = await c.until(/^250 [^\r]*\r\n250 /m, 4000) // before the five-second fallback
      assert.deepEqual(codes(group.text), ['250 ', '250 '])
      c.write('RSET\r\n')
      assert.match((await c.until(/^250 /m)).text, /^250 /m)
    })
  })

  it('gives every reply of a group with a refused recipient, in order', async () => {
    await inSession(async (c) => {
      // a recipient without a domain is refused by Haraka's parser, between two accepted ones
      c.write(`MAIL FROM:<sender@customer.example>\r\nRCPT TO:<a@${sinkDomain}>\r\nRCPT TO:<nodomain>\r\nRCPT TO:<b@${sinkDomain}>\r\nDATA\r\n`)
      const group = await c.until(/^354 /m)
      const got = codes(group.text)
      assert.equal(got.length, 5, group.text)
      assert.deepEqual([got[0], got[1], got[3], got[4]], ['250 ', '250 ', '250 ', '354 '])
      assert.match(got[2], /^5\d\d /)
      c.write('.\r\n')
      await c.until(/^\d{3} /m)
    })
  })

  it('gives a group that ends in QUIT all its replies before the connection closes', async () => {
    const c = await session()
    const closed = new Promise<void>((resolve) => c.socket.once('close', () => resolve()))
    c.write(`MAIL FROM:<sender@customer.example>\r\nRCPT TO:<a@${sinkDomain}>\r\nQUIT\r\n`)
    const group = await c.until(/^221 /m)
    assert.deepEqual(codes(group.text), ['250 ', '250 ', '221 '])
    await closed
  })

  it('lets a half-sent group\'s replies go when the client stops mid-line', async () => {
    await inSession(async (c) => {
      c.write(`MAIL FROM:<sender@customer.example>\r\nRCPT TO:<a@${sinkDomain}>\r\nDAT`)
      const group = await c.until(/^250 [^\r]*\r\n250 /m, 4000) // before the five-second fallback
      assert.deepEqual(codes(group.text), ['250 ', '250 '])
      c.write('A\r\n')
      assert.match((await c.until(/^354 /m)).text, /^354 /m)
    })
  })
})
