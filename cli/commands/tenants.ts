// posta tenant ..., posta usage
import { InputError } from '../../lib/errors'
import { formatDay } from '../../lib/period'
import { DEFAULT_QUOTA, topUp, usage } from '../../lib/quota'
import { formatSize, parseSize } from '../../lib/size'
import { LANGUAGES } from '../../lib/language'
import { changeContact, changePackage, createTenant, listTenants, requireTenant, resetPassword, setTenantLanguage, setTenantStatus } from '../../lib/tenants'
import { print, showCredentials, table, tenantView, type Command } from '../util'

export const commands: Record<string, Command> = {
  'tenant create': {
    usage: 'posta tenant create <slug> --package <name> --contact <email> [--local <part>] [--lang <en|it>]',
    summary: 'create a tenant with its first login <local>@<slug>.<service domain>; prints the password once',
    options: {
      package: { type: 'string', help: 'package name' },
      contact: { type: 'string', help: "the customer's contact address" },
      local: { type: 'string', help: 'local part of the login (default: mail)' },
      lang: { type: 'string', help: `the language of the tenant's bounces: ${LANGUAGES.join(', ')} (default: POSTA_LANGUAGE, else en)` },
    },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.package !== 'string') throw new InputError('missing --package <name>')
      if (typeof ctx.opts.contact !== 'string') throw new InputError('missing --contact <email>')
      const c = await createTenant(ctx.redis, ctx.settings, {
        slug: ctx.args[0], package: ctx.opts.package, contact: ctx.opts.contact, local: ctx.opts.local as string | undefined,
        lang: ctx.opts.lang as string | undefined,
      })
      print(ctx, c, () => showCredentials(c))
    },
  },
  'tenant show': {
    usage: 'posta tenant show <slug>',
    summary: "show a tenant's package, status, contact and logins",
    args: 1,
    async run(ctx) {
      const t = tenantView(await requireTenant(ctx.redis, ctx.args[0]), ctx.settings)
      print(ctx, t, () =>
        [`tenant     ${t.slug}`, `status     ${t.status}`, `package    ${t.package}`, `contact    ${t.contact}`, `language   ${t.lang}`, `smtp host  ${t.smtp_host}`,
          `logins     ${t.logins.join(', ')}`, `created    ${t.created_at}`].join('\n'),
      )
    },
  },
  'tenant list': {
    usage: 'posta tenant list',
    summary: 'list tenants',
    args: 0,
    async run(ctx) {
      const ts = (await listTenants(ctx.redis)).map((t) => tenantView(t, ctx.settings))
      print(ctx, ts, () =>
        ts.length ? table([['TENANT', 'STATUS', 'PACKAGE', 'CONTACT'], ...ts.map((t) => [t.slug, t.status, t.package, t.contact])]) : 'no tenants yet',
      )
    },
  },
  'tenant password': {
    usage: 'posta tenant password <slug> [--local <part>]',
    summary: 'set a new password for a login of the tenant (default: its first login; a new local part adds a login)',
    options: { local: { type: 'string', help: 'local part of the login' } },
    args: 1,
    async run(ctx) {
      const c = await resetPassword(ctx.redis, ctx.settings, ctx.args[0], ctx.opts.local as string | undefined)
      print(ctx, c, () => showCredentials(c))
    },
  },
  'tenant contact': {
    usage: 'posta tenant contact <slug> <email>',
    summary: "change a tenant's contact address (where quota notices go)",
    args: 2,
    async run(ctx) {
      const t = await changeContact(ctx.redis, ctx.args[0], ctx.args[1])
      print(ctx, tenantView(t, ctx.settings), () => `tenant ${t.slug} contact ${t.contact}`)
    },
  },
  'tenant suspend': {
    usage: 'posta tenant suspend <slug>',
    summary: 'suspend a tenant: its logins stop working until resumed',
    args: 1,
    async run(ctx) {
      const t = await setTenantStatus(ctx.redis, ctx.args[0], 'suspended')
      print(ctx, tenantView(t, ctx.settings), () => `tenant ${t.slug} suspended`)
    },
  },
  'tenant resume': {
    usage: 'posta tenant resume <slug>',
    summary: 'resume a suspended tenant',
    args: 1,
    async run(ctx) {
      const t = await setTenantStatus(ctx.redis, ctx.args[0], 'active')
      print(ctx, tenantView(t, ctx.settings), () => `tenant ${t.slug} active`)
    },
  },
  'tenant topup': {
    usage: 'posta tenant topup <slug> --traffic <size>',
    summary: "add a one-off amount to the tenant's allowance for the current month",
    options: { traffic: { type: 'string', help: 'extra traffic for this month (e.g. 5GB)' } },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.traffic !== 'string') throw new InputError('missing --traffic <size> (e.g. --traffic 5GB)')
      const q = { ...DEFAULT_QUOTA, timeZone: ctx.settings.timeZone }
      const total = await topUp(ctx.redis, q, ctx.args[0], parseSize(ctx.opts.traffic))
      const u = await usage(ctx.redis, q, ctx.args[0])
      print(ctx, { tenant: u.tenant, month: u.month, topup_bytes: total, limit_bytes: u.limit_bytes, remaining_bytes: u.remaining_bytes },
        () => `tenant ${u.tenant}: top-up for ${u.month} now ${formatSize(total)}; limit ${formatSize(u.limit_bytes)}, ${formatSize(u.remaining_bytes)} left`)
    },
  },
  'tenant lang': {
    usage: `posta tenant lang <slug> <${LANGUAGES.join('|')}>`,
    summary: "set the language of the tenant's bounces (delivery failure notices); applies to the next bounce",
    args: 2,
    async run(ctx) {
      const t = await setTenantLanguage(ctx.redis, ctx.args[0], ctx.args[1])
      print(ctx, tenantView(t, ctx.settings), () => `tenant ${t.slug}: bounces now in ${t.lang}`)
    },
  },
  'tenant package': {
    usage: 'posta tenant package <slug> <package>',
    summary: 'move a tenant to another package; the new allowance applies to this month at once',
    args: 2,
    async run(ctx) {
      const t = await changePackage(ctx.redis, ctx.args[0], ctx.args[1])
      print(ctx, tenantView(t, ctx.settings), () => `tenant ${t.slug} now on package ${t.package}`)
    },
  },
  usage: {
    usage: 'posta usage <slug>',
    summary: "this month's traffic of a tenant: used, limit, remaining, reset date, delivered/deferred/bounced recipients, and day by day",
    args: 1,
    async run(ctx) {
      const u = await usage(ctx.redis, { ...DEFAULT_QUOTA, timeZone: ctx.settings.timeZone }, ctx.args[0])
      print(ctx, u, () =>
        [
          `tenant     ${u.tenant}   month ${u.month} (${ctx.settings.timeZone})`,
          `used       ${formatSize(u.used_bytes)} (${u.used_bytes} bytes), ${u.messages} messages`,
          `limit      ${formatSize(u.limit_bytes)} (package ${u.package} ${formatSize(u.package_bytes)}${u.topup_bytes ? ` + top-up ${formatSize(u.topup_bytes)}` : ''})`,
          `remaining  ${formatSize(u.remaining_bytes)} (${u.remaining_bytes} bytes), ${u.percent}% used`,
          `resets     ${formatDay(new Date(u.resets_at), ctx.settings.timeZone)}`,
          `delivery   ${u.delivered} delivered, ${u.deferred} deferred, ${u.bounced} bounced (recipients)`,
          '',
          u.days.some((d) => d.messages > 0 || d.delivered + d.deferred + d.bounced > 0)
            ? table([
                ['DAY', 'BYTES', 'MESSAGES', 'RECIPIENTS', 'DELIVERED', 'DEFERRED', 'BOUNCED'],
                ...u.days
                  .filter((d) => d.messages > 0 || d.delivered + d.deferred + d.bounced > 0)
                  .map((d) => [d.day, formatSize(d.bytes), String(d.messages), String(d.recipients), String(d.delivered), String(d.deferred), String(d.bounced)]),
              ])
            : 'no traffic yet this month',
        ].join('\n'),
      )
    },
  },
}
