// The operator area over HTTP: the real panel app (web/app.tsx) served by @hono/node-server on a free port, a real
// Redis, real fetch; accounts, tenants and IPs made, and their state read back, through the real `posta` CLI.
import { strict as assert } from 'node:assert'
import { listAudit } from '../lib/audit'
import { keys } from '../lib/keys'
import { loadSettings } from '../lib/settings'
import { posta } from '../testkit/cli'
import { basic as basicHeader, PanelClient, startPanel as servePanel, type TestPanel } from '../testkit/panel'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const DOMAIN = 'posta.example'

/** The panel client of testkit/panel.ts, answering status, location, headers and text; POSTs carry a page's CSRF token. */
class Client {
  readonly http: PanelClient
  constructor(readonly base: string) {
    this.http = new PanelClient(base)
  }
  get cookies() {
    return this.http.cookies
  }

  async req(method: 'GET' | 'POST', path: string, opts: { form?: Record<string, string>; headers?: Record<string, string>; origin?: string | null } = {}) {
    const res = method === 'GET' ? await this.http.get(path, opts.headers) : await this.http.post(path, opts.form ?? {}, { origin: opts.origin, headers: opts.headers })
    return { status: res.status, location: res.headers.get('location'), headers: res.headers, text: await res.text() }
  }
  get(path: string, headers: Record<string, string> = {}) {
    return this.req('GET', path, { headers })
  }
  /** The CSRF token of the forms of a page. */
  async token(path: string): Promise<string> {
    const page = await this.get(path)
    const m = /name="_csrf" value="([^"]*)"/.exec(page.text)
    assert.ok(m, `a CSRF field on ${path} (status ${page.status})`)
    return m[1]
  }
  async post(path: string, form: Record<string, string>, opts: { tokenFrom?: string; origin?: string | null; withToken?: boolean } = {}) {
    const f = { ...form }
    if (opts.withToken !== false) f._csrf = await this.token(opts.tokenFrom ?? path.replace(/\/(suspend|resume|topup|package|ban|reinstate)$/, '').replace(/\/ips\/[^/]+$/, '/ips'))
    return this.req('POST', path, { form: f, origin: opts.origin })
  }
}

const basic = (user: string, pass: string) => ({ authorization: basicHeader(user, pass) })
const fieldErrors = (html: string) => (html.match(/class="notice notice-error field-error"/g) ?? []).length

const startPanel = (r: TestRedis) => servePanel(r.url, loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: r.url, POSTA_TIMEZONE: 'Europe/Rome' }))

