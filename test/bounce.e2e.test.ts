// Bounces end to end: a refusal at RCPT and an expired retry come back to the sender as a DSN a person can read, in
// the tenant's language, routed to a second sink that stands for the sender's own mail server; delivery results are
// counted per recipient in `posta usage`; the DSN's own delivery is ledgered under the tenant; a wait for a usable
// pool IP never counts as a failure nor ends in a bounce. Real Redis, real Haraka, real sinks, the real CLI.
import { strict as assert } from 'node:assert'
import nodemailer from 'nodemailer'
import { recentAttempts } from '../lib/ledger'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { smtpError, startSink, type Sink, type SunkMessage } from '../testkit/sink'
import { waitFor } from '../service/redis-server'

const ME = 'relay.posta.localhost' // config/me of a test Haraka (testkit/haraka.ts)

describe('bounces and delivery results end to end', function () {
  this.timeout(120000)
  let redis: TestRedis
  let haraka: HarakaNode
  let mx: Sink // the recipients' server
  let home: Sink // the senders' own server, where bounces arrive
  let env: Record<string, string>
  const rcptDomain = `${uniqueName('rcpt')}.test`
  const senderDomain = `${uniqueName('sender')}.test`
  /** Recipients the receiving server always answers 450 (deferred until the retries run out). */
  const busy = new Set<string>()

  before(async () => {
    redis = await testRedis()
    ;[mx, home] = await Promise.all([startSink(), startSink()])
    mx.rcptPolicy = (address) => {
      if (address.startsWith('nobody')) return smtpError(550, '5.1.1 <' + address + '>: no such user here')
      if (busy.has(address)) return smtpError(450, '4.2.1 mailbox busy, try later')
      return null
    }
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({
      redisUrl: redis.url,
      overrides: {
        // two retries 5 s apart (Haraka's shortest), then the bounce
        'outbound.ini': 'enable_tls=false\nconcurrency_max=100\ntemp_fail_intervals=5s*2\n',
        'posta-outbound.ini': '[rotation]\nactive=4\nwait_seconds=1\n',
      },
    })
    for (const [d, sink] of [[rcptDomain, mx], [senderDomain, home]] as const) {
      const r = await posta(['route', 'set', d, `127.0.0.1:${sink.port}`], env)
      assert.equal(r.code, 0, r.stderr)
    }
    assert.equal((await posta(['package', 'set', 'bounce-pkg', '--traffic', '1GB'], env)).code, 0)
  })
  after(async () => {
    await haraka?.stop()
    await Promise.all([mx?.close(), home?.close()])
    await redis?.close()
  })

  async function tenant(lang?: string) {
    const r = await posta(['tenant', 'create', uniqueName('b'), '--package', 'bounce-pkg', '--contact', 'ops@example.net', ...(lang ? ['--lang', lang] : []), '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return r.json() as { tenant: string; login: string; password: string }
  }

  /** Sends one message; returns the id the client saw in its 250. */
  async function send(t: { login: string; password: string }, from: string, to: string[], subject: string): Promise<string> {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1', port: haraka.submissionPort, requireTLS: true, auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false },
    })
    const info = await transport.sendMail({ from, to, subject, text: 'Hello, this is the message.' })
    transport.close()
    const m = /Message Queued \(([^)]+)\)/.exec(info.response)
    assert.ok(m, info.response)
    return m[1]
  }

  async function bounceTo(sender: string): Promise<SunkMessage> {
    await waitFor(async () => home.messages.some((m) => m.to.includes(sender)), `a bounce to ${sender}`, 60000)
    return home.messages.find((m) => m.to.includes(sender))!
  }

  async function usage(slug: string) {
    const r = await posta(['usage', slug, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return r.json() as { delivered: number; deferred: number; bounced: number; days: { day: string; delivered: number; deferred: number; bounced: number }[] }
  }

  /** Waits until the tenant's month shows these per-recipient results (the ledger writes follow the deliveries). */
  async function results(slug: string, want: { delivered: number; deferred: number; bounced: number }) {
    let u = await usage(slug)
    await waitFor(async () => {
      u = await usage(slug)
      return u.delivered === want.delivered && u.deferred === want.deferred && u.bounced === want.bounced
    }, `usage of ${slug} to be ${JSON.stringify(want)}`, 30000).catch(() => assert.deepEqual({ delivered: u.delivered, deferred: u.deferred, bounced: u.bounced }, want))
    const days = u.days.filter((d) => d.delivered + d.deferred + d.bounced > 0)
    assert.deepEqual(days.reduce((a, d) => ({ delivered: a.delivered + d.delivered, deferred: a.deferred + d.deferred, bounced: a.bounced + d.bounced }), { delivered: 0, deferred: 0, bounced: 0 }), want, 'the days add up to the month')
    return u
  }

  /** The MIME part of a raw message whose Content-Type is `type` (header and body). */
  function part(raw: string, type: RegExp): string {
    const parts = raw.split(/\r?\n--boundary_[^\r\n]*\r?\n/)
    const p = parts.find((x) => type.test(x.split(/\r?\n\r?\n/)[0]))
    assert.ok(p, `a ${type} part in:\n${raw}`)
    return p
  }

  /** What every bounce carries, whatever its language. */
  function assertDsnShape(dsn: SunkMessage, sender: string, rcpt: string, originalSubject: string) {
    const headers = dsn.raw.split(/\r?\n\r?\n/)[0]
    assert.equal(dsn.from, '', 'a bounce has the null sender')
    assert.match(headers, new RegExp(`^From: .*<MAILER-DAEMON@${ME.replace(/\./g, '\\.')}>$`, 'm'))
    assert.match(headers, new RegExp(`^To: <?${sender.replace(/\./g, '\\.')}>?$`, 'm'))
    assert.match(headers, /^Auto-Submitted: auto-replied$/m)
    assert.match(headers, /^Message-Id: <.+@.+>$/m)
    assert.match(headers, /^Content-Type: multipart\/report; report-type=delivery-status;/m)
    const status = part(dsn.raw, /^Content-type: message\/delivery-status/im)
    assert.match(status, new RegExp(`^Final-Recipient: rfc822;${rcpt.replace(/\./g, '\\.')}$`, 'm'))
    assert.match(status, /^Action: failed$/m)
    const original = part(dsn.raw, /^Content-Type: text\/rfc822-headers/m)
    assert.match(original, new RegExp(`^Subject: ${originalSubject}$`, 'm'), 'the original headers are attached')
    part(dsn.raw, /^Content-Type: text\/html/m)
  }

  it('a refusal at RCPT: an English bounce naming the recipient and the reply, counted as bounced, its delivery ledgered for the tenant', async () => {
    const t = await tenant('en')
    const sender = `alice@${senderDomain}`
    const rcpt = `nobody-${Date.now()}@${rcptDomain}`
    const tx = await send(t, sender, [rcpt], 'Quarterly report')
    const dsn = await bounceTo(sender)
    assertDsnShape(dsn, sender, rcpt, 'Quarterly report')
    assert.match(dsn.raw, /^Subject: Undelivered mail: your message could not be delivered$/m)
    const text = part(dsn.raw, /^Content-Type: text\/plain/m)
    assert.match(text, /Your message could not be delivered/)
    assert.match(text, /Subject: +Quarterly report/)
    assert.match(text, new RegExp(`${rcpt.replace(/\./g, '\\.')}>?: 550 5\\.1\\.1 <${rcpt.replace(/\./g, '\\.')}>: no such user here`), 'the recipient and the remote reply')
    assert.match(text, /What to do:/)
    assert.doesNotMatch(text, /\?$/m, 'no placeholder left unfilled')

    await results(t.tenant, { delivered: 0, deferred: 0, bounced: 1 })
    // the log: the id the client saw, Haraka's delivery id, the MX and its reply
    const line = await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] bounced .*tx=${tx.replace(/\./g, '\\.')} .*`))
    assert.match(line[0], new RegExp(`tenant=${t.tenant} `))
    assert.match(line[0], new RegExp(`delivery=${tx.replace(/\./g, '\\.')}\\.1 `))
    assert.match(line[0], / mx=127\.0\.0\.1 /)
    assert.match(line[0], /response=.*550 5\.1\.1/)
    // the bounce's own delivery, under the tenant, as a DSN about that transaction
    await waitFor(async () => (await recentAttempts(redis.client, t.tenant)).some((a) => a.kind === 'dsn' && a.result === 'delivered'), 'the DSN ledgered', 20000)
    const dsnAttempt = (await recentAttempts(redis.client, t.tenant)).find((a) => a.kind === 'dsn')!
    assert.equal(dsnAttempt.domain, senderDomain)
    assert.equal(dsnAttempt.ip, 'default')
    const dsnLine = await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] delivered .*tenant=${t.tenant} .*kind=dsn .*dsn_for=${tx.replace(/\./g, '\\.')} .*`))
    assert.match(dsnLine[0], new RegExp(`tx=${dsnAttempt.tx.replace(/\./g, '\\.')} `))
    const u = await usage(t.tenant)
    assert.equal(u.delivered, 0, "the tenant's delivered counts its own recipients only, not its bounces")
    // who sent through the machine's own address (no pool here): the tenant, its one bounced attempt and its DSN
    const traffic = await posta(['ip', 'traffic', 'default', '--json'], env)
    assert.equal(traffic.code, 0, traffic.stderr)
    const row = traffic.json().tenants.find((x: { tenant: string }) => x.tenant === t.tenant)
    assert.deepEqual([row.attempts, row.bounced, row.delivered, row.dsn_attempts, row.dsn_delivered], [1, 1, 0, 1, 1])
    assert.match((await posta(['ip', 'traffic', 'default'], env)).stdout, /DSN ATTEMPTS/)
    assert.equal((await posta(['ip', 'traffic', 'defaults'], env)).code, 2, 'anything else is still an IP address')
  })

  it('an expired retry: an Italian bounce for an Italian tenant, deferred counted once per recipient', async () => {
    const t = await tenant('it')
    const sender = `bruno@${senderDomain}`
    const rcpt = `busy-${Date.now()}@${rcptDomain}`
    busy.add(rcpt)
    const tx = await send(t, sender, [rcpt], 'Fattura di novembre')
    const dsn = await bounceTo(sender)
    assertDsnShape(dsn, sender, rcpt, 'Fattura di novembre')
    assert.match(dsn.raw, /^Subject: Messaggio non consegnato: il tuo messaggio non ha raggiunto i destinatari$/m)
    assert.match(dsn.raw, /^From: Sistema di posta <MAILER-DAEMON@/m)
    const text = part(dsn.raw, /^Content-Type: text\/plain/m)
    assert.match(text, /Non siamo riusciti a consegnare il tuo messaggio/)
    assert.match(text, /Oggetto: +Fattura di novembre/)
    assert.match(text, new RegExp(`${rcpt.replace(/\./g, '\\.')}>?: 450 4\\.2\\.1 mailbox busy, try later \\(errore temporaneo: 3 tentativi in \\d+ secondi, poi Posta ha rinunciato alla consegna\\)`))
    assert.match(text, /Cosa fare:/)
    assert.doesNotMatch(text, /What to do|Your message/, 'nothing in English')
    assert.match(part(dsn.raw, /^Content-Type: text\/html/m), /Il tuo messaggio non &egrave; stato consegnato/)
    // three attempts, two deferrals of the same recipient: one deferred, one bounced
    await results(t.tenant, { delivered: 0, deferred: 1, bounced: 1 })
    assert.equal(mx.messages.filter((m) => m.to.includes(rcpt)).length, 0)
    const deferred = haraka.log().split('\n').filter((l) => l.includes('[posta-outbound] deferred') && l.includes(`tx=${tx} `))
    assert.equal(deferred.length, 2, 'two deferred lines')
    for (const l of deferred) {
      assert.match(l, / mx=127\.0\.0\.1 /)
      assert.match(l, /response=.*450 4\.2\.1 mailbox busy/)
    }
    busy.delete(rcpt)
  })

  it('a tenant without --lang gets the service default; posta tenant lang changes it; bad input is refused', async () => {
    const t = await tenant()
    assert.equal((await posta(['tenant', 'show', t.tenant, '--json'], env)).json().lang, 'en')
    const set = await posta(['tenant', 'lang', t.tenant, 'it', '--json'], env)
    assert.equal(set.code, 0, set.stderr)
    assert.equal(set.json().lang, 'it')
    assert.match((await posta(['tenant', 'show', t.tenant], env)).stdout, /^language +it$/m)
    const bad = await posta(['tenant', 'lang', t.tenant, 'fr'], env)
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /bad language "fr": use one of en, it/)
    const badCreate = await posta(['tenant', 'create', uniqueName('b'), '--package', 'bounce-pkg', '--contact', 'ops@example.net', '--lang', 'xx'], env)
    assert.equal(badCreate.code, 2)
    assert.match(badCreate.stderr, /bad --lang "xx"/)
    assert.equal((await posta(['tenant', 'lang', 'no-such-tenant', 'it'], env)).code, 2)
    assert.match((await posta(['tenant', 'lang', '--help'], env)).stdout, /usage: posta tenant lang <slug> <en\|it>/)
    // the service's default language (POSTA_LANGUAGE) for tenants created without --lang
    const r = await posta(['tenant', 'create', uniqueName('b'), '--package', 'bounce-pkg', '--contact', 'ops@example.net', '--json'], { ...env, POSTA_LANGUAGE: 'it' })
    assert.equal(r.code, 0, r.stderr)
    assert.equal((await posta(['tenant', 'show', r.json().tenant, '--json'], env)).json().lang, 'it')
    const badEnv = await posta(['tenant', 'list'], { ...env, POSTA_LANGUAGE: 'de' })
    assert.notEqual(badEnv.code, 0, 'a bad POSTA_LANGUAGE is refused')
    assert.match(badEnv.stderr, /POSTA_LANGUAGE=de is refused: allowed is en or it/)
  })

  it('counts per recipient: a message to 3 recipients with 1 refused counts 2 delivered and 1 bounced', async () => {
    const t = await tenant('en')
    const sender = `carla@${senderDomain}`
    const stamp = Date.now()
    const rcpts = [`one-${stamp}@${rcptDomain}`, `nobody-${stamp}@${rcptDomain}`, `two-${stamp}@${rcptDomain}`]
    const tx = await send(t, sender, rcpts, 'Three recipients')
    await mx.waitFor(1)
    const dsn = await bounceTo(sender)
    const text = part(dsn.raw, /^Content-Type: text\/plain/m)
    assert.match(text, new RegExp(`nobody-${stamp}@`), 'the refused recipient is named')
    assert.doesNotMatch(text, new RegExp(`(one|two)-${stamp}@`), 'the delivered ones are not')
    const u = await results(t.tenant, { delivered: 2, deferred: 0, bounced: 1 })
    assert.equal(u.days.find((d) => d.delivered === 2)?.bounced, 1)
    const delivered = await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] delivered .*tx=${tx.replace(/\./g, '\\.')} .*`))
    assert.match(delivered[0], new RegExp(`delivered=one-${stamp}@${rcptDomain.replace(/\./g, '\\.')},two-${stamp}@`))
    const text2 = (await posta(['usage', t.tenant], env)).stdout
    assert.match(text2, /^delivery +2 delivered, 0 deferred, 1 bounced \(recipients\)$/m)
    assert.match(text2, /DELIVERED +DEFERRED +BOUNCED/)
  })

  it('a wait for a usable pool IP is not a failure: no retry used up, no bounce, delivered once an IP is usable', async () => {
    // Pool: an IPv4 address, suspended, and IPv6 ::1. The destination is IPv4 only: no usable IP of its family.
    for (const [ip, helo] of [['127.0.0.2', 'mta2.pool.test'], ['::1', 'mta6.pool.test']]) assert.equal((await posta(['ip', 'add', ip, '--helo', helo], env)).code, 0)
    assert.equal((await posta(['ip', 'suspend', '127.0.0.2', '--reason', 'test: waiting'], env)).code, 0)
    try {
      const t = await tenant('en')
      const sender = `dora@${senderDomain}`
      const rcpt = `waits-${Date.now()}@${rcptDomain}`
      const tx = await send(t, sender, [rcpt], 'Waiting for an IP')
      // far more waits (1 s each) than the retry schedule has attempts (3, 5 s apart): with waits counted as
      // failures the message would have bounced by now
      const waits = () => haraka.log().split('\n').filter((l) => l.includes('no usable outbound IP of the MX address family') && l.includes(`tx=${tx} `)).length
      await waitFor(async () => waits() >= 14, '14 waits', 60000)
      assert.equal(home.messages.filter((m) => m.to.includes(sender)).length, 0, 'no bounce')
      assert.doesNotMatch(haraka.log(), new RegExp(`(deferred|bounced) .*tx=${tx} `), 'no failure logged')
      assert.equal((await posta(['ip', 'reinstate', '127.0.0.2'], env)).code, 0)
      await waitFor(async () => mx.messages.some((m) => m.to.includes(rcpt)), 'the delivery', 30000)
      assert.equal(mx.messages.find((m) => m.to.includes(rcpt))!.remoteAddress.replace(/^::ffff:/, ''), '127.0.0.2')
      await results(t.tenant, { delivered: 1, deferred: 0, bounced: 0 })
      await waitFor(async () => (await recentAttempts(redis.client, t.tenant)).some((a) => a.result === 'delivered'), 'ledgered', 20000)
      const a = (await recentAttempts(redis.client, t.tenant)).find((x) => x.result === 'delivered')!
      assert.equal(a.ip, '127.0.0.2', 'the ledger names the IP the delivery left from')
      assert.equal(a.tx, tx)
    } finally {
      for (const ip of ['127.0.0.2', '::1']) await posta(['ip', 'remove', ip], env)
    }
  })
})
