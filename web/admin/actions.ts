// The operator area's actions: form fields checked (one error per bad field), then the same domain function the CLI
// calls (cli/commands/tenants.ts, pool.ts, traps.ts), then one audit-log entry naming the operator. A refusal of
// the domain (a closed tenant cannot be resumed...) comes back as `refused` with the domain's own sentence.
import * as os from 'node:os'
import * as path from 'node:path'
import type { RedisClient as Redis } from '../../lib/redis'
import { audit } from '../../lib/audit'
import { banPolicyFromConfig, banTenant } from '../../lib/bans'
import { InputError, NotFoundError } from '../../lib/errors'
import { getPackage } from '../../lib/packages'
import { normaliseIp, reinstateIp, suspendIp } from '../../lib/pool'
import { topUp, type QuotaOptions } from '../../lib/quota'
import type { Settings } from '../../lib/settings'
import { parseSize } from '../../lib/size'
import { changePackage, requireTenant, setTenantStatus } from '../../lib/tenants'
import { checkPackageName } from '../../lib/validate'
import { PROJECT_ROOT } from '../../service/haraka-dir'
import type { AdminKey } from './i18n'

/** The longest reason a ban or a suspension keeps (lib/bans.ts refuses longer). */
export const REASON_MAX = 500

export type Fields = Record<string, string | undefined>
/** One error per bad field: the field name and the text key saying what is wrong. */
export type FieldErrors = Partial<Record<string, AdminKey>>

export type Outcome = { ok: true; done: AdminKey; params: Record<string, string> } | { ok: false; errors: FieldErrors; refused?: string }

export interface ActionContext {
  redis: Redis
  settings: Settings
  quota: QuotaOptions
  operator: string
  /** config/ of the service, for the ban policy (posta-trap.ini [bans], posta-freemail); default as the CLI reads it. */
  configDir?: string
}

const defaultConfigDir = () => process.env.POSTA_CONFIG_DIR || path.join(PROJECT_ROOT, 'config')

const field = (f: Fields, name: string) => (typeof f[name] === 'string' ? f[name]!.trim() : '')

function reasonError(reason: string): AdminKey | undefined {
  if (!reason) return 'err.reason_missing'
  if (reason.length > REASON_MAX) return 'err.reason_long'
  return undefined
}

/** Runs a domain call; its refusal (an InputError) becomes `refused`; a NotFoundError (404) and the rest propagate. */
async function attempt(run: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await run()
  } catch (err) {
    if (err instanceof InputError && !(err instanceof NotFoundError)) return { ok: false, errors: {}, refused: err.message }
    throw err
  }
}

function isPackageName(name: string): boolean {
  try {
    checkPackageName(name)
    return true
  } catch {
    return false
  }
}

const fail = (errors: FieldErrors): Outcome => ({ ok: false, errors })

export type TenantAction = 'suspend' | 'resume' | 'topup' | 'package' | 'ban'
export const TENANT_ACTIONS: TenantAction[] = ['suspend', 'resume', 'topup', 'package', 'ban']

export async function tenantAction(ctx: ActionContext, slug: string, action: TenantAction, f: Fields): Promise<Outcome> {
  await requireTenant(ctx.redis, slug) // unknown tenant: 404, before any field is looked at
  const log = (details: Record<string, unknown> = {}) => audit(ctx.redis, { operator: ctx.operator, action: `tenant ${action}`, target: slug, details })
  switch (action) {
    case 'suspend':
    case 'resume':
      return attempt(async () => {
        await setTenantStatus(ctx.redis, slug, action === 'suspend' ? 'suspended' : 'active')
        await log()
        return { ok: true, done: action === 'suspend' ? 'done.suspend' : 'done.resume', params: { slug } }
      })
    case 'topup': {
      const raw = field(f, 'traffic')
      let bytes = 0
      if (!raw) return fail({ traffic: 'err.traffic_missing' })
      try {
        bytes = parseSize(raw)
      } catch {
        return fail({ traffic: 'err.traffic_bad' })
      }
      return attempt(async () => {
        const total = await topUp(ctx.redis, ctx.quota, slug, bytes)
        await log({ traffic_bytes: bytes, topup_bytes: total })
        return { ok: true, done: 'done.topup', params: { slug, bytes: String(bytes) } }
      })
    }
    case 'package': {
      const name = field(f, 'package')
      if (!name) return fail({ package: 'err.package_missing' })
      if (!isPackageName(name) || !(await getPackage(ctx.redis, name))) return fail({ package: 'err.package_unknown' })
      return attempt(async () => {
        const before = (await requireTenant(ctx.redis, slug)).package
        const t = await changePackage(ctx.redis, slug, name)
        await log({ from: before, to: t.package })
        return { ok: true, done: 'done.package', params: { slug, package: t.package } }
      })
    }
    case 'ban': {
      const reason = field(f, 'reason')
      const errors: FieldErrors = {}
      const r = reasonError(reason)
      if (r) errors.reason = r
      // the confirmation: the slug typed again, so a ban cannot be one stray click
      if (field(f, 'confirm') !== slug) errors.confirm = 'err.confirm'
      if (Object.keys(errors).length) return fail(errors)
      return attempt(async () => {
        const evidence = { at: new Date().toISOString(), source: 'operator area', operator: ctx.operator, host: os.hostname() }
        const policy = banPolicyFromConfig(ctx.configDir ?? defaultConfigDir(), ctx.settings.serviceDomain)
        const b = await banTenant(ctx.redis, slug, reason, `operator:${ctx.operator}`, evidence, policy)
        await log({ reason, banned_domains: b.banned_domains })
        return { ok: true, done: 'done.ban', params: { slug } }
      })
    }
  }
}

export type IpAction = 'suspend' | 'reinstate'
export const IP_ACTIONS: IpAction[] = ['suspend', 'reinstate']

/** The IP of a path, canonical; null when it is no IP address. */
export function ipOfPath(raw: string): string | null {
  try {
    return normaliseIp(raw)
  } catch {
    return null
  }
}

export async function ipAction(ctx: ActionContext, ip: string, action: IpAction, f: Fields): Promise<Outcome> {
  const log = (details: Record<string, unknown> = {}) => audit(ctx.redis, { operator: ctx.operator, action: `ip ${action}`, target: ip, details })
  if (action === 'suspend') {
    const reason = field(f, 'reason')
    const r = reasonError(reason)
    if (r) return fail({ reason: r })
    return attempt(async () => {
      await suspendIp(ctx.redis, ip, reason, `operator:${ctx.operator}`)
      await log({ reason })
      return { ok: true, done: 'done.ip_suspend', params: { ip } }
    })
  }
  return attempt(async () => {
    await reinstateIp(ctx.redis, ip, `operator:${ctx.operator}`)
    await log()
    return { ok: true, done: 'done.ip_reinstate', params: { ip } }
  })
}
