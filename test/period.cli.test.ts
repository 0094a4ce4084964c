// CLI --since/--until are read in the service time zone (POSTA_TIMEZONE), not the machine's (TZ): `posta ip traffic`
// and `posta investigate` run as real processes against a real Redis with a ledger written by lib/ledger.ts. The
// machine's zone is set to Asia/Tokyo for the CLI, so that neither it nor UTC can pass for the service's.
import { strict as assert } from 'node:assert'
import { DEFAULT_LEDGER, recordAttempt, type Attempt } from '../lib/ledger'
import { posta } from '../testkit/cli'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

describe('CLI --since/--until in the service time zone (real CLI, real Redis)', function () {
  this.timeout(30000)
  let redis: TestRedis
  const ip = '198.18.7.9'
  const [ny, utc, rome] = [uniqueName('ny'), uniqueName('utc'), uniqueName('rome')]
  const env = (tz: string) => ({ REDIS_URL: redis.url, POSTA_TIMEZONE: tz, TZ: 'Asia/Tokyo' })

  before(async () => {
    redis = await testRedis()
    const attempt = (tenant: string, iso: string): Attempt => ({
      at: Date.parse(iso), tenant, tx: 'X.1.1', ip, domain: 'example.net', mx: 'mx.example.net', result: 'delivered', code: '250', response: '250 ok', size: 100, rcpts: 1,
    })
    // 09:30 on 27 November: in New York (14:30Z), in UTC (09:30Z), in Rome (08:30Z)
    await recordAttempt(redis.client, attempt(ny, '2026-11-27T14:30:00Z'), DEFAULT_LEDGER)
    await recordAttempt(redis.client, attempt(utc, '2026-11-27T09:30:00Z'), DEFAULT_LEDGER)
    await recordAttempt(redis.client, attempt(rome, '2026-11-27T08:30:00Z'), DEFAULT_LEDGER)
  })
  after(async () => {
    await redis?.close()
  })

  async function traffic(tz: string, ...window: string[]): Promise<{ since: string; until: string; tenants: string[] }> {
    const r = await posta(['ip', 'traffic', ip, ...window, '--json'], env(tz))
    assert.equal(r.code, 0, r.stderr)
    const j = r.json<{ since: string; until: string; tenants: { tenant: string }[] }>()
    return { since: j.since, until: j.until, tenants: j.tenants.map((t) => t.tenant) }
  }

  it('posta ip traffic: 09:00-09:59 is New York time with POSTA_TIMEZONE=America/New_York', async () => {
    const r = await traffic('America/New_York', '--since', '2026-11-27T09:00', '--until', '2026-11-27T09:59')
    assert.equal(r.since, '2026-11-27T14:00:00.000Z')
    assert.equal(r.until, '2026-11-27T14:59:00.000Z')
    assert.deepEqual(r.tenants, [ny])
  })

  it('posta ip traffic: the same words are Rome time with POSTA_TIMEZONE=Europe/Rome (a date alone is local midnight)', async () => {
    const r = await traffic('Europe/Rome', '--since', '2026-11-27 09:00', '--until', '2026-11-27T09:59:59')
    assert.equal(r.since, '2026-11-27T08:00:00.000Z')
    assert.deepEqual(r.tenants, [rome])
    const day = await traffic('Europe/Rome', '--since', '2026-11-27', '--until', '2026-11-28')
    assert.equal(day.since, '2026-11-26T23:00:00.000Z')
    assert.equal(day.until, '2026-11-27T23:00:00.000Z')
    assert.deepEqual(day.tenants.sort(), [ny, utc, rome].sort())
  })

  it('an explicit Z or offset wins over the service time zone', async () => {
    const z = await traffic('America/New_York', '--since', '2026-11-27T09:00Z', '--until', '2026-11-27T09:59Z')
    assert.equal(z.since, '2026-11-27T09:00:00.000Z')
    assert.deepEqual(z.tenants, [utc])
    const off = await traffic('America/New_York', '--since', '2026-11-27T09:00+01:00', '--until', '2026-11-27T09:59+0100')
    assert.equal(off.since, '2026-11-27T08:00:00.000Z')
    assert.deepEqual(off.tenants, [rome])
  })

  it('posta investigate reads its window the same way', async () => {
    const r = await posta(['investigate', ip, '--since', '2026-11-27T09:00', '--until', '2026-11-27T09:59', '--json'], env('America/New_York'))
    assert.equal(r.code, 0, r.stderr)
    const inv = r.json<{ since: string; until: string; tenants: { tenant: string }[] }>()
    assert.equal(inv.since, '2026-11-27T14:00:00.000Z')
    assert.equal(inv.until, '2026-11-27T14:59:00.000Z')
    assert.deepEqual(inv.tenants.map((t) => t.tenant), [ny])
  })

  it('a bad time names the zone and the forms it takes; --since after --until is refused', async () => {
    for (const bad of ['yesterday', '2026-02-30T10:00', '2026-11-27T24:00', '27/11/2026', '2026-11-27T09:00+25:00']) {
      const r = await posta(['ip', 'traffic', ip, '--since', bad], env('America/New_York'))
      assert.notEqual(r.code, 0, bad)
      assert.match(r.stderr, /bad --since ".*": use a date or time in the service time zone \(America\/New_York\)/, bad)
    }
    const r = await posta(['investigate', ip, '--since', '2026-11-27T10:00', '--until', '2026-11-27T09:00'], env('Europe/Rome'))
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /--since must be before --until/)
  })
})
