// lib/quota.ts and its Lua scripts against a real Redis: reserve, commit once, release, expiry, thresholds,
// top-ups, package changes, the month boundary in the service time zone, usage figures and concurrency.
import { strict as assert } from 'node:assert'
import { Cluster } from 'ioredis'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import { setPackage } from '../lib/packages'
import { monthEnd } from '../lib/period'
import {
  commit, DEFAULT_QUOTA, messageCost, quotaState, release, reserve, topUp, usage,
  type QuotaOptions, type Reservation, type ReserveResult,
} from '../lib/quota'
import { connectTool, type RedisClient } from '../lib/redis'
import { loadSettings } from '../lib/settings'
import { changePackage, createTenant } from '../lib/tenants'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const ROME = 'Europe/Rome'
const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example' })
const O: QuotaOptions = { ...DEFAULT_QUOTA, timeZone: ROME, reservationMs: 600_000, retentionDays: 400, thresholds: [80, 90, 100] }
const at = (iso: string) => new Date(iso)
/** Mid-November 2026 in Rome, far from any boundary. */
const NOV = at('2026-11-15T12:00:00Z')

let seq = 0
const txId = () => `tx-${process.pid}-${++seq}-${Math.floor(Math.random() * 1e9).toString(36)}`

function reserved(r: ReserveResult): Reservation {
  assert.ok(r.ok, `expected a reservation, got ${JSON.stringify(r)}`)
  return r.reservation
}

