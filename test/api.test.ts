// The tenant JSON API and tenant isolation over HTTP (real redis-server, the app on a free port, real fetch): the
// usage figures from real counters (written by the quota and ledger code the plugins use), messages with the status
// filter, suppressions and their removal, Basic and session authentication, JSON errors, and tenant A getting
// 403/404 or only its own data on every route that could reach B's (pages and API, by path and by parameter).
import { strict as assert } from 'node:assert'
import { keys } from '../lib/keys'
import { DEFAULT_LEDGER, recordAttempt, type Attempt } from '../lib/ledger'
import { setPackage } from '../lib/packages'
import { commit, DEFAULT_QUOTA, reserve, topUp } from '../lib/quota'
import { loadSettings, type Settings } from '../lib/settings'
import { suppress } from '../lib/suppression'
import { setTenantStatus, type Credentials } from '../lib/tenants'
import { basic, PanelClient, startPanel, type TestPanel, panelTenant } from '../testkit/panel'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const DOMAIN = 'posta.example'
const LIMITS = { ip_max: 1000, ip_window: 900, pair_max: 3, pair_window: 3600, user_max: 20, user_window: 3600, failure_delay_ms: 0, max_attempts_per_connection: 3, cache_seconds: 300 }

interface Usage {
  tenant: string; month: string; used_bytes: number; limit_bytes: number; remaining_bytes: number; percent: number
  messages: number; recipients: number; delivered: number; deferred: number; bounced: number; resets_at: string
  days: { day: string; bytes: number; messages: number; recipients: number; delivered: number; deferred: number; bounced: number }[]
}

