// One place that turns a REDIS_URL into an ioredis client, with the options each kind of caller needs.
// A single server (redis://, rediss://, unix://), a Sentinel set (redis+sentinel://) or a Cluster (redis+cluster://).
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis'

/** What code that talks to Redis takes: a single server's (or Sentinel's) client, or a Cluster's. */
export type RedisClient = Redis | Cluster

export interface HostPort {
  host: string
  port: number
}

/** Where a REDIS_URL points: one server (or a Sentinel-watched master), or the seed nodes of a Cluster. */
export type RedisTarget =
  | { kind: 'server'; options: RedisOptions }
  | { kind: 'sentinel'; options: RedisOptions & { sentinels: HostPort[]; name: string } }
  | { kind: 'cluster'; nodes: HostPort[]; options: RedisOptions }

export const REDIS_URL_FORMS =
  'redis://[user:pass@]host:port[/db], rediss://..., unix:///path/to/redis.sock, ' +
  'redis+sentinel://[user:pass@]host:port[,host:port...]/<master name>[/db] or redis+cluster://[user:pass@]host:port[,host:port...]'

/** A REDIS_URL that cannot be used; the message never contains the password. */
export class RedisUrlError extends Error {}

/** `host:port`, `[v6]:port` or `host` (the default port), as listed in a Sentinel or Cluster URL. */
function hostPort(raw: string, defaultPort: number, url: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(raw)
  const port = m?.[3] === undefined ? defaultPort : Number(m[3])
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: "${raw}" is not host:port (an IPv6 address goes in brackets: [::1]:${defaultPort})`)
  }
  return { host: m[1] ?? m[2], port }
}

function credentials(userinfo: string | undefined): RedisOptions {
  if (!userinfo) return {}
  const i = userinfo.indexOf(':')
  const [user, pass] = i < 0 ? [userinfo, ''] : [userinfo.slice(0, i), userinfo.slice(i + 1)]
  const o: RedisOptions = {}
  if (user) o.username = decodeURIComponent(user)
  if (pass) o.password = decodeURIComponent(pass)
  return o
}

function database(raw: string, url: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: the database "${raw}" is not a number (0, 1, ...)`)
  return Number(raw)
}

