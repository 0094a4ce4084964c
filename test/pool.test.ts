// lib/pool.ts against a real Redis: canonical addresses, adding, removing, suspending and reinstating pool IPs, their
// history, the pool view of a slot and the DNS check (warnings only). The pool hash is shared by every test that
// uses the same Redis, so each test uses fresh addresses and asserts on its own IPs only.
import { strict as assert } from 'node:assert'
import * as dgram from 'node:dgram'
import * as dns from 'node:dns'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import {
  addIp, checkDns, chooseSources, getIp, getPool, getPoolFresh, ipFamily, ipHistory, nodePool, normaliseIp, poolView, reinstateIp, removeIp, sourceOf, suspendIp, type PoolEntry,
} from '../lib/pool'
import type { RedisClient } from '../lib/redis'
import { activeIps, DEFAULT_ROTATION, slotAt, type RotationOptions } from '../lib/rotation'
import { delKeys, testRedis, type TestRedis } from '../testkit/redis'

const O: RotationOptions = { ...DEFAULT_ROTATION, timeZone: 'Europe/Rome' }
const rnd = (n: number) => Math.floor(Math.random() * n)

describe('pool (real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient
  const mine: string[] = []

  /** A fresh IPv4 in 198.18.0.0/15 (benchmarking range) or IPv6 in 2001:db8::/32, remembered for the cleanup. */
  const fresh4 = () => {
    const ip = `198.${18 + rnd(2)}.${rnd(256)}.${1 + rnd(254)}`
    mine.push(ip)
    return ip
  }
  const fresh6 = () => {
    const ip = `2001:db8:${(1 + rnd(0xfffe)).toString(16)}:${(1 + rnd(0xfffe)).toString(16)}::${(1 + rnd(0xfffe)).toString(16)}`
    mine.push(ip)
    return ip
  }
  const helo = (ip: string) => `mta-${ip.replace(/[.:]/g, '-')}.pool.example.net`

  before(async () => {
    r = await testRedis()
    redis = r.client
  })
  after(async () => {
    // leave the shared pool as it was: other tests rotate over whatever is in it
    if (redis && mine.length) {
      await redis.hdel(keys.pool(), ...mine)
      await redis.hdel(keys.poolLastUse(), ...mine)
      await delKeys(redis, mine.map((ip) => keys.ipHistory(ip)))
      await redis.incr(keys.poolVersion())
    }
    await r?.close()
  })

  describe('normaliseIp and ipFamily', () => {
    it('keeps IPv4 as it is (trimmed, brackets stripped)', () => {
      assert.equal(normaliseIp('203.0.113.7'), '203.0.113.7')
      assert.equal(normaliseIp('  203.0.113.7\n'), '203.0.113.7')
      assert.equal(normaliseIp('[203.0.113.7]'), '203.0.113.7')
      assert.equal(normaliseIp('0.0.0.0'), '0.0.0.0')
    })

    it('compresses and lower-cases IPv6 and strips brackets', () => {
      assert.equal(normaliseIp('2001:DB8:0:0:0:0:0:7'), '2001:db8::7')
      assert.equal(normaliseIp('2001:0db8:0000:0000:0000:0000:0000:0007'), '2001:db8::7')
      assert.equal(normaliseIp('[2001:db8::7]'), '2001:db8::7')
      assert.equal(normaliseIp(' [2001:DB8::A:0:0:7] '), '2001:db8::a:0:0:7')
      assert.equal(normaliseIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'the first longest run of zeros is the one compressed')
      assert.equal(normaliseIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed')
      assert.equal(normaliseIp('::1'), '::1')
      assert.equal(normaliseIp('0:0:0:0:0:0:0:0'), '::')
      assert.equal(normaliseIp(normaliseIp('2001:DB8::7')), '2001:db8::7', 'idempotent')
    })

    it('refuses anything else with an InputError naming the input', () => {
      for (const bad of ['', ' ', 'localhost', 'mta.example.net', '256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4/32',
        '203.0.113.7:25', '2001:db8::7::1', '2001:db8:::7', 'gggg::1', '[]', '1.2.3.4 5.6.7.8', 'fe80::1%eth0']) {
        assert.throws(() => normaliseIp(bad), (e: Error) => e instanceof InputError && e.message.includes(`"${bad}"`), JSON.stringify(bad))
      }
    })

    it('ipFamily tells IPv4 from IPv6', () => {
      assert.equal(ipFamily('203.0.113.7'), 4)
      assert.equal(ipFamily('2001:db8::7'), 6)
      assert.equal(ipFamily('::1'), 6)
      assert.equal(ipFamily(normaliseIp('[2001:DB8::7]')), 6)
    })
  })

  describe('add, remove, suspend, reinstate', () => {
    it('adds an IP with its HELO name: entry shape, the pool hash, the version and the history', async () => {
      const ip = fresh4()
      const before = Number((await redis.get(keys.poolVersion())) ?? 0)
      const t0 = Date.now()
      const e = await addIp(redis, ` ${ip} `, `${helo(ip).toUpperCase()}.`)
      assert.deepEqual(Object.keys(e).sort(), ['added_at', 'helo', 'ip', 'since', 'state'])
      assert.equal(e.ip, ip)
      assert.equal(e.helo, helo(ip), 'HELO lower-cased, trailing dot dropped')
      assert.equal(e.state, 'active')
      assert.equal(e.since, e.added_at)
      assert.ok(Date.parse(e.added_at) >= t0 - 1000 && Date.parse(e.added_at) <= Date.now() + 1000)
      assert.deepEqual(JSON.parse((await redis.hget(keys.pool(), ip))!), e)
      assert.deepEqual(await getIp(redis, ip), e)
      assert.ok((await getPool(redis)).some((p) => p.ip === ip))
      assert.ok(Number(await redis.get(keys.poolVersion())) > before, 'the version is bumped')
      const h = await ipHistory(redis, ip)
      assert.equal(h.length, 1)
      assert.equal(h[0].event, 'added')
      assert.equal(h[0].by, 'operator')
      assert.equal(h[0].reason, `helo ${helo(ip)}`)
    })

    it('adds an IPv6 under its canonical form and refuses it in another spelling', async () => {
      const ip = fresh6()
      const long = ip.replace('::', ':0:0:0:').toUpperCase()
      const e = await addIp(redis, `[${long}]`, helo(ip), 'cli')
      assert.equal(e.ip, ip)
      assert.ok(await redis.hexists(keys.pool(), ip))
      assert.equal(await redis.hexists(keys.pool(), long), 0)
      assert.equal((await ipHistory(redis, long))[0].by, 'cli', 'history is found under any spelling')
      await assert.rejects(addIp(redis, long, helo(ip)), (err: Error) => err instanceof InputError && err.message.includes(ip))
    })

    it('refuses a duplicate without touching the entry, the version or the history', async () => {
      const ip = fresh4()
      const first = await addIp(redis, ip, helo(ip))
      const version = await redis.get(keys.poolVersion())
      await assert.rejects(addIp(redis, ip, 'other.example.net'), (e: Error) => e instanceof InputError && /already in the pool/.test(e.message))
      assert.deepEqual(await getIp(redis, ip), first, 'the HELO is not replaced')
      assert.equal(await redis.get(keys.poolVersion()), version)
      assert.equal((await ipHistory(redis, ip)).length, 1)
    })

    it('refuses a bad HELO or a bad address and writes nothing', async () => {
      const ip = fresh4()
      const version = await redis.get(keys.poolVersion())
      for (const bad of ['', 'localhost', 'mta_1.example.net', '203.0.113.7', 'mta..example.net', '-mta.example.net']) {
        await assert.rejects(addIp(redis, ip, bad), InputError, JSON.stringify(bad))
      }
      await assert.rejects(addIp(redis, 'not-an-ip', 'mta.example.net'), InputError)
      assert.equal(await redis.hexists(keys.pool(), ip), 0)
      assert.equal(await redis.exists(keys.ipHistory(ip)), 0)
      assert.equal(await redis.get(keys.poolVersion()), version)
      await assert.rejects(getIp(redis, ip), NotFoundError)
    })

    it('removes an IP (and records it); an unknown IP is a NotFoundError', async () => {
      const ip = fresh4()
      await addIp(redis, ip, helo(ip))
      const version = Number(await redis.get(keys.poolVersion()))
      await removeIp(redis, `[${ip}]`, 'ops')
      assert.equal(await redis.hexists(keys.pool(), ip), 0)
      assert.ok(!(await getPool(redis)).some((p) => p.ip === ip))
      assert.ok(Number(await redis.get(keys.poolVersion())) > version)
      const h = await ipHistory(redis, ip)
      assert.deepEqual(h.map((e) => [e.event, e.by]), [['removed', 'ops'], ['added', 'operator']])
      await assert.rejects(removeIp(redis, ip), (e: Error) => e instanceof NotFoundError && e.message.includes(ip))
      const unknown = fresh6()
      await assert.rejects(removeIp(redis, unknown), NotFoundError)
      assert.equal(await redis.exists(keys.ipHistory(unknown)), 0, 'no history for an IP that never was')
      await assert.rejects(removeIp(redis, 'nonsense'), InputError)
    })

    it('a suspension needs a reason, and an unknown IP cannot be suspended', async () => {
      const ip = fresh4()
      const e = await addIp(redis, ip, helo(ip))
      for (const reason of ['', '   ', '\n']) await assert.rejects(suspendIp(redis, ip, reason), (err: Error) => err instanceof InputError && /reason/.test(err.message))
      assert.deepEqual(await getIp(redis, ip), e, 'still active')
      assert.equal((await ipHistory(redis, ip)).length, 1)
      await assert.rejects(suspendIp(redis, fresh4(), 'listed'), NotFoundError)
    })

    it('suspends and reinstates, bumping the version; reinstating an IP that is not suspended is refused', async () => {
      const ip = fresh4()
      const added = await addIp(redis, ip, helo(ip))
      await assert.rejects(reinstateIp(redis, ip), (e: Error) => e instanceof InputError && /not suspended/.test(e.message))
      const v0 = Number(await redis.get(keys.poolVersion()))
      const s = await suspendIp(redis, ip, '  listed on zen.example  ', 'monitor')
      assert.equal(s.state, 'suspended')
      assert.equal(s.reason, 'listed on zen.example', 'reason trimmed')
      assert.equal(s.suspended_by, 'monitor')
      assert.equal(s.helo, added.helo)
      assert.equal(s.added_at, added.added_at)
      assert.ok(s.since >= added.since)
      assert.deepEqual(await getIp(redis, ip), s)
      assert.ok(Number(await redis.get(keys.poolVersion())) > v0)
      const v1 = Number(await redis.get(keys.poolVersion()))
      const back = await reinstateIp(redis, ip, 'ops')
      assert.equal(back.state, 'active')
      const stored = JSON.parse((await redis.hget(keys.pool(), ip))!)
      assert.ok(!('reason' in stored) && !('suspended_by' in stored), 'the suspension reason does not linger')
      assert.equal(stored.state, 'active')
      assert.ok(Number(await redis.get(keys.poolVersion())) > v1)
      await assert.rejects(reinstateIp(redis, ip), InputError, 'twice')
      await assert.rejects(reinstateIp(redis, fresh4()), NotFoundError)
    })

    it('history lists added, suspended and reinstated, newest first, with reason and by', async () => {
      const ip = fresh6()
      await addIp(redis, ip, helo(ip), 'ops-a')
      await suspendIp(redis, ip, 'complaints', 'ops-b')
      await reinstateIp(redis, ip, 'ops-c')
      await suspendIp(redis, ip, 'listed', 'monitor')
      const h = await ipHistory(redis, ip.toUpperCase())
      assert.deepEqual(
        h.map((e) => ({ event: e.event, by: e.by, reason: e.reason })),
        [
          { event: 'suspended', by: 'monitor', reason: 'listed' },
          { event: 'reinstated', by: 'ops-c', reason: undefined },
          { event: 'suspended', by: 'ops-b', reason: 'complaints' },
          { event: 'added', by: 'ops-a', reason: `helo ${helo(ip)}` },
        ],
      )
      for (let i = 1; i < h.length; i++) assert.ok(h[i - 1].at >= h[i].at, 'newest first')
      assert.ok(h.every((e) => !Number.isNaN(Date.parse(e.at))))
      assert.equal((await getIp(redis, ip)).state, 'suspended')
    })

    it('getPoolFresh sees a suspension made after it cached the pool', async () => {
      const ip = fresh4()
      await addIp(redis, ip, helo(ip))
      assert.equal((await getPoolFresh(redis)).find((p) => p.ip === ip)?.state, 'active')
      await suspendIp(redis, ip, 'test')
      assert.equal((await getPoolFresh(redis)).find((p) => p.ip === ip)?.state, 'suspended')
      await removeIp(redis, ip)
      assert.equal((await getPoolFresh(redis)).find((p) => p.ip === ip), undefined)
    })
  })

  describe('poolView', () => {
    it('marks the slot\'s active IPs, usable unless suspended, with their last use', async () => {
      const ips = Array.from({ length: 4 }, () => fresh4())
      for (const ip of ips) await addIp(redis, ip, helo(ip))
      await redis.hset(keys.poolLastUse(), ips[0], String(Date.parse('2026-06-15T09:00:00Z')))
      const day = Date.parse('2026-06-14T22:00:00Z') // local midnight of 2026-06-15 in Rome
      const seen = new Map<string, Set<boolean>>(ips.map((ip) => [ip, new Set<boolean>()]))
      for (let i = 0; i < 6; i++) {
        const now = new Date(day + i * 4 * 3600000 + 60000)
        const all = (await getPool(redis)).map((p) => p.ip)
        const expected = new Set(activeIps(all, slotAt(now, O).number, O))
        const view = await poolView(redis, O, now)
        for (const ip of ips) {
          const v = view.find((p) => p.ip === ip)!
          assert.ok(v, `${ip} is in the view`)
          assert.equal(v.active, expected.has(ip), `slot ${i}: ${ip}`)
          assert.equal(v.usable, v.active, 'none of them is suspended')
          assert.equal(v.helo, helo(ip))
          assert.equal(v.last_use, ip === ips[0] ? '2026-06-15T09:00:00.000Z' : null)
          seen.get(ip)!.add(v.active)
        }
      }
      // with half the pool active, each IP both works and rests in some slot of the day
      for (const ip of ips) assert.deepEqual([...seen.get(ip)!].sort(), [false, true], ip)
    })

    it('a suspended IP in the active subset is active but not usable; the others are unaffected', async () => {
      const ips = Array.from({ length: 3 }, () => fresh6())
      for (const ip of ips) await addIp(redis, ip, helo(ip))
      const victim = ips[1]
      await suspendIp(redis, victim, 'listed')
      const all = (await getPool(redis)).map((p) => p.ip)
      // the first slot (4 hours apart) in which the victim is in the active subset, and one in which it rests
      const base = Date.parse('2026-06-14T22:00:00Z') + 60000
      const times = Array.from({ length: 24 }, (_, i) => new Date(base + i * 4 * 3600000))
      const on = times.find((t) => activeIps(all, slotAt(t, O).number, O).includes(victim))!
      const off = times.find((t) => !activeIps(all, slotAt(t, O).number, O).includes(victim))!
      assert.ok(on && off)
      const vOn = (await poolView(redis, O, on)).find((p) => p.ip === victim)!
      assert.equal(vOn.state, 'suspended')
      assert.equal(vOn.reason, 'listed')
      assert.equal(vOn.active, true)
      assert.equal(vOn.usable, false)
      const vOff = (await poolView(redis, O, off)).find((p) => p.ip === victim)!
      assert.deepEqual([vOff.active, vOff.usable], [false, false])
      const activeOn = new Set(activeIps(all, slotAt(on, O).number, O))
      for (const v of (await poolView(redis, O, on)).filter((p) => ips.includes(p.ip) && p.ip !== victim)) {
        assert.equal(v.active, activeOn.has(v.ip))
        assert.equal(v.usable, v.active, `${v.ip}: not suspended`)
      }
      await reinstateIp(redis, victim)
      const again = (await poolView(redis, O, on)).find((p) => p.ip === victim)!
      assert.deepEqual([again.active, again.usable], [true, true], 'usable again once reinstated')
    })
  })

  describe('checkDns', () => {
    /** A UDP port nothing listens on. */
    const closedPort = () =>
      new Promise<number>((resolve, reject) => {
        const s = dgram.createSocket('udp4')
        s.once('error', reject)
        s.bind(0, '127.0.0.1', () => {
          const { port } = s.address()
          s.close(() => resolve(port))
        })
      })

    it('returns warnings, never throws, when the resolver gets no answer', async function () {
      const port = await closedPort()
      for (const ip of ['198.18.7.7', '2001:db8::7']) {
        const resolver = new dns.promises.Resolver({ timeout: 200, tries: 1 })
        resolver.setServers([`127.0.0.1:${port}`])
        const t0 = Date.now()
        const w = await checkDns(ip, 'mta7.pool.example.net', resolver)
        assert.ok(Date.now() - t0 < 5000, 'bounded by the resolver timeout')
        assert.equal(w.length, 2, w.join('\n'))
        assert.match(w[0], new RegExp(`^no PTR record for ${ip.replace(/\./g, '\\.')} \\(E[A-Z]+\\): receivers expect one naming mta7\\.pool\\.example\\.net$`))
        assert.match(w[1], /^mta7\.pool\.example\.net does not resolve \(E[A-Z]+\): forward and reverse DNS do not match$/)
      }
    })

    /** A resolver with fixed answers (the injectable seam), for the comparisons checkDns makes. */
    const fixed = (ptr: string[], a: string[], aaaa: string[]) =>
      ({
        reverse: async () => ptr,
        resolve4: async () => a,
        resolve6: async () => aaaa,
      }) as unknown as dns.promises.Resolver

    it('no warning when PTR and forward DNS match (case, trailing dot and IPv6 spelling aside)', async () => {
      assert.deepEqual(await checkDns('198.18.7.7', 'mta7.pool.example.net', fixed(['MTA7.Pool.Example.NET.'], ['198.18.7.7'], [])), [])
      assert.deepEqual(await checkDns('2001:db8::7', 'mta7.pool.example.net', fixed(['mta7.pool.example.net'], [], ['2001:0DB8:0:0:0:0:0:7'])), [])
    })

    it('warns when the PTR names another host or the HELO resolves elsewhere', async () => {
      const w = await checkDns('198.18.7.7', 'mta7.pool.example.net', fixed(['other.example.net'], ['198.18.7.8'], []))
      assert.equal(w.length, 2)
      assert.match(w[0], /PTR of 198\.18\.7\.7 is other\.example\.net, not mta7\.pool\.example\.net/)
      assert.match(w[1], /resolves to 198\.18\.7\.8, not 198\.18\.7\.7/)
      const empty = await checkDns('198.18.7.7', 'mta7.pool.example.net', fixed([], ['198.18.7.7'], []))
      assert.deepEqual(empty.length, 1)
      assert.match(empty[0], /is empty, not mta7/)
    })
  })
})