describe('quota (real Redis)', function () {
  this.timeout(30000)
  let t: TestRedis
  let redis: RedisClient

  before(async () => {
    t = await testRedis()
    redis = t.client
  })
  after(async () => {
    await t?.close()
  })

  /** A fresh package with this allowance and a fresh tenant on it, made through lib as the CLI does. */
  async function tenantWith(trafficBytes: number, pkg = uniqueName('pkg')): Promise<{ slug: string; pkg: string }> {
    await setPackage(redis, pkg, trafficBytes)
    const slug = uniqueName('t')
    await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
    return { slug, pkg }
  }

  async function reserveAndCommit(slug: string, size: number, recipients: number, now: Date, o = O) {
    const r = reserved(await reserve(redis, o, slug, txId(), size, recipients, now))
    return { r, c: await commit(redis, o, r, now) }
  }

  describe('messageCost', () => {
    it('is size times recipients', () => {
      assert.equal(messageCost(1000, 3), 3000)
      assert.equal(messageCost(1234, 1), 1234)
      assert.equal(messageCost(5000, 0), 0)
    })
  })

  describe('reserve', () => {
    it('holds size x recipients when it fits, and counts pending reservations as used', async () => {
      const { slug } = await tenantWith(10_000)
      const id = txId()
      const a = await reserve(redis, O, slug, id, 1000, 3, NOV)
      assert.ok(a.ok)
      assert.deepEqual(a.reservation, { tenant: slug, id, bytes: 3000, recipients: 3, month: '2026-11', day: '2026-11-15' })
      assert.equal(a.used, 3000)
      assert.equal(a.limit, 10_000)
      const b = await reserve(redis, O, slug, txId(), 2000, 2, NOV)
      assert.ok(b.ok)
      assert.equal(b.used, 7000, 'the first, still pending, reservation counts')
      const s = await quotaState(redis, O, slug, NOV)
      assert.equal(s.used, 0, 'nothing committed yet')
      assert.equal(s.pending, 7000)
      assert.equal(s.limit, 10_000)
    })

    it('refuses what does not fit: reason over, with committed and in-flight bytes, limit, needed and the reset', async () => {
      const { slug } = await tenantWith(10_000)
      reserved(await reserve(redis, O, slug, txId(), 4000, 1, NOV))
      reserved(await reserve(redis, O, slug, txId(), 2000, 2, NOV))
      const r = await reserve(redis, O, slug, txId(), 1000, 4, NOV)
      // only messages in flight hold the room: they may yet be released, so the refusal is not permanent
      assert.deepEqual(r, { ok: false, reason: 'over', used: 8000, committed: 0, pending: 8000, limit: 10_000, needed: 4000, permanent: false, resetsAt: monthEnd(NOV, ROME) })
      assert.equal((r as { resetsAt: Date }).resetsAt.toISOString(), '2026-11-30T23:00:00.000Z')
      // the refusal held nothing
      assert.equal((await quotaState(redis, O, slug, NOV)).pending, 8000)
      // a smaller message still fits
      assert.equal((await reserve(redis, O, slug, txId(), 2000, 1, NOV)).ok, true)
    })

    it('allows exactly filling the allowance (the limit is inclusive), not one byte more', async () => {
      const { slug } = await tenantWith(10_000)
      const full = await reserve(redis, O, slug, txId(), 2500, 4, NOV)
      assert.ok(full.ok)
      assert.equal(full.used, 10_000)
      const one = await reserve(redis, O, slug, txId(), 1, 1, NOV)
      assert.equal(one.ok, false)
      assert.equal((one as { reason: string }).reason, 'over')
      assert.equal((one as { used: number }).used, 10_000)
      assert.equal((one as { needed: number }).needed, 1)

      // the same with committed traffic: 9,999 committed, 1 fits, then nothing
      const { slug: s2 } = await tenantWith(10_000)
      await reserveAndCommit(s2, 9999, 1, NOV)
      assert.equal((await reserve(redis, O, s2, txId(), 2, 1, NOV)).ok, false)
      assert.equal((await reserve(redis, O, s2, txId(), 1, 1, NOV)).ok, true)
      assert.equal((await reserve(redis, O, s2, txId(), 1, 1, NOV)).ok, false)
    })

    it('a retried reserve of the same id holds nothing more', async () => {
      const { slug } = await tenantWith(5000)
      const id = txId()
      reserved(await reserve(redis, O, slug, id, 3000, 1, NOV))
      // held twice it would not fit: a retry is recognised as the same transaction
      const again = await reserve(redis, O, slug, id, 3000, 1, NOV)
      assert.equal(again.ok, true, JSON.stringify(again))
      assert.equal((await quotaState(redis, O, slug, NOV)).pending, 3000)
      assert.equal((await reserve(redis, O, slug, txId(), 2000, 1, NOV)).ok, true)
    })

    it('answers unknown-tenant for a tenant that does not exist', async () => {
      const r = await reserve(redis, O, uniqueName('nobody'), txId(), 100, 1, NOV)
      assert.deepEqual(r, { ok: false, reason: 'unknown-tenant' })
    })
  })

  describe('commit', () => {
    it('counts a reservation once, into the month and the day', async () => {
      const { slug } = await tenantWith(100_000)
      const r = reserved(await reserve(redis, O, slug, txId(), 1500, 3, NOV))
      const c1 = await commit(redis, O, r, NOV)
      const { server, ...counted } = c1
      assert.deepEqual(counted, { counted: true, used: 4500, limit: 100_000, crossed: [] })
      // the server that answered, for a replica's confirmation (lib/quota.ts replicaConfirmer); none on a Cluster
      if (!(redis instanceof Cluster)) assert.match(server ?? '', /:\d+$/)
      const c2 = await commit(redis, O, r, NOV)
      assert.equal(c2.counted, false, 'a second commit of the same reservation')
      assert.deepEqual(await redis.hgetall(keys.usageMonth(slug, '2026-11')), { bytes: '4500', messages: '1' })
      assert.deepEqual(await redis.hgetall(keys.usageDay(slug, '2026-11-15')), { bytes: '4500', messages: '1', recipients: '3' })
      const s = await quotaState(redis, O, slug, NOV)
      assert.equal(s.used, 4500)
      assert.equal(s.pending, 0, 'the commit ended the reservation')
      assert.equal(s.messages, 1)
      // a retried reserve of a committed id holds nothing, and its commit counts nothing
      const again = reserved(await reserve(redis, O, slug, r.id, 1500, 3, NOV))
      assert.equal((await quotaState(redis, O, slug, NOV)).pending, 0)
      assert.equal((await commit(redis, O, again, NOV)).counted, false)

      // a second message adds up, in the month and in the day
      const c3 = (await reserveAndCommit(slug, 500, 2, NOV)).c
      assert.deepEqual({ ...c3, server: undefined }, { counted: true, used: 5500, limit: 100_000, crossed: [], server: undefined })
      assert.deepEqual(await redis.hgetall(keys.usageMonth(slug, '2026-11')), { bytes: '5500', messages: '2' })
      assert.deepEqual(await redis.hgetall(keys.usageDay(slug, '2026-11-15')), { bytes: '5500', messages: '2', recipients: '5' })
    })

    it('counts in the day of the service time zone', async () => {
      const { slug } = await tenantWith(100_000)
      // 23:30Z on the 15th is 00:30 on the 16th in Rome
      const late = at('2026-11-15T23:30:00Z')
      const { r } = await reserveAndCommit(slug, 700, 1, late)
      assert.equal(r.day, '2026-11-16')
      assert.deepEqual(await redis.hgetall(keys.usageDay(slug, '2026-11-16')), { bytes: '700', messages: '1', recipients: '1' })
      assert.equal(await redis.exists(keys.usageDay(slug, '2026-11-15')), 0)
    })

    it('gives the counters a TTL of the rest of the month plus the retention', async () => {
      const o: QuotaOptions = { ...O, retentionDays: 3 }
      const { slug } = await tenantWith(100_000)
      const toMonthEnd = (monthEnd(NOV, ROME).getTime() - NOV.getTime()) / 1000
      const r = reserved(await reserve(redis, o, slug, txId(), 100, 1, NOV))
      // the reservations live about twice the reservation lifetime
      const resTtl = await redis.pttl(keys.reservations(slug, '2026-11'))
      assert.ok(resTtl > 0 && resTtl <= o.reservationMs * 2, `reservations pttl ${resTtl}`)
      await commit(redis, o, r, NOV)
      for (const k of [keys.usageMonth(slug, '2026-11'), keys.usageDay(slug, '2026-11-15')]) {
        const ttl = await redis.ttl(k)
        assert.ok(ttl > toMonthEnd, `${k}: ttl ${ttl} > ${toMonthEnd} s to month end`)
        assert.ok(ttl <= toMonthEnd + 3 * 86400, `${k}: ttl ${ttl} <= ${toMonthEnd} + 3 days`)
        assert.ok(ttl >= toMonthEnd + 3 * 86400 - 5, `${k}: ttl ${ttl} is the whole retention`)
      }
      const doneTtl = await redis.ttl(keys.committed(slug, r.id))
      // the committed marker outlives the longest stay of a message in the queue (a re-delivery is not counted again)
      assert.ok(doneTtl > 0 && doneTtl <= o.committedMs / 1000 && doneTtl >= o.committedMs / 1000 - 5, `done marker ttl ${doneTtl}`)
      // a later commit in the month does not push the month's expiry out
      const later = at('2026-11-25T12:00:00Z')
      await reserveAndCommit(slug, 100, 1, later, o)
      const ttl = await redis.ttl(keys.usageMonth(slug, '2026-11'))
      assert.ok(ttl <= toMonthEnd + 3 * 86400 && ttl > toMonthEnd, `month ttl ${ttl} after a later commit`)
    })
  })

  describe('release and expiry', () => {
    it('release frees the reservation: a later reserve fits again', async () => {
      const { slug } = await tenantWith(10_000)
      const r = reserved(await reserve(redis, O, slug, txId(), 5000, 2, NOV))
      assert.equal((await reserve(redis, O, slug, txId(), 1, 1, NOV)).ok, false)
      await release(redis, r)
      assert.equal((await quotaState(redis, O, slug, NOV)).pending, 0)
      await release(redis, r) // twice is harmless
      const b = await reserve(redis, O, slug, txId(), 10_000, 1, NOV)
      assert.ok(b.ok)
      assert.equal(b.used, 10_000)
      // a released reservation counts nothing
      const s = await quotaState(redis, O, slug, NOV)
      assert.equal(s.used, 0)
      assert.equal(s.messages, 0)
    })

    it('an expired reservation is reclaimed by the next reserve', async () => {
      const o: QuotaOptions = { ...O, reservationMs: 60_000 }
      const { slug } = await tenantWith(10_000)
      const t0 = NOV.getTime()
      reserved(await reserve(redis, o, slug, txId(), 10_000, 1, new Date(t0)))
      // still held just before its deadline
      const before = await reserve(redis, o, slug, txId(), 1, 1, new Date(t0 + 59_999))
      assert.equal(before.ok, false)
      assert.equal((before as { used: number }).used, 10_000)
      assert.equal((await quotaState(redis, o, slug, new Date(t0 + 59_999))).pending, 10_000)
      // from its deadline on it holds nothing
      assert.equal((await quotaState(redis, o, slug, new Date(t0 + 60_001))).pending, 0)
      const after = await reserve(redis, o, slug, txId(), 10_000, 1, new Date(t0 + 60_001))
      assert.ok(after.ok, JSON.stringify(after))
      assert.equal(after.used, 10_000)
      assert.deepEqual(
        (await redis.zrange(keys.reservations(slug, '2026-11'), '0', '-1')).map((m) => m.split('|')[1]),
        ['10000'],
        'only the new reservation is left',
      )
    })
  })

  describe('warning thresholds', () => {
    it('reports each of 80, 90, 100 % once a month, when a commit crosses it', async () => {
      const { slug } = await tenantWith(1000)
      const c = async (bytes: number, now = NOV) => (await reserveAndCommit(slug, bytes, 1, now)).c.crossed
      assert.deepEqual(await c(500), [])
      assert.deepEqual(await c(299), [], '79.9 %')
      assert.deepEqual(await c(1), [80], 'exactly 80 % crosses 80')
      assert.deepEqual(await c(50), [], '85 %: nothing new')
      assert.deepEqual(await c(60), [90], '91 %')
      assert.deepEqual(await c(90), [100], '100 %')
      // a top-up makes room; going past 80 and 90 % of the new limit again reports nothing new this month
      await topUp(redis, O, slug, 1000, NOV)
      assert.deepEqual(await c(900), [], '95 % of the topped-up limit')
      // next month starts over, and one commit may cross several thresholds
      const dec = at('2026-12-10T12:00:00Z')
      assert.deepEqual(await c(950, dec), [80, 90])
      assert.deepEqual(await c(50, dec), [100])
      assert.deepEqual(await c(0, dec), [])
    })
  })

  describe('topUp', () => {
    it('raises the limit of the current month only', async () => {
      const { slug } = await tenantWith(1000)
      assert.equal(await topUp(redis, O, slug, 500, NOV), 500)
      assert.equal(await topUp(redis, O, slug, 250, NOV), 750, 'top-ups add up')
      assert.equal((await quotaState(redis, O, slug, NOV)).limit, 1750)
      const fill = await reserve(redis, O, slug, txId(), 1750, 1, NOV)
      assert.ok(fill.ok)
      assert.equal(fill.limit, 1750)
      assert.equal((await reserve(redis, O, slug, txId(), 1, 1, NOV)).ok, false)
      const u = await usage(redis, O, slug, NOV)
      assert.equal(u.limit_bytes, 1750)
      assert.equal(u.package_bytes, 1000)
      assert.equal(u.topup_bytes, 750)
      // the top-up's month key expires like the counters
      const ttl = await redis.ttl(keys.usageMonth(slug, '2026-11'))
      assert.ok(ttl > (monthEnd(NOV, ROME).getTime() - NOV.getTime()) / 1000, `ttl ${ttl}`)

      const dec = at('2026-12-02T12:00:00Z')
      assert.equal((await quotaState(redis, O, slug, dec)).limit, 1000, 'December is back to the package allowance')
      assert.equal((await reserve(redis, O, slug, txId(), 1001, 1, dec)).ok, false)
      assert.equal((await reserve(redis, O, slug, txId(), 1000, 1, dec)).ok, true)
      assert.equal((await usage(redis, O, slug, dec)).topup_bytes, 0)
    })

    it('refuses a top-up that is not a positive whole number of bytes, and an unknown tenant', async () => {
      const { slug } = await tenantWith(1000)
      for (const bad of [0, -1, -500, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(topUp(redis, O, slug, bad, NOV), InputError, String(bad))
      }
      assert.equal((await quotaState(redis, O, slug, NOV)).limit, 1000, 'nothing was added')
      assert.equal(await redis.hget(keys.usageMonth(slug, '2026-11'), 'topup'), null)
      await assert.rejects(topUp(redis, O, uniqueName('nobody'), 100, NOV), NotFoundError)
    })
  })

  describe('package changes', () => {
    it('changePackage applies to the current month at once', async () => {
      const { slug } = await tenantWith(1000)
      const small = uniqueName('pkg')
      const big = uniqueName('pkg')
      await setPackage(redis, small, 500)
      await setPackage(redis, big, 5000)
      await reserveAndCommit(slug, 800, 1, NOV)
      await changePackage(redis, slug, small)
      const over = await reserve(redis, O, slug, txId(), 1, 1, NOV)
      assert.deepEqual(over, { ok: false, reason: 'over', used: 800, committed: 800, pending: 0, limit: 500, needed: 1, permanent: true, resetsAt: monthEnd(NOV, ROME) })
      const u = await usage(redis, O, slug, NOV)
      assert.equal(u.package, small)
      assert.equal(u.remaining_bytes, 0, 'never negative')
      assert.equal(u.percent, 160)
      await changePackage(redis, slug, big)
      const fits = await reserve(redis, O, slug, txId(), 4200, 1, NOV)
      assert.ok(fits.ok)
      assert.equal(fits.limit, 5000)
      assert.equal(fits.used, 5000)
    })

    it('setPackage changes the limit of every tenant on the package at once, and of no other', async () => {
      const { slug: a, pkg } = await tenantWith(1000)
      const { slug: b } = await tenantWith(1000, pkg)
      const { slug: other } = await tenantWith(1000)
      await setPackage(redis, pkg, 3000)
      assert.equal((await quotaState(redis, O, a, NOV)).limit, 3000)
      assert.equal((await quotaState(redis, O, b, NOV)).limit, 3000)
      assert.equal((await quotaState(redis, O, other, NOV)).limit, 1000)
      assert.equal((await reserve(redis, O, a, txId(), 3000, 1, NOV)).ok, true)
      await setPackage(redis, pkg, 200)
      const r = await reserve(redis, O, b, txId(), 201, 1, NOV)
      assert.equal(r.ok, false)
      assert.equal((r as { limit: number }).limit, 200)
      assert.equal((await reserve(redis, O, b, txId(), 200, 1, NOV)).ok, true)
    })
  })

  describe('month boundary in the service time zone', () => {
    it('2026-11-30T22:59:59Z counts in November (Rome); at 23:00:00Z a fresh December allowance applies', async () => {
      const { slug } = await tenantWith(10_000)
      const last = at('2026-11-30T22:59:59Z')
      const first = at('2026-11-30T23:00:00Z')
      const { r, c } = await reserveAndCommit(slug, 5000, 2, last)
      assert.equal(r.month, '2026-11')
      assert.equal(r.day, '2026-11-30')
      assert.equal(c.used, 10_000)
      const over = await reserve(redis, O, slug, txId(), 1, 1, last)
      assert.equal(over.ok, false)
      assert.equal((over as { resetsAt: Date }).resetsAt.toISOString(), first.toISOString())
      assert.equal((await quotaState(redis, O, slug, last)).used, 10_000)

      const s = await quotaState(redis, O, slug, first)
      assert.equal(s.month, '2026-12')
      assert.equal(s.used, 0)
      assert.equal(s.resetsAt.toISOString(), '2026-12-31T23:00:00.000Z')
      const dec = await reserve(redis, O, slug, txId(), 10_000, 1, first)
      assert.ok(dec.ok, JSON.stringify(dec))
      assert.equal(dec.reservation.month, '2026-12')
      assert.equal(dec.reservation.day, '2026-12-01')
      await commit(redis, O, dec.reservation, first)
      assert.equal((await redis.hgetall(keys.usageMonth(slug, '2026-11'))).bytes, '10000')
      assert.equal((await redis.hgetall(keys.usageMonth(slug, '2026-12'))).bytes, '10000')
      assert.equal((await usage(redis, O, slug, last)).used_bytes, 10_000)
      assert.equal((await usage(redis, O, slug, first)).month, '2026-12')
    })

    it('a message reserved in the last second of a month is counted in that month even if committed after it', async () => {
      const { slug } = await tenantWith(10_000)
      const r = reserved(await reserve(redis, O, slug, txId(), 4000, 1, at('2026-11-30T22:59:59Z')))
      const c = await commit(redis, O, r, at('2026-11-30T23:00:01Z'))
      assert.equal(c.counted, true)
      assert.equal((await quotaState(redis, O, slug, at('2026-11-30T22:00:00Z'))).used, 4000)
      assert.equal((await quotaState(redis, O, slug, at('2026-11-30T23:00:01Z'))).used, 0)
    })
  })

  describe('quotaState', () => {
    it('returns used, pending, limit, messages, month and reset', async () => {
      const { slug } = await tenantWith(50_000)
      await reserveAndCommit(slug, 1000, 2, NOV)
      await reserveAndCommit(slug, 3000, 1, NOV)
      reserved(await reserve(redis, O, slug, txId(), 700, 3, NOV))
      const s = await quotaState(redis, O, slug, NOV)
      assert.deepEqual(s, { found: true, used: 5000, pending: 2100, limit: 50_000, messages: 2, month: '2026-11', resetsAt: monthEnd(NOV, ROME) })
    })

    it('says found: false for an unknown tenant', async () => {
      const s = await quotaState(redis, O, uniqueName('nobody'), NOV)
      assert.equal(s.found, false)
      assert.equal(s.limit, 0)
    })
  })

  describe('usage', () => {
    it('returns the month figures and per-day figures that match the commits', async () => {
      const { slug, pkg } = await tenantWith(10_000)
      await reserveAndCommit(slug, 1000, 1, at('2026-11-02T08:00:00Z'))
      await reserveAndCommit(slug, 500, 2, at('2026-11-02T23:30:00Z')) // 00:30 on 3 November in Rome
      await reserveAndCommit(slug, 234, 1, at('2026-11-05T10:00:00Z'))
      reserved(await reserve(redis, O, slug, txId(), 4000, 1, at('2026-11-05T10:00:00Z'))) // pending: not used
      await topUp(redis, O, slug, 2000, at('2026-11-05T10:00:00Z'))
      const now = at('2026-11-05T12:00:00Z')
      const u = await usage(redis, O, slug, now)
      const days = u.days
      assert.deepEqual({ ...u, days: undefined }, {
        tenant: slug,
        month: '2026-11',
        used_bytes: 2234,
        limit_bytes: 12_000,
        remaining_bytes: 9766,
        percent: 18.6,
        messages: 3,
        package: pkg,
        package_bytes: 10_000,
        topup_bytes: 2000,
        resets_at: '2026-11-30T23:00:00.000Z',
        delivered: 0,
        deferred: 0,
        bounced: 0,
        days: undefined,
      })
      assert.deepEqual(days, [
        { day: '2026-11-01', bytes: 0, messages: 0, recipients: 0, delivered: 0, deferred: 0, bounced: 0 },
        { day: '2026-11-02', bytes: 1000, messages: 1, recipients: 1, delivered: 0, deferred: 0, bounced: 0 },
        { day: '2026-11-03', bytes: 1000, messages: 1, recipients: 2, delivered: 0, deferred: 0, bounced: 0 },
        { day: '2026-11-04', bytes: 0, messages: 0, recipients: 0, delivered: 0, deferred: 0, bounced: 0 },
        { day: '2026-11-05', bytes: 234, messages: 1, recipients: 1, delivered: 0, deferred: 0, bounced: 0 },
      ])
      assert.equal(days.reduce((s, d) => s + d.bytes, 0), u.used_bytes)
      assert.equal(days.reduce((s, d) => s + d.messages, 0), u.messages)
    })

    it('a tenant with no traffic: zero used, the whole allowance left, every day of the month so far', async () => {
      const { slug } = await tenantWith(10_000)
      const u = await usage(redis, O, slug, at('2026-12-31T22:59:59Z'))
      assert.equal(u.month, '2026-12')
      assert.equal(u.used_bytes, 0)
      assert.equal(u.remaining_bytes, 10_000)
      assert.equal(u.percent, 0)
      assert.equal(u.resets_at, '2026-12-31T23:00:00.000Z')
      assert.equal(u.days.length, 31)
      assert.ok(u.days.every((d) => d.bytes === 0 && d.messages === 0))
    })

    it('throws NotFoundError for an unknown tenant', async () => {
      await assert.rejects(usage(redis, O, uniqueName('nobody'), NOV), NotFoundError)
    })
  })

  describe('concurrency', () => {
    it('50 parallel reserves on one tenant whose allowance fits exactly 20: exactly 20 succeed', async () => {
      const { slug } = await tenantWith(20 * 3000)
      // several connections, as several SMTP sessions (and nodes) would use
      const clients = [redis]
      for (let i = 0; i < 4; i++) {
        const c = connectTool(t.url)
        await c.connect()
        clients.push(c)
      }
      try {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => reserve(clients[i % clients.length], O, slug, txId(), 1000, 3, NOV)),
        )
        assert.equal(results.filter((r) => r.ok).length, 20)
        assert.equal(results.filter((r) => !r.ok && r.reason === 'over').length, 30)
        const s = await quotaState(redis, O, slug, NOV)
        assert.equal(s.pending, 60_000)
        assert.equal(await redis.zcard(keys.reservations(slug, '2026-11')), 20)
        // and committing them all at once counts each once
        const res = results.filter((r): r is Extract<ReserveResult, { ok: true }> => r.ok).map((r) => r.reservation)
        const commits = await Promise.all(res.flatMap((r, i) => [commit(clients[i % clients.length], O, r, NOV), commit(clients[(i + 1) % clients.length], O, r, NOV)]))
        assert.equal(commits.filter((c) => c.counted).length, 20)
        const after = await quotaState(redis, O, slug, NOV)
        assert.deepEqual([after.used, after.pending, after.messages], [60_000, 0, 20])
      } finally {
        for (const c of clients.slice(1)) c.disconnect()
      }
    })
  })
})