describe('operator area (HTTP, real app, real Redis, CLI)', function () {
  this.timeout(120000)
  let r: TestRedis
  let panel: TestPanel
  let env: Record<string, string>
  const cli = async (...args: string[]) => {
    const res = await posta([...args, '--json'], env)
    assert.equal(res.code, 0, `posta ${args.join(' ')}: ${res.stderr}`)
    return res.json()
  }
  const pkg = uniqueName('basic')
  const pkg2 = uniqueName('pro')
  const slug = uniqueName('acme')
  const other = uniqueName('beta')
  const IP = '203.0.113.7'
  let opPassword = ''
  let tenantLogin = ''
  let tenantPassword = ''
  let op: Client

  before(async () => {
    r = await testRedis()
    env = { REDIS_URL: r.url, POSTA_SERVICE_DOMAIN: DOMAIN }
    await cli('package', 'set', pkg, '--traffic', '1GB')
    await cli('package', 'set', pkg2, '--traffic', '10GB')
    const t = await cli('tenant', 'create', slug, '--package', pkg, '--contact', 'ops@acme.example')
    tenantLogin = t.login
    tenantPassword = t.password
    await cli('tenant', 'create', other, '--package', pkg, '--contact', 'boss@beta.example')
    await cli('ip', 'add', IP, '--helo', 'out1.relay.example')
    opPassword = (await cli('operator', 'create', 'alice')).password
    panel = await startPanel(r)
    op = new Client(panel.url)
  })
  after(async () => {
    await panel?.close()
    await r?.close()
  })

  describe('login', () => {
    it('every page sends a visitor without a session to /admin/login', async () => {
      const v = new Client(panel.url)
      for (const p of ['/admin', `/admin/tenants/${slug}`, '/admin/ips', '/admin/investigations', '/admin/bans', '/admin/audit']) {
        const res = await v.get(p)
        assert.equal(res.status, 303, p)
        assert.equal(res.location, '/admin/login', p)
      }
      const login = await v.get('/admin/login')
      assert.equal(login.status, 200)
      assert.match(login.text, /name="name"/)
      assert.match(login.text, /name="password"/)
    })

    it('refuses empty fields with one error per field, and a wrong password with 401', async () => {
      const v = new Client(panel.url)
      const both = await v.post('/admin/login', { name: '', password: '' }, { tokenFrom: '/admin/login' })
      assert.equal(both.status, 400)
      assert.equal(fieldErrors(both.text), 2)
      assert.match(both.text, /Enter your operator name\./)
      assert.match(both.text, /Enter your password\./)
      const one = await v.post('/admin/login', { name: 'alice', password: '' }, { tokenFrom: '/admin/login' })
      assert.equal(fieldErrors(one.text), 1)
      const bad = await v.post('/admin/login', { name: 'alice', password: 'wrong' }, { tokenFrom: '/admin/login' })
      assert.equal(bad.status, 401)
      assert.match(bad.text, /Wrong operator name or password\./)
      assert.ok(!v.cookies.has('posta_session'), 'no session after a failure')
      const unknown = await v.post('/admin/login', { name: 'nobody', password: 'x' }, { tokenFrom: '/admin/login' })
      assert.equal(unknown.status, 401, 'an unknown name gets the same answer')
    })

    it('logs in with the password posta operator create printed; the session cookie is HttpOnly and SameSite', async () => {
      const before = await op.token('/admin/login')
      const res = await op.req('POST', '/admin/login', { form: { name: 'alice', password: opPassword, _csrf: before } })
      assert.equal(res.status, 303)
      assert.equal(res.location, '/admin')
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith('posta_session='))!
      assert.match(cookie, /HttpOnly/i)
      assert.match(cookie, /SameSite=(Lax|Strict)/i)
      const home = await op.get('/admin')
      assert.equal(home.status, 200)
      assert.match(home.text, new RegExp(`data-tenant="${slug}"`))
      assert.match(home.text, new RegExp(`data-tenant="${other}"`))
    })

    it('a login form without the CSRF token is refused', async () => {
      const v = new Client(panel.url)
      await v.get('/admin/login')
      const res = await v.req('POST', '/admin/login', { form: { name: 'alice', password: opPassword } })
      assert.equal(res.status, 403)
      assert.ok(!v.cookies.has('posta_session'))
    })
  })

  describe('pages', () => {
    it('the tenants list searches by slug or contact', async () => {
      const bySlug = await op.get(`/admin?q=${encodeURIComponent(slug)}`)
      assert.match(bySlug.text, new RegExp(`data-tenant="${slug}"`))
      assert.doesNotMatch(bySlug.text, new RegExp(`data-tenant="${other}"`))
      const byContact = await op.get('/admin?q=BOSS@beta')
      assert.match(byContact.text, new RegExp(`data-tenant="${other}"`))
      assert.doesNotMatch(byContact.text, new RegExp(`data-tenant="${slug}"`))
      const none = await op.get('/admin?q=zzzz-nothing')
      assert.match(none.text, /No tenant matches\./)
    })

    it("one tenant's page shows usage, status, package, trap hits and suppressions", async () => {
      await r.client.hset(keys.trapHits(slug), { hits: 3, pristine: 1, typo: 2 })
      await r.client.zadd(keys.trapStrikes(slug), Date.now(), 'tx1|tyop.example')
      await r.client.zadd(keys.suppression(slug), Date.now() + 86400000, 'gone@example.net')
      const attempt = { at: Date.now(), tenant: slug, tx: 'tx9', ip: IP, domain: 'example.net', mx: 'mx.example.net', result: 'bounced', code: '550', response: '5.1.1 <x@example.net> no such user', size: 100, rcpts: 1, recipients: ['x@example.net'] }
      await r.client.zadd(keys.ledgerRecent(slug), attempt.at, JSON.stringify(attempt))
      const res = await op.get(`/admin/tenants/${slug}`)
      assert.equal(res.status, 200)
      assert.match(res.text, /550 5\.1\.1 &lt;x@example\.net&gt; no such user/, 'the remote reply, escaped')
      assert.match(res.text, /data-figure="limit">1 GB</)
      assert.match(res.text, /3 in all: 1 pristine, 0 recycled, 2 typo/)
      assert.match(res.text, /tx1\|tyop\.example/, 'operators see the trap domain of a strike')
      assert.match(res.text, /gone@example\.net/)
      assert.match(res.text, /ops@acme\.example/)
    })

    it('an unknown tenant is 404, a malformed slug 400', async () => {
      assert.equal((await op.get('/admin/tenants/no-such-tenant')).status, 404)
      assert.equal((await op.get('/admin/tenants/Bad_Slug')).status, 400)
    })

    it('the pool page shows state, slot activity and listings, and today\'s rotation', async () => {
      await r.client.hset(keys.monitorIp(IP), 'bl.example', JSON.stringify({ state: 'LISTED', answers: ['127.0.0.2'], meaning: 'spam source', actionable: true, since: new Date().toISOString() }))
      const res = await op.get('/admin/ips')
      assert.equal(res.status, 200)
      assert.match(res.text, new RegExp(`data-ip="${IP.replace(/\./g, '\\.')}"`))
      assert.match(res.text, /bl\.example: spam source \(127\.0\.0\.2\)/)
      assert.match(res.text, /Rotation of/)
      assert.match(res.text, /\(now\)/)
    })

    it('an investigation made with posta investigate is listed and shown', async () => {
      const inv = await cli('investigate', IP)
      const list = await op.get('/admin/investigations')
      assert.equal(list.status, 200)
      assert.ok(list.text.includes(`/admin/investigations/${inv.id}`), 'listed with a link')
      const one = await op.get(`/admin/investigations/${inv.id}`)
      assert.equal(one.status, 200)
      assert.match(one.text, new RegExp(`Investigation ${inv.id}`))
      assert.match(one.text, /Nobody sent through this IP in the window\./)
      assert.equal((await op.get('/admin/investigations/no-such-id')).status, 404)
      assert.equal((await op.get('/admin/investigations/..%2F..%2Fx')).status, 404)
    })

    it('investigations, the ban ledger and the audit log have their pages; Italian texts with ?lang=it', async () => {
      for (const p of ['/admin/investigations', '/admin/bans', '/admin/audit']) assert.equal((await op.get(p)).status, 200, p)
      const it = await op.get('/admin?lang=it')
      assert.match(it.text, /<html lang="it"/)
      assert.match(it.text, /Clienti/)
      assert.match(it.text, /Registro operazioni/)
      const one = await op.get(`/admin/tenants/${slug}`)
      assert.match(one.text, /Traffico di questo mese/)
      assert.match(one.text, /Si azzera il 1 (gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|dicembre) \d{4}/)
      await op.get('/admin?lang=en')
    })
  })

  describe('actions', () => {
    it('suspend and resume change what posta tenant show says, and are audited', async () => {
      const s = await op.post(`/admin/tenants/${slug}/suspend`, {})
      assert.equal(s.status, 303)
      assert.equal(s.location, `/admin/tenants/${slug}?done=suspend`)
      assert.equal((await cli('tenant', 'show', slug)).status, 'suspended')
      assert.match((await op.get(s.location!)).text, new RegExp(`Tenant ${slug} is suspended\\.`))
      const back = await op.post(`/admin/tenants/${slug}/resume`, {})
      assert.equal(back.status, 303)
      assert.equal((await cli('tenant', 'show', slug)).status, 'active')
      const a = (await listAudit(r.client, 10)).filter((e) => e.target === slug).map((e) => `${e.operator} ${e.action}`)
      assert.deepEqual(a.slice(0, 2), ['alice tenant resume', 'alice tenant suspend'])
    })

    it('top up adds to the allowance posta usage shows; bad or missing traffic is one error and changes nothing', async () => {
      const bad = await op.post(`/admin/tenants/${slug}/topup`, { traffic: 'lots' })
      assert.equal(bad.status, 400)
      assert.equal(fieldErrors(bad.text), 1)
      assert.match(bad.text, /Not a size/)
      assert.equal(fieldErrors((await op.post(`/admin/tenants/${slug}/topup`, { traffic: '' })).text), 1)
      assert.equal((await cli('usage', slug)).topup_bytes, 0)
      const ok = await op.post(`/admin/tenants/${slug}/topup`, { traffic: '5GB' })
      assert.equal(ok.status, 303)
      const u = await cli('usage', slug)
      assert.equal(u.topup_bytes, 5e9)
      assert.equal(u.limit_bytes, 6e9)
      assert.match((await op.get(ok.location!)).text, /got 5 GB more this month/)
      const e = (await listAudit(r.client, 1))[0]
      assert.deepEqual([e.operator, e.action, e.target, e.details.traffic_bytes], ['alice', 'tenant topup', slug, 5e9])
    })

    it('change package moves the tenant (posta tenant show); an unknown package is one error', async () => {
      const bad = await op.post(`/admin/tenants/${slug}/package`, { package: 'no-such-package' })
      assert.equal(bad.status, 400)
      assert.equal(fieldErrors(bad.text), 1)
      assert.equal((await cli('tenant', 'show', slug)).package, pkg)
      const ok = await op.post(`/admin/tenants/${slug}/package`, { package: pkg2 })
      assert.equal(ok.status, 303)
      assert.equal((await cli('tenant', 'show', slug)).package, pkg2)
      const e = (await listAudit(r.client, 1))[0]
      assert.deepEqual([e.action, e.target, e.details], ['tenant package', slug, { from: pkg, to: pkg2 }])
    })

    it('suspend and reinstate an IP change posta ip list, with the reason; a suspension without a reason is one error', async () => {
      const path = `/admin/ips/${encodeURIComponent(IP)}`
      const bad = await op.post(`${path}/suspend`, { reason: '  ' })
      assert.equal(bad.status, 400)
      assert.equal(fieldErrors(bad.text), 1)
      assert.equal((await cli('ip', 'list')).find((p: { ip: string }) => p.ip === IP).state, 'active')
      const ok = await op.post(`${path}/suspend`, { reason: 'listed on bl.example' })
      assert.equal(ok.status, 303)
      const p = (await cli('ip', 'list')).find((x: { ip: string }) => x.ip === IP)
      assert.deepEqual([p.state, p.reason, p.suspended_by], ['suspended', 'listed on bl.example', 'operator:alice'])
      assert.equal((await op.post(`${path}/reinstate`, {})).status, 303)
      assert.equal((await cli('ip', 'list')).find((x: { ip: string }) => x.ip === IP).state, 'active')
      const hist = await cli('ip', 'history', IP)
      assert.deepEqual(hist.slice(0, 2).map((h: { event: string; by: string }) => `${h.event} ${h.by}`), ['reinstated operator:alice', 'suspended operator:alice'])
      const a = (await listAudit(r.client, 2)).map((e) => `${e.action} ${e.target}`)
      assert.deepEqual(a, [`ip reinstate ${IP}`, `ip suspend ${IP}`])
      assert.equal((await op.post('/admin/ips/not-an-ip/suspend', { reason: 'x' }, { tokenFrom: '/admin/ips' })).status, 404)
      assert.equal((await op.post('/admin/ips/198.51.100.1/suspend', { reason: 'x' }, { tokenFrom: '/admin/ips' })).status, 404)
    })

    it('a ban needs a reason and the typed confirmation (one error each); then posta shows the tenant closed and banned', async () => {
      const page = await op.get(`/admin/tenants/${other}`)
      assert.match(page.text, /It cannot be undone\./)
      const none = await op.post(`/admin/tenants/${other}/ban`, { reason: '', confirm: '' })
      assert.equal(none.status, 400)
      assert.equal(fieldErrors(none.text), 2)
      const noConfirm = await op.post(`/admin/tenants/${other}/ban`, { reason: 'trap hits, investigation 1', confirm: 'yes' })
      assert.equal(fieldErrors(noConfirm.text), 1)
      assert.match(noConfirm.text, /Type the tenant slug exactly to confirm\./)
      assert.equal((await cli('tenant', 'show', other)).status, 'active', 'nothing happened without the confirmation')
      const ok = await op.post(`/admin/tenants/${other}/ban`, { reason: 'trap hits, investigation 1', confirm: other })
      assert.equal(ok.status, 303)
      assert.equal((await cli('tenant', 'show', other)).status, 'closed')
      const bans = await cli('ban', 'list')
      const b = bans.find((x: { tenant: string }) => x.tenant === other)
      assert.deepEqual([b.reason, b.by, b.evidence.operator, b.evidence.source], ['trap hits, investigation 1', 'operator:alice', 'alice', 'operator area'])
      const e = (await listAudit(r.client, 1))[0]
      assert.deepEqual([e.operator, e.action, e.target, e.details.reason], ['alice', 'tenant ban', other, 'trap hits, investigation 1'])
      const after = await op.get(`/admin/tenants/${other}`)
      assert.match(after.text, /closed for good/)
      const ledger = await op.get('/admin/bans')
      assert.match(ledger.text, new RegExp(other))
      assert.match(ledger.text, /source: operator area/, 'the evidence is shown to operators')
    })

    it('a closed tenant cannot be resumed: refused with the reason, nothing changes', async () => {
      const res = await op.post(`/admin/tenants/${other}/resume`, {})
      assert.equal(res.status, 400)
      assert.match(res.text, /Refused: tenant .* is closed for good/)
      assert.equal((await cli('tenant', 'show', other)).status, 'closed')
    })

    it('the audit page lists every action with its operator', async () => {
      const res = await op.get('/admin/audit')
      for (const [action, target] of [['tenant suspend', slug], ['tenant topup', slug], ['tenant package', slug], ['ip suspend', IP], ['ip reinstate', IP], ['tenant ban', other]]) {
        assert.match(res.text, new RegExp(`data-action="${action}" data-target="${target.replace(/\./g, '\\.')}"`), action)
      }
    })

    it('a form post without the CSRF token, or from a foreign Origin, is refused and changes nothing', async () => {
      const before = await cli('tenant', 'show', slug)
      const noToken = await op.post(`/admin/tenants/${slug}/suspend`, {}, { withToken: false })
      assert.equal(noToken.status, 403)
      const foreign = await op.post(`/admin/tenants/${slug}/suspend`, {}, { origin: 'https://evil.example' })
      assert.equal(foreign.status, 403)
      const wrong = await op.req('POST', `/admin/tenants/${slug}/suspend`, { form: { _csrf: 'x'.repeat(43) } })
      assert.equal(wrong.status, 403)
      assert.equal((await cli('tenant', 'show', slug)).status, before.status)
    })

    it('an unknown action is 404', async () => {
      assert.equal((await op.post(`/admin/tenants/${slug}/delete`, {}, { tokenFrom: `/admin/tenants/${slug}` })).status, 404)
    })
  })

  describe('JSON API /api/v1/admin', () => {
    it('answers operator Basic credentials: tenants with usage, one tenant, the pool', async () => {
      const auth = basic('alice', opPassword)
      const list = await op.get('/api/v1/admin/tenants', auth)
      assert.equal(list.status, 200)
      const rows = JSON.parse(list.text).tenants as { tenant: string; limit_bytes: number; status: string }[]
      const mine = rows.find((x) => x.tenant === slug)!
      assert.equal(mine.limit_bytes, 15e9, 'pro package 10 GB + 5 GB top-up')
      assert.equal(rows.find((x) => x.tenant === other)!.status, 'closed')
      const q = JSON.parse((await op.get(`/api/v1/admin/tenants?q=${other}`, auth)).text).tenants
      assert.deepEqual(q.map((x: { tenant: string }) => x.tenant), [other])

      const one = JSON.parse((await op.get(`/api/v1/admin/tenants/${slug}`, auth)).text)
      assert.equal(one.tenant.tenant, slug)
      assert.equal(one.tenant.package, pkg2)
      assert.deepEqual(one.tenant.logins, [tenantLogin])
      assert.equal(one.usage.topup_bytes, 5e9)
      assert.equal(one.trap_hits.hits, 3)
      assert.deepEqual(one.trap_hits.strikes, ['tx1|tyop.example'])
      assert.match(one.recent[0].at, /^\d{4}-\d\d-\d\dT.*Z$/)
      assert.equal(one.recent[0].result, 'bounced')
      assert.deepEqual(one.suppressions.map((s: { address: string }) => s.address), ['gone@example.net'])

      const ips = JSON.parse((await op.get('/api/v1/admin/ips', auth)).text)
      assert.equal(ips.rotation.time_zone, 'Europe/Rome')
      const ip = ips.ips.find((x: { ip: string }) => x.ip === IP)
      assert.equal(ip.state, 'active')
      assert.equal(typeof ip.active, 'boolean')
      assert.deepEqual(ip.listings.map((l: { zone: string }) => l.zone), ['bl.example'])
    })

    it('answers an operator session too', async () => {
      const res = await op.get('/api/v1/admin/tenants')
      assert.equal(res.status, 200)
    })

    it('errors are JSON: 401 without or with wrong credentials, 404 for an unknown tenant, 400 for a bad slug', async () => {
      const v = new Client(panel.url)
      const none = await v.get('/api/v1/admin/tenants')
      assert.equal(none.status, 401)
      assert.ok(JSON.parse(none.text).error)
      assert.equal((await v.get('/api/v1/admin/tenants', basic('alice', 'wrong'))).status, 401)
      const unknown = await op.get('/api/v1/admin/tenants/no-such-tenant', basic('alice', opPassword))
      assert.equal(unknown.status, 404)
      assert.match(JSON.parse(unknown.text).error, /unknown tenant/)
      assert.equal((await op.get('/api/v1/admin/tenants/Bad_Slug', basic('alice', opPassword))).status, 400)
    })
  })

  describe('tenants are refused everywhere in the operator area', () => {
    const pages = () => ['/admin', `/admin/tenants/${slug}`, `/admin/tenants/${other}`, '/admin/ips', '/admin/investigations', '/admin/bans', '/admin/audit']
    const apis = () => ['/api/v1/admin/tenants', `/api/v1/admin/tenants/${slug}`, `/api/v1/admin/tenants/${other}`, '/api/v1/admin/ips']
    const posts = () => [`/admin/tenants/${slug}/suspend`, `/admin/tenants/${slug}/topup`, `/admin/tenants/${other}/ban`, `/admin/ips/${IP}/suspend`]

    it("a tenant's session gets 403 on every page, API route and action, and changes nothing", async () => {
      const tenant = new Client(panel.url)
      const login = await tenant.post('/login', { login: tenantLogin, password: tenantPassword }, { tokenFrom: '/login' })
      assert.equal(login.status, 303, `tenant login: ${login.text.slice(0, 200)}`)
      const token = await tenant.token('/')
      for (const p of pages()) assert.equal((await tenant.get(p)).status, 403, p)
      for (const p of apis()) {
        const res = await tenant.get(p)
        assert.equal(res.status, 403, p)
        assert.ok(JSON.parse(res.text).error, p)
      }
      const before = await cli('tenant', 'show', slug)
      for (const p of posts()) assert.equal((await tenant.req('POST', p, { form: { _csrf: token, traffic: '100GB', reason: 'x', confirm: other } })).status, 403, p)
      assert.deepEqual(await cli('tenant', 'show', slug), before)
      assert.equal((await cli('usage', slug)).topup_bytes, 5e9)
    })

    it("a tenant's Basic credentials get 403 on every API route, and pages ignore them", async () => {
      const v = new Client(panel.url)
      for (const p of apis()) {
        const res = await v.get(p, basic(tenantLogin, tenantPassword))
        assert.equal(res.status, 403, p)
        assert.match(JSON.parse(res.text).error, /tenant credentials/)
      }
      for (const p of pages()) {
        const res = await v.get(p, basic(tenantLogin, tenantPassword))
        assert.equal(res.status, 303, p)
        assert.equal(res.location, '/admin/login')
      }
    })

    it('a tenant login and password are no operator login on /admin/login', async () => {
      const v = new Client(panel.url)
      const res = await v.post('/admin/login', { name: tenantLogin, password: tenantPassword }, { tokenFrom: '/admin/login' })
      assert.equal(res.status, 401)
    })
  })

  describe('sessions end with the account', () => {
    it('a new password (posta operator password) ends the operator\'s sessions', async () => {
      const bob = new Client(panel.url)
      const pw = (await cli('operator', 'create', 'bob')).password
      assert.equal((await bob.post('/admin/login', { name: 'bob', password: pw }, { tokenFrom: '/admin/login' })).status, 303)
      assert.equal((await bob.get('/admin')).status, 200)
      const renewed = (await cli('operator', 'password', 'bob')).password
      assert.equal((await bob.get('/admin')).status, 303)
      assert.equal((await bob.post('/admin/login', { name: 'bob', password: pw }, { tokenFrom: '/admin/login' })).status, 401)
      assert.equal((await bob.post('/admin/login', { name: 'bob', password: renewed }, { tokenFrom: '/admin/login' })).status, 303)
      await cli('operator', 'remove', 'bob')
      assert.equal((await bob.get('/admin')).status, 303, 'removing the operator ends the session')
    })

    it('logout ends the session', async () => {
      const carol = new Client(panel.url)
      const pw = (await cli('operator', 'create', 'carol')).password
      await carol.post('/admin/login', { name: 'carol', password: pw }, { tokenFrom: '/admin/login' })
      const out = await carol.post('/admin/logout', {}, { tokenFrom: '/admin' })
      assert.equal(out.status, 303)
      assert.equal(out.location, '/admin/login')
      assert.equal((await carol.get('/admin')).status, 303)
    })
  })
})

