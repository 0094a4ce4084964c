// DNS blocklist queries with correct reply semantics, per zone, as data: which answers are listings (and what they
// mean), which are errors, which zones only inform. Every check is LISTED, NOT_LISTED or UNKNOWN; UNKNOWN (timeout,
// SERVFAIL, an error code, a zone failing its canary) never changes anything.
import * as dns from 'node:dns'
import * as net from 'node:net'

export type CheckState = 'LISTED' | 'NOT_LISTED' | 'UNKNOWN'

export interface Zone {
  name: string
  /** Listing answers and their meaning; an answer not in the map but not an error is a listing "listed". */
  listed: Map<string, string>
  /** Answers (exact or CIDR) that are errors, never listings. */
  errors: string[]
  /** Listing answers that inform but do not suspend (e.g. Spamhaus PBL). A zone may be wholly informational. */
  informational: string[]
  informationalZone: boolean
  ipv6: boolean
}

export interface CheckResult {
  zone: string
  state: CheckState
  answers: string[]
  /** What the listing means (SBL, XBL, ...), or why the check is UNKNOWN. */
  meaning: string
  /** The listing grounds a suspension (not informational). */
  actionable: boolean
  txt?: string
}

/** The query name: reversed octets for IPv4, reversed nibbles for IPv6 (RFC 5782), under the zone. */
export function queryName(ip: string, zone: string): string {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.${zone}`
  if (!net.isIPv6(ip)) throw new Error(`not an IP address: ${ip}`)
  const [head, tail = ''] = ip.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  const hex = groups.map((g) => g.padStart(4, '0')).join('').toLowerCase()
  return `${hex.split('').reverse().join('.')}.${zone}`
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)
}

/** Whether an IPv4 answer matches an exact address or a CIDR block (127.255.255.0/24). */
export function matches(answer: string, pattern: string): boolean {
  if (!pattern.includes('/')) return answer === pattern
  const [base, bits] = pattern.split('/')
  if (!net.isIPv4(answer) || !net.isIPv4(base)) return false
  const block = 2 ** (32 - Number(bits))
  return Math.floor(ipv4ToInt(answer) / block) === Math.floor(ipv4ToInt(base) / block)
}

/** Classifies the A answers of one query. */
export function classify(zone: Zone, answers: string[]): Omit<CheckResult, 'txt'> {
  const errors = answers.filter((a) => zone.errors.some((p) => matches(a, p)))
  const listings = answers.filter((a) => !errors.includes(a) && net.isIPv4(a) && a.startsWith('127.'))
  if (listings.length === 0) {
    return {
      zone: zone.name,
      state: 'UNKNOWN',
      answers,
      meaning: errors.length ? `error answer ${errors.join(',')}` : `unexpected answer ${answers.join(',')}`,
      actionable: false,
    }
  }
  const meanings = [...new Set(listings.map((a) => zone.listed.get(a) ?? 'listed'))]
  const actionable = !zone.informationalZone && listings.some((a) => !zone.informational.some((p) => matches(a, p)))
  return { zone: zone.name, state: 'LISTED', answers, meaning: meanings.join(','), actionable }
}

const UNKNOWN_CODES = new Set(['ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'EREFUSED', 'ECANCELLED', 'EBADRESP', 'ECONNRESET', 'EFORMERR'])

/** One query: NXDOMAIN (or no A record) is NOT_LISTED; failures are UNKNOWN; answers are classified. */
export async function check(resolver: dns.promises.Resolver, ip: string, zone: Zone, withTxt = true): Promise<CheckResult> {
  const name = queryName(ip, zone.name)
  let answers: string[]
  try {
    answers = await resolver.resolve4(name)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { zone: zone.name, state: 'NOT_LISTED', answers: [], meaning: '', actionable: false }
    return { zone: zone.name, state: 'UNKNOWN', answers: [], meaning: UNKNOWN_CODES.has(code) ? code : `${code}`, actionable: false }
  }
  const result: CheckResult = classify(zone, answers)
  if (result.state === 'LISTED' && withTxt) {
    try {
      result.txt = (await resolver.resolveTxt(name)).map((r) => r.join('')).join(' | ').slice(0, 500)
    } catch {
      /* a listing without a TXT reason is still a listing */
    }
  }
  return result
}

/** RFC 5782 canary: 127.0.0.2 must be listed and 127.0.0.1 must not be; otherwise the zone's answers are ignored. */
export async function canary(resolver: dns.promises.Resolver, zone: Zone): Promise<{ healthy: boolean; reason: string }> {
  const [pos, neg] = await Promise.all([check(resolver, '127.0.0.2', zone, false), check(resolver, '127.0.0.1', zone, false)])
  if (pos.state !== 'LISTED') return { healthy: false, reason: `127.0.0.2 is ${pos.state}${pos.meaning ? ` (${pos.meaning})` : ''}, expected LISTED` }
  if (neg.state !== 'NOT_LISTED') return { healthy: false, reason: `127.0.0.1 is ${neg.state}${neg.meaning ? ` (${neg.meaning})` : ''}, expected NOT_LISTED` }
  return { healthy: true, reason: '' }
}

export function makeResolver(servers: string[], timeoutMs: number): dns.promises.Resolver {
  const r = new dns.promises.Resolver({ timeout: timeoutMs, tries: 1 })
  if (servers.length) r.setServers(servers)
  return r
}

/** Parses a zone from its ini section: listed=code:meaning,...  errors=a,b/24  informational=...  ipv6=true */
export function zoneFromIni(name: string, sec: Record<string, unknown> = {}): Zone {
  const list = (v: unknown) => String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  const listed = new Map<string, string>()
  for (const item of list(sec.listed)) {
    const [code, meaning] = item.split(':')
    listed.set(code.trim(), (meaning ?? 'listed').trim())
  }
  return {
    name,
    listed,
    errors: list(sec.errors),
    informational: list(sec.informational),
    informationalZone: sec.informational_zone === true || sec.informational_zone === 'true',
    ipv6: sec.ipv6 === true || sec.ipv6 === 'true',
  }
}
