// posta monitor ..., posta investigate, posta investigation ...
import * as os from 'node:os'
import * as path from 'node:path'
import { now } from '../../lib/clock'
import { NotFoundError } from '../../lib/errors'
import { readIni } from '../../lib/ini'
import { getInvestigation, investigate, listInvestigations, saveInvestigation, type Investigation } from '../../lib/investigation'
import { lastCycles, monitorOptionsFromIni, runCycle } from '../../lib/monitor'
import { normaliseIp } from '../../lib/pool'
import { formatSize } from '../../lib/size'
import { PROJECT_ROOT } from '../../service/haraka-dir'
import { parseWindow, print, table, WINDOW_OPTIONS, type Command } from '../util'

function showInvestigation(inv: Investigation): string {
  const rate = (n: number | null) => (n === null ? '-' : String(n))
  return [
    `investigation ${inv.id}  (${inv.trigger})`,
    `ip ${inv.ip}, from ${inv.since} to ${inv.until}, ${formatSize(inv.total_bytes)} in all`,
    ...inv.evidence.map((e) => `evidence: ${JSON.stringify(e)}`),
    '',
    inv.tenants.length
      ? table([
          ['TENANT', 'SHARE', 'BYTES', 'ATTEMPTS', 'BOUNCE%', 'REFUSAL%', 'NEW-DOMAIN%', 'TRAP HITS', 'SUPPRESSED'],
          ...inv.tenants.map((t) => [t.tenant, `${t.share}%`, formatSize(t.bytes), String(t.attempts), String(t.bounce_rate), String(t.refusal_rate), String(t.new_domain_share), rate(t.trap_hits), rate(t.suppressed)]),
        ])
      : 'nobody sent through this IP in the window',
  ].join('\n')
}

export const commands: Record<string, Command> = {
  'monitor run': {
    usage: 'posta monitor run',
    summary: 'run one DNSBL cycle now (config/posta-monitor.ini) and print what it found; listings act as in the service',
    args: 0,
    async run(ctx) {
      const dir = process.env.POSTA_CONFIG_DIR || path.join(PROJECT_ROOT, 'config')
      const read = monitorOptionsFromIni(readIni(path.join(dir, 'posta-monitor.ini')))
      const o = read.resolvers.length ? read : { ...read, resolvers: ctx.settings.resolvers }
      const lines: string[] = []
      const log = (level: string) => (m: string) => lines.push(`${level} ${m}`)
      const r = await runCycle(ctx.redis, o, { node: `cli@${os.hostname()}`, log: { info: log('INFO'), notice: log('NOTICE'), warn: log('WARN'), crit: log('CRIT') }, now })
      print(ctx, r, () =>
        [
          `checked ${r.ips} IPs against ${r.zones.length} zones (${r.queries} queries) in ${r.duration_ms} ms`,
          ...r.zones.filter((z) => !z.healthy).map((z) => `zone ${z.zone} UNHEALTHY: ${z.reason}`),
          ...r.listed.map((l) => `LISTED ${l.ip} on ${l.zone}: ${l.meaning} (${l.answers.join(',')})${l.actionable ? '' : ' [informational]'}${l.txt ? ` ${l.txt}` : ''}`),
          ...r.suspended.map((ip) => `SUSPENDED ${ip}`),
          ...r.investigations.map((id) => `investigation ${id}: posta investigation show ${id}`),
          ...r.warnings.map((w) => `WARNING ${w}`),
          `${r.unknown} checks UNKNOWN (they change nothing)`,
          ...lines,
        ].join('\n'),
      )
    },
  },
  'monitor status': {
    usage: 'posta monitor status',
    summary: 'the last DNSBL cycles: when, which node, what they found',
    args: 0,
    async run(ctx) {
      const c = await lastCycles(ctx.redis, 10)
      print(ctx, c, () =>
        c.length
          ? table([['STARTED', 'NODE', 'IPS', 'LISTED', 'UNKNOWN', 'SUSPENDED', 'UNHEALTHY ZONES', 'MS'], ...c.map((r) => [r.started_at, r.node, String(r.ips), String(r.listed.length), String(r.unknown), r.suspended.join(',') || '-', r.zones.filter((z) => !z.healthy).map((z) => z.zone).join(',') || '-', String(r.duration_ms)])])
          : 'no cycle has run yet',
      )
    },
  },
  investigate: {
    usage: 'posta investigate <ip> [--since <time>] [--until <time>]',
    summary: 'who sent through an IP in a window (default: the 24 hours before now), ranked by share, with their signals; kept for "investigation list"',
    options: WINDOW_OPTIONS,
    args: 1,
    async run(ctx) {
      const { since, until } = parseWindow(ctx.opts, now(), ctx.settings.timeZone)
      const inv = await investigate(ctx.redis, normaliseIp(ctx.args[0]), since, until, { trigger: 'operator', now: now() })
      await saveInvestigation(ctx.redis, inv)
      print(ctx, inv, () => showInvestigation(inv))
    },
  },
  'investigation list': {
    usage: 'posta investigation list',
    summary: 'recent investigations, newest first',
    args: 0,
    async run(ctx) {
      const l = await listInvestigations(ctx.redis)
      print(ctx, l.map((i) => ({ id: i.id, ip: i.ip, opened_at: i.opened_at, trigger: i.trigger, top_tenant: i.tenants[0]?.tenant ?? null, top_share: i.tenants[0]?.share ?? 0 })), () =>
        l.length ? table([['ID', 'IP', 'OPENED', 'TRIGGER', 'TOP TENANT'], ...l.map((i) => [i.id, i.ip, i.opened_at, i.trigger, i.tenants[0] ? `${i.tenants[0].tenant} (${i.tenants[0].share}%)` : '-'])]) : 'no investigations',
      )
    },
  },
  'investigation show': {
    usage: 'posta investigation show <id>',
    summary: 'one investigation: the window, the evidence, the tenants ranked by share',
    args: 1,
    async run(ctx) {
      const inv = await getInvestigation(ctx.redis, ctx.args[0])
      if (!inv) throw new NotFoundError(`no investigation "${ctx.args[0]}": see "posta investigation list"`)
      print(ctx, inv, () => showInvestigation(inv))
    },
  },
}
