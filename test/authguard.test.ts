// lib/authguard.ts against a real Redis: login attempts counted per client and per username before hashing,
// lockout without counting, a success taken back, windows, IPv6 /64s.
import { strict as assert } from 'node:assert'
import { attemptSucceeded, beginAttempt, clientKey, DEFAULT_AUTH_LIMITS, failureCounts, type AuthLimits } from '../lib/authguard'
import { keys } from '../lib/keys'
import type { RedisClient } from '../lib/redis'
import { uniqueName, useTestRedis } from '../testkit/redis'

const LIMITS: AuthLimits = { ipMax: 3, ipWindow: 60, userMax: 5, userWindow: 120 }

describe('authguard (real Redis)', () => {
  const db = useTestRedis()
  let redis: RedisClient
  before(() => {
    redis = db.client
  })

  const ip = () => uniqueName('ip')
  const user = () => `${uniqueName('mail')}@acme.posta.example`

  it('counts each attempt per client and per username before it is judged', async () => {
    const [ipA, ipB, u1, u2] = [ip(), ip(), user(), user()]
    for (const [i, u] of [[ipA, u1], [ipA, u2], [ipB, u1]]) assert.deepEqual(await beginAttempt(redis, i, u, LIMITS), { locked: false })
    assert.deepEqual(await failureCounts(redis, ipA, u1), { ip: 2, user: 2 })
    assert.deepEqual(await failureCounts(redis, ipB, u2), { ip: 1, user: 1 })
  })

  it('sets a TTL of at most the window on the first attempt, and keeps the window fixed', async () => {
    const [i, u] = [ip(), user()]
    await beginAttempt(redis, i, u, LIMITS)
    const ipTtl = await redis.ttl(keys.authFailIp(i))
    const userTtl = await redis.ttl(keys.authFailUser(u))
    assert.ok(ipTtl > 0 && ipTtl <= LIMITS.ipWindow, `ip ttl ${ipTtl}`)
    assert.ok(userTtl > LIMITS.ipWindow && userTtl <= LIMITS.userWindow, `user ttl ${userTtl}`)
    await redis.expire(keys.authFailIp(i), 5)
    await beginAttempt(redis, i, u, LIMITS)
    const later = await redis.ttl(keys.authFailIp(i))
    assert.ok(later > 0 && later <= 5, `a later attempt does not extend the window (${later})`)
  })

  it('gives a counter that has lost its TTL a new one', async () => {
    const [i, u] = [ip(), user()]
    await redis.set(keys.authFailIp(i), '1')
    await beginAttempt(redis, i, u, LIMITS)
    const ttl = await redis.ttl(keys.authFailIp(i))
    assert.ok(ttl > 0 && ttl <= LIMITS.ipWindow, `ttl ${ttl}`)
  })

  it('lets exactly ipMax of many parallel attempts through', async () => {
    const i = ip()
    const res = await Promise.all(Array.from({ length: 30 }, () => beginAttempt(redis, i, user(), LIMITS)))
    assert.equal(res.filter((x) => !x.locked).length, LIMITS.ipMax)
    assert.equal(await redis.get(keys.authFailIp(i)), String(LIMITS.ipMax), 'refused attempts are not counted')
  })

  it('locks a client at ipMax attempts, with the time left', async () => {
    const [i, u] = [ip(), user()]
    for (let n = 0; n < LIMITS.ipMax; n++) assert.deepEqual(await beginAttempt(redis, i, user(), LIMITS), { locked: false })
    const l = await beginAttempt(redis, i, u, LIMITS)
    assert.ok(l.locked && l.by === 'ip' && l.retryAfter > 0 && l.retryAfter <= LIMITS.ipWindow, JSON.stringify(l))
    assert.equal(await redis.exists(keys.authFailUser(u)), 0, 'a locked-out attempt does not count against the user')
    assert.deepEqual(await beginAttempt(redis, ip(), u, LIMITS), { locked: false }, 'another client is not locked')
  })

  it('locks a username at userMax attempts from any clients, and gives the client its attempt back', async () => {
    const u = user()
    for (let n = 0; n < LIMITS.userMax; n++) assert.deepEqual(await beginAttempt(redis, ip(), u, LIMITS), { locked: false })
    const i = ip()
    const l = await beginAttempt(redis, i, u, LIMITS)
    assert.ok(l.locked && l.by === 'user' && l.retryAfter > LIMITS.ipWindow && l.retryAfter <= LIMITS.userWindow, JSON.stringify(l))
    assert.equal(Number(await redis.get(keys.authFailIp(i)) ?? 0), 0, 'the refused attempt is not counted against the client')
    assert.deepEqual(await beginAttempt(redis, ip(), user(), LIMITS), { locked: false }, 'another user is not locked')
  })

  it('a success takes its attempt back from the client and clears the username', async () => {
    const [i, u] = [ip(), user()]
    await beginAttempt(redis, i, user(), LIMITS) // a failure by someone else from the same client
    await beginAttempt(redis, i, u, LIMITS)
    await attemptSucceeded(redis, i, u)
    assert.equal(await redis.get(keys.authFailIp(i)), '1', 'the failure stays, the success does not count')
    assert.equal(await redis.exists(keys.authFailUser(u)), 0)
    await attemptSucceeded(redis, ip(), user())
    assert.equal(await redis.exists(keys.authFailIp('never-seen')), 0, 'taking back never creates a counter')
  })

  it('counts usernames case-insensitively and bounds huge ones', async () => {
    const u = user()
    await beginAttempt(redis, ip(), u.toUpperCase(), LIMITS)
    await beginAttempt(redis, ip(), u, LIMITS)
    assert.equal(await redis.get(keys.authFailUser(u.toLowerCase())), '2')
    const huge = `${'x'.repeat(5000)}@acme.posta.example`
    await beginAttempt(redis, ip(), huge, LIMITS)
    assert.equal(await redis.get(keys.authFailUser(huge.slice(0, 320))), '1')
  })

  it('counts IPv6 clients per /64 and IPv4 per address', async () => {
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
    assert.equal(clientKey('2001:DB8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
    assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64')
    assert.equal(clientKey('::ffff:192.0.2.1'), '192.0.2.1')
    assert.equal(clientKey('192.0.2.1'), '192.0.2.1')
    const net = `2001:db8:${Math.floor(Math.random() * 65535).toString(16)}:1`
    for (let n = 0; n < LIMITS.ipMax; n++) await beginAttempt(redis, `${net}::${n + 1}`, user(), LIMITS)
    const l = await beginAttempt(redis, `${net}:abcd::9`, user(), LIMITS)
    assert.ok(l.locked && l.by === 'ip', 'another address of the same /64 is locked too')
  })

  it('forgets attempts when the window ends', async function () {
    this.timeout(5000)
    const short: AuthLimits = { ipMax: 1, ipWindow: 1, userMax: 1, userWindow: 1 }
    const [i, u] = [ip(), user()]
    assert.deepEqual(await beginAttempt(redis, i, u, short), { locked: false })
    assert.ok((await beginAttempt(redis, i, u, short)).locked)
    await new Promise((res) => setTimeout(res, 1200))
    assert.deepEqual(await beginAttempt(redis, i, u, short), { locked: false })
  })

  it('has the documented defaults', () => {
    assert.deepEqual(DEFAULT_AUTH_LIMITS, { ipMax: 10, ipWindow: 900, userMax: 20, userWindow: 3600 })
  })
})
