// lib/routes.ts against a real Redis: static routes, exact and `.domain` wildcards, most specific first.
import { strict as assert } from 'node:assert'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import type { RedisClient } from '../lib/redis'
import { deleteRoute, findRoute, listRoutes, setRoute } from '../lib/routes'
import { uniqueName, useTestRedis } from '../testkit/redis'

describe('routes (real Redis)', () => {
  const db = useTestRedis()
  let redis: RedisClient
  before(() => {
    redis = db.client
  })

  /** A domain no other test (or test run) routes. */
  const fresh = () => `${uniqueName('d')}.test`

  it('sets a route and returns it normalised', async () => {
    const d = fresh()
    assert.deepEqual(await setRoute(redis, `${d.toUpperCase()}.`, 'MX.Example.NET:2525'), { domain: d, host: 'mx.example.net', port: 2525 })
    assert.equal(await redis.hget(keys.routes(), d), 'mx.example.net:2525')
    assert.deepEqual(await setRoute(redis, d, '10.0.0.1'), { domain: d, host: '10.0.0.1', port: 25 }, 'default port 25; replaces')
    assert.equal(await redis.hget(keys.routes(), d), '10.0.0.1:25')
    const v6 = fresh()
    assert.deepEqual(await setRoute(redis, v6, '[2001:db8::1]:587'), { domain: v6, host: '2001:db8::1', port: 587 })
    assert.equal(await redis.hget(keys.routes(), v6), '[2001:db8::1]:587')
    assert.deepEqual(await findRoute(redis, v6), { domain: v6, host: '2001:db8::1', port: 587 })
  })

  it('an exact route matches that domain only', async () => {
    const d = fresh()
    await setRoute(redis, d, 'mx.example.net:2525')
    assert.deepEqual(await findRoute(redis, d), { domain: d, host: 'mx.example.net', port: 2525 })
    assert.deepEqual(await findRoute(redis, `${d.toUpperCase()}.`), { domain: d, host: 'mx.example.net', port: 2525 }, 'case and trailing dot')
    assert.equal(await findRoute(redis, `sub.${d}`), null)
    assert.equal(await findRoute(redis, `x${d}`), null)
  })

  it('.domain matches the domain and its subdomains at any depth', async () => {
    const d = fresh()
    assert.deepEqual(await setRoute(redis, `.${d}`, '127.0.0.1:2525'), { domain: `.${d}`, host: '127.0.0.1', port: 2525 })
    for (const dest of [d, `sub.${d}`, `a.b.c.${d}`, `SUB.${d.toUpperCase()}.`]) {
      assert.deepEqual(await findRoute(redis, dest), { domain: `.${d}`, host: '127.0.0.1', port: 2525 }, dest)
    }
    for (const dest of [`x${d}`, `${d}.evil.example`, `sub.x${d}`]) assert.equal(await findRoute(redis, dest), null, dest)
  })

  it('an exact route wins over a wildcard for the same domain', async () => {
    const d = fresh()
    await setRoute(redis, `.${d}`, 'wild.example.net')
    await setRoute(redis, d, 'exact.example.net')
    assert.equal((await findRoute(redis, d))!.host, 'exact.example.net')
    assert.equal((await findRoute(redis, `sub.${d}`))!.host, 'wild.example.net')
    const sub = `sub.${d}`
    await setRoute(redis, sub, 'subexact.example.net')
    assert.equal((await findRoute(redis, sub))!.host, 'subexact.example.net')
    assert.equal((await findRoute(redis, `deeper.${sub}`))!.host, 'wild.example.net', 'an exact route does not cover subdomains')
  })

  it('the most specific wildcard wins', async () => {
    const d = fresh()
    await setRoute(redis, `.${d}`, 'outer.example.net')
    await setRoute(redis, `.inner.${d}`, 'inner.example.net')
    assert.equal((await findRoute(redis, `x.inner.${d}`))!.host, 'inner.example.net')
    assert.equal((await findRoute(redis, `a.b.inner.${d}`))!.host, 'inner.example.net')
    assert.equal((await findRoute(redis, `inner.${d}`))!.host, 'inner.example.net')
    assert.equal((await findRoute(redis, `other.${d}`))!.host, 'outer.example.net')
    assert.equal((await findRoute(redis, d))!.host, 'outer.example.net')
    assert.deepEqual(await findRoute(redis, `x.inner.${d}`), { domain: `.inner.${d}`, host: 'inner.example.net', port: 25 })
  })

  it('lists routes sorted by domain (the leading dot ignored), with their targets', async () => {
    const d = fresh()
    await setRoute(redis, `b.${d}`, 'b.example.net:26')
    await setRoute(redis, `.${d}`, '[::1]:2525')
    await setRoute(redis, d, 'exact.example.net')
    await setRoute(redis, `a.${d}`, 'a.example.net')
    const all = await listRoutes(redis)
    const sortKeys = all.map((x) => x.domain.replace(/^\./, ''))
    assert.deepEqual([...sortKeys].sort((a, b) => a.localeCompare(b)), sortKeys, 'sorted')
    const mine = all.filter((x) => x.domain.endsWith(d))
    assert.deepEqual(mine, [
      { domain: `a.${d}`, host: 'a.example.net', port: 25 },
      { domain: `b.${d}`, host: 'b.example.net', port: 26 },
      { domain: `.${d}`, host: '::1', port: 2525 },
      { domain: d, host: 'exact.example.net', port: 25 },
    ])
  })

  it('deletes exact and wildcard routes separately', async () => {
    const d = fresh()
    await setRoute(redis, d, 'exact.example.net')
    await setRoute(redis, `.${d}`, 'wild.example.net')
    await deleteRoute(redis, d.toUpperCase())
    assert.equal(await redis.hexists(keys.routes(), d), 0)
    assert.equal((await findRoute(redis, d))!.host, 'wild.example.net', 'the wildcard stays')
    await deleteRoute(redis, `.${d}`)
    assert.equal(await findRoute(redis, d), null)
    assert.ok(!(await listRoutes(redis)).some((x) => x.domain.endsWith(d)))
  })

  it('refuses to delete a route that does not exist', async () => {
    const d = fresh()
    await assert.rejects(deleteRoute(redis, d), (err: unknown) => {
      assert.ok(err instanceof NotFoundError)
      assert.match(err.message, new RegExp(`no route for "${d.replace(/\./g, '\\.')}"`))
      return true
    })
    await setRoute(redis, d, 'mx.example.net')
    await assert.rejects(deleteRoute(redis, `.${d}`), NotFoundError, 'the exact route is not the wildcard')
    assert.equal((await findRoute(redis, d))!.host, 'mx.example.net')
  })

  it('refuses a bad domain and writes nothing', async () => {
    const before = await redis.hgetall(keys.routes())
    for (const d of ['', '.', '..x.test', 'localhost', '.test', 'a_b.test', 'a b.test', '-x.test', 'x..test', '*.x.test', 'user@x.test']) {
      await assert.rejects(
        setRoute(redis, d, 'mx.example.net'),
        (err: unknown) => err instanceof InputError && /^bad route domain/.test(err.message),
        JSON.stringify(d),
      )
    }
    await assert.rejects(deleteRoute(redis, 'localhost'), /bad route domain/)
    assert.deepEqual(await redis.hgetall(keys.routes()), before)
  })

  it('refuses a bad target and writes nothing', async () => {
    const d = fresh()
    for (const t of ['', 'mx.example.net:0', 'mx.example.net:70000', 'garbage!', 'mx', '2001:db8::1', 'smtp://mx.example.net']) {
      await assert.rejects(
        setRoute(redis, d, t),
        (err: unknown) => err instanceof InputError && /^bad route target/.test(err.message),
        JSON.stringify(t),
      )
    }
    assert.equal(await redis.hexists(keys.routes(), d), 0)
    assert.equal(await findRoute(redis, d), null)
  })
})
