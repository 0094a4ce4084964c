// A tenant's sender domains (docs/domains.md). `<slug>.<service domain>` is always the tenant's; any other domain is
// added with `posta domain add` (pending, with a TXT token to publish), then verified by looking the token up through
// the service's resolvers. A domain, its parents and its subdomains are verified for one tenant at most (a pending
// domain blocks nobody: only who controls the DNS can verify); a banned domain (or a subdomain of one) can never be
// added. The sender policy (plugins/posta-domains) accepts the tenant's verified domains and their subdomains.
import { randomBytes } from 'node:crypto'
import type * as dns from 'node:dns'
import type { RedisClient as Redis } from './redis'
import { domainAndParents, normaliseDomain } from './addresses'
import { createDomainKey, lookupTxt, removeDomainKeys, type CheckState, type TxtRecord } from './dkim'
import { InputError, NotFoundError } from './errors'
import { keys } from './keys'
import { runScript } from './lua'
import type { Settings } from './settings'
import { requireTenant, smtpHost, statusOf, type TenantStatus } from './tenants'
import { checkSlug } from './validate'

export type DomainStatus = 'pending' | 'verified'

export type { CheckState, TxtRecord }
/** What a TXT lookup found (lib/dkim.ts lookupTxt: the one TXT lookup of Posta). */
export type TxtLookup = Awaited<ReturnType<typeof lookupTxt>>

/** What Redis keeps of one claimed domain (keys.tenantDomains). */
interface StoredDomain {
  status: DomainStatus
  token: string
  added_at: string
  verified_at?: string
}

export interface Domain {
  domain: string
  /** `service`: `<slug>.<service domain>`, always the tenant's; `own`: a domain the tenant added. */
  kind: 'service' | 'own'
  status: DomainStatus
  added_at?: string
  verified_at?: string
  /** The verification record to publish (own domains). */
  verification?: TxtRecord
}

/** The name of the verification TXT record, under the domain. */
export const VERIFICATION_LABEL = '_posta-verification'
/** The value the verification record starts with; the token follows. */
export const VERIFICATION_PREFIX = 'posta-verification='

export function verificationRecord(domain: string, token: string): TxtRecord {
  return { type: 'TXT', name: `${VERIFICATION_LABEL}.${domain}`, value: `${VERIFICATION_PREFIX}${token}` }
}

/** The ZSET member of a domain: its labels reversed (mail.example.com -> com.example.mail). */
function reversed(domain: string): string {
  return domain.split('.').reverse().join('.')
}

function parseStored(raw: string | null | undefined): StoredDomain | null {
  if (!raw) return null
  try {
    const v = JSON.parse(raw) as Partial<StoredDomain>
    if ((v.status !== 'pending' && v.status !== 'verified') || typeof v.token !== 'string') return null
    return v as StoredDomain
  } catch {
    return null
  }
}

function view(domain: string, s: StoredDomain): Domain {
  return {
    domain,
    kind: 'own',
    status: s.status,
    added_at: s.added_at,
    ...(s.verified_at ? { verified_at: s.verified_at } : {}),
    verification: verificationRecord(domain, s.token),
  }
}

/** A domain as a tenant typed it, normalised like a delivered domain (lib/addresses.ts). */
export function checkSenderDomain(input: string): string {
  return normaliseDomain(input, 'sender domain')
}

/** Why no tenant may add this domain because of the service's own names, or null. */
function serviceNameRefusal(domain: string, slug: string, serviceDomain: string): string | null {
  const own = `${slug}.${serviceDomain}`
  if (domain === own || domain.endsWith(`.${own}`)) return `${domain} is already yours: ${own} and its subdomains always belong to tenant ${slug}, nothing to add`
  if (domain === serviceDomain || domain.endsWith(`.${serviceDomain}`)) return `${domain} is a name of the service (${serviceDomain}): only <slug>.${serviceDomain} of each tenant is a sender domain there`
  if (serviceDomain.endsWith(`.${domain}`)) return `${domain} holds the service domain ${serviceDomain}: it cannot be a tenant's sender domain`
  return null
}

/** The banned tenant whose domain this is (the domain itself or a parent has a bannedDomain marker), or null. */
async function bannedBy(redis: Redis, domain: string): Promise<{ domain: string; tenant: string } | null> {
  const names = domainAndParents(domain)
  const marks = await redis.mget(...names.map((d) => keys.bannedDomain(d)))
  const i = marks.findIndex(Boolean)
  return i >= 0 ? { domain: names[i], tenant: marks[i]! } : null
}

/** The InputError of a claim another tenant's verified domain blocks (the other tenant is not named). */
function takenError(domain: string, name: string, parents: string[], verb: string): InputError {
  const what = name === domain ? `${domain} is` : parents.includes(name) ? `its parent ${name} is` : `its subdomain ${name} is`
  return new InputError(`cannot ${verb} ${domain}: ${what} another account's verified sender domain; a domain and its subdomains belong to one account (contact support if it is yours)`)
}

