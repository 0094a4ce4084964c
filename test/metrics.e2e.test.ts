// /metrics end to end: a real Haraka with Posta's plugins, a real Redis and a real sink MX. After known traffic
// (messages delivered, deferred and bounced, refusals by quota, suppression, trap and relay policy, AUTH failures)
// the node's Prometheus text parses line by line and its counters equal what was sent. Then Haraka's cluster mode
// (nodes=2): the master serves the sum of both workers' counters.
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { keys } from '../lib/keys'
import { PROJECT_ROOT, setIniMain } from '../service/haraka-dir'
import { freePort, waitFor } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { smtpError, startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'
import { parsePrometheus, sumOf, valueOf, type Family } from './metrics.parse'

type Metrics = Map<string, Family>

async function get(port: number, urlPath: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { method })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() }
}

async function scrape(port: number): Promise<Metrics> {
  const r = await get(port, '/metrics')
  assert.equal(r.status, 200, r.body)
  assert.match(r.type, /^text\/plain; version=0\.0\.4/)
  return parsePrometheus(r.body)
}

/** A message of a known size (posta-quota's count: as sent, without the final dot line). */
function body(subject: string): string {
  return [`Subject: ${subject}`, 'From: <me@example.test>', '', 'Hello.', ''].join('\r\n')
}

const BASE_OVERRIDES = {
  'posta-auth.ini': '[main]\nfailure_delay_ms=0\n',
  'posta-quota.ini': '[warnings]\nenabled=false\n',
  'posta-outbound.ini': '[rotation]\nactive=2\nwait_seconds=1\n',
  'outbound.ini': 'enable_tls=false\nconcurrency_max=100\ntemp_fail_intervals=1h\n',
}

