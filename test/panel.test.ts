// The customer panel over HTTP: a real redis-server, the app served by @hono/node-server on a free port, real fetch.
// Login (the SMTP credentials, throttled with SMTP AUTH's counters), sessions (cookie flags, ended by a password
// change and by a ban), CSRF, suspended and closed tenants, pages in Italian and English, Redis down.
import { strict as assert } from 'node:assert'
import { attemptKeys, beginAttempt, endAttempt } from '../lib/authguard'
import { banTenant } from '../lib/bans'
import { keys } from '../lib/keys'
import { setPackage } from '../lib/packages'
import { judgeLogin } from '../lib/login'
import { loadSettings, type Settings } from '../lib/settings'
import { createTenant, resetPassword, setTenantStatus, type Credentials } from '../lib/tenants'
import { basic, PanelClient, startPanel, type TestPanel, panelTenant } from '../testkit/panel'
import { scanKeys, testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { formatBytes, formatDate, formatNumber, formatPercent } from '../web/i18n'
import { fromAcceptLanguage } from '../web/middleware'

const DOMAIN = 'posta.example'
const LIMITS = { ip_max: 1000, ip_window: 900, pair_max: 4, pair_window: 3600, user_max: 20, user_window: 3600, failure_delay_ms: 0, max_attempts_per_connection: 3, cache_seconds: 300 }

describe('panel (HTTP, real Redis)', function () {
  this.timeout(60000)
  let r: TestRedis
  let settings: Settings
  let panel: TestPanel
  let pkg: string

  before(async () => {
    r = await testRedis()
    settings = loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: r.url })
    pkg = uniqueName('pkg')
    await setPackage(r.client, pkg, 1.5e9)
    panel = await startPanel(r.url, settings, { auth: LIMITS })
  })
  after(async () => {
    await panel?.close()
    await r?.close()
  })

  const tenant = (): Promise<Credentials> => panelTenant(r.client, settings, pkg)

  async function loggedIn(creds: Credentials, lang = 'en'): Promise<PanelClient> {
    const c = new PanelClient(panel.url)
    await c.get(`/login?lang=${lang}`)
    const res = await c.submit('/login', '/login', { login: creds.login, password: creds.password })
    assert.equal(res.status, 303, await res.text())
    assert.equal(res.headers.get('location'), '/')
    return c
  }

  describe('login', () => {
    it('shows the form with a CSRF token, security headers and no inline script', async () => {
      const c = new PanelClient(panel.url)
      const res = await c.get('/login')
      assert.equal(res.status, 200)
      const html = await res.text()
      assert.match(html, /name="login"/)
      assert.match(html, /name="password"/)
      assert.ok(PanelClient.csrfOf(html).length >= 40)
      assert.doesNotMatch(html, /<script|style=/)
      const csp = res.headers.get('content-security-policy') ?? ''
      assert.match(csp, /default-src 'self'/)
      assert.match(csp, /script-src 'self'/)
      assert.doesNotMatch(csp, /unsafe-inline/)
      assert.match(csp, /frame-ancestors 'none'/)
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(res.headers.get('x-frame-options'), 'DENY')
    })

    it('logs in with the SMTP credentials and shows the dashboard; the session cookie is HttpOnly, SameSite=Lax, not Secure on HTTP', async () => {
      const creds = await tenant()
      const c = new PanelClient(panel.url)
      await c.get('/login')
      const res = await c.submit('/login', '/login', { login: creds.login.toUpperCase(), password: creds.password })
      assert.equal(res.status, 303)
      const cookie = c.lastSetCookie.find((l) => l.startsWith('posta_session='))!
      assert.ok(cookie, 'a session cookie is set')
      assert.match(cookie, /HttpOnly/i)
      assert.match(cookie, /SameSite=Lax/i)
      assert.match(cookie, /Path=\//)
      assert.doesNotMatch(cookie, /Secure/i)
      const dash = await c.get('/')
      assert.equal(dash.status, 200)
      assert.equal(dash.headers.get('cache-control'), 'no-store', 'a private page is never cached')
      const html = await dash.text()
      assert.match(html, /Dashboard/)
      assert.ok(html.includes(creds.login), 'the page says who is signed in')
      // the cookie value is not what Redis stores: only its hash names the key
      const id = c.cookies.get('posta_session')!
      assert.equal((await scanKeys(r.client, `*${id}*`)).length, 0)
    })

    it('marks the cookies Secure when the panel serves HTTPS', async () => {
      const secure = await startPanel(r.url, settings, { auth: LIMITS, secure: true })
      try {
        const creds = await tenant()
        const c = new PanelClient(secure.url)
        await c.get('/login')
        assert.match(c.lastSetCookie.join('\n'), /posta_csrf=[^;]+;.*Secure/i)
        await c.submit('/login', '/login', { login: creds.login, password: creds.password })
        const cookie = c.lastSetCookie.find((l) => l.startsWith('posta_session='))!
        assert.match(cookie, /Secure/)
        assert.match(cookie, /HttpOnly/i)
      } finally {
        await secure.close()
      }
    })

    it('POSTA_PANEL_TLS takes 1 or 0 and refuses anything else, naming the variable', () => {
      assert.equal(loadSettings({ POSTA_PANEL_TLS: '1' }).panelTls, true)
      assert.equal(loadSettings({ POSTA_PANEL_TLS: '0' }).panelTls, false)
      assert.equal(loadSettings({}).panelTls, false)
      for (const bad of ['yes', 'true', '2', ' 1']) assert.throws(() => loadSettings({ POSTA_PANEL_TLS: bad }), /POSTA_PANEL_TLS=.* is refused: allowed is 1/)
    })

    it('refuses a wrong password and an unknown login with the same 401 page', async () => {
      const creds = await tenant()
      const c = new PanelClient(panel.url)
      const wrong = await c.submit('/login', '/login', { login: creds.login, password: 'not-the-password' })
      assert.equal(wrong.status, 401)
      assert.match(await wrong.text(), /Wrong login or password/)
      assert.equal(c.cookies.get('posta_session'), undefined)
      const unknown = await c.submit('/login', '/login', { login: `nobody@nope.${DOMAIN}`, password: 'x' })
      assert.equal(unknown.status, 401)
      assert.match(await unknown.text(), /Wrong login or password/)
      assert.equal((await c.get('/')).status, 303, 'still not logged in')
    })

    it('refuses empty fields with one clear message (400)', async () => {
      const c = new PanelClient(panel.url)
      const res = await c.submit('/login', '/login', { login: '', password: '' })
      assert.equal(res.status, 400)
      assert.match(await res.text(), /Enter your login and your password/)
    })

    it('throttles failures with 429 after the limit, with the counters SMTP AUTH uses', async () => {
      const creds = await tenant()
      const c = new PanelClient(panel.url)
      for (let i = 0; i < LIMITS.pair_max; i++) {
        const res = await c.submit('/login', '/login', { login: creds.login, password: `guess-${i}` })
        assert.equal(res.status, 401, `guess ${i}`)
      }
      // the same key SMTP AUTH counts in (lib/authguard.ts), for this client and login
      assert.equal(Number(await r.client.get(attemptKeys('127.0.0.1', creds.login).pair)), LIMITS.pair_max)
      const locked = await c.submit('/login', '/login', { login: creds.login, password: creds.password })
      assert.equal(locked.status, 429, 'even the right password is refused while locked')
      assert.ok(Number(locked.headers.get('retry-after')) > 0)
      assert.match(await locked.text(), /Too many failed logins: try again in 60 minutes/)
      // and the SMTP side sees the same lock: its verdict for this client and login is "locked"
      const smtp = await judgeLogin(r.client, { limits: { ipMax: 1000, ipWindow: 900, pairMax: 4, pairWindow: 3600, userMax: 20, userWindow: 3600 }, cacheSeconds: 0, serviceDomain: DOMAIN }, '127.0.0.1', creds.login, creds.password)
      assert.equal(smtp.kind, 'locked')
    })

    it('counts failures made over SMTP against the panel login', async () => {
      const creds = await tenant()
      const limits = { ipMax: 1000, ipWindow: 900, pairMax: 4, pairWindow: 3600, userMax: 20, userWindow: 3600 }
      for (let i = 0; i < 4; i++) {
        // what posta-auth does for a wrong password: one counted attempt, ended as a failure
        assert.equal((await beginAttempt(r.client, '127.0.0.1', creds.login, limits)).kind, 'go')
        await endAttempt(r.client, '127.0.0.1', creds.login, false)
      }
      const c = new PanelClient(panel.url)
      const res = await c.submit('/login', '/login', { login: creds.login, password: creds.password })
      assert.equal(res.status, 429)
    })

    it('refuses a suspended and a closed tenant with a message saying so, after the password check', async () => {
      const a = await tenant()
      await setTenantStatus(r.client, a.tenant, 'suspended')
      const c = new PanelClient(panel.url)
      const res = await c.submit('/login', '/login', { login: a.login, password: a.password })
      assert.equal(res.status, 403)
      assert.match(await res.text(), /This account is suspended: contact support/)
      const wrong = await c.submit('/login', '/login', { login: a.login, password: 'wrong' })
      assert.equal(wrong.status, 401, 'a guesser does not learn the status')

      const b = await tenant()
      await banTenant(r.client, b.tenant, 'test ban', 'test', {}, { freemail: null, senderDomains: false })
      const closed = await c.submit('/login', '/login', { login: b.login, password: b.password })
      assert.equal(closed.status, 403)
      assert.match(await closed.text(), /This account is closed: contact support/)
      assert.equal(c.cookies.get('posta_session'), undefined)
    })

    it('logs out: the session is gone from Redis and the old cookie no longer works', async () => {
      const creds = await tenant()
      const c = await loggedIn(creds)
      const id = c.cookies.get('posta_session')!
      const out = await c.submit('/', '/logout', {})
      assert.equal(out.status, 303)
      assert.equal(out.headers.get('location'), '/login?m=out')
      assert.equal(c.cookies.get('posta_session'), undefined)
      const replay = new PanelClient(panel.url)
      replay.cookies.set('posta_session', id)
      assert.equal((await replay.get('/')).status, 303)
      assert.equal((await r.client.smembers(keys.sessionsOf(`tenant:${creds.tenant}`))).length, 0)
    })
  })

  describe('CSRF', () => {
    it('refuses a form post without the token, with a wrong token, and from a foreign Origin', async () => {
      const creds = await tenant()
      const c = await loggedIn(creds)
      const noToken = await c.post('/logout', {})
      assert.equal(noToken.status, 403)
      assert.match(await noToken.text(), /did not come from this site/)
      const wrongToken = await c.post('/logout', { _csrf: 'x'.repeat(43) })
      assert.equal(wrongToken.status, 403)
      const page = await c.get('/password')
      const token = PanelClient.csrfOf(await page.text())
      const foreign = await c.post('/logout', { _csrf: token }, { origin: 'https://evil.example' })
      assert.equal(foreign.status, 403)
      const noOrigin = await c.post('/logout', { _csrf: token }, { origin: null })
      assert.equal(noOrigin.status, 403, 'no Origin and no Sec-Fetch-Site: refused')
      assert.equal((await c.get('/')).status, 200, 'still logged in: none of them logged out')
      const ok = await c.post('/logout', { _csrf: token })
      assert.equal(ok.status, 303)
    })

    it('refuses a login post without the pre-session token (login CSRF)', async () => {
      const creds = await tenant()
      const c = new PanelClient(panel.url)
      const res = await c.post('/login', { login: creds.login, password: creds.password })
      assert.equal(res.status, 403)
      assert.equal(c.cookies.get('posta_session'), undefined)
      // a token from another browser's cookie does not pass either
      const other = new PanelClient(panel.url)
      const token = PanelClient.csrfOf(await (await other.get('/login')).text())
      await c.get('/login')
      assert.equal((await c.post('/login', { _csrf: token, login: creds.login, password: creds.password })).status, 403)
    })
  })

  describe('sessions end', () => {
    it('after a password change in the panel (other sessions; this browser gets a new one), and the new password works', async () => {
      const creds = await tenant()
      const a = await loggedIn(creds)
      const b = await loggedIn(creds)
      const oldA = a.cookies.get('posta_session')
      const res = await a.submit('/password', '/password', { current: creds.password, mode: 'generate' })
      assert.equal(res.status, 200)
      const html = await res.text()
      const generated = /id="generated">([^<]+)</.exec(html)![1]
      assert.equal(generated.length, 24)
      assert.equal(res.headers.get('cache-control'), 'no-store')
      assert.equal((await b.get('/')).status, 303, 'the other session ended')
      assert.notEqual(a.cookies.get('posta_session'), oldA, 'a new session id')
      assert.equal((await a.get('/')).status, 200, 'this browser stays logged in')
      const fresh = new PanelClient(panel.url)
      assert.equal((await fresh.submit('/login', '/login', { login: creds.login, password: creds.password })).status, 401, 'the old password is refused')
      assert.equal((await fresh.submit('/login', '/login', { login: creds.login, password: generated })).status, 303)
    })

    it('after posta tenant password (resetPassword) and after a ban', async () => {
      const creds = await tenant()
      const c = await loggedIn(creds)
      await resetPassword(r.client, settings, creds.tenant)
      assert.equal((await c.get('/')).status, 303)

      const other = await tenant()
      const d = await loggedIn(other)
      assert.equal((await d.get('/messages')).status, 200)
      await banTenant(r.client, other.tenant, 'spam', 'test', {}, { freemail: null, senderDomains: false })
      assert.equal((await d.get('/messages')).status, 303)
      assert.equal(await r.client.exists(keys.sessionsOf(`tenant:${other.tenant}`)), 0)
    })

    it('when it expires (sessionSeconds), in Redis too', async () => {
      const short = await startPanel(r.url, settings, { auth: LIMITS, sessionSeconds: 4 })
      try {
        const creds = await tenant()
        const c = new PanelClient(short.url)
        assert.equal((await c.submit('/login', '/login', { login: creds.login, password: creds.password })).status, 303)
        assert.match(c.lastSetCookie.find((l) => l.startsWith('posta_session='))!, /Max-Age=4/)
        const index = keys.sessionsOf(`tenant:${creds.tenant}`)
        const [hash] = await r.client.smembers(index)
        const ttl = await r.client.ttl(keys.session(hash))
        assert.ok(ttl > 0 && ttl <= 4, `the session key expires with the session (${ttl})`)
        assert.equal((await c.get('/settings')).status, 200)
        // wait for Redis to drop the key (however loaded the machine), then the cookie is no session
        const deadline = Date.now() + 15000
        while ((await r.client.exists(keys.session(hash))) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200))
        assert.equal((await c.get('/settings')).status, 303)
      } finally {
        await short.close()
      }
    })

    it('when the tenant is suspended: the next page refuses the session and says why', async () => {
      const creds = await tenant()
      const c = await loggedIn(creds)
      await setTenantStatus(r.client, creds.tenant, 'suspended')
      const res = await c.get('/')
      assert.equal(res.status, 303)
      assert.equal(res.headers.get('location'), '/login?m=suspended')
      assert.match(await (await c.get('/login?m=suspended')).text(), /This account is suspended/)
    })
  })

  describe('password page', () => {
    it('checks the current password and the strength of a chosen one, one message per problem', async () => {
      const creds = await tenant()
      const c = await loggedIn(creds)
      const wrong = await c.submit('/password', '/password', { current: 'wrong', mode: 'generate' })
      assert.equal(wrong.status, 401)
      assert.match(await wrong.text(), /current password is wrong/)
      const short = await c.submit('/password', '/password', { current: creds.password, mode: 'choose', new: 'Ab1!', confirm: 'Ab1!' })
      assert.equal(short.status, 400)
      assert.match(await short.text(), /too short/)
      const simple = await c.submit('/password', '/password', { current: creds.password, mode: 'choose', new: 'abcdefghijklmnop', confirm: 'abcdefghijklmnop' })
      assert.match(await simple.text(), /at least 3 of/)
      const mismatch = await c.submit('/password', '/password', { current: creds.password, mode: 'choose', new: 'Correct-Horse-42', confirm: 'Correct-Horse-43' })
      assert.match(await mismatch.text(), /two new passwords differ/)
      const login = await c.submit('/password', '/password', { current: creds.password, mode: 'choose', new: `X1-${creds.tenant}-zz`, confirm: `X1-${creds.tenant}-zz` })
      assert.match(await login.text(), /must not contain your login/)
      const none = await c.submit('/password', '/password', { current: '', mode: 'nonsense' })
      const noneHtml = await none.text()
      assert.match(noneHtml, /Enter your current password/)
      assert.match(noneHtml, /Choose a generated password or your own/)
      const ok = await c.submit('/password', '/password', { current: creds.password, mode: 'choose', new: 'Correct-Horse-42', confirm: 'Correct-Horse-42' })
      assert.equal(ok.status, 200)
      const okHtml = await ok.text()
      assert.match(okHtml, /Your password is changed/)
      assert.doesNotMatch(okHtml, /Correct-Horse-42/, 'a chosen password is never echoed')
      const fresh = new PanelClient(panel.url)
      assert.equal((await fresh.submit('/login', '/login', { login: creds.login, password: 'Correct-Horse-42' })).status, 303)
    })
  })

  describe('languages', () => {
    it('formats numbers, sizes and dates in each language', () => {
      assert.equal(formatBytes('it', 1.5e9), '1,5 GB')
      assert.equal(formatBytes('en', 1.5e9), '1.5 GB')
      assert.equal(formatBytes('en', 999), '999 B')
      assert.equal(formatBytes('en', 999_999), '1 MB')
      assert.equal(formatNumber('it', 1234567), '1.234.567')
      assert.equal(formatNumber('en', 1234567), '1,234,567')
      assert.equal(formatPercent('it', 80.5), '80,5%')
      assert.equal(formatDate('it', new Date('2027-01-01T00:00:00+01:00'), 'Europe/Rome'), '1 gennaio 2027')
      assert.equal(formatDate('en', new Date('2027-01-01T00:00:00+01:00'), 'Europe/Rome'), '1 January 2027')
    })

    it('reads Accept-Language with q-values and ignores languages it has not', () => {
      assert.equal(fromAcceptLanguage('it-IT,it;q=0.9,en;q=0.8'), 'it')
      assert.equal(fromAcceptLanguage('de-DE,de;q=0.9,en;q=0.5,it;q=0.4'), 'en')
      assert.equal(fromAcceptLanguage('en;q=0.2, it;q=0.7'), 'it')
      assert.equal(fromAcceptLanguage('de, fr'), null)
      assert.equal(fromAcceptLanguage(undefined), null)
      assert.equal(fromAcceptLanguage('it;q=0'), null)
    })

    it('chooses from Accept-Language, switches with ?lang= and remembers it in a cookie', async () => {
      const c = new PanelClient(panel.url)
      const it1 = await c.get('/login', { 'accept-language': 'it-IT,it;q=0.9' })
      const h1 = await it1.text()
      assert.match(h1, /<html lang="it">/)
      assert.match(h1, /Accedi/)
      const en = await c.get('/login?lang=en', { 'accept-language': 'it' })
      assert.match(await en.text(), /<html lang="en">[\s\S]*Log in/)
      const cookie = c.lastSetCookie.find((l) => l.startsWith('posta_lang='))!
      assert.match(cookie, /HttpOnly/i)
      const kept = await c.get('/login', { 'accept-language': 'it' })
      assert.match(await kept.text(), /<html lang="en">/, 'the cookie wins over the header')
      const bad = await c.get('/login?lang=xx')
      assert.match(await bad.text(), /<html lang="en">/, 'an unknown ?lang= changes nothing')
    })

    it('shows the dashboard in Italian with Italian number formats and the reset date', async () => {
      const creds = await tenant()
      const c = await loggedIn(creds, 'it')
      const now = new Date()
      const html = await (await c.get('/')).text()
      assert.match(html, /Riepilogo/)
      assert.match(html, /1,5 GB/, 'the allowance in Italian format')
      assert.match(html, /Si azzera il 1 \w+ \d{4}/)
      const en = await (await c.get('/?lang=en')).text()
      assert.match(en, /1\.5 GB/)
      assert.match(en, /Resets on 1 \w+ \d{4}/)
      void now
    })
  })

  describe('Redis unreachable', () => {
    it('answers 503 with a page and with JSON, never a stack trace, and recovers when Redis is back', async function () {
      this.timeout(120000)
      const own = await testRedis({ persistent: true })
      const s = loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: own.url })
      await setPackage(own.client, 'p', 1e9)
      const creds = await createTenant(own.client, s, { slug: 'down', package: 'p', contact: 'o@example.net' })
      const p = await startPanel(own.url, s, { auth: LIMITS })
      try {
        const c = new PanelClient(p.url)
        assert.equal((await c.submit('/login', '/login', { login: creds.login, password: creds.password })).status, 303)
        await own.stop()
        const page = await c.get('/')
        assert.equal(page.status, 503)
        const html = await page.text()
        assert.match(html, /temporarily unavailable/)
        assert.doesNotMatch(html, /at .*\.(ts|js):\d+|Error:|ECONNREFUSED/)
        const login = await c.get('/login')
        assert.equal(login.status, 503)
        const api = await fetch(`${p.url}/api/v1/usage`, { headers: { authorization: basic(creds.login, creds.password) } })
        assert.equal(api.status, 503)
        assert.equal(api.headers.get('content-type')?.split(';')[0], 'application/json')
        const body = (await api.json()) as { error: string }
        assert.match(body.error, /temporarily unavailable/)
        assert.equal((await fetch(`${p.url}/healthz`)).status, 503)
        await own.restart()
        const deadline = Date.now() + 20000
        while (p.redis.status !== 'ready' && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100))
        assert.equal((await c.get('/')).status, 200, 'the session is still valid once Redis is back')
      } finally {
        await p.close()
        await own.close()
      }
    })
  })
})
