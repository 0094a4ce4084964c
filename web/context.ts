// What every part of the panel shares: its dependencies (PanelDeps, given to createApp and to each sub-app factory)
// and the typed Hono context (PanelEnv) that the app's middleware fills for every request.
//
// Exports: PanelDeps, PanelConfig, PanelEnv, panelConfig.
import type { RedisClient as Redis } from '../lib/redis'
import { AUTH_INI } from '../lib/inis'
import { defaults, type IniValues } from '../lib/config'
import type { Language } from '../lib/language'
import { loginPolicyOf, type LoginPolicy } from '../lib/login'
import { DEFAULT_QUOTA, type QuotaOptions } from '../lib/quota'
import type { Session } from '../lib/sessions'
import { SESSION_SECONDS } from '../lib/sessions'
import type { Settings } from '../lib/settings'

export interface PanelDeps {
  /**
   * A client that fails fast while Redis is unreachable (lib/redis.ts connectHotPath: no offline queue), so a request
   * gets its 503 at once instead of hanging.
   */
  redis: Redis
  settings: Settings
  /** posta-auth.ini [main] as read by the caller; default: the shipped defaults. */
  auth?: IniValues<(typeof AUTH_INI)['sections']>['main']
  /** How long a failed login waits before its answer (posta-auth.ini failure_delay_ms). */
  failureDelayMs?: number
  /** Session lifetime in seconds (default lib/sessions.ts SESSION_SECONDS). */
  sessionSeconds?: number
  /** Cookies marked Secure: the panel is served over HTTPS (POSTA_PANEL_TLS=1). */
  secure?: boolean
  /**
   * How long the dashboard and GET /api/v1/usage reuse a tenant's usage figures in this process (web/reports.ts
   * usageReport), in ms; 0: read Redis on every request. Default USAGE_CACHE_MS.
   */
  usageCacheMs?: number
}

/** The panel's default usage cache: a second (display only; the SMTP path never reads through it). */
export const USAGE_CACHE_MS = 1000

/** PanelDeps with every default filled in, as the sub-apps read them. */
export interface PanelConfig {
  redis: Redis
  settings: Settings
  login: LoginPolicy
  failureDelayMs: number
  sessionSeconds: number
  secure: boolean
  quota: QuotaOptions
  usageCacheMs: number
}

export function panelConfig(d: PanelDeps): PanelConfig {
  const main = d.auth ?? defaults(AUTH_INI).main
  return {
    redis: d.redis,
    settings: d.settings,
    login: loginPolicyOf(main, d.settings.serviceDomain),
    failureDelayMs: d.failureDelayMs ?? main.failure_delay_ms,
    sessionSeconds: d.sessionSeconds ?? SESSION_SECONDS,
    secure: d.secure ?? false,
    quota: { ...DEFAULT_QUOTA, timeZone: d.settings.timeZone },
    usageCacheMs: d.usageCacheMs ?? USAGE_CACHE_MS,
  }
}

/**
 * The request context: `c.get('session')` is the session of the cookie (null without one: requireTenant /
 * requireOperator make it non-null for their routes), `c.get('tenant')` the tenant slug a tenant route acts for
 * (from the session or the API's Basic credentials), `c.get('lang')` the page language and `c.get('csrf')` the
 * token forms must carry (web/csrf.ts CsrfField).
 */
export interface PanelEnv {
  Variables: {
    session: Session | null
    tenant: string
    /** The login (`local@slug.<domain>`) the request acts as. */
    login: string
    /** The operator name an operator route acts as (requireOperator / operatorApiAuth), for the audit log. */
    operator: string
    lang: Language
    csrf: string
  }
}
