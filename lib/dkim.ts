// DKIM keys per sender domain (docs/dkim.md): a 2048-bit RSA key pair with a dated selector (posta202612), kept in
// Redis so that every node signs with the same key; the DKIM TXT record(s) to publish; the check of those records
// through the service's resolvers; and key rotation: a new (pending) key is published first, the domain keeps signing
// with the old one until the new record is seen in DNS, then switches, and the old record stays listed (retiring)
// for RETIRING_DAYS so that mail signed before the switch still verifies.
//
// Interface for the rest of Posta:
//   createDomainKey(redis, domain, now?)   the domain's key (made on first call, returned unchanged afterwards)
//   dkimRecords(redis, domain, now?)       the TXT records to publish: active, pending (during a rotation), retiring
//   checkDkimRecords(redis, domain, resolver, now?)   each record right/missing/wrong/unknown; completes a rotation
//   rotateKey(redis, domain, now?)         a pending key; advanceRotation(...) switches to it once it is in DNS
//   signingKey(redis, domain)              { domain, selector, privateKeyPem } of the active key, or null
//   removeDomainKeys(redis, domain)        forgets every key of the domain
//   signingDomain(host, tenant, serviceDomain, verified)   which d= signs mail from a host, or null
import { generateKeyPair } from 'node:crypto'
import type * as dns from 'node:dns'
import type { RedisClient as Redis } from './redis'
import { domainAndParents } from './addresses'
import { InputError, NotFoundError } from './errors'
import { keys } from './keys'
import { runScript } from './lua'
import { checkDomain } from './validate'

/** How long a replaced key's record stays listed (and its key kept) after a switch: mail signed before the switch
 *  may sit in queues (ours retry for days) and be verified late. */
export const RETIRING_DAYS = 7
export const KEY_BITS = 2048
/** Selectors are `posta` + the UTC year and month of the key (a letter after it when that one is taken). */
export const SELECTOR_PREFIX = 'posta'

/** A TXT record a customer publishes (the same shape as lib/domains.ts's). */
export interface TxtRecord {
  type: 'TXT'
  name: string
  value: string
}

/** active: signs now; pending: a rotation's new key, signs once its record is seen in DNS; retiring: replaced,
 *  its record kept published until `until`. */
export type KeyState = 'active' | 'pending' | 'retiring'

export interface DkimRecord extends TxtRecord {
  selector: string
  state: KeyState
  /** Retiring records: the time after which the record may be removed (ISO). */
  until?: string
}

export interface SigningKey {
  domain: string
  selector: string
  privateKeyPem: string
}

/** right: the record is there; missing: no TXT at the name; wrong: TXT there, not this key; unknown: the lookup failed. */
export type CheckState = 'right' | 'missing' | 'wrong' | 'unknown'

export interface DkimRecordCheck extends DkimRecord {
  check: CheckState
  /** The TXT values found at the name, each record's strings joined. */
  found: string[]
  /** What to do, one sentence; empty when nothing needs doing. */
  fix: string
}

export interface Rotation {
  /** The selector that signs after the call. */
  active: string
  /** The rotation still waiting for its record, if any. */
  pending: string | null
  /** This call switched from `from` to `active`. */
  switched: { from: string; to: string } | null
}

interface StoredKey {
  private_key: string
  /** base64 of the DER SubjectPublicKeyInfo: the p= of the record. */
  public_key: string
  created_at: string
}

interface Stored {
  active: string | null
  pending: string | null
  retiring: string | null
  retiringUntil: number
  keys: Map<string, StoredKey>
}

type Resolver = Pick<dns.promises.Resolver, 'resolveTxt'>

function parseStored(h: Record<string, string>): Stored {
  const ks = new Map<string, StoredKey>()
  for (const [f, v] of Object.entries(h)) {
    if (!f.startsWith('key:')) continue
    try {
      ks.set(f.slice(4), JSON.parse(v) as StoredKey)
    } catch {
      // a damaged entry counts as no key: the domain is not signed with it
    }
  }
  return { active: h.active ?? null, pending: h.pending ?? null, retiring: h.retiring ?? null, retiringUntil: Number(h.retiring_until ?? 0), keys: ks }
}

async function load(redis: Redis, domain: string): Promise<Stored> {
  return parseStored(await redis.hgetall(keys.dkim(domain)))
}

