// Outbound: static routes before MX lookup, and one log line per delivery result that names the tenant.
import { findRoute } from '../../lib/routes'
import { addr, constants, getRedis, guard, type HMailItem, type Next, type Plugin } from '../shared/haraka'

export function hook_init_master(this: Plugin, next: Next) {
  getRedis(this)
  next()
}
export function hook_init_child(this: Plugin, next: Next) {
  getRedis(this)
  next()
}

function deliveryFields(hmail: HMailItem, extra: Record<string, unknown> = {}) {
  const notes = hmail.todo?.notes ?? {}
  return {
    tenant: (notes.tenant as string) ?? '-',
    auth_user: (notes.auth_user as string) ?? '-',
    client_ip: (notes.client_ip as string) ?? '-',
    tx: hmail.todo?.uuid ?? hmail.uuid,
    domain: hmail.todo?.domain,
    from: addr(hmail.todo?.mail_from),
    to: (hmail.todo?.rcpt_to ?? []).map(addr).join(','),
    ...extra,
  }
}

export const hook_get_mx = guard('route lookup failed, will retry', async function (this: Plugin, next: Next, hmail: HMailItem, domain: string) {
  const route = await findRoute(getRedis(this), domain)
  if (!route) return next()
  hmail.loginfo(this, 'static route', deliveryFields(hmail, { route: route.domain, mx: `${route.host}:${route.port}` }))
  next(constants.ok, { exchange: route.host, port: route.port, priority: 0 })
})

export function hook_delivered(this: Plugin, next: Next, hmail: HMailItem, params: unknown[]) {
  const [host, ip, response, delay, port] = params as [string, string, string, number, number]
  hmail.loginfo(this, 'delivered', deliveryFields(hmail, { result: 'delivered', mx: host, mx_ip: ip, mx_port: port, response, delay }))
  next()
}

export function hook_deferred(this: Plugin, next: Next, hmail: HMailItem, params: { delay: number; err: unknown }) {
  hmail.lognotice(this, 'deferred', deliveryFields(hmail, { result: 'deferred', retry_in: params?.delay, error: String(params?.err ?? '') }))
  next()
}

export function hook_bounce(this: Plugin, next: Next, hmail: HMailItem, err: { message?: string; mx?: { exchange?: string } }) {
  hmail.lognotice(this, 'bounced', deliveryFields(hmail, { result: 'bounced', mx: err?.mx?.exchange, error: err?.message ?? String(err) }))
  next()
}
