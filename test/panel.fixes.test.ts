// Panel leftovers of issue 11, over HTTP (real Redis, the app on a free port, real fetch): the month headings name
// the month in the page's language; the language switch after a refused POST leads to a page, not a 404; operator
// logins are in the audit log without secrets; the tenant list's batched usage equals usage(); the usage cache of
// the dashboard and the API (web/reports.ts: one read per tenant and second, never a stale read past it).
import { strict as assert } from 'node:assert'
import { listAudit } from '../lib/audit'
import { keys } from '../lib/keys'
import { createOperator, removeOperator, renewOperatorPassword } from '../lib/operators'
import { setPackage } from '../lib/packages'
import { commit, DEFAULT_QUOTA, reserve, topUp, usage, usageSummaries, type Reservation } from '../lib/quota'
import { loadSettings, type Settings } from '../lib/settings'
import { getTenants, type Credentials } from '../lib/tenants'
import { basic, PanelClient, startPanel, type TestPanel, panelTenant } from '../testkit/panel'
import { serversOf, testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { tenantRows } from '../web/admin/data'
import { formatMonth } from '../web/i18n'
import { langHref } from '../web/layout'

const DOMAIN = 'posta.example'
const LIMITS = { ip_max: 1000, ip_window: 900, pair_max: 3, pair_window: 3600, user_max: 20, user_window: 3600, failure_delay_ms: 0, max_attempts_per_connection: 3, cache_seconds: 300 }

/** The page's language link (web/layout.tsx: the current language is not a link): its href, unescaped, and language. */
function langLink(html: string): { href: string; lang: string } {
  const m = /<a href="([^"]*)" lang="(en|it)" hreflang=/.exec(html)
  assert.ok(m, 'a language link on the page')
  return { href: m[1].replace(/&amp;/g, '&'), lang: m[2] }
}

