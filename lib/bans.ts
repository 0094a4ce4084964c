// The ban ledger: append-only, no unban. A ban closes the tenant for good (its credentials stop working at once,
// its queued mail is dropped) and keeps the evidence: who it was, what it used, what happened, who decided.
// A banned slug, contact address (canonical: case, plus-addressing, ignored dots) or contact domain can never
// open a new account.
import type Redis from 'ioredis'
import { canonicalContact, FREEMAIL, normaliseAddress } from './addresses'
import { InputError } from './errors'
import { keys } from './keys'
import { requireTenant } from './tenants'

export interface Ban {
  tenant: string
  contact: string
  /** The contact's domain, banned too unless it is a public mailbox provider. */
  contact_domain: string | null
  sender_domains: string[]
  client_ips: string[]
  reason: string
  /** Time, trap entry and class, transaction, client IP... whatever the decider saw. */
  evidence: Record<string, unknown>
  /** 'trap' (the plugin) or 'operator'. */
  by: string
  at: string
}

/** Closes a tenant for ever and records the ban. Banning a tenant twice adds a second ledger entry. */
export async function banTenant(redis: Redis, slug: string, reason: string, by: string, evidence: Record<string, unknown> = {}): Promise<Ban> {
  if (!reason || !String(reason).trim()) throw new InputError('a ban needs a reason: --reason "<text>"')
  const t = await requireTenant(redis, slug)
  const [senders, clients] = await Promise.all([redis.smembers(keys.tenantSenders(slug)), redis.smembers(keys.tenantClients(slug))])
  const contact = canonicalContact(t.contact)
  const domain = normaliseAddress(t.contact).domain
  const ban: Ban = {
    tenant: slug,
    contact: t.contact,
    contact_domain: FREEMAIL.has(domain) ? null : domain,
    sender_domains: senders.sort(),
    client_ips: clients.sort(),
    reason: String(reason).trim(),
    evidence,
    by,
    at: new Date().toISOString(),
  }
  const m = redis
    .multi()
    .hset(keys.tenant(slug), { status: 'closed', updated_at: ban.at, closed_reason: ban.reason })
    .rpush(keys.bans(), JSON.stringify(ban))
    .set(keys.bannedSlug(slug), ban.at)
    .set(keys.bannedContact(contact), slug)
  if (ban.contact_domain) m.set(keys.bannedDomain(ban.contact_domain), slug)
  await m.exec()
  return ban
}

export async function listBans(redis: Redis): Promise<Ban[]> {
  return (await redis.lrange(keys.bans(), 0, -1)).map((v) => JSON.parse(v) as Ban)
}

export async function bansOf(redis: Redis, slug: string): Promise<Ban[]> {
  return (await listBans(redis)).filter((b) => b.tenant === slug)
}

/** Why a new account may not be opened with this slug and contact, or null when it may. */
export async function banReason(redis: Redis, slug: string, contact: string): Promise<string | null> {
  const canonical = canonicalContact(contact)
  const domain = normaliseAddress(contact).domain
  const [s, c, d] = await redis.mget(keys.bannedSlug(slug), keys.bannedContact(canonical), keys.bannedDomain(domain))
  if (s) return `the name "${slug}" belongs to a banned account`
  if (c) return `the contact ${contact} belongs to a banned account`
  if (d) return `contacts at ${domain} belong to a banned account`
  return null
}
