// The tenant JSON API under /api/v1 (README.md "API" documents every route and field). Authentication: HTTP Basic
// with the SMTP login and password, or the panel session (changes then need the X-CSRF-Token header). A route acts
// only for the authenticated tenant: no path or parameter names a tenant. Errors: {"error": "..."} with 400, 401,
// 403, 404, 429 or 503.
//
//   GET    /api/v1/usage                       this month's figures (UsageReport, web/reports.ts)
//   GET    /api/v1/messages?status=&limit=     recent delivery attempts, newest first (limit 1..200, default 50)
//   GET    /api/v1/suppressions                suppressed recipients with their expiry
//   DELETE /api/v1/suppressions/<address>      ends one suppression (404 when it is not suppressed)
//   GET    /api/v1/domains?check=<domain>      sender domains and their DNS records; ?check= looks one domain's up (web/domains.tsx)
import { Hono } from 'hono'
import { normaliseAddress } from '../lib/addresses'
import { InputError } from '../lib/errors'
import { unsuppress } from '../lib/suppression'
import { tenantApiAuth } from './auth'
import type { PanelConfig, PanelEnv } from './context'
import { domainsApi } from './domains'
import { apiError } from './errors'
import { attemptsReport, MESSAGES_DEFAULT, MESSAGES_MAX, STATUSES, suppressionsReport, usageReport } from './reports'

export function createTenantApi(cfg: PanelConfig) {
  const api = new Hono<PanelEnv>()
  // per route, not api.use('*'): a '*' middleware here would also run for /api/v1/admin/*
  const auth = tenantApiAuth(cfg)

  api.get('/usage', auth, async (c) => {
    const { package: _p, package_bytes: _b, topup_bytes: _t, ...u } = await usageReport(cfg, c.get('tenant'))
    return c.json(u)
  })

  api.get('/messages', auth, async (c) => {
    const raw = c.req.query('status') ?? ''
    const status = STATUSES.find((s) => s === raw) ?? null
    if (raw !== '' && !status) return apiError(c, 400, `bad status "${raw.slice(0, 40)}": use delivered, deferred or bounced (or leave it out)`)
    const rawLimit = c.req.query('limit') ?? String(MESSAGES_DEFAULT)
    const limit = Number(rawLimit)
    if (!/^\d{1,6}$/.test(rawLimit) || limit < 1 || limit > MESSAGES_MAX) return apiError(c, 400, `bad limit "${rawLimit.slice(0, 40)}": a whole number from 1 to ${MESSAGES_MAX}`)
    return c.json({ tenant: c.get('tenant'), messages: await attemptsReport(cfg, c.get('tenant'), status, limit) })
  })

  api.get('/suppressions', auth, async (c) => c.json({ tenant: c.get('tenant'), suppressions: await suppressionsReport(cfg, c.get('tenant')) }))

  api.delete('/suppressions/:address', auth, async (c) => {
    const raw = c.req.param('address')
    let address: string
    try {
      address = normaliseAddress(raw).address
    } catch (err) {
      if (err instanceof InputError) return apiError(c, 400, `bad address: ${err.message}`)
      throw err
    }
    // NotFoundError (not suppressed for this tenant) becomes a JSON 404 in web/errors.tsx
    const removed = await unsuppress(cfg.redis, c.get('tenant'), address)
    return c.json({ tenant: c.get('tenant'), removed })
  })

  api.get('/domains', auth, (c) => domainsApi(c, cfg))

  return api
}
