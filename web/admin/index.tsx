// The operator area, mounted by web/app.tsx at /admin (pages) and /api/v1/admin (JSON). Filled by the "admin" work
// (issue 11 part 2); until then both answer 404 through the app's not-found handler.
//
// What the panel gives these apps (see the top of each module):
//   web/context.ts  PanelConfig (redis, settings, login policy, quota options), PanelEnv (typed c.get(...))
//   web/auth.ts     requireOperator(cfg), operatorApiAuth(cfg, verifyOperator), startSession, endCurrentSession
//   web/csrf.ts     every POST here is already CSRF-checked by the app (token field + Origin); forms use CsrfField
//   web/layout.tsx  Layout({ c, title, nav, active }), CsrfField, Notice
//   web/i18n.ts     t, formatBytes, formatNumber, formatDate, formatDateTime, formatPercent
//   web/errors.tsx  apiError, errorPage, PageError
import { Hono } from 'hono'
import type { PanelConfig, PanelEnv } from '../context'

/** Pages under /admin. */
export function createAdminApp(cfg: PanelConfig) {
  void cfg
  const app = new Hono<PanelEnv>()
  return app
}

/** JSON routes under /api/v1/admin (operator credentials or an operator session: operatorApiAuth). */
export function createAdminApi(cfg: PanelConfig) {
  void cfg
  const app = new Hono<PanelEnv>()
  return app
}
