// The one address normalisation of the project: spamtraps, suppression, bans and the ledger all compare addresses
// and domains in the form computed here, so an address cannot be written one way to dodge a check and delivered
// another way. Pure functions, no Redis.
//
// The domain is mapped exactly as the delivery maps it. Haraka's parser (@haraka/email-address 3.1.6,
// lib/literals.js toASCIIDomain) turns a domain with any non-ASCII character into node's `url.domainToASCII`
// (UTS #46 non-transitional processing: NFKC case folding, the ideographic full stop and its kin read as dots,
// ignorables such as U+00AD and U+200B removed, then Punycode) and lower-cases it; outbound looks up the MX of that
// `host` (outbound/index.js) and sends it as the RCPT domain unless the next hop speaks SMTPUTF8. An ASCII domain is
// only lower-cased. We call the same function on the same input in the same process: the same answer.
//
// The local part is delivered as written; the receiving server decides what it means. We compare it in the widest
// form a mailbox server could reduce it to (NFKC, default-ignorable code points removed, lower case), and a `+tag`
// sub-address also as its base mailbox (`bait+promo` is delivered to `bait` by the servers that support tags).
import { domainToASCII, domainToUnicode } from 'node:url'
import { InputError } from './errors'
import { isDomain } from './validate'

export interface Normalised {
  /** The local part in its matching form: NFKC, no ignorables, lower case, unquoted, the +tag kept. */
  local: string
  /** The local part without its +tag: the mailbox a tag-aware server delivers to (`bait+x` -> `bait`). */
  mailbox: string
  /** The domain as delivered: UTS #46 to ASCII (A-labels), lower case, no trailing dot. */
  domain: string
  /** local@domain, the local part quoted again where it needs it: normaliseAddress(address) gives it back. */
  address: string
  /** mailbox@domain: equal to address when there is no +tag. */
  base: string
}

