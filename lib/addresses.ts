// Address normalisation for matching: spamtraps (an address may be written many ways) and bans (a banned customer
// must not come back with Ops+new@Example.com or o.p.s@gmail.com).
import { InputError } from './errors'
import { isDomain } from './validate'

export interface Normalised {
  local: string
  domain: string
  /** local@domain, lower-case, quotes removed, no trailing dot. */
  address: string
}

/** Unquotes a quoted local part ("a.b" -> a.b, with \\-escapes) and lower-cases; domain case and trailing dot go. */
export function normaliseAddress(input: string): Normalised {
  const raw = String(input).trim().replace(/^<|>$/g, '')
  const at = raw.lastIndexOf('@')
  if (at < 1 || at === raw.length - 1) throw new InputError(`bad address "${input}": expected local@domain`)
  let local = raw.slice(0, at)
  if (local.startsWith('"') && local.endsWith('"') && local.length >= 2) local = local.slice(1, -1).replace(/\\(.)/g, '$1')
  const domain = raw.slice(at + 1).toLowerCase().replace(/\.$/, '')
  if (!isDomain(domain)) throw new InputError(`bad address "${input}": "${domain}" is not a domain`)
  if (!local || local.length > 64 || /[\s<>]/.test(local)) throw new InputError(`bad address "${input}": bad local part`)
  local = local.toLowerCase()
  return { local, domain, address: `${local}@${domain}` }
}

/** Providers that ignore dots in the local part, and their aliases. */
const DOTLESS: Record<string, string> = { 'gmail.com': 'gmail.com', 'googlemail.com': 'gmail.com' }

/** A contact address as a person: plus-addressing dropped, dots dropped where the provider ignores them. */
export function canonicalContact(input: string): string {
  const n = normaliseAddress(input)
  let local = n.local.replace(/\+.*$/, '')
  const domain = DOTLESS[n.domain] ?? n.domain
  if (DOTLESS[n.domain]) local = local.replace(/\./g, '')
  return `${local}@${domain}`
}

/** Mailbox providers whose whole domain must never be banned because one customer used it. */
export const FREEMAIL = new Set([
  'gmail.com', 'googlemail.com', 'outlook.com', 'hotmail.com', 'hotmail.it', 'live.com', 'live.it', 'msn.com', 'yahoo.com', 'yahoo.it',
  'icloud.com', 'me.com', 'aol.com', 'gmx.com', 'gmx.net', 'gmx.de', 'web.de', 'mail.com', 'protonmail.com', 'proton.me', 'libero.it',
  'virgilio.it', 'alice.it', 'tin.it', 'tiscali.it', 'fastwebnet.it', 'email.it', 'yandex.com', 'yandex.ru', 'mail.ru', 'zoho.com', 'qq.com',
])
