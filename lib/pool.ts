// The shared outbound IP pool: each IP with its HELO name (what its PTR says) and its state. State lives in Redis
// so every node sees a suspension at its next delivery.
import * as dns from 'node:dns'
import * as net from 'node:net'
import type { RedisClient as Redis } from './redis'
import { InputError, NotFoundError } from './errors'
import { keys } from './keys'
import { runScript } from './lua'
import { activeByOwner, slotAt, type RotationOptions } from './rotation'
import { checkNodeName } from './settings'
import { checkDomain } from './validate'

export type IpState = 'active' | 'suspended'

export interface PoolEntry {
  ip: string
  helo: string
  state: IpState
  /** Why it is suspended (operator's text, or the monitor's evidence). */
  reason?: string
  /** Who suspended it: 'operator' or 'monitor'. */
  suspended_by?: string
  /** When the state last changed. */
  since: string
  added_at: string
  /** The node that owns the IP (POSTA_NODE): only it binds the IP. None: a shared IP, bound by every node. */
  node?: string
}

export interface IpEvent {
  at: string
  event: 'added' | 'removed' | 'suspended' | 'reinstated' | 'listed' | 'cleared'
  by: string
  reason?: string
}

/** Canonical text of an IPv4 or IPv6 address (IPv6 compressed, lower case); InputError for anything else. */
export function normaliseIp(ip: string): string {
  const raw = String(ip).trim().replace(/^\[|\]$/g, '')
  if (net.isIPv4(raw)) return raw
  if (net.isIPv6(raw) && !raw.includes('%')) {
    // the WHATWG URL parser prints the canonical RFC 5952 form
    return new URL(`http://[${raw}]/`).hostname.slice(1, -1)
  }
  throw new InputError(`bad IP address "${ip}": expected IPv4 (203.0.113.7) or IPv6 (2001:db8::7)`)
}

export function ipFamily(ip: string): 4 | 6 {
  return net.isIPv6(ip) ? 6 : 4
}

/** Appends to an IP's timeline (kept for ever: it is the evidence of what happened). */
export async function recordIpEvent(redis: Redis, ip: string, e: IpEvent): Promise<void> {
  await redis.lpush(keys.ipHistory(ip), JSON.stringify(e))
}

export async function getPool(redis: Redis): Promise<PoolEntry[]> {
  const all = await redis.hgetall(keys.pool())
  return Object.values(all)
    .map((v) => JSON.parse(v) as PoolEntry)
    .sort((a, b) => (a.ip < b.ip ? -1 : 1))
}

/** The pool as last read, per client, with the version it was read at. */
const cachedPools = new WeakMap<object, { version: string | null; pool: PoolEntry[] }>()

/**
 * The pool as of now, for the delivery hot path: one small GET of the pool's version, and the whole pool re-read
 * only when some node changed it (a suspension is therefore seen at the very next delivery, on every node). Every
 * change of the pool (lib/pool.ts) increments the version; no version at all is a pool never written, kept as read
 * until the first change makes one.
 */
export async function getPoolFresh(redis: Redis): Promise<PoolEntry[]> {
  const version = await redis.get(keys.poolVersion())
  const cached = cachedPools.get(redis)
  if (cached && cached.version === version) return cached.pool
  const pool = await getPool(redis)
  cachedPools.set(redis, { version, pool })
  return pool
}

export async function getIp(redis: Redis, ip: string): Promise<PoolEntry> {
  const n = normaliseIp(ip)
  const v = await redis.hget(keys.pool(), n)
  if (!v) throw new NotFoundError(`${n} is not in the pool: see "posta ip list"`)
  return JSON.parse(v) as PoolEntry
}

/** Forward-confirmed reverse DNS of a pool IP: warnings, never a refusal (DNS may not be set up yet). */
export async function checkDns(ip: string, helo: string, resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 })): Promise<string[]> {
  const warnings: string[] = []
  try {
    const names = (await resolver.reverse(ip)).map((n) => n.toLowerCase().replace(/\.$/, ''))
    if (!names.includes(helo)) warnings.push(`the PTR of ${ip} is ${names.join(', ') || 'empty'}, not ${helo}: receivers check that they match`)
  } catch (err) {
    warnings.push(`no PTR record for ${ip} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): receivers expect one naming ${helo}`)
  }
  try {
    const addrs = ipFamily(ip) === 6 ? await resolver.resolve6(helo) : await resolver.resolve4(helo)
    if (!addrs.map((a) => (ipFamily(a) === 6 ? normaliseIp(a) : a)).includes(ip)) {
      warnings.push(`${helo} resolves to ${addrs.join(', ')}, not ${ip}: forward and reverse DNS do not match`)
    }
  } catch (err) {
    warnings.push(`${helo} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): forward and reverse DNS do not match`)
  }
  return warnings
}

/** The part of the pool a node binds: the IPs it owns and the shared ones (no owner). */
export function nodePool(pool: PoolEntry[], node: string): PoolEntry[] {
  return pool.filter((p) => p.node === undefined || p.node === node)
}

