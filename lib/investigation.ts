// Investigations: for an IP and a time window, the tenants that sent through it, ranked by their share of its
// traffic, with the signals that tell a spammer from a bystander. Built from the delivery ledger's hourly
// aggregates (never by scanning messages); opened automatically when the monitor suspends an IP, or on demand.
import type { RedisClient as Redis } from './redis'
import { keys } from './keys'
import { ipTraffic } from './ledger'
import { suppressedCount } from './suppression'
import { trapHits } from './traps'

export interface TenantFinding {
  tenant: string
  /** Share of the IP's bytes in the window, percent. */
  share: number
  bytes: number
  /** Delivery attempts (one per recipient domain and try). */
  attempts: number
  delivered: number
  deferred: number
  bounced: number
  /** Permanent failures per attempt, percent. */
  bounce_rate: number
  /** Temporary refusals by receivers per attempt, percent. */
  refusal_rate: number
  /** Attempts that were the tenant's first ever to their domain, percent: list buyers mail new domains. */
  new_domain_share: number
  /** Spamtrap hits and suppressed addresses of the tenant, when the trap plugin keeps them. */
  trap_hits: number | null
  suppressed: number | null
}

export interface Investigation {
  id: string
  ip: string
  opened_at: string
  /** 'listing' (opened by the monitor) or 'operator'. */
  trigger: string
  since: string
  until: string
  evidence: unknown[]
  total_bytes: number
  tenants: TenantFinding[]
}

/** Extra per-tenant signals (spamtrap hits, suppressions); null when unavailable. */
export type TenantSignals = (redis: Redis, tenant: string) => Promise<{ trap_hits: number | null; suppressed: number | null }>

/** The signals the trap plugin keeps: a tenant's spamtrap hits and its suppressed recipients. */
export const trapSignals: TenantSignals = async (redis, tenant) => {
  const [trap_hits, suppressed] = await Promise.all([trapHits(redis, tenant), suppressedCount(redis, tenant)])
  return { trap_hits, suppressed }
}

const pct = (n: number, d: number) => (d > 0 ? Math.round((n / d) * 1000) / 10 : 0)

export async function investigate(
  redis: Redis, ip: string, since: Date, until: Date,
  opts: { trigger?: string; evidence?: unknown[]; signals?: TenantSignals; now?: Date } = {},
): Promise<Investigation> {
  const { tenants } = await ipTraffic(redis, ip, since, until)
  const total = tenants.reduce((n, t) => n + t.bytes, 0)
  const findings: TenantFinding[] = []
  for (const t of tenants) {
    const signals = t.tenant !== '-' ? await (opts.signals ?? trapSignals)(redis, t.tenant) : { trap_hits: null, suppressed: null }
    findings.push({
      tenant: t.tenant,
      share: pct(t.bytes, total),
      bytes: t.bytes,
      attempts: t.attempts,
      delivered: t.delivered,
      deferred: t.deferred,
      bounced: t.bounced,
      bounce_rate: pct(t.bounced, t.attempts),
      refusal_rate: pct(t.deferred, t.attempts),
      new_domain_share: pct(t.newdomains, t.attempts),
      ...signals,
    })
  }
  const at = opts.now ?? new Date()
  return {
    id: `${at.toISOString().replace(/[-:]/g, '').slice(0, 15)}-${ip.replace(/[.:]/g, '_')}`,
    ip,
    opened_at: at.toISOString(),
    trigger: opts.trigger ?? 'operator',
    since: since.toISOString(),
    until: until.toISOString(),
    evidence: opts.evidence ?? [],
    total_bytes: total,
    tenants: findings,
  }
}

/** Keeps an investigation (for `posta investigation list|show`). */
export async function saveInvestigation(redis: Redis, inv: Investigation): Promise<void> {
  await redis.multi().set(keys.investigation(inv.id), JSON.stringify(inv)).zadd(keys.investigations(), Date.parse(inv.opened_at), inv.id).exec()
}

export async function listInvestigations(redis: Redis, limit = 50): Promise<Investigation[]> {
  const ids = await redis.zrevrange(keys.investigations(), 0, limit - 1)
  if (!ids.length) return []
  const vals = await redis.mget(...ids.map((id) => keys.investigation(id)))
  return vals.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Investigation)
}

export async function getInvestigation(redis: Redis, id: string): Promise<Investigation | null> {
  const v = await redis.get(keys.investigation(id))
  return v ? (JSON.parse(v) as Investigation) : null
}
