import type { RedisClient as Redis } from './redis'
import { banReason } from './bans'
import { InputError, NotFoundError } from './errors'
import { keys } from './keys'
import { checkLanguage, DEFAULT_LANGUAGE, isLanguage, type Language } from './language'
import { runScript } from './lua'
import { followAllowance, requirePackage } from './packages'
import { generatePassword, hashPassword, passwordProblem } from './password'
import type { Settings } from './settings'
import { getPool } from './pool'
import { endSessionsOf } from './sessions'
import { checkEmail, checkLocalPart, checkNewSlug, checkSlug, type OwnHosts } from './validate'

export type TenantStatus = 'active' | 'suspended' | 'closed'
export const TENANT_STATUSES: TenantStatus[] = ['active', 'suspended', 'closed']

export interface Tenant {
  slug: string
  package: string
  status: TenantStatus
  contact: string
  /** The language Posta writes to the customer in (bounces); unset for tenants created before languages: the service's. */
  lang?: Language
  /** Local parts that have a credential; the first is the one created with the tenant. */
  logins: string[]
  created_at: string
  updated_at: string
}

/** What a customer types into a mail client. Shown once, with the password. */
export interface Credentials {
  tenant: string
  login: string
  password: string
  smtp_host: string
  ports: { submission: number; smtps: number; smtp: number }
}

export function smtpHost(slug: string, settings: Pick<Settings, 'serviceDomain'>): string {
  return `${slug}.${settings.serviceDomain}`
}

export function loginFor(local: string, slug: string, settings: Pick<Settings, 'serviceDomain'>): string {
  return `${local}@${smtpHost(slug, settings)}`
}

/**
 * Splits an AUTH username `<local>@<slug>.<service domain>` into its parts; null when it is not one of ours.
 * Case-insensitive, as mail clients may capitalise what the customer typed.
 */
export function parseLogin(login: string, serviceDomain: string): { local: string; slug: string } | null {
  if (typeof login !== 'string' || login.length > 320) return null
  const at = login.lastIndexOf('@')
  if (at < 1) return null
  const local = login.slice(0, at).toLowerCase()
  const host = login.slice(at + 1).toLowerCase()
  const suffix = `.${serviceDomain}`
  if (!host.endsWith(suffix)) return null
  const slug = host.slice(0, -suffix.length)
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(slug)) return null
  if (!/^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$/.test(local)) return null
  return { local, slug }
}

function fromHash(h: Record<string, string>, logins: string[]): Tenant | null {
  if (!h || !h.slug) return null
  return {
    slug: h.slug,
    package: h.package,
    status: h.status as TenantStatus,
    contact: h.contact,
    ...(isLanguage(h.lang) ? { lang: h.lang } : {}),
    logins: [h.primary_login, ...logins.filter((l) => l !== h.primary_login).sort()].filter(Boolean),
    created_at: h.created_at,
    updated_at: h.updated_at,
  }
}

function credentialsFor(local: string, slug: string, password: string, settings: Settings): Credentials {
  return {
    tenant: slug,
    login: loginFor(local, slug, settings),
    password,
    smtp_host: smtpHost(slug, settings),
    ports: { submission: settings.submissionPort, smtps: settings.smtpsPort, smtp: settings.smtpPort },
  }
}

export interface CreateTenantInput {
  slug: string
  package: string
  contact: string
  local?: string
  /** Default: the service's language (POSTA_LANGUAGE). */
  lang?: string
}

/** The service's own host names a new slug may not collide with: POSTA_HOSTNAME and the pool's HELO names. */
async function ownHosts(redis: Redis, settings: Settings): Promise<OwnHosts> {
  return { hostname: settings.hostname, names: (await getPool(redis)).map((e) => e.helo), serviceDomain: settings.serviceDomain }
}

