// The audit log of operator actions: who did what to which tenant, IP or account, and when. Append-only (no code
// path removes or rewrites an entry); the operator area shows the newest entries. Written by the operator area's
// actions and by `posta operator ...`; other CLI commands leave their own evidence (IP history, the ban ledger).
import type { RedisClient as Redis } from './redis'
import { keys } from './keys'

export interface AuditEntry {
  at: string
  /** The operator account that acted, or `cli:<system user>` for the command line. */
  operator: string
  /** The act, named like the CLI verb: `tenant suspend`, `ip reinstate`, `ban add`, `operator create`... */
  action: string
  /** What it was done to: a tenant slug, an IP, an operator name. */
  target: string
  /** The inputs that matter (a reason, a size, a package); never a password. */
  details: Record<string, unknown>
}

/** Appends one entry and returns it. */
export async function audit(redis: Redis, e: Omit<AuditEntry, 'at' | 'details'> & { details?: Record<string, unknown>; at?: Date }): Promise<AuditEntry> {
  const entry: AuditEntry = { at: (e.at ?? new Date()).toISOString(), operator: e.operator, action: e.action, target: e.target, details: e.details ?? {} }
  await redis.rpush(keys.audit(), JSON.stringify(entry))
  return entry
}

/** The newest `limit` entries, newest first (at most 1000). */
export async function listAudit(redis: Redis, limit = 100): Promise<AuditEntry[]> {
  const n = Math.max(1, Math.min(1000, Math.floor(limit) || 1))
  return (await redis.lrange(keys.audit(), -n, -1)).map((v) => JSON.parse(v) as AuditEntry).reverse()
}
