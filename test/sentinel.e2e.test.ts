// Redis Sentinel end to end: a real Sentinel set on loopback (a master, a replica, three sentinels), a real Haraka
// node and the CLI on REDIS_URL=redis+sentinel://..., a real sink. Two failovers in the middle of a steady load, each
// with four senders: an orderly one (SENTINEL FAILOVER) and a master that hangs (SIGSTOP: its commands get no reply
// until the sentinels find it down and promote the replica). Each time no message that got a 250 is lost, every
// refusal is a 4xx (never a 5xx, never a hang), the node sends again on the new master without a restart, and the
// tenant's quota counts exactly the bytes of the messages that got a 250 (after the orderly one too: posta-quota
// confirms its commits with a replica, replica_wait_ms); the hung master's sessions get 4xx.
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
    // a delivery deferred by the failover (a route read or a quota check that failed) is retried within seconds:
    // Haraka takes no retry interval under 5 s (a shorter one falls back to its defaults, 64 s first)
    node = await startHaraka({
      redisUrl: sentinel.url,
      overrides: {
        'posta-auth.ini': '[main]\nfailure_delay_ms=0\n',
        'outbound.ini': 'enable_tls=false\ntemp_fail_intervals=5s*30\n',
        'posta-quota.ini': '[main]\ncommit_retry_seconds=2\nreplica_hold_seconds=10\n',
      },
    })
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
        c.write(`${message(rcpt)}.`)
        return await c.read()
      } finally {
        await c.close().catch(() => {})
      }
    })()
    const timeout = sleep(15000).then(() => ({ code: 0 as const, raw: 'no reply in 15 s' }))
    return Promise.race([attempt, timeout])
  }

  /** The message sendOne sends to `rcpt`, as posta-quota counts it (without the final dot line). */
  const message = (rcpt: string) => `Subject: ${rcpt}\r\nFrom: <me@customer.example>\r\n\r\nHello.\r\n`
  const bytesOf = (rcpt: string) => Buffer.byteLength(message(rcpt))
  /** The bytes of every message that got a 250 in this file: what the tenant's quota must count. */
  let acceptedBytes = 0

  /** The tenant's used bytes this month, once it has stopped moving (commits precede the 250; a lost one is made at delivery). */
  async function quotaUsed(): Promise<number> {
    let used = -1
    for (let i = 0; i < 50; i++) {
      const u = await posta(['usage', creds.tenant, '--json'], env)
      assert.equal(u.code, 0, u.stderr)
      const now = u.json().used_bytes
      if (now === used || now === acceptedBytes) return now
      used = now
      await sleep(200)
    }
    return used
  }

  async function assertQuotaExact() {
    assert.equal(await quotaUsed(), acceptedBytes, 'the quota counts exactly the bytes of the messages that got a 250')
  }

  /**
   * Four senders, each one message per connection in a loop, while `fail()` takes the master away; they go on until
   * 12 messages got a 250 after the switch. Checks what every failover must keep: each reply a 250 or a 4xx (never a
   * 5xx, never 15 s without a reply), mail accepted before and after without a restart, every 250 at the sink.
   */
  async function underLoad<T extends { from: number; to: number; switchedAt: number }>(fail: () => Promise<T>) {
    // a failover needs a replica in sync: the one a previous failover demoted resyncs first
    await sentinel.replicated()
    const replies: { rcpt: string; code: number; raw: string; at: number; ms: number }[] = []
    let stop = false
    let n = 0
    const worker = async () => {
      while (!stop) {
        const rcpt = `load${n++}-${Date.now()}@${domain}`
        const began = Date.now()
        const r = await sendOne(rcpt)
        replies.push({ rcpt, code: r.code, raw: r.raw, at: Date.now(), ms: Date.now() - began })
        if (r.code === 250) acceptedBytes += bytesOf(rcpt)
        else await sleep(100)
      }
    }
    const workers = Array.from({ length: 4 }, worker)
    let f: T
    try {
      await sleep(2000)
      f = await fail()
      assert.notEqual(f.from, f.to)
      // sending resumes by itself: wait for a run of 250s after the switch
      const until = Date.now() + 30000
      while (replies.filter((r) => r.at > f.switchedAt && r.code === 250).length < 12 && Date.now() < until) await sleep(200)
      await sleep(1000)
    } finally {
      stop = true // a failed step stops the senders too, or mocha never exits
      await Promise.all(workers)
    }

    const refused = replies.filter((r) => r.code !== 250)
    assert.ok(replies.some((r) => r.at < f.switchedAt && r.code === 250), 'mail was accepted before the failover')
    assert.ok(replies.filter((r) => r.at > f.switchedAt && r.code === 250).length >= 12, `mail is accepted after the failover without a restart: ${replies.slice(-8).map((r) => r.code).join(',')}`)
    assert.deepEqual(refused.filter((r) => !(r.code >= 400 && r.code < 500)), [], 'every refusal is a temporary 4xx (no reply within 15 s shows as 0)')
    const accepted = replies.filter((r) => r.code === 250).map((r) => r.rcpt)
    const deadline = Date.now() + 60000
    let got = new Set<string>()
    while (Date.now() < deadline) {
      got = new Set(sink.messages.map((m) => m.to[0]))
      if (accepted.every((r) => got.has(r))) break
      await sleep(250)
    }
    assert.deepEqual(accepted.filter((r) => !got.has(r)), [], `every 250 reached the sink (${accepted.length} accepted, ${refused.length} refused with 4xx)`)
    // the figures of the run, for docs/redis.md
    const figures = `${accepted.length} accepted, ${refused.length} answered 4xx, longest session ${Math.max(...replies.map((r) => r.ms))} ms (${[...new Set(refused.map((r) => r.raw.slice(0, 40)))].join(' | ')})`
    return { ...f!, replies, figures }
  }

  it('the CLI and the node reach the master through the sentinels; the quota counts the message', async () => {
    const r = await sendOne(`before@${domain}`)
    assert.equal(r.code, 250, r.raw)
    acceptedBytes += bytesOf(`before@${domain}`)
    await sink.waitFor(1)
    const list = await posta(['tenant', 'show', creds.tenant, '--json'], env)
    assert.equal(list.code, 0, list.stderr)
    await assertQuotaExact()
  })

  it('SENTINEL FAILOVER under load: no 5xx, no 250 lost, sending resumes on the new master, quota exact', async () => {
    const results = await underLoad(async () => {
      const { from, to } = await sentinel.failover()
      assert.notEqual(from, to)
      return { from, to, switchedAt: Date.now() }
    })
    // Sentinel promotes the replica first and demotes the old master about 10 s later (its next INFO of it); a
    // client that writes to the old master before it follows the +switch-master writes what the resync then drops.
    // posta-quota confirms each commit with a replica (WAIT, replica_wait_ms): one not confirmed is made again at
    // delivery, which waits until a replica confirms it, so the quota stays exact (docs/redis.md).
    const used = await quotaUsed()
    const lines = node.log().split('\n')
    const unconfirmed = lines.filter((l) => l.includes('quota commit not confirmed by a replica')).length
    const held = lines.filter((l) => l.includes('no replica confirmed it for')).length
    console.log(`      failover ${results.from} -> ${results.to}: ${results.figures}; quota ${used} of ${acceptedBytes} accepted bytes; ${unconfirmed} commits not confirmed by a replica, ${held} deliveries left after replica_hold_seconds`)
    assert.equal(used, acceptedBytes, 'the quota counts exactly the bytes of the messages that got a 250')
  })

  it('a master that hangs (SIGSTOP) under load: 4xx until the sentinels promote the replica, no 5xx, no hang, no 250 lost, quota exact', async () => {
    let resume: () => Promise<void> = async () => {}
    let frozenAt = 0
    const results = await underLoad(async () => {
      const f = await sentinel.freezeMaster()
      resume = f.resume
      frozenAt = f.frozenAt
      return f
    }).finally(() => resume())
    const during = results.replies.filter((r) => r.at > frozenAt && r.at <= results.switchedAt)
    assert.ok(during.some((r) => r.code >= 400 && r.code < 500), `a 4xx while the master hung: ${during.map((r) => r.code).join(',')}`)
    // the old master, woken, serves as the new one's replica (resume() waited for it); the service needed no restart
    const r = await sendOne(`after-resume@${domain}`)
    assert.equal(r.code, 250, r.raw)
    acceptedBytes += bytesOf(`after-resume@${domain}`)
    for (let i = 0; i < 100 && !sink.messages.some((m) => m.to[0] === `after-resume@${domain}`); i++) await sleep(100)
    assert.ok(sink.messages.some((m) => m.to[0] === `after-resume@${domain}`), 'the message after the resume reached the sink')
    await assertQuotaExact()
    console.log(`      hung master ${results.from} -> ${results.to} in ${results.switchedAt - frozenAt} ms: ${results.figures}`)
  })
})
