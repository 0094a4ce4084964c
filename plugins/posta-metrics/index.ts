// posta-metrics: each Haraka node serves Prometheus text on POSTA_METRICS_PORT (README "Metrics"). It observes what
// every plugin does through Haraka's own hooks (connect_init and disconnect for sessions, deny for every refusal with
// the refusing plugin's name, queue_ok for accepted messages) and counts in memory (lib/metrics.ts): nothing on the
// SMTP path waits for it or calls Redis. The node's gauges (queue files, pool IP states, the last blocklist cycle)
// are read when Prometheus scrapes. Under cluster mode (`nodes` in smtp.ini) the workers hold the counters and the
// master serves their sum through prom-client's aggregator.
import cluster from 'node:cluster'
import * as fs from 'node:fs'
import * as http from 'node:http'
import { AggregatorRegistry, Gauge, Registry } from 'prom-client'
import { connectionClosed, connectionOpened, messageAccepted, refusalReason, refused, registry } from '../../lib/metrics'
import { lastCycles } from '../../lib/monitor'
import { getPool } from '../../lib/pool'
import { sizeOf } from '../../lib/submission'
import { constants, getRedis, getSettings, type Connection, type Next, type Plugin } from '../shared/haraka'
import { chained } from '../shared/chain'



// ---- observing the SMTP path ----

export function hook_connect_init(this: Plugin, next: Next, connection: Connection) {
  connectionOpened(connection.local?.port)
  next()
}

export function hook_disconnect(this: Plugin, next: Next) {
  connectionClosed()
  next()
}

/** Haraka runs `deny` for every DENY/DENYSOFT a hook answers: [code, message, plugin, method, params, hook]. */
export function hook_deny(this: Plugin, next: Next, connection: Connection, params: unknown[]) {
  const [code, , plugin, , , hook] = params as [number, unknown, string, string, unknown, string]
  // the SMTP side only (a connection); the outbound side reports its results through posta-outbound
  if (connection?.remote && typeof hook === 'string') {
    refused(refusalReason(connection, String(plugin), hook), hook, code === constants.deny || code === constants.denydisconnect)
  }
  next()
}

export const hook_queue_ok = chained(function hook_queue_ok(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  if (tx) messageAccepted(sizeOf(tx.notes) || Math.max(0, tx.data_bytes - 3), tx.rcpt_to.length)
  next()
})

// ---- the node's gauges, read at scrape time ----

const nodeRegistry = new Registry()
const queueFiles = new Gauge({ name: 'posta_queue_files', help: 'Messages in this node\'s outbound queue (one file per recipient domain)', registers: [nodeRegistry] })
const poolIps = new Gauge({ name: 'posta_pool_ips', help: 'Pool IPs by state', labelNames: ['state'], registers: [nodeRegistry] })
const poolIpActive = new Gauge({ name: 'posta_pool_ip_active', help: 'Per pool IP: 1 active, 0 suspended', labelNames: ['ip'], registers: [nodeRegistry] })
const cycleSeconds = new Gauge({ name: 'posta_monitor_last_cycle_seconds', help: 'How long the last blocklist monitor cycle took (any node\'s)', registers: [nodeRegistry] })
const cycleAt = new Gauge({ name: 'posta_monitor_last_cycle_timestamp_seconds', help: 'When the last blocklist monitor cycle started (Unix time)', registers: [nodeRegistry] })
const cycleListed = new Gauge({ name: 'posta_monitor_last_cycle_listings', help: 'Listings of pool IPs found by the last blocklist monitor cycle', registers: [nodeRegistry] })
const zoneHealthy = new Gauge({ name: 'posta_monitor_zone_healthy', help: 'Per blocklist zone in the last monitor cycle: 1 healthy, 0 not (its answers were not trusted)', labelNames: ['zone'], registers: [nodeRegistry] })
const redisUp = new Gauge({ name: 'posta_redis_up', help: '1 when this scrape could read the pool and monitor state from Redis', registers: [nodeRegistry] })
const workers = new Gauge({ name: 'posta_haraka_workers', help: 'Haraka processes serving SMTP on this node (cluster workers connected, or 1)', registers: [nodeRegistry] })

let queueDir: string | null = null

