// The DNS records a customer publishes for a sender domain, and their check (docs/domains.md): the verification
// token, SPF (an include: of the service's SPF name), a DMARC suggestion, and the DKIM key(s). Every lookup goes
// through the resolver the caller made with the service's one resolver factory (makeResolver in lib/dnsbl.ts, fed
// POSTA_RESOLVERS).
import type * as dns from 'node:dns'
import type { RedisClient as Redis } from './redis'
import { domainAndParents } from './addresses'
import { checkDkimRecords, createDomainKey, dkimRecords, lookupTxt, type DkimRecord } from './dkim'
import { requireDomain, verificationState, type CheckState, type Domain, type TxtLookup, type TxtRecord } from './domains'
import { InputError } from './errors'
import type { Settings } from './settings'

export type Purpose = 'verification' | 'dkim' | 'spf' | 'dmarc'

/** One record to publish; `value` is what to publish (SPF, DMARC: a suggestion that passes the check). */
export interface PublishRecord extends TxtRecord {
  purpose: Purpose
  /** The DKIM selector (dkim records). */
  selector?: string
  /** One sentence for the customer. */
  note: string
}

export interface RecordCheck extends PublishRecord {
  state: CheckState
  /** The TXT values found where the record belongs. */
  found: string[]
  /** What to change; empty when right. */
  fix: string
}

/** The name the service publishes its sending IPs under (operator: docs/domains.md); customers include it. */
export function serviceSpfName(serviceDomain: string): string {
  return `spf.${serviceDomain}`
}

export function spfRecord(domain: string, serviceDomain: string): PublishRecord {
  return {
    purpose: 'spf', type: 'TXT', name: domain, value: `v=spf1 include:${serviceSpfName(serviceDomain)} ~all`,
    note: `SPF: lets receivers accept ${domain} as the envelope sender from the service's IPs; one v=spf1 record per name, so merge the include: into an existing one`,
  }
}

export function dmarcRecord(domain: string): PublishRecord {
  return {
    purpose: 'dmarc', type: 'TXT', name: `_dmarc.${domain}`, value: 'v=DMARC1; p=none',
    note: 'DMARC: a suggestion; start with p=none (add rua=mailto:<your address> for reports), move to p=quarantine once the reports show all your mail aligned',
  }
}

const SPF = /^v=spf1(\s|$)/i
const DMARC = /^v=DMARC1\s*(;|$)/i

/** The SPF record of a name with the service's include: added before its `all` term (or at its end). */
export function withInclude(spf: string, include: string): string {
  const terms = spf.trim().split(/\s+/)
  const all = terms.findIndex((t) => /^[-~?+]?all$/i.test(t))
  if (all < 0) return [...terms, `include:${include}`].join(' ')
  return [...terms.slice(0, all), `include:${include}`, ...terms.slice(all)].join(' ')
}

function quoted(values: string[]): string {
  return values.map((v) => `"${v}"`).join(', ')
}

/** Checks the SPF record at the domain: exactly one v=spf1 record, holding include:<service SPF name>. */
export function checkSpf(r: PublishRecord, lookup: TxtLookup, serviceDomain: string): Omit<RecordCheck, keyof PublishRecord> {
  if (lookup.state === 'failed') return { state: 'unknown', found: [], fix: `the lookup of TXT ${r.name} failed (${lookup.error}); try again later` }
  const spf = lookup.state === 'found' ? lookup.values.filter((v) => SPF.test(v)) : []
  const include = serviceSpfName(serviceDomain)
  if (spf.length === 0) return { state: 'missing', found: [], fix: `publish TXT ${r.name} "${r.value}"` }
  if (spf.length > 1) return { state: 'wrong', found: spf, fix: `${r.name} has ${spf.length} SPF records, which receivers treat as an error (permerror): merge them into one that holds include:${include}` }
  const has = spf[0].split(/\s+/).some((t) => /^\+?include:/i.test(t) && t.replace(/^\+?include:/i, '').toLowerCase().replace(/\.$/, '') === include)
  if (has) return { state: 'right', found: spf, fix: '' }
  return { state: 'wrong', found: spf, fix: `the SPF record of ${r.name} does not include the service: change it to "${withInclude(spf[0], include)}"` }
}

/** Checks DMARC at `_dmarc.<domain>`, or inherited from a parent's: one v=DMARC1 record with a valid p= tag. */
export async function checkDmarc(resolver: Pick<dns.promises.Resolver, 'resolveTxt'>, r: PublishRecord, domain: string): Promise<Omit<RecordCheck, keyof PublishRecord>> {
  // the domain first, then its parents (receivers fall back to the organisational domain's record, RFC 7489 6.6.3)
  for (const name of domainAndParents(domain)) {
    const lookup = await lookupTxt(resolver, `_dmarc.${name}`)
    if (lookup.state === 'failed') return { state: 'unknown', found: [], fix: `the lookup of TXT _dmarc.${name} failed (${lookup.error}); try again later` }
    const dmarc = lookup.state === 'found' ? lookup.values.filter((v) => DMARC.test(v)) : []
    if (dmarc.length === 0) continue
    const from = name === domain ? '' : ` (inherited from _dmarc.${name})`
    if (dmarc.length > 1) return { state: 'wrong', found: dmarc, fix: `_dmarc.${name} has ${dmarc.length} DMARC records, so receivers ignore them all: keep one${from}` }
    const p = /(?:^|;)\s*p\s*=\s*([^;\s]*)/i.exec(dmarc[0])?.[1]?.toLowerCase()
    if (!p || !['none', 'quarantine', 'reject'].includes(p)) return { state: 'wrong', found: dmarc, fix: `the DMARC record at _dmarc.${name} has no valid p= tag (none, quarantine or reject): e.g. "${r.value}"${from}` }
    return { state: 'right', found: dmarc, fix: '' }
  }
  return { state: 'missing', found: [], fix: `publish TXT ${r.name} "${r.value}"` }
}

