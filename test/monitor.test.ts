// lib/monitor.ts: runCycle against a real Redis and a real DNS server on loopback (testkit/dns.ts), called directly
// with a collecting logger: transitions, suspension, evidence, investigations, UNKNOWN, reinstatement, the DNS
// infrastructure warning, and the one-node-per-window claim. Each test uses its own pool IPs (198.18.x.y) and
// zone names, and takes its IPs out of the pool at the end, so a shared Redis (REDIS_URL) is safe.
import { strict as assert } from 'node:assert'
import { zoneFromIni } from '../lib/dnsbl'
import { getInvestigation, listInvestigations } from '../lib/investigation'
import { keys } from '../lib/keys'
import { recordAttempt, DEFAULT_LEDGER } from '../lib/ledger'
import { claimCycle, runCycle, type CycleReport, type Logger, type MonitorOptions, type StoredCheck } from '../lib/monitor'
import { addIp, getIp, ipHistory, reinstateIp, removeIp, suspendIp } from '../lib/pool'
import { connectTool, type RedisClient } from '../lib/redis'
import { startDns, type Answer, type TestDns } from '../testkit/dns'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

interface Line { level: keyof Logger; msg: string; fields?: Record<string, unknown> }

function collecting(): Logger & { lines: Line[] } {
  const lines: Line[] = []
  const at = (level: keyof Logger) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields })
  return { lines, info: at('info'), notice: at('notice'), warn: at('warn'), crit: at('crit') }
}

