import * as net from 'node:net'
import { InputError } from './errors'

/** Tenant slug: it becomes a DNS label (`acme.soloposta.biz`), so 1-63 of a-z, 0-9 and inner hyphens. */
export function checkSlug(slug: string): string {
  if (typeof slug !== 'string' || !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(slug)) {
    throw new InputError(
      `bad tenant slug "${slug}": use 1-63 lower-case letters, digits and hyphens, not starting or ending with a hyphen`,
    )
  }
  return slug
}

/** Package name: a short identifier the operator picks (`basic`, `pro-50gb`). */
export function checkPackageName(name: string): string {
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9_.-]{0,63}$/i.test(name)) {
    throw new InputError(`bad package name "${name}": use up to 64 letters, digits, '.', '_' or '-'`)
  }
  return name
}

/** Local part of a login: a dot-atom of letters, digits and . _ - + (no quoting, nothing exotic). */
export function checkLocalPart(local: string): string {
  if (typeof local !== 'string' || !/^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$/.test(local) || local.includes('..')) {
    throw new InputError(`bad local part "${local}": use lower-case letters, digits and . _ - + (e.g. mail, news)`)
  }
  return local
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const DOMAIN_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})+$`)

/** A host name of two or more labels; the last (top-level) label is not all digits, so 999.1.1.1 is no name. */
export function isDomain(domain: string): boolean {
  return typeof domain === 'string' && domain.length <= 253 && DOMAIN_RE.test(domain) && !/\.\d+$/.test(domain)
}

export function checkDomain(domain: string, what = 'domain'): string {
  const d = String(domain).toLowerCase().replace(/\.$/, '')
  if (!isDomain(d)) throw new InputError(`bad ${what} "${domain}": expected a name like example.net`)
  return d
}

/**
 * Slugs no new tenant may take: `<slug>.<service domain>` would be, or would look to a customer like, one of the
 * service's own host names (its greeting name, MX, panel, mail-client autoconfiguration, the pool's HELO names).
 */
export const RESERVED_SLUGS: readonly string[] = [
  'abuse', 'account', 'accounts', 'admin', 'administrator', 'api', 'autoconfig', 'autodiscover', 'billing', 'bounce',
  'bounces', 'cdn', 'dashboard', 'dkim', 'dmarc', 'dns', 'docs', 'email', 'ftp', 'help', 'hostmaster', 'imap', 'imaps',
  'inbound', 'isatap', 'localhost', 'login', 'mail', 'mailer-daemon', 'mx', 'noc', 'ns', 'outbound', 'panel', 'pop',
  'pop3', 'pop3s', 'portal', 'postmaster', 'relay', 'root', 'security', 'smtp', 'smtps', 'spf', 'static', 'status',
  'submission', 'support', 'webmail', 'webmaster', 'web', 'wpad', 'www',
]
/** Families of the same names: mta, mta7, mta-sts...; mx1, smtp2, mail3, ns1, relay4, imap1, pop2, out5, www2. */
const RESERVED_PATTERNS = [/^mta/, /^(mx|smtp|mail|ns|relay|imap|pop|out|www|web)-?\d+$/]

/** The service's own host names, whose labels no new tenant may take as its slug. */
export interface OwnHosts {
  /** The name Haraka announces (POSTA_HOSTNAME): its first label is reserved, whatever its domain. */
  hostname?: string
  /** Host names of the service (the pool's HELO names): those inside the service domain reserve their label there. */
  names?: readonly string[]
  serviceDomain?: string
}

/** The labels `own` reserves: POSTA_HOSTNAME's first label, and the label of each own name just left of the service domain. */
function ownLabels(own: OwnHosts): string[] {
  const out: string[] = []
  const suffix = own.serviceDomain ? `.${own.serviceDomain.toLowerCase()}` : null
  for (const [i, raw] of [own.hostname ?? '', ...(own.names ?? [])].entries()) {
    const h = String(raw).toLowerCase().replace(/\.$/, '')
    if (!h) continue
    if (i === 0) out.push(h.split('.')[0])
    if (suffix && h.endsWith(suffix)) out.push(h.slice(0, -suffix.length).split('.').pop()!)
  }
  return out
}

/**
 * A slug a new tenant may take: a valid slug, not reserved, and not a label of the service's own host names
 * (see OwnHosts). Existing tenants are not affected: this is checked at creation only.
 */
export function checkNewSlug(slug: string, own: OwnHosts = {}): string {
  checkSlug(slug)
  if (RESERVED_SLUGS.includes(slug) || RESERVED_PATTERNS.some((re) => re.test(slug)) || ownLabels(own).includes(slug)) {
    throw new InputError(
      `tenant slug "${slug}" is reserved: ${slug}.<service domain> would look like one of the service's own host names; pick another`,
    )
  }
  return slug
}

