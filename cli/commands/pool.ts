// posta ip ..., posta rotation show
import { now } from '../../lib/clock'
import { InputError } from '../../lib/errors'
import { ipTraffic } from '../../lib/ledger'
import { dayOf } from '../../lib/period'
import { makeResolver } from '../../lib/dnsbl'
import { addIp, checkDns, getPool, ipHistory, normaliseIp, poolView, reinstateIp, removeIp, suspendIp } from '../../lib/pool'
import { daySchedule } from '../../lib/rotation'
import { formatSize } from '../../lib/size'
import { hhmm, parseWindow, print, rotationOptions, table, WINDOW_OPTIONS, type Command } from '../util'

export const commands: Record<string, Command> = {
  'ip add': {
    usage: 'posta ip add <ip> --helo <name> [--node <name>]',
    summary: 'add an outbound IP (IPv4 or IPv6) with its HELO name (what its PTR says); warns when DNS does not match',
    options: {
      helo: { type: 'string', help: 'the HELO name of the IP (its PTR)' },
      node: { type: 'string', help: 'the node (its POSTA_NODE) that owns the IP: only it binds the IP (default: shared by every node)' },
    },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.helo !== 'string') throw new InputError('missing --helo <name> (the PTR name of the IP)')
      if (ctx.opts.node === '') throw new InputError('--node needs a node name (its POSTA_NODE); leave --node out for an IP every node shares')
      const e = await addIp(ctx.redis, ctx.args[0], ctx.opts.helo, 'operator', typeof ctx.opts.node === 'string' ? ctx.opts.node : undefined)
      const warnings = await checkDns(e.ip, e.helo, makeResolver(ctx.settings.resolvers, 2000))
      for (const w of warnings) process.stderr.write(`posta: warning: ${w}\n`)
      print(ctx, { ...e, warnings }, () => `added ${e.ip} (helo ${e.helo}, ${e.node ? `node ${e.node}` : 'shared by every node'})`)
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
    summary: 'the pool: owner node, state, HELO, whether active in the current slot, last use',
    args: 0,
    async run(ctx) {
      const v = await poolView(ctx.redis, await rotationOptions(ctx), now())
      print(ctx, v, () =>
        v.length
          ? table([['IP', 'NODE', 'HELO', 'STATE', 'ACTIVE', 'LAST USE', 'REASON'], ...v.map((p) => [p.ip, p.node ?? '(every)', p.helo, p.state, p.active ? 'yes' : 'resting', p.last_use ?? '-', p.reason ?? ''])])
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
    usage: 'posta ip traffic <ip|default> [--since <time>] [--until <time>]',
    summary: "who sent through an IP (default: the last 24 hours), by tenant, from the delivery ledger (hourly); 'default' is the machine's own address (an empty pool)",
    options: WINDOW_OPTIONS,
    args: 1,
    async run(ctx) {
      const { since, until } = parseWindow(ctx.opts, now(), ctx.settings.timeZone)
      // the ledger's name for deliveries from the machine's own address, when the pool is empty
      const ip = ctx.args[0] === 'default' ? 'default' : normaliseIp(ctx.args[0])
      const r = await ipTraffic(ctx.redis, ip, since, until)
      const total = r.tenants.reduce((n, t) => n + t.bytes, 0)
      const rows = r.tenants.map((t) => ({ ...t, share: total ? Math.round((t.bytes / total) * 1000) / 10 : 0 }))
      print(ctx, { ip, since: since.toISOString(), until: until.toISOString(), tenants: rows }, () =>
        rows.length
          ? `${ip} from ${since.toISOString()} to ${until.toISOString()} (hourly, UTC)\n` +
            table([['TENANT', 'SHARE', 'BYTES', 'ATTEMPTS', 'DELIVERED', 'DEFERRED', 'BOUNCED', 'DSN ATTEMPTS'], ...rows.map((t) => [t.tenant, `${t.share}%`, formatSize(t.bytes), String(t.attempts), String(t.delivered), String(t.deferred), String(t.bounced), String(t.dsn_attempts)])])
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
      const pool = await getPool(ctx.redis)
      const s = daySchedule(pool, day, o)
      print(ctx, { day, time_zone: o.timeZone, slot_minutes: o.slotMinutes, active: o.active, slots: s.map((x) => ({ slot: x.slot.number, start: x.slot.start.toISOString(), end: x.slot.end.toISOString(), active: x.active })) }, () =>
        pool.length
          ? `${day} (${o.timeZone}), slots of ${o.slotMinutes} min\n` + table([['SLOT', 'FROM', 'TO', 'ACTIVE IPS'], ...s.map((x) => [String(x.slot.index), hhmm(x.slot.start, o.timeZone), hhmm(x.slot.end, o.timeZone), x.active.join(' ')])])
          : 'the pool is empty: mail leaves from the default address',
      )
    },
  },
}
