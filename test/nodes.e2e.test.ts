// Several nodes end to end: two independent Haraka nodes (POSTA_NODE alpha and beta) sharing one real Redis, a real
// sink, loopback DNS for the monitor. Each node binds only the pool IPs it owns and the shared ones; a quota is exact
// across the nodes; a suspension is honoured by both at once; the monitor runs one cycle per interval in all.
// Pool: alpha owns 127.0.0.3 and 127.0.0.4, beta owns 127.0.0.5, 127.0.0.6 is shared (127.0.0.2 is the zones' canary).
import { strict as assert } from 'node:assert'
import nodemailer from 'nodemailer'
import { keys } from '../lib/keys'
import { monthOf } from '../lib/period'
import { posta } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'

const OWNERS: Record<string, string | null> = { '127.0.0.3': 'alpha', '127.0.0.4': 'alpha', '127.0.0.5': 'beta', '127.0.0.6': null }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('several nodes on one Redis end to end', function () {
  this.timeout(120000)
  let redis: TestRedis
  let dns: TestDns
  let alpha: HarakaNode
  let beta: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let creds: { tenant: string; login: string; password: string }
  const domain = `${uniqueName('nodes')}.test`

  before(async () => {
    redis = await testRedis()
    dns = await startDns()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    const overrides = {
      'posta-outbound.ini': '[rotation]\nactive=100\nwait_seconds=1\n',
      'outbound.ini': 'enable_tls=false\nconcurrency_max=100\n',
      'posta-monitor.ini': `[main]\ninterval=2\nresolvers=${dns.server}\ntimeout_ms=300\nauto_reinstate=false\nzones=zen.test\n\n[zone zen.test]\nlisted=127.0.0.2:SBL\n`,
      'posta-auth.ini': '[main]\nfailure_delay_ms=0\n',
    }
    for (const [ip, node] of Object.entries(OWNERS)) {
      const r = await posta(['ip', 'add', ip, '--helo', `mta${ip.split('.')[3]}.nodes.test`, ...(node ? ['--node', node] : [])], env)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, node ? new RegExp(`node ${node}\\)`) : /shared by every node\)/)
    }
    ;[alpha, beta] = await Promise.all([
      startHaraka({ redisUrl: redis.url, overrides, env: { POSTA_NODE: 'alpha' } }),
      startHaraka({ redisUrl: redis.url, overrides, env: { POSTA_NODE: 'Beta' } }), // node names are case-insensitive
    ])
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['package', 'set', 'nodes-pkg', '--traffic', '1GB'], env)).code, 0)
    const t = await posta(['tenant', 'create', uniqueName('t'), '--package', 'nodes-pkg', '--contact', 'ops@example.net', '--json'], env)
    assert.equal(t.code, 0, t.stderr)
    creds = t.json()
  })
  after(async () => {
    await Promise.all([alpha?.stop(), beta?.stop()])
    await sink?.close()
    await dns?.close()
    await redis?.close()
  })

  async function sendVia(node: HarakaNode, rcpts: string[], login = creds): Promise<void> {
    const t = nodemailer.createTransport({
      host: '127.0.0.1', port: node.submissionPort, secure: false, requireTLS: true, pool: true, maxConnections: 3,
      auth: { user: login.login, pass: login.password }, tls: { rejectUnauthorized: false },
    })
    try {
      await Promise.all(rcpts.map((to) => t.sendMail({ from: 'sender@customer.example', to, subject: to, text: 'x' })))
    } finally {
      t.close()
    }
  }

  /** The source IP each recipient's message arrived from. */
  async function sources(rcpts: string[], timeoutMs = 30000): Promise<string[]> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const got = new Map(sink.messages.filter((m) => rcpts.includes(m.to[0])).map((m) => [m.to[0], m.remoteAddress.replace(/^::ffff:/, '')]))
      if (got.size === rcpts.length) return [...got.values()]
      if (Date.now() > until) throw new Error(`only ${got.size} of ${rcpts.length} delivered`)
      await sleep(100)
    }
  }

  const rcptList = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}-${Date.now()}@${domain}`)

  it('posta ip list shows the owner of each IP (shared ones: every node)', async () => {
    const r = await posta(['ip', 'list', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(Object.fromEntries((r.json() as { ip: string; node?: string }[]).map((p) => [p.ip, p.node ?? null])), OWNERS)
    const text = await posta(['ip', 'list'], env)
    assert.match(text.stdout, /^IP\s+NODE\s+HELO/m)
    assert.match(text.stdout, /^127\.0\.0\.5\s+beta\s/m)
    assert.match(text.stdout, /^127\.0\.0\.6\s+\(every\)\s/m)
  })

  it('a bad --node is refused with one clear error, and nothing is added', async () => {
    for (const bad of ['Bad Name', 'relay/1', 'a'.repeat(64), '']) {
      const r = await posta(['ip', 'add', '127.0.0.9', '--helo', 'mta9.nodes.test', '--node', bad], env)
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`)
      assert.match(r.stderr, /^posta: (--node=.* is not a node name|--node needs a node name)/, r.stderr)
    }
    assert.equal(await redis.client.hexists(keys.pool(), '127.0.0.9'), 0)
  })

  it('each node binds only the IPs it owns and the shared ones', async () => {
    const ra = rcptList('alpha', 12)
    const rb = rcptList('beta', 12)
    await Promise.all([sendVia(alpha, ra), sendVia(beta, rb)])
    const [fromA, fromB] = [new Set(await sources(ra)), new Set(await sources(rb))]
    assert.ok([...fromA].every((ip) => ['127.0.0.3', '127.0.0.4', '127.0.0.6'].includes(ip)), `alpha used ${[...fromA].join(' ')}`)
    assert.ok([...fromB].every((ip) => ['127.0.0.5', '127.0.0.6'].includes(ip)), `beta used ${[...fromB].join(' ')}`)
    assert.ok(fromA.size >= 2 && fromB.size >= 2, `each node spreads over its IPs: alpha ${[...fromA].join(' ')}, beta ${[...fromB].join(' ')}`)
  })

  it('a suspension is honoured by both nodes at once: an IP, then a tenant', async () => {
    assert.equal((await posta(['ip', 'suspend', '127.0.0.6', '--reason', 'nodes test'], env)).code, 0)
    const ra = rcptList('susp-alpha', 8)
    const rb = rcptList('susp-beta', 8)
    await Promise.all([sendVia(alpha, ra), sendVia(beta, rb)])
    const [fromA, fromB] = [await sources(ra), await sources(rb)]
    assert.ok(fromA.every((ip) => ip === '127.0.0.3' || ip === '127.0.0.4'), `alpha: ${fromA.join(' ')}`)
    assert.ok(fromB.every((ip) => ip === '127.0.0.5'), `beta: ${fromB.join(' ')}`)
    assert.equal((await posta(['ip', 'reinstate', '127.0.0.6'], env)).code, 0)

    assert.equal((await posta(['tenant', 'suspend', creds.tenant], env)).code, 0)
    try {
      for (const node of [alpha, beta]) {
        await assert.rejects(sendVia(node, rcptList('suspended', 1)), (err: Error & { responseCode?: number }) => String(err.responseCode).startsWith('5'), 'refused at once')
      }
    } finally {
      assert.equal((await posta(['tenant', 'resume', creds.tenant], env)).code, 0)
    }
  })

  it('a quota is exact across the nodes: concurrent messages on both never pass the allowance, and fill it exactly', async () => {
    const body = ['Subject: q', 'From: <me@customer.example>', '', 'Hello.', ''].join('\r\n')
    const size = Buffer.byteLength(body)
    const pkg = uniqueName('p')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', String(size * 5)], env)).code, 0)
    const tr = await posta(['tenant', 'create', uniqueName('q'), '--package', pkg, '--contact', `owner@${domain}`, '--json'], env)
    assert.equal(tr.code, 0, tr.stderr)
    const t = tr.json()
    const send = async (node: HarakaNode): Promise<SmtpReply> => {
      const c = await SmtpClient.connect({ port: node.submissionPort })
      try {
        await c.ehlo()
        await c.starttls()
        await c.ehlo()
        assert.equal((await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)).code, 235)
        assert.equal((await c.send('MAIL FROM:<me@customer.example>')).code, 250)
        const rr = await c.send(`RCPT TO:<quota@${domain}>`)
        if (rr.code !== 250) return rr
        const d = await c.send('DATA')
        if (d.code !== 354) return d
        c.write(`${body}.`)
        return await c.read()
      } finally {
        await c.close()
      }
    }
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => send(i % 2 ? alpha : beta)))
    let accepted = replies.filter((r) => r.code === 250).length
    assert.ok(accepted <= 5, `at most the allowance: ${accepted}`)
    assert.ok(replies.every((r) => r.code === 250 || r.code === 552 || r.code === 451), replies.map((r) => r.raw).join(' | '))
    // what a refusal left (451: room held by messages still in flight) is taken by later messages, to the byte
    for (let i = 0; accepted < 5 && i < 20; i++) {
      const r = await send(i % 2 ? alpha : beta)
      if (r.code === 250) accepted++
      else await sleep(200)
    }
    assert.equal(accepted, 5)
    assert.equal((await send(alpha)).code, 552, 'full: refused on one node')
    assert.equal((await send(beta)).code, 552, 'and on the other')
    const month = await redis.client.hgetall(keys.usageMonth(t.tenant, monthOf(new Date(), 'Europe/Rome')))
    assert.deepEqual([Number(month.bytes), Number(month.messages)], [size * 5, 5])
  })

  it('the monitor runs one cycle per interval across the nodes', async () => {
    await sleep(7000)
    const cycles = (await redis.client.lrange(keys.monitorCycles(), 0, -1)).map((v) => JSON.parse(v) as { window?: number })
    const windows = cycles.map((c) => c.window)
    assert.ok(windows.length >= 2, `cycles ran: ${windows.length}`)
    assert.equal(new Set(windows).size, windows.length, `one cycle per 2 s window: ${windows.join(',')}`)
  })
})
