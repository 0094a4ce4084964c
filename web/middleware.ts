// What every panel request passes through, before its route (app.tsx puts them in order):
//   securityHeaders(cfg) CSP without inline script or style (`default-src 'self'`), no framing, no referrer, nosniff
//   language(cfg)       c.get('lang'): ?lang=it|en (remembered in the `posta_lang` cookie), the cookie,
//                       Accept-Language, the service's POSTA_LANGUAGE
//   redisGuard(cfg)     Redis not connected: 503 at once (page, or JSON under /api), before any route reads it
import type { MiddlewareHandler } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import { secureHeaders } from 'hono/secure-headers'
import { isLanguage, LANGUAGES, type Language } from '../lib/language'
import type { PanelConfig, PanelEnv } from './context'
import { PageError } from './page-error'

export const LANG_COOKIE = 'posta_lang'

export function securityHeaders(cfg: PanelConfig): MiddlewareHandler {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
      objectSrc: ["'none'"],
    },
    referrerPolicy: 'no-referrer',
    xFrameOptions: 'DENY',
    // HSTS only when the panel serves HTTPS itself (on plain loopback HTTP it would pin browsers to HTTPS)
    strictTransportSecurity: cfg.secure ? 'max-age=31536000' : false,
    crossOriginEmbedderPolicy: false,
  })
}

/** The best of our languages for an Accept-Language header, or null. */
export function fromAcceptLanguage(header: string | undefined): Language | null {
  if (!header) return null
  const ranked = header
    .split(',')
    .slice(0, 20)
    .map((part, i) => {
      const [tag, ...params] = part.trim().split(';')
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)).find(Boolean)
      return { lang: tag.trim().toLowerCase().split('-')[0], q: q ? Number(q[1]) : 1, i }
    })
    .filter((x) => x.q > 0 && (LANGUAGES as readonly string[]).includes(x.lang))
    .sort((a, b) => b.q - a.q || a.i - b.i)
  return ranked.length ? (ranked[0].lang as Language) : null
}

export function language(cfg: PanelConfig): MiddlewareHandler<PanelEnv> {
  return async (c, next) => {
    const asked = c.req.query('lang')
    let lang: Language
    if (isLanguage(asked)) {
      lang = asked
      setCookie(c, LANG_COOKIE, asked, { httpOnly: true, sameSite: 'Lax', secure: cfg.secure, path: '/', maxAge: 365 * 86400 })
    } else {
      const kept = getCookie(c, LANG_COOKIE)
      lang = isLanguage(kept) ? kept : (fromAcceptLanguage(c.req.header('accept-language')) ?? cfg.settings.language)
    }
    c.set('lang', lang)
    await next()
  }
}

export function redisGuard(cfg: PanelConfig): MiddlewareHandler<PanelEnv> {
  return async (c, next) => {
    if (cfg.redis.status !== 'ready') throw new PageError(503, 'err.unavailable')
    await next()
  }
}