describe('monitor: runCycle (real Redis, DNS on loopback)', function () {
  this.timeout(20000)
  let r: TestRedis
  let redis: RedisClient
  let dns: TestDns
  const run = uniqueName('m').replace(/[^a-z0-9-]/g, '')
  // zone names no other run uses
  const ZEN = `zen.${run}.test`
  const L1 = `l1.${run}.test`
  const L2 = `l2.${run}.test`
  const zones = () => [
    zoneFromIni(ZEN, { listed: '127.0.0.2:SBL,127.0.0.4:XBL,127.0.0.10:PBL,127.0.0.11:PBL', errors: '127.255.255.0/24', informational: '127.0.0.10,127.0.0.11', ipv6: 'true' }),
    zoneFromIni(L1, { listed: '127.0.0.2:L1', errors: '127.255.255.0/24' }),
    zoneFromIni(L2, { listed: '127.0.0.2:L2', informational_zone: 'true', errors: '127.255.255.0/24' }),
  ]
  let opts: MonitorOptions
  const mine: string[] = []
  // a /16 of 198.18.0.0/15 of its own for this run (collisions with another run are one in 256)
  const net = `198.18.${Math.floor(Math.random() * 256)}`
  let nextHost = 1

  async function freshIp(): Promise<string> {
    const ip = `${net}.${nextHost++}`
    await addIp(redis, ip, `mta-${nextHost}.${run}.test`)
    mine.push(ip)
    return ip
  }

  // runCycle keeps each report in the shared list of cycles; these are not real cycles, so each is taken out
  // again (in a shared Redis the e2e test reads that list as one cycle per interval window)
  const cycle = async (o: Partial<MonitorOptions> = {}, log = collecting()) => {
    const rep = await runCycle(redis, { ...opts, ...o }, { node: `test-${run}`, log })
    assert.equal(await redis.lrem(keys.monitorCycles(), 1, JSON.stringify(rep)), 1, 'the cycle report was kept')
    return { rep, log }
  }

  const events = async (ip: string) => (await ipHistory(redis, ip)).map((e) => `${e.event}/${e.by}`)
  const stored = async (ip: string): Promise<Record<string, StoredCheck>> =>
    Object.fromEntries(Object.entries(await redis.hgetall(keys.monitorIp(ip))).map(([z, v]) => [z, JSON.parse(v) as StoredCheck]))
  const invsOf = async (ip: string) => (await listInvestigations(redis, 10000)).filter((i) => i.ip === ip)

  before(async () => {
    r = await testRedis()
    redis = r.client
    dns = await startDns()
    opts = { zones: zones(), resolvers: [dns.server], timeoutMs: 300, concurrency: 8, autoReinstate: false, investigationHours: 1, intervalMs: 600000 }
  })
  afterEach(async () => {
    for (const ip of mine.splice(0)) await removeIp(redis, ip).catch(() => {})
  })
  after(async () => {
    await dns?.close()
    await r?.close()
  })

  it('an actionable listing suspends the IP with the evidence, records listed then suspended, and opens an investigation', async () => {
    const ip = await freshIp()
    const other = await freshIp()
    const tenant = uniqueName('t')
    const now = Date.now()
    for (let i = 0; i < 3; i++) {
      await recordAttempt(redis, { at: now - 60000 + i, tenant, tx: `tx${i}`, ip, domain: `d${i}.example`, mx: 'mx.example', result: 'delivered', code: '250', response: 'ok', size: 1000, rcpts: 1 }, DEFAULT_LEDGER)
    }
    dns.set(ZEN, ip, { a: ['127.0.0.2'], txt: 'https://check.spamhaus.example/sbl/123' })

    const { rep, log } = await cycle()
    assert.deepEqual(rep.suspended.filter((x) => mine.includes(x)), [ip])
    assert.ok(rep.listed.some((l) => l.ip === ip && l.zone === ZEN && l.meaning === 'SBL' && l.actionable))
    assert.ok(rep.zones.every((z) => z.healthy))

    const p = await getIp(redis, ip)
    assert.equal(p.state, 'suspended')
    assert.equal(p.suspended_by, 'monitor')
    assert.equal(p.reason, `listed on ${ZEN} (SBL): https://check.spamhaus.example/sbl/123`)
    assert.equal((await getIp(redis, other)).state, 'active', 'the other IP is untouched')
    assert.deepEqual(await events(other), ['added/operator'])

    const h = await ipHistory(redis, ip)
    assert.deepEqual(h.map((e) => `${e.event}/${e.by}`), ['suspended/monitor', 'listed/monitor', 'added/operator'], 'listed, then suspended (newest first)')
    assert.equal(h[1].reason, `${ZEN}: SBL (127.0.0.2) https://check.spamhaus.example/sbl/123`)

    const st = (await stored(ip))[ZEN]
    assert.equal(st.state, 'LISTED')
    assert.equal(st.actionable, true)

    assert.ok(log.lines.some((l) => l.level === 'crit' && l.msg === `${ip} listed on ${ZEN}`))
    assert.ok(log.lines.some((l) => l.level === 'crit' && l.msg.startsWith(`${ip} SUSPENDED: listed on ${ZEN}`)))

    const ids = rep.investigations.filter((id) => id.endsWith(ip.replace(/\./g, '_')))
    assert.equal(ids.length, 1)
    const inv = await getInvestigation(redis, ids[0])
    assert.ok(inv, 'the investigation is saved')
    assert.equal(inv!.ip, ip)
    assert.equal(inv!.trigger, 'listing')
    assert.equal((inv!.evidence[0] as { zone: string }).zone, ZEN)
    assert.equal((inv!.evidence[0] as { meaning: string }).meaning, 'SBL')
    assert.equal(inv!.tenants.length, 1)
    assert.equal(inv!.tenants[0].tenant, tenant)
    assert.equal(inv!.tenants[0].bytes, 3000)
    assert.equal(inv!.tenants[0].share, 100)
    assert.equal(Date.parse(inv!.until) - Date.parse(inv!.since), 3600000, 'investigation_hours before the listing')
    assert.ok(log.lines.some((l) => l.level === 'crit' && l.msg === `investigation ${ids[0]} opened for ${ip}` && l.fields?.top_tenant === tenant))

    // the listing is still there next cycle: nothing new
    const since = st.since
    const { rep: rep2, log: log2 } = await cycle()
    assert.ok(!rep2.suspended.includes(ip))
    assert.equal(rep2.investigations.filter((id) => id.endsWith(ip.replace(/\./g, '_'))).length, 0)
    assert.ok(rep2.listed.some((l) => l.ip === ip && l.zone === ZEN), 'still reported as listed')
    assert.deepEqual(await events(ip), ['suspended/monitor', 'listed/monitor', 'added/operator'], 'no new events')
    assert.equal((await invsOf(ip)).length, 1, 'one investigation only')
    assert.equal((await stored(ip))[ZEN].since, since, 'the listing keeps its start')
    assert.ok(!log2.lines.some((l) => l.level === 'crit' && l.msg.includes(ip)), 'no new alert')
    dns.set(ZEN, ip, undefined)
  })

  it('an IPv6 pool IP listed on a zone with ipv6=true is suspended; zones without ipv6 are not asked', async () => {
    const ip = (await addIp(redis, `2001:db8:${(1 + Math.floor(Math.random() * 0xfffe)).toString(16)}::${(nextHost++).toString(16)}`, `v6.${run}.test`)).ip
    mine.push(ip)
    dns.set(ZEN, ip, { a: ['127.0.0.4'], txt: 'XBL v6' })
    dns.set(L1, ip, { a: ['127.0.0.2'] }) // never asked: l1 has no ipv6
    const { rep } = await cycle()
    assert.ok(rep.suspended.includes(ip))
    assert.match((await getIp(redis, ip)).reason!, /\(XBL\): XBL v6/)
    assert.deepEqual(Object.keys(await stored(ip)), [ZEN])
    dns.set(ZEN, ip, undefined)
    dns.set(L1, ip, undefined)
  })

  it('UNKNOWN (timeout, SERVFAIL, error answers) never changes anything, for a clean IP or a listed one', async () => {
    const clean = await freshIp()
    dns.set(ZEN, clean, { a: ['127.255.255.254'] })
    dns.set(L1, clean, 'timeout')
    dns.set(L2, clean, 'servfail')
    const { rep } = await cycle({ autoReinstate: true })
    assert.ok(rep.unknown >= 3, `unknown ${rep.unknown}`)
    assert.ok(!rep.listed.some((l) => l.ip === clean))
    assert.equal((await getIp(redis, clean)).state, 'active')
    assert.deepEqual(await events(clean), ['added/operator'])
    assert.deepEqual(await stored(clean), {}, 'no state stored for UNKNOWN')

    // a listed IP whose zone then times out or answers errors: stays LISTED, suspended, nothing cleared
    const listed = await freshIp()
    dns.set(ZEN, listed, { a: ['127.0.0.2'], txt: 'sbl' })
    await cycle()
    assert.equal((await getIp(redis, listed)).state, 'suspended')
    const before = (await stored(listed))[ZEN]
    for (const answer of ['timeout', 'servfail', { a: ['127.255.255.255'] }, { a: ['10.1.2.3'] }] as Answer[]) {
      dns.set(ZEN, listed, answer)
      const { rep: r2 } = await cycle({ autoReinstate: true })
      assert.ok(!r2.cleared.some((c) => c.startsWith(`${listed} `)), `${JSON.stringify(answer)}: not cleared`)
      assert.ok(!r2.reinstated.includes(listed))
      assert.deepEqual((await stored(listed))[ZEN], before, `${JSON.stringify(answer)}: stored state unchanged`)
      const p = await getIp(redis, listed)
      assert.equal(p.state, 'suspended')
      assert.equal(p.suspended_by, 'monitor')
    }
    assert.deepEqual(await events(listed), ['suspended/monitor', 'listed/monitor', 'added/operator'], 'no cleared, no reinstated')
    dns.set(ZEN, listed, undefined)
    for (const z of [ZEN, L1, L2]) dns.set(z, clean, undefined)
  })

  it('an informational listing (PBL, an informational zone) is recorded with [informational] and suspends nothing', async () => {
    const ip = await freshIp()
    dns.set(ZEN, ip, { a: ['127.0.0.10'], txt: 'PBL: policy listing' })
    dns.set(L2, ip, { a: ['127.0.0.2'], txt: 'L2 allocation' })
    const { rep, log } = await cycle()
    assert.ok(!rep.suspended.includes(ip))
    assert.equal(rep.investigations.filter((id) => id.endsWith(ip.replace(/\./g, '_'))).length, 0)
    assert.equal(rep.listed.filter((l) => l.ip === ip).length, 2)
    assert.equal((await getIp(redis, ip)).state, 'active')
    const h = await ipHistory(redis, ip)
    const listed = h.filter((e) => e.event === 'listed')
    assert.equal(listed.length, 2)
    assert.ok(listed.some((e) => e.reason === `${ZEN}: PBL (127.0.0.10) PBL: policy listing [informational]`), JSON.stringify(listed))
    assert.ok(listed.some((e) => e.reason === `${L2}: L2 (127.0.0.2) L2 allocation [informational]`), JSON.stringify(listed))
    assert.ok(!h.some((e) => e.event === 'suspended'))
    assert.ok(log.lines.some((l) => l.level === 'notice' && l.msg === `${ip} listed on ${ZEN}`))
    assert.ok(!log.lines.some((l) => l.level === 'crit' && l.msg.includes(ip)), 'no CRIT for an informational listing')
    assert.equal((await invsOf(ip)).length, 0)
    dns.set(ZEN, ip, undefined)
    dns.set(L2, ip, undefined)
  })

  it('a cleared listing is recorded; the IP stays suspended (auto_reinstate=false)', async () => {
    const ip = await freshIp()
    dns.set(L1, ip, { a: ['127.0.0.2'], txt: 'L1 trap hit' })
    await cycle()
    assert.equal((await getIp(redis, ip)).state, 'suspended')
    dns.set(L1, ip, undefined)
    const { rep, log } = await cycle()
    assert.ok(rep.cleared.includes(`${ip} ${L1}`))
    assert.deepEqual(rep.reinstated.filter((x) => x === ip), [])
    const h = await ipHistory(redis, ip)
    assert.deepEqual(h.map((e) => `${e.event}/${e.by}`), ['cleared/monitor', 'suspended/monitor', 'listed/monitor', 'added/operator'])
    assert.equal(h[0].reason, `${L1}: no longer listed`)
    const p = await getIp(redis, ip)
    assert.equal(p.state, 'suspended')
    assert.equal(p.suspended_by, 'monitor')
    assert.equal((await stored(ip))[L1].state, 'NOT_LISTED')
    assert.ok(log.lines.some((l) => l.level === 'notice' && l.msg.includes(`${ip} no longer listed; it stays suspended`)))
    // a further cycle adds nothing
    await cycle()
    assert.equal((await ipHistory(redis, ip)).length, 4)
  })

  it('with auto_reinstate the monitor reinstates an IP it suspended once all its actionable listings clear', async () => {
    const ip = await freshIp()
    dns.set(ZEN, ip, { a: ['127.0.0.2'] })
    dns.set(L1, ip, { a: ['127.0.0.2'] })
    dns.set(L2, ip, { a: ['127.0.0.2'] }) // informational: does not hold the suspension
    await cycle({ autoReinstate: true })
    assert.equal((await getIp(redis, ip)).state, 'suspended')

    dns.set(ZEN, ip, undefined) // one of two actionable listings clears
    const { rep } = await cycle({ autoReinstate: true })
    assert.ok(rep.cleared.includes(`${ip} ${ZEN}`))
    assert.ok(!rep.reinstated.includes(ip), 'still listed on l1')
    assert.equal((await getIp(redis, ip)).state, 'suspended')

    dns.set(L1, ip, undefined)
    const { rep: rep2, log } = await cycle({ autoReinstate: true })
    assert.deepEqual(rep2.reinstated.filter((x) => x === ip), [ip])
    assert.equal((await getIp(redis, ip)).state, 'active')
    const h = await events(ip)
    assert.deepEqual(h.slice(0, 2), ['reinstated/monitor', 'cleared/monitor'])
    assert.ok(log.lines.some((l) => l.level === 'notice' && l.msg.startsWith(`${ip} reinstated`)))
    dns.set(L2, ip, undefined)
  })

  it('never reinstates an IP an operator suspended, even when its listing clears', async () => {
    const ip = await freshIp()
    await suspendIp(redis, ip, 'complaints from a receiver', 'operator')
    dns.set(ZEN, ip, { a: ['127.0.0.2'] })
    const { rep, log } = await cycle({ autoReinstate: true })
    assert.ok(!rep.suspended.includes(ip), 'already suspended: not suspended again')
    // the listing still opens an investigation (an operator's suspension does not make it less worth looking into)
    const invId = ip.replace(/[.:]/g, '_')
    const mineInv = rep.investigations.filter((id) => id.endsWith(invId))
    assert.equal(mineInv.length, 1, `one investigation for ${ip}: ${rep.investigations.join(',')}`)
    const inv = await getInvestigation(redis, mineInv[0])
    assert.equal(inv?.ip, ip)
    assert.equal(inv?.trigger, 'listing')
    assert.ok(log.lines.some((l) => l.level === 'crit' && l.msg === `${ip} listed on ${ZEN}; already suspended by operator, it stays so`))
    assert.ok(log.lines.some((l) => l.level === 'crit' && l.msg === `investigation ${mineInv[0]} opened for ${ip}`))
    // a further cycle with the same listing opens no second one
    assert.equal((await cycle({ autoReinstate: true })).rep.investigations.filter((id) => id.endsWith(invId)).length, 0)
    let p = await getIp(redis, ip)
    assert.equal(p.suspended_by, 'operator')
    assert.equal(p.reason, 'complaints from a receiver')

    dns.set(ZEN, ip, undefined)
    const { rep: rep2 } = await cycle({ autoReinstate: true })
    assert.ok(rep2.cleared.includes(`${ip} ${ZEN}`))
    assert.ok(!rep2.reinstated.includes(ip))
    p = await getIp(redis, ip)
    assert.equal(p.state, 'suspended')
    assert.equal(p.suspended_by, 'operator')
    assert.deepEqual(await events(ip), ['cleared/monitor', 'listed/monitor', 'suspended/operator', 'added/operator'])
  })

  it('a listing kept from a zone since removed from the configuration holds no suspension', async () => {
    const ip = await freshIp()
    const OLD = `old.${run}.test`
    const withOld = { zones: [...zones(), zoneFromIni(OLD, { listed: '127.0.0.2:OLD' })] }
    dns.set(OLD, ip, { a: ['127.0.0.2'] })
    await cycle(withOld)
    assert.equal((await getIp(redis, ip)).suspended_by, 'monitor')
    // the operator drops the zone from the ini and reinstates the IP: the stale listing must not suspend it again
    await reinstateIp(redis, ip, 'operator')
    const { rep } = await cycle()
    assert.ok(!rep.suspended.includes(ip), 'not suspended again by a zone no longer checked')
    assert.equal((await getIp(redis, ip)).state, 'active')
    dns.set(OLD, ip, undefined)
  })

  describe('DNS infrastructure warning', () => {
    const zs = Array.from({ length: 4 }, (_, i) => `w${i}.${run}.test`)
    const wopts = () => ({ zones: zs.map((z) => zoneFromIni(z, { listed: '127.0.0.2:x', errors: '127.255.255.0/24' })) })
    const warned = (rep: CycleReport, log: ReturnType<typeof collecting>) =>
      rep.warnings.some((w) => w.startsWith('DNS infrastructure problem')) && log.lines.some((l) => l.level === 'warn' && l.msg.startsWith('DNS infrastructure problem'))

    it('warns when more than half the zones are unhealthy or answer UNKNOWN, not at half or less', async () => {
      const ip = await freshIp()
      // 1 of 4: a broken canary
      dns.breakCanary(zs[0], true)
      let { rep, log } = await cycle(wopts())
      assert.equal(rep.zones.find((z) => z.zone === zs[0])!.healthy, false)
      assert.ok(log.lines.some((l) => l.level === 'warn' && l.msg.includes(`${zs[0]} failed its canary`)))
      assert.equal(warned(rep, log), false, '1 of 4')
      // 2 of 4: exactly half
      dns.set(zs[1], ip, 'timeout')
      ;({ rep, log } = await cycle(wopts()))
      assert.equal(warned(rep, log), false, '2 of 4 is not more than half')
      // 3 of 4: an error answer on a third zone
      dns.set(zs[2], ip, { a: ['127.255.255.254'] })
      ;({ rep, log } = await cycle(wopts()))
      assert.equal(warned(rep, log), true, '3 of 4')
      assert.match(rep.warnings[0], /3 of 4 zones/)
      assert.equal((await getIp(redis, ip)).state, 'active', 'the warning changes no IP')
      // all canaries broken: 4 of 4, whatever the pool
      for (const z of zs) dns.breakCanary(z, true)
      ;({ rep, log } = await cycle(wopts()))
      assert.ok(rep.zones.every((z) => !z.healthy))
      assert.match(rep.warnings[0], /4 of 4 zones/)
      for (const z of zs) dns.breakCanary(z, false)
      dns.set(zs[1], ip, undefined)
      dns.set(zs[2], ip, undefined)
      ;({ rep, log } = await cycle(wopts()))
      assert.deepEqual(rep.warnings, [], 'healthy again')
    })

    it('a zone failing its canary is ignored: its listings change nothing', async () => {
      const ip = await freshIp()
      dns.breakCanary(zs[3], true)
      dns.set(zs[3], ip, { a: ['127.0.0.2'] })
      const { rep } = await cycle(wopts())
      assert.ok(!rep.listed.some((l) => l.ip === ip))
      assert.equal((await getIp(redis, ip)).state, 'active')
      dns.breakCanary(zs[3], false)
      dns.set(zs[3], ip, undefined)
    })
  })
})

