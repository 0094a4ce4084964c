// Static outbound routes, consulted before MX lookup (as Postfix transport maps).
// `example.net` matches that domain only; `.example.net` matches its subdomains too (and the domain itself).
import type { RedisClient as Redis } from './redis'
import { NotFoundError } from './errors'
import { keys } from './keys'
import { checkDomain, parseRouteTarget } from './validate'

export interface Route {
  domain: string
  host: string
  port: number
}

function normaliseRouteDomain(domain: string): string {
  const wildcard = String(domain).startsWith('.')
  const d = checkDomain(wildcard ? domain.slice(1) : domain, 'route domain')
  return wildcard ? `.${d}` : d
}

function formatTarget(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

export async function setRoute(redis: Redis, domain: string, target: string): Promise<Route> {
  const d = normaliseRouteDomain(domain)
  const { host, port } = parseRouteTarget(target)
  await redis.hset(keys.routes(), d, formatTarget(host, port))
  return { domain: d, host, port }
}

export async function deleteRoute(redis: Redis, domain: string): Promise<void> {
  const d = normaliseRouteDomain(domain)
  if ((await redis.hdel(keys.routes(), d)) === 0) throw new NotFoundError(`no route for "${d}": see "posta route list"`)
}

export async function listRoutes(redis: Redis): Promise<Route[]> {
  const all = await redis.hgetall(keys.routes())
  return Object.entries(all)
    .map(([domain, t]) => ({ domain, ...parseRouteTarget(t) }))
    .sort((a, b) => a.domain.replace(/^\./, '').localeCompare(b.domain.replace(/^\./, '')) || a.domain.localeCompare(b.domain))
}

/** The route for a destination domain, most specific first: exact, then `.domain`, then `.parent` up the tree. */
export async function findRoute(redis: Redis, domain: string): Promise<Route | null> {
  const d = domain.toLowerCase().replace(/\.$/, '')
  const labels = d.split('.')
  const candidates = [d]
  for (let i = 0; i < labels.length - 1; i++) candidates.push(`.${labels.slice(i).join('.')}`)
  const found = await redis.hmget(keys.routes(), ...candidates)
  const i = found.findIndex((v) => v !== null)
  if (i < 0) return null
  return { domain: candidates[i], ...parseRouteTarget(found[i]!) }
}
