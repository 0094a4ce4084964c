// lib/investigation.ts over the delivery ledger (lib/ledger.ts recordAttempt), against a real Redis: ranking by
// bytes, shares, the per-tenant rates as documented, the window's (hourly) edges, signals, and persistence.
import { strict as assert } from 'node:assert'
import { getInvestigation, investigate, listInvestigations, saveInvestigation, type TenantSignals } from '../lib/investigation'
import { DEFAULT_LEDGER, recordAttempt, type DeliveryResult } from '../lib/ledger'
import type { RedisClient } from '../lib/redis'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

describe('investigation (real Redis, ledger written by recordAttempt)', () => {
  let r: TestRedis
  let redis: RedisClient
  // an IP of its own for this run
  const ip = `198.19.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`
  const big = uniqueName('big')
  const mid = uniqueName('mid')
  const small = uniqueName('small')
  const H = 3600000
  // the window: 2026-01-15 10:00 to 12:30 UTC; the ledger counts whole hours, 10:00-12:59:59
  const T10 = Date.UTC(2026, 0, 15, 10, 0, 0)
  const since = new Date(T10)
  const until = new Date(T10 + 2.5 * H)

  let n = 0
  const attempt = (tenant: string, at: number, domain: string, result: DeliveryResult, size: number, rcpts = 1) =>
    recordAttempt(redis, { at, tenant, tx: `tx${n++}`, ip, domain, mx: `mx.${domain}`, result, code: result === 'delivered' ? '250' : result === 'deferred' ? '451' : '550', response: '', size, rcpts }, DEFAULT_LEDGER)

  before(async () => {
    r = await testRedis()
    redis = r.client
    // outside the window, before: small's first mail to c.example (so it is not new inside the window), and
    // a lot of traffic that must not count
    await attempt(small, T10 - 1, 'c.example', 'delivered', 900000)
    await attempt(big, T10 - 2 * H, 'before.example', 'bounced', 500000)

    // big: 10 attempts x 10,000 bytes; 5 domains, each twice (5 first-ever); 7 delivered, 2 deferred, 1 bounced
    const bigResults: DeliveryResult[] = ['delivered', 'delivered', 'deferred', 'delivered', 'bounced', 'delivered', 'deferred', 'delivered', 'delivered', 'delivered']
    for (let i = 0; i < 10; i++) await attempt(big, T10 + i * 10 * 60000, `a${i % 5}.example`, bigResults[i], 10000)
    // mid: 4 attempts, 20,000 bytes (one with 2 recipients); 2 bounced; shared.example (x3, new once) and
    // a0.example, new for mid although big mailed it first
    await attempt(mid, T10 + 5 * 60000, 'shared.example', 'bounced', 5000)
    await attempt(mid, T10 + 65 * 60000, 'shared.example', 'delivered', 2500, 2)
    await attempt(mid, T10 + 70 * 60000, 'a0.example', 'bounced', 5000)
    await attempt(mid, T10 + 2 * H + 59 * 60000 + 59999, 'shared.example', 'delivered', 5000) // 12:59:59.999: in the last hour
    // small: 5 attempts x 800 bytes to c.example (not new), 3 deferred
    for (let i = 0; i < 5; i++) await attempt(small, T10 + H + i * 60000, 'c.example', i < 3 ? 'deferred' : 'delivered', 800)
    // no tenant (a DSN): 1,000 bytes
    await attempt('', T10 + 30 * 60000, 'bounce.example', 'delivered', 1000)

    // outside the window, after: from 13:00
    await attempt(small, T10 + 3 * H, 'late.example', 'bounced', 700000)
  })
  after(async () => {
    await r?.close()
  })

  it('ranks the tenants by bytes, with shares that add up to 100', async () => {
    const inv = await investigate(redis, ip, since, until, { signals: async () => ({ trap_hits: null, suppressed: null }) })
    assert.deepEqual(inv.tenants.map((t) => t.tenant), [big, mid, small, '-'])
    assert.deepEqual(inv.tenants.map((t) => t.bytes), [100000, 20000, 4000, 1000])
    assert.equal(inv.total_bytes, 125000)
    assert.deepEqual(inv.tenants.map((t) => t.share), [80, 16, 3.2, 0.8])
    const sum = inv.tenants.reduce((s, t) => s + t.share, 0)
    assert.ok(Math.abs(sum - 100) < 0.5, `shares add up to ${sum}`)
    assert.equal(inv.ip, ip)
    assert.equal(inv.since, since.toISOString())
    assert.equal(inv.until, until.toISOString())
    assert.equal(inv.trigger, 'operator')
  })

  it('computes attempts, results and the bounce, refusal and new-domain rates per tenant', async () => {
    const inv = await investigate(redis, ip, since, until, { signals: async () => ({ trap_hits: null, suppressed: null }) })
    const by = Object.fromEntries(inv.tenants.map((t) => [t.tenant, t]))
    const pick = (t: (typeof inv.tenants)[number]) => ({
      attempts: t.attempts, delivered: t.delivered, deferred: t.deferred, bounced: t.bounced,
      bounce_rate: t.bounce_rate, refusal_rate: t.refusal_rate, new_domain_share: t.new_domain_share,
    })
    assert.deepEqual(pick(by[big]), { attempts: 10, delivered: 7, deferred: 2, bounced: 1, bounce_rate: 10, refusal_rate: 20, new_domain_share: 50 })
    // first-ever domains are per tenant: a0.example is new for mid although big mailed it first
    assert.deepEqual(pick(by[mid]), { attempts: 4, delivered: 2, deferred: 0, bounced: 2, bounce_rate: 50, refusal_rate: 0, new_domain_share: 50 })
    // small mailed c.example before the window: none of its attempts in the window is to a new domain
    assert.deepEqual(pick(by[small]), { attempts: 5, delivered: 2, deferred: 3, bounced: 0, bounce_rate: 0, refusal_rate: 60, new_domain_share: 0 })
    assert.equal(by['-'].new_domain_share, 0, 'mail without a tenant has no domain history')
  })

  it('respects the window at hour granularity: the hours containing since and until, nothing outside', async () => {
    // 10:00-12:59:59 only: the 900,000 bytes at 09:59:59.999, the 500,000 at 08:00 and the 700,000 at 13:00 are out
    const inv = await investigate(redis, ip, since, until, { signals: async () => ({ trap_hits: null, suppressed: null }) })
    assert.equal(inv.total_bytes, 125000)
    // a window of the 11:xx hour only
    const one = await investigate(redis, ip, new Date(T10 + H + 30 * 60000), new Date(T10 + H + 40 * 60000), { signals: async () => ({ trap_hits: null, suppressed: null }) })
    assert.deepEqual(one.tenants.map((t) => [t.tenant, t.attempts, t.bytes]), [[big, 4, 40000], [mid, 2, 10000], [small, 5, 4000]])
    // widened to 09:xx: small's 900,000 bytes now rank it first
    const wide = await investigate(redis, ip, new Date(T10 - 1), until, { signals: async () => ({ trap_hits: null, suppressed: null }) })
    assert.equal(wide.tenants[0].tenant, small)
    assert.equal(wide.tenants[0].bytes, 904000)
    assert.equal(wide.tenants[0].new_domain_share, 16.7, 'its first c.example attempt: 1 of 6')
    // until exactly 13:00: the hour containing it (13:xx) is in, with small's 700,000 bytes at 13:00
    const edge = await investigate(redis, ip, since, new Date(T10 + 3 * H), { signals: async () => ({ trap_hits: null, suppressed: null }) })
    assert.equal(edge.total_bytes, 825000)
    assert.equal(edge.tenants[0].tenant, small)
    // a window with no traffic
    const none = await investigate(redis, ip, new Date(T10 + 5 * H), new Date(T10 + 6 * H))
    assert.deepEqual(none.tenants, [])
    assert.equal(none.total_bytes, 0)
    // another IP sees nothing of this one
    assert.deepEqual((await investigate(redis, `${ip.split('.').slice(0, 3).join('.')}.255`, since, until)).tenants, [])
  })

  it('a signals callback fills trap_hits and suppressed for tenants (not for mail without one)', async () => {
    const asked: string[] = []
    const signals: TenantSignals = async (rc, tenant) => {
      assert.equal(rc, redis)
      asked.push(tenant)
      return tenant === big ? { trap_hits: 3, suppressed: 7 } : tenant === mid ? { trap_hits: 0, suppressed: null } : { trap_hits: null, suppressed: 1 }
    }
    const inv = await investigate(redis, ip, since, until, { signals })
    assert.deepEqual(asked.sort(), [big, mid, small].sort())
    const by = Object.fromEntries(inv.tenants.map((t) => [t.tenant, t]))
    assert.deepEqual([by[big].trap_hits, by[big].suppressed], [3, 7])
    assert.deepEqual([by[mid].trap_hits, by[mid].suppressed], [0, null])
    assert.deepEqual([by[small].trap_hits, by[small].suppressed], [null, 1])
    assert.deepEqual([by['-'].trap_hits, by['-'].suppressed], [null, null])
  })

  it('without a callback, the trap plugin\'s counters are used (zero for tenants without hits)', async () => {
    const inv = await investigate(redis, ip, since, until)
    const t = inv.tenants.find((x) => x.tenant === big)!
    assert.equal(t.trap_hits, 0)
    assert.equal(t.suppressed, 0)
  })

  it('save, list and get round-trip', async () => {
    const now = new Date()
    const inv = await investigate(redis, ip, since, until, {
      trigger: 'listing', evidence: [{ zone: 'zen.test', meaning: 'SBL' }], now, signals: async () => ({ trap_hits: 1, suppressed: 2 }),
    })
    assert.equal(inv.opened_at, now.toISOString())
    assert.equal(inv.id, `${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}-${ip.replace(/\./g, '_')}`)
    assert.equal(await getInvestigation(redis, inv.id), null, 'not saved yet')
    await saveInvestigation(redis, inv)
    assert.deepEqual(await getInvestigation(redis, inv.id), inv)
    const listed = (await listInvestigations(redis, 10000)).find((i) => i.id === inv.id)
    assert.deepEqual(listed, inv)

    // newest first
    const later = await investigate(redis, ip, since, until, { now: new Date(now.getTime() + 5000), signals: async () => ({ trap_hits: null, suppressed: null }) })
    await saveInvestigation(redis, later)
    const ids = (await listInvestigations(redis, 10000)).map((i) => i.id)
    assert.ok(ids.indexOf(later.id) >= 0 && ids.indexOf(later.id) < ids.indexOf(inv.id), 'the later one lists first')
    assert.equal(await getInvestigation(redis, 'no-such-investigation'), null)
  })
})