/** Characters an unquoted local part may not hold (RFC 5321 specials, whitespace, controls). */
const UNQUOTED_BAD = /[\s"(),:;<>@[\\\]\x00-\x1f\x7f]/
/** Characters no local part may hold, quoted or not: controls and line breaks (C0, DEL, C1, U+2028/9). */
const ALWAYS_BAD = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/
const NON_ASCII = /[^\x00-\x7f]/
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu
/** At most this many octets in a local part, after mapping (RFC 5321 4.5.3.1.1). */
const LOCAL_MAX = 64

/**
 * A domain as the delivery will use it (see the top of this file): an ASCII domain lower-cased, any other through
 * `url.domainToASCII` like Haraka; then no trailing dot, and it must be a host name of two or more labels whose
 * A-labels are valid. Throws InputError (with `what` in the message) when it is not.
 */
export function normaliseDomain(input: string, what = 'domain'): string {
  const raw = String(input ?? '').trim()
  const bad = (why: string) => new InputError(`bad ${what} "${input}": ${why}`)
  let d: string
  if (NON_ASCII.test(raw)) {
    d = domainToASCII(raw).toLowerCase()
    if (!d) throw bad('not a valid international domain name')
  } else {
    d = raw.toLowerCase()
  }
  d = d.replace(/\.$/, '')
  if (!isDomain(d)) throw bad('expected a name like example.net')
  // xn-- labels must decode to a valid U-label: an ASCII domain is delivered as written, so a bogus A-label is
  // refused rather than guessed at (domainToASCII is the identity on a valid lower-case ASCII name).
  if (d.includes('xn--') && !d.split('.').every(validALabel)) throw bad('an xn-- label is not valid Punycode')
  return d
}

/**
 * True unless the label is an xn-- label that does not decode to a U-label which encodes back to it. Checked label
 * by label, because Node's own answer for a bogus A-label changed: 20 and 22 map `xn--zz` to '', 24 hands it back
 * unchanged from both domainToASCII and domainToUnicode.
 */
function validALabel(label: string): boolean {
  if (!label.startsWith('xn--')) return true
  const u = domainToUnicode(label)
  return u !== '' && !u.startsWith('xn--') && domainToASCII(u) === label
}

/** The matching form of a local part's characters: NFKC, default-ignorable code points removed, lower case. */
function mapLocal(s: string): string {
  // Lower-casing can leave a string that NFKC changes again (and NFKC can yield an ignorable): map to the fixed
  // point, so that mapping twice is mapping once.
  let out = s
  for (let i = 0; i < 4; i++) {
    const next = out.normalize('NFKC').replace(IGNORABLE, '').toLowerCase().normalize('NFKC')
    if (next === out) break
    out = next
  }
  return out
}

/** A dot-atom needs no quotes; anything else is written back quoted, with \ before " and \. */
function formatLocal(local: string): string {
  if (!UNQUOTED_BAD.test(local) && !local.startsWith('.') && !local.endsWith('.') && !local.includes('..')) return local
  return `"${local.replace(/["\\]/g, '\\$&')}"`
}

/** `+tag` dropped; a local part that is all tag stays as it is. */
function mailboxOf(local: string): string {
  const plus = local.indexOf('+')
  return plus > 0 ? local.slice(0, plus) : local
}

/**
 * The form two spellings of one mailbox share (see the top of this file): the domain as delivered, the local part
 * mapped (NFKC, no ignorables, lower case) and unquoted (`"Old.Box"` -> `old.box`, with \-escapes). Throws an
 * InputError saying why for what is not local@domain: callers that guard something refuse such an address.
 * Idempotent: normaliseAddress(normaliseAddress(x).address) equals normaliseAddress(x).
 */
export function normaliseAddress(input: string): Normalised {
  const raw = String(input ?? '').trim().replace(/^<(.*)>$/, '$1')
  const at = raw.lastIndexOf('@')
  if (at < 1 || at === raw.length - 1) throw new InputError(`bad address "${input}": expected local@domain`)
  let local = mapLocal(raw.slice(0, at))
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"')) {
    local = local.slice(1, -1).replace(/\\(.)/gs, '$1')
    if (!local || ALWAYS_BAD.test(local)) throw new InputError(`bad address "${input}": bad quoted local part`)
  } else if (!local || UNQUOTED_BAD.test(local) || ALWAYS_BAD.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    throw new InputError(`bad address "${input}": bad local part (quote it if it really holds "${local.match(UNQUOTED_BAD)?.[0] ?? '.'}")`)
  }
  if (Buffer.byteLength(local, 'utf8') > LOCAL_MAX) throw new InputError(`bad address "${input}": the local part is longer than ${LOCAL_MAX} octets`)
  const domain = normaliseDomain(raw.slice(at + 1), `address "${input}": the domain`)
  const mailbox = mailboxOf(local)
  return { local, mailbox, domain, address: `${formatLocal(local)}@${domain}`, base: `${formatLocal(mailbox)}@${domain}` }
}

/** Providers that ignore dots in the local part, and the domain each is an alias of. */
const DOTLESS: Record<string, string> = { 'gmail.com': 'gmail.com', 'googlemail.com': 'gmail.com' }

/** A contact address as a person: plus-addressing dropped, dots dropped where the provider ignores them. */
export function canonicalContact(input: string): string {
  const n = normaliseAddress(input)
  const domain = DOTLESS[n.domain] ?? n.domain
  const local = DOTLESS[n.domain] ? n.mailbox.replace(/\./g, '') || n.mailbox : n.mailbox
  return `${formatLocal(local)}@${domain}`
}

/** A domain and its parents down to two labels: a.b.example.net -> [a.b.example.net, b.example.net, example.net]. */
export function domainAndParents(domain: string): string[] {
  const labels = domain.toLowerCase().replace(/\.$/, '').split('.')
  const out: string[] = []
  for (let i = 0; i <= labels.length - 2; i++) out.push(labels.slice(i).join('.'))
  return out
}

/** True when the domain or one of its parents is in the set (the set holds normalised domains). */
export function inDomainSet(set: ReadonlySet<string>, domain: string): boolean {
  return domainAndParents(domain).some((d) => set.has(d))
}

/**
 * Parses a list of domains, one a line, `#` comments (the format of config/posta-freemail), each normalised like a
 * delivered domain (an operator may write `例え.jp` or `Example.NET.`). Lines that are no domain are skipped.
 */
export function parseDomainList(text: string): Set<string> {
  const out = new Set<string>()
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, '').trim()
    if (!line) continue
    try {
      out.add(normaliseDomain(line))
    } catch {
      /* not a domain: skipped */
    }
  }
  return out
}
