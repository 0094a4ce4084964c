// lib/lua.ts runScript: EVALSHA with EVAL when Redis does not know the script, on a real Redis (a private server,
// REDIS_URL, or the test Cluster with POSTA_TEST_REDIS=cluster).
import { strict as assert } from 'node:assert'
import { runScript, SCRIPTS } from '../lib/lua'
import { connectHotPath, type RedisClient } from '../lib/redis'
import { serversOf, testRedis, uniqueName, type TestRedis } from '../testkit/redis'

describe('Lua scripts (lib/lua.ts, real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient
  before(async () => {
    r = await testRedis()
    redis = r.client
  })
  after(async () => {
    await r?.close()
  })

  const hourKey = () => `posta:test:ledger:ip:{${uniqueName('lua')}}:2026-12-02T13`

  it('runs a script Redis has not seen yet (NOSCRIPT, then EVAL), and by its SHA from then on', async () => {
    const k = hourKey()
    assert.equal(await runScript<number>(redis, 'ledger_ip', 1, [k], [60, 't|attempts', 1, 't|bytes', 2048]), 1)
    assert.equal(await runScript<number>(redis, 'ledger_ip', 1, [k], [60, 't|attempts', 1, 't|bytes', 100]), 1)
    assert.deepEqual(await redis.hgetall(k), { 't|attempts': '2', 't|bytes': '2148' })
    const ttl = await redis.ttl(k)
    assert.ok(ttl > 0 && ttl <= 60, `lifetime set: ${ttl}`)
    await redis.del(k)
  })

  it('loads the script again after Redis forgot it (SCRIPT FLUSH on this test\'s own server or Cluster)', async function () {
    if (!r.server && !r.cluster) return this.skip() // REDIS_URL: a script cache other users share is not flushed
    const k = hourKey()
    await runScript(redis, 'ledger_ip', 1, [k], [60, 'f', 1])
    await Promise.all(serversOf(redis).map((s) => s.script('FLUSH')))
    assert.equal(await runScript<number>(redis, 'ledger_ip', 1, [k], [60, 'f', 1]), 1)
    assert.equal(await redis.hget(k, 'f'), '2')
    await redis.del(k)
  })

  it('an error reply of the script rejects with Redis\'s error, without a second run', async () => {
    const k = hourKey()
    await redis.set(k, 'a string, not a hash')
    await assert.rejects(runScript(redis, 'ledger_ip', 1, [k], [60, 'f', 1]), /WRONGTYPE/)
    assert.equal(await redis.get(k), 'a string, not a hash')
    await redis.del(k)
  })

  it('refuses a call with the wrong number of keys before sending anything', async () => {
    await assert.rejects(runScript(redis, 'ledger_ip', 2, ['a', 'b'], []), /ledger_ip: 2 keys given, SCRIPTS says 1/)
    await assert.rejects(runScript(redis, 'ledger_ip', 1, [], []), /ledger_ip: 0 keys passed, it takes 1/)
    await assert.rejects(runScript(redis, 'no_such_script', 1, ['a'], []), /no_such_script: 1 keys given, SCRIPTS says undefined/)
  })

  it('every listed script has its file', async () => {
    const { loadLua } = await import('../lib/lua')
    for (const name of Object.keys(SCRIPTS)) assert.ok(loadLua(name).length > 0, name)
  })

  it('on the auto-pipelining hot-path client, a script sent in the same tick as other commands answers normally', async () => {
    const hot = connectHotPath(r.url)
    try {
      await new Promise<void>((ok, fail) => { hot.once('ready', () => ok()); hot.once('error', fail) })
      const k = hourKey()
      // the crash of docs/benchmarks.md finding 1 came from exactly this: a command opens the tick's pipeline, a
      // script follows in the same tick (and again while that pipeline is in flight)
      const first = hot.hget(k, 'x')
      const runs = Array.from({ length: 20 }, (_, i) => runScript<number>(hot, 'ledger_ip', 1, [k], [60, `f${i % 2}`, 1]))
      const last = hot.hgetall(k)
      assert.equal(await first, null)
      assert.deepEqual(await Promise.all(runs), Array(20).fill(1))
      await last
      assert.deepEqual(await hot.hgetall(k), { f0: '10', f1: '10' })
      await hot.del(k)
    } finally {
      hot.disconnect()
    }
  })
})
