// posta trap ..., posta ban ..., posta suppression ...
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { banPolicyFromConfig, banTenant, bansOf, listBans, type Ban } from '../../lib/bans'
import { InputError, NotFoundError } from '../../lib/errors'
import { listSuppressed, unsuppress } from '../../lib/suppression'
import { addTrap, importTraps, listTraps, removeTrap } from '../../lib/traps'
import { requireTenant } from '../../lib/tenants'
import { PROJECT_ROOT } from '../../service/haraka-dir'
import { print, systemUser, table, type Command } from '../util'

/** The config directory the plugins read (the ban policy: posta-trap.ini [bans], posta-freemail). */
const configDir = () => process.env.POSTA_CONFIG_DIR || path.join(PROJECT_ROOT, 'config')

const showBan = (b: Ban) =>
  [
    `tenant     ${b.tenant}  (banned ${b.at} by ${b.by})`,
    `reason     ${b.reason}`,
    `contact    ${b.contact}`,
    `domains    ${b.banned_domains?.join(', ') || '-'} (no new account with a contact there)`,
    `senders    ${b.sender_domains.join(', ') || '-'}`,
    `clients    ${b.client_ips.join(', ') || '-'}`,
    ...Object.entries(b.evidence ?? {}).map(([k, v]) => `  ${k.padEnd(14)} ${typeof v === 'string' ? v : JSON.stringify(v)}`),
  ].join('\n')

export const commands: Record<string, Command> = {
  'trap add': {
    usage: 'posta trap add <address|@domain> --class <pristine|recycled|typo> [--note <text>]',
    summary: 'add a secret spamtrap (or change its class and note): a whole address, or every address of a domain (@domain)',
    options: { class: { type: 'string', help: 'pristine, recycled or typo' }, note: { type: 'string', help: 'where it comes from (for operators)' } },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.class !== 'string') throw new InputError('missing --class (pristine, recycled or typo)')
      const t = await addTrap(ctx.redis, ctx.args[0], ctx.opts.class, typeof ctx.opts.note === 'string' ? ctx.opts.note : '')
      print(ctx, t, () => `trap ${t.entry} (${t.class})`)
    },
  },
  'trap remove': {
    usage: 'posta trap remove <address|@domain>',
    summary: 'remove a spamtrap',
    args: 1,
    async run(ctx) {
      const e = await removeTrap(ctx.redis, ctx.args[0])
      print(ctx, { removed: e }, () => `trap ${e} removed`)
    },
  },
  'trap list': {
    usage: 'posta trap list',
    summary: 'the spamtraps (secret: for operators only)',
    args: 0,
    async run(ctx) {
      const l = await listTraps(ctx.redis)
      print(ctx, l, () => (l.length ? table([['TRAP', 'CLASS', 'ADDED', 'NOTE'], ...l.map((t) => [t.entry, t.class, t.added_at, t.note])]) : 'no traps'))
    },
  },
  'trap import': {
    usage: 'posta trap import <file>',
    summary: 'import traps, one a line: <address|@domain> <class> [note]; # comments; reports each line it skips and why',
    args: 1,
    async run(ctx) {
      let text: string
      try {
        text = fs.readFileSync(ctx.args[0], 'utf8')
      } catch (err) {
        throw new InputError(`cannot read ${ctx.args[0]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      const r = await importTraps(ctx.redis, text)
      if (r.imported === 0) {
        const why = r.skipped.slice(0, 3).map((s) => `line ${s.line}: ${s.reason}`).join('; ')
        const more = r.skipped.length > 3 ? `; and ${r.skipped.length - 3} more` : ''
        throw new InputError(`no trap imported from ${ctx.args[0]}${why ? `: ${why}${more}` : ': no entries in it'} (format: <address|@domain> <class> [note])`)
      }
      print(ctx, r, () =>
        [`imported ${r.imported} trap${r.imported === 1 ? '' : 's'}, skipped ${r.skipped.length} line${r.skipped.length === 1 ? '' : 's'}`,
          ...r.skipped.map((s) => `  line ${s.line}: ${s.reason}: ${s.text}`)].join('\n'),
      )
    },
  },
  'ban add': {
    usage: 'posta ban add <slug> --reason <text>',
    summary: 'ban a tenant for ever (after an investigation): closes it at once, its queued mail is dropped; there is no unban',
    options: { reason: { type: 'string', help: 'why, e.g. the investigation it follows (kept in the ban ledger)' } },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.reason !== 'string' || !ctx.opts.reason.trim()) throw new InputError('a ban needs a reason: --reason "<text>"')
      const evidence = { at: new Date().toISOString(), source: 'posta ban add', operator: systemUser(), host: os.hostname() }
      const b = await banTenant(ctx.redis, ctx.args[0], ctx.opts.reason, 'operator', evidence, banPolicyFromConfig(configDir(), ctx.settings.serviceDomain))
      print(ctx, b, () => `${showBan(b)}\n\nTenant ${b.tenant} is closed and banned for ever.`)
    },
  },
  'ban list': {
    usage: 'posta ban list',
    summary: 'the ban ledger, oldest first',
    args: 0,
    async run(ctx) {
      const l = await listBans(ctx.redis)
      print(ctx, l, () => (l.length ? table([['TENANT', 'AT', 'BY', 'REASON'], ...l.map((b) => [b.tenant, b.at, b.by, b.reason])]) : 'no bans'))
    },
  },
  'ban show': {
    usage: 'posta ban show <slug>',
    summary: "a tenant's bans with their evidence",
    args: 1,
    async run(ctx) {
      const l = await bansOf(ctx.redis, ctx.args[0])
      if (!l.length) throw new NotFoundError(`tenant "${ctx.args[0]}" is not banned: see "posta ban list"`)
      print(ctx, l, () => l.map(showBan).join('\n\n'))
    },
  },
  'suppression list': {
    usage: 'posta suppression list <slug>',
    summary: "a tenant's suppressed recipients (they hard-bounced) and when each expires",
    args: 1,
    async run(ctx) {
      await requireTenant(ctx.redis, ctx.args[0])
      const l = await listSuppressed(ctx.redis, ctx.args[0])
      print(ctx, l, () => (l.length ? table([['ADDRESS', 'EXPIRES'], ...l.map((s) => [s.address, s.expires_at])]) : 'no suppressed recipients'))
    },
  },
  'suppression remove': {
    usage: 'posta suppression remove <slug> <address>',
    summary: 'let a tenant mail a suppressed address again (e.g. the mailbox exists again)',
    args: 2,
    async run(ctx) {
      await requireTenant(ctx.redis, ctx.args[0])
      const a = await unsuppress(ctx.redis, ctx.args[0], ctx.args[1])
      print(ctx, { tenant: ctx.args[0], removed: a }, () => `${a} is no longer suppressed for ${ctx.args[0]}`)
    },
  },
}