/** Parses a REDIS_URL (every form in REDIS_URL_FORMS, or a bare socket path); one clear RedisUrlError for a bad one. */
export function parseRedisUrl(url: string): RedisTarget {
  if (url.startsWith('unix://') || url.startsWith('/')) {
    const path = url.startsWith('/') ? url : url.slice('unix://'.length)
    if (!path) throw new RedisUrlError(`REDIS_URL=${url}: the socket path is missing (unix:///path/to/redis.sock)`)
    return { kind: 'server', options: { path } }
  }
  const multi = /^redis\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?$/.exec(url)
  if (multi) {
    const [, kind, userinfo, hostList, rawPath = ''] = multi
    const defaultPort = kind === 'sentinel' ? 26379 : 6379
    if (!hostList) throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: no host:port listed`)
    const hosts = hostList.split(',').map((h) => hostPort(h.trim(), defaultPort, url))
    const parts = rawPath.split('/').filter(Boolean)
    if (kind === 'cluster') {
      if (parts.length) throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: a Redis Cluster has only database 0, so the URL takes no /path`)
      return { kind: 'cluster', nodes: hosts, options: credentials(userinfo) }
    }
    if (parts.length < 1 || parts.length > 2) {
      throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: expected the master's name after the hosts, and an optional database: redis+sentinel://host:26379/mymaster[/db]`)
    }
    const options: RedisOptions & { sentinels: HostPort[]; name: string } = { ...credentials(userinfo), sentinels: hosts, name: decodeURIComponent(parts[0]) }
    if (parts[1] !== undefined) options.db = database(parts[1], url)
    return { kind: 'sentinel', options }
  }
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: not a URL; expected ${REDIS_URL_FORMS}`)
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: expected ${REDIS_URL_FORMS}`)
  const port = Number(u.port || 6379)
  if (!(port >= 1 && port <= 65535)) throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: the port is not 1-65535`)
  const opts: RedisOptions = { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port, ...credentials(u.username + (u.password ? `:${u.password}` : '')) }
  const db = u.pathname.replace(/^\//, '')
  if (db) opts.db = database(db, url)
  if (u.protocol === 'rediss:') opts.tls = {}
  return { kind: 'server', options: opts }
}

/** The options of a single-server REDIS_URL (redis://, rediss://, unix://); throws for Sentinel and Cluster URLs. */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const t = parseRedisUrl(url)
  if (t.kind !== 'server') throw new RedisUrlError(`REDIS_URL=${describeRedisUrl(url)}: a single server was expected here, not a ${t.kind}`)
  return t.options
}

/**
 * Whether a client talks to the master a Sentinel set names (redis+sentinel://). Only there can a write be confirmed
 * by a replica (WAIT): a single server has none, and a Cluster's client spreads a caller's commands over its nodes.
 */
export function isSentinelClient(client: RedisClient): boolean {
  return !(client instanceof Cluster) && (client.options.sentinels?.length ?? 0) > 0
}

/** Redacts the password from a Redis URL for logs and errors. */
export function describeRedisUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')
}

/** The options of a Cluster client: `extra`'s connection-level options go to each node, the rest to the Cluster. */
function clusterOptions(base: RedisOptions, extra: RedisOptions, cluster: ClusterOptions): ClusterOptions {
  const { retryStrategy, lazyConnect, enableOfflineQueue, enableAutoPipelining, ...node } = extra
  const out: ClusterOptions = { ...cluster, redisOptions: { ...base, ...cluster.redisOptions, ...node } }
  if (retryStrategy !== undefined) out.clusterRetryStrategy = retryStrategy
  if (lazyConnect !== undefined) out.lazyConnect = lazyConnect
  if (enableOfflineQueue !== undefined) out.enableOfflineQueue = enableOfflineQueue
  if (enableAutoPipelining !== undefined) out.enableAutoPipelining = enableAutoPipelining
  return out
}

/** A READONLY reply means a Sentinel failover demoted the server we talk to: reconnect (Sentinel names the new master). */
const reconnectOnReadonly = (err: Error) => err.message.startsWith('READONLY')

/**
 * ioredis opens a Cluster's connection to a node only when a command is first sent there, and that command's
 * timeout runs during the connect, the ready check and, for a script, EVALSHA, NOSCRIPT and EVAL. On the hot path
 * (500 ms, an event loop busy with TLS handshakes) the first AUTH of a Haraka process then timed out now and then (a
 * `454`). Connect each node as soon as the client learns of it (at start, and after a slot move or a failover adds one).
 */
function connectEveryNode(cluster: Cluster): Cluster {
  cluster.on('+node', (node: Redis) => {
    if (node.status === 'wait') node.connect().catch(() => {}) // a failure is the node's 'error', seen by the Cluster
  })
  return cluster
}

function connect(url: string, single: RedisOptions, cluster: ClusterOptions, extra: RedisOptions, eagerNodes = false): RedisClient {
  const t = parseRedisUrl(url)
  if (t.kind === 'cluster') {
    const c = new Cluster(t.nodes, clusterOptions(t.options, extra, cluster))
    return eagerNodes ? connectEveryNode(c) : c
  }
  const sentinel: RedisOptions = t.kind === 'sentinel' ? { role: 'master', failoverDetector: true, reconnectOnError: reconnectOnReadonly } : {}
  return new Redis({ ...t.options, ...sentinel, ...single, ...extra })
}

/**
 * A client for the SMTP hot path: commands fail at once while Redis is unreachable (no offline queue) and
 * time out quickly, so a hook answers 4xx instead of hanging the session. It reconnects on its own; on a Sentinel
 * set it follows a failover to the new master, on a Cluster it follows slot moves and replica promotions.
 */
export function connectHotPath(url: string, extra: RedisOptions = {}): RedisClient {
  const node: RedisOptions = { commandTimeout: 500, maxRetriesPerRequest: 1, connectTimeout: 2000 }
  const retryStrategy = (times: number) => Math.min(100 * times, 1000)
  return connect(
    url,
    { ...node, enableOfflineQueue: false, enableAutoPipelining: true, retryStrategy },
    { enableOfflineQueue: false, enableAutoPipelining: true, clusterRetryStrategy: retryStrategy, retryDelayOnFailover: 100, retryDelayOnClusterDown: 100, slotsRefreshTimeout: 2000, redisOptions: node },
    extra,
    true,
  )
}

/** A client for the CLI and the panel: waits briefly for the connection, then gives a clear error. */
export function connectTool(url: string, extra: RedisOptions = {}): RedisClient {
  const node: RedisOptions = { connectTimeout: 3000, commandTimeout: 5000, maxRetriesPerRequest: 1 }
  const retryStrategy = (times: number) => (times > 3 ? null : 200 * times)
  return connect(
    url,
    { ...node, retryStrategy, lazyConnect: true },
    { clusterRetryStrategy: retryStrategy, lazyConnect: true, slotsRefreshTimeout: 3000, redisOptions: node },
    extra,
  )
}
