// posta trap ..., posta ban ..., posta suppression ...
import * as fs from 'node:fs'
import { banTenant, bansOf, listBans, type Ban } from '../../lib/bans'
import { InputError, NotFoundError } from '../../lib/errors'
import { listSuppressed, unsuppress } from '../../lib/suppression'
import { addTrap, importTraps, listTraps, removeTrap } from '../../lib/traps'
import { requireTenant } from '../../lib/tenants'
import { print, table, type Command } from '../util'

const showBan = (b: Ban) =>
  [
    `tenant     ${b.tenant}  (banned ${b.at} by ${b.by})`,
    `reason     ${b.reason}`,
    `contact    ${b.contact}${b.contact_domain ? ` (domain ${b.contact_domain} banned too)` : ''}`,
    `senders    ${b.sender_domains.join(', ') || '-'}`,
    `clients    ${b.client_ips.join(', ') || '-'}`,
    `evidence   ${JSON.stringify(b.evidence)}`,
  ].join('\n')

export const commands: Record<string, Command> = {
  'trap add': {
    usage: 'posta trap add <address|@domain> --class <pristine|recycled|typo> [--note <text>]',
    summary: 'add a secret spamtrap: a whole address, or every address of a domain (@domain)',
    options: { class: { type: 'string', help: 'pristine, recycled or typo' }, note: { type: 'string', help: 'where it comes from' } },
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
      await removeTrap(ctx.redis, ctx.args[0])
      print(ctx, { removed: ctx.args[0] }, () => `trap ${ctx.args[0]} removed`)
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
      print(ctx, r, () => [`imported ${r.imported} traps, skipped ${r.skipped.length} lines`, ...r.skipped.map((s) => `line ${s.line}: ${s.reason}: ${s.text}`)].join('\n'))
    },
  },
  'ban add': {
    usage: 'posta ban add <slug> --reason <text>',
    summary: 'ban a tenant for ever (after an investigation): closes it, drops its queued mail; there is no unban',
    options: { reason: { type: 'string', help: 'why (kept in the ban ledger)' } },
    args: 1,
    async run(ctx) {
      await requireTenant(ctx.redis, ctx.args[0])
      const b = await banTenant(ctx.redis, ctx.args[0], String(ctx.opts.reason ?? ''), 'operator', { at: new Date().toISOString(), source: 'posta ban add' })
      print(ctx, b, () => showBan(b))
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
    summary: 'let a tenant mail a suppressed address again',
    args: 2,
    async run(ctx) {
      await requireTenant(ctx.redis, ctx.args[0])
      await unsuppress(ctx.redis, ctx.args[0], ctx.args[1])
      print(ctx, { tenant: ctx.args[0], removed: ctx.args[1] }, () => `${ctx.args[1]} is no longer suppressed for ${ctx.args[0]}`)
    },
  },
}
