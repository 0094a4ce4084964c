// The outbound pool end to end: deliveries leave from the current slot's active IPs with their HELO names, a
// suspended IP is never used again (by any node), mail waits when no IP is usable, a deferred message keeps its
// IP, and the delivery ledger matches what the sink saw. Pool 127.0.0.2-127.0.0.6; the clock is set per node.
import { strict as assert } from 'node:assert'
import nodemailer from 'nodemailer'
import { activeIps, DEFAULT_ROTATION, slotAt } from '../lib/rotation'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { smtpError, startSink, type Sink } from '../testkit/sink'

const POOL = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']
const helo = (ip: string) => `mta${ip.split('.')[3]}.pool.test`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('outbound IP pool and rotation end to end', function () {
  this.timeout(90000)
  let redis: TestRedis
  let a: HarakaNode // clock in slot s
  let b: HarakaNode // clock in slot s + 1
  let sink: Sink
  let env: Record<string, string>
  let creds: { tenant: string; login: string; password: string }
  const domain = `${uniqueName('pool')}.test`
  const base = slotAt(new Date(), DEFAULT_ROTATION).start.getTime()
  const clockA = base + 60 * 60000 // an hour into the current slot
  const clockB = clockA + DEFAULT_ROTATION.slotMinutes * 60000 // an hour into the next one
  const slotA = slotAt(new Date(clockA), DEFAULT_ROTATION).number
  const activeA = activeIps(POOL, slotA, DEFAULT_ROTATION)
  const activeB = activeIps(POOL, slotA + 1, DEFAULT_ROTATION)
  /** Every RCPT the sink saw: which address, from which source IP and HELO. */
  let attempts: { rcpt: string; ip: string; helo: string }[] = []
  let deferOnce = new Set<string>()

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    sink.rcptPolicy = (address, session) => {
      attempts.push({ rcpt: address, ip: session.remoteAddress.replace(/^::ffff:/, ''), helo: session.hostNameAppearsAs })
      if (deferOnce.delete(address)) return smtpError(451, '4.7.1 try again later')
      return null
    }
    env = { REDIS_URL: redis.url }
    const overrides = {
      'posta-outbound.ini': '[rotation]\nslot_minutes=240\nactive=0.5\nwait_seconds=1\n',
      'outbound.ini': 'enable_tls=false\nconcurrency_max=100\ntemp_fail_intervals=5s*20\n',
    }
    ;[a, b] = await Promise.all([
      startHaraka({ redisUrl: redis.url, overrides, env: { POSTA_CLOCK_OFFSET_MS: String(clockA - Date.now()) } }),
      startHaraka({ redisUrl: redis.url, overrides, env: { POSTA_CLOCK_OFFSET_MS: String(clockB - Date.now()) } }),
    ])
    for (const ip of POOL) {
      const r = await posta(['ip', 'add', ip, '--helo', helo(ip)], env)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stderr, /warning: /, 'a pool IP without matching DNS gets a warning, not a refusal')
    }
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['package', 'set', 'pool-pkg', '--traffic', '1GB'], env)).code, 0)
    const t = await posta(['tenant', 'create', uniqueName('t'), '--package', 'pool-pkg', '--contact', 'ops@example.net', '--json'], env)
    assert.equal(t.code, 0, t.stderr)
    creds = t.json()
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await sink?.close()
    await redis?.close()
  })

  async function sendVia(node: HarakaNode, rcpts: string[]): Promise<void> {
    const t = nodemailer.createTransport({
      host: '127.0.0.1', port: node.submissionPort, secure: false, requireTLS: true, pool: true, maxConnections: 3,
      auth: { user: creds.login, pass: creds.password }, tls: { rejectUnauthorized: false },
    })
    await Promise.all(rcpts.map((to) => t.sendMail({ from: 'sender@customer.example', to, subject: to, text: 'x' })))
    t.close()
  }

  async function delivered(rcpts: string[], timeoutMs = 20000): Promise<Map<string, { ip: string; helo: string }>> {
    await sink.waitFor(0)
    const until = Date.now() + timeoutMs
    for (;;) {
      const got = new Map(sink.messages.filter((m) => rcpts.includes(m.to[0])).map((m) => [m.to[0], { ip: m.remoteAddress.replace(/^::ffff:/, ''), helo: m.helo }]))
      if (got.size === rcpts.length) return got
      if (Date.now() > until) throw new Error(`only ${got.size} of ${rcpts.length} delivered`)
      await sleep(100)
    }
  }

  const rcptList = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}-${Date.now()}@${domain}`)

  it('leaves only from the slot\'s active IPs, with their HELO names, spread over them', async () => {
    const rcpts = rcptList('slot-a', 9)
    await sendVia(a, rcpts)
    const got = await delivered(rcpts)
    const used = new Set<string>()
    for (const { ip, helo: h } of got.values()) {
      assert.ok(activeA.includes(ip), `${ip} is active in slot ${slotA} (${activeA.join(' ')})`)
      assert.equal(h, helo(ip))
      used.add(ip)
    }
    assert.ok(used.size >= 2, `deliveries are spread over the active IPs (used ${[...used].join(' ')})`)
  })

  it('a node in the next slot uses that slot\'s set', async () => {
    assert.notDeepEqual([...activeB].sort(), [...activeA].sort())
    const rcpts = rcptList('slot-b', 6)
    await sendVia(b, rcpts)
    for (const { ip, helo: h } of (await delivered(rcpts)).values()) {
      assert.ok(activeB.includes(ip), `${ip} is active in slot ${slotA + 1} (${activeB.join(' ')})`)
      assert.equal(h, helo(ip))
    }
  })

  it('a deferred message keeps its IP on retry', async () => {
    const [rcpt] = rcptList('defer', 1)
    deferOnce.add(rcpt)
    await sendVia(a, [rcpt])
    await delivered([rcpt], 30000)
    const tries = attempts.filter((x) => x.rcpt === rcpt)
    assert.equal(tries.length, 2, 'refused once, then accepted')
    assert.equal(tries[1].ip, tries[0].ip)
    const log = await a.waitForLog(new RegExp(`\\[posta-outbound\\] deferred tenant=${creds.tenant} .*source_ip=${tries[0].ip.replace(/\./g, '\\.')} `))
    assert.ok(log)
  })

  it('never uses a suspended IP again, on either node', async () => {
    const victim = activeA.find((ip) => activeB.includes(ip)) ?? activeA[0]
    const r = await posta(['ip', 'suspend', victim, '--reason', 'test listing'], env)
    assert.equal(r.code, 0, r.stderr)
    const ra = rcptList('susp-a', 8)
    const rb = rcptList('susp-b', 8)
    await Promise.all([sendVia(a, ra), sendVia(b, rb)])
    const got = [...(await delivered(ra)).values(), ...(await delivered(rb)).values()]
    assert.equal(got.length, 16)
    assert.ok(got.every((g) => g.ip !== victim), `nothing left from ${victim}`)
    assert.equal((await posta(['ip', 'reinstate', victim], env)).code, 0)
  })

  it('waits in the queue when every active IP is suspended, and leaves after a reinstatement', async () => {
    for (const ip of activeA) assert.equal((await posta(['ip', 'suspend', ip, '--reason', 'all down'], env)).code, 0)
    const [rcpt] = rcptList('wait', 1)
    await sendVia(a, [rcpt])
    await a.waitForLog(/no usable outbound IP .*waiting 1s/)
    await sleep(2500)
    assert.equal(sink.messages.filter((m) => m.to[0] === rcpt).length, 0, 'nothing left through a suspended IP or the default address')
    const back = activeA[1]
    assert.equal((await posta(['ip', 'reinstate', back], env)).code, 0)
    const got = await delivered([rcpt])
    assert.equal(got.get(rcpt)!.ip, back)
    for (const ip of activeA) if (ip !== back) assert.equal((await posta(['ip', 'reinstate', ip], env)).code, 0)
  })

  it('the ledger says who sent how much through each IP, matching what the sink saw', async () => {
    await sleep(500) // the last ledger writes follow the deliveries
    const mine = sink.messages.filter((m) => m.to[0].endsWith(`@${domain}`))
    for (const ip of POOL) {
      const r = await posta(['ip', 'traffic', ip, '--json'], env)
      assert.equal(r.code, 0, r.stderr)
      const row = r.json().tenants.find((t: { tenant: string }) => t.tenant === creds.tenant)
      const seen = mine.filter((m) => m.remoteAddress.replace(/^::ffff:/, '') === ip).length
      const deferred = attempts.filter((x) => x.ip === ip && x.rcpt.startsWith('defer')).length - mine.filter((m) => m.to[0].startsWith('defer') && m.remoteAddress.replace(/^::ffff:/, '') === ip).length
      assert.equal(row?.delivered ?? 0, seen, `delivered through ${ip}`)
      assert.equal(row?.deferred ?? 0, deferred, `deferred through ${ip}`)
    }
    const list = (await posta(['ip', 'list', '--json'], env)).json() as { ip: string; last_use: string | null }[]
    assert.ok(list.filter((p) => mine.some((m) => m.remoteAddress.endsWith(p.ip))).every((p) => p.last_use !== null), 'last use is recorded')
  })
})
