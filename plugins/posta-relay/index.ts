// The relay policy: only authenticated tenants send, on every port; the tenant travels with the message.
// Unauthenticated clients are refused at MAIL FROM (and again at RCPT, in depth), so there is no open relay
// for any address trick (%-hack, bang path, source route, quoted local part).
import { loginOf, setSender, setSize, tenantOf } from '../../lib/submission'
import { isDomain } from '../../lib/validate'
import { addr, constants, debugOn, DSN, messageFields, type Address, type Connection, type Next, type Plugin } from '../shared/haraka'
import { chained } from '../shared/chain'

export const hook_mail = chained(function hook_mail(this: Plugin, next: Next, connection: Connection, params: [Address]) {
  const tx = connection.transaction
  const login = loginOf(connection.notes)
  if (!connection.relaying || !login || !tx) {
    connection.lognotice(this, 'MAIL refused: not authenticated', { client_ip: connection.remote.ip })
    return next(
      constants.deny,
      DSN.create(530, connection.tls.enabled
        ? 'Authentication required: log in with your Posta login and password (AUTH) to send'
        : 'Authentication required: use STARTTLS, then AUTH with your Posta login and password', 7, 0),
    )
  }
  // connection.notes do not travel with the queued message; transaction.notes do (hmail.todo.notes).
  setSender(tx.notes, { ...login, client_ip: connection.remote.ip })
  if (debugOn()) connection.logdebug(this, 'sender', { ...messageFields(connection), from: addr(params[0]) })
  next()
})

export const hook_rcpt = chained(function hook_rcpt(this: Plugin, next: Next, connection: Connection, params: [Address]) {
  const rcpt = params[0]
  const fields = { ...messageFields(connection), to: rcpt.original }
  if (!connection.relaying || !loginOf(connection.notes)) {
    connection.lognotice(this, 'RCPT refused: relaying denied', fields)
    return next(constants.deny, DSN.create(554, 'Relaying denied: authenticate first', 7, 1))
  }
  const original = String(rcpt.original ?? '')
  const host = String(rcpt.host ?? '').toLowerCase().replace(/\.$/, '')
  const user = String(rcpt.user ?? '')
  // A recipient we relay is a plain user@domain. Routing syntax (source routes, %-hack, bang paths) and
  // quoted local parts that hide another address are refused even for tenants: receivers may honour them.
  if (/^<?@/.test(original) || /[%!@]/.test(user) || user.includes('"')) {
    connection.lognotice(this, 'RCPT refused: routing syntax', fields)
    return next(constants.deny, DSN.create(553, 'Recipient address with routing syntax is not accepted: use user@domain', 1, 3))
  }
  if (!isDomain(host)) {
    connection.lognotice(this, 'RCPT refused: bad domain', fields)
    return next(constants.deny, DSN.create(553, `Recipient domain "${host}" is not a valid domain name`, 1, 2))
  }
  connection.logdebug(this, 'recipient', fields)
  // CONT, not OK: later rcpt hooks (posta-trap) still run; Haraka accepts a CONT recipient of a relaying client.
  next()
})

export const hook_data_post = chained(function hook_data_post(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  // The message's size travels with it for the delivery ledger (posta-quota refines it to the exact count).
  if (tx && tenantOf(tx.notes)) setSize(tx.notes, tx.data_bytes - 3)
  next()
})

export const hook_queue_ok = chained(function hook_queue_ok(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  if (tx) {
    connection.loginfo(this, 'queued', {
      ...messageFields(connection),
      from: addr(tx.mail_from),
      to: tx.rcpt_to.map(addr).join(','),
      rcpts: tx.rcpt_to.length,
      size: tx.data_bytes,
    })
  }
  next()
})
