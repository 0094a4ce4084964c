// The customer panel, the operator area and the JSON API: one Hono app over the same Redis as the relay, reading
// only through the domain core (lib/). Served by @hono/node-server from `npm start` (service/start.ts).
//
// createApp({ redis, settings, auth?, failureDelayMs?, sessionSeconds?, secure? }) (PanelDeps, web/context.ts)
//
//   /static/panel.css   the stylesheet
//   /healthz            {"ok": true, "redis": "up"} or 503
//   /metrics            Prometheus text, to direct loopback clients only (web/metrics.ts)
//   /admin/*            operator pages (web/admin/index.tsx createAdminApp)
//   /api/v1/admin/*     operator JSON API (web/admin/index.tsx createAdminApi)
//   /api/v1/*           tenant JSON API (web/api.ts)
//   /*                  customer pages: /login, /logout, /, /messages, /settings, /password (web/customer.tsx)
//
// Middleware, in order: security headers, language, Redis guard (503), session, then for everything outside /api a
// body limit and CSRF (token + Origin). Errors: web/errors.tsx (JSON under /api, a page elsewhere; never a stack).
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { createAdminApi, createAdminApp } from './admin'
import { createTenantApi } from './api'
import { loadSession } from './auth'
import { panelConfig, type PanelDeps, type PanelEnv } from './context'
import { csrfProtection } from './csrf'
import { createCustomerApp } from './customer'
import { notFound, onPanelError, apiError } from './errors'
import { language, redisGuard, securityHeaders } from './middleware'
import { mountMetrics } from './metrics'
import { PANEL_CSS } from './static'

export type { PanelDeps } from './context'

const isApi = (path: string) => path === '/api' || path.startsWith('/api/')
const NO_BODY = /^(GET|HEAD)$/

export function createApp(deps: PanelDeps) {
  const cfg = panelConfig(deps)
  const app = new Hono<PanelEnv>()

  app.use('*', securityHeaders(cfg))
  mountMetrics(app) // GET /metrics (direct loopback clients only) and the request counters: web/metrics.ts
  app.get('/static/panel.css', (c) => {
    c.header('Cache-Control', 'public, max-age=3600')
    return c.body(PANEL_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8' })
  })
  app.get('/healthz', async (c) => {
    try {
      await cfg.redis.ping()
      return c.json({ ok: true, redis: 'up' })
    } catch {
      return c.json({ ok: false, redis: 'down' }, 503)
    }
  })

  // what the panel shows is one customer's or operator's: never kept by a browser or proxy cache
  app.use('*', async (c, next) => {
    await next()
    // set on the response's own headers, as secureHeaders does: c.header() after the answer would copy the response
    const h = c.res.headers
    if (!h.has('cache-control')) h.set('Cache-Control', 'no-store')
  })
  app.use('*', language(cfg))
  app.use('*', redisGuard(cfg))
  app.use('*', loadSession(cfg))
  const formLimit = bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.text('Payload Too Large', 413) })
  const apiLimit = bodyLimit({ maxSize: 16 * 1024, onError: (c) => apiError(c, 413, 'request body too large') })
  const forms = csrfProtection(cfg)
  app.use('*', async (c, next) => {
    // a GET or HEAD has no body to limit (asking the request for one would build a full fetch Request: tens of µs)
    if (NO_BODY.test(c.req.method)) return isApi(c.req.path) ? next() : forms(c, next)
    return isApi(c.req.path) ? apiLimit(c, next) : formLimit(c, async () => { await forms(c, next) })
  })

  app.route('/admin', createAdminApp(cfg))
  app.route('/api/v1/admin', createAdminApi(cfg))
  app.route('/api/v1', createTenantApi(cfg))
  app.route('/', createCustomerApp(cfg))

  app.notFound(notFound)
  app.onError(onPanelError(cfg))
  return app
}