/** Every record a customer publishes for an added domain: verification, DKIM (each key), SPF, DMARC. */
export function recordsFor(d: Domain, serviceDomain: string, dkim: DkimRecord[] = []): PublishRecord[] {
  if (!d.verification) throw new InputError(`${d.domain} is the tenant's own name at the service: its records are the operator's (docs/domains.md)`)
  return [
    { purpose: 'verification', ...d.verification, note: 'proves the domain is yours; keep it published' },
    ...dkim.map((k): PublishRecord => ({
      purpose: 'dkim', type: 'TXT', name: k.name, value: k.value, selector: k.selector,
      note: {
        active: `DKIM: the public key of selector ${k.selector}, for signatures with d=${d.domain}`,
        pending: `DKIM: the new key (selector ${k.selector}) of a rotation; signing switches to it once this record is seen`,
        retiring: `DKIM: the replaced key (selector ${k.selector}); keep it until ${k.until}, mail signed before the switch still needs it`,
      }[k.state],
    })),
    spfRecord(d.domain, serviceDomain),
    dmarcRecord(d.domain),
  ]
}

/** The records of a tenant's added domain; the DKIM ones from lib/dkim.ts (a key is made if the domain has none). */
export async function domainRecords(redis: Redis, settings: Pick<Settings, 'serviceDomain'>, slug: string, domain: string): Promise<{ domain: Domain; records: PublishRecord[] }> {
  const d = await requireDomain(redis, settings, slug, domain)
  recordsFor(d, settings.serviceDomain) // refuses the tenant's own name before a key is made for it
  let dkim = await dkimRecords(redis, d.domain)
  if (!dkim.length) {
    // the verified owner removed the domain (and its key) while this tenant had it pending: a new key
    await createDomainKey(redis, d.domain)
    dkim = await dkimRecords(redis, d.domain)
  }
  return { domain: d, records: recordsFor(d, settings.serviceDomain, dkim) }
}

/** Looks the verification, SPF and DMARC records up and says, record by record, right / missing / wrong (unknown: the lookup failed). */
export async function checkRecords(resolver: Pick<dns.promises.Resolver, 'resolveTxt'>, domain: string, records: PublishRecord[], serviceDomain: string): Promise<RecordCheck[]> {
  return Promise.all(records.map(async (r): Promise<RecordCheck> => {
    if (r.purpose === 'dkim') throw new Error('DKIM records are checked by lib/dkim.ts checkDkimRecords (checkDomainRecords)')
    if (r.purpose === 'dmarc') return { ...r, ...(await checkDmarc(resolver, r, domain)) }
    const lookup = await lookupTxt(resolver, r.name)
    if (r.purpose === 'spf') return { ...r, ...checkSpf(r, lookup, serviceDomain) }
    const { state, found } = verificationState(lookup, r)
    const fix = {
      right: '',
      missing: `publish TXT ${r.name} "${r.value}"`,
      wrong: `the TXT record at ${r.name} does not hold this domain's token: replace it with "${r.value}" (found ${quoted(found)})`,
      unknown: `the lookup of TXT ${r.name} failed; try again later`,
    }[state]
    return { ...r, state, found, fix }
  }))
}

/**
 * `posta domain check`: every record of a tenant's domain looked up; DKIM through lib/dkim.ts, which first completes a
 * rotation whose new record is in DNS. allRight leaves out retiring DKIM records (they may go).
 */
export async function checkDomainRecords(redis: Redis, settings: Pick<Settings, 'serviceDomain'>, slug: string, domain: string, resolver: Pick<dns.promises.Resolver, 'resolveTxt'>): Promise<{ domain: Domain; records: RecordCheck[]; allRight: boolean }> {
  const { domain: d, records } = await domainRecords(redis, settings, slug, domain)
  const dkim = await checkDkimRecords(redis, d.domain, resolver)
  const dkimChecks = recordsFor(d, settings.serviceDomain, dkim.records).filter((r) => r.purpose === 'dkim').map((r, i): RecordCheck => ({
    ...r, state: dkim.records[i].check, found: dkim.records[i].found, fix: dkim.records[i].fix,
  }))
  const [verification, ...rest] = await checkRecords(resolver, d.domain, records.filter((r) => r.purpose !== 'dkim'), settings.serviceDomain)
  const all = [verification, ...dkimChecks, ...rest]
  const allRight = all.every((c, i) => c.state === 'right' || (c.purpose === 'dkim' && dkim.records[i - 1]?.state === 'retiring'))
  return { domain: d, records: all, allRight }
}