function countQueueFiles(): number {
  if (!queueDir) return 0
  try {
    // Haraka's temporary files start with "__tmp__", its dot files are being deleted
    return fs.readdirSync(queueDir).filter((f) => !f.startsWith('.') && !f.startsWith('__tmp__')).length
  } catch {
    return 0
  }
}

/** Haraka runs cluster workers (`nodes` in smtp.ini): this process is their master and serves their sum. */
let clusterMode = false

function connectedWorkers(): number {
  return Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected()).length
}

async function refreshNodeGauges(plugin: Plugin): Promise<boolean> {
  queueFiles.set(countQueueFiles())
  workers.set(clusterMode ? connectedWorkers() : 1)
  poolIps.reset()
  poolIpActive.reset()
  zoneHealthy.reset()
  try {
    const redis = getRedis(plugin)
    const [pool, [last]] = await Promise.all([getPool(redis), lastCycles(redis, 1)])
    for (const state of ['active', 'suspended']) poolIps.set({ state }, pool.filter((p) => p.state === state).length)
    for (const p of pool) poolIpActive.set({ ip: p.ip }, p.state === 'active' ? 1 : 0)
    if (last) {
      cycleSeconds.set(last.duration_ms / 1000)
      cycleAt.set(Date.parse(last.started_at) / 1000)
      cycleListed.set(last.listed.length)
      for (const z of last.zones) zoneHealthy.set({ zone: z.zone }, z.healthy ? 1 : 0)
    }
    redisUp.set(1)
    return true
  } catch {
    redisUp.set(0)
    return false
  }
}

let aggregator: AggregatorRegistry<'text/plain; version=0.0.4; charset=utf-8'> | null = null

/** The whole text: the process's counters (or the workers' sum) and the node's gauges. */
async function render(plugin: Plugin): Promise<string> {
  await refreshNodeGauges(plugin)
  const own = clusterMode ? await aggregator!.clusterMetrics() : await registry.metrics()
  const node = await nodeRegistry.metrics()
  return [own, node].map((t) => t.trimEnd()).filter(Boolean).join('\n') + '\n'
}

// ---- the HTTP server (the master, or the single process) ----

let server: http.Server | null = null

function serve(plugin: Plugin) {
  const { port, listen } = getSettings().metrics
  if (!port || server) return
  const srv = http.createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n')
      return
    }
    if (url === '/metrics') {
      render(plugin).then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (err: Error) => {
          plugin.logerror(plugin, `metrics not rendered: ${err.message}`)
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics not available\n')
        },
      )
      return
    }
    if (url === '/healthz') {
      // healthy: Redis answers and some process serves SMTP
      refreshNodeGauges(plugin).then((redisOk) => {
        const ok = redisOk && (!clusterMode || connectedWorkers() > 0)
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok, redis: redisOk ? 'up' : 'down', queue_files: countQueueFiles() }) + '\n')
      }, () => res.writeHead(503).end())
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n')
  })
  srv.requestTimeout = 10000
  srv.headersTimeout = 5000
  srv.on('error', (err: Error) => {
    // the relay goes on without its metrics: mail matters more than a scrape
    plugin.logerror(plugin, `metrics not served: ${err.message}`, { metrics_listen: listen, metrics_port: port })
    server = null
  })
  srv.listen(port, listen, () => plugin.loginfo(plugin, 'metrics served', { metrics_listen: listen, metrics_port: port }))
  srv.unref()
  server = srv
}

export function hook_init_master(this: Plugin, next: Next, server?: { cfg?: { main?: { nodes?: unknown } } }) {
  clusterMode = cluster.isPrimary && !!server?.cfg?.main?.nodes
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  queueDir = ((this as any).haraka_require('outbound/queue') as { queue_dir?: string }).queue_dir ?? null
  aggregator = new AggregatorRegistry()
  serve(this)
  next()
}

/** A cluster worker answers the master's requests for its counters (prom-client's IPC listener). */
export function hook_init_child(this: Plugin, next: Next) {
  aggregator = new AggregatorRegistry()
  AggregatorRegistry.setRegistries([registry])
  next()
}

export function shutdown() {
  server?.close()
  server = null
}