/** Input shown in an error message with control characters escaped (\x01), so it cannot break the terminal or a log. */
function visible(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => (c.charCodeAt(0) > 0xff ? `\\u${c.charCodeAt(0).toString(16)}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
}

/**
 * A local part as we accept it for a recipient we write to: a dot-atom of RFC 5322 atext, less the routing
 * characters % and ! (a receiver may honour them and forward elsewhere); no quoting, no control characters, no
 * spaces, nothing but printable ASCII.
 */
const MAILBOX_LOCAL = /^[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*$/

/**
 * A contact address, validated like a recipient (Posta sends quota notices to it): `local@domain` with a dot-atom
 * local part of at most 64 characters and no routing syntax (%-hack, bang path, source route, quoting, a second @),
 * no control characters, and a real host name as domain (international names written as xn--). Returns it with
 * the domain lower-cased and without its trailing dot.
 */
export function checkEmail(address: string, what = 'contact address'): string {
  const raw = String(address)
  const at = raw.lastIndexOf('@')
  const local = at > 0 ? raw.slice(0, at) : ''
  const domain = raw.slice(at + 1).toLowerCase().replace(/\.$/, '')
  const printable = visible(raw)
  if (at < 1 || local.length > 64 || raw.length > 254 || !MAILBOX_LOCAL.test(local)) {
    // eslint-disable-next-line no-control-regex
    const why = /[\x00-\x1f\x7f]/.test(raw)
      ? 'it holds a control character'
      : /[%!"]/.test(local) || /^@.*:/.test(raw) || (raw.indexOf('@') > 0 && raw.indexOf('@') !== at)
        ? 'routing syntax (%, !, a source route, quoting or a second @) is not accepted'
        : /[^\x21-\x7e]/.test(raw)
          ? 'use printable ASCII only, without spaces'
          : 'expected an address like ops@example.net'
    throw new InputError(`bad ${what} "${printable}": ${why}`)
  }
  if (!isDomain(domain)) {
    const hint = /[^\x00-\x7f]/.test(domain) ? ' (write an international domain as xn--...)' : ''
    throw new InputError(`bad ${what} "${printable}": "${visible(domain)}" is not a host name like example.net${hint}`)
  }
  return `${local}@${domain}`
}

/** host[:port] of a static route: a host name or IP (IPv6 in brackets), port 1-65535 (default 25). */
export function parseRouteTarget(target: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?$/.exec(String(target))
  const bad = () =>
    new InputError(`bad route target "${target}": expected host[:port], e.g. smtp.example.net:25 or [2001:db8::1]:587`)
  if (!m) throw bad()
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1].toLowerCase()
  if (m[1].startsWith('[') ? net.isIPv6(host) === false : !(net.isIPv4(host) || isDomain(host) || host === 'localhost')) {
    throw bad()
  }
  const port = m[2] === undefined ? 25 : Number(m[2])
  if (!(port >= 1 && port <= 65535)) throw bad()
  return { host, port }
}
