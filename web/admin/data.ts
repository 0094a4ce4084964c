// What the operator area shows, read through the domain core (the same functions as the CLI) and shared by its pages
// and its JSON API: tenants with usage, one tenant in full, the pool with listings and today's rotation.
// Operators may see trap data (hit counts, typo-trap strikes); nothing here is ever served to a tenant.
import type { RedisClient as Redis } from '../../lib/redis'
import { listBans, bansOf, type Ban } from '../../lib/bans'
import { now } from '../../lib/clock'
import { recentAttempts, type Attempt } from '../../lib/ledger'
import { ipChecks, type StoredCheck } from '../../lib/monitor'
import { listPackages, type Package } from '../../lib/packages'
import { dayOf } from '../../lib/period'
import { poolView, type PoolView } from '../../lib/pool'
import { usage, usageSummaries, type QuotaOptions, type Usage } from '../../lib/quota'
import { daySchedule, publishedRotation, type OwnedIp, type RotationOptions } from '../../lib/rotation'
import type { Settings } from '../../lib/settings'
import { listSuppressed, type Suppressed } from '../../lib/suppression'
import { keys } from '../../lib/keys'
import { getTenants, loginFor, requireTenant, type Tenant } from '../../lib/tenants'
import { trapHitCounts } from '../../lib/traps'

/** How many tenants a list shows at most (the search narrows it). */
export const TENANT_LIST_MAX = 500

export interface TenantRow {
  tenant: string
  status: Tenant['status']
  package: string
  contact: string
  created_at: string
  used_bytes: number
  limit_bytes: number
  remaining_bytes: number
  percent: number
  messages: number
}

/** A search matches a slug or a contact address containing it, case ignored; an empty search matches all. */
export function matchesSearch(t: Tenant, q: string): boolean {
  const s = q.trim().toLowerCase()
  return !s || t.slug.includes(s) || t.contact.toLowerCase().includes(s)
}

/**
 * Tenants (by slug) matching a search, with this month's usage, at most TENANT_LIST_MAX: every tenant read at once
 * (lib/tenants getTenants) and the usage totals of the shown ones at once (lib/quota usageSummaries), not one usage()
 * per row: a fixed number of round trips however many tenants there are.
 */
export async function tenantRows(redis: Redis, quota: QuotaOptions, q = ''): Promise<{ rows: TenantRow[]; more: boolean }> {
  const slugs = (await redis.smembers(keys.tenants())).sort()
  const all = (await getTenants(redis, slugs)).filter((t) => matchesSearch(t, q))
  const shown = all.slice(0, TENANT_LIST_MAX)
  const usages = await usageSummaries(redis, quota, shown.map((t) => t.slug), now())
  const rows = shown.map((t, i) => {
    const u = usages[i]
    return {
      tenant: t.slug, status: t.status, package: t.package, contact: t.contact, created_at: t.created_at,
      used_bytes: u.used_bytes, limit_bytes: u.limit_bytes, remaining_bytes: u.remaining_bytes, percent: u.percent, messages: u.messages,
    }
  })
  return { rows, more: all.length > shown.length }
}

export interface TenantDetail {
  tenant: Tenant & { logins_full: string[] }
  usage: Usage
  recent: Attempt[]
  trap_hits: Awaited<ReturnType<typeof trapHitCounts>>
  suppressions: Suppressed[]
  bans: Ban[]
  packages: Package[]
}

/** How many recent attempts and suppressions one tenant's page lists. */
export const RECENT_MAX = 50
export const SUPPRESSED_MAX = 200

export async function tenantDetail(redis: Redis, quota: QuotaOptions, settings: Settings, slug: string): Promise<TenantDetail> {
  const t = await requireTenant(redis, slug)
  const [u, recent, traps, suppressed, bans, packages] = await Promise.all([
    usage(redis, quota, slug, now()),
    recentAttempts(redis, slug, RECENT_MAX),
    trapHitCounts(redis, slug),
    listSuppressed(redis, slug),
    bansOf(redis, slug),
    listPackages(redis),
  ])
  return {
    tenant: { ...t, logins_full: t.logins.map((l) => loginFor(l, slug, settings)) },
    usage: u,
    recent,
    trap_hits: traps,
    suppressions: suppressed.slice(0, SUPPRESSED_MAX),
    bans,
    packages,
  }
}

export interface PoolRow extends PoolView {
  /** The zones the monitor last saw the IP listed on. */
  listings: (StoredCheck & { zone: string })[]
}

export async function poolRows(redis: Redis, timeZone: string): Promise<{ rotation: RotationOptions; pool: PoolRow[] }> {
  const rotation = await publishedRotation(redis, timeZone)
  const pool = await poolView(redis, rotation, now())
  const checks = await ipChecks(redis, pool.map((p) => p.ip))
  return {
    rotation,
    pool: pool.map((p) => ({
      ...p,
      listings: Object.entries(checks[p.ip] ?? {}).filter(([, c]) => c.state === 'LISTED').map(([zone, c]) => ({ zone, ...c })),
    })),
  }
}

/** Today's rotation (in the service time zone): each slot with its active IPs (by owner group), and which slot is now. */
export function todaysRotation(pool: readonly OwnedIp[], rotation: RotationOptions) {
  const at = now()
  const day = dayOf(at, rotation.timeZone)
  return { day, slots: daySchedule(pool, day, rotation).map((s) => ({ ...s, current: s.slot.start <= at && at < s.slot.end })) }
}

/** The ban ledger, newest first. */
export async function bansNewestFirst(redis: Redis): Promise<Ban[]> {
  return (await listBans(redis)).reverse()
}
