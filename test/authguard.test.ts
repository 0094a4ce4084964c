// lib/authguard.ts against a real Redis: failed-login counters per IP and per username, lockout, reset on success.
import { strict as assert } from 'node:assert'
import { checkLockout, DEFAULT_AUTH_LIMITS, recordFailure, recordSuccess, type AuthLimits } from '../lib/authguard'
import { keys } from '../lib/keys'
import type { RedisClient } from '../lib/redis'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const LIMITS: AuthLimits = { ipMax: 3, ipWindow: 60, userMax: 5, userWindow: 120 }

describe('authguard (real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient

  before(async () => {
    r = await testRedis()
    redis = r.client
  })
  after(async () => {
    await r?.close()
  })

  const ip = () => uniqueName('ip')
  const user = () => `${uniqueName('mail')}@acme.posta.example`

  it('counts failures per IP and per username', async () => {
    const [ipA, ipB, u1, u2] = [ip(), ip(), user(), user()]
    assert.deepEqual(await recordFailure(redis, ipA, u1, LIMITS), { ip: 1, user: 1 })
    assert.deepEqual(await recordFailure(redis, ipA, u2, LIMITS), { ip: 2, user: 1 })
    assert.deepEqual(await recordFailure(redis, ipB, u1, LIMITS), { ip: 1, user: 2 })
    assert.deepEqual(await recordFailure(redis, ipA, u1, LIMITS), { ip: 3, user: 3 })
    assert.equal(await redis.get(keys.authFailIp(ipA)), '3')
    assert.equal(await redis.get(keys.authFailIp(ipB)), '1')
    assert.equal(await redis.get(keys.authFailUser(u1)), '3')
    assert.equal(await redis.get(keys.authFailUser(u2)), '1')
  })

  it('sets a TTL of at most the window on the first failure', async () => {
    const [i, u] = [ip(), user()]
    await recordFailure(redis, i, u, LIMITS)
    const ipTtl = await redis.ttl(keys.authFailIp(i))
    const userTtl = await redis.ttl(keys.authFailUser(u))
    assert.ok(ipTtl > 0 && ipTtl <= LIMITS.ipWindow, `ip ttl ${ipTtl}`)
    assert.ok(userTtl > 0 && userTtl <= LIMITS.userWindow, `user ttl ${userTtl}`)
    assert.ok(userTtl > LIMITS.ipWindow, 'each counter has its own window')
  })

  it('keeps a fixed window: later failures do not extend it', async () => {
    const [i, u] = [ip(), user()]
    await recordFailure(redis, i, u, LIMITS)
    await redis.expire(keys.authFailIp(i), 5)
    await redis.expire(keys.authFailUser(u), 7)
    await recordFailure(redis, i, u, LIMITS)
    await recordFailure(redis, i, u, LIMITS)
    const ipTtl = await redis.ttl(keys.authFailIp(i))
    const userTtl = await redis.ttl(keys.authFailUser(u))
    assert.ok(ipTtl > 0 && ipTtl <= 5, `ip ttl ${ipTtl}`)
    assert.ok(userTtl > 0 && userTtl <= 7, `user ttl ${userTtl}`)
  })

  it('gives a counter that has lost its TTL a new one', async () => {
    const [i, u] = [ip(), user()]
    await redis.set(keys.authFailIp(i), '1')
    assert.deepEqual(await recordFailure(redis, i, u, LIMITS), { ip: 2, user: 1 })
    const ttl = await redis.ttl(keys.authFailIp(i))
    assert.ok(ttl > 0 && ttl <= LIMITS.ipWindow, `ttl ${ttl}`)
  })

  it('counts concurrent failures exactly, each counter with a TTL', async () => {
    const [i, u] = [ip(), user()]
    const res = await Promise.all(Array.from({ length: 50 }, () => recordFailure(redis, i, u, LIMITS)))
    assert.deepEqual(res.map((x) => x.ip).sort((a, b) => a - b), Array.from({ length: 50 }, (_, n) => n + 1))
    assert.equal(await redis.get(keys.authFailIp(i)), '50')
    assert.equal(await redis.get(keys.authFailUser(u)), '50')
    assert.ok((await redis.ttl(keys.authFailIp(i))) > 0)
    assert.ok((await redis.ttl(keys.authFailUser(u))) > 0)
  })

  it('locks an IP at ipMax failures', async () => {
    const [i, u] = [ip(), user()]
    assert.deepEqual(await checkLockout(redis, i, u, LIMITS), { locked: false })
    for (let n = 1; n < LIMITS.ipMax; n++) {
      await recordFailure(redis, i, user(), LIMITS)
      assert.deepEqual(await checkLockout(redis, i, u, LIMITS), { locked: false }, `after ${n}`)
    }
    await recordFailure(redis, i, user(), LIMITS)
    const l = await checkLockout(redis, i, u, LIMITS)
    assert.equal(l.locked, true)
    assert.ok(l.locked && l.by === 'ip')
    assert.ok(l.locked && l.retryAfter > 0 && l.retryAfter <= LIMITS.ipWindow, JSON.stringify(l))
    assert.deepEqual(await checkLockout(redis, ip(), u, LIMITS), { locked: false }, 'another IP is not locked')
  })

  it('locks a username at userMax failures, from any IPs', async () => {
    const u = user()
    for (let n = 1; n < LIMITS.userMax; n++) {
      await recordFailure(redis, ip(), u, LIMITS)
      assert.deepEqual(await checkLockout(redis, ip(), u, LIMITS), { locked: false }, `after ${n}`)
    }
    await recordFailure(redis, ip(), u, LIMITS)
    const l = await checkLockout(redis, ip(), u, LIMITS)
    assert.ok(l.locked && l.by === 'user', JSON.stringify(l))
    assert.ok(l.locked && l.retryAfter > LIMITS.ipWindow && l.retryAfter <= LIMITS.userWindow, JSON.stringify(l))
    assert.deepEqual(await checkLockout(redis, ip(), user(), LIMITS), { locked: false }, 'another user is not locked')
  })

  it('names the IP first when both are over their limits', async () => {
    const [i, u] = [ip(), user()]
    for (let n = 0; n < Math.max(LIMITS.ipMax, LIMITS.userMax); n++) await recordFailure(redis, i, u, LIMITS)
    const l = await checkLockout(redis, i, u, LIMITS)
    assert.ok(l.locked && l.by === 'ip', JSON.stringify(l))
  })

  it('recordSuccess clears the username counter only', async () => {
    const [i, u] = [ip(), user()]
    for (let n = 0; n < LIMITS.userMax; n++) await recordFailure(redis, i, u, LIMITS)
    await recordSuccess(redis, u)
    assert.equal(await redis.exists(keys.authFailUser(u)), 0)
    assert.equal(await redis.get(keys.authFailIp(i)), String(LIMITS.userMax), 'the IP counter stays')
    const l = await checkLockout(redis, i, u, LIMITS)
    assert.ok(l.locked && l.by === 'ip', 'the IP is still locked')
    assert.deepEqual(await checkLockout(redis, ip(), u, LIMITS), { locked: false }, 'the user is free from elsewhere')
    assert.deepEqual(await recordFailure(redis, ip(), u, LIMITS), { ip: 1, user: 1 }, 'the user count starts over')
  })

  it('counts usernames case-insensitively', async () => {
    const u = user()
    const i = ip()
    await recordFailure(redis, i, u.toUpperCase(), LIMITS)
    await recordFailure(redis, i, u, LIMITS)
    assert.deepEqual(await recordFailure(redis, ip(), u[0].toUpperCase() + u.slice(1), LIMITS), { ip: 1, user: 3 })
    assert.equal(await redis.get(keys.authFailUser(u.toLowerCase())), '3')
    assert.equal(await redis.exists(keys.authFailUser(u.toUpperCase())), 0)
    for (let n = 3; n < LIMITS.userMax; n++) await recordFailure(redis, ip(), u, LIMITS)
    const l = await checkLockout(redis, ip(), u.toUpperCase(), LIMITS)
    assert.ok(l.locked && l.by === 'user', JSON.stringify(l))
    await recordSuccess(redis, u.toUpperCase())
    assert.equal(await redis.exists(keys.authFailUser(u)), 0)
  })

  it('bounds the key of a huge username', async () => {
    const u = `${'x'.repeat(5000)}@acme.posta.example`
    const i = ip()
    await recordFailure(redis, i, u, LIMITS)
    const key = keys.authFailUser(u.slice(0, 320))
    assert.equal(await redis.get(key), '1')
    assert.equal(await redis.exists(keys.authFailUser(u)), 0)
  })

  it('forgets failures when the window ends', async function () {
    this.timeout(5000)
    const short: AuthLimits = { ipMax: 1, ipWindow: 1, userMax: 1, userWindow: 1 }
    const [i, u] = [ip(), user()]
    await recordFailure(redis, i, u, short)
    assert.ok((await checkLockout(redis, i, u, short)).locked)
    await new Promise((res) => setTimeout(res, 1200))
    assert.deepEqual(await checkLockout(redis, i, u, short), { locked: false })
    assert.deepEqual(await recordFailure(redis, i, u, short), { ip: 1, user: 1 })
  })

  it('has sane defaults', () => {
    assert.ok(DEFAULT_AUTH_LIMITS.ipMax > 0 && DEFAULT_AUTH_LIMITS.userMax > 0)
    assert.ok(DEFAULT_AUTH_LIMITS.ipWindow > 0 && DEFAULT_AUTH_LIMITS.userWindow > 0)
  })
})
