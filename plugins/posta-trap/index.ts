// posta-trap: a recipient that is a spamtrap closes and bans the tenant before the message leaves our IPs;
// a closed tenant's open sessions are refused from their next command; suppressed recipients are refused.
import { banTenant } from '../../lib/bans'
import { keys } from '../../lib/keys'
import { suppressedUntil } from '../../lib/suppression'
import { matchTrap, recordTrapHit } from '../../lib/traps'
import { addr, constants, DSN, getRedis, guard, messageFields, type Address, type Connection, type Next, type Plugin } from '../shared/haraka'

let typoStrikes = 3

export function register(this: Plugin) {
  load_trap_ini.call(this)
}

function load_trap_ini(this: Plugin) {
  const ini = this.config.get('posta-trap.ini', () => load_trap_ini.call(this))
  const n = Number(ini.main?.typo_strikes)
  typoStrikes = Number.isFinite(n) && n > 0 ? n : 3
}

export function hook_init_master(this: Plugin, next: Next) {
  getRedis(this)
  next()
}
export function hook_init_child(this: Plugin, next: Next) {
  getRedis(this)
  next()
}

/** Generic on purpose: a tenant must not learn which recipient was a trap. */
const refused = () => DSN.create(550, 'Message refused by policy', 7, 1)
const closed = () => DSN.create(554, 'This account is closed', 7, 1)

/** The tenant's status now: a closed (or suspended) tenant's open sessions stop at their next command. */
async function tenantActive(plugin: Plugin, slug: string): Promise<boolean> {
  return (await getRedis(plugin).hget(keys.tenant(slug), 'status')) === 'active'
}

export const hook_mail = guard('account check failed', async function (this: Plugin, next: Next, connection: Connection, params: [Address]) {
  const slug = connection.transaction?.notes.tenant as string | undefined
  if (!slug) return next()
  if (!(await tenantActive(this, slug))) {
    connection.lognotice(this, 'MAIL refused: tenant not active', messageFields(connection))
    return next(constants.deny, closed())
  }
  // Evidence kept for a ban: the sender domains and client addresses this tenant uses.
  const redis = getRedis(this)
  const host = params[0]?.host
  if (host) void redis.sadd(keys.tenantSenders(slug), host.toLowerCase()).catch(() => {})
  void redis.sadd(keys.tenantClients(slug), connection.remote.ip).catch(() => {})
  next()
})

export const hook_rcpt = guard('recipient check failed', async function (this: Plugin, next: Next, connection: Connection, params: [Address]) {
  const tx = connection.transaction
  const slug = tx?.notes.tenant as string | undefined
  if (!tx || !slug) return next()
  const rcpt = addr(params[0])
  const redis = getRedis(this)
  const [active, trap, until] = await Promise.all([tenantActive(this, slug), matchTrap(redis, rcpt), suppressedUntil(redis, slug, rcpt)])
  const fields = { ...messageFields(connection), to: rcpt }
  if (!active) {
    connection.lognotice(this, 'RCPT refused: tenant not active', fields)
    return next(constants.deny, closed())
  }
  if (trap) {
    const { strikes } = await recordTrapHit(redis, slug, trap)
    const evidence = {
      at: new Date().toISOString(), trap: trap.entry, class: trap.class, recipient: rcpt, tx: tx.uuid,
      client_ip: connection.remote.ip, auth_user: connection.notes.auth_user, sender: addr(tx.mail_from), source: 'smtp rcpt',
    }
    if (trap.class !== 'typo' || strikes >= typoStrikes) {
      const reason = trap.class === 'typo' ? `${strikes} typo-trap hits` : `mail to a ${trap.class} spamtrap`
      await banTenant(redis, slug, reason, 'posta-trap', evidence)
      tx.notes.posta_banned = true
      connection.logcrit(this, `tenant BANNED: ${reason}`, { ...fields, trap: trap.entry, class: trap.class })
    } else {
      connection.logwarn(this, 'typo-trap hit', { ...fields, trap: trap.entry, strikes, ban_at: typoStrikes })
    }
    return next(constants.deny, refused())
  }
  if (until) {
    connection.lognotice(this, 'RCPT refused: suppressed', fields)
    return next(constants.deny, DSN.create(550, `${rcpt} hard-bounced recently and is suppressed for this account until ${until.toISOString().slice(0, 10)}`, 1, 1))
  }
  next()
})

/** A message whose sender was just banned is refused whole, whatever recipients it still has. */
export function hook_data(this: Plugin, next: Next, connection: Connection) {
  if (connection.transaction?.notes.posta_banned) return next(constants.deny, closed())
  next()
}
