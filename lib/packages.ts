import type { RedisClient as Redis } from './redis'
import { NotFoundError } from './errors'
import { keys } from './keys'
import { runScript } from './lua'
import { checkPackageName } from './validate'

export interface Package {
  name: string
  traffic_bytes: number
  created_at: string
  updated_at: string
}

function fromHash(h: Record<string, string>): Package | null {
  if (!h || !h.name) return null
  return { name: h.name, traffic_bytes: Number(h.traffic_bytes), created_at: h.created_at, updated_at: h.updated_at }
}

/** Creates or updates a package; a change of allowance applies to every tenant on it at once. */
export async function setPackage(redis: Redis, name: string, trafficBytes: number): Promise<Package> {
  checkPackageName(name)
  if (!Number.isSafeInteger(trafficBytes) || trafficBytes <= 0) throw new Error(`bad traffic ${trafficBytes}`)
  const now = new Date().toISOString()
  await redis
    .multi()
    .hsetnx(keys.package(name), 'created_at', now)
    .hset(keys.package(name), { name, traffic_bytes: String(trafficBytes), updated_at: now })
    .sadd(keys.packages(), name)
    .exec()
  await syncAllowance(redis, name, trafficBytes)
  return (await getPackage(redis, name))!
}

/**
 * Each tenant keeps a copy of its package's allowance (the quota script reads only the tenant's own keys): brings the
 * copies of this package's tenants to `bytes`, each only while that tenant is still on the package (a script), and
 * again while the package's allowance changed meanwhile (a concurrent `package set`), so that every tenant ends with
 * the allowance of the package it is on.
 */
export async function syncAllowance(redis: Redis, name: string, bytes: number): Promise<void> {
  for (let applied = bytes; ;) {
    for (const slug of await redis.smembers(keys.tenants())) {
      await runScript<number>(redis, 'tenant_allowance', 1, [keys.tenant(slug)], [name, String(applied)])
    }
    const now = Number(await redis.hget(keys.package(name), 'traffic_bytes'))
    if (now === applied || !Number.isSafeInteger(now)) return
    applied = now
  }
}

/**
 * After a tenant was put on a package with the allowance `applied` (tenant create, package change): while the
 * package's allowance differs (a "package set" meanwhile, which may have missed this tenant), takes the current one.
 */
export async function followAllowance(redis: Redis, slug: string, name: string, applied: number): Promise<void> {
  for (;;) {
    const now = Number(await redis.hget(keys.package(name), 'traffic_bytes'))
    if (now === applied || !Number.isSafeInteger(now)) return
    await runScript<number>(redis, 'tenant_allowance', 1, [keys.tenant(slug)], [name, String(now)])
    applied = now
  }
}

export async function getPackage(redis: Redis, name: string): Promise<Package | null> {
  return fromHash(await redis.hgetall(keys.package(name)))
}

export async function requirePackage(redis: Redis, name: string): Promise<Package> {
  checkPackageName(name)
  const p = await getPackage(redis, name)
  if (!p) throw new NotFoundError(`unknown package "${name}": create it with "posta package set ${name} --traffic <size>"`)
  return p
}

export async function listPackages(redis: Redis): Promise<Package[]> {
  const names = (await redis.smembers(keys.packages())).sort()
  const pipe = redis.pipeline()
  for (const n of names) pipe.hgetall(keys.package(n))
  const res = (await pipe.exec()) ?? []
  return res.map(([, h]) => fromHash(h as Record<string, string>)).filter((p): p is Package => p !== null)
}