/**
 * Adds a domain to a tenant (pending) and makes its verification token. Refused: a closed tenant, a name of the
 * service, a banned domain (or subdomain of one), a domain that is, or is a parent or subdomain of, another tenant's
 * verified domain. Adding a domain the tenant has already gives it back unchanged (the same token).
 */
export async function addDomain(redis: Redis, settings: Pick<Settings, 'serviceDomain'>, slug: string, input: string): Promise<{ entry: Domain; created: boolean }> {
  const t = await requireTenant(redis, slug)
  const domain = checkSenderDomain(input)
  if (t.status === 'closed') throw new InputError(`tenant "${slug}" is closed: it cannot add sender domains`)
  const service = serviceNameRefusal(domain, slug, settings.serviceDomain)
  if (service) throw new InputError(`cannot add ${domain}: ${service}`)
  const banned = await bannedBy(redis, domain)
  if (banned) throw new InputError(`cannot add ${domain}: ${banned.domain === domain ? 'it' : banned.domain} belongs to a banned account; bans cannot be undone`)
  const stored: StoredDomain = { status: 'pending', token: randomBytes(16).toString('hex'), added_at: new Date().toISOString() }
  const parents = domainAndParents(domain).slice(1)
  const res = await claim(redis, 'add', slug, domain, JSON.stringify(stored), '', parents)
  if (res[0] === 'mine') {
    const cur = parseStored(await redis.hget(keys.tenantDomains(slug), domain))
    if (!cur) throw new Error(`${domain} is in tenant ${slug}'s domains but its entry is unreadable: remove it ("posta domain remove ${slug} ${domain}") and add it again`)
    return { entry: view(domain, cur), created: false }
  }
  if (res[0] === 'covered') throw new InputError(`cannot add ${domain}: it is a subdomain of ${res[1]}, verified for ${slug} already: its subdomains are accepted too`)
  if (res[0] === 'taken') throw takenError(domain, res[1], parents, 'add')
  try {
    // the domain's DKIM key (lib/dkim.ts): made now, so its record is printed with the others
    await createDomainKey(redis, domain)
  } catch (err) {
    await runScript<number>(redis, 'domain_remove', 3, [keys.domainOwners(), keys.domainNames(), keys.tenantDomains(slug)], [slug, domain, reversed(domain)])
    throw err
  }
  return { entry: view(domain, stored), created: true }
}

function claim(redis: Redis, mode: 'add' | 'verify', slug: string, domain: string, arg: string, at: string, parents: string[]): Promise<string[]> {
  return runScript<string[]>(redis, 'domain_claim', 3, [keys.domainOwners(), keys.domainNames(), keys.tenantDomains(slug)], [mode, slug, domain, reversed(domain), arg, at, ...parents])
}

/** The tenant's own domains as stored (pending and verified), sorted by name. */
async function storedDomains(redis: Redis, slug: string): Promise<[string, StoredDomain][]> {
  const h = await redis.hgetall(keys.tenantDomains(slug))
  return Object.entries(h)
    .map(([d, raw]) => [d, parseStored(raw)] as [string, StoredDomain | null])
    .filter((e): e is [string, StoredDomain] => e[1] !== null)
    .sort(([a], [b]) => a.localeCompare(b))
}

/** Every sender domain of a tenant: `<slug>.<service domain>` first, then the added ones by name. */
export async function listDomains(redis: Redis, settings: Pick<Settings, 'serviceDomain'>, slug: string): Promise<Domain[]> {
  await requireTenant(redis, slug)
  return [{ domain: smtpHost(slug, settings), kind: 'service', status: 'verified' }, ...(await storedDomains(redis, slug)).map(([d, s]) => view(d, s))]
}

/** One added domain of the tenant; NotFoundError naming the fix when the tenant has not added it. */
export async function requireDomain(redis: Redis, settings: Pick<Settings, 'serviceDomain'>, slug: string, input: string): Promise<Domain> {
  checkSlug(slug)
  const domain = checkSenderDomain(input)
  const own = smtpHost(slug, settings)
  if (domain === own) return { domain, kind: 'service', status: 'verified' }
  await requireTenant(redis, slug)
  const s = parseStored(await redis.hget(keys.tenantDomains(slug), domain))
  if (!s) throw new NotFoundError(`tenant "${slug}" has no sender domain ${domain}: add it with "posta domain add ${slug} ${domain}"`)
  return view(domain, s)
}

