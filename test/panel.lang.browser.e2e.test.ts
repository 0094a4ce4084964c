// The language switch and the month heading in a real browser (Debian's Chromium via testkit/browser.ts), on a
// private Redis and the panel app on a free loopback port: after a refused form (a wrong password, a bad top-up on
// the operator's POST-only path) the "Italiano" link opens the form's page in Italian (200, not 404); the
// dashboard heads the month by its name in the page's language.
import { strict as assert } from 'node:assert'
import type { Page, Response } from 'playwright-core'
import { createOperator } from '../lib/operators'
import { setPackage } from '../lib/packages'
import { DEFAULT_QUOTA, usage } from '../lib/quota'
import { loadSettings } from '../lib/settings'
import { createTenant, type Credentials } from '../lib/tenants'
import { launchBrowser, type TestBrowser } from '../testkit/browser'
import { startPanel, type TestPanel } from '../testkit/panel'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { formatMonth } from '../web/i18n'

describe('panel language switch and month heading in a real browser', function () {
  this.timeout(120000)
  let r: TestRedis
  let panel: TestPanel
  let browser: TestBrowser
  let creds: Credentials
  let opPassword: string
  let month: string

  before(async () => {
    r = await testRedis()
    const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example', REDIS_URL: r.url, POSTA_LANGUAGE: 'en' })
    const pkg = uniqueName('pkg')
    await setPackage(r.client, pkg, 1e9)
    const slug = uniqueName('t').replace(/[^a-z0-9-]/g, '').slice(0, 30)
    creds = await createTenant(r.client, settings, { slug, package: pkg, contact: `${slug}@example.net` })
    month = (await usage(r.client, { ...DEFAULT_QUOTA, timeZone: settings.timeZone }, slug)).month
    opPassword = (await createOperator(r.client, 'rita')).password
    panel = await startPanel(r.url, settings, { failureDelayMs: 0 })
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    await panel?.close()
    await r?.close()
  })

  /** Clicks and returns the response of the page it opens. */
  async function follow(page: Page, selector: string): Promise<Response> {
    const [res] = await Promise.all([page.waitForNavigation(), page.click(selector)])
    assert.ok(res, `a page opened by ${selector}`)
    return res
  }

  it('after a wrong password, Italiano opens the login page in Italian; the dashboard names the month', async () => {
    const { page, context } = await browser.newPage()
    await page.goto(`${panel.url}/login`)
    await page.fill('input[name="login"]', creds.login)
    await page.fill('input[name="password"]', 'wrong password')
    const refused = await follow(page, 'form[action="/login"] button[type="submit"]')
    assert.equal(refused.status(), 401)
    const it = await follow(page, 'a[hreflang="it"]')
    assert.equal(it.status(), 200)
    assert.equal(new URL(page.url()).pathname, '/login')
    assert.equal(await page.getAttribute('html', 'lang'), 'it')

    await page.fill('input[name="login"]', creds.login)
    await page.fill('input[name="password"]', creds.password)
    await follow(page, 'form[action="/login"] button[type="submit"]')
    assert.equal(new URL(page.url()).pathname, '/')
    assert.equal(await page.innerText('#month'), `Traffico di questo mese (${formatMonth('it', month)})`)
    await follow(page, 'a[hreflang="en"]')
    assert.equal(await page.innerText('#month'), `Traffic this month (${formatMonth('en', month)})`)
    assert.ok(!(await page.innerText('#month')).includes(month))
    await context.close()
  })

  it('after a refused top-up (a POST-only path), Italiano opens the tenant\'s page, not a 404', async () => {
    const { page, context } = await browser.newPage()
    await page.goto(`${panel.url}/admin/login`)
    await page.fill('input[name="name"]', 'rita')
    await page.fill('input[name="password"]', opPassword)
    await follow(page, 'form[action="/admin/login"] button[type="submit"]')
    await page.goto(`${panel.url}/admin/tenants/${creds.tenant}`)
    await page.fill('form[action$="/topup"] input[name="traffic"]', 'lots')
    const refused = await follow(page, 'form[action$="/topup"] button[type="submit"]')
    assert.equal(refused.status(), 400)
    assert.equal(new URL(page.url()).pathname, `/admin/tenants/${creds.tenant}/topup`)
    const it = await follow(page, 'a[hreflang="it"]')
    assert.equal(it.status(), 200)
    assert.equal(new URL(page.url()).pathname, `/admin/tenants/${creds.tenant}`)
    assert.equal(await page.getAttribute('html', 'lang'), 'it')
    assert.ok((await page.innerText('#month')).includes(formatMonth('it', month)))
    await context.close()
  })
})
