// CSRF protection of every form (every non-API POST): Hono's csrf() origin check (Origin or Sec-Fetch-Site must be
// this site), and a token in the hidden field `_csrf` (web/layout.tsx CsrfField) equal to the session's token, or,
// before login, to a random value in the HttpOnly cookie `posta_csrf` (double submit). Either failing: 403.
//
// Exports: CSRF_FIELD, PRE_COOKIE, csrfProtection(cfg) (sets c.get('csrf') for the forms of the page).
import * as crypto from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import { csrf } from 'hono/csrf'
import { HTTPException } from 'hono/http-exception'
import { sameToken } from './tokens'
import type { PanelConfig, PanelEnv } from './context'
import { PageError } from './page-error'

export const CSRF_FIELD = '_csrf'
export const PRE_COOKIE = 'posta_csrf'
const SAFE = /^(GET|HEAD|OPTIONS)$/

export function csrfProtection(cfg: PanelConfig): MiddlewareHandler<PanelEnv> {
  const origin = csrf()
  return async (c, next) => {
    const session = c.get('session')
    let token = session?.csrf ?? getCookie(c, PRE_COOKIE)
    if (!SAFE.test(c.req.method)) {
      try {
        await origin(c, async () => {})
      } catch (err) {
        if (err instanceof HTTPException) throw new PageError(403, 'err.csrf')
        throw err
      }
      const type = c.req.header('content-type') ?? ''
      const form = /^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type) ? await c.req.parseBody() : {}
      const sent = form[CSRF_FIELD]
      if (!sameToken(typeof sent === 'string' ? sent : undefined, token)) throw new PageError(403, 'err.csrf')
    }
    if (!token) {
      token = crypto.randomBytes(32).toString('base64url')
      setCookie(c, PRE_COOKIE, token, { httpOnly: true, sameSite: 'Lax', secure: cfg.secure, path: '/' })
    }
    c.set('csrf', token)
    await next()
  }
}