describe('metrics end to end: one Haraka node', function () {
  this.timeout(180000)
  let redis: TestRedis
  let node: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let metricsPort: number
  const domain = `${uniqueName('m')}.test`
  const sender = `me@${domain}`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    sink.rcptPolicy = (address) => {
      if (address.startsWith('defer')) return smtpError(451, '4.3.0 try again later')
      if (address.startsWith('gone')) return smtpError(550, '5.1.1 no such mailbox')
      return null
    }
    env = { REDIS_URL: redis.url }
    metricsPort = await freePort('127.0.0.1')
    node = await startHaraka({ redisUrl: redis.url, overrides: BASE_OVERRIDES, env: { POSTA_METRICS_PORT: String(metricsPort) } })
    await node.waitForLog(/metrics served/)
    for (const ip of ['127.0.0.2', '127.0.0.3']) assert.equal((await posta(['ip', 'add', ip, '--helo', `mta.${domain}`], env)).code, 0)
    assert.equal((await posta(['ip', 'suspend', '127.0.0.3', '--reason', 'test listing'], env)).code, 0)
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `bait@trap.${domain}`, '--class', 'pristine'], env)).code, 0)
  })
  after(async () => {
    await node?.stop()
    await sink?.close()
    await redis?.close()
  })

  async function tenant(traffic: string): Promise<{ tenant: string; login: string; password: string }> {
    const pkg = uniqueName('p')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', traffic], env)).code, 0)
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', `owner@${domain}`, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return r.json()
  }

  let connections = 0
  /** What the traffic test sent, for the log recipes of docs/operations.md. */
  const sent = { good: '', small: '', banned: '', firstTx: '' }
  async function connect(): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: node.submissionPort })
    connections++
    await c.ehlo()
    assert.equal((await c.starttls()).code, 220)
    await c.ehlo()
    return c
  }

  async function login(t: { login: string; password: string }): Promise<SmtpClient> {
    const c = await connect()
    const r = await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)
    assert.equal(r.code, 235, r.raw)
    return c
  }

  /** One transaction; returns the reply that decided it (MAIL, RCPT or end of DATA). */
  async function send(c: SmtpClient, rcpt: string, text: string, mailParams = ''): Promise<SmtpReply> {
    const m = await c.send(`MAIL FROM:<${sender}>${mailParams}`)
    if (m.code !== 250) return m
    const r = await c.send(`RCPT TO:<${rcpt}>`)
    if (r.code !== 250) {
      await c.send('RSET')
      return r
    }
    const d = await c.send('DATA')
    assert.equal(d.code, 354, d.raw)
    c.write(`${text}.`)
    return c.read()
  }

  it('counts sessions, AUTH, refusals by reason, accepted messages and bytes, deliveries by source IP and result', async () => {
    const before = await scrape(metricsPort)
    assert.equal(valueOf(before, 'posta_messages_accepted_total'), 0)
    const good = await tenant('1GB')
    const small = await tenant('80')
    const banned = await tenant('1GB')
    Object.assign(sent, { good: good.tenant, small: small.tenant, banned: banned.tenant })
    let bytes = 0
    const accept = async (c: SmtpClient, rcpt: string, subject: string) => {
      const text = body(subject)
      const r = await send(c, rcpt, text)
      assert.equal(r.code, 250, r.raw)
      bytes += Buffer.byteLength(text)
      sent.firstTx ||= /\(([^)]+)\)/.exec(r.raw)![1]
    }

    // 5 delivered, 1 deferred (the sink answers 451), 1 bounced (550): 7 accepted by the good tenant
    const c1 = await login(good)
    for (let i = 0; i < 5; i++) await accept(c1, `ok${i}@${domain}`, `ok ${i}`)
    await accept(c1, `defer@${domain}`, 'deferred')
    await accept(c1, `gone@${domain}`, 'bounced')
    await node.waitForLog(/recipient suppressed after a hard bounce/, 30000)
    // the suppressed recipient is refused at RCPT
    const sup = await send(c1, `gone@${domain}`, body('again'))
    assert.equal(sup.code, 550, sup.raw)
    await c1.close()

    // quota: 80 bytes a month; the first message fits, a SIZE= too big is refused at MAIL, the next at end of DATA
    const c2 = await login(small)
    await accept(c2, `ok-small@${domain}`, 'small one')
    const big = await send(c2, `ok-small@${domain}`, body('x'), ' SIZE=1000')
    assert.equal(big.code, 552, big.raw)
    const over = await send(c2, `ok-small@${domain}`, body('small two'))
    assert.equal(over.code, 552, over.raw)
    await c2.close()

    // a trap: refused at RCPT (and the tenant banned)
    const c3 = await login(banned)
    const trap = await send(c3, `bait@trap.${domain}`, body('bait'))
    assert.equal(trap.code, 550, trap.raw)
    await c3.close()

    // AUTH: two wrong passwords and an unknown login; MAIL without AUTH
    const c4 = await connect()
    assert.equal((await c4.send(`AUTH PLAIN ${plainResponse(good.login, 'wrong-password')}`)).code, 535)
    assert.equal((await c4.send(`AUTH PLAIN ${plainResponse(good.login, 'wrong-again')}`)).code, 535)
    await c4.close()
    const c5 = await connect()
    assert.equal((await c5.send(`AUTH PLAIN ${plainResponse(`nobody@${uniqueName('x')}.posta.localhost`, 'x')}`)).code, 535)
    const anon = await c5.send(`MAIL FROM:<${sender}>`)
    assert.equal(anon.code, 530, anon.raw)
    await c5.close()

    // 6 sink deliveries: 5 messages and the bounce's DSN to the sender (same domain, routed to the sink)
    await sink.waitFor(6, 30000)
    await node.waitForLog(/\bdeferred\b.*result=deferred/, 30000)
    let m: Metrics = before
    await waitFor(async () => {
      m = await scrape(metricsPort)
      return valueOf(m, 'posta_smtp_sessions') === 0 && sumOf(m, 'posta_deliveries_total') >= 8
    }, 'sessions closed and deliveries counted', 20000)

    // (testkit's start-up probes connected once to each port before `before` was read)
    const opened = (port?: number) => port === undefined
      ? sumOf(m, 'posta_smtp_connections_total') - sumOf(before, 'posta_smtp_connections_total')
      : valueOf(m, 'posta_smtp_connections_total', { port: String(port) }) - valueOf(before, 'posta_smtp_connections_total', { port: String(port) })
    assert.equal(opened(node.submissionPort), connections)
    assert.equal(opened(), connections)
    assert.equal(valueOf(m, 'posta_auth_successes_total'), 3)
    assert.equal(valueOf(m, 'posta_auth_failures_total', { reason: 'wrong_password' }), 2)
    assert.equal(valueOf(m, 'posta_auth_failures_total', { reason: 'no_such_login' }), 1)
    assert.equal(sumOf(m, 'posta_auth_failures_total'), 3)

    const refusals = (reason: string, stage: string) => valueOf(m, 'posta_smtp_refusals_total', { reason, stage, type: 'permanent' })
    assert.equal(refusals('suppression', 'rcpt'), 1)
    assert.equal(refusals('quota', 'mail'), 1)
    assert.equal(refusals('quota', 'data_post'), 1)
    assert.equal(refusals('trap', 'rcpt'), 1)
    assert.equal(refusals('auth', 'mail'), 1)
    assert.equal(sumOf(m, 'posta_smtp_refusals_total'), 5, 'no other refusal')

    assert.equal(valueOf(m, 'posta_messages_accepted_total'), 8)
    assert.equal(valueOf(m, 'posta_recipients_accepted_total'), 8)
    assert.equal(valueOf(m, 'posta_bytes_accepted_total'), bytes)

    const deliveries = (result: string) => valueOf(m, 'posta_deliveries_total', { source_ip: '127.0.0.2', result })
    assert.equal(deliveries('delivered'), 7, '5 messages, the small tenant\'s one and the DSN')
    assert.equal(deliveries('deferred'), 1)
    assert.equal(deliveries('bounced'), 1)
    assert.equal(sumOf(m, 'posta_deliveries_total'), 9, 'nothing left from the suspended IP or the default address')

    // quota scripts: a reserve per message that reached the end of DATA (8 accepted, 1 refused), a commit per accepted one
    assert.equal(valueOf(m, 'posta_quota_seconds_count', { op: 'reserve' }), 9)
    assert.equal(valueOf(m, 'posta_quota_seconds_count', { op: 'commit' }), 8)
    assert.ok(sumOf(m, 'posta_redis_command_seconds_count') > 0)
    assert.equal(m.get('posta_redis_command_errors_total')?.type, 'counter') // (a loaded machine may time one out)

    // the node's gauges
    assert.equal(valueOf(m, 'posta_pool_ips', { state: 'active' }), 1)
    assert.equal(valueOf(m, 'posta_pool_ips', { state: 'suspended' }), 1)
    assert.equal(valueOf(m, 'posta_pool_ip_active', { ip: '127.0.0.2' }), 1)
    assert.equal(valueOf(m, 'posta_pool_ip_active', { ip: '127.0.0.3' }), 0)
    assert.equal(valueOf(m, 'posta_queue_files'), 1, 'the deferred message waits in the queue')
    assert.equal(valueOf(m, 'posta_redis_up'), 1)
    assert.equal(valueOf(m, 'posta_haraka_workers'), 1)
  })

  it('docs/operations.md: its log recipes answer the usual questions about this traffic', () => {
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'operations.md'), 'utf8')
    const section = /\n## The usual questions\n([\s\S]*?)\n## /.exec(doc)
    assert.ok(section, 'docs/operations.md has "The usual questions"')
    const recipes = [...section[1].matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1].split('\n'))
      .map((l) => l.replace(/\s+#[^'"]*$/, '').trim()).filter((l) => l.startsWith('grep '))
    assert.equal(recipes.length, 5)
    const run = (recipe: string, tenant: string) => execFileSync('bash', ['-c', recipe
      .replaceAll('203\\.0\\.113\\.7', '127\\.0\\.0\\.2')
      .replaceAll('tenant=acme', `tenant=${tenant}`)
      .replaceAll('5E0A1C52-9D1F-4E7B-A3C2-0F6B7D8E9A10\\.1', sent.firstTx.replaceAll('.', '\\.'))
      .replaceAll('posta.log', node.logFile)], { encoding: 'utf8' })
    /** `uniq -c` output as { value: count }. */
    const counts = (out: string) => Object.fromEntries(out.trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([n, v]) => [v, Number(n)]))
    const [byIp, queuedToday, resultsToday, refusalsOf, oneMessage] = recipes
    // through 127.0.0.2: the good tenant's 5 delivered, 1 deferred, 1 bounced and its bounce's DSN; the small one's 1
    assert.deepEqual(counts(run(byIp, '')), { [`tenant=${sent.good}`]: 8, [`tenant=${sent.small}`]: 1 })
    assert.equal(run(queuedToday, sent.good).trim(), '7')
    assert.deepEqual(counts(run(resultsToday, sent.good)), { 'result=delivered': 6, 'result=deferred': 1, 'result=bounced': 1 })
    assert.equal(run(refusalsOf, sent.good).trim().split('\n').length, 1)
    assert.match(run(refusalsOf, sent.good), /RCPT refused: suppressed after a hard bounce/)
    assert.equal(run(refusalsOf, sent.small).trim().split('\n').length, 2)
    assert.match(run(refusalsOf, sent.banned), /\[CRIT\] .* tenant BANNED: mail to a pristine spamtrap/)
    const lines = run(oneMessage, '').trim().split('\n')
    assert.deepEqual(lines.map((l) => /\] \[posta-[a-z]+\] ([a-z]+) /.exec(l)?.[1]), ['queued', 'delivered'])
  })

  it('the last blocklist cycle\'s duration and zone health come from Redis', async () => {
    const report = { node: 'elsewhere:1', started_at: '2026-01-01T00:00:00.000Z', duration_ms: 1500, ips: 2, queries: 4, zones: [{ zone: 'bl.example', healthy: true, reason: '' }, { zone: 'broken.example', healthy: false, reason: 'answers 127.0.0.1' }], listed: [{ ip: '127.0.0.2' }], unknown: 0, suspended: [], cleared: [], reinstated: [], investigations: [], warnings: [] }
    await redis.client.lpush(keys.monitorCycles(), JSON.stringify(report))
    const m = await scrape(metricsPort)
    assert.equal(valueOf(m, 'posta_monitor_last_cycle_seconds'), 1.5)
    assert.equal(valueOf(m, 'posta_monitor_last_cycle_timestamp_seconds'), Date.parse(report.started_at) / 1000)
    assert.equal(valueOf(m, 'posta_monitor_last_cycle_listings'), 1)
    assert.equal(valueOf(m, 'posta_monitor_zone_healthy', { zone: 'bl.example' }), 1)
    assert.equal(valueOf(m, 'posta_monitor_zone_healthy', { zone: 'broken.example' }), 0)
  })

  it('/healthz says whether Redis answers; other paths and methods are refused', async () => {
    const h = await get(metricsPort, '/healthz')
    assert.equal(h.status, 200)
    assert.deepEqual(JSON.parse(h.body), { ok: true, redis: 'up', queue_files: 1 })
    assert.equal((await get(metricsPort, '/')).status, 404)
    assert.equal((await get(metricsPort, '/metrics', 'POST')).status, 405)
    assert.equal((await get(metricsPort, '/metrics', 'HEAD')).status, 200)
  })

  it('serves on loopback only by default', async () => {
    const text = fs.readFileSync(node.logFile, 'utf8')
    assert.match(text, new RegExp(`metrics served metrics_listen=127\\.0\\.0\\.1 metrics_port=${metricsPort}`))
  })
})

