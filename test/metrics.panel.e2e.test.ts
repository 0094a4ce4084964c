// The panel's /metrics (web/metrics.ts) over a real HTTP server (@hono/node-server, as `npm start` serves it) and a
// real Redis: requests are counted by area, method and status; the text parses line by line; only a direct loopback
// client gets it, never one through a proxy or from another address.
import { serve, type ServerType } from '@hono/node-server'
import { strict as assert } from 'node:assert'
import * as os from 'node:os'
import type { AddressInfo } from 'node:net'
import { loadSettings } from '../lib/settings'
import { testRedis, type TestRedis } from '../testkit/redis'
import { areaOf } from '../web/metrics'
import { createApp } from '../web/app'
import { parsePrometheus, valueOf } from './metrics.parse'

describe('metrics: the panel\'s /metrics', function () {
  this.timeout(30000)
  let redis: TestRedis
  let server: ServerType
  let port: number

  before(async () => {
    redis = await testRedis()
    const settings = loadSettings({ REDIS_URL: redis.url })
    await new Promise<void>((resolve) => {
      server = serve({ fetch: createApp({ redis: redis.client, settings }).fetch, port: 0, hostname: '::' }, () => resolve())
    })
    port = (server.address() as AddressInfo).port
  })
  after(async () => {
    await new Promise((r) => server.close(r))
    await redis?.close()
  })

  const get = (path: string, headers: Record<string, string> = {}, host = '127.0.0.1') =>
    fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`, { headers })

  async function scrape() {
    const r = await get('/metrics')
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    return parsePrometheus(await r.text())
  }

  it('counts requests by area, method and status; the text parses, every line', async () => {
    const before = await scrape()
    const n = (f: typeof before, labels: Record<string, string>) => valueOf(f, 'posta_panel_requests_total', labels)
    for (let i = 0; i < 3; i++) assert.equal((await get('/healthz')).status, 200)
    assert.equal((await get('/no-such-page')).status, 404)
    const after = await scrape()
    assert.equal(n(after, { area: 'healthz', method: 'GET', code: '200' }) - n(before, { area: 'healthz', method: 'GET', code: '200' }), 3)
    assert.equal(n(after, { area: 'customer', method: 'GET', code: '404' }) - n(before, { area: 'customer', method: 'GET', code: '404' }), 1)
    assert.ok(n(after, { area: 'metrics', method: 'GET', code: '200' }) >= 1)
    assert.ok(valueOf(after, 'posta_panel_request_seconds_count', { area: 'healthz' }) >= 3)
    assert.ok(valueOf(after, 'process_resident_memory_bytes') > 0 || after.has('nodejs_heap_size_used_bytes'))
  })

  it('IPv6 loopback is loopback too', async () => {
    assert.equal((await get('/metrics', {}, '::1')).status, 200)
  })

  for (const header of ['X-Forwarded-For', 'Forwarded', 'X-Real-IP']) {
    it(`a request that came through a proxy (${header}) gets the 404 of any unknown page`, async () => {
      const r = await get('/metrics', { [header]: header === 'Forwarded' ? 'for=192.0.2.1' : '192.0.2.1' })
      assert.equal(r.status, 404)
      assert.doesNotMatch(await r.text(), /posta_panel/)
    })
  }

  it('a client from another address of this machine gets a 404', async function () {
    const other = Object.values(os.networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')
    if (!other) return this.skip() // a machine with loopback only
    const r = await get('/metrics', {}, other.address)
    assert.equal(r.status, 404)
    assert.doesNotMatch(await r.text(), /posta_panel/)
  })

  it('areas are a handful of words, never the path', () => {
    assert.deepEqual(
      ['/metrics', '/healthz', '/static/panel.css', '/api/v1/admin/tenants', '/api/v1/usage', '/admin', '/admin/x', '/', '/messages/123', '/apix'].map(areaOf),
      ['metrics', 'healthz', 'static', 'admin_api', 'api', 'admin', 'admin', 'customer', 'customer', 'customer'],
    )
  })
})
