// The customer's pages. Each shows only the tenant of the session (requireTenant sets c.get('tenant')): no path
// or query parameter names a tenant.
//
//   GET  /login, POST /login   the SMTP login and password (lib/login.ts: the same check and throttling as SMTP AUTH)
//   POST /logout
//   GET  /                     dashboard: this month's traffic, results, daily chart, notices at 80/90/100 %
//   GET  /messages?status=     recent delivery attempts, suppressed recipients
//   GET  /domains              the sender domains and their DNS records, checked on demand (web/domains.tsx)
//   GET  /settings             what to type into a mail client
//   GET  /password, POST /password
import type { Context } from 'hono'
import { Hono } from 'hono'
import { raw } from 'hono/html'
import type { HtmlEscapedString } from 'hono/utils/html'
import type { Language } from '../lib/language'
import { judgeLogin, normalLogin } from '../lib/login'
import { generatePassword, passwordProblem, type PasswordProblem } from '../lib/password'
import { parseLogin, setPassword, smtpHost } from '../lib/tenants'
import { clientIp, endCurrentSession, requireTenant, startSession } from './auth'
import { DailyChart, UsageBar } from './chart'
import { domainsPage } from './domains'
import type { PanelConfig, PanelEnv } from './context'
import { PageError } from './errors'
import { formatBytes, formatDate, formatDateTime, formatMonth, formatNumber, formatPercent, t, type MessageKey } from './i18n'
import { CsrfField, Layout, Notice } from './layout'
import { attemptsReport, STATUSES, suppressionsReport, usageReport, MESSAGES_MAX, type FullUsageReport } from './reports'

type C = Context<PanelEnv>
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function createCustomerApp(cfg: PanelConfig) {
  const app = new Hono<PanelEnv>()
  const tenant = requireTenant(cfg)

  app.get('/login', (c) => loginPage(c, cfg))
  app.post('/login', (c) => login(c, cfg))
  app.post('/logout', async (c) => {
    await endCurrentSession(c, cfg)
    return c.redirect('/login?m=out', 303)
  })
  app.get('/', tenant, (c) => dashboard(c, cfg))
  app.get('/messages', tenant, (c) => messages(c, cfg))
  app.get('/domains', tenant, (c) => domainsPage(c, cfg))
  app.get('/settings', tenant, (c) => settingsPage(c, cfg))
  app.get('/password', tenant, (c) => passwordPage(c, {}))
  app.post('/password', tenant, (c) => changePassword(c, cfg))
  return app
}

// ---- login ----

/** "try again in 40 seconds", or in minutes (rounded up) past two minutes. */
function lockedText(lang: Language, seconds: number): string {
  return seconds > 120 ? t(lang, 'login.locked_minutes', { minutes: formatNumber(lang, Math.ceil(seconds / 60)) }) : t(lang, 'login.locked', { seconds: String(seconds) })
}

const LOGIN_MESSAGES: Record<string, MessageKey> = { out: 'logout.done', suspended: 'login.suspended', closed: 'login.closed', expired: 'session.expired' }

function loginPage(c: C, cfg: PanelConfig, state: { login?: string; error?: string } = {}, status: 200 | 400 | 401 | 403 | 429 = 200) {
  const lang = c.get('lang')
  if (status === 200 && c.get('session')?.subject.kind === 'tenant') return c.redirect('/', 303)
  const m = c.req.query('m')
  const info = m && LOGIN_MESSAGES[m]
  return c.html(
    <Layout c={c} title={t(lang, 'login.title')}>
      {state.error ? <Notice kind="error">{state.error}</Notice> : info && <Notice kind={m === 'out' ? 'ok' : 'warn'}>{t(lang, info)}</Notice>}
      <p>{t(lang, 'login.intro')}</p>
      <form method="post" action="/login" class="stack card">
        <CsrfField c={c} />
        <label>
          {t(lang, 'login.login')}
          <input type="text" name="login" value={state.login ?? ''} autocomplete="username" required placeholder={t(lang, 'login.login_hint', { domain: cfg.settings.serviceDomain })} />
        </label>
        <label>
          {t(lang, 'login.password')}
          <input type="password" name="password" autocomplete="current-password" required />
        </label>
        <button type="submit">{t(lang, 'login.submit')}</button>
      </form>
    </Layout>,
    status,
  )
}

