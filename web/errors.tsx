// Every refusal and failure of the panel, in one place: JSON `{"error": "..."}` under /api, a page in the request's
// language elsewhere. Redis unreachable is a 503 (never a stack trace); a bug is a 500 whose details go to the log
// only.
//
// Exports: apiError(c, status, error), errorPage(c, status, key), redisDown(redis, err), onPanelError(cfg),
// notFound(c), PageError (re-exported).
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { RedisClient as Redis } from '../lib/redis'
import { InputError, NotFoundError } from '../lib/errors'
import { DEFAULT_LANGUAGE } from '../lib/language'
import type { PanelConfig, PanelEnv } from './context'
import { t, type MessageKey } from './i18n'
import { Layout } from './layout'
import { PageError } from './page-error'

export { PageError }

export function apiError(c: Context, status: ContentfulStatusCode, error: string) {
  return c.json({ error }, status)
}

export function errorPage(c: Context<PanelEnv>, status: ContentfulStatusCode, key: MessageKey) {
  const lang = c.get('lang') ?? DEFAULT_LANGUAGE
  if (!c.get('csrf')) c.set('csrf', '')
  return c.html(
    <Layout c={c} title={t(lang, 'err.title')}>
      <p class="notice notice-error" role="alert">{t(lang, key)}</p>
      {status !== 503 && <p><a href="/">{t(lang, 'err.back')}</a></p>}
    </Layout>,
    status,
  )
}

/** True when an error means Redis cannot be reached now (down, refused, timed out), not a bug of ours. */
export function redisDown(redis: Redis, err: unknown): boolean {
  if (redis.status !== 'ready') return true
  const e = err as { name?: string; message?: string; code?: string }
  return e?.name === 'MaxRetriesPerRequestError' || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOENT|EPIPE|Connection is closed|Stream isn't writeable|Command timed out|connect ETIMEDOUT/i.test(`${e?.message} ${e?.code}`)
}

const API_TEXT: Record<MessageKey & `err.${string}`, string> = {
  'err.csrf': 'refused: the request did not come from this site',
  'err.not_found': 'not found',
  'err.bad_request': 'bad request',
  'err.forbidden': 'forbidden',
  'err.unavailable': 'the service is temporarily unavailable (its database cannot be reached), try again in a minute',
  'err.internal': 'internal error',
  'err.title': 'error',
  'err.back': '',
}

function isApi(c: Context) {
  return c.req.path === '/api' || c.req.path.startsWith('/api/')
}

export function notFound(c: Context<PanelEnv>) {
  return isApi(c) ? apiError(c, 404, 'no such route: see the API section of README.md') : errorPage(c, 404, 'err.not_found')
}

export function onPanelError(cfg: PanelConfig) {
  return (err: Error, c: Context<PanelEnv>) => {
    const api = isApi(c)
    if (err instanceof PageError) {
      const text = err.key.startsWith('err.') ? API_TEXT[err.key as keyof typeof API_TEXT] : t('en', err.key)
      return api ? apiError(c, err.status, text) : errorPage(c, err.status, err.key)
    }
    if (err instanceof NotFoundError) return api ? apiError(c, 404, err.message) : errorPage(c, 404, 'err.not_found')
    if (err instanceof InputError) return api ? apiError(c, 400, err.message) : errorPage(c, 400, 'err.bad_request')
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode
      return api ? apiError(c, status, err.message || 'refused') : errorPage(c, status, status === 403 ? 'err.forbidden' : status === 404 ? 'err.not_found' : 'err.bad_request')
    }
    if (redisDown(cfg.redis, err)) {
      c.header('Retry-After', '30')
      return api ? apiError(c, 503, API_TEXT['err.unavailable']) : errorPage(c, 503, 'err.unavailable')
    }
    process.stderr.write(`[panel] ${c.req.method} ${c.req.path}: ${err.stack ?? err.message}\n`)
    return api ? apiError(c, 500, API_TEXT['err.internal']) : errorPage(c, 500, 'err.internal')
  }
}
