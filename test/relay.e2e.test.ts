// End to end: a tenant made with the CLI relays through a real Haraka to a real sink MX, over every TLS mode
// and AUTH mechanism; permanent failures bounce to the sender.
import { strict as assert } from 'node:assert'
import nodemailer from 'nodemailer'
import { cliTenant, posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { smtpError, startSink, type Sink } from '../testkit/sink'

describe('relay end to end (real Redis, Haraka, sink)', function () {
  this.timeout(60000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let creds: { login: string; password: string; smtp_host: string; tenant: string }
  const sinkDomain = `${uniqueName('sink')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({ redisUrl: redis.url })
    creds = await cliTenant(env)
    assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  function transport(mode: 'starttls' | 'smtps', method: 'PLAIN' | 'LOGIN') {
    return nodemailer.createTransport({
      host: '127.0.0.1',
      port: mode === 'smtps' ? haraka.smtpsPort : haraka.submissionPort,
      secure: mode === 'smtps',
      requireTLS: mode === 'starttls',
      authMethod: method,
      auth: { user: creds.login, pass: creds.password },
      tls: { rejectUnauthorized: false },
    })
  }

  for (const [mode, method] of [['starttls', 'PLAIN'], ['starttls', 'LOGIN'], ['smtps', 'PLAIN']] as const) {
    it(`delivers a message intact via ${mode} + AUTH ${method}`, async () => {
      const subject = `hello ${mode} ${method} ${Date.now()}`
      const before = sink.messages.length
      const info = await transport(mode, method).sendMail({
        from: 'Sender <sender@customer.example>',
        to: `rcpt@${sinkDomain}`,
        cc: `other@sub.${sinkDomain}`,
        subject,
        text: 'Ciao!\r\n.leading dot line\r\nàèìòù\r\n',
        headers: { 'X-Posta-Test': 'yes' },
      })
      assert.match(info.response, /^250 /)
      const msgs = await sink.waitFor(before + 2)
      const got = msgs.filter((m) => m.raw.includes(subject))
      assert.equal(got.length, 2, 'one delivery per recipient domain')
      for (const m of got) {
        assert.equal(m.from, 'sender@customer.example')
        assert.match(m.raw, /^X-Posta-Test: yes$/m)
        assert.match(m.raw, /^From: Sender <sender@customer\.example>$/m)
        assert.ok(m.raw.includes(`Message-ID: ${info.messageId}`) || m.raw.includes(`Message-Id: ${info.messageId}`))
        assert.match(m.raw, /\.leading dot line/)
      }
      assert.deepEqual(got.map((m) => m.to).flat().sort(), [`other@sub.${sinkDomain}`, `rcpt@${sinkDomain}`].sort())
      // every log line about the message names tenant, login, client IP and transaction
      const tx = /Message Queued \(([^)]+)\)/.exec(info.response)![1]
      const queued = await haraka.waitForLog(new RegExp(`\\[posta-relay\\] queued .*tx=${tx.replace(/\./g, '\\.')}.*`))
      assert.match(queued[0], new RegExp(`tenant=${creds.tenant} auth_user=${creds.login.replace(/\./g, '\\.')} client_ip=127\\.0\\.0\\.1`))
      const delivered = await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] delivered tenant=${creds.tenant} .*tx=${tx.replace(/\./g, '\\.')} delivery=${tx.replace(/\./g, '\\.')}\\.\\d .*result=delivered`))
      assert.ok(delivered)
    })
  }

  it('bounces a permanent refusal back to the sender', async () => {
    const bounceDomain = `bounce.${sinkDomain}`
    sink.rcptPolicy = (a) => (a.startsWith('nobody@') ? smtpError(550, '5.1.1 no such user here') : null)
    try {
      const before = sink.messages.length
      const subject = `will bounce ${Date.now()}`
      await transport('starttls', 'PLAIN').sendMail({ from: `me@${bounceDomain}`, to: `nobody@${sinkDomain}`, subject, text: 'x' })
      const msgs = await sink.waitFor(before + 1)
      const dsn = msgs.slice(before).find((m) => m.to.includes(`me@${bounceDomain}`))
      assert.ok(dsn, 'a DSN reached the sender')
      assert.equal(dsn!.from, '', 'DSNs have the null sender')
      assert.match(dsn!.raw, /multipart\/report/)
      assert.match(dsn!.raw, /nobody@/)
      assert.match(dsn!.raw, /5\.1\.1|550/)
      await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] bounced tenant=${creds.tenant} `))
    } finally {
      sink.rcptPolicy = () => null
    }
  })

  it('never logs the password, in clear or base64', async () => {
    const log = haraka.log()
    assert.ok(log.includes('AUTH ok'), 'logins were logged')
    assert.ok(!log.includes(creds.password))
    assert.ok(!log.includes(Buffer.from(creds.password).toString('base64')))
    assert.ok(!log.includes(Buffer.from(`\0${creds.login}\0${creds.password}`).toString('base64')))
  })
})