/** The DNS name of a selector's record. */
export function recordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`
}

/** The value of a DKIM record for a public key (base64 DER SubjectPublicKeyInfo). */
export function recordValue(publicKey: string): string {
  return `v=DKIM1; k=rsa; p=${publicKey}`
}

function record(domain: string, selector: string, key: StoredKey, state: KeyState, until?: number): DkimRecord {
  const r: DkimRecord = { type: 'TXT', name: recordName(selector, domain), value: recordValue(key.public_key), selector, state }
  if (until !== undefined) r.until = new Date(until).toISOString()
  return r
}

/** The selector of a key made at `now`: posta202612, then posta202612b, c, ... while those are taken. */
export function selectorFor(now: Date, taken: (s: string) => boolean): string {
  const base = `${SELECTOR_PREFIX}${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`
  if (!taken(base)) return base
  for (let c = 98; c <= 122; c++) {
    const s = base + String.fromCharCode(c)
    if (!taken(s)) return s
  }
  throw new InputError(`no free DKIM selector left for ${base}: too many keys made this month`)
}

async function newKey(now: Date): Promise<StoredKey> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: Buffer; privateKey: string }>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: KEY_BITS, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } },
      (err, pub, priv) => (err ? reject(err) : resolve({ publicKey: pub, privateKey: priv }))))
  return { private_key: privateKey, public_key: publicKey.toString('base64'), created_at: now.toISOString() }
}

/** Makes a key and stores it with the script's operation (create | pending); retries once on a selector race. */
async function storeNewKey(redis: Redis, domain: string, op: 'create' | 'pending', now: Date): Promise<[string, string, StoredKey | null]> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const s = await load(redis, domain)
    if (op === 'create' && s.active) return ['exists', s.active, null]
    const selector = selectorFor(now, (x) => s.keys.has(x))
    const key = await newKey(now)
    const [result, sel] = await runScript<[string, string]>(redis, 'dkim_key', 1, [keys.dkim(domain)], [op, selector, JSON.stringify(key)])
    if (result !== 'taken') return [result, sel, key]
  }
  throw new Error(`could not store a DKIM key for ${domain}: its selectors kept changing`)
}

/**
 * The domain's DKIM key and the record to publish for it: made (2048-bit RSA, selector posta<YYYYMM>) on the first
 * call, returned unchanged afterwards (`created` says which), so a repeated `posta domain add` prints the same record.
 */
export async function createDomainKey(redis: Redis, domain: string, now = new Date()): Promise<{ selector: string; record: DkimRecord; created: boolean }> {
  const d = checkDomain(domain)
  const [result, selector, made] = await storeNewKey(redis, d, 'create', now)
  const key = made && result === 'created' ? made : (await load(redis, d)).keys.get(selector)
  if (!key) throw new Error(`the DKIM key ${selector} of ${d} was removed meanwhile`)
  return { selector, record: record(d, selector, key, 'active'), created: result === 'created' }
}

/**
 * The DKIM TXT records to publish for the domain: the active key's; during a rotation the pending key's too; after a
 * switch the replaced key's (retiring) until it may be removed. Empty when the domain has no key.
 */
export async function dkimRecords(redis: Redis, domain: string, now = new Date()): Promise<DkimRecord[]> {
  const d = checkDomain(domain)
  return recordsOf(d, await load(redis, d), now)
}

function recordsOf(d: string, s: Stored, now: Date): DkimRecord[] {
  const out: DkimRecord[] = []
  const add = (sel: string | null, state: KeyState, until?: number) => {
    const k = sel ? s.keys.get(sel) : undefined
    if (sel && k) out.push(record(d, sel, k, state, until))
  }
  add(s.active, 'active')
  add(s.pending, 'pending')
  if (s.retiringUntil > now.getTime()) add(s.retiring, 'retiring', s.retiringUntil)
  return out
}

/** The active key of the domain, to sign with; null when it has none. */
export async function signingKey(redis: Redis, domain: string): Promise<SigningKey | null> {
  const d = checkDomain(domain)
  const s = await load(redis, d)
  const key = s.active ? s.keys.get(s.active) : undefined
  return s.active && key ? { domain: d, selector: s.active, privateKeyPem: key.private_key } : null
}

/** Forgets every DKIM key of the domain (its records may be removed from DNS). True when it had any. */
export async function removeDomainKeys(redis: Redis, domain: string): Promise<boolean> {
  return (await redis.del(keys.dkim(checkDomain(domain)))) === 1
}

/**
 * Starts a rotation: a new key (pending) whose record the customer publishes; the domain keeps signing with the
 * active key until advanceRotation sees the new record in DNS. One rotation at a time.
 */
export async function rotateKey(redis: Redis, domain: string, now = new Date()): Promise<{ selector: string; record: DkimRecord; replaces: string }> {
  const d = checkDomain(domain)
  const before = await load(redis, d)
  if (!before.active) throw new NotFoundError(`${d} has no DKIM key to rotate`)
  if (before.pending) throw new InputError(`${d} is already rotating to selector ${before.pending}: publish its record (posta domain records), then run posta domain check`)
  const [result, selector, key] = await storeNewKey(redis, d, 'pending', now)
  if (result === 'none') throw new NotFoundError(`${d} has no DKIM key to rotate (removed meanwhile)`)
  if (result === 'pending') throw new InputError(`${d} is already rotating to selector ${selector}: publish its record (posta domain records), then run posta domain check`)
  return { selector, record: record(d, selector, key!, 'pending'), replaces: before.active }
}

/** The TXT values at a name (each record's strings joined), none (NXDOMAIN, no TXT), or a failed lookup. */
export async function lookupTxt(resolver: Resolver, name: string): Promise<{ state: 'found'; values: string[] } | { state: 'none' } | { state: 'failed'; error: string }> {
  try {
    const rs = await resolver.resolveTxt(name)
    return rs.length ? { state: 'found', values: rs.map((r) => r.join('')) } : { state: 'none' }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { state: 'none' }
    return { state: 'failed', error: code }
  }
}

/** The tags of a DKIM record (RFC 6376 3.6.1): `v=DKIM1; k=rsa; p=...`, whitespace inside values removed. */
export function parseDkimRecord(value: string): Map<string, string> {
  const tags = new Map<string, string>()
  for (const part of value.split(';')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    tags.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).replace(/\s+/g, ''))
  }
  return tags
}

/** Whether a published value carries this record's key (v=DKIM1 when present, k=rsa or none, the same p=). */
export function sameKey(published: string, expected: string): boolean {
  const a = parseDkimRecord(published)
  const b = parseDkimRecord(expected)
  if (a.has('v') && a.get('v') !== 'DKIM1') return false
  if (a.has('k') && a.get('k')!.toLowerCase() !== 'rsa') return false
  return !!a.get('p') && a.get('p') === b.get('p')
}

/** One record's state among the TXT values found at its name. */
export function dkimRecordState(lookup: Awaited<ReturnType<typeof lookupTxt>>, r: TxtRecord): { check: CheckState; found: string[] } {
  if (lookup.state === 'failed') return { check: 'unknown', found: [] }
  if (lookup.state === 'none') return { check: 'missing', found: [] }
  return { check: lookup.values.some((v) => sameKey(v, r.value)) ? 'right' : 'wrong', found: lookup.values }
}

function fixFor(r: DkimRecord, check: CheckState, found: string[]): string {
  const publish = `publish TXT ${r.name} "${r.value}"`
  if (r.state === 'retiring') {
    return check === 'right' ? `keep this record until ${r.until}: mail signed with selector ${r.selector} before the switch still needs it` : ''
  }
  if (check === 'right') return ''
  if (check === 'unknown') return `the lookup of ${r.name} failed; try again later`
  const then = r.state === 'pending' ? '; the domain switches to this key once the record is seen' : ''
  if (check === 'missing') return `no TXT record at ${r.name}: ${publish}${then}`
  return `the TXT record at ${r.name} does not hold this key: replace it, ${publish} (found ${found.map((v) => `"${v}"`).join(', ')})${then}`
}

/**
 * Completes a rotation whose new record is in DNS: the pending key becomes active, the replaced one retiring for
 * RETIRING_DAYS. Drops a retiring key whose time is over. Safe to call from every node (one script decides).
 */
export async function advanceRotation(redis: Redis, domain: string, resolver: Resolver, now = new Date()): Promise<Rotation> {
  const d = checkDomain(domain)
  const s = await load(redis, d)
  if (!s.active) throw new NotFoundError(`${d} has no DKIM key`)
  if (s.retiring && s.retiringUntil <= now.getTime()) await runScript(redis, 'dkim_key', 1, [keys.dkim(d)], ['forget', s.retiring, now.getTime()])
  const pendingKey = s.pending ? s.keys.get(s.pending) : undefined
  if (!s.pending || !pendingKey) return { active: s.active, pending: s.pending, switched: null }
  const r = record(d, s.pending, pendingKey, 'pending')
  if (dkimRecordState(await lookupTxt(resolver, r.name), r).check !== 'right') return { active: s.active, pending: s.pending, switched: null }
  const until = now.getTime() + RETIRING_DAYS * 86_400_000
  const [result] = await runScript<[string, string]>(redis, 'dkim_key', 1, [keys.dkim(d)], ['switch', s.pending, s.active, until])
  if (result !== 'switched') {
    const after = await load(redis, d)
    return { active: after.active ?? s.active, pending: after.pending, switched: null }
  }
  return { active: s.pending, pending: null, switched: { from: s.active, to: s.pending } }
}

/**
 * Looks every DKIM record of the domain up (after completing a rotation whose record is in DNS) and says per record
 * right / missing / wrong / unknown and what to change. Empty when the domain has no key.
 */
export async function checkDkimRecords(redis: Redis, domain: string, resolver: Resolver, now = new Date()): Promise<{ records: DkimRecordCheck[]; rotation: Rotation | null }> {
  const d = checkDomain(domain)
  const rotation = (await redis.hexists(keys.dkim(d), 'active')) ? await advanceRotation(redis, d, resolver, now) : null
  const records = await dkimRecords(redis, d, now)
  const checks = await Promise.all(records.map(async (r) => {
    const { check, found } = dkimRecordState(await lookupTxt(resolver, r.name), r)
    return { ...r, check, found, fix: fixFor(r, check, found) }
  }))
  return { records: checks, rotation }
}

/**
 * The d= that signs mail whose From: host is `host`, for a tenant: the service domain for `<tenant>.<service
 * domain>` and its subdomains (the service's key for that zone), else the most specific of the host and its parents
 * that is a verified domain of the tenant; null: not the tenant's, not signed.
 */
export function signingDomain(host: string, tenant: string, serviceDomain: string, verified: ReadonlySet<string>): string | null {
  const own = `${tenant}.${serviceDomain}`
  for (const d of domainAndParents(host)) {
    if (d === own) return serviceDomain
    if (verified.has(d)) return d
  }
  return null
}