describe('metrics end to end: the edges', function () {
  this.timeout(120000)
  let redis: TestRedis

  before(async () => {
    redis = await testRedis()
  })
  after(async () => {
    await redis?.close()
  })

  it('a metrics port already taken: the relay still serves mail, and says why there are no metrics', async () => {
    const port = await freePort('127.0.0.1')
    const holder = net.createServer()
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', () => resolve()))
    const node = await startHaraka({ redisUrl: redis.url, overrides: BASE_OVERRIDES, env: { POSTA_METRICS_PORT: String(port) } })
    try {
      await node.waitForLog(/\[ERROR\].*metrics not served: listen EADDRINUSE.*metrics_port=\d+/)
      const c = await SmtpClient.connect({ port: node.submissionPort })
      assert.equal((await c.ehlo()).code, 250)
      await c.close()
    } finally {
      await node.stop()
      holder.close()
    }
  })

  it('Redis unreachable: /healthz answers 503 and /metrics still parses, with posta_redis_up 0', async () => {
    const port = await freePort('127.0.0.1')
    const dead = `redis://127.0.0.1:${await freePort('127.0.0.1')}/0`
    const node = await startHaraka({ redisUrl: dead, overrides: BASE_OVERRIDES, env: { POSTA_METRICS_PORT: String(port) } })
    try {
      await node.waitForLog(/metrics served/)
      const h = await get(port, '/healthz')
      assert.equal(h.status, 503)
      assert.equal(JSON.parse(h.body).redis, 'down')
      const m = await scrape(port)
      assert.equal(valueOf(m, 'posta_redis_up'), 0)
      assert.ok(valueOf(m, 'posta_redis_command_errors_total', { command: 'hgetall' }) >= 1, 'the scrape\'s own read of the pool failed, and was counted')
      assert.equal(m.get('posta_pool_ips')?.samples.length, 0, 'no pool figures when they could not be read')
    } finally {
      await node.stop()
    }
  })

  it('connections refused by posta-limits before Haraka sees them are counted (policy, connect, temporary)', async () => {
    const port = await freePort('127.0.0.1')
    const node = await startHaraka({
      redisUrl: redis.url, overrides: { ...BASE_OVERRIDES, 'posta-limits.ini': '[connections]\nmax_per_client=1\n' }, env: { POSTA_METRICS_PORT: String(port) },
    })
    try {
      await node.waitForLog(/metrics served/)
      // testkit's start-up probes (from 127.0.0.1) may be refused too, and a loaded Haraka may accept them late:
      // count from when the refusals stop changing
      let before = await scrape(port)
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 500))
        const again = await scrape(port)
        const stable = sumOf(again, 'posta_smtp_refusals_total') === sumOf(before, 'posta_smtp_refusals_total') && valueOf(again, 'posta_smtp_sessions') === 0
        before = again
        if (stable) break
      }
      const first = await SmtpClient.connect({ port: node.smtpPort, localAddress: '127.0.9.1' })
      const second = await SmtpClient.connect({ port: node.smtpPort, localAddress: '127.0.9.1' })
      assert.equal(second.greeting.code, 421)
      await second.close()
      await first.close()
      const m = await scrape(port)
      const labels = { reason: 'policy', stage: 'connect', type: 'temporary' }
      assert.equal(valueOf(m, 'posta_smtp_refusals_total', labels) - valueOf(before, 'posta_smtp_refusals_total', labels), 1)
      assert.equal(sumOf(m, 'posta_smtp_refusals_total') - sumOf(before, 'posta_smtp_refusals_total'), 1)
    } finally {
      await node.stop()
    }
  })

  it('POSTA_METRICS_PORT=0: nothing served', async () => {
    const port = await freePort('127.0.0.1')
    const node = await startHaraka({ redisUrl: redis.url, overrides: BASE_OVERRIDES, env: { POSTA_METRICS_PORT: '0' } })
    try {
      assert.doesNotMatch(node.log(), /metrics served/)
      await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`))
    } finally {
      await node.stop()
    }
  })
})

describe('metrics end to end: cluster mode (nodes=2)', function () {
  this.timeout(180000)
  let redis: TestRedis
  let node: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let metricsPort: number
  const domain = `${uniqueName('mc')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    metricsPort = await freePort('127.0.0.1')
    // a whole smtp.ini of the test's own replaces the one testkit writes: it names the ports itself
    const [smtp, submission, smtps] = [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')]
    const smtpIni = setIniMain(fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'smtp.ini'), 'utf8'), {
      nodes: '2', listen: [smtp, submission, smtps].map((p) => `127.0.0.1:${p}`).join(','), smtps_port: String(smtps),
    })
    node = await startHaraka({ redisUrl: redis.url, overrides: { ...BASE_OVERRIDES, 'smtp.ini': smtpIni }, ports: { smtp, submission, smtps }, env: { POSTA_METRICS_PORT: String(metricsPort) } })
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    await node?.stop()
    await sink?.close()
    await redis?.close()
  })

  it('the master serves the sum of both workers\' counters', async () => {
    let before: Metrics = new Map()
    await waitFor(async () => valueOf(before = await scrape(metricsPort), 'posta_haraka_workers') === 2, 'two workers', 30000)
    const pkg = uniqueName('p')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', '1GB'], env)).code, 0)
    const t = (await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', `owner@${domain}`, '--json'], env)).json()
    const N = 12
    await Promise.all(Array.from({ length: N }, async (_, i) => {
      const c = await SmtpClient.connect({ port: node.submissionPort })
      await c.ehlo()
      await c.starttls()
      await c.ehlo()
      assert.equal((await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)).code, 235)
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<to${i}@${domain}>`)).code, 250)
      assert.equal((await c.send('DATA')).code, 354)
      c.write(`${body(`m${i}`)}.`)
      const r = await c.read()
      assert.equal(r.code, 250, r.raw)
      await c.close()
    }))
    await sink.waitFor(N, 30000)
    let m: Metrics = new Map()
    await waitFor(async () => {
      m = await scrape(metricsPort)
      return valueOf(m, 'posta_smtp_sessions') === 0 && valueOf(m, 'posta_deliveries_total', { source_ip: 'default', result: 'delivered' }) === N
    }, 'the workers\' counters summed', 20000)
    assert.equal(valueOf(m, 'posta_messages_accepted_total'), N)
    assert.equal(valueOf(m, 'posta_auth_successes_total'), N)
    const port = { port: String(node.submissionPort) }
    assert.equal(valueOf(m, 'posta_smtp_connections_total', port) - valueOf(before, 'posta_smtp_connections_total', port), N)
    assert.equal(valueOf(m, 'posta_haraka_workers'), 2)
    const h = await get(metricsPort, '/healthz')
    assert.equal(h.status, 200, h.body)
  })
})