describe('operator area: many tenants, login throttling (the rules and counters of SMTP AUTH), Redis down', function () {
  this.timeout(120000)
  let r: TestRedis
  let panel: TestPanel
  let password = ''

  before(async () => {
    r = await testRedis()
    const res = await posta(['operator', 'create', 'dave', '--json'], { REDIS_URL: r.url })
    assert.equal(res.code, 0, res.stderr)
    password = res.json().password
    panel = await startPanel(r)
  })
  after(async () => {
    await panel?.close()
    await r?.close()
  })

  it('the tenants list shows at most 500 and says there are more', async () => {
    // one command each: the tenant hashes are in 501 hash slots ({slug}), apart from the tenant set
    const slugs = Array.from({ length: 501 }, (_, i) => `bulk-${String(i).padStart(3, '0')}`)
    await r.client.sadd(keys.tenants(), ...slugs)
    await Promise.all(slugs.map((slug) => r.client.hset(keys.tenant(slug), { slug, package: 'none', status: 'active', contact: `ops@${slug}.example`, primary_login: 'mail', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' })))
    const all = JSON.parse((await new Client(panel.url).get('/api/v1/admin/tenants', basic('dave', password))).text)
    assert.equal(all.tenants.length, 500)
    assert.equal(all.more, true)
    const some = JSON.parse((await new Client(panel.url).get('/api/v1/admin/tenants?q=bulk-50', basic('dave', password))).text)
    assert.deepEqual(some.tenants.map((t: { tenant: string }) => t.tenant), ['bulk-500'])
    assert.equal(some.more, false)
  })

  it('past the per-client limit the form answers 429 with Retry-After, even to the right password; the API shares the count', async () => {
    const v = new Client(panel.url)
    // posta-auth.ini defaults: 10 attempts per client in 15 minutes
    for (let i = 0; i < 10; i++) {
      const res = await v.post('/admin/login', { name: 'dave', password: `wrong${i}` }, { tokenFrom: '/admin/login' })
      assert.equal(res.status, 401, `attempt ${i + 1}`)
    }
    const locked = await v.post('/admin/login', { name: 'dave', password }, { tokenFrom: '/admin/login' })
    assert.equal(locked.status, 429)
    assert.ok(Number(locked.headers.get('retry-after')) > 0)
    assert.match(locked.text, /Too many failed logins: try again in \d+ seconds\./)
    assert.ok(!v.cookies.has('posta_session'))
    assert.equal(Number(await r.client.get(keys.authFailUser('operator:dave'))), 10, 'counted under operator:<name> in the AUTH counters')
    const api = await v.get('/api/v1/admin/tenants', basic('dave', password))
    assert.equal(api.status, 429, 'Basic on the API is throttled by the same counters')
  })

  it('Redis unreachable: 503 on the pages and JSON 503 on the API, no stack trace', async () => {
    await r.stop()
    try {
      const v = new Client(panel.url)
      const page = await v.get('/admin/login')
      assert.equal(page.status, 503)
      assert.doesNotMatch(page.text, /at .*\.(ts|js):\d+/)
      const api = await v.get('/api/v1/admin/ips', basic('dave', password))
      assert.equal(api.status, 503)
      assert.ok(JSON.parse(api.text).error)
    } finally {
      await r.restart()
    }
  })
})
