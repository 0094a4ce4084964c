// posta-monitor: every `interval`, one node checks every pool IP against the configured DNS blocklists.
// The work is lib/monitor.ts; this plugin only schedules it in the Haraka master process and logs.
import * as os from 'node:os'
import { MONITOR_INI } from '../../lib/inis'
import { claimCycle, monitorOptions, runCycle, type Logger, type MonitorOptions } from '../../lib/monitor'
import { getRedis, getSettings, type Next, type Plugin } from '../shared/haraka'
import { loadIni } from '../shared/settings'

let cfg: MonitorOptions
let timer: NodeJS.Timeout | null = null
let running = false
const node = `${os.hostname()}:${process.pid}`

export function register(this: Plugin) {
  load_monitor_ini.call(this)
}

function load_monitor_ini(this: Plugin) {
  loadIni(this, MONITOR_INI, (read) => {
    const o = monitorOptions(read)
    // no resolvers of its own: the service's (POSTA_RESOLVERS), else the system's
    cfg = o.resolvers.length ? o : { ...o, resolvers: getSettings().resolvers }
  })
}

function logger(plugin: Plugin): Logger {
  return {
    info: (m, f) => plugin.loginfo(plugin, m, f ?? {}),
    notice: (m, f) => plugin.lognotice(plugin, m, f ?? {}),
    warn: (m, f) => plugin.logwarn(plugin, m, f ?? {}),
    // operators alert on CRIT
    crit: (m, f) => plugin.logcrit(plugin, m, f ?? {}),
  }
}

async function tick(plugin: Plugin) {
  if (running) return
  running = true
  try {
    const redis = getRedis(plugin)
    const at = Date.now()
    if (!(await claimCycle(redis, cfg.intervalMs, node, at))) return
    const r = await runCycle(redis, cfg, { node, log: logger(plugin), window: Math.floor(at / cfg.intervalMs) })
    plugin.loginfo(plugin, 'DNSBL cycle done', {
      node, ips: r.ips, queries: r.queries, listed: r.listed.length, unknown: r.unknown, suspended: r.suspended.join(',') || '-',
      unhealthy_zones: r.zones.filter((z) => !z.healthy).map((z) => z.zone).join(',') || '-', duration_ms: r.duration_ms,
    })
  } catch (err) {
    plugin.logerror(plugin, `DNSBL cycle failed, the next interval tries again: ${(err as Error).message}`)
  } finally {
    running = false
  }
}

/** Only the master (or the single process) schedules: workers deliver mail. */
export function hook_init_master(this: Plugin, next: Next) {
  getRedis(this)
  if (!timer) {
    // Every node looks often; the first to claim an interval window runs its cycle (a Redis key with expiry),
    // so a dead node's turn passes to another at the next window.
    const every = Math.max(200, Math.min(10000, Math.floor(cfg.intervalMs / 10)))
    timer = setInterval(() => void tick(this), every)
    timer.unref()
    setTimeout(() => void tick(this), 1000).unref()
  }
  next()
}

export function shutdown() {
  if (timer) clearInterval(timer)
  timer = null
}
