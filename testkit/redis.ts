// The Redis a test file (or benchmark) uses: REDIS_URL when set (never flushed: tests use fresh tenants),
// otherwise a private redis-server on a free port that is stopped afterwards; with POSTA_TEST_REDIS=cluster a private
// 3-master Redis Cluster instead (testkit/cluster.ts), to run a test file against a Cluster.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Cluster } from 'ioredis'
import type { RedisClient as Redis } from '../lib/redis'
import { connectTool } from '../lib/redis'
import { freePort, startRedisServer, type RedisServer } from '../service/redis-server'
import { startTestCluster, type TestCluster } from './cluster'

export interface TestRedis {
  url: string
  client: Redis
  /** The private server, when this test started one (null with REDIS_URL and with POSTA_TEST_REDIS=cluster). */
  server: RedisServer | null
  /** The private Redis Cluster, when this one is (POSTA_TEST_REDIS=cluster or the `cluster` option), else null. */
  cluster: TestCluster | null
  /** Stops the private server, or every node of the private Cluster (to test Redis outages); no-op with REDIS_URL. */
  stop(): Promise<void>
  /** Starts the private server (or the Cluster's nodes) again on the same ports. */
  restart(): Promise<void>
  /** Freezes the private server (SIGSTOP: connections stay open, nothing is answered) until thaw(); not the Cluster. */
  freeze(): void
  thaw(): void
  close(): Promise<void>
}

export interface TestRedisOptions {
  /** Keep the data across stop() and restart() (append-only file), for outage tests under load. */
  persistent?: boolean
  /** A private 3-master Redis Cluster, as POSTA_TEST_REDIS=cluster gives (a benchmark's Cluster configuration). */
  cluster?: boolean
}

export async function testRedis(opts: TestRedisOptions = {}): Promise<TestRedis> {
  let server: RedisServer | null = null
  let url = process.env.REDIS_URL ?? ''
  let port = 0
  let dir = ''
  let cluster: TestCluster | null = null
  if (!url && (opts.cluster || process.env.POSTA_TEST_REDIS === 'cluster')) {
    cluster = await startTestCluster(3, { persistent: opts.persistent })
    url = cluster.url
  } else if (!url) {
    port = await freePort()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-redis-'))
    server = await startRedisServer({ dir, port, persistent: opts.persistent })
    url = server.url
  }
  const client = connectTool(url, { retryStrategy: (n) => Math.min(n * 100, 500), maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  await client.connect()
  const t: TestRedis = {
    url,
    client,
    server,
    cluster,
    async stop() {
      await t.server?.stop()
      await cluster?.stop()
    },
    async restart() {
      if (cluster) return cluster.restart()
      if (!dir) return
      t.server = await startRedisServer({ dir, port, persistent: opts.persistent })
    },
    freeze() {
      t.server?.process.kill('SIGSTOP')
    },
    thaw() {
      t.server?.process.kill('SIGCONT')
    },
    async close() {
      t.thaw()
      client.disconnect()
      await t.server?.stop()
      await cluster?.close()
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
    },
  }
  return t
}

/**
 * Every key matching a SCAN pattern. On a Cluster a SCAN (or KEYS) sees one node only: each master is scanned.
 */
export async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const found = new Set<string>()
  for (const server of serversOf(client)) {
    let cursor = '0'
    do {
      const [next, batch] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      for (const k of batch) found.add(k)
      cursor = next
    } while (cursor !== '0')
  }
  return [...found]
}

/** The servers behind a client: itself, or every master of a Cluster (INFO, SCRIPT, SAVE answer for one node). */
export function serversOf(client: Redis): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client]
}

/** SAVE on the server, or on every master of a Cluster (a restart then finds the data without an append-only file). */
export async function saveAll(client: Redis): Promise<void> {
  await Promise.all(serversOf(client).map((server) => server.save()))
}

/** Deletes keys one command each (a DEL of several keys is refused on a Cluster when their slots differ). */
export async function delKeys(client: Redis, keys: string[]): Promise<void> {
  await Promise.all(keys.map((k) => client.del(k)))
}

/** A name no other test run uses, for tenants and packages in a shared Redis. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 60)
}

/**
 * One Redis for the tests of a describe() block: started before them, closed after them. Its client is available
 * to tests (not at definition time) as `db.client`.
 */
export function useTestRedis(): { readonly client: Redis; readonly redis: TestRedis } {
  let r: TestRedis | null = null
  before(async () => {
    r = await testRedis()
  })
  after(async () => {
    await r?.close()
  })
  return {
    get client() {
      if (!r) throw new Error('useTestRedis: the Redis starts in a before() hook; use db.client inside tests')
      return r.client
    },
    get redis() {
      if (!r) throw new Error('useTestRedis: the Redis starts in a before() hook')
      return r
    },
  }
}
