// The operator area, mounted by web/app.tsx at /admin (pages) and /api/v1/admin (JSON), for operator accounts
// (lib/operators.ts, `posta operator create`). Tenant sessions and tenant credentials are refused on every route.
//
//   GET  /admin/login, POST /admin/login, POST /admin/logout
//   GET  /admin                          tenants with usage, status, package (?q= slug or contact)
//   GET  /admin/tenants/:slug            one tenant: usage, recent attempts, trap hits, suppressions, bans, actions
//   POST /admin/tenants/:slug/:action    suspend | resume | topup (traffic) | package (package) | ban (reason, confirm)
//   GET  /admin/ips                      the pool: state, slot activity, listings; today's rotation
//   POST /admin/ips/:ip/:action          suspend (reason) | reinstate
//   GET  /admin/investigations, /admin/investigations/:id, /admin/bans, /admin/audit
//   GET  /api/v1/admin/tenants, /api/v1/admin/tenants/:slug, /api/v1/admin/ips
//
// Every POST passed the app's CSRF check (token field + Origin) before it gets here; every action is audited, and so
// is every login through the form (auditLogin).
import { Hono, type Context } from 'hono'
import { audit, listAudit } from '../../lib/audit'
import { InputError } from '../../lib/errors'
import { getInvestigation, listInvestigations } from '../../lib/investigation'
import { checkOperatorName, getOperator, judgeOperator } from '../../lib/operators'
import { normalLogin } from '../../lib/login'
import { apiError } from '../errors'
import { formatBytes } from '../i18n'
import { clientIp, endCurrentSession, operatorApiAuth, requireOperator, startSession } from '../auth'
import type { PanelConfig, PanelEnv } from '../context'
import { IP_ACTIONS, ipAction, ipOfPath, TENANT_ACTIONS, tenantAction, type ActionContext, type Fields, type IpAction, type TenantAction } from './actions'
import { bansNewestFirst, poolRows, TENANT_LIST_MAX, tenantDetail, tenantRows, todaysRotation } from './data'
import { ta, type AdminKey } from './i18n'
import { AuditPage, BansPage, InvestigationPage, InvestigationsPage, LoginPage, PoolPage, TenantPage, TenantsPage, tenantPath, type FormState } from './pages'

type C = Context<PanelEnv>

/** How many audit entries the area shows. */
export const AUDIT_SHOWN = 200

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The string fields of a form body (already parsed and cached by the CSRF check). */
async function formFields(c: C): Promise<Fields> {
  const body = await c.req.parseBody()
  return Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'))
}

const actionContext = (cfg: PanelConfig, c: C): ActionContext => ({ redis: cfg.redis, settings: cfg.settings, quota: cfg.quota, operator: c.get('operator') })

/** The done notice a page shows after the redirect of a successful action (?done=<action>, ?n=<bytes> for a top-up). */
function doneOf(c: C, keys: Record<string, AdminKey>, params: Record<string, string>): FormState | undefined {
  const done = c.req.query('done')
  if (!done || !Object.hasOwn(keys, done)) return undefined
  const n = c.req.query('n')
  return { done: { key: keys[done], params: { ...params, ...(n && /^\d{1,16}$/.test(n) ? { bytes: formatBytes(c.get('lang'), Number(n)) } : {}) } } }
}

const TENANT_DONE: Record<TenantAction, AdminKey> = { suspend: 'done.suspend', resume: 'done.resume', topup: 'done.topup', package: 'done.package', ban: 'done.ban' }
const IP_DONE: Record<IpAction, AdminKey> = { suspend: 'done.ip_suspend', reinstate: 'done.ip_reinstate' }

/**
 * An operator login through the form, in the audit log: `operator login` (a session began) or `operator login failed`
 * (the password was checked and was wrong, or no such operator), with the client's address; never the password.
 * A failed attempt names the operator only when one of that name exists: a name field may hold a mistyped password.
 * Attempts refused by the throttle (429) check nothing and are not written: the log is never trimmed, and the
 * throttle bounds the failures that are (posta-auth.ini limits). Basic credentials on /api/v1/admin authenticate
 * every request and are not written per request.
 */
