// `posta`: the operator's command line, a thin adapter over the domain core in lib/.
import { parseArgs } from 'node:util'
import type Redis from 'ioredis'
import { InputError } from '../lib/errors'
import { listPackages, setPackage } from '../lib/packages'
import { connectTool, describeRedisUrl } from '../lib/redis'
import { deleteRoute, listRoutes, setRoute } from '../lib/routes'
import { loadSettings, withPublished, type Settings } from '../lib/settings'
import { formatSize, parseSize } from '../lib/size'
import { now } from '../lib/clock'
import { ipTraffic } from '../lib/ledger'
import { addIp, checkDns, ipHistory, normaliseIp, poolView, reinstateIp, removeIp, suspendIp, getPool } from '../lib/pool'
import { daySchedule, DEFAULT_ROTATION, type RotationOptions } from '../lib/rotation'
import { keys } from '../lib/keys'
import { dayOf, formatDay } from '../lib/period'
import { DEFAULT_QUOTA, topUp, usage } from '../lib/quota'
import { changePackage, createTenant, listTenants, requireTenant, resetPassword, setTenantStatus, smtpHost, loginFor, type Credentials, type Tenant } from '../lib/tenants'

interface Ctx {
  redis: Redis
  settings: Settings
  args: string[]
  opts: Record<string, string | boolean | undefined>
  json: boolean
  out: (text: string) => void
}

interface Command {
  usage: string
  summary: string
  options?: Record<string, { type: 'string' | 'boolean'; help: string }>
  /** Number of positional arguments: exact, or [min, max]. */
  args: number
  run(ctx: Ctx): Promise<unknown>
}

const print = (ctx: Ctx, json: unknown, text: () => string) => ctx.out(ctx.json ? JSON.stringify(json, null, 2) : text())

function table(rows: string[][]): string {
  if (rows.length === 0) return ''
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')
}

