// Who a request is: the panel session of its cookie, or (API only) HTTP Basic credentials. Every route that shows
// a tenant's or the operators' data is behind one of these middlewares; the tenant a route acts for is always the
// session's or the credentials' (`c.get('tenant')`), never one named by the path or the query.
//
// Exports:
//   SESSION_COOKIE, loadSession(cfg)        app-wide: sets c.get('session') (null without a valid cookie)
//   startSession(c, cfg, subject)           creates a session and sets its cookie (after a successful login)
//   endCurrentSession(c, cfg)               ends the request's session and clears the cookie (logout)
//   requireTenant(cfg)                      pages: a tenant session of an active tenant, else 303 to /login
//   requireOperator(cfg)                    pages and /api/v1/admin: an operator session, else 303 to /admin/login
//                                           (JSON 401 under /api); a tenant session gets 403
//   tenantApiAuth(cfg)                      /api/v1: Basic with the SMTP login, or a tenant session (+ X-CSRF-Token
//                                           header on changes); JSON 401/403/429
//   operatorApiAuth(cfg)                    /api/v1/admin: Basic with operator credentials (throttled like logins),
//                                           or an operator session (+ X-CSRF-Token on changes)
//   clientIp(c), loginRefusal(verdict)
// Operators: lib/operators.ts judgeOperator (verify, throttled by the AUTH counters); /admin/login calls
// startSession(c, cfg, { kind: 'operator', operator: name }) after it.
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context, MiddlewareHandler } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { judgeLogin, normalLogin, type Verdict } from '../lib/login'
import { createSession, endSession, getSession, type Subject } from '../lib/sessions'
import { judgeOperator } from '../lib/operators'
import { tenantStatus } from '../lib/tenants'
import type { PanelConfig, PanelEnv } from './context'
import { apiError } from './errors'
import { sameToken } from './tokens'

export const SESSION_COOKIE = 'posta_session'

type Mw = MiddlewareHandler<PanelEnv>