describe('monitor: claimCycle (real Redis)', () => {
  let r: TestRedis
  const clients: RedisClient[] = []
  before(async () => {
    r = await testRedis()
    for (let i = 0; i < 8; i++) {
      const c = connectTool(r.url)
      c.on('error', () => {})
      clients.push(c)
    }
  })
  after(async () => {
    for (const c of clients) c.disconnect()
    await r?.close()
  })

  it('exactly one of N concurrent claims for a window wins; the next window can be claimed again', async () => {
    const interval = 60000
    // a window far from now, which no running node claims
    const window = Math.floor((5e12 + Math.random() * 1e12) / interval)
    const now = window * interval + 10
    const results = await Promise.all(clients.map((c, i) => claimCycle(c, interval, `node${i}`, now + (i % 3) * 1000)))
    assert.equal(results.filter(Boolean).length, 1, results.join(','))
    const winner = `node${results.indexOf(true)}`
    assert.equal(await r.client.get(keys.monitorCycle(window)), winner)
    const ttl = await r.client.pttl(keys.monitorCycle(window))
    assert.ok(ttl > interval && ttl <= 2 * interval, `the claim expires after two intervals (${ttl})`)
    assert.equal(await claimCycle(r.client, interval, 'late', window * interval + interval - 1), false, 'the same window, later')

    const next = await Promise.all(clients.map((c, i) => claimCycle(c, interval, `node${i}`, now + interval)))
    assert.equal(next.filter(Boolean).length, 1, 'the next window is claimed once')
    assert.equal(await r.client.get(keys.monitorCycle(window + 1)), `node${next.indexOf(true)}`)
  })
})

