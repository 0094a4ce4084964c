// Spamtraps, bans and suppression end to end: real Haraka, real Redis, a real sink, the real CLI.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { smtpError, startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient } from '../testkit/smtp-client'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('spamtraps, bans and suppression end to end', function () {
  this.timeout(90000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  const domain = `${uniqueName('trap')}.test`
  const trapDomain = `${uniqueName('pristine')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({
      redisUrl: redis.url,
      overrides: { 'posta-auth.ini': '[main]\nfailure_delay_ms=0\n', 'outbound.ini': 'enable_tls=false\ntemp_fail_intervals=5s*20\n' },
    })
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['package', 'set', 'traps', '--traffic', '1GB'], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `@${trapDomain}`, '--class', 'pristine', '--note', 'harvested list bait'], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `"Old.Box"@${domain.toUpperCase()}.`, '--class', 'recycled'], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `typo@${domain}`, '--class', 'typo'], env)).code, 0)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  async function tenant(contact = `ops@${uniqueName('c')}.example`) {
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', 'traps', '--contact', contact, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return r.json() as { tenant: string; login: string; password: string }
  }

  async function login(t: { login: string; password: string }): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: haraka.submissionPort })
    await c.ehlo()
    await c.starttls()
    await c.ehlo()
    const r = await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)
    assert.equal(r.code, 235, r.raw)
    return c
  }

  it('a pristine trap refuses the message, closes the tenant at once and records the ban with its evidence', async () => {
    const t = await tenant()
    const other = await login(t) // an open session of the same tenant
    const c = await login(t)
    assert.equal((await c.send('MAIL FROM:<news@shop.example>')).code, 250)
    assert.equal((await c.send(`RCPT TO:<someone@${domain}>`)).code, 250)
    const hit = await c.send(`RCPT TO:<Victim@${trapDomain.toUpperCase()}>`)
    assert.equal(hit.code, 550)
    assert.equal(hit.raw, '550 5.7.1 Message refused by policy', 'the reply does not reveal the trap')
    const data = await c.send('DATA')
    assert.ok(data.code >= 500, `the message is refused whole: ${data.raw}`)
    await c.close()

    assert.equal((await posta(['tenant', 'show', t.tenant, '--json'], env)).json().status, 'closed')
    // the open session is refused from its next command
    const next = await other.send('MAIL FROM:<news@shop.example>')
    assert.equal(next.code, 554, next.raw)
    await other.close()
    // new connections cannot log in
    const again = await SmtpClient.connect({ port: haraka.submissionPort })
    await again.ehlo()
    await again.starttls()
    await again.ehlo()
    const auth = await again.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)
    assert.equal(auth.code, 535, auth.raw)
    await again.close()

    const bans = (await posta(['ban', 'show', t.tenant, '--json'], env)).json() as { tenant: string; reason: string; at: string; evidence: Record<string, string>; sender_domains: string[]; client_ips: string[] }[]
    assert.equal(bans.length, 1)
    assert.equal(bans[0].tenant, t.tenant)
    assert.match(bans[0].reason, /pristine spamtrap/)
    assert.ok(Date.parse(bans[0].at) > 0)
    assert.equal(bans[0].evidence.trap, `@${trapDomain}`)
    assert.equal(bans[0].evidence.class, 'pristine')
    assert.equal(bans[0].evidence.client_ip, '127.0.0.1')
    assert.match(bans[0].evidence.tx, /^[0-9A-F-]+\.\d+$/)
    assert.deepEqual(bans[0].sender_domains, ['shop.example'])
    assert.deepEqual(bans[0].client_ips, ['127.0.0.1'])
    await haraka.waitForLog(new RegExp(`\\[CRIT\\] .*tenant BANNED: mail to a pristine spamtrap tenant=${t.tenant} `))
    assert.equal((await posta(['ban', 'list', '--json'], env)).json().filter((b: { tenant: string }) => b.tenant === t.tenant).length, 1)
  })

  it('queued mail of a banned tenant is never delivered, and bounces nothing', async () => {
    const t = await tenant()
    const held = `held-${Date.now()}@${domain}`
    sink.rcptPolicy = (a) => (a === held ? smtpError(451, '4.7.1 greylisted, try later') : null)
    try {
      const tr = nodemailer.createTransport({ host: '127.0.0.1', port: haraka.submissionPort, requireTLS: true, auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false } })
      await tr.sendMail({ from: `me@${domain}`, to: held, subject: 'held', text: 'x' })
      await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] deferred tenant=${t.tenant} `))
      // the tenant mails a recycled trap, written differently from the list's entry
      const c = await login(t)
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<old.box@${domain}>`)).code, 550)
      await c.close()
      sink.rcptPolicy = () => null // the MX would now accept it
      await haraka.waitForLog(new RegExp(`dropped: the tenant is closed.*tenant=${t.tenant} `), 20000)
      await sleep(500)
      assert.equal(sink.messages.filter((m) => m.to.includes(held)).length, 0, 'never delivered')
      assert.equal(sink.messages.filter((m) => m.to.includes(`me@${domain}`)).length, 0, 'no bounce to the sender')
    } finally {
      sink.rcptPolicy = () => null
    }
  })

  it('a banned name, contact (normalised) or contact domain cannot open a new account; there is no unban', async () => {
    const contactDomain = `${uniqueName('corp')}.example`
    const t = await tenant(`Sales.Team@${contactDomain}`)
    const b = await posta(['ban', 'add', t.tenant, '--reason', 'investigation 42: bought list'], env)
    assert.equal(b.code, 0, b.stderr)
    assert.equal((await posta(['tenant', 'show', t.tenant, '--json'], env)).json().status, 'closed')
    const cases: [string, string, RegExp][] = [
      [t.tenant, `new@${uniqueName('x')}.example`, /the name .* belongs to a banned account/],
      [uniqueName('n'), `sales.team+new@${contactDomain.toUpperCase()}`, /contact .* belongs to a banned account/],
      [uniqueName('n'), `someone.else@${contactDomain}`, /contacts at .* belong to a banned account/],
    ]
    for (const [slug, contact, why] of cases) {
      const r = await posta(['tenant', 'create', slug, '--package', 'traps', '--contact', contact], env)
      assert.equal(r.code, 2, `${slug} ${contact}`)
      assert.match(r.stderr, why)
      assert.match(r.stderr, /bans cannot be undone/)
      assert.equal(r.stderr.trim().split('\n').length, 1)
    }
    // a public mailbox provider's domain is not banned with one customer; the person is (dots and +tags ignored)
    const g = await tenant(`john.doe+relay@gmail.com`)
    assert.equal((await posta(['ban', 'add', g.tenant, '--reason', 'trap'], env)).code, 0)
    assert.equal((await posta(['tenant', 'create', uniqueName('n'), '--package', 'traps', '--contact', 'JohnDoe@googlemail.com'], env)).code, 2)
    const ok = await posta(['tenant', 'create', uniqueName('n'), '--package', 'traps', '--contact', 'jane@gmail.com'], env)
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal((await posta(['tenant', 'resume', t.tenant], env)).code, 2, 'a closed tenant cannot be resumed')
    const help = (await posta(['--help'], env)).stdout
    assert.match(help, /posta ban add/)
    assert.doesNotMatch(help, /posta (unban|ban (remove|delete|lift))/, 'no unban verb exists')
  })

  it('typo-trap hits refuse the recipient and ban at the threshold', async () => {
    const t = await tenant()
    const c = await login(t)
    for (let i = 1; i <= 3; i++) {
      assert.equal((await c.send('MAIL FROM:<me@shop.example>')).code, 250, `MAIL ${i}`)
      const r = await c.send(`RCPT TO:<typo@${domain}>`)
      assert.equal(r.raw, '550 5.7.1 Message refused by policy')
      const status = (await posta(['tenant', 'show', t.tenant, '--json'], env)).json().status
      assert.equal(status, i < 3 ? 'active' : 'closed', `after ${i} strikes`)
      await c.send('RSET')
    }
    await c.close()
    assert.match((await posta(['ban', 'show', t.tenant, '--json'], env)).json()[0].reason, /3 typo-trap hits/)
  })

  it('a hard bounce suppresses the address for the tenant; the next RCPT is refused until an operator removes it', async () => {
    const t = await tenant()
    const dead = `nobody-${Date.now()}@${domain}`
    sink.rcptPolicy = (a) => (a === dead ? smtpError(550, '5.1.1 no such user here') : null)
    try {
      const tr = nodemailer.createTransport({ host: '127.0.0.1', port: haraka.submissionPort, requireTLS: true, auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false } })
      await tr.sendMail({ from: `me@${domain}`, to: dead, subject: 'x', text: 'x' })
      const until = Date.now() + 15000
      let list: { address: string; expires_at: string }[] = []
      while (!(list = (await posta(['suppression', 'list', t.tenant, '--json'], env)).json()).length) {
        if (Date.now() > until) throw new Error('not suppressed')
        await sleep(200)
      }
      assert.equal(list[0].address, dead)
      const days = (Date.parse(list[0].expires_at) - Date.now()) / 86400000
      assert.ok(days > 29.9 && days <= 30, `expires in 30 days (${days})`)
      const c = await login(t)
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      const r = await c.send(`RCPT TO:<${dead.toUpperCase().replace(/@.*/, '')}@${domain}>`)
      assert.equal(r.code, 550)
      assert.match(r.raw, /^550 5\.1\.1 .* hard-bounced recently and is suppressed for this account until \d{4}-\d\d-\d\d/)
      assert.equal((await posta(['suppression', 'remove', t.tenant, dead], env)).code, 0)
      await c.send('RSET')
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<${dead}>`)).code, 250)
      await c.close()
      assert.equal((await posta(['suppression', 'remove', t.tenant, dead], env)).code, 2, 'removing twice is an error')
    } finally {
      sink.rcptPolicy = () => null
    }
  })

  it('rejects malformed trap entries and import lines with clear messages', async () => {
    const bad = await posta(['trap', 'add', 'not-an-address', '--class', 'pristine'], env)
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /bad address "not-an-address": expected local@domain/)
    const cls = await posta(['trap', 'add', 'a@b.example', '--class', 'spicy'], env)
    assert.equal(cls.code, 2)
    assert.match(cls.stderr, /bad trap class "spicy": use pristine, recycled, typo/)
    assert.equal((await posta(['trap', 'add', '@not_a_domain', '--class', 'typo'], env)).code, 2)
    const file = path.join(os.tmpdir(), `traps-${Date.now()}.txt`)
    fs.writeFileSync(file, ['# bought from nobody', `one@${domain} pristine from a honeypot`, '@gmial.example typo', 'broken-line', `two@${domain} unknown`, '@bad_domain recycled', ''].join('\n'))
    const r = await posta(['trap', 'import', file, '--json'], env)
    fs.rmSync(file)
    assert.equal(r.code, 0, r.stderr)
    const j = r.json()
    assert.equal(j.imported, 2)
    assert.deepEqual(j.skipped.map((s: { line: number }) => s.line), [4, 5, 6])
    assert.match(j.skipped[0].reason, /missing class/)
    assert.match(j.skipped[1].reason, /bad trap class "unknown"/)
    assert.match(j.skipped[2].reason, /not a domain|bad trap domain/)
    const list = (await posta(['trap', 'list', '--json'], env)).json() as { entry: string; class: string; note: string }[]
    assert.ok(list.some((t) => t.entry === `one@${domain}` && t.class === 'pristine' && t.note === 'from a honeypot'))
    assert.ok(list.some((t) => t.entry === '@gmial.example' && t.class === 'typo'))
    assert.equal((await posta(['trap', 'import', '/nonexistent/file'], env)).code, 2)
  })
})