/** Creates a tenant with one credential; all or nothing. Returns the password, which is stored only hashed. */
export async function createTenant(redis: Redis, settings: Settings, input: CreateTenantInput): Promise<Credentials> {
  const slug = checkNewSlug(input.slug, await ownHosts(redis, settings))
  const local = checkLocalPart(input.local ?? 'mail')
  const contact = checkEmail(input.contact)
  const lang = input.lang === undefined ? (settings.language ?? DEFAULT_LANGUAGE) : checkLanguage(input.lang, '--lang')
  const banned = await banReason(redis, slug, contact)
  if (banned) throw new InputError(`cannot create tenant "${slug}": ${banned}; bans cannot be undone`)
  const pkg = await requirePackage(redis, input.package)
  if (await redis.exists(keys.tenant(slug))) {
    throw new InputError(`tenant "${slug}" already exists: pick another slug, or see "posta tenant show ${slug}"`)
  }
  const password = generatePassword()
  const hash = await hashPassword(password)
  const now = new Date().toISOString()
  // traffic_bytes is the package's allowance, copied so the quota script reads one hash-tagged key (see setPackage)
  const fields = {
    slug, package: pkg.name, traffic_bytes: String(pkg.traffic_bytes), status: 'active', contact, lang, primary_login: local, created_at: now, updated_at: now,
  }
  const created = await runScript<number>(redis, 'tenant_create', 2, [keys.tenant(slug), keys.credentials(slug)], [
    local,
    hash,
    ...Object.entries(fields).flat(),
  ])
  if (created !== 1) throw new InputError(`tenant "${slug}" already exists: pick another slug`)
  await redis.sadd(keys.tenants(), slug)
  await followAllowance(redis, slug, pkg.name, pkg.traffic_bytes)
  return credentialsFor(local, slug, password, settings)
}

export async function getTenant(redis: Redis, slug: string): Promise<Tenant | null> {
  const [[, h], [, logins]] = (await redis.multi().hgetall(keys.tenant(slug)).hkeys(keys.credentials(slug)).exec()) as [
    [unknown, Record<string, string>],
    [unknown, string[]],
  ]
  return fromHash(h, logins)
}

export async function requireTenant(redis: Redis, slug: string): Promise<Tenant> {
  checkSlug(slug)
  const t = await getTenant(redis, slug)
  if (!t) throw new NotFoundError(`unknown tenant "${slug}": see "posta tenant list"`)
  return t
}

export async function listTenants(redis: Redis): Promise<Tenant[]> {
  const slugs = (await redis.smembers(keys.tenants())).sort()
  const out: Tenant[] = []
  for (const s of slugs) {
    const t = await getTenant(redis, s)
    if (t) out.push(t)
  }
  return out
}

/**
 * Many tenants at once, in the order of `slugs` (unknown ones left out), for the operator area's list. Sent as
 * concurrent commands rather than one MULTI per tenant: on a client with auto-pipelining (lib/redis.ts connectHotPath,
 * the panel's) they go out as one pipeline per Redis node, which a Cluster needs (one explicit pipeline may not span
 * nodes). Not atomic per tenant, unlike getTenant: fine for a listing.
 */
export async function getTenants(redis: Redis, slugs: readonly string[]): Promise<Tenant[]> {
  const read = await Promise.all(slugs.map((s) => Promise.all([redis.hgetall(keys.tenant(s)), redis.hkeys(keys.credentials(s))])))
  return read.map(([h, logins]) => fromHash(h, logins)).filter((t): t is Tenant => t !== null)
}

/** Sets a new password for a login of the tenant (the primary one by default), creating that login if new. */
export async function resetPassword(redis: Redis, settings: Settings, slug: string, local?: string): Promise<Credentials> {
  const t = await requireTenant(redis, slug)
  if (t.status === 'closed') throw new InputError(`tenant "${slug}" is closed: its credentials cannot be renewed`)
  const l = checkLocalPart(local ?? t.logins[0])
  const password = generatePassword()
  await storePassword(redis, slug, l, password)
  return credentialsFor(l, slug, password, settings)
}

/**
 * Sets a password the customer chose for an existing login of the tenant (the panel's password page; the caller
 * has checked the current one). The strength rule is lib/password.ts passwordProblem. Every panel session of the
 * tenant ends.
 */
export async function setPassword(redis: Redis, slug: string, local: string, password: string): Promise<void> {
  const t = await requireTenant(redis, slug)
  if (t.status === 'closed') throw new InputError(`tenant "${slug}" is closed: its credentials cannot be renewed`)
  const l = checkLocalPart(local)
  if (!t.logins.includes(l)) throw new NotFoundError(`tenant "${slug}" has no login "${l}"`)
  const problem = passwordProblem(password, [l, slug])
  if (problem) throw new InputError(`the new password is ${problem}`)
  await storePassword(redis, slug, l, password)
}

/** Stores a login's new password (hashed); the old password's panel sessions end with it. */
async function storePassword(redis: Redis, slug: string, local: string, password: string): Promise<void> {
  await redis
    .multi()
    .hset(keys.credentials(slug), local, await hashPassword(password))
    .hset(keys.tenant(slug), 'updated_at', new Date().toISOString())
    .exec()
  await endSessionsOf(redis, { kind: 'tenant', tenant: slug })
}