function showCredentials(c: Credentials): string {
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

function tenantView(t: Tenant, s: Settings) {
  return { tenant: t.slug, ...t, smtp_host: smtpHost(t.slug, s), logins: t.logins.map((l) => loginFor(l, t.slug, s)) }
}

const commands: Record<string, Command> = {
  'package set': {
    usage: 'posta package set <name> --traffic <size>',
    summary: 'create a package or change its monthly traffic (sizes: 500MB, 10GB, 10GiB; a plain number is bytes)',
    options: { traffic: { type: 'string', help: 'monthly traffic allowance' } },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.traffic !== 'string') throw new InputError('missing --traffic <size> (e.g. --traffic 10GB)')
      const p = await setPackage(ctx.redis, ctx.args[0], parseSize(ctx.opts.traffic))
      print(ctx, p, () => `package ${p.name}: ${formatSize(p.traffic_bytes)} (${p.traffic_bytes} bytes) a month`)
    },
  },
  'package list': {
    usage: 'posta package list',
    summary: 'list packages',
    args: 0,
    async run(ctx) {
      const ps = await listPackages(ctx.redis)
      print(ctx, ps, () =>
        ps.length ? table([['PACKAGE', 'TRAFFIC', 'BYTES'], ...ps.map((p) => [p.name, formatSize(p.traffic_bytes), String(p.traffic_bytes)])]) : 'no packages yet: posta package set <name> --traffic <size>',
      )
    },
  },
  'tenant create': {
    usage: 'posta tenant create <slug> --package <name> --contact <email> [--local <part>]',
    summary: 'create a tenant with its first login <local>@<slug>.<service domain>; prints the password once',
    options: {
      package: { type: 'string', help: 'package name' },
      contact: { type: 'string', help: "the customer's contact address" },
      local: { type: 'string', help: 'local part of the login (default: mail)' },
    },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.package !== 'string') throw new InputError('missing --package <name>')
      if (typeof ctx.opts.contact !== 'string') throw new InputError('missing --contact <email>')
      const c = await createTenant(ctx.redis, ctx.settings, {
        slug: ctx.args[0], package: ctx.opts.package, contact: ctx.opts.contact, local: ctx.opts.local as string | undefined,
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
        [`tenant     ${t.slug}`, `status     ${t.status}`, `package    ${t.package}`, `contact    ${t.contact}`, `smtp host  ${t.smtp_host}`,
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
    summary: "this month's traffic of a tenant: used, limit, remaining, reset date, and day by day",
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
          '',
          u.days.some((d) => d.messages > 0)
            ? table([['DAY', 'BYTES', 'MESSAGES', 'RECIPIENTS'], ...u.days.filter((d) => d.messages > 0).map((d) => [d.day, formatSize(d.bytes), String(d.messages), String(d.recipients)])])
            : 'no traffic yet this month',
        ].join('\n'),
      )
    },
  },
  'ip add': {
    usage: 'posta ip add <ip> --helo <name>',
    summary: 'add an outbound IP (IPv4 or IPv6) with its HELO name (what its PTR says); warns when DNS does not match',
    options: { helo: { type: 'string', help: 'the HELO name of the IP (its PTR)' } },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.helo !== 'string') throw new InputError('missing --helo <name> (the PTR name of the IP)')
      const e = await addIp(ctx.redis, ctx.args[0], ctx.opts.helo)
      const warnings = await checkDns(e.ip, e.helo)
      for (const w of warnings) process.stderr.write(`posta: warning: ${w}\n`)
      print(ctx, { ...e, warnings }, () => `added ${e.ip} (helo ${e.helo})`)
    },
  },
  'ip remove': {
    usage: 'posta ip remove <ip>',
    summary: 'remove an IP from the pool (its history stays)',
    args: 1,
    async run(ctx) {
      await removeIp(ctx.redis, ctx.args[0])
      print(ctx, { removed: normaliseIp(ctx.args[0]) }, () => `removed ${normaliseIp(ctx.args[0])}`)
    },
  },
  'ip list': {
    usage: 'posta ip list',
    summary: 'the pool: state, HELO, whether active in the current slot, last use',
    args: 0,
    async run(ctx) {
      const v = await poolView(ctx.redis, await rotationOptions(ctx), now())
      print(ctx, v, () =>
        v.length
          ? table([['IP', 'HELO', 'STATE', 'ACTIVE', 'LAST USE', 'REASON'], ...v.map((p) => [p.ip, p.helo, p.state, p.active ? 'yes' : 'resting', p.last_use ?? '-', p.reason ?? ''])])
          : 'the pool is empty: mail leaves from the default address (posta ip add <ip> --helo <name>)',
      )
    },
  },
  'ip suspend': {
    usage: 'posta ip suspend <ip> --reason <text>',
    summary: 'stop using an IP at once, on every node',
    options: { reason: { type: 'string', help: 'why (kept in the history)' } },
    args: 1,
    async run(ctx) {
      const e = await suspendIp(ctx.redis, ctx.args[0], String(ctx.opts.reason ?? ''))
      print(ctx, e, () => `suspended ${e.ip}: ${e.reason}`)
    },
  },
  'ip reinstate': {
    usage: 'posta ip reinstate <ip>',
    summary: 'put a suspended IP back into rotation (the false-positive procedure); the history stays',
    args: 1,
    async run(ctx) {
      const e = await reinstateIp(ctx.redis, ctx.args[0])
      print(ctx, e, () => `reinstated ${e.ip}`)
    },
  },
  'ip history': {
    usage: 'posta ip history <ip>',
    summary: "an IP's timeline: added, suspended, reinstated, by whom and why",
    args: 1,
    async run(ctx) {
      const h = await ipHistory(ctx.redis, ctx.args[0])
      print(ctx, h, () => (h.length ? table([['AT', 'EVENT', 'BY', 'REASON'], ...h.map((e) => [e.at, e.event, e.by, e.reason ?? ''])]) : 'no history'))
    },
  },
  'ip traffic': {
    usage: 'posta ip traffic <ip> [--since <time>] [--until <time>]',
    summary: 'who sent through an IP (default: the last 24 hours), by tenant, from the delivery ledger (hourly)',
    options: { since: { type: 'string', help: 'start (ISO time)' }, until: { type: 'string', help: 'end (ISO time)' } },
    args: 1,
    async run(ctx) {
      const until = parseTime(ctx.opts.until, '--until', now())
      const since = parseTime(ctx.opts.since, '--since', new Date(until.getTime() - 86400000))
      if (since > until) throw new InputError('--since must be before --until')
      const ip = normaliseIp(ctx.args[0])
      const r = await ipTraffic(ctx.redis, ip, since, until)
      const total = r.tenants.reduce((n, t) => n + t.bytes, 0)
      const rows = r.tenants.map((t) => ({ ...t, share: total ? Math.round((t.bytes / total) * 1000) / 10 : 0 }))
      print(ctx, { ip, since: since.toISOString(), until: until.toISOString(), tenants: rows }, () =>
        rows.length
          ? `${ip} from ${since.toISOString()} to ${until.toISOString()} (hourly, UTC)\n` +
            table([['TENANT', 'SHARE', 'BYTES', 'ATTEMPTS', 'DELIVERED', 'DEFERRED', 'BOUNCED'], ...rows.map((t) => [t.tenant, `${t.share}%`, formatSize(t.bytes), String(t.attempts), String(t.delivered), String(t.deferred), String(t.bounced)])])
          : `no traffic through ${ip} from ${since.toISOString()} to ${until.toISOString()}`,
      )
    },
  },
  'rotation show': {
    usage: 'posta rotation show [--day YYYY-MM-DD]',
    summary: 'the schedule of a day (default today): each slot and its active IPs',
    options: { day: { type: 'string', help: 'the day, in the service time zone' } },
    args: 0,
    async run(ctx) {
      const o = await rotationOptions(ctx)
      const day = typeof ctx.opts.day === 'string' ? ctx.opts.day : dayOf(now(), o.timeZone)
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(day))) throw new InputError(`bad --day "${day}": use YYYY-MM-DD`)
      const pool = (await getPool(ctx.redis)).map((p) => p.ip)
      const s = daySchedule(pool, day, o)
      print(ctx, { day, time_zone: o.timeZone, slot_minutes: o.slotMinutes, active: o.active, slots: s.map((x) => ({ slot: x.slot.number, start: x.slot.start.toISOString(), end: x.slot.end.toISOString(), active: x.active })) }, () =>
        pool.length
          ? `${day} (${o.timeZone}), slots of ${o.slotMinutes} min\n` + table([['SLOT', 'FROM', 'TO', 'ACTIVE IPS'], ...s.map((x) => [String(x.slot.index), hhmm(x.slot.start, o.timeZone), hhmm(x.slot.end, o.timeZone), x.active.join(' ')])])
          : 'the pool is empty: mail leaves from the default address',
      )
    },
  },
  'route set': {
    usage: 'posta route set <domain> <host>[:<port>]',
    summary: 'route mail for a domain to a fixed host (a leading dot, .example.net, covers its subdomains too)',
    args: 2,
    async run(ctx) {
      const r = await setRoute(ctx.redis, ctx.args[0], ctx.args[1])
      print(ctx, r, () => `route ${r.domain} -> ${r.host}:${r.port}`)
    },
  },
  'route list': {
    usage: 'posta route list',
    summary: 'list static routes',
    args: 0,
    async run(ctx) {
      const rs = await listRoutes(ctx.redis)
      print(ctx, rs, () => (rs.length ? table([['DOMAIN', 'HOST', 'PORT'], ...rs.map((r) => [r.domain, r.host, String(r.port)])]) : 'no routes: mail goes by MX lookup'))
    },
  },
  'route delete': {
    usage: 'posta route delete <domain>',
    summary: 'delete a static route',
    args: 1,
    async run(ctx) {
      await deleteRoute(ctx.redis, ctx.args[0])
      print(ctx, { deleted: ctx.args[0] }, () => `route ${ctx.args[0]} deleted`)
    },
  },
}

