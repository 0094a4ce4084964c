// Address normalisation for matching: spamtraps (an address may be written many ways) and bans (a banned customer
// must not come back with Ops+new@Example.com or o.p.s@gmail.com). Pure functions, no Redis.
import { InputError } from './errors'
import { isDomain } from './validate'

export interface Normalised {
  local: string
  domain: string
  /** local@domain, lower-case, quotes removed, no trailing dot. */
  address: string
}

/** Characters an unquoted local part may not hold (RFC 5321 specials, whitespace, controls). */
const UNQUOTED_BAD = /[\s"(),:;<>@[\\\]\x00-\x1f\x7f]/
/** Characters no local part may hold, quoted or not: controls and line breaks. */
const ALWAYS_BAD = /[\x00-\x1f\x7f]/

/**
 * The form two spellings of one mailbox share: the domain lower-cased without its trailing dot, a quoted local part
 * unquoted ("Old.Box" -> old.box, with \-escapes), the local part lower-cased (every mailbox provider we care about
 * treats it case-insensitively, and a trap must not be dodged by capitals).
 */
export function normaliseAddress(input: string): Normalised {
  const raw = String(input).trim().replace(/^<(.*)>$/, '$1')
  const at = raw.lastIndexOf('@')
  if (at < 1 || at === raw.length - 1) throw new InputError(`bad address "${input}": expected local@domain`)
  let local = raw.slice(0, at)
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"')) {
    local = local.slice(1, -1).replace(/\\(.)/g, '$1')
    if (!local || ALWAYS_BAD.test(local)) throw new InputError(`bad address "${input}": bad quoted local part`)
  } else if (UNQUOTED_BAD.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    throw new InputError(`bad address "${input}": bad local part (quote it if it really holds "${local.match(UNQUOTED_BAD)?.[0] ?? '.'}")`)
  }
  if (local.length > 64) throw new InputError(`bad address "${input}": the local part is longer than 64 characters`)
  const domain = raw.slice(at + 1).toLowerCase().replace(/\.$/, '')
  if (!isDomain(domain)) throw new InputError(`bad address "${input}": "${domain}" is not a domain`)
  local = local.toLowerCase()
  return { local, domain, address: `${local}@${domain}` }
}

/** Providers that ignore dots in the local part, and the domain each is an alias of. */
const DOTLESS: Record<string, string> = { 'gmail.com': 'gmail.com', 'googlemail.com': 'gmail.com' }

/** A contact address as a person: plus-addressing dropped, dots dropped where the provider ignores them. */
export function canonicalContact(input: string): string {
  const n = normaliseAddress(input)
  let local = n.local.replace(/\+.*$/, '') || n.local
  const domain = DOTLESS[n.domain] ?? n.domain
  if (DOTLESS[n.domain]) local = local.replace(/\./g, '')
  return `${local}@${domain}`
}

/** A domain and its parents down to two labels: a.b.example.net -> [a.b.example.net, b.example.net, example.net]. */
export function domainAndParents(domain: string): string[] {
  const labels = domain.toLowerCase().replace(/\.$/, '').split('.')
  const out: string[] = []
  for (let i = 0; i <= labels.length - 2; i++) out.push(labels.slice(i).join('.'))
  return out
}

/** Parses a list of domains, one a line, `#` comments (the format of config/posta-freemail). */
export function parseDomainList(text: string): Set<string> {
  const out = new Set<string>()
  for (const raw of text.split(/\r?\n/)) {
    const d = raw.replace(/[#;].*$/, '').trim().toLowerCase().replace(/\.$/, '')
    if (d && isDomain(d)) out.add(d)
  }
  return out
}
