// One place that turns a REDIS_URL into an ioredis client, with the options each kind of caller needs.
import Redis, { type RedisOptions } from 'ioredis'
import { defineScripts } from './lua'

export type RedisClient = Redis

/** Parses `redis://`, `rediss://` and `unix:///path/to.sock` (or a bare socket path). */
export function redisOptionsFromUrl(url: string): RedisOptions {
  if (url.startsWith('unix://')) return { path: url.slice('unix://'.length) }
  if (url.startsWith('/')) return { path: url }
  const u = new URL(url)
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL=${url}: expected redis://host:port/db, rediss://... or unix:///path/to/redis.sock`)
  }
  const opts: RedisOptions = { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port || 6379) }
  if (u.password) opts.password = decodeURIComponent(u.password)
  if (u.username) opts.username = decodeURIComponent(u.username)
  const db = u.pathname.replace(/^\//, '')
  if (db) opts.db = Number(db)
  if (u.protocol === 'rediss:') opts.tls = {}
  return opts
}

/** Redacts the password from a Redis URL for logs and errors. */
export function describeRedisUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')
}

/**
 * A client for the SMTP hot path: commands fail at once while Redis is unreachable (no offline queue) and
 * time out quickly, so a hook answers 4xx instead of hanging the session. It reconnects on its own.
 */
export function connectHotPath(url: string, extra: RedisOptions = {}): Redis {
  return defineScripts(new Redis({
    ...redisOptionsFromUrl(url),
    enableOfflineQueue: false,
    commandTimeout: 500,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(100 * times, 1000),
    ...extra,
  }))
}

/** A client for the CLI and the panel: waits briefly for the connection, then gives a clear error. */
export function connectTool(url: string, extra: RedisOptions = {}): Redis {
  return defineScripts(new Redis({
    ...redisOptionsFromUrl(url),
    connectTimeout: 3000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
    lazyConnect: true,
    ...extra,
  }))
}
