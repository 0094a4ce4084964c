// Redis Cluster end to end: a real 3-master Redis Cluster on loopback (testkit/cluster.ts), two Haraka nodes and the
// CLI on REDIS_URL=redis+cluster://..., a real sink, loopback DNS for the monitor. Relay, quota, spamtraps and bans,
// the monitor with its suspension and investigation, and the CLI all run with every transaction, script and pipeline
// inside one hash slot (a CROSSSLOT refusal anywhere fails a step here).
import { strict as assert } from 'node:assert'
import nodemailer from 'nodemailer'
import { keys } from '../lib/keys'
import { monthOf } from '../lib/period'
import { connectTool, type RedisClient } from '../lib/redis'
import { posta } from '../testkit/cli'
import { startTestCluster, type TestCluster } from '../testkit/cluster'
import { startDns, type TestDns } from '../testkit/dns'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { uniqueName } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('Redis Cluster end to end: relay, quota, traps, monitor and CLI', function () {
  this.timeout(180000)
  let cluster: TestCluster
  let redis: RedisClient
  let dns: TestDns
  let alpha: HarakaNode
  let beta: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  const domain = `${uniqueName('cl')}.test`

  before(async () => {
    cluster = await startTestCluster()
    redis = connectTool(cluster.url)
    await redis.connect()
    dns = await startDns()
    sink = await startSink()
    env = { REDIS_URL: cluster.url }
    const overrides = {
      'posta-outbound.ini': '[rotation]\nactive=100\nwait_seconds=1\n',
      'outbound.ini': 'enable_tls=false\nconcurrency_max=100\n',
      'posta-auth.ini': '[main]\nfailure_delay_ms=0\n',
      'posta-monitor.ini': `[main]\ninterval=2\nresolvers=${dns.server}\ntimeout_ms=300\nauto_reinstate=false\ninvestigation_hours=1\nzones=zen.test\n\n[zone zen.test]\nlisted=127.0.0.2:SBL,127.0.0.4:XBL\n`,
    }
    for (const [ip, node] of [['127.0.0.3', 'alpha'], ['127.0.0.4', ''], ['127.0.0.5', 'beta']]) {
      const r = await posta(['ip', 'add', ip, '--helo', `mta${ip.split('.')[3]}.cl.test`, ...(node ? ['--node', node] : [])], env)
      assert.equal(r.code, 0, r.stderr)
    }
    ;[alpha, beta] = await Promise.all([
      startHaraka({ redisUrl: cluster.url, overrides, env: { POSTA_NODE: 'alpha' } }),
      startHaraka({ redisUrl: cluster.url, overrides, env: { POSTA_NODE: 'beta' } }),
    ])
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    await Promise.all([alpha?.stop(), beta?.stop()])
    redis?.disconnect()
    await sink?.close()
    await dns?.close()
    await cluster?.close()
  })

  async function tenant(traffic: string | number): Promise<{ tenant: string; login: string; password: string }> {
    const pkg = uniqueName('p')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', String(traffic)], env)).code, 0)
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', `owner@${uniqueName('c')}.example`, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return r.json()
  }

  /** One message on a connection of its own; the reply that decided it. */
  async function sendOne(node: HarakaNode, t: { login: string; password: string }, rcpt: string, body = 'Subject: x\r\n\r\nHello.\r\n'): Promise<SmtpReply> {
    const c = await SmtpClient.connect({ port: node.submissionPort })
    try {
      await c.ehlo()
      await c.starttls()
      await c.ehlo()
      for (const line of [`AUTH PLAIN ${plainResponse(t.login, t.password)}`, 'MAIL FROM:<me@customer.example>', `RCPT TO:<${rcpt}>`, 'DATA']) {
        const r = await c.send(line)
        if (r.code >= 400) return r
      }
      c.write(`${body}.`)
      return await c.read()
    } finally {
      await c.close().catch(() => {})
    }
  }

  async function delivered(rcpts: string[], timeoutMs = 30000): Promise<string[]> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const got = new Map(sink.messages.filter((m) => rcpts.includes(m.to[0])).map((m) => [m.to[0], m.remoteAddress.replace(/^::ffff:/, '')]))
      if (got.size === rcpts.length) return [...got.values()]
      if (Date.now() > until) throw new Error(`only ${got.size} of ${rcpts.length} delivered`)
      await sleep(100)
    }
  }

  it('the CLI works on the Cluster: packages, tenants, routes, the pool with its owners', async () => {
    const t = await tenant('1GB')
    const show = await posta(['tenant', 'show', t.tenant, '--json'], env)
    assert.equal(show.code, 0, show.stderr)
    assert.equal(show.json().status, 'active')
    assert.ok((await posta(['tenant', 'list', '--json'], env)).json().some((x: { slug: string }) => x.slug === t.tenant))
    assert.ok((await posta(['package', 'list', '--json'], env)).json().length >= 1)
    assert.equal((await posta(['route', 'list'], env)).code, 0)
    const pool = (await posta(['ip', 'list', '--json'], env)).json() as { ip: string; node?: string }[]
    assert.deepEqual(pool.map((p) => [p.ip, p.node ?? null]), [['127.0.0.3', 'alpha'], ['127.0.0.4', null], ['127.0.0.5', 'beta']])
    // the keys really are spread over the masters
    const perNode = await Promise.all(cluster.nodes.map((n) => connectTool(`redis://127.0.0.1:${n.port}`)).map(async (c) => {
      try {
        await c.connect()
        return Number(await c.dbsize())
      } finally {
        c.disconnect()
      }
    }))
    assert.ok(perNode.filter((n) => n > 0).length >= 2, `keys on several masters: ${perNode.join(',')}`)
  })

  it('relay: 20 concurrent logins over both nodes, every message delivered from its node\'s IPs', async () => {
    const t = await tenant('1GB')
    const rcpts = Array.from({ length: 20 }, (_, i) => `relay${i}-${Date.now()}@${domain}`)
    const replies = await Promise.all(rcpts.map((r, i) => sendOne(i % 2 ? alpha : beta, t, r)))
    assert.deepEqual(replies.filter((r) => r.code !== 250).map((r) => r.raw), [])
    const ips = await delivered(rcpts)
    assert.ok(ips.every((ip) => ['127.0.0.3', '127.0.0.4', '127.0.0.5'].includes(ip)), ips.join(' '))
    // the ledger wrote the IP's hour and the tenant's day (one pipeline per hash tag)
    const traffic = await posta(['ip', 'traffic', ips[0], '--json'], env)
    assert.ok(traffic.json().tenants.some((x: { tenant: string }) => x.tenant === t.tenant), traffic.stdout)
  })

  it('quota: exact across the nodes, to the byte, then refused on both', async () => {
    const body = 'Subject: q\r\n\r\nHello.\r\n'
    const size = Buffer.byteLength(body)
    const t = await tenant(size * 4)
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => sendOne(i % 2 ? alpha : beta, t, `quota@${domain}`, body)))
    let accepted = replies.filter((r) => r.code === 250).length
    assert.ok(accepted <= 4, `at most the allowance: ${accepted}`)
    for (let i = 0; accepted < 4 && i < 20; i++) {
      if ((await sendOne(i % 2 ? alpha : beta, t, `quota@${domain}`, body)).code === 250) accepted++
      else await sleep(200)
    }
    assert.equal(accepted, 4)
    assert.equal((await sendOne(alpha, t, `quota@${domain}`, body)).code, 552)
    assert.equal((await sendOne(beta, t, `quota@${domain}`, body)).code, 552)
    const month = await redis.hgetall(keys.usageMonth(t.tenant, monthOf(new Date(), 'Europe/Rome')))
    assert.deepEqual([Number(month.bytes), Number(month.messages)], [size * 4, 4])
    const usage = await posta(['usage', t.tenant, '--json'], env)
    assert.equal(usage.json().used_bytes, size * 4)
  })

  it('traps: a pristine trap refuses the message, closes the tenant on both nodes and records the ban', async () => {
    const t = await tenant('1GB')
    const trap = `trap-${Date.now()}@${domain}`
    assert.equal((await posta(['trap', 'add', trap, '--class', 'pristine'], env)).code, 0)
    const r = await sendOne(alpha, t, trap)
    assert.ok(r.code >= 500, r.raw)
    assert.equal((await posta(['tenant', 'show', t.tenant, '--json'], env)).json().status, 'closed')
    const ban = await posta(['ban', 'show', t.tenant, '--json'], env)
    assert.equal(ban.code, 0, ban.stderr)
    const other = await sendOne(beta, t, `after-ban@${domain}`)
    assert.ok(other.code >= 500, `the other node refuses the closed tenant: ${other.raw}`)
    assert.equal(sink.messages.some((m) => m.to[0] === trap), false)
  })

  it('monitor: a listing suspends the IP on every node and opens an investigation; one cycle per interval', async () => {
    const t = await tenant('1GB')
    dns.set('zen.test', '127.0.0.4', { a: ['127.0.0.4'] })
    const until = Date.now() + 30000
    let entry: { state: string; suspended_by?: string } | undefined
    while (Date.now() < until) {
      entry = ((await posta(['ip', 'list', '--json'], env)).json() as { ip: string; state: string; suspended_by?: string }[]).find((p) => p.ip === '127.0.0.4')
      if (entry?.state === 'suspended') break
      await sleep(500)
    }
    assert.equal(entry?.state, 'suspended')
    assert.equal(entry?.suspended_by, 'monitor')
    const inv = await posta(['investigation', 'list', '--json'], env)
    assert.equal(inv.code, 0, inv.stderr)
    assert.ok(inv.json().length >= 1, inv.stdout)
    // deliveries now leave only from each node's own IP
    const rcpts = Array.from({ length: 6 }, (_, i) => `after-listing${i}-${Date.now()}@${domain}`)
    await Promise.all(rcpts.map((r, i) => sendOne(i % 2 ? alpha : beta, t, r)))
    assert.ok((await delivered(rcpts)).every((ip) => ip !== '127.0.0.4'))
    const windows = (await redis.lrange(keys.monitorCycles(), 0, -1)).map((v) => (JSON.parse(v) as { window?: number }).window)
    assert.ok(windows.length >= 2)
    assert.equal(new Set(windows).size, windows.length, `one cycle per window: ${windows.join(',')}`)
    const status = await posta(['monitor', 'status'], env)
    assert.equal(status.code, 0, status.stderr)
  })

  it('nodemailer through the Cluster-backed node: a message arrives intact', async () => {
    const t = await tenant('1GB')
    const to = `intact-${Date.now()}@${domain}`
    const tr = nodemailer.createTransport({ host: '127.0.0.1', port: beta.submissionPort, requireTLS: true, auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false } })
    await tr.sendMail({ from: 'me@customer.example', to, subject: 'intact', text: 'héllo wörld\n.leading dot\n' })
    tr.close()
    await delivered([to])
    const m = sink.messages.find((x) => x.to[0] === to)!
    assert.match(m.raw, /Subject: intact/)
  })
})
