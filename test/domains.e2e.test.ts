// Sender domains end to end: the `posta domain` commands against the loopback DNS server (POSTA_RESOLVERS), and the
// sender policy of a real Haraka (posta-domains.ini policy=verified, the shipped default; then any): a tenant sends
// only as its verified domains (envelope at MAIL FROM, From: header at end of DATA), never as <>, and every relayed
// message reaches the sink with its Feedback-ID.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { posta } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'
import { smtpError, startSink, type Sink } from '../testkit/sink'

const shippedPolicy = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'posta-domains.ini'), 'utf8')

describe('sender domains end to end (CLI, loopback DNS, Haraka, sink)', function () {
  this.timeout(120000)
  let redis: TestRedis
  let dns: TestDns
  let haraka: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let t: { tenant: string; login: string; password: string }
  const pkg = uniqueName('pkg')
  const sinkDomain = `${uniqueName('sink')}.test`
  const mine = `${uniqueName('mine')}.example`
  const other = `${uniqueName('other')}.example`

  before(async () => {
    redis = await testRedis()
    dns = await startDns()
    sink = await startSink()
    env = { REDIS_URL: redis.url, POSTA_RESOLVERS: dns.server }
    assert.equal(shippedPolicy.match(/^policy=(.*)$/m)?.[1], 'verified', 'the shipped default')
    haraka = await startHaraka({ redisUrl: redis.url, overrides: { 'posta-domains.ini': shippedPolicy, 'posta-auth.ini': '[main]\nfailure_delay_ms=0\n' } })
    assert.equal((await posta(['package', 'set', pkg, '--traffic', '1GB'], env)).code, 0)
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    t = r.json()
    assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['route', 'set', sinkDomain, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await dns?.close()
    await redis?.close()
  })

  describe('posta domain', () => {
    it('add prints the record, verify fails (exit 1) until it is published, then marks the domain verified', async () => {
      const add = await posta(['domain', 'add', t.tenant, mine], env)
      assert.equal(add.code, 0, add.stderr)
      const token = /value {2}(posta-verification=[0-9a-f]{32})/.exec(add.stdout)?.[1]
      assert.ok(token, add.stdout)
      assert.match(add.stdout, new RegExp(`name {3}_posta-verification\\.${mine.replace(/\./g, '\\.')}`))
      const json = (await posta(['domain', 'add', t.tenant, mine, '--json'], env)).json()
      assert.deepEqual([json.created, json.status, json.verification.value], [false, 'pending', token])

      let v = await posta(['domain', 'verify', t.tenant, mine], env)
      assert.equal(v.code, 1, 'not verified: exit status 1')
      assert.match(v.stdout, /^MISSING: no TXT record at _posta-verification\./)
      dns.setTxt(`_posta-verification.${mine}`, ['posta-verification=00000000000000000000000000000000'])
      v = await posta(['domain', 'verify', t.tenant, mine, '--json'], env)
      assert.equal(v.code, 1)
      assert.deepEqual([v.json().state, v.json().verified], ['wrong', false])
      dns.setTxt(`_posta-verification.${mine}`, [token!])
      v = await posta(['domain', 'verify', t.tenant, mine], env)
      assert.equal(v.code, 0, v.stdout + v.stderr)
      assert.match(v.stdout, /^RIGHT: .* is verified/)
      const list = (await posta(['domain', 'list', t.tenant, '--json'], env)).json() as { domain: string; status: string }[]
      assert.deepEqual(list.map((d) => [d.domain, d.status]), [[`${t.tenant}.posta.localhost`, 'verified'], [mine, 'verified']])
    })

    it('records prints every record; check says missing/wrong (exit 1) and right (exit 0) once published', async () => {
      const rec = await posta(['domain', 'records', t.tenant, mine, '--json'], env)
      assert.equal(rec.code, 0, rec.stderr)
      const records = rec.json().records as { purpose: string; name: string; value: string }[]
      assert.deepEqual(records.filter((r) => r.purpose !== 'dkim').map((r) => r.purpose), ['verification', 'spf', 'dmarc'])
      const text = await posta(['domain', 'records', t.tenant, mine], env)
      assert.match(text.stdout, /include:spf\.posta\.localhost/)
      assert.match(text.stdout, new RegExp(`_dmarc\\.${mine.replace(/\./g, '\\.')}`))

      dns.setTxt(mine, ['v=spf1 mx -all'])
      let check = await posta(['domain', 'check', t.tenant, mine], env)
      assert.equal(check.code, 1)
      assert.match(check.stdout, /^RIGHT +verification/m)
      assert.match(check.stdout, new RegExp(`^WRONG +spf .*\\n.*found: "v=spf1 mx -all"\\n.*change it to "v=spf1 mx include:spf\\.posta\\.localhost -all"`, 'm'))
      assert.match(check.stdout, new RegExp(`^MISSING +dmarc .*\\n +publish TXT _dmarc\\.${mine.replace(/\./g, '\\.')} "v=DMARC1; p=none"`, 'm'))
      for (const r of records.filter((x) => x.purpose !== 'verification')) dns.setTxt(r.name, [r.value])
      check = await posta(['domain', 'check', t.tenant, mine, '--json'], env)
      assert.equal(check.code, 0, check.stdout)
      assert.equal(check.json().all_right, true)
      assert.ok((check.json().records as { state: string }[]).every((r) => r.state === 'right'))
    })

    it('refuses, with one clear line: another tenant claiming the verified domain or a subdomain, a bad name', async () => {
      const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
      const b = r.json().tenant as string
      for (const d of [mine, `news.${mine}`]) {
        const x = await posta(['domain', 'add', b, d], env)
        assert.equal(x.code, 2, x.stdout)
        assert.match(x.stderr, /^posta: cannot add .*another account's verified sender domain/)
        assert.ok(!x.stderr.includes(t.tenant), 'the other tenant is not named')
      }
      const bad = await posta(['domain', 'add', b, 'not a domain'], env)
      assert.equal(bad.code, 2)
      assert.match(bad.stderr, /^posta: bad sender domain "not a domain"/)
    })
  })

  /** One transaction over SMTP: the replies to MAIL FROM, RCPT TO and the end of DATA (null when not reached). */
  async function transaction(envelopeFrom: string, headers: string[], node = haraka) {
    const c = await SmtpClient.connect({ port: node.submissionPort })
    try {
      await c.ehlo()
      await c.starttls()
      await c.ehlo()
      assert.equal((await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)).code, 235)
      const mail = await c.send(`MAIL FROM:<${envelopeFrom}>`)
      let rcpt: SmtpReply | null = null
      let data: SmtpReply | null = null
      if (mail.code === 250) {
        rcpt = await c.send(`RCPT TO:<rcpt@${sinkDomain}>`)
        const go = await c.send('DATA')
        assert.equal(go.code, 354, go.raw)
        const subject = `domains ${uniqueName('m')}`
        data = await c.send([...headers, `Subject: ${subject}`, 'To: rcpt@' + sinkDomain, '', 'body', '.'].join('\r\n'))
        return { mail, rcpt, data, subject }
      }
      return { mail, rcpt, data, subject: '' }
    } finally {
      await c.close()
    }
  }

  const waitSunk = async (subject: string) => {
    await sink.waitFor(1)
    for (let i = 0; i < 200; i++) {
      const m = sink.messages.find((x) => x.raw.includes(subject))
      if (m) return m
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`no message "${subject}" at the sink`)
  }

  describe('policy = verified (the default)', () => {
    it('accepts a verified domain, its subdomains and <slug>.<service domain>; the message carries our Feedback-ID', async () => {
      for (const [env, from] of [[`me@${mine}`, `Me <me@${mine}>`], [`bounce@news.${mine}`, `me@${mine}`], [`x@${t.tenant}.posta.localhost`, `x@${t.tenant}.posta.localhost`]]) {
        // a client's own Feedback-ID (it could name another tenant) is replaced
        const r = await transaction(env, [`From: ${from}`, 'Feedback-ID: victim:gold:posta:posta.localhost'])
        assert.equal(r.mail.code, 250, r.mail.raw)
        assert.equal(r.data?.code, 250, r.data?.raw)
        const m = await waitSunk(r.subject)
        assert.equal(m.from, env)
        const ids = m.raw.match(/^Feedback-ID: .*$/gim) ?? []
        assert.deepEqual(ids, [`Feedback-ID: ${t.tenant}:${pkg}:posta:posta.localhost`])
      }
    })

    it('refuses an unverified envelope sender at MAIL FROM with 550 5.7.1 naming the domain and how to verify it', async () => {
      for (const from of [`me@${other}`, `me@x${mine}`, `me@other.posta.localhost`, 'me@[127.0.0.1]']) {
        const r = await transaction(from, [`From: me@${mine}`])
        assert.equal(r.mail.code, 550, `${from}: ${r.mail.raw}`)
        assert.match(r.mail.raw, /^550 5\.7\.1 Sender domain .* is not a verified sender domain of this account: add and verify it first \(posta domain add, then posta domain verify/)
      }
      const r = await transaction(`me@${other}`, [`From: me@${mine}`])
      assert.ok(r.mail.raw.includes(other))
      await haraka.waitForLog(new RegExp(`\\[posta-domains\\] MAIL refused: sender domain not verified .*tenant=${t.tenant} .*domain=${other.replace(/\./g, '\\.')}`))
    })

    it('refuses an unverified From: header at end of DATA (envelope verified), and unreadable From: headers', async () => {
      const cases: [string[], RegExp][] = [
        [[`From: Boss <boss@${other}>`], new RegExp(`^550 5\\.7\\.1 From: header domain ${other.replace(/\./g, '\\.')} is not a verified sender domain`)],
        [[`From: me@${mine}, boss@${other}`], /^550 5\.7\.1 From: header domain .* is not a verified/],
        [[`From: "me@${mine}" <boss@${other}>`], new RegExp(`^550 5\\.7\\.1 From: header domain ${other.replace(/\./g, '\\.')}`)],
        [[], /^550 5\.7\.1 Message refused: no From: header/],
        [[`From: me@${mine}`, `From: boss@${other}`], /^550 5\.7\.1 Message refused: more than one From: header/],
        [['From: undisclosed:;'], /^550 5\.7\.1 Message refused: the From: header holds a group/],
      ]
      for (const [headers, re] of cases) {
        const before = sink.messages.length
        const r = await transaction(`me@${mine}`, headers)
        assert.equal(r.mail.code, 250)
        assert.match(r.data!.raw, re, headers.join(' / '))
        await new Promise((res) => setTimeout(res, 200))
        assert.ok(!sink.messages.slice(before).some((m) => m.raw.includes(r.subject)), 'nothing delivered')
      }
    })

    it('refuses the null sender <> from a tenant', async () => {
      const r = await transaction('', [`From: me@${mine}`])
      assert.equal(r.mail.code, 550)
      assert.match(r.mail.raw, /^550 5\.7\.1 The null sender <> is not accepted from an account/)
    })

    it('a removed domain is refused from the next MAIL FROM on', async () => {
      const d = `${uniqueName('gone')}.example`
      const add = (await posta(['domain', 'add', t.tenant, d, '--json'], env)).json()
      dns.setTxt(add.verification.name, [add.verification.value])
      assert.equal((await posta(['domain', 'verify', t.tenant, d], env)).code, 0)
      assert.equal((await transaction(`me@${d}`, [`From: me@${d}`])).data?.code, 250)
      assert.equal((await posta(['domain', 'remove', t.tenant, d], env)).code, 0)
      assert.equal((await transaction(`me@${d}`, [`From: me@${d}`])).mail.code, 550)
    })

    it('bounces (DSNs Haraka makes) are unaffected: the DSN of a refused recipient reaches the verified sender, from <>', async () => {
      assert.equal((await posta(['route', 'set', mine, `127.0.0.1:${sink.port}`], env)).code, 0)
      sink.rcptPolicy = (a) => (a.startsWith('nobody@') ? smtpError(550, '5.1.1 no such user here') : null)
      try {
        const c = await SmtpClient.connect({ port: haraka.submissionPort })
        await c.ehlo()
        await c.starttls()
        await c.ehlo()
        assert.equal((await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)).code, 235)
        assert.equal((await c.send(`MAIL FROM:<me@${mine}>`)).code, 250)
        assert.equal((await c.send(`RCPT TO:<nobody@${sinkDomain}>`)).code, 250)
        assert.equal((await c.send('DATA')).code, 354)
        const subject = `will bounce ${uniqueName('b')}`
        assert.equal((await c.send([`From: me@${mine}`, `Subject: ${subject}`, '', 'x', '.'].join('\r\n'))).code, 250)
        await c.close()
        let dsn
        for (let i = 0; i < 300 && !dsn; i++) {
          dsn = sink.messages.find((m) => m.to.includes(`me@${mine}`) && m.raw.includes(subject))
          if (!dsn) await new Promise((r) => setTimeout(r, 100))
        }
        assert.ok(dsn, 'the DSN reached the sender')
        assert.equal(dsn.from, '', 'null sender')
        assert.match(dsn.raw, /multipart\/report/)
      } finally {
        sink.rcptPolicy = () => null
      }
    })
  })

  describe('policy = any', () => {
    let open: HarakaNode
    before(async () => {
      open = await startHaraka({ redisUrl: redis.url, overrides: { 'posta-domains.ini': shippedPolicy.replace(/^policy=.*$/m, 'policy=any'), 'posta-auth.ini': '[main]\nfailure_delay_ms=0\n' } })
    })
    after(async () => {
      await open?.stop()
    })

    it('accepts any envelope and From: domain, still with the Feedback-ID; <> is still refused', async () => {
      const r = await transaction(`me@${other}`, [`From: Boss <boss@${other}>`], open)
      assert.equal(r.mail.code, 250, r.mail.raw)
      assert.equal(r.data?.code, 250, r.data?.raw)
      const m = await waitSunk(r.subject)
      assert.match(m.raw, new RegExp(`^Feedback-ID: ${t.tenant}:${pkg}:posta:posta\\.localhost$`, 'm'))
      assert.equal((await transaction('', [`From: me@${mine}`], open)).mail.code, 550)
    })
  })

  // the last block: it stops Redis
  describe('Redis unreachable', () => {
    it('answers 451 4.3.0 at once, never an unchecked acceptance, while Redis is unreachable (runs last: it stops Redis)', async function () {
      if (!redis.server) this.skip() // with an external REDIS_URL the test cannot stop Redis
      const c = await SmtpClient.connect({ port: haraka.submissionPort })
      try {
        await c.ehlo()
        await c.starttls()
        await c.ehlo()
        assert.equal((await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)).code, 235)
        await redis.stop()
        const t0 = Date.now()
        const mail = await c.send(`MAIL FROM:<me@${mine}>`)
        assert.equal(mail.raw, '451 4.3.0 Account checks are temporarily unavailable, please try again later')
        assert.ok(Date.now() - t0 < 5000, 'no hang')
      } finally {
        await c.close()
      }
    })
  })
})
