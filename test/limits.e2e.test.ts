// posta-limits end to end: real Haraka processes, real Redis, a real sink, raw sockets from distinct loopback
// addresses (all of 127.0.0.0/8 is local on Linux, so each 127.0.0.x is another client).
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { buildHarakaDir, harakaBin, PROJECT_ROOT } from '../service/haraka-dir'
import { posta } from '../testkit/cli'
import { startHaraka, testCerts, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'
import { waitFor } from '../service/redis-server'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('posta-limits end to end (real Haraka, Redis, sink)', function () {
  this.timeout(120000)
  let redis: TestRedis
  let sink: Sink
  /** Shipped config/posta-limits.ini, defaults as they are. */
  let stock: HarakaNode
  /** Small limits: 5 recipients, 3 connections per client, a 1 s TLS handshake; 127.0.0.11 is a PROXY balancer. */
  let small: HarakaNode
  /** The same small limits with Haraka's PROXY support off: its SMTPS listener is then a plain tls.Server. */
  let noProxy: HarakaNode
  let env: Record<string, string>
  let creds: { login: string; password: string; tenant: string }
  const domain = `${uniqueName('limits')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    const auth = '[main]\nfailure_delay_ms=0\n'
    const limits = '[recipients]\nmax_recipients=5\n[connections]\nmax_per_client=3\n[tls_handshake]\ntimeout_seconds=1\n'
    const connectionIni = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'connection.ini'), 'utf8')
    assert.match(connectionIni, /^hosts\[\] =$/m)
    ;[stock, small, noProxy] = await Promise.all([
      startHaraka({ redisUrl: redis.url, overrides: { 'posta-auth.ini': auth } }),
      startHaraka({
        redisUrl: redis.url,
        overrides: { 'posta-auth.ini': auth, 'posta-limits.ini': limits, 'connection.ini': connectionIni.replace(/^hosts\[\] =$/m, 'hosts[] = 127.0.0.11') },
      }),
      startHaraka({
        redisUrl: redis.url,
        overrides: { 'posta-auth.ini': auth, 'posta-limits.ini': limits, 'connection.ini': connectionIni.replace(/^; enabled=true$/m, 'enabled=false') },
      }),
    ])
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    const pkg = uniqueName('pkg')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', '10GB'], env)).code, 0)
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    creds = r.json()
  })
  after(async () => {
    await Promise.all([stock?.stop(), small?.stop(), noProxy?.stop()])
    await sink?.close()
    await redis?.close()
  })

  async function login(node: HarakaNode, localAddress = '127.0.0.1'): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: node.submissionPort, localAddress })
    assert.equal(c.greeting.code, 220, c.greeting.raw)
    await c.ehlo()
    await c.starttls()
    await c.ehlo()
    const r = await c.send(`AUTH PLAIN ${plainResponse(creds.login, creds.password)}`)
    assert.equal(r.code, 235, r.raw)
    return c
  }

  /** Writes every line at once (PIPELINING) and reads one reply per line. */
  async function pipeline(c: SmtpClient, lines: string[]): Promise<SmtpReply[]> {
    for (const l of lines) c.write(l)
    const out: SmtpReply[] = []
    for (let i = 0; i < lines.length; i++) out.push(await c.read(30000))
    return out
  }

  /** Ends DATA: a 250 carries the transaction id. */
  const txOf = (r: SmtpReply) => /Message Queued \(([^)]+)\)/.exec(r.raw)?.[1]

  describe('recipients per message', () => {
    it('default max_recipients=1000: the 1001st RCPT gets 452 4.5.3, the first 1000 are delivered', async () => {
      const c = await login(stock)
      const subject = `thousand ${uniqueName('s')}`
      assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
      const rcpts = Array.from({ length: 1001 }, (_, i) => `r${i}@${domain}`)
      const replies = await pipeline(c, rcpts.map((r) => `RCPT TO:<${r}>`))
      assert.deepEqual(replies.slice(0, 1000).filter((r) => r.code !== 250).map((r) => r.raw), [], 'the first 1000 are accepted')
      assert.match(replies[1000].raw, /^452 4\.5\.3 Too many recipients: at most 1000 per message; send to the others in another message$/)
      assert.equal((await c.send('DATA')).code, 354)
      c.write(`Subject: ${subject}\r\n\r\nhello`)
      const done = await c.send('.')
      assert.equal(done.code, 250, done.raw)
      await c.close()
      await waitFor(async () => sink.messages.some((m) => m.raw.includes(subject)), 'the message at the sink', 60000)
      const got = sink.messages.filter((m) => m.raw.includes(subject))
      assert.equal(got.length, 1)
      assert.deepEqual(got[0].to.sort(), rcpts.slice(0, 1000).sort(), 'exactly the first 1000 recipients')
      const line = await stock.waitForLog(new RegExp(`\\[posta-limits\\] RCPT refused: too many recipients in one message .*tx=${esc(txOf(done)!)} max_recipients=1000`))
      assert.match(line[0], new RegExp(`tenant=${creds.tenant} auth_user=${esc(creds.login)} client_ip=127\\.0\\.0\\.1`))
    })

    it('max_recipients=5: RCPT 6 and 7 get 452 4.5.3 (logged once), 5 are delivered, the other 2 go in the next message', async () => {
      const c = await login(small)
      const subject = `five ${uniqueName('s')}`
      const rcpts = Array.from({ length: 7 }, (_, i) => `f${i}@${domain}`)
      assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
      const replies = await pipeline(c, rcpts.map((r) => `RCPT TO:<${r}>`))
      assert.deepEqual(replies.map((r) => r.code), [250, 250, 250, 250, 250, 452, 452])
      assert.match(replies[5].raw, /^452 4\.5\.3 Too many recipients: at most 5 per message/)
      assert.equal((await c.send('DATA')).code, 354)
      c.write(`Subject: ${subject} a\r\n\r\nfirst part`)
      const first = await c.send('.')
      assert.equal(first.code, 250, first.raw)
      // the limit is per message: the same session sends the rest
      assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
      assert.deepEqual((await pipeline(c, rcpts.slice(5).map((r) => `RCPT TO:<${r}>`))).map((r) => r.code), [250, 250])
      assert.equal((await c.send('DATA')).code, 354)
      c.write(`Subject: ${subject} b\r\n\r\nsecond part`)
      assert.equal((await c.send('.')).code, 250)
      await c.close()
      await waitFor(async () => sink.messages.filter((m) => m.raw.includes(subject)).length >= 2, 'both messages at the sink', 30000)
      const a = sink.messages.find((m) => m.raw.includes(`${subject} a`))!
      const b = sink.messages.find((m) => m.raw.includes(`${subject} b`))!
      assert.deepEqual(a.to.sort(), rcpts.slice(0, 5).sort())
      assert.deepEqual(b.to.sort(), rcpts.slice(5).sort())
      const lines = small.log().split('\n').filter((l) => l.includes('too many recipients') && l.includes(`tx=${txOf(first)!} `))
      assert.equal(lines.length, 1, `one log line for the message, not one per refused RCPT:\n${lines.join('\n')}`)
    })
    it('a client that goes on past max_recipients more refusals is disconnected with 421 4.5.3, logged once more', async () => {
      const c = await login(small)
      assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
      const rcpts = Array.from({ length: 12 }, (_, i) => `o${i}@${domain}`)
      for (const r of rcpts) c.write(`RCPT TO:<${r}>`)
      const codes: number[] = []
      let last: SmtpReply | undefined
      for (let i = 0; i < 11; i++) {
        last = await c.read(10000)
        codes.push(last.code)
      }
      assert.deepEqual(codes, [250, 250, 250, 250, 250, 452, 452, 452, 452, 452, 421])
      assert.match(last!.raw, /^421 4\.5\.3 Too many recipients: at most 5 per message, and 5 more were refused; closing the connection$/)
      assert.ok(await c.waitClosed(10000))
      await small.waitForLog(/\[posta-limits\] connection closed: recipients kept coming after 452 .*max_recipients=5 refused=6/)
    })
  })

  describe('connections per client', () => {
    /** Opens n connections from one address at once; each resolves to its greeting (and the open client, if 220). */
    async function flood(node: HarakaNode, n: number, localAddress: string, opts: { tls?: boolean } = {}) {
      return Promise.all(
        Array.from({ length: n }, async () => {
          const c = await SmtpClient.connect({ port: opts.tls ? node.smtpsPort : node.smtpPort, localAddress, tls: opts.tls, timeoutMs: 30000 })
          return c
        }),
      )
    }

    it('200 connections from one address: 50 (the default) are served, 150 get 421 4.7.0 and are closed, logged once; another address is served', async () => {
      const clients = await flood(stock, 200, '127.0.0.2')
      try {
        const served = clients.filter((c) => c.greeting.code === 220)
        const refused = clients.filter((c) => c.greeting.code !== 220)
        assert.equal(served.length, 50)
        assert.equal(refused.length, 150)
        for (const c of refused) assert.equal(c.greeting.raw, '421 4.7.0 Too many connections from your address (at most 50 at once): close some and try again')
        for (const c of refused) assert.ok(await c.waitClosed(10000), 'a refused connection is closed by the server')
        // the 50 still work, and another address is served while they are open
        assert.equal((await served[0].ehlo()).code, 250)
        const other = await login(stock, '127.0.0.3')
        assert.equal((await other.send('MAIL FROM:<sender@customer.example>')).code, 250)
        await other.close()
        // still over the cap: one more from the same address is refused
        const more = await SmtpClient.connect({ port: stock.submissionPort, localAddress: '127.0.0.2' })
        assert.equal(more.greeting.code, 421)
        await more.close()
        // closing some frees their places
        await Promise.all(served.slice(0, 10).map((c) => c.close()))
        const again = await login(stock, '127.0.0.2')
        assert.equal((await again.send('NOOP')).code, 250)
        await again.close()
      } finally {
        await Promise.all(clients.map((c) => c.close()))
      }
      const lines = stock.log().split('\n').filter((l) => l.includes('too many connections from one client') && l.includes('client_ip=127.0.0.2 '))
      assert.equal(lines.length, 1, `one line for the burst (refusals within a minute are counted, not logged):\n${lines.join('\n')}`)
      assert.match(lines[0], /\[posta-limits\] connection refused: too many connections from one client client_ip=127\.0\.0\.2 client=127\.0\.0\.2 local_port=\d+ open=50 max_per_client=50 refused=1/)
      // a refused connection never became a Haraka connection: no core connect lines for them
      const connects = stock.log().split('\n').filter((l) => /\[core\] connect ip=127\.0\.0\.2 /.test(l))
      assert.ok(connects.length <= 50 + 2, `only served connections reach Haraka (${connects.length} connect lines)`)
    })

    it('connections that used STARTTLS, and SMTPS ones, give their place back when they close', async () => {
      // Haraka drops a socket's close listeners at STARTTLS: the count must notice the close anyway
      for (let round = 0; round < 3; round++) {
        const cs = await Promise.all([1, 2, 3].map(() => login(small, '127.0.0.4')))
        const fourth = await SmtpClient.connect({ port: small.submissionPort, localAddress: '127.0.0.4' })
        assert.equal(fourth.greeting.code, 421, `round ${round}: the cap of 3 holds`)
        await fourth.close()
        await Promise.all(cs.map((c) => c.close()))
      }
      for (let round = 0; round < 2; round++) {
        const cs = await flood(small, 3, '127.0.0.4', { tls: true })
        assert.deepEqual(cs.map((c) => c.greeting.code), [220, 220, 220])
        await Promise.all(cs.map((c) => c.close()))
      }
    })

    for (const which of ['PROXY support on', 'PROXY support off'] as const) {
      it(`on the SMTPS port a connection over the cap is told 421 4.7.0 inside TLS (${which})`, async () => {
        const node = which === 'PROXY support on' ? small : noProxy
        const cs = await flood(node, 5, '127.0.0.5', { tls: true })
        try {
          assert.deepEqual(cs.map((c) => c.greeting.code).sort(), [220, 220, 220, 421, 421])
          for (const c of cs.filter((x) => x.greeting.code === 421)) {
            assert.ok(c.encrypted)
            assert.match(c.greeting.raw, /^421 4\.7\.0 Too many connections from your address \(at most 3 at once\)/)
            assert.ok(await c.waitClosed(10000))
          }
          const other = await SmtpClient.connect({ port: node.smtpsPort, tls: true, localAddress: '127.0.0.6' })
          assert.equal(other.greeting.code, 220, 'another address is served')
          await other.close()
        } finally {
          await Promise.all(cs.map((c) => c.close()))
        }
      })
    }

    it('behind a PROXY balancer the client is the address the PROXY line names, not the balancer', async () => {
      /** A connection from the balancer 127.0.0.11 on behalf of `src`; resolves to the socket and the greeting. */
      async function viaBalancer(src: string) {
        const s = net.connect({ port: small.smtpPort, host: '127.0.0.1', localAddress: '127.0.0.11' })
        s.on('error', () => {})
        await new Promise<void>((resolve) => s.once('connect', () => resolve()))
        let buf = ''
        const greeting = new Promise<string>((resolve) => s.on('data', (d) => {
          buf += d
          if (buf.includes('\n')) resolve(buf.split('\r\n')[0])
        }))
        s.write(`PROXY TCP4 ${src} 127.0.0.1 40000 25\r\n`)
        return { socket: s, greeting: await greeting }
      }
      const first = await Promise.all([1, 2, 3].map(() => viaBalancer('198.51.100.7')))
      try {
        assert.deepEqual(first.map((c) => c.greeting.slice(0, 3)), ['220', '220', '220'])
        const fourth = await viaBalancer('198.51.100.7')
        assert.equal(fourth.greeting, '421 4.7.0 Too many connections from your address (at most 3 at once): close some and try again')
        fourth.socket.destroy()
        const other = await viaBalancer('198.51.100.8')
        assert.match(other.greeting, /^220 /, 'another client behind the same balancer is served')
        other.socket.destroy()
        await small.waitForLog(/connection refused: too many connections from one client client_ip=198\.51\.100\.7 client=198\.51\.100\.7 /)
        // closing gives the places back
        for (const c of first) c.socket.destroy()
        await waitFor(async () => {
          const c = await viaBalancer('198.51.100.7')
          c.socket.destroy()
          return c.greeting.startsWith('220 ')
        }, 'a place for 198.51.100.7 again', 10000)
      } finally {
        for (const c of first) c.socket.destroy()
      }
    })
  })

  describe('TLS handshake timeout on the SMTPS port', () => {
    /** A raw TCP connection; resolves when the server closes it (or after maxMs, with false). */
    function rawConnect(port: number, localAddress: string) {
      const s = net.connect({ port, host: '127.0.0.1', localAddress })
      s.on('error', () => {})
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
      const connected = new Promise<void>((resolve) => s.once('connect', () => resolve()))
      return {
        socket: s,
        connected,
        async closedWithin(maxMs: number): Promise<boolean> {
          let t: NodeJS.Timeout | undefined
          const r = await Promise.race([closed.then(() => true), new Promise<boolean>((res) => (t = setTimeout(() => res(false), maxMs)))])
          clearTimeout(t)
          return r
        },
      }
    }

    for (const which of ['PROXY support on', 'PROXY support off'] as const) {
      const nodeOf = () => (which === 'PROXY support on' ? small : noProxy)
      it(`a silent connection and a stalled handshake are closed after timeout_seconds, with a log line naming the client (${which})`, async () => {
        const node = nodeOf()
        const silent = rawConnect(node.smtpsPort, '127.0.0.7')
        const stalled = rawConnect(node.smtpsPort, '127.0.0.8')
        await Promise.all([silent.connected, stalled.connected])
        // a TLS record header announcing a ClientHello that never comes
        stalled.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01]))
        assert.ok(await silent.closedWithin(30000), 'the silent socket is closed by the server')
        assert.ok(await stalled.closedWithin(30000), 'the stalled handshake is closed by the server')
        for (const ip of ['127.0.0.7', '127.0.0.8']) {
          await node.waitForLog(new RegExp(`\\[posta-limits\\] SMTPS connection closed: no TLS handshake client_ip=${esc(ip)} local_port=${node.smtpsPort} timeout_seconds=1`))
        }
      })

      it(`a connection that finished its handshake is not closed by the timeout (${which})`, async () => {
        const node = nodeOf()
        const c = await SmtpClient.connect({ port: node.smtpsPort, tls: true, localAddress: '127.0.0.9' })
        assert.equal(c.greeting.code, 220)
        await sleep(2500) // longer than timeout_seconds=1
        assert.equal((await c.ehlo()).code, 250)
        await c.close()
        assert.ok(!/SMTPS connection closed: no TLS handshake client_ip=127\.0\.0\.9 /.test(node.log()))
      })
    }

    it('the stock server closes a silent SMTPS connection too (default 10 s)', async () => {
      const silent = rawConnect(stock.smtpsPort, '127.0.0.10')
      await silent.connected
      assert.ok(await silent.closedWithin(60000))
      await stock.waitForLog(/\[posta-limits\] SMTPS connection closed: no TLS handshake client_ip=127\.0\.0\.10 .*timeout_seconds=10/)
    })
  })

  describe('bare CR in DATA', () => {
    const cases: [string, string][] = [
      ['<CR>.<CR> with a smuggled transaction after it', `first line\r.\rMAIL FROM:<forged@bank.example>\rRCPT TO:<victim@${domain}>\rDATA\rSubject: forged\r\rpay now\r.\r`],
      ['a bare CR inside a header line', 'X-Note: one\rtwo'],
      ['a line ending in CR CR LF', 'last line\r'],
      ['a lone CR as a line', '\r'],
    ]
    for (const [name, body] of cases) {
      it(`${name}: 550 5.6.0, logged, nothing reaches the sink, the session goes on`, async () => {
        const c = await login(stock)
        const marker = uniqueName('bare')
        assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
        assert.equal((await c.send(`RCPT TO:<cr@${domain}>`)).code, 250)
        assert.equal((await c.send('DATA')).code, 354)
        c.write(`Subject: ${marker}\r\n\r\nbefore\r\n${body}\r\nafter`)
        const r = await c.send('.')
        assert.match(r.raw, /^550 5\.6\.0 Message refused: its line \d+ holds a bare CR \(a carriage return not followed by a line feed\)/)
        // the same session sends a clean message, which arrives; the refused one never does
        const clean = uniqueName('clean')
        assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
        assert.equal((await c.send(`RCPT TO:<cr@${domain}>`)).code, 250)
        assert.equal((await c.send('DATA')).code, 354)
        c.write(`Subject: ${clean}\r\n\r\nall fine`)
        assert.equal((await c.send('.')).code, 250)
        await c.close()
        await waitFor(async () => sink.messages.some((m) => m.raw.includes(clean)), 'the clean message', 30000)
        assert.ok(!sink.messages.some((m) => m.raw.includes(marker) || m.raw.includes('forged')), 'nothing of the refused message reached the sink')
        assert.ok(!sink.messages.some((m) => m.to.includes(`victim@${domain}`)))
        await stock.waitForLog(new RegExp(`\\[posta-limits\\] bare CR in DATA: the message will be refused tenant=${creds.tenant} .*client_ip=127\\.0\\.0\\.1 tx=\\S+ line=\\d+`))
      })
    }

    it('a bare LF is still refused by Haraka (451, disconnect)', async () => {
      const c = await login(stock)
      assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
      assert.equal((await c.send(`RCPT TO:<cr@${domain}>`)).code, 250)
      assert.equal((await c.send('DATA')).code, 354)
      c.write('Subject: lf\r\n\r\nbare\nfeed')
      const r = await c.read()
      assert.match(r.raw, /^451 Bare line-feed/)
      assert.ok(await c.waitClosed(10000))
    })
  })

  describe('settings', () => {
    /** Runs Haraka with these config files and waits for it to exit: its exit code and log. */
    async function startFails(overrides: Record<string, string>): Promise<{ code: number | null; log: string }> {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-haraka-'))
      const { key, cert } = testCerts()
      const port = () => 20000 + Math.floor(Math.random() * 20000)
      buildHarakaDir({ dir, listen: '127.0.0.1', smtpPort: port(), submissionPort: port(), smtpsPort: port(), tlsKey: key, tlsCert: cert, overrides })
      const e: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redis.url, POSTA_DATA_DIR: dir }
      delete e.NODE_OPTIONS
      const child = spawn(process.execPath, [harakaBin(), '-c', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: e, cwd: PROJECT_ROOT })
      let log = ''
      child.stdout.on('data', (d) => (log += d))
      child.stderr.on('data', (d) => (log += d))
      const timer = setTimeout(() => child.kill('SIGKILL'), 30000)
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
      clearTimeout(timer)
      fs.rmSync(dir, { recursive: true, force: true })
      return { code, log }
    }

    const crit = (section: string, key: string, value: string, allowed: string) =>
      new RegExp(`\\[CRIT\\] \\[-\\] \\[posta-limits\\] bad setting, not starting file=posta-limits\\.ini section=${section} key=${key}${value ? ` value=${esc(value)}` : ''} allowed="${esc(allowed)}`)
    for (const [ini, message] of [
      ['[recipients]\nmax_recipients=0\n', crit('recipients', 'max_recipients', '0', 'an integer from 1 to 100000')],
      ['[connections]\nmax_per_client=-3\n', crit('connections', 'max_per_client', '-3', 'an integer from 1 to 100000')],
      ['[tls_handshake]\ntimeout_seconds=1.5\n', crit('tls_handshake', 'timeout_seconds', '1.5', 'an integer from 1 to 3600 seconds')],
      ['[bare_cr]\nenabled=maybe\n', crit('bare_cr', 'enabled', 'maybe', 'true or false')],
      ['[recipients]\nmax_recipient=10\n', crit('recipients', 'max_recipient', '', 'known: enabled, max_recipients')],
    ] as const) {
      it(`Haraka does not start with ${ini.trim().replace(/\n/g, ' ')}, and says why`, async () => {
        const { code, log } = await startFails({ 'posta-limits.ini': ini })
        assert.notEqual(code, 0)
        assert.match(log, message)
      })
    }

    it('a bad edit on a running server keeps the values in force; a good one applies at once', async () => {
      const file = path.join(small.dir, 'config', 'posta-limits.ini')
      const original = fs.readFileSync(file, 'utf8')
      const rcptCodes = async (n: number) => {
        const c = await login(small)
        assert.equal((await c.send('MAIL FROM:<sender@customer.example>')).code, 250)
        const codes = (await pipeline(c, Array.from({ length: n }, (_, i) => `RCPT TO:<e${i}@${domain}>`))).map((r) => r.code)
        await c.close()
        return codes
      }
      try {
        fs.writeFileSync(file, original.replace('max_recipients=5', 'max_recipients=0'))
        await small.waitForLog(/\[ERROR\] \[-\] \[posta-limits\] bad setting after an edit, the previous settings stay in force file=posta-limits\.ini section=recipients key=max_recipients value=0 /, 20000)
        assert.deepEqual(await rcptCodes(6), [250, 250, 250, 250, 250, 452])
        fs.writeFileSync(file, original.replace('max_recipients=5', 'max_recipients=2'))
        await small.waitForLog(/\[posta-limits\] posta-limits\.ini reloaded/, 20000)
        assert.deepEqual(await rcptCodes(3), [250, 250, 452])
      } finally {
        fs.writeFileSync(file, original)
      }
    })
  })
})
