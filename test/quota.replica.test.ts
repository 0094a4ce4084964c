// lib/quota.ts replicaConfirmer against real Redis: a Sentinel set (a master and a replica) confirms a commit; a
// single server (no replica), a Cluster, a replica that does not answer, a commit answered by another server and a
// check client that is not connected do not. lib/redis.ts isSentinelClient tells Sentinel clients from the others.
import { strict as assert } from 'node:assert'
import { once } from 'node:events'
import { commit, DEFAULT_QUOTA, replicaConfirmer, reservationFor } from '../lib/quota'
import { connectHotPath, isSentinelClient, type RedisClient } from '../lib/redis'
import { startTestSentinel, type TestSentinel } from '../testkit/cluster'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const O = { ...DEFAULT_QUOTA, timeZone: 'Europe/Rome' }
const NODE = 'replica-test'

async function ready(url: string): Promise<RedisClient> {
  const c = connectHotPath(url)
  c.on('error', () => {})
  await once(c, 'ready')
  return c
}

/** A commit of a fresh message on `hot`: the quota script needs no tenant record to count. */
async function commitOne(hot: RedisClient) {
  const r = reservationFor(O, uniqueName('t'), uniqueName('tx'), 100, 1)
  const c = await commit(hot, O, r)
  assert.equal(c.counted, true)
  return c
}

describe('quota commits confirmed by a replica (replicaConfirmer)', function () {
  this.timeout(90000)

  describe('a single server (no replica)', () => {
    let t: TestRedis
    let hot: RedisClient
    let own: RedisClient
    before(async () => {
      t = await testRedis()
      hot = await ready(t.url)
      own = await ready(t.url)
    })
    after(async () => {
      hot?.disconnect()
      own?.disconnect()
      await t?.close()
    })

    it('is not a Sentinel client', () => {
      assert.equal(isSentinelClient(hot), false)
    })

    it('never confirms: WAIT 1 answers 0 once its timeout has passed', async () => {
      const c = await commitOne(hot)
      assert.match(c.server ?? '', /^127\.0\.0\.1:\d+$/)
      const confirm = replicaConfirmer(own, NODE, 100)
      assert.deepEqual(await confirm(c), { confirmed: false, replicas: 0, why: 'no replica confirmed within 100 ms' })
    })

    it('a check client that is not connected does not confirm (and does not throw)', async () => {
      const gone = await ready(t.url)
      gone.disconnect()
      const c = await replicaConfirmer(gone, NODE, 100)(await commitOne(hot))
      assert.equal(c.confirmed, false)
      assert.match((c as { why: string }).why, /the check failed/)
    })
  })

  describe('a Redis Cluster (3 masters, no replica)', () => {
    let t: TestRedis
    before(async () => {
      t = await testRedis({ cluster: true })
    })
    after(async () => {
      await t?.close()
    })

    it('is not a Sentinel client, and its commits are not confirmed (posta-quota does not ask)', async () => {
      assert.equal(isSentinelClient(t.client), false)
      const c = await commitOne(t.client)
      assert.equal(c.server, undefined)
      assert.deepEqual(await replicaConfirmer(t.client, NODE, 100)(c), { confirmed: false, replicas: 0, why: 'the check failed: not connected' })
    })
  })

  describe('a Sentinel set (a master, a replica, three sentinels)', () => {
    let s: TestSentinel
    let hot: RedisClient
    let own: RedisClient
    before(async () => {
      s = await startTestSentinel()
      hot = await ready(s.url)
      own = await ready(s.url)
    })
    after(async () => {
      hot?.disconnect()
      own?.disconnect()
      await s?.close()
    })

    it('is a Sentinel client', () => {
      assert.equal(isSentinelClient(hot), true)
    })

    it('confirms a commit once the replica has it; many at once share the checks', async () => {
      const confirm = replicaConfirmer(own, NODE, 500)
      assert.deepEqual(await confirm(await commitOne(hot)), { confirmed: true, replicas: 1 })
      const commits = await Promise.all(Array.from({ length: 20 }, () => commitOne(hot)))
      const all = await Promise.all(commits.map((c) => confirm(c)))
      assert.deepEqual(all.filter((c) => !c.confirmed), [])
    })

    it('does not confirm a commit another server answered (one side followed a failover)', async () => {
      const c = await replicaConfirmer(own, NODE, 500)({ server: '127.0.0.1:1' })
      assert.equal(c.confirmed, false)
      assert.match((c as { why: string }).why, /answered by 127\.0\.0\.1:1, the check by 127\.0\.0\.1:\d+/)
    })

    it('does not confirm while the replica does not answer (frozen), and confirms again once it does', async () => {
      const replica = s.servers.find((n) => n.port !== s.masterPort())!
      const confirm = replicaConfirmer(own, NODE, 300)
      replica.process.kill('SIGSTOP')
      try {
        assert.deepEqual(await confirm(await commitOne(hot)), { confirmed: false, replicas: 0, why: 'no replica confirmed within 300 ms' })
      } finally {
        replica.process.kill('SIGCONT')
      }
      assert.deepEqual(await confirm(await commitOne(hot)), { confirmed: true, replicas: 1 })
    })
  })
})
