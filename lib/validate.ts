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

/** A contact address: a plain addr-spec with a real domain, lower-cased domain. */
export function checkEmail(address: string, what = 'contact address'): string {
  const m = /^([^\s@"<>()\[\],;:\\]{1,64})@([^\s@]+)$/.exec(String(address))
  if (!m || !isDomain(m[2].toLowerCase().replace(/\.$/, ''))) {
    throw new InputError(`bad ${what} "${address}": expected an address like ops@example.net`)
  }
  return `${m[1]}@${m[2].toLowerCase().replace(/\.$/, '')}`
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
