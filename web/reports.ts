// What the dashboard, the messages page and the API show of one tenant, read through the domain core from
// pre-aggregated counters and bounded lists only (lib/quota usage: one month hash and one hash per day;
// lib/ledger recentAttempts: the bounded recent list; lib/suppression listSuppressed: the bounded suppression set).
import { recentAttempts, type Attempt, type DeliveryResult } from '../lib/ledger'
import { DEFAULT_LEDGER } from '../lib/ledger'
import { usage, type Usage } from '../lib/quota'
import { listSuppressed, type Suppressed } from '../lib/suppression'
import type { PanelConfig } from './context'

/** The API's usage object: lib/quota.ts Usage's figures, plus the month's recipients. */
export type UsageReport = Pick<Usage, 'tenant' | 'month' | 'used_bytes' | 'limit_bytes' | 'remaining_bytes' | 'percent' | 'messages' | 'delivered' | 'deferred' | 'bounced' | 'resets_at' | 'days'> & {
  recipients: number
}

export type FullUsageReport = UsageReport & { package: string; package_bytes: number; topup_bytes: number }

/**
 * One tenant's usage report, kept for PanelConfig.usageCacheMs (default 1 s) per tenant in this process, and one
 * read in flight per tenant however many requests ask at once: the dashboard and GET /api/v1/usage show counters,
 * and a second-old figure is as good for display. Only the panel reads through this cache: the SMTP path (quota
 * reserve and commit, lib/quota.ts) always reads Redis. The same object is returned while it is fresh (the
 * dashboard keys its rendered figures by it). `now` given: no cache (a test's or a caller's own instant).
 */
export function usageReport(cfg: PanelConfig, tenant: string, now?: Date): Promise<FullUsageReport> {
  if (now || cfg.usageCacheMs <= 0) return readUsageReport(cfg, tenant, now ?? new Date())
  const cache = cacheOf(cfg)
  const at = Date.now()
  const hit = cache.get(tenant)
  if (hit && at < hit.until) return hit.report
  if (cache.size >= USAGE_CACHE_MAX) {
    for (const [k, v] of cache) if (at >= v.until) cache.delete(k)
    if (cache.size >= USAGE_CACHE_MAX) cache.clear()
  }
  // the entry counts from when its read started: never older than usageCacheMs when served
  const report = readUsageReport(cfg, tenant, new Date(at))
  const entry = { until: at + cfg.usageCacheMs, report }
  cache.set(tenant, entry)
  // a failed read is not kept: the next request reads again
  report.catch(() => cache.get(tenant) === entry && cache.delete(tenant))
  return report
}

/** Tenants whose usage one panel process keeps at most (entries live usageCacheMs; past this, expired ones go). */
const USAGE_CACHE_MAX = 10_000
const caches = new WeakMap<PanelConfig, Map<string, { until: number; report: Promise<FullUsageReport> }>>()
function cacheOf(cfg: PanelConfig) {
  let c = caches.get(cfg)
  if (!c) caches.set(cfg, (c = new Map()))
  return c
}

async function readUsageReport(cfg: PanelConfig, tenant: string, now: Date): Promise<FullUsageReport> {
  const u = await usage(cfg.redis, cfg.quota, tenant, now)
  return {
    tenant: u.tenant,
    month: u.month,
    used_bytes: u.used_bytes,
    limit_bytes: u.limit_bytes,
    remaining_bytes: u.remaining_bytes,
    percent: u.percent,
    messages: u.messages,
    recipients: u.days.reduce((n, d) => n + d.recipients, 0),
    delivered: u.delivered,
    deferred: u.deferred,
    bounced: u.bounced,
    resets_at: u.resets_at,
    days: u.days,
    package: u.package,
    package_bytes: u.package_bytes,
    topup_bytes: u.topup_bytes,
  }
}

export const STATUSES: DeliveryResult[] = ['delivered', 'deferred', 'bounced']
/** The most attempts one request returns: the ledger keeps no more (posta-outbound.ini recent_max, default). */
export const MESSAGES_MAX = DEFAULT_LEDGER.recentMax
export const MESSAGES_DEFAULT = 50

export interface AttemptView {
  at: string
  tx: string
  recipients: string[]
  domain: string
  status: DeliveryResult
  code: string
  /** The remote server's reply, for deferred and bounced attempts (null for delivered ones). */
  response: string | null
  size: number
  kind: 'message' | 'dsn' | 'notice'
}

function view(a: Attempt): AttemptView {
  return {
    at: new Date(a.at).toISOString(),
    tx: a.tx,
    recipients: a.recipients ?? [],
    domain: a.domain,
    status: a.result,
    code: a.code,
    response: a.result === 'delivered' ? null : a.response,
    size: a.size,
    kind: a.kind ?? 'message',
  }
}

/** The tenant's recent delivery attempts, newest first, optionally of one status. */
export async function attemptsReport(cfg: PanelConfig, tenant: string, status: DeliveryResult | null, limit: number): Promise<AttemptView[]> {
  // the ledger's recent list is bounded (recent_max): reading it whole for a filter is a bounded read, not a scan
  const all = await recentAttempts(cfg.redis, tenant, status ? MESSAGES_MAX * 5 : limit)
  return all.filter((a) => !status || a.result === status).slice(0, limit).map(view)
}

export function suppressionsReport(cfg: PanelConfig, tenant: string): Promise<Suppressed[]> {
  return listSuppressed(cfg.redis, tenant)
}