async function auditLogin(cfg: PanelConfig, name: string, ip: string, ok: boolean): Promise<void> {
  let known = ok
  if (!ok) {
    try {
      known = (await getOperator(cfg.redis, checkOperatorName(name))) !== null
    } catch (err) {
      if (!(err instanceof InputError)) throw err
    }
  }
  const who = known ? name : '(unknown)'
  await audit(cfg.redis, { operator: who, action: ok ? 'operator login' : 'operator login failed', target: who, details: ok ? { ip } : { ip, reason: known ? 'wrong password' : 'no such operator' } })
}

/** /admin/login and /admin/logout: the operator's own login, throttled like SMTP AUTH (lib/operators.ts judgeOperator). */
function loginRoutes(cfg: PanelConfig) {
  const app = new Hono<PanelEnv>()
  app.get('/login', (c) => (c.get('session')?.subject.kind === 'operator' ? c.redirect('/admin', 303) : c.html(<LoginPage c={c} />)))
  app.post('/login', async (c) => {
    const lang = c.get('lang')
    const f = await formFields(c)
    const name = normalLogin(f.name ?? '').trim()
    const password = f.password ?? ''
    const errors: Record<string, AdminKey> = {}
    if (!name) errors.name = 'login.name_missing'
    if (!password) errors.password = 'login.password_missing'
    if (Object.keys(errors).length) return c.html(<LoginPage c={c} errors={errors} name={name} />, 400)
    const ip = clientIp(c)
    const v = await judgeOperator(cfg.redis, cfg.login.limits, ip, name, password)
    if (v.kind === 'bad' || v.kind === 'ok') await auditLogin(cfg, name, ip, v.kind === 'ok')
    if (v.kind === 'locked') {
      c.header('Retry-After', String(v.retryAfter))
      return c.html(<LoginPage c={c} name={name} message={ta(lang, 'login.locked', { seconds: v.retryAfter })} />, 429)
    }
    if (v.kind === 'busy') return c.html(<LoginPage c={c} name={name} message={ta(lang, 'login.busy')} />, 429)
    if (v.kind === 'bad') {
      await sleep(cfg.failureDelayMs)
      return c.html(<LoginPage c={c} name={name} message={ta(lang, 'login.bad')} />, 401)
    }
    await startSession(c, cfg, { kind: 'operator', operator: v.name })
    return c.redirect('/admin', 303)
  })
  app.post('/logout', async (c) => {
    await endCurrentSession(c, cfg)
    return c.redirect('/admin/login', 303)
  })
  return app
}