async function login(c: C, cfg: PanelConfig) {
  const lang = c.get('lang')
  const body = await c.req.parseBody()
  const rawLogin = typeof body.login === 'string' ? body.login.trim() : ''
  const password = typeof body.password === 'string' ? body.password : ''
  if (!rawLogin || !password || rawLogin.length > 320 || password.length > 256) {
    return loginPage(c, cfg, { login: rawLogin.slice(0, 320), error: t(lang, 'login.missing') }, 400)
  }
  const user = normalLogin(rawLogin)
  const v = await judgeLogin(cfg.redis, cfg.login, clientIp(c), user, password)
  switch (v.kind) {
    case 'locked':
      c.header('Retry-After', String(v.retryAfter))
      return loginPage(c, cfg, { login: rawLogin, error: lockedText(lang, v.retryAfter) }, 429)
    case 'busy':
      c.header('Retry-After', '5')
      return loginPage(c, cfg, { login: rawLogin, error: t(lang, 'login.busy') }, 429)
    case 'bad':
      await sleep(cfg.failureDelayMs)
      return loginPage(c, cfg, { login: rawLogin, error: t(lang, 'login.bad') }, 401)
    case 'ok':
      // the password was checked before the status, so a guesser does not learn it
      if (v.status !== 'active') return loginPage(c, cfg, { login: rawLogin, error: t(lang, v.status === 'closed' ? 'login.closed' : 'login.suspended') }, 403)
      await startSession(c, cfg, { kind: 'tenant', tenant: v.slug, login: user })
      return c.redirect('/', 303)
  }
}

// ---- dashboard ----

async function dashboard(c: C, cfg: PanelConfig) {
  const lang = c.get('lang')
  const u = await usageReport(cfg, c.get('tenant'))
  return c.html(
    <Layout c={c} title={t(lang, 'dash.title')} active="/">
      {await dashboardFigures(u, lang, cfg.settings.timeZone)}
    </Layout>,
  )
}

/**
 * The dashboard's figures and chart, rendered once per usage report and language: they depend on nothing else (the
 * frame around them has the session's login and CSRF token). usageReport hands out the same report object while
 * its cache entry is fresh, so the dashboards of that second reuse this HTML; a new report renders anew.
 */
const rendered = new WeakMap<FullUsageReport, Partial<Record<Language, HtmlEscapedString>>>()

async function dashboardFigures(u: FullUsageReport, lang: Language, tz: string): Promise<HtmlEscapedString> {
  let byLang = rendered.get(u)
  if (!byLang) rendered.set(u, (byLang = {}))
  const done = byLang[lang]
  if (done) return done
  const html = raw(await (<DashboardFigures u={u} lang={lang} tz={tz} />).toString())
  byLang[lang] = html
  return html
}

function DashboardFigures({ u, lang, tz }: { u: FullUsageReport; lang: Language; tz: string }) {
  const resets = formatDate(lang, new Date(u.resets_at), tz)
  const pct = formatPercent(lang, u.percent)
  const notice =
    u.limit_bytes > 0 && u.used_bytes >= u.limit_bytes ? <Notice kind="error">{t(lang, 'dash.notice_100', { date: resets })}</Notice>
      : u.percent >= 90 ? <Notice kind="warn">{t(lang, 'dash.notice_90', { percent: pct })}</Notice>
        : u.percent >= 80 ? <Notice kind="warn">{t(lang, 'dash.notice_80', { percent: pct })}</Notice>
          : null
  const fig = (label: MessageKey, value: string, id: string) => (
    <div class="figure" id={id}>
      <div class="label">{t(lang, label)}</div>
      <div class="value" data-testid={id}>{value}</div>
    </div>
  )
  return (
    <>
      {notice}
      <section class="card">
        <h2 id="month" data-month={u.month}>{t(lang, 'dash.month', { month: formatMonth(lang, u.month) })}</h2>
        <div class="figures">
          {fig('dash.used', `${formatBytes(lang, u.used_bytes)} (${pct})`, 'used')}
          {fig('dash.remaining', formatBytes(lang, u.remaining_bytes), 'remaining')}
          {fig('dash.allowance', formatBytes(lang, u.limit_bytes), 'allowance')}
        </div>
        <UsageBar percent={u.percent} label={`${t(lang, 'dash.used')}: ${pct}`} />
        <p class="muted">
          {u.topup_bytes > 0
            ? t(lang, 'dash.allowance_detail', { package: u.package, bytes: formatBytes(lang, u.package_bytes), topup: formatBytes(lang, u.topup_bytes) })
            : t(lang, 'dash.allowance_package', { package: u.package })}
          {' · '}
          <span id="resets">{t(lang, 'dash.resets', { date: resets })}</span>
        </p>
      </section>
      <div class="figures">
        {fig('dash.messages', formatNumber(lang, u.messages), 'messages')}
        {fig('dash.recipients', formatNumber(lang, u.recipients), 'recipients')}
        {fig('dash.delivered', formatNumber(lang, u.delivered), 'delivered')}
        {fig('dash.deferred', formatNumber(lang, u.deferred), 'deferred')}
        {fig('dash.bounced', formatNumber(lang, u.bounced), 'bounced')}
      </div>
      <section class="card">
        <h2>{t(lang, 'dash.chart')}</h2>
        {u.used_bytes === 0 && u.days.every((d) => d.bytes === 0) && <p class="muted">{t(lang, 'dash.chart_empty')}</p>}
        <DailyChart lang={lang} month={u.month} days={u.days} timeZone={tz} />
      </section>
    </>
  )
}