/** Changes the tenant's contact address (where quota notices go), checked like a new tenant's. */
export async function changeContact(redis: Redis, slug: string, contact: string): Promise<Tenant> {
  const t = await requireTenant(redis, slug)
  const c = checkEmail(contact)
  if (t.status === 'closed') throw new InputError(`tenant "${slug}" is closed: its contact cannot change`)
  const banned = await banReason(redis, slug, c)
  if (banned) throw new InputError(`cannot set the contact of "${slug}" to ${c}: ${banned}`)
  await redis.hset(keys.tenant(slug), { contact: c, updated_at: new Date().toISOString() })
  return (await getTenant(redis, slug))!
}

/** Moves a tenant to another package; the new allowance applies to the current month at once. */
export async function changePackage(redis: Redis, slug: string, packageName: string): Promise<Tenant> {
  const t = await requireTenant(redis, slug)
  const pkg = await requirePackage(redis, packageName)
  if (t.status === 'closed') throw new InputError(`tenant "${slug}" is closed: its package cannot change`)
  // package and allowance are written together; a ban meanwhile wins (the script refuses a closed tenant)
  const moved = await runScript<number>(redis, 'tenant_package', 1, [keys.tenant(slug)], [pkg.name, String(pkg.traffic_bytes), new Date().toISOString()])
  if (moved === -1) throw new InputError(`tenant "${slug}" is closed: its package cannot change`)
  if (moved !== 1) throw new NotFoundError(`unknown tenant "${slug}": see "posta tenant list"`)
  // a "package set" of the new package meanwhile may have missed this tenant: take the allowance it has now
  await followAllowance(redis, slug, pkg.name, pkg.traffic_bytes)
  return (await getTenant(redis, slug))!
}

/** Sets the language Posta writes to the tenant in (its bounces); applies to the next bounce. */
export async function setTenantLanguage(redis: Redis, slug: string, lang: string): Promise<Tenant> {
  const l = checkLanguage(lang)
  const t = await requireTenant(redis, slug)
  if (t.status === 'closed') throw new InputError(`tenant "${slug}" is closed: its language cannot change`)
  await redis.hset(keys.tenant(slug), { lang: l, updated_at: new Date().toISOString() })
  return (await getTenant(redis, slug))!
}

/** The tenant's language for a bounce; undefined when the tenant is unknown or has none (use the service's). */
export async function tenantLanguage(redis: Redis, slug: string): Promise<Language | undefined> {
  const l = await redis.hget(keys.tenant(slug), 'lang')
  return isLanguage(l) ? l : undefined
}

/** Suspends or resumes a tenant. A closed tenant stays closed. */
export async function setTenantStatus(redis: Redis, slug: string, status: 'active' | 'suspended'): Promise<Tenant> {
  await requireTenant(redis, slug)
  const set = await runScript<number>(redis, 'tenant_status', 1, [keys.tenant(slug)], [status, new Date().toISOString()])
  if (set === -1) throw new InputError(`tenant "${slug}" is closed for good and cannot be ${status === 'active' ? 'resumed' : 'suspended'}`)
  if (set !== 1) throw new NotFoundError(`unknown tenant "${slug}": see "posta tenant list"`)
  return (await getTenant(redis, slug))!
}

/**
 * The tenant's status now, in one HGET: active, suspended, closed, or null for no such tenant. The one reader of a
 * tenant's status for the plugins and the CLI (AUTH, MAIL/RCPT/DATA checks, delivery of queued mail).
 */
export async function tenantStatus(redis: Redis, slug: string): Promise<TenantStatus | null> {
  return statusOf(await redis.hget(keys.tenant(slug), 'status'))
}

/** A stored status as this code knows it: a value it does not know counts as suspended (it fails closed). */
export function statusOf(v: string | null): TenantStatus | null {
  return v === 'active' || v === 'suspended' || v === 'closed' ? v : v === null ? null : 'suspended'
}

/** What AUTH needs, in one round trip: the tenant's status and the stored hash of that login. */
export async function authRecord(redis: Redis, slug: string, local: string): Promise<{ status: TenantStatus | null; hash: string | null }> {
  const [status, hash] = await Promise.all([tenantStatus(redis, slug), redis.hget(keys.credentials(slug), local)])
  return { status, hash }
}