/** Gives up a tenant's claim of a domain: mail from it is refused from the next MAIL FROM on. */
export async function removeDomain(redis: Redis, settings: Pick<Settings, 'serviceDomain'>, slug: string, input: string): Promise<Domain> {
  const d = await requireDomain(redis, settings, slug, input)
  if (d.kind === 'service') throw new InputError(`${d.domain} cannot be removed: it is tenant ${slug}'s own name at the service`)
  const removed = await runScript<number>(redis, 'domain_remove', 3, [keys.domainOwners(), keys.domainNames(), keys.tenantDomains(slug)], [slug, d.domain, reversed(d.domain)])
  if (removed !== 1) throw new NotFoundError(`tenant "${slug}" has no sender domain ${d.domain} (removed meanwhile)`)
  // The DKIM key is the domain's, not the tenant's: another tenant may have the domain pending with the same key.
  // It goes with a verified domain (no other tenant can have verified it; a pending one gets a new key from
  // domainRecords); a pending domain's stays.
  if (d.status === 'verified') await removeDomainKeys(redis, d.domain)
  return d
}

// ---- verification, through the service's resolvers ----

export interface VerifyResult {
  domain: string
  state: CheckState
  verified: boolean
  record: TxtRecord
  found: string[]
  /** What to do next, one sentence. */
  message: string
}

/** The verification record's state among the TXT values found at its name. */
export function verificationState(lookup: TxtLookup, record: TxtRecord): { state: CheckState; found: string[] } {
  if (lookup.state === 'failed') return { state: 'unknown', found: [] }
  if (lookup.state === 'none') return { state: 'missing', found: [] }
  return { state: lookup.values.includes(record.value) ? 'right' : 'wrong', found: lookup.values }
}

/**
 * Looks the verification token up (TXT at `_posta-verification.<domain>`) and, when it is right, marks the domain
 * verified. A verified domain stays verified when the record is taken down later (`posta domain check` says so).
 */
export async function verifyDomain(redis: Redis, settings: Pick<Settings, 'serviceDomain'>, slug: string, input: string, resolver: Pick<dns.promises.Resolver, 'resolveTxt'>): Promise<VerifyResult> {
  const d = await requireDomain(redis, settings, slug, input)
  if (d.kind === 'service') throw new InputError(`${d.domain} needs no verification: it is tenant ${slug}'s own name at the service`)
  const record = d.verification!
  const { state, found } = verificationState(await lookupTxt(resolver, record.name), record)
  let verified = d.status === 'verified'
  if (state === 'right' && !verified) {
    const token = record.value.slice(VERIFICATION_PREFIX.length)
    const res = await claim(redis, 'verify', slug, d.domain, token, new Date().toISOString(), domainAndParents(d.domain).slice(1))
    if (res[0] === 'gone') throw new NotFoundError(`${d.domain} was removed or added again meanwhile: run "posta domain records ${slug} ${d.domain}" for its current token`)
    if (res[0] === 'taken') throw takenError(d.domain, res[1], domainAndParents(d.domain).slice(1), 'verify')
    verified = true
  }
  const publish = `publish TXT ${record.name} "${record.value}"`
  const message = {
    right: `${d.domain} is verified: mail from it and its subdomains is accepted for ${slug}`,
    missing: `no TXT record at ${record.name}: ${publish}, then run verify again (DNS changes can take a while to show)`,
    wrong: `the TXT record at ${record.name} does not hold this domain's token: ${publish} (found ${found.map((v) => `"${v}"`).join(', ')})`,
    unknown: `the lookup of ${record.name} failed; try again later`,
  }[state]
  return { domain: d.domain, state, verified, record, found, message: verified && state !== 'right' ? `${d.domain} stays verified, but ${message}` : message }
}

// ---- the sender policy's read (plugins/posta-domains) ----

/**
 * What the sender policy needs of a tenant, read in one round trip per transaction: its verified domains, its
 * package, and its status as of that read (posta-trap's MAIL FROM check uses it rather than a read of its own).
 */
export interface SenderContext {
  tenant: string
  verified: ReadonlySet<string>
  package: string | null
  status: TenantStatus | null
}

export async function senderContext(redis: Redis, slug: string): Promise<SenderContext> {
  // both commands in one round trip (the hot-path client pipelines automatically)
  const [h, [pkg, status]] = await Promise.all([redis.hgetall(keys.tenantDomains(slug)), redis.hmget(keys.tenant(slug), 'package', 'status')])
  const verified = new Set(Object.entries(h).filter(([, raw]) => parseStored(raw)?.status === 'verified').map(([d]) => d))
  return { tenant: slug, verified, package: pkg, status: statusOf(status) }
}

/**
 * Whether the tenant may send as this (normalised) domain: it is `<slug>.<service domain>`, or a verified domain of
 * the tenant, or a subdomain of either.
 */
export function senderAllowed(ctx: SenderContext, domain: string, serviceDomain: string): boolean {
  const own = smtpHost(ctx.tenant, { serviceDomain })
  return domainAndParents(domain).some((d) => d === own || ctx.verified.has(d))
}

/**
 * The Feedback-ID header value of a tenant's message (Gmail's feedback loop: up to four colon-separated fields, the
 * last one the sender's stable id): `<tenant>:<package>:posta:<service domain>`.
 */
export function feedbackId(tenant: string, pkg: string | null, serviceDomain: string): string {
  return `${tenant}:${pkg || '-'}:posta:${serviceDomain}`
}