/** Adds an IP to the pool, owned by `node` (only that node binds it) or, without one, shared by every node. */
export async function addIp(redis: Redis, ip: string, helo: string, by = 'operator', node?: string): Promise<PoolEntry> {
  const n = normaliseIp(ip)
  const h = checkDomain(helo, 'HELO name')
  const owner = node === undefined ? undefined : checkNodeName(node, '--node')
  const now = new Date().toISOString()
  const entry: PoolEntry = { ip: n, helo: h, state: 'active', since: now, added_at: now, ...(owner ? { node: owner } : {}) }
  if (!(await runScript<number>(redis, 'pool_add', 2, [keys.pool(), keys.poolVersion()], [n, JSON.stringify(entry)]))) {
    throw new InputError(`${n} is already in the pool: "posta ip list" shows it`)
  }
  await recordIpEvent(redis, n, { at: now, event: 'added', by, reason: owner ? `helo ${h}, node ${owner}` : `helo ${h}` })
  return entry
}

export async function removeIp(redis: Redis, ip: string, by = 'operator'): Promise<void> {
  const n = normaliseIp(ip)
  if (!(await runScript<number>(redis, 'pool_remove', 2, [keys.pool(), keys.poolVersion()], [n]))) {
    throw new NotFoundError(`${n} is not in the pool: see "posta ip list"`)
  }
  await recordIpEvent(redis, n, { at: new Date().toISOString(), event: 'removed', by })
}

async function setState(redis: Redis, ip: string, state: IpState, by: string, reason?: string): Promise<PoolEntry> {
  const e = await getIp(redis, ip)
  const now = new Date().toISOString()
  const next: PoolEntry = {
    ...e, state, since: now, reason: state === 'suspended' ? reason : undefined, suspended_by: state === 'suspended' ? by : undefined,
  }
  await redis.multi().hset(keys.pool(), e.ip, JSON.stringify(next)).incr(keys.poolVersion()).exec()
  await recordIpEvent(redis, e.ip, { at: now, event: state === 'suspended' ? 'suspended' : 'reinstated', by, reason })
  return next
}

/** Takes an IP out of use at once, on every node (the next delivery reads the state). */
export async function suspendIp(redis: Redis, ip: string, reason: string, by = 'operator'): Promise<PoolEntry> {
  if (!reason || !reason.trim()) throw new InputError('a suspension needs a reason: --reason "<text>"')
  return setState(redis, ip, 'suspended', by, reason.trim())
}

export async function reinstateIp(redis: Redis, ip: string, by = 'operator'): Promise<PoolEntry> {
  const e = await getIp(redis, ip)
  if (e.state !== 'suspended') throw new InputError(`${e.ip} is not suspended`)
  return setState(redis, ip, 'active', by)
}

export async function ipHistory(redis: Redis, ip: string): Promise<IpEvent[]> {
  return (await redis.lrange(keys.ipHistory(normaliseIp(ip)), 0, -1)).map((v) => JSON.parse(v) as IpEvent)
}

export interface PoolView extends PoolEntry {
  /** In the current slot's active subset. */
  active: boolean
  /** Active in the slot and not suspended: deliveries may leave from it now. */
  usable: boolean
  last_use: string | null
}

export async function poolView(redis: Redis, o: RotationOptions, now = new Date()): Promise<PoolView[]> {
  const [pool, lastUse] = await Promise.all([getPool(redis), redis.hgetall(keys.poolLastUse())])
  const active = new Set(activeByOwner(pool, slotAt(now, o).number, o))
  return pool.map((p) => ({
    ...p,
    active: active.has(p.ip),
    usable: active.has(p.ip) && p.state === 'active',
    last_use: lastUse[p.ip] ? new Date(Number(lastUse[p.ip])).toISOString() : null,
  }))
}

/** A receiving MX address as Haraka tries it, with the pool IP (and its HELO) the delivery leaves from. */
export interface SourcedMx {
  exchange: string
  priority: number
  bind: string
  bind_helo: string
}

/**
 * The source of a delivery, per address family of the MX addresses: the message's sticky IP while it is usable for
 * its family, else the next usable IP of that family in turn (`turn` is the caller's round-robin counter). MX
 * addresses of a family with no usable IP are left out, so a dual-stack MX reachable only through a suspended family
 * is tried on the other one. Sorted by MX priority; ties keep their order.
 */
export function chooseSources<T extends { exchange: string; priority: number }>(
  mxs: T[], usable: PoolEntry[], sticky: string | null, turn: () => number,
): (T & SourcedMx)[] {
  const chosen = new Map<number, PoolEntry>()
  const stuck = usable.find((p) => p.ip === sticky)
  if (stuck) chosen.set(ipFamily(stuck.ip), stuck)
  for (const fam of [4, 6] as const) {
    if (chosen.has(fam) || !mxs.some((mx) => ipFamily(mx.exchange) === fam)) continue
    const candidates = usable.filter((p) => ipFamily(p.ip) === fam)
    if (candidates.length) chosen.set(fam, candidates[turn() % candidates.length])
  }
  return mxs
    .filter((mx) => chosen.has(ipFamily(mx.exchange)))
    .map((mx) => ({ ...mx, bind: chosen.get(ipFamily(mx.exchange))!.ip, bind_helo: chosen.get(ipFamily(mx.exchange))!.helo }))
    .sort((a, b) => a.priority - b.priority)
}

/**
 * The pool IP a delivery actually left from: the bind of the MX address that answered (`mxIp`, from Haraka's
 * delivered/deferred/bounce hooks), which on a dual-stack pool need not be the first one planned.
 */
export function sourceOf(list: SourcedMx[], mxIp: string | undefined): string | undefined {
  const ip = mxIp?.replace(/^\[|\]$/g, '').replace(/^::ffff:/, '')
  return (ip && list.find((mx) => mx.exchange === ip)?.bind) || undefined
}
