// The DNSBL monitor end to end: two Haraka nodes sharing Redis, a real DNS server on loopback whose zones the test
// changes while the monitor runs, real deliveries through a pool of 127.0.0.3-127.0.0.5 to a real sink.
import { strict as assert } from 'node:assert'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { keys } from '../lib/keys'
import { posta } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'

// 127.0.0.2 and 127.0.0.1 are the zones' canary addresses: the pool stays clear of them
const POOL = ['127.0.0.3', '127.0.0.4', '127.0.0.5']
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function monitorIni(dns: string): string {
  return `[main]
interval=2
resolvers=${dns}
timeout_ms=300
concurrency=8
auto_reinstate=false
investigation_hours=1
zones=zen.test,l1.test,l2.test,broken.test

[zone zen.test]
listed=127.0.0.2:SBL,127.0.0.4:XBL,127.0.0.10:PBL,127.0.0.11:PBL
errors=127.255.255.0/24
informational=127.0.0.10,127.0.0.11
ipv6=true

[zone l1.test]
listed=127.0.0.2:L1
errors=127.255.255.0/24

[zone l2.test]
listed=127.0.0.2:L2
informational_zone=true

[zone broken.test]
listed=127.0.0.2:BROKEN
`
}

describe('DNSBL monitor end to end', function () {
  this.timeout(120000)
  let redis: TestRedis
  let dns: TestDns
  let a: HarakaNode
  let b: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  const domain = `${uniqueName('mon')}.test`
  const tenants: Record<string, { tenant: string; login: string; password: string }> = {}

  before(async () => {
    redis = await testRedis()
    dns = await startDns()
    dns.breakCanary('broken.test', true)
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    const overrides = {
      'posta-monitor.ini': monitorIni(dns.server),
      'posta-outbound.ini': '[rotation]\nactive=3\nwait_seconds=1\n',
      'outbound.ini': 'enable_tls=false\n',
    }
    for (const ip of POOL) assert.equal((await posta(['ip', 'add', ip, '--helo', `mta${ip.split('.')[3]}.mon.test`], env)).code, 0)
    ;[a, b] = await Promise.all([startHaraka({ redisUrl: redis.url, overrides }), startHaraka({ redisUrl: redis.url, overrides })])
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['package', 'set', 'mon', '--traffic', '1GB'], env)).code, 0)
    for (const name of ['big', 'small']) {
      const r = await posta(['tenant', 'create', uniqueName(name), '--package', 'mon', '--contact', 'ops@example.net', '--json'], env)
      assert.equal(r.code, 0, r.stderr)
      tenants[name] = r.json()
    }
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await sink?.close()
    await dns?.close()
    await redis?.close()
  })

  async function send(who: string, n: number, tag: string, bodyKb = 1): Promise<string[]> {
    const c = tenants[who]
    const t = nodemailer.createTransport({
      host: '127.0.0.1', port: a.submissionPort, secure: false, requireTLS: true, pool: true, maxConnections: 2,
      auth: { user: c.login, pass: c.password }, tls: { rejectUnauthorized: false },
    })
    const rcpts = Array.from({ length: n }, (_, i) => `${tag}${i}-${Date.now()}@${domain}`)
    await Promise.all(rcpts.map((to) => t.sendMail({ from: 'news@customer.example', to, subject: tag, text: 'x'.repeat(bodyKb * 1000) })))
    t.close()
    const until = Date.now() + 20000
    while (sink.messages.filter((m) => rcpts.includes(m.to[0])).length < n) {
      if (Date.now() > until) throw new Error(`${tag}: not all delivered`)
      await sleep(100)
    }
    return rcpts
  }

  async function pool(): Promise<Record<string, { state: string; reason?: string; suspended_by?: string }>> {
    const r = await posta(['ip', 'list', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return Object.fromEntries((r.json() as { ip: string }[]).map((p) => [p.ip, p as never]))
  }

  async function cycles(): Promise<{ started_at: string; node: string; window?: number }[]> {
    return (await redis.client.lrange(keys.monitorCycles(), 0, -1)).map((v) => JSON.parse(v))
  }

  async function waitCycles(n: number) {
    const start = (await cycles()).length
    const until = Date.now() + 20000
    while ((await cycles()).length < start + n) {
      if (Date.now() > until) throw new Error('no monitor cycle ran')
      await sleep(200)
    }
  }

  it('runs exactly one cycle per interval across two nodes', async () => {
    await sleep(7000)
    const c = (await cycles()).filter((x) => !x.node.startsWith('cli@')) // the service's cycles, not "posta monitor run"
    // the window each cycle claimed: its start time may fall in the next window on a loaded machine
    const windows = c.map((x) => x.window)
    assert.ok(windows.every((w) => Number.isInteger(w)), `every cycle names its window: ${windows.join(',')}`)
    assert.ok(c.length >= 2, `cycles ran (${c.length})`)
    assert.equal(new Set(windows).size, windows.length, `one cycle per 2 s window: ${windows.join(',')}`)
    const nodes = new Set(c.map((x) => x.node))
    assert.ok(nodes.size >= 1)
  })

  it('error answers, timeouts, informational listings and a zone failing its canary change nothing', async () => {
    dns.set('zen.test', '127.0.0.3', { a: ['127.255.255.254'] }) // "query via public resolver": an error
    dns.set('l1.test', '127.0.0.3', 'timeout')
    dns.set('l1.test', '127.0.0.5', 'servfail')
    dns.set('zen.test', '127.0.0.5', { a: ['127.0.0.10'], txt: 'PBL: policy listing' }) // PBL informs only
    dns.set('l2.test', '127.0.0.4', { a: ['127.0.0.2'], txt: 'L2 allocation' }) // a wholly informational zone
    dns.set('broken.test', '127.0.0.4', { a: ['127.0.0.2'] }) // the zone's canary fails: ignored
    await waitCycles(2)
    const p = await pool()
    for (const ip of POOL) assert.equal(p[ip].state, 'active', `${ip} stays active`)
    const h4 = (await posta(['ip', 'history', '127.0.0.5', '--json'], env)).json() as { event: string; reason?: string }[]
    assert.ok(h4.some((e) => e.event === 'listed' && /zen\.test: PBL .*\[informational\]/.test(e.reason ?? '')), 'the informational listing is in the history')
    const status = (await posta(['monitor', 'status', '--json'], env)).json() as { zones: { zone: string; healthy: boolean }[]; unknown: number }[]
    assert.ok(status[0].zones.some((z) => z.zone === 'broken.test' && !z.healthy))
    assert.ok(status[0].unknown >= 3, 'the errors and timeouts were UNKNOWN')
    for (const [z, ip] of [['zen.test', '127.0.0.3'], ['l1.test', '127.0.0.3'], ['l1.test', '127.0.0.5'], ['zen.test', '127.0.0.5'], ['l2.test', '127.0.0.4'], ['broken.test', '127.0.0.4']]) dns.set(z, ip, undefined)
  })

  it('a listing suspends the IP at once, keeps the evidence, investigates, and no mail leaves from it afterwards', async () => {
    await send('big', 8, 'big', 4)
    await send('small', 2, 'small', 1)
    await sleep(300)
    dns.set('zen.test', '127.0.0.3', { a: ['127.0.0.2'], txt: 'https://check.spamhaus.example/sbl/123' })
    const until = Date.now() + 15000
    while ((await pool())['127.0.0.3'].state !== 'suspended') {
      if (Date.now() > until) throw new Error('127.0.0.3 was not suspended')
      await sleep(200)
    }
    const p = (await pool())['127.0.0.3']
    assert.equal(p.suspended_by, 'monitor')
    assert.match(p.reason!, /listed on zen\.test \(SBL\): https:\/\/check\.spamhaus\.example\/sbl\/123/)
    const h = (await posta(['ip', 'history', '127.0.0.3', '--json'], env)).json() as { event: string; by: string }[]
    assert.deepEqual(h.slice(0, 2).map((e) => `${e.event}/${e.by}`), ['suspended/monitor', 'listed/monitor'])
    await a.waitForLog(/\[CRIT\] .*\[posta-monitor\] 127\.0\.0\.3 SUSPENDED: listed on zen\.test/).catch(() => b.waitForLog(/\[CRIT\] .*\[posta-monitor\] 127\.0\.0\.3 SUSPENDED/))

    // the investigation ranks the tenants that sent through 127.0.0.3 by their share of its traffic
    const list = (await posta(['investigation', 'list', '--json'], env)).json() as { id: string; ip: string }[]
    const inv = list.find((i) => i.ip === '127.0.0.3')
    assert.ok(inv, 'an investigation was opened')
    const shown = (await posta(['investigation', 'show', inv!.id, '--json'], env)).json()
    assert.equal(shown.trigger, 'listing')
    assert.equal(shown.evidence[0].zone, 'zen.test')
    const traffic = (await posta(['ip', 'traffic', '127.0.0.3', '--json'], env)).json()
    const mine = (shown.tenants as { tenant: string; share: number; bytes: number }[]).filter((t) => t.tenant === tenants.big.tenant || t.tenant === tenants.small.tenant)
    assert.ok(mine.length >= 1, 'our tenants sent through it')
    assert.deepEqual(mine.map((t) => t.bytes), mine.map((t) => traffic.tenants.find((x: { tenant: string }) => x.tenant === t.tenant).bytes), 'figures come from the ledger')
    for (let i = 1; i < shown.tenants.length; i++) assert.ok(shown.tenants[i - 1].bytes >= shown.tenants[i].bytes, 'ranked by traffic')
    if (mine.length === 2) assert.equal(mine[0].tenant, tenants.big.tenant, 'the bigger sender ranks first')

    // no delivery leaves from the suspended IP
    const rcpts = await send('small', 6, 'after')
    const from = sink.messages.filter((m) => rcpts.includes(m.to[0])).map((m) => m.remoteAddress.replace(/^::ffff:/, ''))
    assert.ok(from.every((ip) => ip !== '127.0.0.3'), from.join(' '))
  })

  it('a cleared listing leaves the IP suspended until an operator reinstates it; then it is back in rotation', async () => {
    dns.set('zen.test', '127.0.0.3', undefined)
    const until = Date.now() + 15000
    for (;;) {
      const h = (await posta(['ip', 'history', '127.0.0.3', '--json'], env)).json() as { event: string }[]
      if (h[0].event === 'cleared') break
      if (Date.now() > until) throw new Error('the clearing was not seen')
      await sleep(200)
    }
    await waitCycles(1)
    assert.equal((await pool())['127.0.0.3'].state, 'suspended', 'no automatic reinstatement by default')
    const r = await posta(['ip', 'reinstate', '127.0.0.3'], env)
    assert.equal(r.code, 0, r.stderr)
    const rcpts = await send('small', 9, 'back')
    const from = sink.messages.filter((m) => rcpts.includes(m.to[0])).map((m) => m.remoteAddress.replace(/^::ffff:/, ''))
    assert.ok(from.includes('127.0.0.3'), `127.0.0.3 is used again (${from.join(' ')})`)
    const h = (await posta(['ip', 'history', '127.0.0.3', '--json'], env)).json() as { event: string; by: string }[]
    assert.deepEqual(h.slice(0, 2).map((e) => `${e.event}/${e.by}`), ['reinstated/operator', 'cleared/monitor'], 'the history stays')
  })

  it('checks IPv6 pool IPs in nibble form; posta monitor run reports a cycle on demand', async () => {
    assert.equal((await posta(['ip', 'add', '2001:db8::7', '--helo', 'v6.mon.test'], env)).code, 0)
    dns.set('zen.test', '2001:db8::7', { a: ['127.0.0.4'], txt: 'XBL' })
    const r = await posta(['monitor', 'run', '--json'], { ...env, POSTA_CONFIG_DIR: path.join(a.dir, 'config') })
    assert.equal(r.code, 0, r.stderr)
    const rep = r.json()
    assert.ok(rep.listed.some((l: { ip: string; zone: string; meaning: string }) => l.ip === '2001:db8::7' && l.zone === 'zen.test' && l.meaning === 'XBL'))
    assert.equal((await pool())['2001:db8::7'].state, 'suspended')
    assert.equal((await posta(['ip', 'remove', '2001:db8::7'], env)).code, 0)
  })
})