describe('monitor: what an operator decides stands (real Redis, DNS on loopback)', () => {
  let r2: Awaited<ReturnType<typeof import('../testkit/redis').testRedis>>
  let d2: Awaited<ReturnType<typeof import('../testkit/dns').startDns>>
  const quiet = { info: () => {}, notice: () => {}, warn: () => {}, crit: () => {} }
  before(async () => {
    r2 = await (await import('../testkit/redis')).testRedis()
    d2 = await (await import('../testkit/dns')).startDns()
  })
  after(async () => {
    await d2?.close()
    await r2?.close()
  })

  it('a still-listed IP reinstated by an operator (a false positive) is not suspended again; a listing that turns actionable suspends', async () => {
    const { zoneFromIni: zone } = await import('../lib/dnsbl')
    const { runCycle: run } = await import('../lib/monitor')
    const pool = await import('../lib/pool')
    const o = {
      zones: [zone('op.test', { listed: '127.0.0.2:SBL,127.0.0.10:PBL', informational: '127.0.0.10' })],
      resolvers: [d2.server], timeoutMs: 300, concurrency: 4, autoReinstate: false, investigationHours: 1, intervalMs: 60000,
    }
    const ip = `198.18.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`
    await pool.addIp(r2.client, ip, 'op.mon.test')
    try {
      d2.set('op.test', ip, { a: ['127.0.0.10'] }) // PBL only: informs
      await run(r2.client, o, { node: 't', log: quiet })
      assert.equal((await pool.getIp(r2.client, ip)).state, 'active')
      d2.set('op.test', ip, { a: ['127.0.0.10', '127.0.0.2'] }) // now SBL too: the same zone turns actionable
      const rep = await run(r2.client, o, { node: 't', log: quiet })
      assert.ok(rep.suspended.includes(ip))
      assert.ok((await pool.ipHistory(r2.client, ip)).some((h) => h.event === 'listed' && /SBL/.test(h.reason ?? '')))
      await pool.reinstateIp(r2.client, ip) // the operator judges it a false positive
      const again = await run(r2.client, o, { node: 't', log: quiet })
      assert.ok(!again.suspended.includes(ip), 'the operator decision stands while the listing is unchanged')
      assert.equal((await pool.getIp(r2.client, ip)).state, 'active')
    } finally {
      await pool.removeIp(r2.client, ip)
      d2.set('op.test', ip, undefined)
    }
  })
})