// ---- messages ----

/** Recipients listed per attempt on the page (the API gives them all). */
const SHOWN_RECIPIENTS = 5

async function messages(c: C, cfg: PanelConfig) {
  const lang = c.get('lang')
  const tz = cfg.settings.timeZone
  const raw = c.req.query('status') ?? ''
  const status = STATUSES.find((s) => s === raw) ?? null
  const bad = raw !== '' && !status
  const slug = c.get('tenant')
  const [attempts, suppressed] = await Promise.all([attemptsReport(cfg, slug, status, MESSAGES_MAX), suppressionsReport(cfg, slug)])
  const statusText = (s: string) => t(lang, `msg.status_${s}` as MessageKey)
  return c.html(
    <Layout c={c} title={t(lang, 'msg.title')} active="/messages">
      {bad && <Notice kind="error">{t(lang, 'msg.bad_status', { status: raw })}</Notice>}
      <h2>{t(lang, 'msg.recent')}</h2>
      <form method="get" action="/messages" class="filters">
        <label>
          {t(lang, 'msg.filter')}{' '}
          <select name="status">
            <option value="" selected={!status}>{t(lang, 'msg.filter_all')}</option>
            {STATUSES.map((s) => <option value={s} selected={s === status}>{statusText(s)}</option>)}
          </select>
        </label>
        <button type="submit">{t(lang, 'msg.filter_apply')}</button>
      </form>
      {attempts.length === 0 ? (
        <p class="muted">{t(lang, 'msg.none')}</p>
      ) : (
        <table id="attempts">
          <thead><tr><th>{t(lang, 'msg.time')}</th><th>{t(lang, 'msg.recipient')}</th><th>{t(lang, 'msg.status')}</th><th>{t(lang, 'msg.reply')}</th></tr></thead>
          <tbody>
            {attempts.map((a) => (
              <tr data-status={a.status}>
                <td>{formatDateTime(lang, new Date(a.at), tz)}</td>
                <td>
                  {a.recipients.length ? a.recipients.slice(0, SHOWN_RECIPIENTS).join(', ') : `@${a.domain}`}
                  {a.recipients.length > SHOWN_RECIPIENTS && <span class="muted">{` ${t(lang, 'msg.more', { count: formatNumber(lang, a.recipients.length - SHOWN_RECIPIENTS) })}`}</span>}
                  {a.kind !== 'message' && <div class="muted">{t(lang, a.kind === 'dsn' ? 'msg.kind_dsn' : 'msg.kind_notice')}</div>}
                </td>
                <td class={`status-${a.status}`}>{statusText(a.status)}</td>
                <td class="reply">{a.response ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>{t(lang, 'msg.suppressed')}</h2>
      <p class="muted">{t(lang, 'msg.suppressed_intro')}</p>
      {suppressed.length === 0 ? (
        <p class="muted">{t(lang, 'msg.suppressed_none')}</p>
      ) : (
        <table id="suppressed">
          <thead><tr><th>{t(lang, 'msg.address')}</th><th>{t(lang, 'msg.until')}</th></tr></thead>
          <tbody>
            {suppressed.map((s) => <tr><td>{s.address}</td><td>{formatDate(lang, new Date(s.expires_at), tz)}</td></tr>)}
          </tbody>
        </table>
      )}
    </Layout>,
    bad ? 400 : 200,
  )
}

// ---- settings ----

function settingsPage(c: C, cfg: PanelConfig) {
  const lang = c.get('lang')
  const s = cfg.settings
  return c.html(
    <Layout c={c} title={t(lang, 'set.title')} active="/settings">
      <p>{t(lang, 'set.intro')}</p>
      <section class="card">
        <dl class="settings" id="connection">
          <dt>{t(lang, 'set.host')}</dt>
          <dd><code>{smtpHost(c.get('tenant'), s)}</code></dd>
          <dt>{t(lang, 'set.ports')}</dt>
          <dd>
            {t(lang, 'set.port_submission', { port: String(s.submissionPort) })}
            <br />
            {t(lang, 'set.port_smtps', { port: String(s.smtpsPort) })}
            <div class="muted">{t(lang, 'set.ports_choice', { port: String(s.submissionPort) })}</div>
          </dd>
          <dt>{t(lang, 'set.auth')}</dt>
          <dd>{t(lang, 'set.auth_value')}</dd>
          <dt>{t(lang, 'set.user')}</dt>
          <dd><code>{c.get('login')}</code></dd>
          <dt>{t(lang, 'set.password')}</dt>
          <dd>{t(lang, 'set.password_value')}</dd>
          <dt>{t(lang, 'set.api')}</dt>
          <dd>{t(lang, 'set.api_value')}</dd>
        </dl>
      </section>
    </Layout>,
  )
}

// ---- password ----

const PROBLEM_KEY: Record<PasswordProblem, MessageKey> = {
  'too short': 'pw.too_short', 'too long': 'pw.too_long', 'too simple': 'pw.too_simple', 'has login': 'pw.has_login',
}

function passwordPage(c: C, state: { errors?: string[]; done?: boolean; generated?: string }, status: 200 | 400 | 401 | 429 = 200) {
  const lang = c.get('lang')
  return c.html(
    <Layout c={c} title={t(lang, 'pw.title')} active="/password">
      {state.errors?.map((e) => <Notice kind="error">{e}</Notice>)}
      {state.done && <Notice kind="ok">{t(lang, 'pw.done')}</Notice>}
      {state.generated && (
        <p class="card">
          {t(lang, 'pw.generated')} <span class="secret" id="generated">{state.generated}</span>
        </p>
      )}
      {!state.done && (
        <form method="post" action="/password" class="stack card">
          <CsrfField c={c} />
          <label>
            {t(lang, 'pw.current')}
            <input type="password" name="current" autocomplete="current-password" required />
          </label>
          <fieldset>
            <legend>{t(lang, 'pw.mode')}</legend>
            <label><input type="radio" name="mode" value="generate" checked /> {t(lang, 'pw.generate')}</label>
            <label><input type="radio" name="mode" value="choose" /> {t(lang, 'pw.choose')}</label>
          </fieldset>
          <label>
            {t(lang, 'pw.new')}
            <input type="password" name="new" autocomplete="new-password" />
          </label>
          <label>
            {t(lang, 'pw.confirm')}
            <input type="password" name="confirm" autocomplete="new-password" />
          </label>
          <p class="muted">{t(lang, 'pw.rules')}</p>
          <button type="submit">{t(lang, 'pw.submit')}</button>
        </form>
      )}
    </Layout>,
    status,
  )
}

async function changePassword(c: C, cfg: PanelConfig) {
  const lang = c.get('lang')
  const body = await c.req.parseBody()
  const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '')
  const current = str('current')
  const mode = str('mode')
  const errors: string[] = []
  if (!current) errors.push(t(lang, 'pw.current_missing'))
  if (mode !== 'generate' && mode !== 'choose') errors.push(t(lang, 'pw.mode_bad'))
  const login = c.get('login')
  const parts = parseLogin(login, cfg.settings.serviceDomain)!
  let chosen = ''
  if (mode === 'choose') {
    chosen = str('new')
    const problem = passwordProblem(chosen, [parts.local, parts.slug])
    if (problem) errors.push(t(lang, PROBLEM_KEY[problem]))
    else if (chosen !== str('confirm')) errors.push(t(lang, 'pw.mismatch'))
    else if (chosen === current) errors.push(t(lang, 'pw.same'))
  }
  if (errors.length) return passwordPage(c, { errors }, 400)
  // the current password is checked like a login: a stolen session cannot guess it without being throttled
  const v = await judgeLogin(cfg.redis, cfg.login, clientIp(c), login, current)
  if (v.kind === 'locked' || v.kind === 'busy') {
    const seconds = v.kind === 'locked' ? v.retryAfter : 5
    c.header('Retry-After', String(seconds))
    return passwordPage(c, { errors: [v.kind === 'locked' ? lockedText(lang, seconds) : t(lang, 'login.busy')] }, 429)
  }
  if (v.kind !== 'ok' || v.slug !== c.get('tenant')) {
    await sleep(cfg.failureDelayMs)
    return passwordPage(c, { errors: [t(lang, 'pw.current_wrong')] }, 401)
  }
  if (v.status !== 'active') throw new PageError(403, 'err.forbidden')
  const password = mode === 'generate' ? generatePassword() : chosen
  await setPassword(cfg.redis, parts.slug, parts.local, password)
  // every session of the tenant ended with the change; this browser gets a new one
  await startSession(c, cfg, { kind: 'tenant', tenant: parts.slug, login })
  c.header('Cache-Control', 'no-store')
  return passwordPage(c, { done: true, generated: mode === 'generate' ? password : undefined })
}