/** The client's address as the socket gives it (the panel is not behind a proxy it would trust). */
export function clientIp(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

export function loadSession(cfg: PanelConfig): Mw {
  return async (c, next) => {
    const id = getCookie(c, SESSION_COOKIE)
    c.set('session', id ? await getSession(cfg.redis, id) : null)
    await next()
  }
}

export async function startSession(c: Context<PanelEnv>, cfg: PanelConfig, subject: Subject) {
  const old = c.get('session')
  if (old) await endSession(cfg.redis, old.id) // a new id at every login: no session fixation
  const s = await createSession(cfg.redis, subject, cfg.sessionSeconds)
  setCookie(c, SESSION_COOKIE, s.id, { httpOnly: true, sameSite: 'Lax', secure: cfg.secure, path: '/', maxAge: cfg.sessionSeconds })
  c.set('session', s)
  c.set('csrf', s.csrf)
  return s
}

export async function endCurrentSession(c: Context<PanelEnv>, cfg: PanelConfig) {
  const s = c.get('session')
  if (s) await endSession(cfg.redis, s.id)
  deleteCookie(c, SESSION_COOKIE, { path: '/', secure: cfg.secure, httpOnly: true, sameSite: 'Lax' })
  c.set('session', null)
}

/** A tenant session whose tenant is still active; a suspended or closed tenant's session is ended here. */
async function tenantOfSession(c: Context<PanelEnv>, cfg: PanelConfig): Promise<{ ok: true } | { ok: false; why: 'none' | 'operator' | 'suspended' | 'closed' }> {
  const s = c.get('session')
  if (!s) return { ok: false, why: 'none' }
  if (s.subject.kind !== 'tenant') return { ok: false, why: 'operator' }
  const status = await tenantStatus(cfg.redis, s.subject.tenant)
  if (status !== 'active') {
    await endCurrentSession(c, cfg)
    return { ok: false, why: status === 'closed' || status === null ? 'closed' : 'suspended' }
  }
  c.set('tenant', s.subject.tenant)
  c.set('login', s.subject.login)
  return { ok: true }
}

export function requireTenant(cfg: PanelConfig): Mw {
  return async (c, next) => {
    const r = await tenantOfSession(c, cfg)
    if (r.ok) return next()
    if (r.why === 'operator') return c.redirect('/admin', 303)
    return c.redirect(r.why === 'none' ? '/login' : `/login?m=${r.why}`, 303)
  }
}

export function requireOperator(cfg: PanelConfig): Mw {
  void cfg
  return async (c, next) => {
    const s = c.get('session')
    const api = c.req.path.startsWith('/api/')
    if (s?.subject.kind === 'operator') {
      c.set('operator', s.subject.operator)
      return next()
    }
    if (s) return api ? apiError(c, 403, 'operator routes are for operators: this is a tenant session') : c.text('Forbidden: operators only', 403)
    return api ? apiError(c, 401, 'log in as an operator') : c.redirect('/admin/login', 303)
  }
}

/** Basic credentials of a request: null when there are none, 'bad' when the header is malformed. */
function basicCredentials(c: Context): { user: string; pass: string } | null | 'bad' {
  const h = c.req.header('authorization')
  if (!h) return null
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(h)
  if (!m || m[1].length > 1400) return 'bad'
  const text = Buffer.from(m[1], 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 1 || colon === text.length - 1) return 'bad'
  const user = text.slice(0, colon)
  const pass = text.slice(colon + 1)
  if (user.length > 320 || pass.length > 256) return 'bad'
  return { user, pass }
}

const UNSAFE = /^(POST|PUT|PATCH|DELETE)$/

/** A session may change things through the API only with its CSRF token in X-CSRF-Token. */
function sessionMayChange(c: Context<PanelEnv>): boolean {
  return !UNSAFE.test(c.req.method) || sameToken(c.req.header('x-csrf-token'), c.get('session')?.csrf)
}

/** The answer to a refused login: status, error text (English, for the API) and Retry-After, if any. */
export function loginRefusal(v: Exclude<Verdict, { kind: 'ok' }> | { kind: 'ok'; status: 'suspended' | 'closed' }): { status: 401 | 403 | 429; error: string; retryAfter?: number } {
  switch (v.kind) {
    case 'locked':
      return { status: 429, error: `too many failed logins, try again in ${v.retryAfter} seconds`, retryAfter: v.retryAfter }
    case 'busy':
      return { status: 429, error: 'another login for this user from your address is still being checked, try again in a few seconds', retryAfter: 5 }
    case 'bad':
      return { status: 401, error: 'wrong login or password' }
    case 'ok':
      return { status: 403, error: `this account is ${v.status}, contact support` }
  }
}

function unauthorized(c: Context, error: string) {
  c.header('WWW-Authenticate', 'Basic realm="Posta", charset="UTF-8"')
  return apiError(c, 401, error)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function tenantApiAuth(cfg: PanelConfig): Mw {
  return async (c, next) => {
    const cred = basicCredentials(c)
    if (cred === 'bad') return unauthorized(c, 'malformed Authorization header: use Basic with base64 of login:password')
    if (cred) {
      const user = normalLogin(cred.user)
      const v = await judgeLogin(cfg.redis, cfg.login, clientIp(c), user, cred.pass)
      if (v.kind === 'ok' && v.status === 'active') {
        c.set('tenant', v.slug)
        c.set('login', user)
        return next()
      }
      const r = loginRefusal(v.kind === 'ok' ? { kind: 'ok', status: v.status === 'closed' ? 'closed' : 'suspended' } : v)
      if (r.retryAfter) c.header('Retry-After', String(r.retryAfter))
      if (r.status === 401) {
        await sleep(cfg.failureDelayMs)
        return unauthorized(c, r.error)
      }
      return apiError(c, r.status, r.error)
    }
    const r = await tenantOfSession(c, cfg)
    if (!r.ok) {
      if (r.why === 'operator') return apiError(c, 403, 'tenant routes need a tenant login: this is an operator session')
      if (r.why !== 'none') return apiError(c, 403, `this account is ${r.why}, contact support`)
      return unauthorized(c, 'authenticate with HTTP Basic (your SMTP login and password) or a panel session')
    }
    if (!sessionMayChange(c)) return apiError(c, 403, 'a change with a panel session needs its CSRF token in the X-CSRF-Token header')
    return next()
  }
}

/** Basic with operator credentials, judged like the /admin login form (lib/operators.ts judgeOperator: the AUTH counters, login `operator:<name>`). */
export function operatorApiAuth(cfg: PanelConfig): Mw {
  return async (c, next) => {
    const cred = basicCredentials(c)
    if (cred === 'bad') return unauthorized(c, 'malformed Authorization header: use Basic with base64 of name:password')
    if (!cred) {
      const s = c.get('session')
      if (s?.subject.kind === 'operator') {
        c.set('operator', s.subject.operator)
        if (!sessionMayChange(c)) return apiError(c, 403, 'a change with a panel session needs its CSRF token in the X-CSRF-Token header')
        return next()
      }
      if (s) return apiError(c, 403, 'operator routes are for operators: this is a tenant session')
      return unauthorized(c, 'authenticate with HTTP Basic (operator name and password) or an operator session')
    }
    const name = normalLogin(cred.user)
    const v = await judgeOperator(cfg.redis, cfg.login.limits, clientIp(c), name, cred.pass, cfg.login.cacheSeconds)
    if (v.kind === 'locked') {
      c.header('Retry-After', String(v.retryAfter))
      return apiError(c, 429, `too many failed logins, try again in ${v.retryAfter} seconds`)
    }
    if (v.kind === 'busy') return apiError(c, 429, 'another login for this operator from your address is still being checked, try again in a few seconds')
    if (v.kind === 'bad') {
      await sleep(cfg.failureDelayMs)
      // a tenant's SMTP login is not an operator: it is refused here like any wrong credential
      return unauthorized(c, 'wrong operator name or password')
    }
    c.set('operator', name)
    return next()
  }
}
