// End to end: Posta is no open relay. nmap's smtp-open-relay probes (reference/relay-practice.md), sent line by
// line without AUTH on every port and TLS mode, never get a recipient accepted and never reach the sink MX that a
// static route points the probed domain at. An authenticated tenant may relay, but not with routing syntax.
import { strict as assert } from 'node:assert'
import { cliTenant, posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'

type Mode = 'smtp' | 'smtp+starttls' | 'submission' | 'submission+starttls' | 'smtps'
const MODES: Mode[] = ['smtp', 'smtp+starttls', 'submission', 'submission+starttls', 'smtps']

describe('open relay probes end to end (real Redis, Haraka, sink)', function () {
  this.timeout(30000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let creds: { tenant: string; login: string; password: string; smtp_host: string }
  /** The probed domain: a static route sends it (and its subdomains) to the sink, so an open relay would deliver. */
  const domain = `${uniqueName('probe')}.relaytest.example`
  const srvname = 'relay.posta.localhost' // startHaraka's config/me
  const ip = '127.0.0.1'
  /** What the sink may legitimately receive: the authenticated control message only. */
  let controlSubject = ''

  before(async function () {
    this.timeout(60000)
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({ redisUrl: redis.url })
    creds = await cliTenant(env)
    const route = await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)
    assert.equal(route.code, 0, route.stderr)
  })
  after(async () => {
    if (haraka) await posta(['route', 'delete', `.${domain}`], env) // a shared REDIS_URL keeps routes
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  function portOf(mode: Mode): number {
    if (mode.startsWith('smtps')) return haraka.smtpsPort
    return mode.startsWith('submission') ? haraka.submissionPort : haraka.smtpPort
  }

  /** Connected and greeted (EHLO), TLS as the mode says. */
  async function open(mode: Mode, localAddress?: string): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: portOf(mode), tls: mode === 'smtps', localAddress })
    assert.equal(c.greeting.code, 220, c.greeting.raw)
    assert.equal((await c.ehlo('nmap.scanme.org')).code, 250)
    if (mode.endsWith('+starttls')) {
      await c.starttls()
      assert.equal((await c.ehlo('nmap.scanme.org')).code, 250)
    }
    assert.equal(c.encrypted, mode === 'smtps' || mode.endsWith('+starttls'))
    return c
  }

  // nmap smtp-open-relay.nse: 16 MAIL FROM / RCPT TO pairs
  const rcptUser = 'relaytest'
  const probes: [from: string, to: string][] = [
    ['<>', `<${rcptUser}@${domain}>`],
    [`<antispam@${domain}>`, `<${rcptUser}@${domain}>`],
    [`<antispam@${srvname}>`, `<${rcptUser}@${domain}>`],
    [`<antispam@[${ip}]>`, `<${rcptUser}@${domain}>`],
    [`<antispam@[${ip}]>`, `<${rcptUser}%${domain}@[${ip}]>`],
    [`<antispam@[${ip}]>`, `<${rcptUser}%${domain}@${srvname}>`],
    [`<antispam@[${ip}]>`, `<"${rcptUser}@${domain}">`],
    [`<antispam@[${ip}]>`, `<"${rcptUser}%${domain}">`],
    [`<antispam@[${ip}]>`, `<${rcptUser}@${domain}@[${ip}]>`],
    [`<antispam@[${ip}]>`, `<"${rcptUser}@${domain}"@[${ip}]>`],
    [`<antispam@[${ip}]>`, `<${rcptUser}@${domain}@${srvname}>`],
    [`<antispam@[${ip}]>`, `<@[${ip}]:${rcptUser}@${domain}>`],
    [`<antispam@[${ip}]>`, `<@${srvname}:${rcptUser}@${domain}>`],
    [`<antispam@[${ip}]>`, `<${domain}!${rcptUser}>`],
    [`<antispam@[${ip}]>`, `<${domain}!${rcptUser}@[${ip}]>`],
    [`<antispam@[${ip}]>`, `<${domain}!${rcptUser}@${srvname}>`],
  ]

  const is5xx = (r: SmtpReply) => r.code >= 500 && r.code < 600

  /**
   * MAIL, RCPT and (beyond nmap) DATA of one probe, then RSET; reconnects if the server hung up.
   * Returns what went wrong, if anything. A DATA that is let through sends a message, so that the sink can tell.
   */
  async function probe(c: SmtpClient, mode: Mode, from: string, to: string): Promise<{ c: SmtpClient; problems: string[] }> {
    if (c.closed) c = await open(mode)
    const what = `${mode} MAIL FROM:${from} RCPT TO:${to}`
    const problems: string[] = []
    const mail = await c.send(`MAIL FROM:${from}`)
    if (!is5xx(mail) || !/^530 5\.7\.0 .*Authentication required/.test(mail.raw)) problems.push(`${what}: MAIL got ${mail.raw}`)
    const rcpt = await c.send(`RCPT TO:${to}`)
    if (!is5xx(rcpt)) problems.push(`${what}: RCPT got ${rcpt.raw}`)
    const data = await c.send('DATA')
    if (data.code === 354) {
      const sent = await c.send([`Subject: open relay probe ${mode}`, '', 'probe', '.'].join('\r\n'))
      problems.push(`${what}: DATA accepted, then ${sent.raw}`)
    } else if (!is5xx(data)) problems.push(`${what}: DATA got ${data.raw}`)
    if (!c.closed) await c.send('RSET').catch(() => undefined)
    return { c, problems }
  }

  for (const mode of MODES) {
    it(`${mode}: refuses all 16 nmap open-relay probes without AUTH (5xx at MAIL, RCPT and DATA)`, async () => {
      let c = await open(mode)
      const problems: string[] = []
      try {
        for (const [from, to] of probes) {
          const r = await probe(c, mode, from, to)
          c = r.c
          problems.push(...r.problems)
        }
        assert.deepEqual(problems, [], `open relay:\n${problems.join('\n')}`)
        // without TLS the refusal says to use STARTTLS first
        const mail = await c.send(`MAIL FROM:<antispam@${domain}>`)
        if (c.encrypted) assert.doesNotMatch(mail.raw, /STARTTLS/)
        else assert.match(mail.raw, /STARTTLS/)
        // RCPT without a MAIL at all (nmap does not try it; a naive policy might accept)
        const bare = await c.send(`RCPT TO:<${rcptUser}@${domain}>`)
        assert.ok(is5xx(bare), `RCPT without MAIL: ${bare.raw}`)
        assert.equal(c.closed, false, 'the server keeps talking (nmap would read every answer)')
      } finally {
        await c.close()
      }
      await haraka.waitForLog(/\[posta-relay\] MAIL refused: not authenticated/)
    })
  }

  for (const mode of MODES) {
    it(`${mode}: refuses an unauthenticated MAIL FROM in a tenant's own domain`, async () => {
      const c = await open(mode)
      try {
        for (const from of [`x@${creds.tenant}.posta.localhost`, creds.login, `postmaster@${creds.tenant}.posta.localhost`]) {
          const mail = await c.send(`MAIL FROM:<${from}>`)
          assert.ok(is5xx(mail), `MAIL FROM:<${from}> must get a 5xx, got: ${mail.raw}`)
          const rcpt = await c.send(`RCPT TO:<${rcptUser}@${domain}>`)
          assert.ok(is5xx(rcpt), `RCPT after MAIL FROM:<${from}>: ${rcpt.raw}`)
          await c.send('RSET')
        }
      } finally {
        await c.close()
      }
    })
  }

  it('a failed AUTH grants nothing: MAIL and RCPT are still refused', async () => {
    // a random client address: its failure counter must not add up over runs against a shared REDIS_URL
    const r = () => 1 + Math.floor(Math.random() * 253)
    const c = await open('submission+starttls', `127.${r()}.${r()}.${r()}`)
    try {
      const auth = await c.send(`AUTH PLAIN ${plainResponse(creds.login, 'not-the-password')}`)
      assert.equal(auth.code, 535, auth.raw)
      const mail = await c.send(`MAIL FROM:<${creds.login}>`)
      assert.ok(is5xx(mail), mail.raw)
      const rcpt = await c.send(`RCPT TO:<${rcptUser}@${domain}>`)
      assert.ok(is5xx(rcpt), rcpt.raw)
    } finally {
      await c.close()
    }
  })

  it('an authenticated tenant gets 553 for routing syntax and 250 for a plain recipient, which is delivered', async () => {
    const c = await open('submission+starttls')
    try {
      assert.equal((await c.send(`AUTH PLAIN ${plainResponse(creds.login, creds.password)}`)).code, 235)
      assert.equal((await c.send(`MAIL FROM:<sender@${creds.tenant}.example>`)).code, 250)
      const routing = [
        `<@a.example:u@${domain}>`,
        `<@a.example,@b.example:u@${domain}>`,
        `<u%${domain}@other.example>`,
        `<"u@${domain}"@other.example>`,
        `<${domain}!u@other.example>`,
      ]
      for (const to of routing) {
        const r = await c.send(`RCPT TO:${to}`)
        assert.equal(r.code, 553, `RCPT TO:${to}: expected 553, got: ${r.raw}`)
        assert.match(r.raw, /^553 5\.1\.3 .*routing syntax/, to)
      }
      // the remaining nmap forms are refused one way or another (the parser's 501 or our 553), never accepted
      for (const [, to] of probes.slice(4)) {
        const r = await c.send(`RCPT TO:${to}`)
        assert.ok(is5xx(r), `authenticated RCPT TO:${to} must be refused, got: ${r.raw}`)
      }
      const plain = await c.send(`RCPT TO:<u@${domain}>`)
      assert.equal(plain.code, 250, plain.raw)
      // the control message: it proves the route to the sink works, so the silence below means something
      controlSubject = `control ${Date.now()}`
      assert.equal((await c.send('DATA')).code, 354)
      const data = await c.send([`From: <sender@${creds.tenant}.example>`, `To: <u@${domain}>`, `Subject: ${controlSubject}`, '', 'hello', '.'].join('\r\n'))
      assert.equal(data.code, 250, data.raw)
    } finally {
      await c.close()
    }
    const got = await sink.waitFor(1)
    const control = got.filter((m) => m.raw.includes(controlSubject))
    assert.equal(control.length, 1)
    assert.deepEqual(control[0].to, [`u@${domain}`], 'only the plain recipient')
  })

  it('nothing but the authenticated control message reached the sink or the queue', async function () {
    if (!controlSubject) this.skip() // the control test failed: the sink proves nothing without it
    await new Promise((r) => setTimeout(r, 1000)) // let anything queued by mistake be delivered
    assert.equal(sink.messages.length, 1, `sink got: ${sink.messages.map((m) => `${m.from} -> ${m.to.join(',')}`).join('; ')}`)
    assert.ok(sink.messages[0].raw.includes(controlSubject))
    const queued = haraka.log().match(/\[posta-relay\] queued .*/g) ?? []
    assert.equal(queued.length, 1, queued.join('\n'))
    assert.match(queued[0], new RegExp(`tenant=${creds.tenant} `))
  })
})
