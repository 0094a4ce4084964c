// What every CLI command shares: its context, its shape, output helpers.
import * as os from 'node:os'
import type { RedisClient as Redis } from '../lib/redis'
import { InputError } from '../lib/errors'
import { parseLocalTime } from '../lib/period'
import { publishedRotation, type RotationOptions } from '../lib/rotation'
import type { Settings } from '../lib/settings'
import { loginFor, smtpHost, type Credentials, type Tenant } from '../lib/tenants'

export interface Ctx {
  redis: Redis
  settings: Settings
  args: string[]
  opts: Record<string, string | boolean | undefined>
  json: boolean
  out: (text: string) => void
}

export interface Command {
  usage: string
  summary: string
  options?: Record<string, { type: 'string' | 'boolean'; help: string }>
  /** Number of positional arguments: exact, or [min, max]. */
  args: number
  run(ctx: Ctx): Promise<unknown>
}

export const print = (ctx: Ctx, json: unknown, text: () => string) => ctx.out(ctx.json ? JSON.stringify(json, null, 2) : text())

export function table(rows: string[][]): string {
  if (rows.length === 0) return ''
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')
}

export function showCredentials(c: Credentials): string {
  return [
    `tenant     ${c.tenant}`,
    `login      ${c.login}`,
    `password   ${c.password}`,
    `smtp host  ${c.smtp_host}`,
    `ports      ${c.ports.submission} (STARTTLS), ${c.ports.smtps} (SSL/TLS), ${c.ports.smtp} (STARTTLS)`,
    '',
    'The password is shown this once and stored only as a hash. Keep it now; "posta tenant password" makes a new one.',
  ].join('\n')
}

export function tenantView(t: Tenant, s: Settings) {
  return { tenant: t.slug, ...t, lang: t.lang ?? s.language, smtp_host: smtpHost(t.slug, s), logins: t.logins.map((l) => loginFor(l, t.slug, s)) }
}

/** Rotation settings as the running service published them (config/posta-outbound.ini), else the defaults. */
export function rotationOptions(ctx: Ctx): Promise<RotationOptions> {
  return publishedRotation(ctx.redis, ctx.settings.timeZone)
}

/** A time the operator typed: read in the service time zone unless it carries `Z` or an offset (lib/period.ts). */
export function parseTime(v: string | boolean | undefined, what: string, dflt: Date, timeZone: string): Date {
  if (v === undefined) return dflt
  const d = typeof v === 'string' ? parseLocalTime(v, timeZone) : null
  if (!d) throw new InputError(`bad ${what} "${v}": use a date or time in the service time zone (${timeZone}), e.g. 2026-11-28 or 2026-11-28T14:00, or give the offset: 2026-11-28T14:00Z, 2026-11-28T14:00+01:00`)
  return d
}

export const hhmm = (d: Date, tz: string) => new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d)

/** --since/--until options of a command that looks at a window of time. */
export const WINDOW_OPTIONS = {
  since: { type: 'string' as const, help: 'start: an ISO date or time in the service time zone (POSTA_TIMEZONE), unless it ends in Z or an offset' },
  until: { type: 'string' as const, help: 'end: an ISO date or time in the service time zone (POSTA_TIMEZONE), unless it ends in Z or an offset' },
}

/** The window from --since/--until, read in the service time zone; by default the 24 hours before `now`. */
export function parseWindow(opts: Ctx['opts'], now: Date, timeZone: string): { since: Date; until: Date } {
  const until = parseTime(opts.until, '--until', now, timeZone)
  const since = parseTime(opts.since, '--since', new Date(until.getTime() - 86400000), timeZone)
  if (since > until) throw new InputError('--since must be before --until')
  return { since, until }
}

/** Who runs the CLI, for the ban ledger and the audit log (the login, or whoever ran sudo). */
export function systemUser(): string {
  try {
    return process.env.SUDO_USER || os.userInfo().username
  } catch {
    return process.env.USER || 'unknown'
  }
}
