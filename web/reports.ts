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

export async function usageReport(cfg: PanelConfig, tenant: string, now = new Date()): Promise<UsageReport & { package: string; package_bytes: number; topup_bytes: number }> {
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