/** Rotation settings as the running service published them (config/posta-outbound.ini), else the defaults. */
async function rotationOptions(ctx: Ctx): Promise<RotationOptions> {
  const [slot, active] = await ctx.redis.hmget(keys.published(), 'rotation_slot_minutes', 'rotation_active')
  return { timeZone: ctx.settings.timeZone, slotMinutes: Number(slot) || DEFAULT_ROTATION.slotMinutes, active: Number(active) || DEFAULT_ROTATION.active }
}

function parseTime(v: string | boolean | undefined, what: string, dflt: Date): Date {
  if (v === undefined) return dflt
  const d = new Date(String(v))
  if (typeof v !== 'string' || Number.isNaN(d.getTime())) throw new InputError(`bad ${what} "${v}": use an ISO time, e.g. 2026-11-28T14:00 or 2026-11-28T14:00Z`)
  return d
}

const hhmm = (d: Date, tz: string) => new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d)

function helpAll(): string {
  const rows = Object.values(commands).map((c) => [c.usage, c.summary])
  return [
    'posta: operate a Posta relay',
    '',
    ...rows.map(([u, s]) => `  ${u}\n      ${s}`),
    '',
    'Every command takes --json (machine-readable output) and --help.',
    'Redis: REDIS_URL when set, otherwise the embedded Redis of `npm start` (POSTA_DATA_DIR, default ./var).',
  ].join('\n')
}

