// posta-domains: the sender policy (config/posta-domains.ini, docs/domains.md). Under `verified` (the default) a
// tenant sends only as its own domains: the envelope sender's domain at MAIL FROM and the From: header's domain at
// end of DATA must be `<slug>.<service domain>` or a verified domain of the tenant (or a subdomain of either), else
// 550 5.7.1 naming the domain and how to verify it. `any` turns the check off. The null sender <> from a tenant is
// refused under both: so the bounces of relayed mail go only to the tenant's own domains.
// Every tenant message gets a Feedback-ID header naming tenant, package and service (a client's own is replaced).
// Cost: one Redis round trip per MAIL FROM (the tenant's domains and package), kept for that transaction only, so a
// domain verified or removed counts from the next MAIL FROM. Mail Posta makes itself (DSNs, notices) passes no SMTP
// hook and is untouched.
import { normaliseDomain } from '../../lib/addresses'
import { feedbackId, senderAllowed, type SenderContext } from '../../lib/domains'
import { InputError } from '../../lib/errors'
import { DOMAINS_INI } from '../../lib/inis'
import { tenantOf } from '../../lib/submission'
import { addr, constants, DSN, getRedis, getSettings, guard, messageFields, type Address, type Connection, type Next, type Plugin, type Transaction } from '../shared/haraka'
import { chained } from '../shared/chain'
import { transactionContext } from '../shared/sender'
import { loadIni } from '../shared/settings'

let policy: 'verified' | 'any' = 'verified'

export function register(this: Plugin) {
  loadIni(this, DOMAINS_INI, ({ values: v }) => {
    policy = v.main.policy as 'verified' | 'any'
  })
}

export { hook_init_child, hook_init_master } from '../shared/init'

/**
 * guard(), and with Redis unreachable or slow the same reply as posta-trap's checks: 451 4.3.0 at once (the client
 * keeps the message and retries), never an unchecked acceptance.
 */
function checked<A extends unknown[]>(what: string, fn: (this: Plugin, next: Next, connection: Connection, ...args: A) => Promise<void>) {
  return guard(`${what} failed`, async function (this: Plugin, next: Next, connection: Connection, ...args: A) {
    try {
      await fn.call(this, next, connection, ...args)
    } catch (err) {
      connection.logerror(this, `${what} failed: ${(err as Error).message}`, messageFields(connection))
      next(constants.denysoft, DSN.create(451, 'Account checks are temporarily unavailable, please try again later', 3, 0))
    }
  })
}

function refusal(what: string, domain: string) {
  return DSN.create(550, `${what} domain ${domain} is not a verified sender domain of this account: add and verify it first (posta domain add, then posta domain verify; docs/domains.md), or send from one that is`, 7, 1)
}

/** The domain in its delivered form, or null when it is none (an IP literal, garbage). */
function domainOf(host: string | null | undefined): string | null {
  try {
    return host ? normaliseDomain(String(host)) : null
  } catch (err) {
    if (err instanceof InputError) return null
    throw err
  }
}

/** The context read at MAIL FROM, for the checks of that transaction only (shared with posta-dkim). */
function contextOf(plugin: Plugin, tx: Transaction, slug: string): Promise<SenderContext> {
  return transactionContext(getRedis(plugin), tx, slug)
}

export const hook_mail = chained(checked('sender check', async function (this: Plugin, next: Next, connection: Connection, params: [Address]) {
  const tx = connection.transaction
  const slug = tenantOf(tx?.notes)
  if (!tx || !slug) return next()
  const from = params[0]
  const fields = { ...messageFields(connection), from: addr(from) }
  if (!from?.host) {
    connection.lognotice(this, 'MAIL refused: null sender from a tenant', fields)
    return next(constants.deny, DSN.create(550, 'The null sender <> is not accepted from an account: send from an address at one of your verified domains', 7, 1))
  }
  const ctx = await contextOf(this, tx, slug)
  if (policy === 'any') return next()
  const domain = domainOf(from.host)
  if (!domain || !senderAllowed(ctx, domain, getSettings().serviceDomain)) {
    connection.lognotice(this, 'MAIL refused: sender domain not verified', { ...fields, domain: domain ?? String(from.host) })
    return next(constants.deny, refusal('Sender', domain ?? String(from.host)))
  }
  next()
}))

/** The domains of the From: header, or why it cannot be read (exactly one From: header, mailboxes only). */
function fromDomains(tx: Transaction): { domains: string[] } | { why: string } {
  const all = tx.header.get_all('From')
  if (all.length !== 1) return { why: all.length ? 'more than one From: header' : 'no From: header' }
  let list: { host?: string | null; address?: string }[]
  try {
    list = tx.header.get_addresses('From') as { host?: string | null }[]
  } catch {
    return { why: 'the From: header does not parse' }
  }
  const domains: string[] = []
  for (const a of list) {
    const d = domainOf(a.host)
    if (!d) return { why: `the From: header holds ${a.address ? `"${a.address}"` : 'a group'}, not an address at a domain` }
    domains.push(d)
  }
  return domains.length ? { domains } : { why: 'the From: header holds no address' }
}

export const hook_data_post = chained(checked('From: check', async function (this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const slug = tenantOf(tx?.notes)
  if (!tx || !slug) return next()
  const ctx = await contextOf(this, tx, slug)
  const serviceDomain = getSettings().serviceDomain
  if (policy === 'verified') {
    const from = fromDomains(tx)
    if ('why' in from) {
      connection.lognotice(this, 'DATA refused: From: header unreadable', { ...messageFields(connection), error: from.why })
      return next(constants.deny, DSN.create(550, `Message refused: ${from.why}; the From: header must be one address at one of your verified domains`, 7, 1))
    }
    const bad = from.domains.find((d) => !senderAllowed(ctx, d, serviceDomain))
    if (bad) {
      connection.lognotice(this, 'DATA refused: From: domain not verified', { ...messageFields(connection), domain: bad })
      return next(constants.deny, refusal('From: header', bad))
    }
  }
  // the one Feedback-ID is ours: a client's own could name another tenant
  tx.remove_header('Feedback-ID')
  tx.add_header('Feedback-ID', feedbackId(slug, ctx.package, serviceDomain))
  next()
}))