describe('pool: the source of a delivery (chooseSources, sourceOf)', () => {
  const entry = (ip: string): PoolEntry => ({ ip, helo: `h-${ip}`, state: 'active', since: '', added_at: '' })
  const v4a = entry('198.51.100.1')
  const v4b = entry('198.51.100.2')
  const v6 = entry('2001:db8::1')
  const mxs = [
    { exchange: '2001:db8:ffff::25', priority: 10 }, // haraka-net-utils lists an MX's AAAA before its A
    { exchange: '203.0.113.25', priority: 10 },
    { exchange: '203.0.113.99', priority: 5 },
  ]

  it('one source per family, the sticky IP first, by MX priority', () => {
    let n = 0
    const list = chooseSources(mxs, [v4a, v4b, v6], '198.51.100.2', () => n++)
    assert.deepEqual(list.map((m) => [m.exchange, m.bind, m.bind_helo]), [
      ['203.0.113.99', '198.51.100.2', 'h-198.51.100.2'],
      ['2001:db8:ffff::25', '2001:db8::1', 'h-2001:db8::1'],
      ['203.0.113.25', '198.51.100.2', 'h-198.51.100.2'],
    ])
    assert.equal(n, 1, 'the turn advances for the family without a sticky IP only')
  })

  it('a family with no usable IP is left out; none usable gives nothing', () => {
    assert.deepEqual(chooseSources(mxs, [v4a], null, () => 0).map((m) => m.exchange), ['203.0.113.99', '203.0.113.25'])
    assert.deepEqual(chooseSources(mxs, [v6], null, () => 0).map((m) => m.exchange), ['2001:db8:ffff::25'])
    assert.deepEqual(chooseSources(mxs, [], null, () => 0), [])
    assert.deepEqual(chooseSources(mxs, [v4a], '10.9.9.9', () => 0).map((m) => m.bind), ['198.51.100.1', '198.51.100.1'], 'an unusable sticky IP is ignored')
  })

  it('sourceOf names the IP of the MX address that answered, not the first planned', () => {
    const list = chooseSources(mxs, [v4a, v6], null, () => 0)
    assert.equal(sourceOf(list, '203.0.113.25'), '198.51.100.1')
    assert.equal(sourceOf(list, '2001:db8:ffff::25'), '2001:db8::1')
    assert.equal(sourceOf(list, '[2001:db8:ffff::25]'), '2001:db8::1')
    assert.equal(sourceOf(list, '::ffff:203.0.113.99'), '198.51.100.1')
    assert.equal(sourceOf(list, '192.0.2.1'), undefined)
    assert.equal(sourceOf(list, undefined), undefined)
    assert.equal(sourceOf([], '203.0.113.25'), undefined)
  })
})

