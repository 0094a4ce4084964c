// The panel for tests and benchmarks: createApp served by @hono/node-server on a free loopback port, with its own
// fail-fast Redis client (like `npm start`), and a small cookie-keeping HTTP client over the real fetch.
import { serve, type ServerType } from '@hono/node-server'
import type { RedisClient as Redis } from '../lib/redis'
import { connectHotPath } from '../lib/redis'
import type { Settings } from '../lib/settings'
import { createTenant, type Credentials } from '../lib/tenants'
import { uniqueName } from './redis'
import { createApp, type PanelDeps } from '../web/app'
import { freePort } from '../service/redis-server'

/** A fresh tenant of the package for a panel test: a unique slug, a contact at example.net, its login and password. */
export function panelTenant(redis: Redis, settings: Settings, pkg: string): Promise<Credentials> {
  const slug = uniqueName('t').replace(/[^a-z0-9-]/g, '').slice(0, 30)
  return createTenant(redis, settings, { slug, package: pkg, contact: `${slug}@example.net` })
}

export interface TestPanel {
  url: string
  redis: Redis
  close(): Promise<void>
}

export async function startPanel(redisUrl: string, settings: Settings, extra: Partial<PanelDeps> = {}): Promise<TestPanel> {
  const redis = connectHotPath(redisUrl, { commandTimeout: 2000 })
  redis.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    redis.once('ready', () => resolve())
    redis.once('end', () => reject(new Error('panel redis client ended before ready')))
  })
  const port = await freePort()
  // usageCacheMs 0: a test reads its figures right after writing them (test/panel.pages.test.ts tests the cache itself)
  const app = createApp({ redis, settings, failureDelayMs: 0, usageCacheMs: 0, ...extra })
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s))
  })
  return {
    url: `http://127.0.0.1:${port}`,
    redis,
    async close() {
      await new Promise((r) => server.close(() => r(undefined)))
      redis.disconnect()
    },
  }
}

/** A browser-like client: keeps cookies, sends this site as Origin on forms, never follows redirects. */
export class PanelClient {
  readonly cookies = new Map<string, string>()
  /** The Set-Cookie lines of the last response. */
  lastSetCookie: string[] = []
  constructor(readonly base: string) {}

  async request(path: string, init: RequestInit & { origin?: string | null } = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    const res = await fetch(this.base + path, { ...init, headers, redirect: 'manual' })
    this.lastSetCookie = res.headers.getSetCookie()
    for (const line of this.lastSetCookie) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === ''
      if (expired) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return res
  }

  get(path: string, headers: Record<string, string> = {}) {
    return this.request(path, { headers })
  }

  /** The `_csrf` value of the first form on a page. */
  static csrfOf(html: string): string {
    const m = /name="_csrf" value="([^"]*)"/.exec(html)
    if (!m) throw new Error('no CSRF field on the page')
    return m[1]
  }

  /** GETs the page, then posts its form with the page's CSRF token (unless fields sets _csrf) and this site's Origin. */
  async submit(pagePath: string, action: string, fields: Record<string, string>, opts: { origin?: string | null; headers?: Record<string, string> } = {}) {
    const page = await this.get(pagePath)
    const token = PanelClient.csrfOf(await page.text())
    return this.post(action, { _csrf: token, ...fields }, opts)
  }

  post(action: string, fields: Record<string, string>, opts: { origin?: string | null; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers }
    const origin = opts.origin === undefined ? this.base : opts.origin
    if (origin !== null) headers.origin = origin
    return this.request(action, { method: 'POST', headers, body: new URLSearchParams(fields).toString() })
  }
}

export function basic(login: string, password: string): string {
  return `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`
}
