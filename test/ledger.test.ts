// lib/ledger.ts and lib/investigation.ts against a real Redis: hourly aggregates per IP, the tenant's day and recent
// attempts, and the ranking an investigation builds from them.
import { strict as assert } from 'node:assert'
import { investigate, listInvestigations, getInvestigation, saveInvestigation } from '../lib/investigation'
import { keys } from '../lib/keys'
import { hourOf, hoursBetween, ipTraffic, recentAttempts, recordAttempt, type Attempt, type LedgerOptions } from '../lib/ledger'
import type { RedisClient } from '../lib/redis'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const O: LedgerOptions = { timeZone: 'Europe/Rome', hourlyDays: 30, rawDays: 7, recentMax: 5 }

describe('ledger and investigations (real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient
  before(async () => {
    r = await testRedis()
    redis = r.client
  })
  after(async () => {
    await r?.close()
  })

  const ip = () => `198.19.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`
  const at = (iso: string) => Date.parse(iso)
  const attempt = (a: Partial<Attempt>): Attempt => ({
    at: at('2026-11-27T14:10:00Z'), tenant: 't', tx: 'X.1.1', ip: '198.19.0.1', domain: 'example.net', mx: 'mx.example.net',
    result: 'delivered', code: '250', response: '250 ok', size: 1000, rcpts: 1, ...a,
  })

  it('names UTC hours and the hours of a window, ends included', () => {
    assert.equal(hourOf(at('2026-11-27T14:59:59Z')), '2026-11-27T14')
    assert.deepEqual(hoursBetween(new Date('2026-11-27T14:10:00Z'), new Date('2026-11-27T16:00:00Z')), ['2026-11-27T14', '2026-11-27T15', '2026-11-27T16'])
    assert.deepEqual(hoursBetween(new Date('2026-11-27T14:10:00Z'), new Date('2026-11-27T14:20:00Z')), ['2026-11-27T14'])
  })

  it('aggregates per IP and hour by tenant, with the tenant day and recent attempts', async () => {
    const [a, b, source] = [uniqueName('a'), uniqueName('b'), ip()]
    await recordAttempt(redis, attempt({ tenant: a, ip: source, size: 5000, rcpts: 2 }), O)
    await recordAttempt(redis, attempt({ tenant: a, ip: source, result: 'bounced', domain: 'new.example', at: at('2026-11-27T15:30:00Z') }), O)
    await recordAttempt(redis, attempt({ tenant: b, ip: source, result: 'deferred' }), O)
    await recordAttempt(redis, attempt({ tenant: '', ip: source }), O) // a DSN: no tenant
    await recordAttempt(redis, attempt({ tenant: a, ip: source, at: at('2026-11-27T20:00:00Z') }), O) // outside the window
    const { tenants } = await ipTraffic(redis, source, new Date('2026-11-27T14:00:00Z'), new Date('2026-11-27T16:00:00Z'))
    assert.deepEqual(tenants.map((t) => t.tenant), [a, b, '-'], 'ranked by bytes')
    assert.deepEqual(tenants[0], { tenant: a, attempts: 2, delivered: 1, deferred: 0, bounced: 1, bytes: 11000, rcpts: 3, newdomains: 2 })
    assert.equal(tenants[1].deferred, 1)
    assert.deepEqual(await redis.hgetall(keys.usageDay(a, '2026-11-27')), { delivered: '2', bounced: '1' })
    const ttl = await redis.ttl(keys.ledgerIpHour(source, '2026-11-27T14'))
    assert.ok(ttl > 29 * 86400 && ttl <= 30 * 86400)
    assert.equal((await recentAttempts(redis, a))[0].at, at('2026-11-27T20:00:00Z'), 'newest first')
    assert.ok(Number(await redis.hget(keys.poolLastUse(), source)) > 0)
  })

  it('keeps a bounded recent list and drops attempts older than raw_days', async () => {
    const t = uniqueName('r')
    const now = Date.now()
    await recordAttempt(redis, attempt({ tenant: t, at: now - 8 * 86400000, tx: 'old' }), O)
    for (let i = 0; i < 7; i++) await recordAttempt(redis, attempt({ tenant: t, at: now - i * 1000, tx: `n${i}` }), O)
    const recent = await recentAttempts(redis, t, 50)
    assert.equal(recent.length, O.recentMax)
    assert.deepEqual(recent.map((x) => x.tx), ['n0', 'n1', 'n2', 'n3', 'n4'])
  })

  it('investigations rank tenants by share with their rates and signals, and are kept', async () => {
    const [big, small, source] = [uniqueName('big'), uniqueName('small'), ip()]
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
  })
})
