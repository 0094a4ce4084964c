// lib/ledger.ts and lib/investigation.ts against a real Redis: hourly aggregates per IP, the tenant's day and recent
// attempts, and the ranking an investigation builds from them. Every test uses fresh tenants and source IPs, so a
// shared REDIS_URL does no harm; the keys written are deleted afterwards.
import { strict as assert } from 'node:assert'
import { getInvestigation, investigate, listInvestigations, saveInvestigation } from '../lib/investigation'
import { keys } from '../lib/keys'
import { DEFAULT_LEDGER, deliveryCounts, hourOf, hoursBetween, ipTraffic, recentAttempts, recordAttempt, resultField, type Attempt, type LedgerOptions } from '../lib/ledger'
import { DEFAULT_QUOTA } from '../lib/quota'
import type { RedisClient } from '../lib/redis'
import { delKeys, scanKeys, testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const O: LedgerOptions = { timeZone: 'Europe/Rome', hourlyDays: 30, rawDays: 7, recentMax: 5 }
const DAY = 86400000
const at = (iso: string) => Date.parse(iso)

describe('ledger and investigations (real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient
  const ips: string[] = []
  const tenants: string[] = []

  before(async () => {
    r = await testRedis()
    redis = r.client
  })
  after(async () => {
    if (redis && ips.length) {
      await redis.hdel(keys.poolLastUse(), ...ips)
      const own: string[] = []
      for (const pattern of [...ips.map((ip) => keys.ledgerIpHour(ip, '*')), ...tenants.flatMap((t) => [keys.usageDay(t, '*'), keys.ledgerDeferred(t, '*')])]) {
        own.push(...(await scanKeys(redis, pattern)))
      }
      await delKeys(redis, [...own, ...tenants.flatMap((t) => [keys.ledgerRecent(t), keys.ledgerDomains(t)])])
    }
    await r?.close()
  })

  /** A fresh source IP in 198.18.0.0/15 or 2001:db8::/32. */
  const ip = (v6 = false) => {
    const a = v6
      ? `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}::${(1 + Math.floor(Math.random() * 0xfffe)).toString(16)}`
      : `198.${18 + Math.floor(Math.random() * 2)}.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 254) + 1}`
    ips.push(a)
    return a
  }
  const tenant = (p: string) => {
    const t = uniqueName(p)
    tenants.push(t)
    return t
  }
  const attempt = (a: Partial<Attempt>): Attempt => ({
    at: at('2026-11-27T14:10:00Z'), tenant: 't', tx: 'X.1.1', ip: '198.19.0.1', domain: 'example.net', mx: 'mx.example.net',
    result: 'delivered', code: '250', response: '250 ok', size: 1000, rcpts: 1, ...a,
  })

  describe('hours', () => {
    it('hourOf names the UTC hour', () => {
      assert.equal(hourOf(at('2026-11-27T14:00:00Z')), '2026-11-27T14')
      assert.equal(hourOf(at('2026-11-27T14:59:59.999Z')), '2026-11-27T14')
      assert.equal(hourOf(at('2026-11-27T15:00:00Z')), '2026-11-27T15')
      assert.equal(hourOf(at('2026-03-29T01:30:00Z')), '2026-03-29T01', 'UTC: the DST change in Rome does not matter')
      assert.equal(hourOf(at('2026-12-31T23:59:59Z')), '2026-12-31T23')
    })

    it('hoursBetween includes the hours of both ends', () => {
      assert.deepEqual(hoursBetween(new Date('2026-11-27T14:10:00Z'), new Date('2026-11-27T16:00:00Z')), ['2026-11-27T14', '2026-11-27T15', '2026-11-27T16'])
      assert.deepEqual(hoursBetween(new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T15:59:59.999Z')), ['2026-11-27T14', '2026-11-27T15'])
      assert.deepEqual(hoursBetween(new Date('2026-11-27T14:59:59Z'), new Date('2026-11-27T15:00:00Z')), ['2026-11-27T14', '2026-11-27T15'], 'two seconds across a boundary')
      assert.deepEqual(hoursBetween(new Date('2026-12-31T22:30:00Z'), new Date('2027-01-01T00:30:00Z')), ['2026-12-31T22', '2026-12-31T23', '2027-01-01T00'])
      assert.equal(hoursBetween(new Date('2026-11-20T00:00:00Z'), new Date('2026-11-27T00:00:00Z')).length, 7 * 24 + 1)
    })

    it('a range inside one hour (or one instant) gives that hour; a reversed range gives none', () => {
      assert.deepEqual(hoursBetween(new Date('2026-11-27T14:10:00Z'), new Date('2026-11-27T14:20:00Z')), ['2026-11-27T14'])
      assert.deepEqual(hoursBetween(new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T14:00:00Z')), ['2026-11-27T14'])
      assert.deepEqual(hoursBetween(new Date('2026-11-27T16:00:00Z'), new Date('2026-11-27T14:00:00Z')), [])
    })
  })

  describe('recordAttempt and ipTraffic', () => {
    it('aggregates per tenant: attempts, results, bytes = size x rcpts, rcpts; largest traffic first', async () => {
      const [a, b, c, source] = [tenant('a'), tenant('b'), tenant('c'), ip()]
      await recordAttempt(redis, attempt({ tenant: a, ip: source, size: 5000, rcpts: 2 }), O) // 10000 bytes
      await recordAttempt(redis, attempt({ tenant: a, ip: source, result: 'bounced', domain: 'new.example', size: 1000, rcpts: 1, at: at('2026-11-27T15:30:00Z') }), O)
      await recordAttempt(redis, attempt({ tenant: a, ip: source, result: 'deferred', size: 300, rcpts: 10, at: at('2026-11-27T16:59:59Z') }), O)
      await recordAttempt(redis, attempt({ tenant: b, ip: source, result: 'deferred', size: 20000, rcpts: 1 }), O)
      await recordAttempt(redis, attempt({ tenant: c, ip: source, size: 100, rcpts: 1 }), O)
      await recordAttempt(redis, attempt({ tenant: c, ip: source, size: 100, rcpts: 1, domain: 'other.example' }), O)
      const { hours, tenants: rows } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T16:30:00Z'))
      assert.deepEqual(hours, ['2026-11-27T14', '2026-11-27T15', '2026-11-27T16'])
      assert.deepEqual(rows.map((t) => t.tenant), [b, a, c], 'ranked by bytes')
      assert.deepEqual(rows[0], { tenant: b, attempts: 1, delivered: 0, deferred: 1, bounced: 0, bytes: 20000, rcpts: 1, newdomains: 1, dsn_attempts: 0, dsn_delivered: 0 })
      assert.deepEqual(rows[1], { tenant: a, attempts: 3, delivered: 1, deferred: 1, bounced: 1, bytes: 14000, rcpts: 13, newdomains: 2, dsn_attempts: 0, dsn_delivered: 0 })
      assert.deepEqual(rows[2], { tenant: c, attempts: 2, delivered: 2, deferred: 0, bounced: 0, bytes: 200, rcpts: 2, newdomains: 2, dsn_attempts: 0, dsn_delivered: 0 })
      // the raw hour hash, as the monitor's investigation reads it
      assert.deepEqual(await redis.hgetall(keys.ledgerIpHour(source, '2026-11-27T15')), {
        [`${a}|attempts`]: '1', [`${a}|bounced`]: '1', [`${a}|bytes`]: '1000', [`${a}|rcpts`]: '1', [`${a}|newdomains`]: '1',
      })
    })

    it('ties on bytes are ranked by attempts', async () => {
      const [few, many, source] = [tenant('few'), tenant('many'), ip(true)]
      await recordAttempt(redis, attempt({ tenant: few, ip: source, size: 1000, rcpts: 2 }), O)
      await recordAttempt(redis, attempt({ tenant: many, ip: source, size: 1000, rcpts: 1 }), O)
      await recordAttempt(redis, attempt({ tenant: many, ip: source, size: 1000, rcpts: 1 }), O)
      const { tenants: rows } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T14:59:00Z'))
      assert.deepEqual(rows.map((t) => [t.tenant, t.bytes, t.attempts]), [[many, 2000, 2], [few, 2000, 1]])
    })

    it('does not count attempts outside the window, nor other IPs', async () => {
      const [t, source, other] = [tenant('w'), ip(), ip()]
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-11-27T13:59:59Z') }), O) // the hour before
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-11-27T14:00:00Z') }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-11-27T15:59:59Z') }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-11-27T16:00:00Z') }), O) // the hour after
      await recordAttempt(redis, attempt({ tenant: t, ip: other, at: at('2026-11-27T14:30:00Z') }), O)
      const { tenants: rows } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T15:59:59Z'))
      assert.equal(rows.length, 1)
      assert.equal(rows[0].attempts, 2)
      assert.equal(rows[0].bytes, 2000)
      assert.deepEqual((await ipTraffic(redis, source, new Date('2026-11-27T10:00:00Z'), new Date('2026-11-27T12:00:00Z'))).tenants, [])
      assert.equal((await ipTraffic(redis, other, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T14:00:00Z'))).tenants[0].attempts, 1)
    })

    it('mail with no tenant counts under "-", with no day, recent or domain record', async () => {
      const source = ip()
      await recordAttempt(redis, attempt({ tenant: '', ip: source, size: 700, rcpts: 3, result: 'bounced' }), O)
      await recordAttempt(redis, attempt({ tenant: '', ip: source, size: 700, rcpts: 1, domain: 'elsewhere.example' }), O)
      const { tenants: rows } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T14:00:00Z'))
      assert.deepEqual(rows, [{ tenant: '-', attempts: 2, delivered: 1, deferred: 0, bounced: 1, bytes: 2800, rcpts: 4, newdomains: 0, dsn_attempts: 0, dsn_delivered: 0 }])
      for (const t of ['-', '']) {
        for (const k of [keys.usageDay(t, '2026-11-27'), keys.ledgerRecent(t), keys.ledgerDomains(t)]) assert.equal(await redis.exists(k), 0, k)
      }
    })

    it('counts delivered, deferred and bounced recipients in the tenant\'s day hash, by the local day', async () => {
      const t = tenant('day')
      const source = ip()
      // 22:30Z on 30 June is 00:30 on 1 July in Rome; 21:59Z is still 30 June
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-06-30T21:59:00Z') }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-06-30T22:30:00Z') }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-06-30T22:31:00Z'), result: 'deferred', tx: 'D1', recipients: ['a@x.example'] }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-06-30T22:32:00Z'), result: 'deferred', tx: 'D2', recipients: ['a@x.example'] }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: at('2026-06-30T22:33:00Z'), result: 'bounced' }), O)
      assert.deepEqual(await redis.hgetall(keys.usageDay(t, '2026-06-30')), { delivered: '1' })
      assert.deepEqual(await redis.hgetall(keys.usageDay(t, '2026-07-01')), { delivered: '1', deferred: '2', bounced: '1' })
      // a lifetime is set when the ledger writes first...
      const ttl = await redis.ttl(keys.usageDay(t, '2026-07-01'))
      assert.ok(ttl > (DEFAULT_QUOTA.retentionDays + 30) * 86400 && ttl <= (DEFAULT_QUOTA.retentionDays + 31) * 86400, String(ttl))
      // ...and kept when the quota set one before
      const u = tenant('dayq')
      await redis.hincrby(keys.usageDay(u, '2026-07-01'), 'bytes', 10)
      await redis.expire(keys.usageDay(u, '2026-07-01'), 1234567)
      await recordAttempt(redis, attempt({ tenant: u, ip: source, at: at('2026-07-01T10:00:00Z') }), O)
      assert.deepEqual(await redis.hgetall(keys.usageDay(u, '2026-07-01')), { bytes: '10', delivered: '1' })
      const kept = await redis.ttl(keys.usageDay(u, '2026-07-01'))
      assert.ok(kept <= 1234567 && kept > 1234500, String(kept))
    })

    it('counts recipients, not attempts: a deferred recipient once per message however many retries, delivered and bounced ones each', async () => {
      const [t, source] = [tenant('per'), ip()]
      const day = '2026-11-27'
      // a message to four recipients: all four wait, three wait again, then two are delivered and one bounces
      const four = ['A@x.example', 'b@x.example', 'c@x.example', 'd@x.example']
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'M1', result: 'deferred', rcpts: 4, recipients: four }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'M1', result: 'deferred', rcpts: 3, recipients: ['a@x.example', 'b@x.example', 'c@x.example'] }), O)
      assert.deepEqual(deliveryCounts(await redis.hgetall(keys.usageDay(t, day))), { delivered: 0, deferred: 4, bounced: 0 }, 'the second wait counts nobody again (case ignored)')
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'M1', result: 'delivered', rcpts: 3, recipients: ['a@x.example', 'b@x.example'] }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'M1', result: 'bounced', rcpts: 1, recipients: ['c@x.example'] }), O)
      // the same address in another message is another recipient
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'M2', result: 'deferred', rcpts: 1, recipients: ['a@x.example'] }), O)
      assert.deepEqual(deliveryCounts(await redis.hgetall(keys.usageDay(t, day))), { delivered: 2, deferred: 5, bounced: 1 })
      const set = await redis.ttl(keys.ledgerDeferred(t, 'M1'))
      assert.ok(set > 29 * 86400 && set <= 30 * 86400, `the memory of who waited outlives any retry schedule: ${set}`)
      // the hour hash of the IP still counts attempts
      const { tenants: rows } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T14:00:00Z'))
      assert.deepEqual([rows[0].attempts, rows[0].deferred, rows[0].delivered, rows[0].bounced], [5, 3, 1, 1])
      // an attempt with no recipient list counts its rcpts
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'M3', result: 'delivered', rcpts: 3 }), O)
      assert.equal(deliveryCounts(await redis.hgetall(keys.usageDay(t, day))).delivered, 5)
    })

    it('mail Posta sends about a tenant (bounces, notices) is ledgered under it, apart from its own results', async () => {
      const [t, source] = [tenant('dsn'), ip()]
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'DSN1', kind: 'dsn', result: 'deferred', recipients: ['s@y.example'] }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'DSN1', kind: 'dsn', result: 'delivered', recipients: ['s@y.example'] }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, tx: 'Q1', kind: 'notice', result: 'delivered', recipients: ['ops@y.example'] }), O)
      const h = await redis.hgetall(keys.usageDay(t, '2026-11-27'))
      assert.deepEqual(h, { dsn_deferred: '1', dsn_delivered: '1', notice_delivered: '1' })
      assert.deepEqual(deliveryCounts(h), { delivered: 0, deferred: 0, bounced: 0 }, "not the tenant's own delivery results")
      const { tenants: rows } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T14:00:00Z'))
      assert.deepEqual(rows, [{ tenant: t, attempts: 0, delivered: 0, deferred: 0, bounced: 0, bytes: 0, rcpts: 0, newdomains: 0, dsn_attempts: 2, dsn_delivered: 1 }])
      assert.deepEqual((await recentAttempts(redis, t)).map((a) => `${a.kind} ${a.result} ${a.tx}`).sort(), ['dsn deferred DSN1', 'dsn delivered DSN1', 'notice delivered Q1'], 'in its recent attempts, with their kind')
      assert.equal(await redis.hexists(keys.ledgerDomains(t), 'example.net'), 0, 'a bounce is not a new destination of the tenant')
      assert.equal(resultField('message', 'bounced'), 'bounced')
      assert.equal(resultField('dsn', 'bounced'), 'dsn_bounced')
    })

    it('hourly keys live hourly_days', async () => {
      const source = ip()
      const t = tenant('ttl')
      await recordAttempt(redis, attempt({ tenant: t, ip: source }), { ...O, hourlyDays: 3 })
      const ttl = await redis.ttl(keys.ledgerIpHour(source, '2026-11-27T14'))
      assert.ok(ttl > 3 * 86400 - 60 && ttl <= 3 * 86400, String(ttl))
      await recordAttempt(redis, attempt({ tenant: '', ip: source, at: at('2026-11-27T15:00:00Z') }), { ...O, hourlyDays: 30 })
      const ttl2 = await redis.ttl(keys.ledgerIpHour(source, '2026-11-27T15'))
      assert.ok(ttl2 > 29 * 86400 && ttl2 <= 30 * 86400, String(ttl2))
      const recentTtl = await redis.ttl(keys.ledgerRecent(t))
      assert.ok(recentTtl > O.rawDays * 86400 - 60 && recentTtl <= O.rawDays * 86400, `recent list lives raw_days: ${recentTtl}`)
    })

    it('updates the IP\'s last use', async () => {
      const source = ip()
      assert.equal(await redis.hget(keys.poolLastUse(), source), null)
      await recordAttempt(redis, attempt({ tenant: tenant('lu'), ip: source, at: at('2026-11-27T14:10:00Z') }), O)
      assert.equal(await redis.hget(keys.poolLastUse(), source), String(at('2026-11-27T14:10:00Z')))
      await recordAttempt(redis, attempt({ tenant: '', ip: source, at: at('2026-11-27T14:20:00Z') }), O)
      assert.equal(await redis.hget(keys.poolLastUse(), source), String(at('2026-11-27T14:20:00Z')), 'mail with no tenant too')
    })

    it('counts a tenant\'s first attempt to a domain as a new domain, once', async () => {
      const [t, source] = [tenant('nd'), ip()]
      await recordAttempt(redis, attempt({ tenant: t, ip: source, domain: 'one.example' }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, domain: 'one.example' }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, domain: 'two.example', at: at('2026-11-27T15:10:00Z') }), O)
      const { tenants: rows } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T15:10:00Z'))
      assert.equal(rows[0].attempts, 3)
      assert.equal(rows[0].newdomains, 2)
      assert.equal(await redis.hget(keys.ledgerDomains(t), 'one.example'), String(at('2026-11-27T14:10:00Z')), 'the first time is kept')
    })
  })

  describe('recentAttempts', () => {
    it('returns the attempts newest first, as recorded', async () => {
      const t = tenant('rec')
      const source = ip()
      const base = at('2026-11-27T14:00:00Z')
      const recorded = [3, 1, 4, 2].map((i) => attempt({ tenant: t, ip: source, at: base + i * 60000, tx: `tx${i}`, response: `250 ok ${i}` }))
      for (const a of recorded) await recordAttempt(redis, a, O)
      const recent = await recentAttempts(redis, t)
      assert.deepEqual(recent.map((x) => x.tx), ['tx4', 'tx3', 'tx2', 'tx1'])
      assert.deepEqual(recent[0], recorded[2], 'every field kept')
      assert.deepEqual((await recentAttempts(redis, t, 2)).map((x) => x.tx), ['tx4', 'tx3'], 'limit')
      assert.deepEqual(await recentAttempts(redis, tenant('none')), [])
    })

    it('keeps at most recent_max', async () => {
      const t = tenant('max')
      const base = at('2026-11-27T14:00:00Z')
      for (let i = 0; i < 9; i++) await recordAttempt(redis, attempt({ tenant: t, ip: ip(), at: base + i * 1000, tx: `n${i}` }), O)
      assert.equal(await redis.zcard(keys.ledgerRecent(t)), O.recentMax)
      assert.deepEqual((await recentAttempts(redis, t, 50)).map((x) => x.tx), ['n8', 'n7', 'n6', 'n5', 'n4'])
      // a larger bound keeps more
      const u = tenant('max2')
      const source = ip()
      for (let i = 0; i < 9; i++) await recordAttempt(redis, attempt({ tenant: u, ip: source, at: base + i * 1000, tx: `n${i}` }), DEFAULT_LEDGER)
      assert.equal((await recentAttempts(redis, u, 50)).length, 9)
    })

    it('drops attempts older than raw_days (relative to the newest attempt recorded)', async () => {
      const t = tenant('raw')
      const source = ip()
      const now = at('2026-11-27T14:00:00Z')
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: now - 30 * DAY, tx: 'ancient' }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: now - 7 * DAY - 1, tx: 'old' }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: now - 7 * DAY + 1000, tx: 'edge' }), O)
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: now - 6 * DAY, tx: 'week' }), O)
      // until a newer attempt comes, nothing within raw_days of the newest is dropped
      assert.deepEqual((await recentAttempts(redis, t)).map((x) => x.tx), ['week', 'edge', 'old'])
      await recordAttempt(redis, attempt({ tenant: t, ip: source, at: now, tx: 'now' }), O)
      assert.deepEqual((await recentAttempts(redis, t)).map((x) => x.tx), ['now', 'week', 'edge'])
    })
  })

  it('investigations rank tenants by share with their rates and signals, and are kept', async () => {
    const [big, small, source] = [tenant('big'), tenant('small'), ip()]
    for (let i = 0; i < 6; i++) await recordAttempt(redis, attempt({ tenant: big, ip: source, size: 3000, domain: `d${i}.example`, result: i < 3 ? 'bounced' : 'delivered' }), O)
    for (let i = 0; i < 4; i++) await recordAttempt(redis, attempt({ tenant: small, ip: source, size: 500, domain: 'same.example', result: i === 0 ? 'deferred' : 'delivered' }), O)
    const inv = await investigate(redis, source, new Date('2026-11-27T13:00:00Z'), new Date('2026-11-27T15:00:00Z'), {
      signals: async (_r, t) => ({ trap_hits: t === big ? 2 : 0, suppressed: 1 }),
      now: new Date('2026-11-27T15:00:00Z'),
    })
    assert.deepEqual(inv.tenants.map((t) => t.tenant), [big, small])
    const [b, s] = inv.tenants
    assert.equal(b.share, 90)
    assert.equal(s.share, 10)
    assert.equal(b.bounce_rate, 50)
    assert.equal(s.refusal_rate, 25)
    assert.equal(b.new_domain_share, 100, 'six first-ever domains in six attempts')
    assert.equal(s.new_domain_share, 25, 'one new domain, then known')
    assert.deepEqual([b.trap_hits, b.suppressed], [2, 1])
    assert.equal(inv.total_bytes, 20000)
    await saveInvestigation(redis, inv)
    assert.deepEqual(await getInvestigation(redis, inv.id), inv)
    assert.ok((await listInvestigations(redis)).some((i) => i.id === inv.id))
    assert.equal(await getInvestigation(redis, 'nope'), null)
    await redis.multi().del(keys.investigation(inv.id)).zrem(keys.investigations(), inv.id).exec()
  })
})