/** Pages under /admin. */
export function createAdminApp(cfg: PanelConfig) {
  const tz = cfg.settings.timeZone
  const app = new Hono<PanelEnv>()
  app.route('/', loginRoutes(cfg))
  app.use('*', requireOperator(cfg))

  app.get('/', async (c) => {
    const q = (c.req.query('q') ?? '').slice(0, 254)
    const { rows, more } = await tenantRows(cfg.redis, cfg.quota, q)
    return c.html(<TenantsPage c={c} rows={rows} more={more} q={q} max={TENANT_LIST_MAX} />)
  })

  app.get('/tenants/:slug', async (c) => {
    const slug = c.req.param('slug')
    const d = await tenantDetail(cfg.redis, cfg.quota, cfg.settings, slug)
    return c.html(<TenantPage c={c} d={d} tz={tz} state={doneOf(c, TENANT_DONE, { slug, package: d.tenant.package })} />)
  })

  app.post('/tenants/:slug/:action', async (c) => {
    const slug = c.req.param('slug')
    const action = c.req.param('action') as TenantAction
    if (!TENANT_ACTIONS.includes(action)) return c.notFound()
    const fields = await formFields(c)
    const out = await tenantAction(actionContext(cfg, c), slug, action, fields)
    if (out.ok) return c.redirect(`${tenantPath(slug)}?done=${action}${action === 'topup' ? `&n=${out.params.bytes}` : ''}`, 303)
    const d = await tenantDetail(cfg.redis, cfg.quota, cfg.settings, slug)
    return c.html(<TenantPage c={c} d={d} tz={tz} state={{ form: action, errors: out.errors, refused: out.refused, fields }} />, 400)
  })

  app.get('/ips', async (c) => {
    const { rotation, pool } = await poolRows(cfg.redis, tz)
    const state = doneOf(c, IP_DONE, { ip: c.req.query('ip') ?? '' })
    if (state?.done) state.done.params.ip = ipOfPath(state.done.params.ip) ?? ''
    return c.html(<PoolPage c={c} pool={pool} rotation={rotation} schedule={todaysRotation(pool, rotation)} tz={tz} state={state} />)
  })

  app.post('/ips/:ip/:action', async (c) => {
    const ip = ipOfPath(c.req.param('ip'))
    const action = c.req.param('action') as IpAction
    if (!ip || !IP_ACTIONS.includes(action)) return c.notFound()
    const fields = await formFields(c)
    const out = await ipAction(actionContext(cfg, c), ip, action, fields)
    if (out.ok) return c.redirect(`/admin/ips?done=${action}&ip=${encodeURIComponent(ip)}`, 303)
    const { rotation, pool } = await poolRows(cfg.redis, tz)
    return c.html(
      <PoolPage c={c} pool={pool} rotation={rotation} schedule={todaysRotation(pool, rotation)} tz={tz} state={{ form: `${action}:${ip}`, errors: out.errors, refused: out.refused, fields }} />,
      400,
    )
  })

  app.get('/investigations', async (c) => c.html(<InvestigationsPage c={c} list={await listInvestigations(cfg.redis)} tz={tz} />))
  app.get('/investigations/:id', async (c) => {
    const id = c.req.param('id')
    const inv = /^[\w.-]{1,100}$/.test(id) ? await getInvestigation(cfg.redis, id) : null
    if (!inv) return c.notFound()
    return c.html(<InvestigationPage c={c} inv={inv} tz={tz} />)
  })
  app.get('/bans', async (c) => c.html(<BansPage c={c} bans={await bansNewestFirst(cfg.redis)} tz={tz} />))
  app.get('/audit', async (c) => c.html(<AuditPage c={c} entries={await listAudit(cfg.redis, AUDIT_SHOWN)} tz={tz} />))
  return app
}

/** Basic credentials whose user is a tenant login (`local@slug.<domain>`: an operator name has no @) are refused outright. */
function refuseTenantCredentials(c: C): Response | null {
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(c.req.header('authorization') ?? '')
  if (!m) return null
  const user = Buffer.from(m[1], 'base64').toString('utf8').split(':')[0]
  return user.includes('@') ? apiError(c, 403, 'operator routes are for operators: these are tenant credentials') : null
}

/** JSON routes under /api/v1/admin (operator credentials or an operator session: operatorApiAuth). */
export function createAdminApi(cfg: PanelConfig) {
  const app = new Hono<PanelEnv>()
  app.use('*', async (c, next) => refuseTenantCredentials(c) ?? next())
  app.use('*', operatorApiAuth(cfg))

  app.get('/tenants', async (c) => {
    const { rows, more } = await tenantRows(cfg.redis, cfg.quota, (c.req.query('q') ?? '').slice(0, 254))
    return c.json({ tenants: rows, more })
  })
  app.get('/tenants/:slug', async (c) => {
    const d = await tenantDetail(cfg.redis, cfg.quota, cfg.settings, c.req.param('slug'))
    const { logins_full, ...tenant } = d.tenant
    return c.json({
      tenant: { tenant: tenant.slug, ...tenant, logins: logins_full },
      usage: d.usage,
      recent: d.recent.map((a) => ({ ...a, at: new Date(a.at).toISOString() })),
      trap_hits: d.trap_hits,
      suppressions: d.suppressions,
      bans: d.bans,
    })
  })
  app.get('/ips', async (c) => {
    const { rotation, pool } = await poolRows(cfg.redis, cfg.settings.timeZone)
    return c.json({ rotation: { time_zone: rotation.timeZone, slot_minutes: rotation.slotMinutes, active: rotation.active }, ips: pool })
  })
  return app
}