describe('tenant API (HTTP, real Redis)', function () {
  this.timeout(60000)
  let r: TestRedis
  let settings: Settings
  let panel: TestPanel
  let pkg: string
  let a: Credentials
  let b: Credentials
  const quota = { ...DEFAULT_QUOTA, timeZone: 'Europe/Rome' }

  const tenant = (): Promise<Credentials> => panelTenant(r.client, settings, pkg)

  /** One message through the quota as posta-quota counts it, and its delivery attempts as posta-outbound records them. */
  // attempts get strictly increasing times (a fast ledger records several in one millisecond: "newest first" needs them)
  let clock = Date.now()
  async function send(slug: string, id: string, size: number, rcpts: string[], results: Attempt['result'][]) {
    const res = await reserve(r.client, quota, slug, id, size, rcpts.length)
    assert.equal(res.ok, true)
    await commit(r.client, quota, (res as { reservation: Parameters<typeof commit>[2] }).reservation)
    for (const [i, result] of results.entries()) {
      await recordAttempt(r.client, {
        at: (clock = Math.max(clock + 1, Date.now())), tenant: slug, tx: id, ip: '192.0.2.1', domain: rcpts[i].split('@')[1], mx: 'mx.example', result,
        code: result === 'delivered' ? '250' : result === 'deferred' ? '451' : '550', response: result === 'delivered' ? '250 ok' : `${result} by ${rcpts[i]}: mailbox says no`,
        size, rcpts: 1, recipients: [rcpts[i]],
      }, DEFAULT_LEDGER)
    }
  }

  before(async () => {
    r = await testRedis()
    settings = loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: r.url })
    pkg = uniqueName('pkg')
    await setPackage(r.client, pkg, 1e6)
    panel = await startPanel(r.url, settings, { auth: LIMITS })
    a = await tenant()
    b = await tenant()
    await send(a.tenant, 'a1', 1000, ['x@one.example', 'y@two.example'], ['delivered', 'bounced'])
    await send(a.tenant, 'a2', 500, ['z@one.example'], ['deferred'])
    await send(b.tenant, 'b1', 7000, ['secret-b@bee.example'], ['bounced'])
    await suppress(r.client, a.tenant, 'gone@one.example')
    await suppress(r.client, b.tenant, 'b-only@bee.example')
  })
  after(async () => {
    await panel?.close()
    await r?.close()
  })

  const api = (path: string, auth: string | null, init: RequestInit = {}) =>
    fetch(`${panel.url}${path}`, { ...init, headers: { ...(auth ? { authorization: auth } : {}), ...(init.headers as Record<string, string>) } })

  describe('GET /api/v1/usage', () => {
    it('gives the month\'s figures from the counters, with exactly the documented fields', async () => {
      const res = await api('/api/v1/usage', basic(a.login, a.password))
      assert.equal(res.status, 200)
      const u = (await res.json()) as Usage
      assert.deepEqual(Object.keys(u).sort(), ['bounced', 'days', 'deferred', 'delivered', 'limit_bytes', 'messages', 'month', 'percent', 'recipients', 'remaining_bytes', 'resets_at', 'tenant', 'used_bytes'])
      assert.equal(u.tenant, a.tenant)
      // a message costs its size times its recipients: 1000 x 2 + 500 x 1
      assert.equal(u.used_bytes, 2500)
      assert.equal(u.limit_bytes, 1e6)
      assert.equal(u.remaining_bytes, 1e6 - 2500)
      assert.equal(u.percent, 0.3)
      assert.equal(u.messages, 2)
      assert.equal(u.recipients, 3)
      assert.deepEqual([u.delivered, u.deferred, u.bounced], [1, 1, 1])
      assert.match(u.month, /^\d{4}-\d{2}$/)
      assert.ok(Date.parse(u.resets_at) > Date.now())
      const today = u.days[u.days.length - 1]
      assert.deepEqual(Object.keys(today).sort(), ['bounced', 'bytes', 'day', 'deferred', 'delivered', 'messages', 'recipients'])
      assert.equal(today.bytes, 2500)
      assert.equal(u.days.reduce((n, d) => n + d.bytes, 0), 2500)
    })

    it('follows a top-up and shows the same figures on the dashboard', async () => {
      const t = await tenant()
      await send(t.tenant, 't1', 900_000, ['a@x.example'], ['delivered'])
      await topUp(r.client, quota, t.tenant, 500_000)
      const u = (await (await api('/api/v1/usage', basic(t.login, t.password))).json()) as Usage
      assert.equal(u.limit_bytes, 1_500_000)
      assert.equal(u.remaining_bytes, 600_000)
      assert.equal(u.percent, 60)
      const c = new PanelClient(panel.url)
      await c.submit('/login', '/login', { login: t.login, password: t.password })
      const html = await (await c.get('/?lang=en')).text()
      assert.match(html, /data-testid="used">900 KB \(60%\)/)
      assert.match(html, /data-testid="remaining">600 KB/)
      assert.match(html, /data-testid="allowance">1.5 MB/)
      assert.match(html, /<svg class="chart"[^>]*data-max-bytes="900000"/)
      const it = await (await c.get('/?lang=it')).text()
      assert.match(it, /data-testid="allowance">1,5 MB/)
    })

    it('shows the notices at 80, 90 and 100 %', async () => {
      const t = await tenant()
      const c = new PanelClient(panel.url)
      await c.submit('/login', '/login', { login: t.login, password: t.password })
      assert.doesNotMatch(await (await c.get('/')).text(), /notice-warn|notice-error/)
      await send(t.tenant, 'n1', 800_000, ['a@x.example'], ['delivered'])
      assert.match(await (await c.get('/')).text(), /You have used 80% of this month/)
      await send(t.tenant, 'n2', 100_000, ['a@x.example'], ['delivered'])
      assert.match(await (await c.get('/')).text(), /You have used 90% of this month.*refused at 100/)
      await send(t.tenant, 'n3', 100_000, ['a@x.example'], ['delivered'])
      assert.match(await (await c.get('/')).text(), /traffic is used up: new messages are refused until 1 /)
    })
  })

  describe('GET /api/v1/messages', () => {
    it('lists recent attempts newest first, with the remote reply only for failures, filtered by status', async () => {
      const all = (await (await api('/api/v1/messages', basic(a.login, a.password))).json()) as { messages: { status: string; recipients: string[]; response: string | null }[] }
      assert.equal(all.messages.length, 3)
      assert.deepEqual(all.messages.map((m) => m.status), ['deferred', 'bounced', 'delivered'])
      assert.equal(all.messages[2].response, null)
      assert.match(all.messages[1].response!, /mailbox says no/)
      const bounced = (await (await api('/api/v1/messages?status=bounced', basic(a.login, a.password))).json()) as { messages: { recipients: string[] }[] }
      assert.deepEqual(bounced.messages.map((m) => m.recipients), [['y@two.example']])
      const one = (await (await api('/api/v1/messages?limit=1', basic(a.login, a.password))).json()) as { messages: unknown[] }
      assert.equal(one.messages.length, 1)
    })

    it('refuses a bad status or limit with 400 and one clear error', async () => {
      for (const [q, re] of [['status=lost', /bad status "lost"/], ['limit=0', /bad limit "0"/], ['limit=abc', /bad limit/], ['limit=201', /1 to 200/], ['limit=-1', /bad limit/]] as const) {
        const res = await api(`/api/v1/messages?${q}`, basic(a.login, a.password))
        assert.equal(res.status, 400, q)
        assert.match(((await res.json()) as { error: string }).error, re)
      }
    })

    it('shows the messages page with the filter, escaped', async () => {
      const t = await tenant()
      await send(t.tenant, 'm1', 10, ['"<b>x</b>"@esc.example'.replace(/"/g, ''), 'ok@esc.example'], ['bounced', 'delivered'])
      const c = new PanelClient(panel.url)
      await c.submit('/login', '/login', { login: t.login, password: t.password })
      const html = await (await c.get('/messages')).text()
      assert.ok(!html.includes('<b>x</b>'), 'recipient text is escaped')
      assert.match(html, /&lt;b&gt;x&lt;\/b&gt;/)
      const only = await (await c.get('/messages?status=delivered')).text()
      assert.match(only, /data-status="delivered"/)
      assert.doesNotMatch(only, /data-status="bounced"/)
      const bad = await c.get('/messages?status=nope')
      assert.equal(bad.status, 400)
      assert.match(await bad.text(), /Unknown status/)
    })
  })

  describe('suppressions', () => {
    it('lists and removes the tenant\'s own suppressions; 404 when not suppressed, 400 for a bad address', async () => {
      const t = await tenant()
      await suppress(r.client, t.tenant, 'dead@one.example')
      const list = (await (await api('/api/v1/suppressions', basic(t.login, t.password))).json()) as { suppressions: { address: string; expires_at: string }[] }
      assert.deepEqual(list.suppressions.map((s) => s.address), ['dead@one.example'])
      assert.ok(Date.parse(list.suppressions[0].expires_at) > Date.now())
      const del = await api(`/api/v1/suppressions/${encodeURIComponent('Dead@One.Example')}`, basic(t.login, t.password), { method: 'DELETE' })
      assert.equal(del.status, 200)
      assert.deepEqual(await del.json(), { tenant: t.tenant, removed: 'dead@one.example' })
      assert.equal(await r.client.zcard(keys.suppression(t.tenant)), 0)
      const again = await api('/api/v1/suppressions/dead@one.example', basic(t.login, t.password), { method: 'DELETE' })
      assert.equal(again.status, 404)
      assert.match(((await again.json()) as { error: string }).error, /not suppressed/)
      const bad = await api('/api/v1/suppressions/not-an-address', basic(t.login, t.password), { method: 'DELETE' })
      assert.equal(bad.status, 400)
    })

    it('accepts the panel session, but a change needs the X-CSRF-Token header', async () => {
      const t = await tenant()
      await suppress(r.client, t.tenant, 'dead@one.example')
      const c = new PanelClient(panel.url)
      await c.submit('/login', '/login', { login: t.login, password: t.password })
      const list = await c.get('/api/v1/suppressions')
      assert.equal(list.status, 200)
      const noToken = await c.request('/api/v1/suppressions/dead@one.example', { method: 'DELETE' })
      assert.equal(noToken.status, 403)
      assert.match(((await noToken.json()) as { error: string }).error, /X-CSRF-Token/)
      const token = PanelClient.csrfOf(await (await c.get('/password')).text())
      const ok = await c.request('/api/v1/suppressions/dead@one.example', { method: 'DELETE', headers: { 'x-csrf-token': token } })
      assert.equal(ok.status, 200)
    })
  })

  describe('authentication and errors', () => {
    it('401 JSON with WWW-Authenticate without credentials, with a wrong password, and with a malformed header', async () => {
      for (const auth of [null, basic(a.login, 'wrong'), 'Basic !!!', 'Bearer x', basic(`nobody@x.${DOMAIN}`, 'pw')]) {
        const res = await api('/api/v1/usage', auth)
        assert.equal(res.status, 401, String(auth))
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="Posta"/)
        assert.equal(typeof ((await res.json()) as { error: string }).error, 'string')
      }
    })

    it('429 with Retry-After after too many wrong passwords, shared with the login form', async () => {
      const t = await tenant()
      for (let i = 0; i < LIMITS.pair_max; i++) assert.equal((await api('/api/v1/usage', basic(t.login, `w${i}`))).status, 401)
      const locked = await api('/api/v1/usage', basic(t.login, t.password))
      assert.equal(locked.status, 429)
      assert.ok(Number(locked.headers.get('retry-after')) > 0)
      assert.match(((await locked.json()) as { error: string }).error, /too many failed logins/)
      const c = new PanelClient(panel.url)
      assert.equal((await c.submit('/login', '/login', { login: t.login, password: t.password })).status, 429)
    })

    it('403 for a suspended tenant\'s right credentials; 404 JSON for an unknown route', async () => {
      const t = await tenant()
      await setTenantStatus(r.client, t.tenant, 'suspended')
      const res = await api('/api/v1/usage', basic(t.login, t.password))
      assert.equal(res.status, 403)
      assert.match(((await res.json()) as { error: string }).error, /suspended/)
      const nf = await api('/api/v1/nothing', basic(a.login, a.password))
      assert.equal(nf.status, 404)
      assert.equal(nf.headers.get('content-type')?.split(';')[0], 'application/json')
    })
  })

  describe('tenant isolation: A never reaches B', () => {
    const bData = () => [b.tenant, 'secret-b@bee.example', 'b-only@bee.example']

    it('API: every route answers A\'s data only, whatever the path, query or parameter names', async () => {
      const auth = basic(a.login, a.password)
      const probes = [
        `/api/v1/usage?tenant=${b.tenant}`, `/api/v1/usage/${b.tenant}`, `/api/v1/messages?tenant=${b.tenant}&status=bounced`,
        `/api/v1/messages/${b.tenant}`, `/api/v1/suppressions?tenant=${b.tenant}`, `/api/v1/suppressions/${b.tenant}`,
        `/api/v1/tenants/${b.tenant}/usage`, `/api/v1/${b.tenant}/usage`, '/api/v1/admin/tenants', `/api/v1/admin/tenants/${b.tenant}`, '/api/v1/admin/ips',
      ]
      for (const p of probes) {
        const res = await api(p, auth)
        const text = await res.text()
        assert.ok([200, 401, 403, 404].includes(res.status), `${p}: ${res.status}`)
        for (const secret of bData()) assert.ok(!text.includes(secret), `${p} shows ${secret}`)
        if (res.status === 200) assert.ok(text.includes(a.tenant), `${p} answers for A`)
      }
    })

    it('API: A cannot remove B\'s suppression (404, and B\'s entry stays)', async () => {
      const res = await api('/api/v1/suppressions/b-only@bee.example', basic(a.login, a.password), { method: 'DELETE' })
      assert.equal(res.status, 404)
      assert.equal(await r.client.zcard(keys.suppression(b.tenant)), 1)
      const viaQuery = await api(`/api/v1/suppressions/b-only@bee.example?tenant=${b.tenant}`, basic(a.login, a.password), { method: 'DELETE' })
      assert.equal(viaQuery.status, 404)
      assert.equal(await r.client.zcard(keys.suppression(b.tenant)), 1)
    })

    it('API: A\'s login with B\'s password, or B\'s login under A\'s session, gets nothing of B', async () => {
      assert.equal((await api('/api/v1/usage', basic(a.login, b.password))).status, 401)
      const c = new PanelClient(panel.url)
      await c.submit('/login', '/login', { login: a.login, password: a.password })
      const res = await c.get('/api/v1/usage', { authorization: basic(b.login, 'not-b-password') })
      assert.equal(res.status, 401, 'Basic credentials, when sent, are what counts: a wrong one is refused, not replaced by the session')
    })

    it('pages: A\'s session sees only A, whatever the path or query', async () => {
      const c = new PanelClient(panel.url)
      await c.submit('/login', '/login', { login: a.login, password: a.password })
      const probes = [
        `/?tenant=${b.tenant}`, `/messages?tenant=${b.tenant}`, `/messages?status=bounced&tenant=${b.tenant}`, `/settings?tenant=${b.tenant}`,
        `/${b.tenant}`, `/messages/${b.tenant}`, `/tenants/${b.tenant}`, `/admin/tenants/${b.tenant}`, `/admin`,
      ]
      // the slug itself may come back in links of the page (the language switch keeps the query): B's data may not
      const bSecrets = ['secret-b@bee.example', 'b-only@bee.example', `${b.tenant}.${DOMAIN}`]
      for (const p of probes) {
        const res = await c.get(p)
        const text = await res.text()
        assert.ok([200, 303, 403, 404].includes(res.status), `${p}: ${res.status}`)
        for (const secret of bSecrets) assert.ok(!text.includes(secret), `${p} shows ${secret}`)
        if (res.status === 200) assert.ok(text.includes(a.login), `${p} is A's page`)
      }
      const settingsPage = await (await c.get(`/settings?tenant=${b.tenant}`)).text()
      assert.ok(settingsPage.includes(`${a.tenant}.${DOMAIN}`), 'the connection card has A\'s host')
    })

    it('pages: a forged or foreign session cookie is no session', async () => {
      const c = new PanelClient(panel.url)
      c.cookies.set('posta_session', 'x'.repeat(43))
      assert.equal((await c.get('/')).status, 303)
      c.cookies.set('posta_session', `${b.tenant}`)
      assert.equal((await c.get('/messages')).status, 303)
      assert.equal((await c.get('/api/v1/usage')).status, 401)
    })
  })
})
