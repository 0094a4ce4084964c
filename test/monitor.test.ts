// lib/monitor.ts runCycle against a real Redis and a real DNS server: transitions, UNKNOWN, reinstatement rules,
// the infrastructure warning, and the one-node-per-window claim.
import { strict as assert } from 'node:assert'
import { zoneFromIni } from '../lib/dnsbl'
import { keys } from '../lib/keys'
import { claimCycle, runCycle, type Logger, type MonitorOptions } from '../lib/monitor'
import { addIp, getIp, ipHistory, suspendIp } from '../lib/pool'
import type { RedisClient } from '../lib/redis'
import { startDns, type TestDns } from '../testkit/dns'
import { testRedis, type TestRedis } from '../testkit/redis'

describe('monitor cycle (real Redis, real DNS)', () => {
  let r: TestRedis
  let redis: RedisClient
  let dns: TestDns
  const lines: string[] = []
  const log: Logger = { info: (m) => lines.push(`INFO ${m}`), notice: (m) => lines.push(`NOTICE ${m}`), warn: (m) => lines.push(`WARN ${m}`), crit: (m) => lines.push(`CRIT ${m}`) }
  let o: MonitorOptions

  before(async () => {
    r = await testRedis()
    redis = r.client
    dns = await startDns()
    o = {
      zones: [zoneFromIni('a.test', { listed: '127.0.0.2:A', errors: '127.255.255.0/24' }), zoneFromIni('b.test', { listed: '127.0.0.2:B' })],
      resolvers: [dns.server], timeoutMs: 300, concurrency: 8, autoReinstate: false, investigationHours: 1, intervalMs: 60000,
    }
  })
  after(async () => {
    await dns?.close()
    await r?.close()
  })

  const freshIp = () => `198.18.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`

  it('suspends once on a listing, and UNKNOWN afterwards changes nothing', async () => {
    const ip = freshIp()
    await addIp(redis, ip, 'mta.mon.test')
    dns.set('a.test', ip, { a: ['127.0.0.2'], txt: 'why' })
    const first = await runCycle(redis, o, { node: 't', log })
    assert.ok(first.suspended.includes(ip))
    assert.equal(first.investigations.length, 1)
    const e = await getIp(redis, ip)
    assert.equal(e.suspended_by, 'monitor')
    assert.match(e.reason!, /listed on a\.test \(A\): why/)
    const again = await runCycle(redis, o, { node: 't', log })
    assert.ok(!again.suspended.includes(ip), 'not suspended twice')
    assert.equal(again.investigations.length, 0, 'no second investigation')
    dns.set('a.test', ip, 'timeout')
    await runCycle(redis, o, { node: 't', log })
    assert.equal(JSON.parse((await redis.hget(keys.monitorIp(ip), 'a.test'))!).state, 'LISTED', 'a timeout does not clear')
    assert.ok(!(await ipHistory(redis, ip)).some((h) => h.event === 'cleared'))
    dns.set('a.test', ip, undefined)
  })

  it('reinstates by itself only with autoReinstate, and never an IP an operator suspended', async () => {
    const [mine, manual] = [freshIp(), freshIp()]
    await addIp(redis, mine, 'a.mon.test')
    await addIp(redis, manual, 'b.mon.test')
    await suspendIp(redis, manual, 'operator says so')
    dns.set('b.test', mine, { a: ['127.0.0.2'] })
    dns.set('b.test', manual, { a: ['127.0.0.2'] })
    await runCycle(redis, o, { node: 't', log })
    assert.equal((await getIp(redis, mine)).state, 'suspended')
    dns.set('b.test', mine, undefined)
    dns.set('b.test', manual, undefined)
    const rep = await runCycle(redis, { ...o, autoReinstate: true }, { node: 't', log })
    assert.ok(rep.reinstated.includes(mine))
    assert.equal((await getIp(redis, mine)).state, 'active')
    assert.equal((await getIp(redis, manual)).state, 'suspended', "the operator's suspension stays")
    assert.deepEqual((await ipHistory(redis, mine)).slice(0, 3).map((h) => `${h.event}/${h.by}`), ['reinstated/monitor', 'cleared/monitor', 'suspended/monitor'])
  })

  it('warns when most zones are unhealthy or unknown', async () => {
    dns.breakCanary('a.test', true)
    dns.breakCanary('b.test', true)
    const rep = await runCycle(redis, o, { node: 't', log })
    assert.match(rep.warnings.join(' '), /DNS infrastructure problem: 2 of 2 zones/)
    assert.ok(lines.some((l) => l.startsWith('WARN DNSBL zone a.test failed its canary')))
    dns.breakCanary('a.test', false)
    dns.breakCanary('b.test', false)
  })

  it('lets exactly one of many nodes claim an interval window', async () => {
    const now = Date.now()
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => claimCycle(redis, 3_600_000, `node${i}`, now)))
    assert.equal(wins.filter(Boolean).length, 1)
    assert.equal(await claimCycle(redis, 3_600_000, 'late', now + 3_600_000), true, 'the next window is free')
  })
})
