// REDIS_URL forms (lib/redis.ts): each is parsed into the ioredis options of its topology (credentials decoded, default
// ports, IPv6 in brackets); the clients built from them are of the right kind and never connect before asked to.
import { strict as assert } from 'node:assert'
import { Cluster } from 'ioredis'
import { connectHotPath, connectTool, describeRedisUrl, parseRedisUrl, redisOptionsFromUrl } from '../lib/redis'
import { waitFor } from '../service/redis-server'
import { startTestCluster, type TestCluster } from '../testkit/cluster'

describe('redis: REDIS_URL forms', () => {
  it('a single server: redis://, rediss://, unix:// and a bare socket path', () => {
    assert.deepEqual(parseRedisUrl('redis://u%40x:p%3Aw@10.0.0.1:6380/2'), { kind: 'server', options: { host: '10.0.0.1', port: 6380, username: 'u@x', password: 'p:w', db: 2 } })
    assert.deepEqual(parseRedisUrl('rediss://[::1]'), { kind: 'server', options: { host: '::1', port: 6379, tls: {} } })
    assert.deepEqual(parseRedisUrl('redis://:only-pass@h:1'), { kind: 'server', options: { host: 'h', port: 1, password: 'only-pass' } })
    assert.deepEqual(parseRedisUrl('unix:///run/redis.sock'), { kind: 'server', options: { path: '/run/redis.sock' } })
    assert.deepEqual(parseRedisUrl('/run/redis.sock'), { kind: 'server', options: { path: '/run/redis.sock' } })
  })

  it('a Sentinel set: the sentinels (default port 26379), the master name, the credentials of the data nodes, a database', () => {
    assert.deepEqual(parseRedisUrl('redis+sentinel://app:s%2Fcret@10.0.0.1:26380,[fd00::2],sentinel-3/posta%20main/3'), {
      kind: 'sentinel',
      options: {
        username: 'app', password: 's/cret', name: 'posta main', db: 3,
        sentinels: [{ host: '10.0.0.1', port: 26380 }, { host: 'fd00::2', port: 26379 }, { host: 'sentinel-3', port: 26379 }],
      },
    })
    assert.deepEqual(parseRedisUrl('redis+sentinel://10.0.0.1:26379/mymaster/'), { kind: 'sentinel', options: { name: 'mymaster', sentinels: [{ host: '10.0.0.1', port: 26379 }] } })
  })

  it('a Cluster: the seed nodes (default port 6379) and the credentials', () => {
    assert.deepEqual(parseRedisUrl('redis+cluster://:pw@10.0.0.1:7000, 10.0.0.2:7001,10.0.0.3'), {
      kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: '10.0.0.3', port: 6379 }], options: { password: 'pw' },
    })
    assert.deepEqual(parseRedisUrl('redis+cluster://127.0.0.1:7000/'), { kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }], options: {} })
  })

  it('redisOptionsFromUrl takes only a single server', () => {
    assert.deepEqual(redisOptionsFromUrl('redis://h:7/1'), { host: 'h', port: 7, db: 1 })
    assert.throws(() => redisOptionsFromUrl('redis+cluster://u:hunter2@h:7'), (e: Error) => /a single server was expected here, not a cluster/.test(e.message) && !e.message.includes('hunter2'))
  })

  it('the password is redacted in every form', () => {
    assert.equal(describeRedisUrl('redis+sentinel://app:hunter2@h:26379,g:26379/m'), 'redis+sentinel://app:***@h:26379,g:26379/m')
    assert.equal(describeRedisUrl('redis+cluster://:hunter2@h:7000'), 'redis+cluster://:***@h:7000')
  })

  it('the clients: a Cluster for redis+cluster://, a Sentinel-backed client with fail-fast options on the hot path', () => {
    const cluster = connectTool('redis+cluster://127.0.0.1:1')
    const sentinel = connectHotPath('redis+sentinel://127.0.0.1:1/mymaster', { lazyConnect: true })
    try {
      assert.ok(cluster instanceof Cluster)
      assert.equal(cluster.status, 'wait', 'a tool client connects only when asked')
      assert.equal(cluster.options.redisOptions?.commandTimeout, 5000)
      assert.ok(!(sentinel instanceof Cluster))
      const o = sentinel.options
      assert.deepEqual([o.name, o.role, o.enableOfflineQueue, o.commandTimeout, o.failoverDetector], ['mymaster', 'master', false, 500, true])
      // scripts run as plain EVALSHA (lib/lua.ts): no custom command for each pipeline to copy
      assert.deepEqual([Object.keys(sentinel.scriptsSet), Object.keys(cluster.scriptsSet)], [[], []])
    } finally {
      cluster.disconnect()
      sentinel.disconnect()
    }
  })
})

describe('redis: the hot-path client on a real 3-master Cluster', function () {
  this.timeout(60000)
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster()
  })
  after(async () => {
    await cluster?.close()
  })

  const masters = (c: Cluster) => c.nodes('master').map((n) => n.status)
  const allReady = (c: Cluster) => async () => masters(c).length === 3 && masters(c).every((s) => s === 'ready')

  // ioredis connects to a Cluster node only when a command is first sent there, and that command's 500 ms timeout
  // ran during the connect: the first AUTH of a busy Haraka process got a 454 now and then (issue 13).
  it('connects to every master before any command is sent, and again to a node whose connection was lost', async () => {
    const hot = connectHotPath(cluster.url) as Cluster
    const tool = connectTool(cluster.url) as Cluster
    hot.on('error', () => {})
    tool.on('error', () => {})
    try {
      assert.ok(hot instanceof Cluster)
      await waitFor(allReady(hot), 'the hot-path client to connect to the three masters')
      await tool.connect()
      assert.ok(masters(tool).includes('wait'), 'a tool client still connects to a node on first use (the test can tell)')
      // a node connection lost: the next command is redirected (MOVED) and the node, added again, connected at once
      hot.nodes('master')[0].disconnect()
      await waitFor(async () => hot.nodes('master').length === 2, 'the lost node to leave the pool')
      // one key at a time, in slot after slot, until one is the lost node's: its MOVED reply makes the client
      // read the slots again, which adds the node back
      for (let i = 0; i < 64 && hot.nodes('master').length < 3; i++) await hot.set(`posta:test:{${i}}`, '1').catch(() => null)
      await waitFor(allReady(hot), 'the lost node to be connected again')
    } finally {
      hot.disconnect()
      tool.disconnect()
    }
  })
})
