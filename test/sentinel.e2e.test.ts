// Redis Sentinel end to end: a real Sentinel set on loopback (a master, a replica, three sentinels), a real Haraka
// node and the CLI on REDIS_URL=redis+sentinel://..., a real sink. A forced failover (SENTINEL FAILOVER) in the middle
// of a steady load: no message that got a 250 is lost, every reply during the failover is a 4xx (never a 5xx, never a
// hang), and the node sends again on the new master without a restart.
import { strict as assert } from 'node:assert'
import { posta } from '../testkit/cli'
import { startTestSentinel, type TestSentinel } from '../testkit/cluster'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { uniqueName } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('Redis Sentinel end to end: a failover under load', function () {
  this.timeout(180000)
  let sentinel: TestSentinel
  let node: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let creds: { tenant: string; login: string; password: string }
  const domain = `${uniqueName('sentinel')}.test`

  before(async () => {
    sentinel = await startTestSentinel()
    sink = await startSink()
    env = { REDIS_URL: sentinel.url }
    node = await startHaraka({ redisUrl: sentinel.url, overrides: { 'posta-auth.ini': '[main]\nfailure_delay_ms=0\n', 'outbound.ini': 'enable_tls=false\ntemp_fail_intervals=1s*30\n' } })
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['package', 'set', 'sentinel-pkg', '--traffic', '1GB'], env)).code, 0)
    const t = await posta(['tenant', 'create', uniqueName('t'), '--package', 'sentinel-pkg', '--contact', 'ops@example.net', '--json'], env)
    assert.equal(t.code, 0, t.stderr)
    creds = t.json()
  })
  after(async () => {
    await node?.stop()
    await sink?.close()
    await sentinel?.close()
  })

  /** One message on a connection of its own; the reply that decided it (any stage), or a timeout as code 0. */
  async function sendOne(rcpt: string): Promise<SmtpReply | { code: 0; raw: string }> {
    const attempt = (async () => {
      const c = await SmtpClient.connect({ port: node.submissionPort })
      try {
        await c.ehlo()
        const tls = await c.starttls()
        if (tls.code !== 220) return tls
        await c.ehlo()
        for (const line of [`AUTH PLAIN ${plainResponse(creds.login, creds.password)}`, 'MAIL FROM:<me@customer.example>', `RCPT TO:<${rcpt}>`, 'DATA']) {
          const r = await c.send(line)
          if (r.code >= 400) return r
        }
        c.write(`Subject: ${rcpt}\r\nFrom: <me@customer.example>\r\n\r\nHello.\r\n.`)
        return await c.read()
      } finally {
        await c.close().catch(() => {})
      }
    })()
    const timeout = sleep(15000).then(() => ({ code: 0 as const, raw: 'no reply in 15 s' }))
    return Promise.race([attempt, timeout])
  }

  it('the CLI and the node reach the master through the sentinels', async () => {
    const r = await sendOne(`before@${domain}`)
    assert.equal(r.code, 250, r.raw)
    await sink.waitFor(1)
    const list = await posta(['tenant', 'show', creds.tenant, '--json'], env)
    assert.equal(list.code, 0, list.stderr)
  })

  it('SENTINEL FAILOVER under load: 4xx during it, no 5xx, no 250 lost, sending resumes on the new master', async () => {
    const results: { rcpt: string; code: number; raw: string; at: number }[] = []
    let stop = false
    let n = 0
    const worker = async () => {
      while (!stop) {
        const rcpt = `load${n++}-${Date.now()}@${domain}`
        const r = await sendOne(rcpt)
        results.push({ rcpt, code: r.code, raw: r.raw, at: Date.now() })
        if (r.code !== 250) await sleep(100)
      }
    }
    const workers = Array.from({ length: 4 }, worker)
    await sleep(2000)
    const { from, to } = await sentinel.failover()
    assert.notEqual(from, to)
    const switched = Date.now()
    // sending resumes by itself: wait for a run of 250s after the switch
    const until = Date.now() + 30000
    while (results.filter((r) => r.at > switched && r.code === 250).length < 12 && Date.now() < until) await sleep(200)
    await sleep(1000)
    stop = true
    await Promise.all(workers)

    const refused = results.filter((r) => r.code !== 250)
    assert.ok(results.some((r) => r.at < switched && r.code === 250), 'mail was accepted before the failover')
    assert.ok(results.filter((r) => r.at > switched && r.code === 250).length >= 12, `mail is accepted after the failover without a restart: ${results.slice(-8).map((r) => r.code).join(',')}`)
    assert.deepEqual(refused.filter((r) => !(r.code >= 400 && r.code < 500)), [], 'every refusal is a temporary 4xx (a timeout shows as 0)')
    const accepted = results.filter((r) => r.code === 250).map((r) => r.rcpt)
    const deadline = Date.now() + 60000
    let got = new Set<string>()
    while (Date.now() < deadline) {
      got = new Set(sink.messages.map((m) => m.to[0]))
      if (accepted.every((r) => got.has(r))) break
      await sleep(250)
    }
    assert.deepEqual(accepted.filter((r) => !got.has(r)), [], `every 250 reached the sink (${accepted.length} accepted, ${refused.length} refused with 4xx)`)
    // the figures of the run, for docs/redis.md
    console.log(`      failover ${from} -> ${to}: ${accepted.length} accepted, ${refused.length} answered 4xx (${[...new Set(refused.map((r) => r.raw.slice(0, 40)))].join(' | ')})`)
  })
})
