// Panel pages and sessions in detail (real Redis, the app on a free port, real fetch): every page in Italian carries
// no English text of the panel and the other way round; the daily chart draws one bar per day with traffic, scaled
// to the month's biggest day; oversized forms are refused; lib/sessions.ts for both kinds of subject.
import { strict as assert } from 'node:assert'
import * as crypto from 'node:crypto'
import { keys } from '../lib/keys'
import { DEFAULT_LEDGER, recordAttempt } from '../lib/ledger'
import { setPackage } from '../lib/packages'
import { dayOf } from '../lib/period'
import { commit, DEFAULT_QUOTA, reserve, type Reservation } from '../lib/quota'
import { createSession, endSession, endSessionsOf, getSession } from '../lib/sessions'
import { loadSettings, type Settings } from '../lib/settings'
import { suppress } from '../lib/suppression'
import { createTenant, type Credentials } from '../lib/tenants'
import { PanelClient, startPanel, type TestPanel } from '../testkit/panel'
import { scanKeys, testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { MESSAGES, type MessageKey } from '../web/i18n'

const DOMAIN = 'posta.example'
const LIMITS = { ip_max: 1000, ip_window: 900, pair_max: 10, pair_window: 3600, user_max: 20, user_window: 3600, failure_delay_ms: 0, max_attempts_per_connection: 3, cache_seconds: 300 }

/** The panel's texts of a language with their placeholders cut out: the fixed pieces a page would show. */
function fixedPieces(lang: 'en' | 'it'): string[] {
  const other = lang === 'en' ? MESSAGES.it : MESSAGES.en
  return (Object.keys(MESSAGES.en) as MessageKey[])
    .filter((k) => !k.startsWith('lang.') && MESSAGES[lang][k] !== other[k])
    .flatMap((k) => MESSAGES[lang][k].split(/\{\w+\}/))
    .map((p) => p.trim())
    // short pieces ("Password", "API") are the same word in both languages or too common to tell
    .filter((p) => p.length >= 12 && !other[p as MessageKey] && !Object.values(other).some((v) => v.includes(p)))
}

function visibleText(html: string): string {
  return html.replace(/<[^>]*>/g, ' ').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/\s+/g, ' ')
}

