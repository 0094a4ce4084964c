// The panel's own Prometheus metrics (README "Metrics"): requests by area, method and status, their durations, and
// the process's (memory, CPU, event loop). Served at GET /metrics to direct loopback clients only: a request from
// another address, or one that came through a proxy (Forwarded, X-Forwarded-For, X-Real-IP), gets the panel's 404,
// so a panel published through a reverse proxy on the same machine does not publish its metrics.
// app.tsx mounts it with one line, before its other middleware: mountMetrics(app).
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context, Env, Hono } from 'hono'
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'

const registry = new Registry()
collectDefaultMetrics({ register: registry })

const requests = new Counter({
  name: 'posta_panel_requests_total', help: 'Panel requests by area (customer, admin, api, admin_api, static, healthz, metrics), method and status',
  labelNames: ['area', 'method', 'code'], registers: [registry],
})
const seconds = new Histogram({
  name: 'posta_panel_request_seconds', help: 'Time to answer a panel request, by area',
  labelNames: ['area'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
})

/** The part of the panel a path belongs to: a handful of label values, never the path itself. */
export function areaOf(path: string): string {
  if (path === '/metrics') return 'metrics'
  if (path === '/healthz') return 'healthz'
  if (path.startsWith('/static/')) return 'static'
  if (path === '/api/v1/admin' || path.startsWith('/api/v1/admin/')) return 'admin_api'
  if (path === '/api' || path.startsWith('/api/')) return 'api'
  if (path === '/admin' || path.startsWith('/admin/')) return 'admin'
  return 'customer'
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip']

/** A client on this machine that spoke to the panel directly. */
function directLoopback(c: Context): boolean {
  if (PROXY_HEADERS.some((h) => c.req.header(h) !== undefined)) return false
  let address: string | undefined
  try {
    address = getConnInfo(c).remote.address
  } catch {
    return false // not served by @hono/node-server: no socket to ask
  }
  return !!address && (/^127\./.test(address) || address === '::1' || /^::ffff:127\./.test(address))
}

/** Counts every request the app answers and serves GET /metrics (one line in app.tsx, before other middleware). */
export function mountMetrics<E extends Env>(app: Hono<E>): void {
  app.use('*', async (c, next) => {
    const t0 = performance.now()
    try {
      await next()
    } finally {
      const area = areaOf(c.req.path)
      seconds.observe({ area }, (performance.now() - t0) / 1000)
      requests.inc({ area, method: METHODS.has(c.req.method) ? c.req.method : 'other', code: String(c.res.status) })
    }
  })
  app.get('/metrics', async (c, next) => {
    // not for this client: on through the app's middleware to its own 404 page, like any unknown path
    if (!directLoopback(c)) return next()
    return c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' })
  })
}
