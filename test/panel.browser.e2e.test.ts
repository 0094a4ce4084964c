// The customer panel in a real browser (Debian's Chromium via testkit/browser.ts), on a real stack: a private Redis,
// a real Haraka with Posta's plugins and a real SMTP sink, the panel app on a free loopback port; a package and a
// tenant made with the CLI, mail relayed with nodemailer. The figures the dashboard shows are compared with
// `posta usage --json`.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import type { Page } from 'playwright-core'
import { formatSize } from '../lib/size'
import { loadSettings } from '../lib/settings'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { artifactPath, launchBrowser, type TestBrowser } from '../testkit/browser'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { startPanel, type TestPanel } from '../testkit/panel'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'

/** lib/size.ts formatSize in a language: the same rounding, the language's decimal separator. */
function sizeIn(lang: 'en' | 'it', bytes: number): string {
  const s = formatSize(bytes)
  return lang === 'it' ? s.replace('.', ',') : s
}

describe('customer panel in a real browser', function () {
  this.timeout(240000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let browser: TestBrowser
  let panel: TestPanel
  let base: string
  let env: Record<string, string>
  let tenant: { tenant: string; login: string; password: string }
  let usage: any
  const domain = `${uniqueName('dest')}.test`
  const MESSAGES = 4
  const RECIPIENTS = 2

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({ redisUrl: redis.url })
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-panel-'))
    const settings = loadSettings({ ...process.env, ...env, POSTA_DATA_DIR: dataDir, POSTA_LISTEN: '127.0.0.1' })
    panel = await startPanel(redis.url, settings)
    base = panel.url

    const pkg = uniqueName('pkg')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', '1.5GB'], env)).code, 0)
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', `owner@${domain}`, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    tenant = r.json()
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)

    // relay some mail through SMTP (submission port, STARTTLS, AUTH) and wait until every copy is delivered
    const transport = nodemailer.createTransport({
      host: '127.0.0.1', port: haraka.submissionPort, secure: false, requireTLS: true,
      auth: { user: tenant.login, pass: tenant.password }, tls: { rejectUnauthorized: false },
    })
    try {
      for (let i = 0; i < MESSAGES; i++) {
        await transport.sendMail({
          from: `news@${domain}`, to: Array.from({ length: RECIPIENTS }, (_, k) => `r${i}-${k}@${domain}`),
          subject: `Panel test ${i}`, text: `Message ${i}.\n${'x'.repeat(1000 * (i + 1))}\n`,
        })
      }
    } finally {
      transport.close()
    }
    await sink.waitFor(MESSAGES, 60000)
    // the ledger counts a delivery right after the sink's 250: wait for `posta usage` to show all of them
    for (const deadline = Date.now() + 30000; ; ) {
      const u = await posta(['usage', tenant.tenant, '--json'], env)
      assert.equal(u.code, 0, u.stderr)
      usage = u.json()
      if (usage.delivered === MESSAGES * RECIPIENTS) break
      assert.ok(Date.now() < deadline, `usage shows ${usage.delivered} delivered, expected ${MESSAGES * RECIPIENTS}`)
      await new Promise((res) => setTimeout(res, 200))
    }
    assert.equal(usage.messages, MESSAGES)
    assert.ok(usage.used_bytes > MESSAGES * RECIPIENTS * 1000)

    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close()
    await panel?.close()
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  async function logIn(page: Page, login: string, password: string) {
    await page.goto(`${base}/login`)
    await page.fill('input[name="login"]', login)
    await page.fill('input[name="password"]', password)
    await Promise.all([page.waitForLoadState('load'), page.click('form[action="/login"] button[type="submit"]')])
  }

  it('sends a visitor without a session to /login', async () => {
    const { page, context } = await browser.newPage()
    await page.goto(`${base}/`)
    assert.equal(new URL(page.url()).pathname, '/login')
    await context.close()
  })

  it('refuses a wrong password with a message and no session', async () => {
    const { page, context } = await browser.newPage()
    await logIn(page, tenant.login, `${tenant.password}x`)
    assert.equal(new URL(page.url()).pathname, '/login')
    assert.match(await page.innerText('body'), /Wrong login or password/)
    assert.equal((await context.cookies()).some((c) => c.name === 'posta_session'), false)
    await context.close()
  })

  /** The text of a dashboard figure (web/customer.tsx: data-testid used, remaining, allowance, messages, ...). */
  const figure = (page: Page, id: string) => page.innerText(`[data-testid="${id}"]`)

  it('logs in and shows the traffic relayed, the chart, Italian, a new password and logout', async () => {
    const { page, context } = await browser.newPage()
    await logIn(page, tenant.login, tenant.password)
    assert.equal(new URL(page.url()).pathname, '/')

    // used, remaining and the allowance as `posta usage --json` counts them, in English units
    assert.ok((await figure(page, 'used')).startsWith(`${sizeIn('en', usage.used_bytes)} `), await figure(page, 'used'))
    assert.equal(await figure(page, 'remaining'), sizeIn('en', usage.remaining_bytes))
    assert.equal(await figure(page, 'allowance'), '1.5 GB')
    assert.equal(await figure(page, 'messages'), String(MESSAGES))
    assert.equal(await figure(page, 'recipients'), String(MESSAGES * RECIPIENTS))
    assert.equal(await figure(page, 'delivered'), String(MESSAGES * RECIPIENTS))
    assert.equal(await figure(page, 'bounced'), '0')

    // the chart: an SVG with one bar per day that had traffic, each with that day's bytes
    const traffic = usage.days.filter((d: { bytes: number }) => d.bytes > 0)
    const bars = page.locator('svg.chart rect[data-day]')
    assert.equal(await bars.count(), traffic.length)
    assert.ok(traffic.length >= 1)
    for (const d of traffic) assert.equal(await page.getAttribute(`svg.chart rect[data-day="${d.day}"]`, 'data-bytes'), String(d.bytes))
    assert.equal(await bars.first().isVisible(), true)
    await page.screenshot({ path: artifactPath('dashboard-en.png'), fullPage: true })
    // `POSTA_DOCS_SCREENSHOT=1 npx mocha test/panel.browser.e2e.test.ts` refreshes the README's picture
    if (process.env.POSTA_DOCS_SCREENSHOT === '1') await page.screenshot({ path: path.join(PROJECT_ROOT, 'docs', 'img', 'dashboard.png'), fullPage: true })

    // Italian: texts, the decimal comma, the reset date with the Italian month name
    await page.goto(`${base}/?lang=it`)
    assert.equal(await page.getAttribute('html', 'lang'), 'it')
    const it = await page.innerText('main, body')
    for (const word of ['Riepilogo', 'Usato', 'Disponibile', 'Esci']) assert.ok(it.includes(word), `"${word}" on the Italian dashboard:\n${it}`)
    assert.equal(await figure(page, 'allowance'), '1,5 GB')
    assert.ok((await figure(page, 'used')).startsWith(`${sizeIn('it', usage.used_bytes)} `), await figure(page, 'used'))
    assert.equal(await figure(page, 'remaining'), sizeIn('it', usage.remaining_bytes))
    const resetsAt = new Date(usage.resets_at)
    const longDate = new Intl.DateTimeFormat('it-IT', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'Europe/Rome' }).format(resetsAt)
    assert.ok((await page.innerText('#resets')).includes(longDate), `the reset date reads ${longDate}: ${await page.innerText('#resets')}`)
    await page.screenshot({ path: artifactPath('dashboard-it.png'), fullPage: true })
    // remembered without ?lang, and switched back
    await page.goto(`${base}/`)
    assert.equal(await page.getAttribute('html', 'lang'), 'it')
    await page.goto(`${base}/?lang=en`)
    assert.equal(await page.getAttribute('html', 'lang'), 'en')

    // another browser logged in before the change: its session ends with the change
    const other = await browser.newPage()
    await logIn(other.page, tenant.login, tenant.password)
    assert.equal(new URL(other.page.url()).pathname, '/')

    // change the password to one of the customer's choosing
    const fresh = `Nuova-${uniqueName('pw')}-Parola9!`
    await page.goto(`${base}/password`)
    await page.fill('input[name="current"]', tenant.password)
    await page.check('input[name="mode"][value="choose"]')
    await page.fill('input[name="new"]', fresh)
    await page.fill('input[name="confirm"]', fresh)
    await Promise.all([page.waitForLoadState('load'), page.click('form[action="/password"] button[type="submit"]')])
    assert.match(await page.innerText('body'), /Your password is changed/)
    await other.page.goto(`${base}/`)
    assert.equal(new URL(other.page.url()).pathname, '/login', 'the other session ended')
    await other.context.close()

    // the SMTP side takes the new password and refuses the old one
    const smtp = (pass: string) => nodemailer.createTransport({
      host: '127.0.0.1', port: haraka.submissionPort, secure: false, requireTLS: true, auth: { user: tenant.login, pass }, tls: { rejectUnauthorized: false },
    })
    const ok = smtp(fresh)
    try {
      assert.equal(await ok.verify(), true)
    } finally {
      ok.close()
    }
    const old = smtp(tenant.password)
    try {
      await assert.rejects(old.verify(), /535|auth/i)
    } finally {
      old.close()
    }

    // log out: the dashboard then sends to /login
    await Promise.all([page.waitForLoadState('load'), page.click('form[action="/logout"] button[type="submit"]')])
    await page.goto(`${base}/`)
    assert.equal(new URL(page.url()).pathname, '/login')
    assert.equal((await context.cookies()).some((c) => c.name === 'posta_session'), false)

    // the old password no longer logs in; the new one does
    await logIn(page, tenant.login, tenant.password)
    assert.equal(new URL(page.url()).pathname, '/login', 'the old password no longer logs in')
    assert.match(await page.innerText('body'), /Wrong login or password/)
    await logIn(page, tenant.login, fresh)
    assert.equal(new URL(page.url()).pathname, '/')
    await context.close()
  })
})