describe('panel pages (HTTP, real Redis)', function () {
  this.timeout(60000)
  let r: TestRedis
  let settings: Settings
  let panel: TestPanel
  let pkg: string
  let creds: Credentials
  const quota = { ...DEFAULT_QUOTA, timeZone: 'Europe/Rome' }

  before(async () => {
    r = await testRedis()
    settings = loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: r.url })
    pkg = uniqueName('pkg')
    await setPackage(r.client, pkg, 1e6)
    panel = await startPanel(r.url, settings, { auth: LIMITS })
    const slug = uniqueName('t').replace(/[^a-z0-9-]/g, '').slice(0, 30)
    creds = await createTenant(r.client, settings, { slug, package: pkg, contact: `${slug}@example.net` })
    const res = await reserve(r.client, quota, slug, 'm1', 1234, 1)
    await commit(r.client, quota, (res as { reservation: Reservation }).reservation)
    const rcpts = Array.from({ length: 8 }, (_, i) => `r${i}@many.example`)
    await recordAttempt(r.client, { at: Date.now(), tenant: slug, tx: 'm1', ip: '192.0.2.1', domain: 'many.example', mx: 'mx', result: 'bounced', code: '550', response: '550 no such user', size: 1234, rcpts: 8, recipients: rcpts }, DEFAULT_LEDGER)
    await suppress(r.client, slug, 'gone@many.example')
  })
  after(async () => {
    await panel?.close()
    await r?.close()
  })

  async function loggedIn(lang: 'en' | 'it'): Promise<PanelClient> {
    const c = new PanelClient(panel.url)
    await c.get(`/login?lang=${lang}`)
    assert.equal((await c.submit('/login', '/login', { login: creds.login, password: creds.password })).status, 303)
    return c
  }

  for (const [lang, other] of [['it', 'en'], ['en', 'it']] as const) {
    it(`shows every page in ${lang === 'it' ? 'Italian' : 'English'} with no ${other === 'en' ? 'English' : 'Italian'} text of the panel`, async () => {
      const foreign = fixedPieces(other)
      assert.ok(foreign.length > 40, `enough texts to check (${foreign.length})`)
      const c = await loggedIn(lang)
      const anon = new PanelClient(panel.url)
      const pages = [
        ['/login', await anon.get(`/login?lang=${lang}`)],
        ['/', await c.get('/')], ['/messages', await c.get('/messages')], ['/settings', await c.get('/settings')], ['/password', await c.get('/password')], ['/domains', await c.get('/domains')],
        ['/nowhere', await c.get('/nowhere')],
      ] as const
      for (const [path, res] of pages) {
        const html = await res.text()
        assert.match(html, new RegExp(`<html lang="${lang}">`), path)
        const text = visibleText(html)
        for (const piece of foreign) assert.ok(!text.includes(piece), `${path} in ${lang} shows "${piece}"`)
      }
    })
  }

  it('lists at most five recipients of an attempt on the page, and says how many more', async () => {
    const c = await loggedIn('en')
    const html = await (await c.get('/messages')).text()
    assert.match(html, /r4@many\.example/)
    assert.doesNotMatch(html, /r5@many\.example/)
    assert.match(html, /and 3 more/)
    assert.match(html, /550 no such user/)
    assert.match(html, /gone@many\.example/)
  })

  it('draws one bar for each day with traffic, scaled to the biggest day, with its figures in a title', async () => {
    const c = await loggedIn('en')
    const html = await (await c.get('/')).text()
    const bars = [...html.matchAll(/<rect class="day"[^>]*data-day="([^"]+)" data-bytes="(\d+)"/g)].map((m) => [m[1], Number(m[2])])
    assert.deepEqual(bars, [[dayOf(new Date(), 'Europe/Rome'), 1234]])
    assert.match(html, /<title>\d+ \w+ \d{4}: 1.23 KB, 1 messages<\/title>/)
    assert.match(html, /data-max-bytes="1234"/)
  })

  it('refuses a form bigger than 16 KB with 413 before reading it', async () => {
    const c = new PanelClient(panel.url)
    await c.get('/login')
    const res = await c.post('/login', { login: creds.login, password: 'x'.repeat(20000) })
    assert.equal(res.status, 413)
  })

  describe('lib/sessions.ts', () => {
    it('keeps tenant and operator sessions apart and ends each subject\'s only', async () => {
      const t1 = await createSession(r.client, { kind: 'tenant', tenant: 'acme', login: `mail@acme.${DOMAIN}` }, 60)
      const t2 = await createSession(r.client, { kind: 'tenant', tenant: 'acme', login: `news@acme.${DOMAIN}` }, 60)
      const other = await createSession(r.client, { kind: 'tenant', tenant: 'acme2', login: `mail@acme2.${DOMAIN}` }, 60)
      const op = await createSession(r.client, { kind: 'operator', operator: 'acme' }, 60)
      assert.notEqual(t1.csrf, t2.csrf)
      assert.deepEqual((await getSession(r.client, t1.id))?.subject, { kind: 'tenant', tenant: 'acme', login: `mail@acme.${DOMAIN}` })
      assert.equal(await endSessionsOf(r.client, { kind: 'tenant', tenant: 'acme' }), 2)
      assert.equal(await getSession(r.client, t1.id), null)
      assert.equal(await getSession(r.client, t2.id), null)
      assert.ok(await getSession(r.client, other.id), 'another tenant keeps its session')
      assert.ok(await getSession(r.client, op.id), 'an operator named like the tenant keeps its session')
      assert.equal(await endSessionsOf(r.client, { kind: 'operator', operator: 'acme' }), 1)
      assert.equal(await getSession(r.client, op.id), null)
      assert.equal(await endSessionsOf(r.client, { kind: 'operator', operator: 'nobody' }), 0)
    })

    it('stores no cookie value, expires with its key, and ignores values it did not make', async () => {
      const s = await createSession(r.client, { kind: 'operator', operator: 'ttl' }, 30)
      const stored = await scanKeys(r.client, keys.session('*'))
      assert.ok(stored.length > 0, 'session keys are found by their pattern')
      assert.ok(stored.every((k) => !k.includes(s.id)))
      assert.ok(stored.some((k) => (k as string).endsWith(crypto.createHash('sha256').update(s.id).digest('hex'))))
      const ttl = await r.client.ttl(keys.sessionsOf('operator:ttl'))
      assert.ok(ttl > 0 && ttl <= 30)
      for (const bad of [undefined, '', 'short', `${s.id}x`, s.id.slice(1) + '!', '../../etc']) assert.equal(await getSession(r.client, bad), null, String(bad))
      await endSession(r.client, s.id)
      await endSession(r.client, s.id)
      assert.equal(await getSession(r.client, s.id), null)
      assert.equal(await r.client.scard(keys.sessionsOf('operator:ttl')), 0)
    })

    it('prunes a subject\'s index of expired sessions past 50', async () => {
      // one long session keeps the index alive (its TTL is the longest session's), then 51 that expire at once
      const kept = await createSession(r.client, { kind: 'operator', operator: 'many' }, 60)
      for (let i = 0; i < 51; i++) await createSession(r.client, { kind: 'operator', operator: 'many' }, 1)
      assert.equal(await r.client.scard(keys.sessionsOf('operator:many')), 52)
      await new Promise((res) => setTimeout(res, 1500))
      const last = await createSession(r.client, { kind: 'operator', operator: 'many' }, 60)
      assert.equal(await r.client.scard(keys.sessionsOf('operator:many')), 2)
      assert.ok(await getSession(r.client, kept.id))
      assert.ok(await getSession(r.client, last.id))
    })
  })
})
