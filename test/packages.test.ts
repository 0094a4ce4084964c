// lib/packages.ts against a real Redis: create, update, list and require packages.
import { strict as assert } from 'node:assert'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import { getPackage, listPackages, requirePackage, setPackage } from '../lib/packages'
import type { RedisClient } from '../lib/redis'
import { loadSettings } from '../lib/settings'
import { changePackage, createTenant } from '../lib/tenants'
import { uniqueName, useTestRedis } from '../testkit/redis'

describe('packages (real Redis)', () => {
  const db = useTestRedis()
  let redis: RedisClient
  before(() => {
    redis = db.client
  })

  async function assertNoPackage(name: string) {
    assert.equal(await redis.exists(keys.package(name)), 0, 'no package hash')
    assert.equal(await redis.sismember(keys.packages(), name), 0, 'not in the packages set')
  }

  it('creates a package and returns it', async () => {
    const name = uniqueName('pkg')
    const p = await setPackage(redis, name, 10e9)
    assert.equal(p.name, name)
    assert.equal(p.traffic_bytes, 10e9)
    assert.ok(!Number.isNaN(Date.parse(p.created_at)))
    assert.equal(p.updated_at, p.created_at)
    assert.deepEqual(await getPackage(redis, name), p)
    assert.equal(await redis.sismember(keys.packages(), name), 1)
    assert.equal(await redis.hget(keys.package(name), 'traffic_bytes'), '10000000000')
  })

  it('updates the allowance and keeps created_at', async () => {
    const name = uniqueName('pkg')
    const first = await setPackage(redis, name, 1e9)
    await new Promise((res) => setTimeout(res, 5))
    const second = await setPackage(redis, name, 2e9)
    assert.equal(second.traffic_bytes, 2e9)
    assert.equal(second.created_at, first.created_at)
    assert.ok(second.updated_at > first.updated_at)
    assert.equal((await listPackages(redis)).filter((p) => p.name === name).length, 1, 'listed once')
  })

  it("updates the allowance copied into its tenants, and only theirs", async () => {
    const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example', REDIS_URL: db.redis.url })
    const mine = uniqueName('pkg')
    const other = uniqueName('pkg')
    await setPackage(redis, mine, 1e9)
    await setPackage(redis, other, 5e9)
    const a = uniqueName('t')
    const b = uniqueName('t')
    await createTenant(redis, settings, { slug: a, package: mine, contact: 'ops@example.net' })
    await createTenant(redis, settings, { slug: b, package: other, contact: 'ops@example.net' })
    await setPackage(redis, mine, 3e9)
    assert.equal(await redis.hget(keys.tenant(a), 'traffic_bytes'), '3000000000')
    assert.equal(await redis.hget(keys.tenant(b), 'traffic_bytes'), '5000000000')
  })

  it('package set, package change and tenant create at once: every tenant ends with the allowance of the package it is on', async function () {
    this.timeout(60000)
    const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example', REDIS_URL: db.redis.url })
    const [x, y] = [uniqueName('pkgx'), uniqueName('pkgy')]
    await setPackage(redis, x, 1e9)
    await setPackage(redis, y, 2e9)
    const slugs: string[] = []
    for (let i = 0; i < 8; i++) {
      const slug = uniqueName(`race${i}`)
      await createTenant(redis, settings, { slug, package: i % 2 ? x : y, contact: 'ops@example.net' })
      slugs.push(slug)
    }
    const check = async (round: number) => {
      for (const slug of slugs) {
        const [pkg, bytes] = await redis.hmget(keys.tenant(slug), 'package', 'traffic_bytes')
        assert.equal(bytes, await redis.hget(keys.package(pkg!), 'traffic_bytes'), `round ${round}: ${slug} on ${pkg} has the allowance of its package`)
      }
    }
    for (let round = 0; round < 15; round++) {
      const ops: Promise<unknown>[] = []
      for (let k = 0; k < 3; k++) {
        ops.push(setPackage(redis, x, (round * 10 + k + 1) * 1e6), setPackage(redis, y, (round * 10 + k + 5) * 1e6))
      }
      for (const [i, slug] of slugs.entries()) ops.push(changePackage(redis, slug, (i + round) % 2 ? x : y))
      const late = uniqueName(`late${round}`)
      ops.push(createTenant(redis, settings, { slug: late, package: round % 2 ? x : y, contact: 'ops@example.net' }).then(() => slugs.push(late)))
      await Promise.all(ops)
      await check(round)
    }
  })

  it('lists packages sorted by name', async () => {
    const prefix = uniqueName('lst')
    await setPackage(redis, `${prefix}-c`, 3000)
    await setPackage(redis, `${prefix}-a`, 1000)
    await setPackage(redis, `${prefix}-b`, 2000)
    const all = await listPackages(redis)
    const names = all.map((p) => p.name)
    assert.deepEqual([...names].sort(), names, 'sorted')
    const mine = all.filter((p) => p.name.startsWith(prefix))
    assert.deepEqual(
      mine.map((p) => [p.name, p.traffic_bytes]),
      [[`${prefix}-a`, 1000], [`${prefix}-b`, 2000], [`${prefix}-c`, 3000]],
    )
  })

  it('requirePackage returns a package that exists', async () => {
    const name = uniqueName('pkg')
    await setPackage(redis, name, 12345)
    const p = await requirePackage(redis, name)
    assert.equal(p.name, name)
    assert.equal(p.traffic_bytes, 12345)
  })

  it('requirePackage refuses an unknown package, saying how to create it', async () => {
    const name = uniqueName('nopkg')
    await assert.rejects(requirePackage(redis, name), (err: unknown) => {
      assert.ok(err instanceof NotFoundError)
      assert.equal(err.message, `unknown package "${name}": create it with "posta package set ${name} --traffic <size>"`)
      return true
    })
    await assertNoPackage(name)
  })

  it('requirePackage refuses a bad name', async () => {
    await assert.rejects(requirePackage(redis, 'bad name'), (err: unknown) => err instanceof InputError && /bad package name/.test(err.message))
  })

  it('refuses a bad name and writes nothing', async () => {
    for (const name of ['', 'a b', '-x', 'x'.repeat(65), 'a/b']) {
      await assert.rejects(setPackage(redis, name, 1000), /bad package name/, name)
      await assertNoPackage(name)
    }
  })

  it('refuses a traffic that is not a positive whole number of bytes and writes nothing', async () => {
    for (const t of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
      const name = uniqueName('pkg')
      await assert.rejects(setPackage(redis, name, t), /bad traffic/, String(t))
      await assertNoPackage(name)
    }
  })

  it('a refused update leaves the package as it was', async () => {
    const name = uniqueName('pkg')
    const p = await setPackage(redis, name, 1e9)
    await assert.rejects(setPackage(redis, name, 0), /bad traffic/)
    assert.deepEqual(await getPackage(redis, name), p)
  })
})