describe('panel fixes (HTTP, real Redis)', function () {
  this.timeout(60000)
  let r: TestRedis
  let settings: Settings
  let panel: TestPanel
  let pkg: string
  let opPassword: string
  const quota = { ...DEFAULT_QUOTA, timeZone: 'Europe/Rome' }

  before(async () => {
    r = await testRedis()
    settings = loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: r.url, POSTA_TIMEZONE: 'Europe/Rome' })
    pkg = uniqueName('pkg')
    await setPackage(r.client, pkg, 1e9)
    panel = await startPanel(r.url, settings, { auth: LIMITS })
    opPassword = (await createOperator(r.client, 'olga')).password
  })
  after(async () => {
    await panel?.close()
    await r?.close()
  })

  const tenant = (): Promise<Credentials> => panelTenant(r.client, settings, pkg)

  async function send(slug: string, id: string, bytes: number) {
    const res = await reserve(r.client, quota, slug, id, bytes, 1)
    assert.ok(res.ok)
    await commit(r.client, quota, (res as { reservation: Reservation }).reservation)
  }

  async function loggedIn(creds: Credentials, p: TestPanel = panel): Promise<PanelClient> {
    const c = new PanelClient(p.url)
    const res = await c.submit('/login', '/login', { login: creds.login, password: creds.password })
    assert.equal(res.status, 303, await res.text())
    return c
  }

  async function operator(): Promise<PanelClient> {
    const c = new PanelClient(panel.url)
    const res = await c.submit('/admin/login', '/admin/login', { name: 'olga', password: opPassword })
    assert.equal(res.status, 303, await res.text())
    return c
  }

  describe('month headings', () => {
    it('formatMonth names a month in English and Italian, whatever the time zone', () => {
      assert.equal(formatMonth('en', '2026-12'), 'December 2026')
      assert.equal(formatMonth('it', '2026-12'), 'dicembre 2026')
      assert.equal(formatMonth('en', '2027-01'), 'January 2027')
      assert.equal(formatMonth('it', '2027-02'), 'febbraio 2027')
      assert.equal(formatMonth('en', 'bogus'), 'bogus', 'anything but YYYY-MM is shown as it is')
    })

    it('the dashboard and the operator tenant page head the month by its name in the page language', async () => {
      const creds = await tenant()
      const month = (await usage(r.client, quota, creds.tenant)).month
      const c = await loggedIn(creds)
      for (const lang of ['en', 'it'] as const) {
        const html = await (await c.get(`/?lang=${lang}`)).text()
        const h = /<h2 id="month" data-month="([^"]+)">([^<]*)<\/h2>/.exec(html)
        assert.ok(h, 'a month heading')
        assert.equal(h[1], month)
        assert.ok(h[2].includes(`(${formatMonth(lang, month)})`), h[2])
        assert.ok(!h[2].includes(month), `no ${month} in "${h[2]}"`)
        assert.match(h[2], lang === 'en' ? /^Traffic this month \([A-Z][a-z]+ \d{4}\)$/ : /^Traffico di questo mese \([a-z]+ \d{4}\)$/)
      }
      const op = await operator()
      const html = await (await op.get(`/admin/tenants/${creds.tenant}?lang=it`)).text()
      const h = /<h2 id="month" data-month="[^"]+">([^<]*)<\/h2>/.exec(html)
      assert.ok(h)
      assert.ok(h[1].includes(formatMonth('it', month)) && !h[1].includes(month), h[1])
    })
  })

  describe('language switch after a refused POST', () => {
    it('langHref keeps a GET\'s query and sends a POST to its form\'s page', () => {
      const u = 'http://x/messages?status=bounced'
      assert.equal(langHref('GET', u, 'it'), '/messages?status=bounced&lang=it')
      assert.equal(langHref('GET', 'http://x/?lang=en', 'it'), '/?lang=it')
      assert.equal(langHref('POST', 'http://x/login?m=out', 'it'), '/login?lang=it')
      assert.equal(langHref('POST', 'http://x/admin/tenants/acme/topup', 'en'), '/admin/tenants/acme?lang=en')
      assert.equal(langHref('POST', 'http://x/admin/ips/203.0.113.9/suspend', 'it'), '/admin/ips?lang=it')
      assert.equal(langHref('POST', 'http://x/admin/logout', 'it'), '/admin/login?lang=it')
    })

    it('every refused customer form links to a page that answers 200 in the other language', async () => {
      const creds = await tenant()
      // a wrong password (401), then a missing field (400)
      const v = new PanelClient(panel.url)
      await v.get('/login?lang=en') // the pages in English (the lang cookie): the link leads to Italian
      for (const fields of [{ login: creds.login, password: 'wrong' }, { login: '', password: '' }]) {
        const res = await v.submit('/login', '/login', fields)
        assert.ok(res.status === 401 || res.status === 400, String(res.status))
        const { href, lang } = langLink(await res.text())
        assert.equal(href, `/login?lang=${lang}`)
        const page = await v.get(href)
        assert.equal(page.status, 200)
        assert.match(await page.text(), new RegExp(`<html lang="${lang}"`))
      }
      // the password form with errors (400): the link goes to GET /password
      const c = await loggedIn(creds)
      await c.get('/?lang=en')
      const res = await c.submit('/password', '/password', { current: '', mode: 'nonsense' })
      assert.equal(res.status, 400)
      const { href } = langLink(await res.text())
      assert.equal(href, '/password?lang=it')
      assert.equal((await c.get(href)).status, 200)
      // a POST refused by the CSRF check (403 page)
      const bad = await c.post('/password', { _csrf: 'not-the-token', current: 'x', mode: 'generate' })
      assert.equal(bad.status, 403)
      const refused = langLink(await bad.text())
      assert.equal(refused.href, `/password?lang=${refused.lang}`)
      assert.equal((await c.get(refused.href)).status, 200)
    })

    it('every refused operator form links to its page, which answers 200 (no 404 for the POST-only paths)', async () => {
      const creds = await tenant()
      const op = await operator()
      await op.get('/admin?lang=en')
      const tokenOf = async (path: string) => PanelClient.csrfOf(await (await op.get(path)).text())
      const cases: [string, Record<string, string>, string, string][] = [
        [`/admin/tenants/${creds.tenant}/topup`, { traffic: 'lots' }, `/admin/tenants/${creds.tenant}`, `/admin/tenants/${creds.tenant}?lang=it`],
        [`/admin/tenants/${creds.tenant}/ban`, { reason: '', confirm: '' }, `/admin/tenants/${creds.tenant}`, `/admin/tenants/${creds.tenant}?lang=it`],
        ['/admin/ips/203.0.113.77/suspend', { reason: '' }, '/admin/ips', '/admin/ips?lang=it'],
      ]
      for (const [action, fields, page, expected] of cases) {
        await op.get('/admin?lang=en')
        const res = await op.post(action, { _csrf: await tokenOf(page), ...fields })
        assert.ok(res.status >= 400 && res.status < 500, `${action}: ${res.status}`)
        const { href } = langLink(await res.text())
        assert.equal(href, expected, action)
        const next = await op.get(href)
        assert.equal(next.status, 200, `${href} after POST ${action}`)
        assert.match(await next.text(), /<html lang="it"/)
      }
      const v = new PanelClient(panel.url)
      await v.get('/admin/login?lang=en')
      const res = await v.submit('/admin/login', '/admin/login', { name: 'olga', password: 'wrong' })
      assert.equal(res.status, 401)
      const { href } = langLink(await res.text())
      assert.equal(href, '/admin/login?lang=it')
      assert.equal((await v.get(href)).status, 200)
    })
  })

  describe('operator logins in the audit log', () => {
    it('writes a successful and a failed form login with the client address, never the password', async () => {
      const { password } = await createOperator(r.client, 'paula')
      const before = (await listAudit(r.client, 1000)).length
      const wrong = `wrong-${password.slice(0, 4)}-secret`
      const bad = await new PanelClient(panel.url).submit('/admin/login', '/admin/login', { name: 'paula', password: wrong })
      assert.equal(bad.status, 401)
      // a name that is no operator (it could be a password typed in the wrong field): not written as a name
      const typo = 'Tr0ub4dor-and-3'
      assert.equal((await new PanelClient(panel.url).submit('/admin/login', '/admin/login', { name: typo, password: 'x' })).status, 401)
      const ok = await new PanelClient(panel.url).submit('/admin/login', '/admin/login', { name: 'paula', password })
      assert.equal(ok.status, 303)
      const entries = (await listAudit(r.client, 1000)).slice(0, (await listAudit(r.client, 1000)).length - before).reverse()
      assert.deepEqual(entries.map((e) => [e.action, e.operator, e.target, e.details]), [
        ['operator login failed', 'paula', 'paula', { ip: '127.0.0.1', reason: 'wrong password' }],
        ['operator login failed', '(unknown)', '(unknown)', { ip: '127.0.0.1', reason: 'no such operator' }],
        ['operator login', 'paula', 'paula', { ip: '127.0.0.1' }],
      ])
      const raw = (await r.client.lrange(keys.audit(), 0, -1)).join('\n')
      for (const secret of [password, wrong, typo.toLowerCase(), typo]) assert.ok(!raw.includes(secret), 'no password in the audit log')
    })

    it('shows the logins on /admin/audit; a throttled attempt (429) checks nothing and writes nothing', async () => {
      const { password } = await createOperator(r.client, 'quinn')
      const v = new PanelClient(panel.url)
      for (let i = 0; i < LIMITS.pair_max; i++) assert.equal((await v.submit('/admin/login', '/admin/login', { name: 'quinn', password: `w${i}` })).status, 401)
      const n = (await listAudit(r.client, 1000)).length
      const locked = await v.submit('/admin/login', '/admin/login', { name: 'quinn', password })
      assert.equal(locked.status, 429)
      assert.equal((await listAudit(r.client, 1000)).length, n, 'nothing written for a refused attempt')
      const page = await (await (await operator()).get('/admin/audit')).text()
      assert.match(page, /data-action="operator login failed" data-target="quinn"/)
      assert.match(page, /data-action="operator login" data-target="olga"/)
    })
  })

  describe('operator Basic credentials on the API', () => {
    /** Redis commands run so far (INFO stats, summed over a Cluster's masters). */
    async function commands(): Promise<number> {
      const each = await Promise.all(serversOf(r.client).map(async (s) => Number(/total_commands_processed:(\d+)/.exec(await s.info('stats'))![1])))
      return each.reduce((a, b) => a + b, 0)
    }

    it('pay one counted scrypt verify, then the verify cache (cache_seconds) until the password is renewed or the operator removed', async () => {
      const { password } = await createOperator(r.client, 'sven')
      const get = async (pass: string) => (await fetch(`${panel.url}/api/v1/admin/ips`, { headers: { authorization: basic('sven', pass) } })).status
      let n0 = await commands()
      assert.equal(await get(password), 200)
      const first = (await commands()) - n0
      n0 = await commands()
      assert.equal(await get(password), 200)
      const second = (await commands()) - n0
      assert.ok(second < first, `the second request skips the counted attempt (${second} commands, the first ${first})`)
      assert.equal(await get(`${password}x`), 401, 'another password is verified, and refused')
      const renewed = await renewOperatorPassword(r.client, 'sven')
      assert.equal(await get(password), 401, 'the old password after a renewal')
      assert.equal(await get(renewed.password), 200)
      await removeOperator(r.client, 'sven')
      assert.equal(await get(renewed.password), 401, 'a removed operator')
    })
  })

  describe('the tenant list reads usage in one go', () => {
    it('usageSummaries and the list rows equal usage() for each tenant (traffic, top-up, none), unknown slugs left out', async () => {
      const a = await tenant()
      const b = await tenant()
      const c = await tenant()
      await send(a.tenant, 'a1', 600_000_000)
      await send(b.tenant, 'b1', 1234)
      await send(b.tenant, 'b2', 4321)
      await topUp(r.client, quota, b.tenant, 5e8)
      await r.client.sadd(keys.tenants(), 'ghost-tenant')
      try {
        const slugs = [a.tenant, b.tenant, c.tenant]
        const sums = await usageSummaries(r.client, quota, slugs)
        for (const [i, slug] of slugs.entries()) {
          const u = await usage(r.client, quota, slug)
          assert.deepEqual(sums[i], { tenant: slug, month: u.month, used_bytes: u.used_bytes, limit_bytes: u.limit_bytes, remaining_bytes: u.remaining_bytes, percent: u.percent, messages: u.messages })
        }
        assert.equal(sums[0].percent, 60)
        assert.equal(sums[1].limit_bytes, 1.5e9)
        assert.deepEqual((await getTenants(r.client, ['ghost-tenant', a.tenant])).map((t) => t.slug), [a.tenant])
        const { rows } = await tenantRows(r.client, quota)
        assert.ok(!rows.some((x) => x.tenant === 'ghost-tenant'))
        for (const slug of slugs) {
          const row = rows.find((x) => x.tenant === slug)!
          const u = await usage(r.client, quota, slug)
          assert.deepEqual([row.used_bytes, row.limit_bytes, row.remaining_bytes, row.percent, row.messages], [u.used_bytes, u.limit_bytes, u.remaining_bytes, u.percent, u.messages])
        }
        const api = (await (await fetch(`${panel.url}/api/v1/admin/tenants?q=${a.tenant}`, { headers: { authorization: basic('olga', opPassword) } })).json()) as { tenants: { tenant: string; percent: number }[] }
        assert.deepEqual(api.tenants.map((t) => [t.tenant, t.percent]), [[a.tenant, 60]])
      } finally {
        await r.client.srem(keys.tenants(), 'ghost-tenant')
      }
    })
  })

  describe('usage cache (PanelDeps.usageCacheMs)', () => {
    /** Calls of a Redis command so far (INFO commandstats, summed over a Cluster's masters). */
    async function calls(cmd: string): Promise<number> {
      const each = await Promise.all(serversOf(r.client).map(async (s) => {
        const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await s.info('commandstats'))
        return m ? Number(m[1]) : 0
      }))
      return each.reduce((a, b) => a + b, 0)
    }

    it('within its time a tenant\'s figures are read once for many concurrent requests, and new traffic shows after it', async () => {
      const cached = await startPanel(r.url, settings, { auth: LIMITS, usageCacheMs: 60_000 })
      try {
        const a = await tenant()
        const b = await tenant()
        await send(a.tenant, 'm1', 1000)
        const auth = { authorization: basic(a.login, a.password) }
        const get = async () => (await (await fetch(`${cached.url}/api/v1/usage`, { headers: auth })).json()) as { used_bytes: number; messages: number }
        assert.equal((await get()).used_bytes, 1000, 'the first read')
        // a fresh tenant: 20 concurrent requests read its usage once (one usage() is 2 + days HGETALLs)
        const days = (await usage(r.client, quota, b.tenant)).days.length
        const cb = await loggedIn(b, cached)
        const h0 = await calls('hgetall')
        const pages = await Promise.all(Array.from({ length: 20 }, () => cb.get('/')))
        assert.deepEqual(pages.map((p) => p.status), Array(20).fill(200))
        assert.equal((await calls('hgetall')) - h0, 2 + days, 'one usage() for 20 dashboards')
        // new traffic of a: not shown while the entry is fresh (60 s here), shown by a panel without the cache
        await send(a.tenant, 'm2', 500)
        assert.equal((await get()).used_bytes, 1000, 'the cached figure')
        const direct = await fetch(`${panel.url}/api/v1/usage`, { headers: auth })
        assert.equal(((await direct.json()) as { used_bytes: number }).used_bytes, 1500, 'usageCacheMs 0 reads Redis')
      } finally {
        await cached.close()
      }
    })

    it('an entry is never served past its time', async () => {
      const cached = await startPanel(r.url, settings, { auth: LIMITS, usageCacheMs: 300 })
      try {
        const a = await tenant()
        const auth = { authorization: basic(a.login, a.password) }
        const get = async () => ((await (await fetch(`${cached.url}/api/v1/usage`, { headers: auth })).json()) as { used_bytes: number }).used_bytes
        assert.equal(await get(), 0)
        await send(a.tenant, 'm1', 777)
        await new Promise((res) => setTimeout(res, 400))
        assert.equal(await get(), 777, 'read again once the entry is older than usageCacheMs')
      } finally {
        await cached.close()
      }
    })
  })
})
