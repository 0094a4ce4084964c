// format=json (config/log.ini): every line Haraka writes is one JSON object, and what a client typed stays inside
// the values, Haraka's own lines included (a real Haraka, raw SMTP).
import { strict as assert } from 'node:assert'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, type TestRedis } from '../testkit/redis'
import { SmtpClient } from '../testkit/smtp-client'

describe('logs as JSON lines (format=json)', function () {
  this.timeout(60000)
  let redis: TestRedis
  let haraka: HarakaNode

  before(async function () {
    this.timeout(90000)
    redis = await testRedis()
    haraka = await startHaraka({ redisUrl: redis.url, overrides: { 'log.ini': '[main]\nlevel=info\ntimestamps=false\nformat=json\n' } })
  })
  after(async () => {
    await haraka?.stop()
    await redis?.close()
  })

  it('hostile EHLO and MAIL FROM stay inside values; each line parses as one object', async () => {
    const c = await SmtpClient.connect({ port: haraka.smtpPort, localAddress: '127.42.0.1' })
    assert.equal((await c.ehlo('x,"tenant":"victim",result=bounced')).code, 250)
    const r = await c.send('MAIL FROM:<z@evil.example> result=bounced tenant=victim client_ip=6.6.6.6 {"tenant":"victim"}')
    assert.ok(r.code >= 500, r.raw)
    await c.close()
    const line = await haraka.waitForLog(/"message":"disconnect".*127\.42\.0\.1.*/)
    const records = haraka.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
    const ours = records.filter((o) => JSON.stringify(o).includes('evil.example') || o.ip === '127.42.0.1')
    assert.ok(ours.some((o) => String(o.message).includes('evil.example')), 'the parser error is logged')
    assert.ok(ours.length >= 3, line[0])
    for (const o of ours) {
      assert.notEqual(o.tenant, 'victim')
      assert.notEqual(o.result, 'bounced')
      assert.notEqual(o.client_ip, '6.6.6.6')
    }
    const disconnect = ours.find((o) => o.message === 'disconnect')!
    assert.equal(disconnect.helo, 'x,"tenant":"victim",result=bounced')
    for (const l of haraka.log().split('\n').filter((x) => x.includes('evil.example'))) assert.ok(l.startsWith('{'), l)
  })
})
