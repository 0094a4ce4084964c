// lib/authguard.ts against a real Redis: login attempts counted per client, per (login, client) pair and per login
// before hashing; refusals without counting; a login under attack refuses only clients that failed for it; a
// success clears only its own client's pair; in-flight attempts; windows; IPv6 /64s.
import { strict as assert } from 'node:assert'
import { attemptKeys, beginAttempt, clientKey, DEFAULT_AUTH_LIMITS, endAttempt, failureCounts, lockoutState, type AuthLimits, type Gate } from '../lib/authguard'
import { keys } from '../lib/keys'
import type { RedisClient } from '../lib/redis'
import { uniqueName, useTestRedis } from '../testkit/redis'

const LIMITS: AuthLimits = { ipMax: 3, ipWindow: 60, pairMax: 4, pairWindow: 90, userMax: 5, userWindow: 120 }
const GO: Gate = { kind: 'go' }

describe('authguard (real Redis)', () => {
  const db = useTestRedis()
  let redis: RedisClient
  before(() => {
    redis = db.client
  })

  let n = 0
  /** A fresh client address (the guard only needs distinct strings that look like IPv4 addresses). */
  const ip = () => `198.51.${Math.floor(n / 250) % 250}.${(n++ % 250) + 1}-${uniqueName('c')}`
  const user = () => `${uniqueName('mail')}@acme.posta.example`
  const get = async (k: string) => Number((await redis.get(k)) ?? 0)
  /** A failed attempt: counted, verified wrong. */
  async function fail(i: string, u: string, limits = LIMITS) {
    assert.deepEqual(await beginAttempt(redis, i, u, limits), GO, `attempt of ${i} for ${u}`)
    await endAttempt(redis, i, u, false)
  }
  /** Pushes a login past userMax with failures from addresses used for nothing else. */
  async function underAttack(u: string, limits = LIMITS) {
    for (let k = 0; k < limits.userMax; k++) await fail(ip(), u, limits)
    assert.ok((await get(keys.authFailUser(u))) >= limits.userMax)
  }

  it('counts each attempt per client, per pair and per login before it is judged', async () => {
    const [ipA, ipB, u1, u2] = [ip(), ip(), user(), user()]
    for (const [i, u] of [[ipA, u1], [ipA, u2], [ipB, u1]]) assert.deepEqual(await beginAttempt(redis, i, u, LIMITS), GO)
    assert.deepEqual(await failureCounts(redis, ipA, u1), { ip: 2, pair: 1, user: 2 })
    assert.deepEqual(await failureCounts(redis, ipB, u2), { ip: 1, pair: 0, user: 1 })
    assert.equal(await get(attemptKeys(ipA, u1).busy), 1, 'in flight until its end')
    for (const [i, u] of [[ipA, u1], [ipA, u2], [ipB, u1]]) await endAttempt(redis, i, u, false)
    assert.equal(await redis.exists(attemptKeys(ipA, u1).busy), 0)
    assert.deepEqual(await failureCounts(redis, ipA, u1), { ip: 2, pair: 1, user: 2 }, 'failures stay counted')
  })

  it('keeps every key of one login in one hash slot, and keys the documented layout', () => {
    const k = attemptKeys('192.0.2.1', 'Mail@Acme.Example')
    assert.deepEqual(k, {
      ip: 'posta:authfail:ip:192.0.2.1',
      pair: 'posta:authfail:{mail@acme.example}:pair:192.0.2.1',
      user: 'posta:authfail:{mail@acme.example}:user',
      busy: 'posta:authfail:{mail@acme.example}:busy:192.0.2.1',
    })
    assert.equal(attemptKeys('192.0.2.1', 'a{b}c@x').user, 'posta:authfail:{abc@x}:user', 'braces cannot move the hash tag')
  })

  it('sets TTLs of at most each window on the first attempt, and keeps the windows fixed', async () => {
    const [i, u] = [ip(), user()]
    await fail(i, u)
    const k = attemptKeys(i, u)
    const [ipTtl, pairTtl, userTtl] = [await redis.ttl(k.ip), await redis.ttl(k.pair), await redis.ttl(k.user)]
    assert.ok(ipTtl > 0 && ipTtl <= LIMITS.ipWindow, `ip ttl ${ipTtl}`)
    assert.ok(pairTtl > LIMITS.ipWindow && pairTtl <= LIMITS.pairWindow, `pair ttl ${pairTtl}`)
    assert.ok(userTtl > LIMITS.pairWindow && userTtl <= LIMITS.userWindow, `user ttl ${userTtl}`)
    await redis.expire(k.ip, 5)
    await redis.expire(k.pair, 5)
    await fail(i, u)
    assert.ok((await redis.ttl(k.ip)) <= 5 && (await redis.ttl(k.pair)) <= 5, 'a later attempt does not extend a window')
  })

  it('gives a counter that has lost its TTL a new one', async () => {
    const [i, u] = [ip(), user()]
    const k = attemptKeys(i, u)
    await redis.set(k.ip, '1')
    await redis.set(k.user, '1')
    await fail(i, u)
    for (const key of [k.ip, k.user]) {
      const ttl = await redis.ttl(key)
      assert.ok(ttl > 0, `${key} ttl ${ttl}`)
    }
  })

  it('lets exactly ipMax of many parallel attempts of one client through', async () => {
    const i = ip()
    const res = await Promise.all(Array.from({ length: 30 }, () => beginAttempt(redis, i, user(), LIMITS)))
    assert.equal(res.filter((x) => x.kind === 'go').length, LIMITS.ipMax)
    assert.equal(await get(keys.authFailIp(clientKey(i))), LIMITS.ipMax, 'refused attempts are not counted')
  })

  it('locks a client at ipMax attempts over all logins, with the time left; other clients go on', async () => {
    const [i, u] = [ip(), user()]
    for (let k = 0; k < LIMITS.ipMax; k++) await fail(i, user())
    const l = await beginAttempt(redis, i, u, LIMITS)
    assert.ok(l.kind === 'locked' && l.by === 'ip' && l.retryAfter > 0 && l.retryAfter <= LIMITS.ipWindow, JSON.stringify(l))
    assert.deepEqual(await lockoutState(redis, i, u, LIMITS), l, 'the read-only gate agrees')
    assert.equal(await redis.exists(keys.authFailUser(u)), 0, 'a locked-out attempt does not count against the login')
    assert.deepEqual(await beginAttempt(redis, ip(), u, LIMITS), GO, 'another client is not locked')
  })

  it('locks a (login, client) pair at pairMax attempts; the same client may still try other logins', async () => {
    const limits = { ...LIMITS, ipMax: 100 }
    const [i, u] = [ip(), user()]
    for (let k = 0; k < limits.pairMax; k++) await fail(i, u, limits)
    const l = await beginAttempt(redis, i, u, limits)
    assert.ok(l.kind === 'locked' && l.by === 'pair' && l.retryAfter > LIMITS.ipWindow && l.retryAfter <= limits.pairWindow, JSON.stringify(l))
    assert.equal(await get(keys.authFailIp(clientKey(i))), limits.pairMax, 'the refused attempt is taken back from the client')
    assert.equal(await get(keys.authFailUser(u)), limits.pairMax, 'and not counted against the login')
    assert.deepEqual(await beginAttempt(redis, i, user(), limits), GO, 'another login from the same client')
    assert.deepEqual(await beginAttempt(redis, ip(), u, limits), GO, 'the same login from another client')
  })

  it('a login past userMax refuses clients that failed for it, never a client that did not', async () => {
    const u = user()
    const failed = ip()
    await fail(failed, u) // one failure of this client, before the attack
    await underAttack(u)
    const l = await beginAttempt(redis, failed, u, LIMITS)
    assert.ok(l.kind === 'locked' && l.by === 'user' && l.retryAfter > LIMITS.ipWindow && l.retryAfter <= LIMITS.pairWindow, JSON.stringify(l))
    assert.equal(await get(keys.authFailIp(clientKey(failed))), 1, 'the refused attempt is taken back from the client')
    // a fresh client goes, and its right password is taken back from every counter but its own failures
    const fresh = ip()
    assert.deepEqual(await lockoutState(redis, fresh, u, LIMITS), GO)
    assert.deepEqual(await beginAttempt(redis, fresh, u, LIMITS), GO)
    await endAttempt(redis, fresh, u, true)
    assert.deepEqual(await failureCounts(redis, fresh, u), { ip: 0, pair: 0, user: LIMITS.userMax + 1 }, 'a success clears nothing of others')
    assert.equal(await get(attemptKeys(failed, u).pair), 1, "the failed client's count stays")
    assert.equal((await beginAttempt(redis, failed, u, LIMITS)).kind, 'locked', 'and it is still refused')
    // the fresh client logs in again and again
    for (let k = 0; k < 3; k++) {
      assert.deepEqual(await beginAttempt(redis, fresh, u, LIMITS), GO)
      await endAttempt(redis, fresh, u, true)
    }
    // one wrong guess and the fresh client is a failed client too
    await fail(fresh, u)
    assert.equal((await beginAttempt(redis, fresh, u, LIMITS)).kind, 'locked')
    // other logins are not under attack
    assert.deepEqual(await beginAttempt(redis, failed, user(), LIMITS), GO)
  })

  it('under attack, parallel guesses from a fresh client get exactly one attempt; the rest wait for its outcome', async () => {
    const limits = { ...LIMITS, ipMax: 100 } // so that the client's own budget is not what refuses them
    const u = user()
    await underAttack(u)
    const i = ip()
    const res = await Promise.all(Array.from({ length: 20 }, () => beginAttempt(redis, i, u, limits)))
    assert.equal(res.filter((r) => r.kind === 'go').length, 1, JSON.stringify(res))
    const waits = res.filter((r) => r.kind === 'wait')
    assert.equal(waits.length, 19)
    for (const w of waits) assert.ok(w.kind === 'wait' && w.ms > 0 && w.ms <= 20000, JSON.stringify(w))
    assert.deepEqual(await failureCounts(redis, i, u), { ip: 1, pair: 1, user: LIMITS.userMax + 1 }, 'waits are not counted')
    // the one attempt was wrong: the waiting ones are then refused
    await endAttempt(redis, i, u, false)
    const after = await beginAttempt(redis, i, u, limits)
    assert.ok(after.kind === 'locked' && after.by === 'user', JSON.stringify(after))
  })

  it('under attack, pooled attempts of a fresh client wait for the first, which, right, lets them all in', async () => {
    const u = user()
    await underAttack(u)
    const i = ip()
    assert.deepEqual(await beginAttempt(redis, i, u, LIMITS), GO)
    assert.equal((await lockoutState(redis, i, u, LIMITS)).kind, 'wait')
    await endAttempt(redis, i, u, true)
    const res = await Promise.all(Array.from({ length: 5 }, () => beginAttempt(redis, i, u, LIMITS)))
    assert.equal(res.filter((r) => r.kind === 'go').length, 1, 'one at a time while the login is under attack')
  })

  it('an attempt left in flight by a dead node frees its client after the in-flight lifetime', async () => {
    const u = user()
    await underAttack(u)
    const i = ip()
    assert.deepEqual(await beginAttempt(redis, i, u, LIMITS), GO) // never ended
    const k = attemptKeys(i, u)
    const pttl = await redis.pttl(k.busy)
    assert.ok(pttl > 10000 && pttl <= 20000, `in-flight marker lives ${pttl} ms`)
    await redis.pexpire(k.busy, 1) // its lifetime is over
    await new Promise((r) => setTimeout(r, 20))
    const l = await beginAttempt(redis, i, u, LIMITS)
    assert.ok(l.kind === 'locked' && l.by === 'user', `the unfinished attempt counts as a failure: ${JSON.stringify(l)}`)
  })

  it('a success clears its own pair and takes back its own attempt, never creating or underflowing a counter', async () => {
    const limits = { ...LIMITS, ipMax: 100 }
    const [i, other, u] = [ip(), ip(), user()]
    await fail(i, u, limits)
    await fail(i, u, limits)
    await fail(other, u, limits)
    assert.deepEqual(await beginAttempt(redis, i, u, limits), GO)
    await endAttempt(redis, i, u, true)
    assert.deepEqual(await failureCounts(redis, i, u), { ip: 2, pair: 0, user: 3 }, 'own failures stay on the client, the pair starts over')
    assert.deepEqual(await failureCounts(redis, other, u), { ip: 1, pair: 1, user: 3 }, "another client's failure stays")
    const [x, y] = [ip(), user()]
    await endAttempt(redis, x, y, true)
    const k = attemptKeys(x, y)
    for (const key of Object.values(k)) assert.equal(await redis.exists(key), 0, `ending without a count creates no ${key}`)
  })

  it('counts logins case-insensitively and bounds huge ones', async () => {
    const u = user()
    await fail(ip(), u.toUpperCase())
    await fail(ip(), u)
    assert.equal(await get(keys.authFailUser(u.toLowerCase())), 2)
    const huge = `${'x'.repeat(5000)}@acme.posta.example`
    await fail(ip(), huge)
    assert.equal(await get(keys.authFailUser(huge.slice(0, 320))), 1)
  })

  it('counts IPv6 clients per /64 and IPv4 per address', async () => {
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
    assert.equal(clientKey('2001:DB8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
    assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64')
    assert.equal(clientKey('::ffff:192.0.2.1'), '192.0.2.1')
    assert.equal(clientKey('192.0.2.1'), '192.0.2.1')
    const net = `2001:db8:${Math.floor(Math.random() * 65535).toString(16)}:1`
    const u = user()
    for (let k = 0; k < LIMITS.ipMax; k++) await fail(`${net}::${k + 1}`, user())
    const l = await beginAttempt(redis, `${net}:abcd::9`, u, LIMITS)
    assert.ok(l.kind === 'locked' && l.by === 'ip', 'another address of the same /64 is locked too')
    // the pair is per /64 as well: under attack, one failure from an address fails the whole /64
    const v = `2001:db8:${Math.floor(Math.random() * 65535).toString(16)}:2`
    await fail(`${v}::1`, u)
    await underAttack(u)
    const p = await beginAttempt(redis, `${v}::2`, u, LIMITS)
    assert.ok(p.kind === 'locked' && p.by === 'user', JSON.stringify(p))
  })

  it('forgets attempts when the windows end', async function () {
    this.timeout(5000)
    const short: AuthLimits = { ipMax: 1, ipWindow: 1, pairMax: 1, pairWindow: 1, userMax: 1, userWindow: 1 }
    const [i, u] = [ip(), user()]
    await fail(i, u, short)
    assert.equal((await beginAttempt(redis, i, u, short)).kind, 'locked')
    await new Promise((res) => setTimeout(res, 1200))
    assert.deepEqual(await beginAttempt(redis, i, u, short), GO)
  })

  it('has the documented defaults', () => {
    assert.deepEqual(DEFAULT_AUTH_LIMITS, { ipMax: 10, ipWindow: 900, pairMax: 10, pairWindow: 3600, userMax: 20, userWindow: 3600 })
  })
})