describe('pool: IPs owned by nodes (real Redis)', () => {
  let r: TestRedis
  const ips = ['198.18.250.1', '198.18.250.2', '198.18.250.3']
  before(async () => {
    r = await testRedis()
  })
  after(async () => {
    await r.client.hdel(keys.pool(), ...ips)
    for (const ip of ips) await r.client.del(keys.ipHistory(ip))
    await r.client.incr(keys.poolVersion())
    await r.close()
  })

  it('addIp keeps the owner (lower-cased) and says so in the history; without one the IP is shared', async () => {
    const owned = await addIp(r.client, ips[0], 'mta1.pool.example.net', 'operator', 'Relay-1')
    assert.equal(owned.node, 'relay-1')
    assert.equal((await getIp(r.client, ips[0])).node, 'relay-1')
    assert.equal((await ipHistory(r.client, ips[0]))[0].reason, 'helo mta1.pool.example.net, node relay-1')
    const shared = await addIp(r.client, ips[1], 'mta2.pool.example.net')
    assert.equal('node' in shared, false)
  })

  it('a bad node name is refused and nothing is added', async () => {
    for (const bad of ['relay 1', '-relay', 'relay-', 'r'.repeat(64), 'relay/1', '']) {
      await assert.rejects(addIp(r.client, ips[2], 'mta3.pool.example.net', 'operator', bad), (e: Error) => e instanceof InputError && /is not a node name/.test(e.message), bad)
    }
    assert.equal(await r.client.hexists(keys.pool(), ips[2]), 0)
  })

  it("nodePool: a node's own IPs and the shared ones, never another node's", () => {
    const p = (ip: string, node?: string): PoolEntry => ({ ip, helo: 'h.example', state: 'active', since: '', added_at: '', ...(node ? { node } : {}) })
    const pool = [p('192.0.2.1', 'a'), p('192.0.2.2', 'b'), p('192.0.2.3')]
    assert.deepEqual(nodePool(pool, 'a').map((e) => e.ip), ['192.0.2.1', '192.0.2.3'])
    assert.deepEqual(nodePool(pool, 'b').map((e) => e.ip), ['192.0.2.2', '192.0.2.3'])
    assert.deepEqual(nodePool(pool, 'c').map((e) => e.ip), ['192.0.2.3'])
  })
})