function helpOne(c: Command): string {
  const opts = Object.entries(c.options ?? {}).map(([k, o]) => `  --${k}${o.type === 'string' ? ' <value>' : ''}  ${o.help}`)
  return [`usage: ${c.usage}`, '', c.summary, '', 'options:', ...opts, '  --json  machine-readable output', '  --help  this text'].join('\n')
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  const positional = argv.filter((a) => !a.startsWith('-'))
  const name = [positional.slice(0, 2).join(' '), positional[0]].find((k) => k !== undefined && k in commands)
  const wantsHelp = argv.includes('--help') || argv.includes('-h')
  if (!name) {
    if (argv.length === 0 || wantsHelp || argv[0] === 'help') {
      out(helpAll())
      return argv.length === 0 ? 1 : 0
    }
    throw new InputError(`unknown command "${argv.filter((a) => !a.startsWith('-')).slice(0, 2).join(' ')}": see "posta --help"`)
  }
  const cmd = commands[name]
  if (wantsHelp) {
    out(helpOne(cmd))
    return 0
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = { json: { type: 'boolean' } }
  for (const [k, o] of Object.entries(cmd.options ?? {})) options[k] = { type: o.type }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new InputError(`${(err as Error).message.split('\n')[0]} (see "${cmd.usage.split(' ').slice(0, 3).join(' ')} --help")`)
  }
  const args = parsed.positionals.slice(name.split(' ').length)
  if (args.length !== cmd.args) throw new InputError(`expected ${cmd.args} argument${cmd.args === 1 ? '' : 's'}: ${cmd.usage}`)

  const settings = loadSettings()
  const redis = connectTool(settings.redisUrl)
  let lastError: Error | undefined
  redis.on('error', (err: Error) => (lastError = err)) // reported by the failing command below
  try {
    try {
      await redis.connect()
    } catch (err) {
      // connect() rejects with a bare "Connection is closed."; the error event has the cause (ECONNREFUSED, ENOENT...)
      const cause = (lastError ?? (err as Error)).message
      throw new Error(`cannot reach Redis at ${describeRedisUrl(settings.redisUrl)} (${cause}): is "npm start" running, or REDIS_URL set?`)
    }
    await cmd.run({ redis, settings: await withPublished(redis, settings), args, opts: parsed.values, json: Boolean(parsed.values.json), out })
    return 0
  } finally {
    redis.disconnect()
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`posta: ${err.message}\n`)
      process.exit(err instanceof InputError ? 2 : 1)
    },
  )
}
