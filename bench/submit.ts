// `npm run bench`: submission throughput of Posta against stock Haraka on the same Haraka version, and what
// Posta's quota, IP pool and delivery ledger cost.
//
// Seven configurations run one after the other, each with its own private Redis, all into one fast SMTP sink:
//   posta          the project as shipped (config/ and plugins), a CLI-made tenant, a static route to the sink,
//                  an empty IP pool (one address)
//   stock          stock Haraka: tls, auth/flat_file and a 3-line get_mx plugin routing to the same sink
//   stock+nodelay  stock plus the project's posta-nodelay plugin listed first
//   posta-noquota  posta with the posta-quota line taken out of config/plugins (the quota's cost)
//   posta-pool5    posta with a pool of five loopback IPs 127.0.0.2-.6, all five active ([rotation] active=5):
//                  the rotation's cost; the sink checks that every delivery came from a pool address
//   posta-nodes2   posta in Haraka's cluster mode (smtp.ini nodes=2: a master and two workers), against posta's nodes=0
//   posta-cluster  posta on a private 3-master Redis Cluster (testkit/cluster.ts, redis+cluster://): quota latency
//   posta-unchained (only when BENCH_CONFIGS names it) posta with POSTA_HOOK_CHAIN=0: each of its hooks one Haraka
//                  hook call, as before plugins/shared/chain.ts; posta-without:posta-pipelining leaves out the replies' grouping
// The posta configurations run with posta-quota.ini stats_interval=1: the quota plugin logs its scripts' latency
// every second, and the benchmark reads the lines written during the measured phase.
// Each one gets a warm-up, then N messages (BENCH_N, default 2000) at concurrency C (the first of BENCH_C) from a
// nodemailer pool (STARTTLS, AUTH PLAIN), with a body of the first of BENCH_SIZES bytes. The other cells of the
// matrix BENCH_SIZES x BENCH_C (default 2048,102400 x 10,50) run BENCH_MATRIX_CONFIGS (posta, stock+nodelay) with
// BENCH_MATRIX_N messages (1000); every cell reports Haraka CPU per message, posta / stock+nodelay, per round.
// Every message goes through Haraka's durable outbound queue (one file, fsync, per message) and is delivered to the
// sink. Then one run of posta at C=1 (BENCH_QUOTA_C1_N messages: the quota scripts' latency without concurrency),
// the memory per idle connection (BENCH_IDLE authenticated sessions left open, posta and stock+nodelay: Haraka's
// RSS before and after) and an in-process measurement of the delivery ledger: BENCH_LEDGER_N recordAttempt calls
// against a Redis started like each run's, sequential and BENCH_LEDGER_C at a time. It prints tables, the ratios
// against the targets and a JSON line; it exits non-zero only when something fails to run (a run with failed
// messages included).
//
// With BENCH_ROUNDS=3 (the default) the configurations run interleaved three times and the table shows the
// median run of each; every run is listed too.
// Environment: BENCH_N, BENCH_C, BENCH_SIZES, BENCH_MATRIX_CONFIGS, BENCH_MATRIX_N, BENCH_QUOTA_C1_N (300; 0 skips),
// BENCH_IDLE (1000; 0 skips), BENCH_WARMUP (50), BENCH_PRIME (1: the warm-up's first message goes alone;
// 0: the whole warm-up at C, a cold start under concurrency), BENCH_ROUNDS (3), BENCH_CONFIGS (comma list, default
// all seven: the first cell's), BENCH_LEDGER_N (5000; 0 skips the ledger measurement), BENCH_LEDGER_C (50),
// BENCH_KEEP=1 keeps each Haraka dir (log, queue) under the OS temp dir, REDIS_URL uses an existing Redis,
// BENCH_PROFILE=<dir> has each Haraka write a V8 CPU profile into <dir>/<config> (bench/profile.ts sums them).
import { randomUUID } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import nodemailer from 'nodemailer'
import { DEFAULT_LEDGER, recordAttempt, type Attempt } from '../lib/ledger'
import { dayOf } from '../lib/period'
import { addIp } from '../lib/pool'
import { connectHotPath } from '../lib/redis'
import { posta } from '../testkit/cli'
import { startFastSink, type FastSink } from '../testkit/fastsink'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { plainResponse, SmtpClient } from '../testkit/smtp-client'
import { PROJECT_ROOT, setIniMain } from '../service/haraka-dir'
import { freePort } from '../service/redis-server'

type ConfigName = 'posta' | 'stock' | 'stock+nodelay' | 'posta-noquota' | 'posta-pool5' | 'posta-nodes2' | 'posta-cluster' | 'posta-unchained' | `posta-without:${string}`
/**
 * posta: the project as shipped, one address (empty pool). stock / stock+nodelay: the baselines.
 * posta-noquota: posta without posta-quota (the quota's cost). posta-pool5: posta with a pool of five loopback
 * IPs, all active (the rotation's and the ledger's cost). posta-nodes2: posta in Haraka's cluster mode, nodes=2 (a
 * master and two workers). posta-cluster: posta on a private 3-master Redis Cluster instead of one redis-server.
 */
const ALL_CONFIGS: ConfigName[] = ['posta', 'stock', 'stock+nodelay', 'posta-noquota', 'posta-pool5', 'posta-nodes2', 'posta-cluster']
/** Configurations run only when BENCH_CONFIGS names them. */
const EXTRA_CONFIGS: ConfigName[] = ['posta-unchained']
/** The configurations of every matrix cell but the first (BENCH_MATRIX_CONFIGS). */
const MATRIX_CONFIGS: ConfigName[] = ['posta', 'stock+nodelay']
const POOL5 = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']

interface Creds {
  user: string
  pass: string
}

interface RunResult {
  config: ConfigName
  n: number
  c: number
  /** the message body in bytes (BENCH_SIZES) */
  size: number
  sent: number
  failures: number
  first_errors: string[]
  submit_seconds: number
  submit_msgs_per_s: number
  e2e_seconds: number
  e2e_msgs_per_s: number
  p50_ms: number
  p90_ms: number
  p99_ms: number
  max_ms: number
  peak_rss_mib: number
  hwm_rss_mib: number
  haraka_cpu_ms_per_msg: number
  haraka_cpu_percent: number
  /** Haraka processes measured: 1, or the master and its workers with nodes=2 (CPU and RSS are their sums) */
  haraka_processes: number
  /** The run's redis-server CPU (user+system) per message: quota scripts, ledger, pool and AUTH lookups. */
  redis_cpu_ms_per_msg: number | null
  client_cpu_percent: number
  /**
   * CPU used on the machine during the measured phase by everything but this run's Haraka, Redis and this process
   * (client and sink), in % of one core: other jobs on a shared machine. steal: % of one core taken by the hypervisor.
   */
  others_cpu_percent: number | null
  steal_percent: number | null
  sink_connections: number
  /** bytes the sink received per message of the measured phase (headers and body, as on the wire) */
  sink_bytes_per_msg: number
  haraka_log_errors: number
  /** posta configs: the quota scripts' latency as the plugin measured it (stats_interval=1 lines). */
  quota_reserve_p50_ms?: number
  quota_reserve_p99_ms?: number
  quota_commit_p50_ms?: number
  quota_commit_p99_ms?: number
  /** reservations counted in those lines, and the number of lines (1-s windows) */
  quota_samples?: number
  quota_windows?: number
  /** Messages the sink accepted during the measured phase, per source address of the delivering connection. */
  delivered_from: Record<string, number>
  /** posta-pool5: deliveries that arrived from a pool address / all. */
  from_pool?: string
  round?: number
  /** wall time of the run in s: Redis, Haraka and the tenant set up (`setup`), Haraka and Redis stopped (`stop`), all */
  wall?: { setup: number; stop: number; total: number }
}

interface RunOpts {
  n: number
  c: number
  warmup: number
  prime: boolean
  keep: boolean
  /** body size in bytes */
  size: number
}

const TARGETS = { vsStock: 5, vsNodelay: 0.85, postaMsgsPerS: 400, quotaRatio: 0.95, poolRatio: 0.9, cpuVsNodelay: 1.15, reserveP99Ms: 2 }

function intEnv(name: string, dflt: number, min = 1): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return dflt
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${raw}: expected an integer >= ${min}`)
  return n
}

function configsFromEnv(name = 'BENCH_CONFIGS', dflt = ALL_CONFIGS): ConfigName[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return dflt
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean)
  for (const c of list) {
    if (c.startsWith('posta-without:')) {
      withoutPlugins(c as ConfigName) // throws for a plugin config/plugins does not list
      continue
    }
    if (![...ALL_CONFIGS, ...EXTRA_CONFIGS].includes(c as ConfigName)) throw new Error(`${name}: unknown configuration "${c}" (use ${[...ALL_CONFIGS, ...EXTRA_CONFIGS].join(', ')}, or posta-without:<plugin>[+<plugin>...])`)
  }
  return list as ConfigName[]
}

/** A comma list of integers (BENCH_SIZES, BENCH_C), each >= min, duplicates refused. */
function listEnv(name: string, dflt: number[], min = 1): number[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return dflt
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean).map(Number)
  if (!list.length || list.some((x) => !Number.isInteger(x) || x < min)) throw new Error(`${name}=${raw}: expected a comma list of integers >= ${min}`)
  if (new Set(list).size !== list.length) throw new Error(`${name}=${raw}: a value is listed twice`)
  return list
}

// ---------- processes to clean up, whatever happens ----------

const cleanups: { name: string; run: () => Promise<void>; kill: () => void }[] = []

function track(name: string, run: () => Promise<void>, kill: () => void) {
  const entry = { name, run, kill }
  cleanups.push(entry)
  return async () => {
    const i = cleanups.indexOf(entry)
    if (i >= 0) cleanups.splice(i, 1)
    await run()
  }
}

async function cleanupAll() {
  while (cleanups.length) {
    const c = cleanups.pop()!
    await Promise.race([c.run().catch(() => c.kill()), new Promise<void>((r) => setTimeout(r, 8000))])
    c.kill()
  }
}

process.on('exit', () => {
  // last resort (synchronous): anything still tracked gets SIGKILL
  for (const c of cleanups) c.kill()
})
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping everything the benchmark started`)
    void cleanupAll().finally(() => process.exit(130))
  })
}

function killPid(child: { pid?: number; exitCode: number | null; signalCode: string | null; kill(sig: NodeJS.Signals): boolean }) {
  if (child.pid && child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL')
    } catch {
      /* gone */
    }
  }
}

// ---------- measurement helpers ----------

function readStatusKb(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(s)
    const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(s)
    return { rss: rss ? Number(rss[1]) : 0, hwm: hwm ? Number(hwm[1]) : 0 }
  } catch {
    return null
  }
}

/** VmRSS and VmHWM summed over some processes (Haraka's master and workers with nodes=2). */
function readStatusKbAll(pids: number[]): { rss: number; hwm: number } | null {
  const all = pids.map(readStatusKb)
  if (all.some((s) => s === null)) return null
  return { rss: all.reduce((a, s) => a + s!.rss, 0), hwm: all.reduce((a, s) => a + s!.hwm, 0) }
}

function rssPoller(pids: number[]) {
  let peakKb = 0
  let hwmKb = 0
  const sample = () => {
    const s = readStatusKbAll(pids)
    if (!s) return
    peakKb = Math.max(peakKb, s.rss)
    hwmKb = Math.max(hwmKb, s.hwm)
  }
  sample()
  const timer = setInterval(sample, 100)
  return {
    stop() {
      sample()
      clearInterval(timer)
      return { peakMiB: peakKb / 1024, hwmMiB: hwmKb / 1024 }
    },
  }
}

/** Haraka's user+system CPU time in ms (/proc/<pid>/stat utime, stime; USER_HZ is 100 on Linux). */
function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from 3 (state) on
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100
  } catch {
    return NaN
  }
}

/** The CPU time of some processes, summed (NaN when one is gone). */
function cpuMsAll(pids: number[]): number {
  return pids.reduce((a, p) => a + cpuMs(p), 0)
}

/** pid and its children (one level: Haraka's cluster workers), from /proc/<pid>/stat's ppid field. */
function withChildren(pid: number): number[] {
  const kids: number[] = []
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) kids.push(Number(e))
    } catch {
      /* gone */
    }
  }
  return [pid, ...kids]
}

/** Machine-wide CPU time from /proc/stat (ms over all CPUs): busy (not idle, not iowait) and steal. */
function machineCpu(): { total: number; busy: number; steal: number } | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f
    const total = user + nice + system + idle + iowait + irq + softirq + steal
    return { total: total * 10, busy: (total - idle - iowait) * 10, steal: steal * 10 }
  } catch {
    return null
  }
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/**
 * A text body of exactly `size` bytes: lines of 76 x and CRLF (78 bytes), the last one shorter (7bit, no line
 * nodemailer would re-encode). 2,028 bytes is the body of the benchmark's earlier figures (26 lines).
 */
function makeBody(size: number): string {
  const line = 'x'.repeat(76) + '\r\n'
  const rest = size % line.length
  return line.repeat(Math.floor(size / line.length)) + (rest >= 3 ? 'x'.repeat(rest - 2) + '\r\n' : 'x'.repeat(rest))
}
const RCPT_DOMAIN = 'bench-sink.test'
/** Connections per client source address at most (config/posta-limits.ini [connections] max_per_client=50). */
const CONNS_PER_SOURCE = 25
/** The client's source address number i (0-based) when it spreads connections: 127.0.1.1, 127.0.1.2, ... */
const clientSource = (i: number) => `127.0.1.${1 + i}`

function makeTransport(port: number, creds: Creds, c: number, localAddress?: string) {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    ...(localAddress ? { localAddress } : {}),
    secure: false,
    requireTLS: true,
    authMethod: 'PLAIN',
    auth: { user: creds.user, pass: creds.pass },
    tls: { rejectUnauthorized: false },
    pool: true,
    maxConnections: c,
    maxMessages: Infinity,
  })
  t.on('error', (err: Error) => console.error(`  transport error: ${err.message}`))
  return t
}

type Transport = ReturnType<typeof makeTransport>

/**
 * C connections as nodemailer pools: one pool from 127.0.0.1 up to CONNS_PER_SOURCE connections, beyond that
 * ceil(C / CONNS_PER_SOURCE) pools, each from its own loopback address (127.0.1.x), so that C=50 stays clear of
 * posta-limits' connections per client (a pool that reconnects would otherwise briefly hold 51).
 */
function makeTransports(port: number, creds: Creds, c: number): Transport[] {
  if (c <= CONNS_PER_SOURCE) return [makeTransport(port, creds, c)]
  const k = Math.ceil(c / CONNS_PER_SOURCE)
  return Array.from({ length: k }, (_, j) => makeTransport(port, creds, Math.ceil(c / k), clientSource(j)))
}

/** Sends `n` messages with `c` workers (worker i on pool i mod k); resolves with per-message latencies and timings. */
async function blast(ts: Transport[], n: number, c: number, tag: string, body: string) {
  let next = 0
  let sent = 0
  let failures = 0
  const errors: string[] = []
  const lat: number[] = []
  let lastOk = 0
  const t0 = performance.now()
  async function worker(w: number) {
    const t = ts[w % ts.length]
    while (next < n) {
      const i = next++
      const s = performance.now()
      try {
        const info = await t.sendMail({
          from: 'Bench <bench@customer.example>',
          to: `rcpt${i % 100}@${RCPT_DOMAIN}`,
          subject: `${tag} ${i}`,
          text: body,
        })
        if (!/^250[ -]/.test(String(info.response))) throw new Error(`unexpected reply: ${info.response}`)
        sent++
        lastOk = performance.now()
      } catch (err) {
        failures++
        if (errors.length < 5) errors.push((err as Error).message)
      }
      lat.push(performance.now() - s)
    }
  }
  await Promise.all(Array.from({ length: c }, (_, w) => worker(w)))
  lat.sort((a, b) => a - b)
  return { t0, lastOk: lastOk || performance.now(), sent, failures, errors, lat }
}

// ---------- the three configurations ----------

function stockRoutePlugin(sinkPort: number): string {
  return [
    '// bench_route: every domain goes to the benchmark sink (the stock baseline\'s only routing).',
    'exports.hook_get_mx = function (next, hmail, domain) {',
    `    next(OK, { exchange: '127.0.0.1', port: ${sinkPort}, priority: 0 })`,
    '}',
    '',
  ].join('\n')
}

/** The project's config file with `key=...` in it set to `value` (the key must be there: a silent no-op would lie). */
function withSetting(file: string, key: string, value: string): string {
  const text = fs.readFileSync(path.join(PROJECT_ROOT, 'config', file), 'utf8')
  const re = new RegExp(`^${key}=.*$`, 'm')
  if (!re.test(text)) throw new Error(`config/${file} has no ${key}= line for the benchmark to set`)
  return text.replace(re, `${key}=${value}`)
}

/**
 * config/plugins without posta-monitor, as testkit/haraka.ts runs every posta configuration that gives no
 * posta-monitor.ini (no DNS here); a configuration that writes its own plugins list must leave it out too.
 */
function projectPluginsWithoutMonitor(): string {
  const plugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8')
  return plugins.replace(/^\s*posta-monitor\s*$/m, '# posta-monitor (off in the benchmark, as in tests without DNS)')
}

/** Config files the posta configurations write over the project's (whole files, as startHaraka's overrides do). */
/**
 * `posta-without:<plugin>[+<plugin>...]`: posta with those lines of config/plugins commented out, to measure what each
 * plugin costs (an ablation: e.g. posta-without:posta-metrics, posta-without:posta-dkim+dkim). Plugins the relay
 * cannot do without (posta-relay, posta-outbound: no tenant, no route to the sink) make the run fail, not lie.
 */
function withoutPlugins(config: ConfigName): string | null {
  if (!config.startsWith('posta-without:')) return null
  const names = config.slice('posta-without:'.length).split('+').filter(Boolean)
  let plugins = projectPluginsWithoutMonitor()
  if (!names.length) throw new Error(`${config}: name the plugins to leave out, e.g. posta-without:posta-metrics`)
  for (const n of names) {
    const re = new RegExp(`^${n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s*$`, 'm')
    if (!re.test(plugins)) throw new Error(`${config}: config/plugins does not list ${n}`)
    plugins = plugins.replace(re, `# ${n} (taken out by the benchmark: ${config})`)
  }
  return plugins
}

function postaOverrides(config: ConfigName): Record<string, string> {
  // every posta configuration: the quota plugin logs its scripts' latency every second
  const overrides: Record<string, string> = { 'posta-quota.ini': withSetting('posta-quota.ini', 'stats_interval', '1') }
  const without = withoutPlugins(config)
  if (without !== null) overrides.plugins = without
  if (config === 'posta-noquota') {
    const plugins = projectPluginsWithoutMonitor()
    if (!/^posta-quota\s*$/m.test(plugins)) throw new Error('config/plugins does not list posta-quota: posta-noquota would measure nothing')
    overrides.plugins = plugins.replace(/^posta-quota\s*$/m, '# posta-quota (taken out by the benchmark: posta-noquota)')
  }
  // all five pool IPs active in every slot (the shipped default, 0.5, would use three of five)
  if (config === 'posta-pool5') overrides['posta-outbound.ini'] = withSetting('posta-outbound.ini', 'active', '5')
  return overrides
}

/**
 * BENCH_PROFILE=<dir>: each Haraka writes a V8 CPU profile (`node --cpu-prof`) into <dir>/<config> when it stops.
 * V8 writes it only on a normal exit, and a graceful shutdown outlasts testkit's stop(): a plain plugin added at the
 * end of the list exits at once on SIGINT. The profile covers the whole run (start, warm-up, measured phase);
 * `node dist/bench/profile.js <dir> <messages>` sums it.
 */
function withProfiler(overrides: Record<string, string>, extraPlugins: Record<string, string>, config: ConfigName) {
  const dir = process.env.BENCH_PROFILE
  if (!dir) return { overrides, extraPlugins }
  const sub = path.resolve(dir, config)
  fs.mkdirSync(sub, { recursive: true })
  const plugins = overrides.plugins ?? projectPluginsWithoutMonitor()
  return {
    overrides: { ...overrides, plugins: `${plugins.trimEnd()}\nbench_profile\n` },
    extraPlugins: { ...extraPlugins, bench_profile: "process.prependListener('SIGINT', () => process.exit(0))\n" },
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${sub}`],
  }
}

const STOCK_AUTH_INI = '[core]\nmethods=PLAIN,LOGIN\n\n[users]\nbench=benchpass\n'

/**
 * The idle-session measurement's plain plugin, last in the list: SIGUSR2 runs a full garbage collection in Haraka
 * (V8's gc, exposed at run time), so that the RSS before and after the sessions are both read after a GC and the
 * difference is what the sessions hold, not garbage a collection has not reached yet.
 */
const GC_PLUGIN = [
  "// bench_gc: SIGUSR2 = a full GC (the benchmark's idle-session measurement)",
  "require('v8').setFlagsFromString('--expose-gc')",
  "const gc = require('vm').runInNewContext('gc')",
  "process.on('SIGUSR2', () => gc())",
  '',
].join('\n')

/** overrides and extra plugins with one more plain plugin at the end of the plugins list. */
function withExtraPlugin(overrides: Record<string, string>, extraPlugins: Record<string, string>, name: string, src: string) {
  const plugins = overrides.plugins ?? projectPluginsWithoutMonitor()
  return { overrides: { ...overrides, plugins: `${plugins.trimEnd()}\n${name}\n` }, extraPlugins: { ...extraPlugins, [name]: src } }
}

async function startConfig(config: ConfigName, redis: TestRedis, sink: FastSink, gcPlugin = false): Promise<{ haraka: HarakaNode; creds: Creds }> {
  const extra = (o: Record<string, string>, e: Record<string, string>) => {
    // the idle-session Haraka is not profiled (its profile would land in the matrix run's directory)
    if (gcPlugin) return withExtraPlugin(o, e, 'bench_gc', GC_PLUGIN)
    return withProfiler(o, e, config)
  }
  if (config.startsWith('posta')) {
    const overrides = postaOverrides(config)
    let ports: { smtp: number; submission: number; smtps: number } | undefined
    if (config === 'posta-nodes2') {
      // Haraka's cluster mode: a whole smtp.ini of the benchmark's own (the project's, nodes=2), which names the
      // ports itself (as test/metrics.e2e.test.ts starts one)
      ports = { smtp: await freePort('127.0.0.1'), submission: await freePort('127.0.0.1'), smtps: await freePort('127.0.0.1') }
      overrides['smtp.ini'] = setIniMain(fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'smtp.ini'), 'utf8'), {
        nodes: String(NODES2), listen: [ports.smtp, ports.submission, ports.smtps].map((x) => `127.0.0.1:${x}`).join(','), smtps_port: String(ports.smtps),
      })
    }
    // posta-unchained: every hook a Haraka hook call of its own, as before plugins/shared/chain.ts (POSTA_HOOK_CHAIN=0)
    const harakaEnv = config === 'posta-unchained' ? { POSTA_HOOK_CHAIN: '0' } : undefined
    const haraka = await startHaraka({ redisUrl: redis.url, ports, env: harakaEnv, ...extra(overrides, {}) })
    const env = { REDIS_URL: redis.url }
    const cli = async (args: string[]) => {
      const r = await posta(args, env)
      if (r.code !== 0) throw new Error(`posta ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`)
      return r
    }
    try {
      const pkg = uniqueName('bench-pkg')
      await cli(['package', 'set', pkg, '--traffic', '100GB'])
      const r = await cli(['tenant', 'create', uniqueName('bench'), '--package', pkg, '--contact', 'ops@example.net', '--json'])
      const c = r.json<{ login: string; password: string }>()
      await cli(['route', 'set', RCPT_DOMAIN, `127.0.0.1:${sink.port}`])
      // the pool goes straight into this run's Redis (lib/pool.ts, as `posta ip add` does, without its DNS check);
      // posta-outbound sees it at the next delivery (getPoolFresh reads the pool's version every time)
      if (config === 'posta-pool5') for (const ip of POOL5) await addIp(redis.client, ip, `mta${ip.split('.')[3]}.bench.test`, 'bench')
      return { haraka, creds: { user: c.login, pass: c.password } }
    } catch (err) {
      await haraka.stop()
      throw err
    }
  }
  const plugins = config === 'stock' ? 'tls\nauth/flat_file\nbench_route\n' : 'posta-nodelay\ntls\nauth/flat_file\nbench_route\n'
  const haraka = await startHaraka({
    redisUrl: redis.url,
    ...extra({ plugins, 'auth_flat_file.ini': STOCK_AUTH_INI }, { bench_route: stockRoutePlugin(sink.port) }),
  })
  return { haraka, creds: { user: 'bench', pass: 'benchpass' } }
}

async function runConfig(config: ConfigName, opts: RunOpts, sink: FastSink): Promise<RunResult> {
  console.log(`\n== ${config}: starting Redis and Haraka`)
  const t0 = performance.now()
  // A Redis per run: no state (AUTH failure counters, quota usage) carries over from one run to the next.
  // posta-cluster: a private 3-master Redis Cluster (testkit/cluster.ts) in its place.
  const redis = await testRedis({ cluster: config === 'posta-cluster' })
  const closeRedis = track(`redis ${config}`, () => redis.close(), () => {
    if (redis.server) killPid(redis.server.process)
    for (const node of redis.cluster?.nodes ?? []) killPid(node.process)
  })
  let closed = false
  try {
    const r = await runWith(config, opts, redis, sink, t0)
    const t1 = performance.now()
    closed = true
    await closeRedis()
    r.wall = { setup: r.wall!.setup, stop: round(r.wall!.stop + (performance.now() - t1) / 1000, 1), total: round((performance.now() - t0) / 1000, 1) }
    console.log(`   wall: ${r.wall.total} s (setup ${r.wall.setup} s, stop ${r.wall.stop} s)`)
    return r
  } finally {
    if (!closed) await closeRedis()
  }
}

async function runWith(config: ConfigName, opts: RunOpts, redis: TestRedis, sink: FastSink, t0: number): Promise<RunResult> {
  const { haraka, creds } = await startConfig(config, redis, sink)
  const setupS = round((performance.now() - t0) / 1000, 1)
  let result_: RunResult | null = null
  const pid = haraka.process.pid!
  console.log(`   Haraka pid ${pid}, dir ${haraka.dir}, submission port ${haraka.submissionPort}; ${redis.url}`)
  // a Haraka that dies mid-run (uncaught exception) fails the run at once instead of a long wait at the sink
  let died: ((err: Error) => void) | null = null
  const death = new Promise<never>((_, reject) => (died = reject))
  death.catch(() => {})
  const onExit = (code: number | null, signal: string | null) =>
    died?.(new Error(`Haraka (${config}) exited during the run (code ${code}, signal ${signal}); its log: ${haraka.logFile}\n${crashLines(haraka.log())}`))
  haraka.process.once('exit', onExit)
  const untrack = track(`haraka ${config}`, () => haraka.stop(), () => killPid(haraka.process))
  let ok = false
  try {
    let rss: ReturnType<typeof rssPoller> | null = null
    const t = makeTransports(haraka.submissionPort, creds, opts.c)
    const body = makeBody(opts.size)
    try {
      // warm-up: opens the pool's connections (TLS + AUTH), JIT, first queue files; not counted.
      // With BENCH_PRIME (default on) one message goes alone first, delivered before the rest start: the
      // benchmark measures the steady state, not a cold start under concurrency (docs/benchmarks.md says why).
      const before = sink.messages
      const warmupFailed = (what: string, failures: number, errors: string[]) => {
        const gone = haraka.process.exitCode !== null || haraka.process.signalCode !== null
        return new Error(
          `${config}: ${failures} ${what} failed: ${errors.join(' | ')}` +
            (gone ? `\n   Haraka exited (code ${haraka.process.exitCode}, signal ${haraka.process.signalCode}); from its log:\n${crashLines(haraka.log())}` : ''),
        )
      }
      const primed = opts.prime ? 1 : 0
      if (opts.prime) {
        const p = await blast(t, 1, 1, `${config} prime`, body)
        if (p.failures > 0) throw warmupFailed('priming message (sent alone)', p.failures, p.errors)
        await Promise.race([sink.waitFor(before + 1, 60000), death])
      }
      const w = await blast(t, opts.warmup - primed, opts.c, `${config} warm-up`, body)
      if (w.failures > 0) throw warmupFailed(`of ${opts.warmup - primed} warm-up message(s)`, w.failures, w.errors)
      await Promise.race([sink.waitFor(before + opts.warmup, 60000), death])
      console.log(`   warm-up: ${opts.warmup} sent and delivered; measuring ${opts.n} at C=${opts.c}`)

      // The quota plugin logs (and resets) its latency figures every second: a pause here lets the warm-up's
      // reservations go out in a line of their own, before the measured phase (every configuration pauses alike).
      await sleep(STATS_FLUSH_MS)
      const base = sink.messages
      const baseConns = sink.connections
      const baseBytes = sink.bytes
      const baseFrom = { ...sink.messagesFrom }
      const logBase = haraka.log().length
      // Haraka's processes: the one process, or with nodes=2 the master and its workers (forked at start)
      const pids = withChildren(pid)
      if (config === 'posta-nodes2' && pids.length !== 1 + NODES2) throw new Error(`${config}: expected Haraka's master and ${NODES2} workers, found ${pids.length} process(es): ${pids.join(', ')}`)
      // Redis's: the one redis-server, or the Cluster's masters
      const redisPids = redis.server ? [redis.server.process.pid!] : (redis.cluster?.nodes.map((x) => x.process.pid!) ?? [])
      rss = rssPoller(pids)
      const cpu0 = cpuMsAll(pids)
      const redisCpu0 = redisPids.length ? cpuMsAll(redisPids) : NaN
      const client0 = process.cpuUsage()
      const machine0 = machineCpu()
      const run = await blast(t, opts.n, opts.c, config, body)
      let e2eEnd = performance.now()
      if (run.sent > 0) {
        await Promise.race([sink.waitFor(base + run.sent, Math.max(120000, run.sent * 100)), death]).catch((err: Error) => {
          const why = haraka.log().split('\n').filter((l) => /deferred|temp_fail|bounce|\[(ERROR|CRIT)\]/i.test(l)).slice(-10).join('\n')
          throw new Error(`${err.message}${why ? `\n   last deferral/error lines of ${haraka.logFile}:\n${why}` : ''}`)
        })
        e2eEnd = performance.now()
      }
      const mem = rss.stop()
      const harakaCpu = cpuMsAll(pids) - cpu0
      const redisCpu = redisPids.length ? cpuMsAll(redisPids) - redisCpu0 : NaN
      const clientCpu = process.cpuUsage(client0)
      const machine1 = machineCpu()
      const submitS = (run.lastOk - run.t0) / 1000
      const e2eS = (e2eEnd - run.t0) / 1000
      if (haraka.process.exitCode !== null || haraka.process.signalCode !== null) await death
      // and one more tick after the last reservation, so that the measured phase's last window is logged too
      if (quotaOn(config)) await sleep(STATS_FLUSH_MS)
      const log = haraka.log()
      const deliveredFrom: Record<string, number> = {}
      for (const [ip, count] of Object.entries(sink.messagesFrom)) if (count - (baseFrom[ip] ?? 0) > 0) deliveredFrom[ip] = count - (baseFrom[ip] ?? 0)
      const quota = quotaLatency(log.slice(logBase))
      const result: RunResult = {
        config,
        n: opts.n,
        c: opts.c,
        size: opts.size,
        sent: run.sent,
        failures: run.failures,
        first_errors: run.errors,
        submit_seconds: round(submitS, 3),
        submit_msgs_per_s: round(run.sent / submitS, 1),
        e2e_seconds: round(e2eS, 3),
        e2e_msgs_per_s: round(run.sent / e2eS, 1),
        p50_ms: round(percentile(run.lat, 0.5), 2),
        p90_ms: round(percentile(run.lat, 0.9), 2),
        p99_ms: round(percentile(run.lat, 0.99), 2),
        max_ms: round(run.lat[run.lat.length - 1] ?? NaN, 2),
        peak_rss_mib: round(mem.peakMiB, 1),
        hwm_rss_mib: round(mem.hwmMiB, 1),
        haraka_cpu_ms_per_msg: round(harakaCpu / Math.max(1, run.sent), 3),
        haraka_cpu_percent: round((harakaCpu / 10) / e2eS, 1),
        haraka_processes: pids.length,
        redis_cpu_ms_per_msg: Number.isFinite(redisCpu) ? round(redisCpu / Math.max(1, run.sent), 3) : null,
        client_cpu_percent: round((clientCpu.user + clientCpu.system) / 1e4 / e2eS, 1),
        others_cpu_percent: machine0 && machine1
          ? round(Math.max(0, machine1.busy - machine0.busy - harakaCpu - (Number.isFinite(redisCpu) ? redisCpu : 0) - (clientCpu.user + clientCpu.system) / 1000) / 10 / e2eS, 1)
          : null,
        steal_percent: machine0 && machine1 ? round((machine1.steal - machine0.steal) / 10 / e2eS, 1) : null,
        sink_connections: sink.connections - baseConns,
        sink_bytes_per_msg: Math.round((sink.bytes - baseBytes) / Math.max(1, run.sent)),
        haraka_log_errors: (log.match(/\[(ERROR|CRIT|EMERG)\]/g) ?? []).length,
        ...quota.summary,
        delivered_from: deliveredFrom,
      }
      quotaWindowsOf.set(result, quota.windows)
      if (config === 'posta-pool5') {
        const total = Object.values(deliveredFrom).reduce((a, b) => a + b, 0)
        result.from_pool = `${POOL5.reduce((a, ip) => a + (deliveredFrom[ip] ?? 0), 0)}/${total}`
      }
      console.log(
        `   submitted ${result.sent}/${opts.n} in ${result.submit_seconds} s = ${result.submit_msgs_per_s} msg/s; ` +
          `delivered all in ${result.e2e_seconds} s = ${result.e2e_msgs_per_s} msg/s; p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms; ` +
          `failures ${result.failures}; peak RSS ${result.peak_rss_mib} MiB (VmHWM ${result.hwm_rss_mib}); ` +
          `Haraka CPU ${result.haraka_cpu_ms_per_msg} ms/msg (${result.haraka_cpu_percent}% of a core), Redis CPU ${result.redis_cpu_ms_per_msg ?? 'n/a'} ms/msg, ` +
          `client CPU ${result.client_cpu_percent}%; other processes ${result.others_cpu_percent ?? 'n/a'}% of a core, steal ${result.steal_percent ?? 'n/a'}%`,
      )
      // a sink that lost part of each body would measure small messages: every delivery carries the whole body
      if (run.sent > 0 && result.sink_bytes_per_msg < opts.size) throw new Error(`${config}: the sink received ${result.sink_bytes_per_msg} bytes per message, less than the ${opts.size}-byte body`)
      console.log(`   sink: ${result.sink_bytes_per_msg} bytes per message; delivered from: ${Object.entries(deliveredFrom).map(([ip, k]) => `${ip} ${k}`).join(', ') || 'nothing'}` +
        (result.quota_windows ? `; quota latency lines: ${result.quota_windows} (${result.quota_samples} reservations): reserve p50 ${result.quota_reserve_p50_ms} ms, p99 ${result.quota_reserve_p99_ms} ms` : ''))
      if (run.errors.length) console.log(`   first errors: ${run.errors.join(' | ')}`)
      if (result.haraka_log_errors) console.log(`   Haraka logged ${result.haraka_log_errors} error line(s): ${haraka.logFile}`)
      ok = run.failures === 0
      result_ = result
      return result
    } finally {
      for (const x of t) x.close()
      rss?.stop()
    }
  } finally {
    haraka.process.off('exit', onExit)
    const s0 = performance.now()
    await untrack()
    if (result_) (result_ as RunResult).wall = { setup: setupS, stop: round((performance.now() - s0) / 1000, 1), total: 0 }
    if (ok && !opts.keep) fs.rmSync(haraka.dir, { recursive: true, force: true })
    else console.log(`   Haraka dir kept: ${haraka.dir}`)
  }
}

// ---------- the matrix: BENCH_SIZES x BENCH_C ----------

/** One cell of the matrix: a body size and a concurrency, the configurations it runs and their runs. */
interface Cell {
  size: number
  c: number
  n?: number
  configs?: ConfigName[]
  runs?: RunResult[]
}

/** Per round, f(a) / f(b) of the same round (the configurations of a round run seconds to minutes apart). */
function pairedOf(runs: RunResult[], a: ConfigName, b: ConfigName, f: (r: RunResult) => number, digits = 2): number[] {
  return runs.filter((r) => r.config === a).flatMap((ra) => {
    const rb = runs.find((r) => r.config === b && r.round === ra.round)
    return rb ? [round(f(ra) / f(rb), digits)] : []
  })
}

/** Per configuration, the run with the median submitted rate. */
function medianRuns(runs: RunResult[], configs: ConfigName[]): RunResult[] {
  const out: RunResult[] = []
  for (const config of configs) {
    const rs = runs.filter((r) => r.config === config).sort((a, b) => a.submit_msgs_per_s - b.submit_msgs_per_s)
    if (rs.length) out.push(rs[Math.floor((rs.length - 1) / 2)])
  }
  return out
}

/**
 * A cell's figures against the targets of issue 14: Haraka CPU ms per message, posta / stock+nodelay, per round
 * and their median (target <= 1.15x), and submitted msg/s, posta / stock+nodelay (median runs and per round,
 * target >= 0.85x).
 */
function cellSummary(cell: Cell) {
  const runs = cell.runs ?? []
  const results = medianRuns(runs, cell.configs ?? [])
  const p = results.find((r) => r.config === 'posta')
  const sn = results.find((r) => r.config === 'stock+nodelay')
  const perRound = {
    cpu_posta_vs_stock_nodelay: pairedOf(runs, 'posta', 'stock+nodelay', (r) => r.haraka_cpu_ms_per_msg),
    posta_vs_stock_nodelay: pairedOf(runs, 'posta', 'stock+nodelay', (r) => r.submit_msgs_per_s),
    posta_vs_stock_nodelay_e2e: pairedOf(runs, 'posta', 'stock+nodelay', (r) => r.e2e_msgs_per_s),
  }
  const med = (v: number[]) => (v.length ? round(median(v), 2) : null)
  const cpuMedian = (name: ConfigName) => {
    const v = runs.filter((r) => r.config === name).map((r) => r.haraka_cpu_ms_per_msg)
    return v.length ? median(v) : null
  }
  const ratios = {
    cpu_posta_vs_stock_nodelay: med(perRound.cpu_posta_vs_stock_nodelay),
    posta_vs_stock_nodelay: p && sn ? round(p.submit_msgs_per_s / sn.submit_msgs_per_s, 2) : null,
    posta_vs_stock_nodelay_e2e: p && sn ? round(p.e2e_msgs_per_s / sn.e2e_msgs_per_s, 2) : null,
    posta_vs_stock_nodelay_median_of_rounds: med(perRound.posta_vs_stock_nodelay),
  }
  return {
    size: cell.size, c: cell.c, n: cell.n, configs: cell.configs,
    haraka_cpu_ms_per_msg: { posta: cpuMedian('posta'), stock_nodelay: cpuMedian('stock+nodelay') },
    results, runs, ratios, ratios_per_round: perRound,
    targets: {
      cpu_posta_vs_stock_nodelay: verdictMax(ratios.cpu_posta_vs_stock_nodelay, TARGETS.cpuVsNodelay),
      posta_vs_stock_nodelay: verdictMin(ratios.posta_vs_stock_nodelay, TARGETS.vsNodelay),
    },
  }
}

const verdictMin = (v: number | null | undefined, target: number) => (v === null || v === undefined ? 'n/a' : v >= target ? 'MET' : 'MISSED')
const verdictMax = (v: number | null | undefined, target: number) => (v === null || v === undefined ? 'n/a' : v <= target ? 'MET' : 'MISSED')

// ---------- memory per idle connection ----------

interface IdleResult {
  config: ConfigName
  sessions: number
  /** sessions that got 235 to AUTH and were still open when the second RSS was read */
  open_at_measurement: number
  source_addresses: number
  rss_before_mib: number
  rss_after_mib: number
  mib_per_1000_sessions: number
  kib_per_session: number
  open_seconds: number
}

/**
 * `sessions` idle authenticated sessions against one Haraka: each connects, EHLO, STARTTLS, EHLO, AUTH PLAIN (235),
 * then sends nothing. Haraka's VmRSS before (after one session has logged in and left, so TLS and AUTH code are
 * loaded) and after all are open (and a 2-s settle); the difference per session. The sessions come from
 * CONNS_PER_SOURCE per loopback address (127.0.1.x): posta-limits allows 50 open connections per client address.
 * Successful logins are not rate-limited by posta-auth (its limits count failures); after the first, the AUTH cache
 * answers without scrypt, as for any pooled client.
 */
async function idleBench(config: ConfigName, sessions: number, sink: FastSink): Promise<IdleResult> {
  console.log(`\n== idle sessions: ${config}, ${sessions} authenticated sessions left open`)
  const redis = await testRedis()
  const closeRedis = track(`redis idle ${config}`, () => redis.close(), () => redis.server && killPid(redis.server.process))
  const clients: SmtpClient[] = []
  try {
    const { haraka, creds } = await startConfig(config, redis, sink, true)
    const untrack = track(`haraka idle ${config}`, () => haraka.stop(), () => killPid(haraka.process))
    try {
      const pid = haraka.process.pid!
      const auth = `AUTH PLAIN ${plainResponse(creds.user, creds.pass)}`
      const open = async (i: number) => {
        const cl = await SmtpClient.connect({ port: haraka.submissionPort, localAddress: clientSource(Math.floor(i / CONNS_PER_SOURCE)), timeoutMs: 30000 })
        clients.push(cl)
        for (const [line, code] of [['EHLO bench.test', 250], ['STARTTLS', 220], ['EHLO bench.test', 250], [auth, 235]] as const) {
          const r = line === 'STARTTLS' ? await cl.starttls() : await cl.send(line)
          if (r.code !== code) throw new Error(`session ${i}: ${line.startsWith('AUTH') ? 'AUTH PLAIN' : line} answered ${r.raw}`)
        }
      }
      // one session first, closed again: the first AUTH (scrypt, then cached) and TLS's first handshake are not counted
      await open(0)
      await clients.pop()!.close()
      const gcThenRss = async () => {
        haraka.process.kill('SIGUSR2')
        await sleep(1000)
        return readStatusKb(pid)
      }
      const before = await gcThenRss()
      if (!before) throw new Error(`Haraka (${config}) is gone`)
      const t0 = performance.now()
      let next = 0
      await Promise.all(Array.from({ length: 20 }, async () => {
        while (next < sessions) await open(next++)
      }))
      const openS = (performance.now() - t0) / 1000
      await sleep(1000)
      const after = await gcThenRss()
      if (!after) throw new Error(`Haraka (${config}) is gone`)
      const stillOpen = clients.filter((cl) => !cl.closed).length
      if (stillOpen !== sessions) throw new Error(`${sessions - stillOpen} of ${sessions} idle sessions were closed by Haraka before the measurement`)
      const diffKb = after.rss - before.rss
      const r: IdleResult = {
        config, sessions, open_at_measurement: stillOpen, source_addresses: Math.ceil(sessions / CONNS_PER_SOURCE),
        rss_before_mib: round(before.rss / 1024, 1), rss_after_mib: round(after.rss / 1024, 1),
        mib_per_1000_sessions: round(((diffKb / 1024) * 1000) / sessions, 1), kib_per_session: round(diffKb / sessions, 1),
        open_seconds: round(openS, 2),
      }
      console.log(`   ${sessions} sessions open in ${r.open_seconds} s from ${r.source_addresses} addresses; Haraka RSS ${r.rss_before_mib} -> ${r.rss_after_mib} MiB: ` +
        `${r.mib_per_1000_sessions} MiB per 1,000 sessions, ${r.kib_per_session} KiB per session`)
      return r
    } finally {
      await Promise.all(clients.map((cl) => cl.close()))
      await untrack()
      fs.rmSync(haraka.dir, { recursive: true, force: true })
    }
  } finally {
    await closeRedis()
  }
}

/** The CRIT/ERROR lines of a Haraka log (what a crash leaves), at most 15. */
/** A failed run keeps the temp dir (Haraka logs) for a look. */
let runFailedForCleanup = false

/** One `quota latency` line of posta-quota (one stats_interval window). */
interface QuotaWindow {
  reserve_n: number
  reserve_p50_ms: number
  reserve_p99_ms: number
  commit_n: number
  commit_p50_ms: number
  commit_p99_ms: number
}

/** Each run's quota windows, for the summary over all rounds (kept out of the JSON runs). */
const quotaWindowsOf = new WeakMap<RunResult, QuotaWindow[]>()

/** The median (the mean of the two middle values for an even count). */
function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b)
  const m = (s.length - 1) / 2
  return round((s[Math.floor(m)] + s[Math.ceil(m)]) / 2, 3)
}

/** The quota figures over some windows: median of the p50s, max of the p99s (the plugin's windows, not re-weighed). */
function quotaSummary(windows: QuotaWindow[]) {
  if (!windows.length) return null
  return {
    reserve_p50_ms: median(windows.map((w) => w.reserve_p50_ms)),
    reserve_p99_ms: Math.max(...windows.map((w) => w.reserve_p99_ms)),
    commit_p50_ms: median(windows.map((w) => w.commit_p50_ms)),
    commit_p99_ms: Math.max(...windows.map((w) => w.commit_p99_ms)),
    reservations: windows.reduce((a, w) => a + w.reserve_n, 0),
    commits: windows.reduce((a, w) => a + w.commit_n, 0),
    windows: windows.length,
  }
}

/** The quota plugin's `quota latency` lines in a piece of Haraka's log. */
function quotaLatency(log: string): { windows: QuotaWindow[]; summary: Partial<RunResult> } {
  const windows = [...log.matchAll(/quota latency .*?reserve_n=(\d+) reserve_p50_ms=([\d.]+) reserve_p99_ms=([\d.]+) commit_n=(\d+) commit_p50_ms=([\d.]+) commit_p99_ms=([\d.]+)/g)].map(
    (m): QuotaWindow => ({
      reserve_n: Number(m[1]), reserve_p50_ms: Number(m[2]), reserve_p99_ms: Number(m[3]),
      commit_n: Number(m[4]), commit_p50_ms: Number(m[5]), commit_p99_ms: Number(m[6]),
    }),
  )
  const s = quotaSummary(windows)
  if (!s) return { windows, summary: {} }
  return {
    windows,
    summary: {
      quota_reserve_p50_ms: s.reserve_p50_ms, quota_reserve_p99_ms: s.reserve_p99_ms,
      quota_commit_p50_ms: s.commit_p50_ms, quota_commit_p99_ms: s.commit_p99_ms,
      quota_samples: s.reservations, quota_windows: s.windows,
    },
  }
}

const STATS_FLUSH_MS = 1250
/** A run is quiet when everything else on the machine used at most this % of one core during it. */
const QUIET_OTHERS = 10
const quotaOn = (config: ConfigName) => config.startsWith('posta') && config !== 'posta-noquota'
/** Haraka's nodes in posta-nodes2 (smtp.ini nodes=): the box has 2 cores. */
const NODES2 = 2
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

// ---------- the delivery ledger, in process ----------

interface LedgerPhase {
  calls: number
  concurrency: number
  seconds: number
  calls_per_s: number
  /** wall time per call: seconds / calls */
  us_per_call: number
  p50_us: number
  p99_us: number
  max_us: number
  /** this process's CPU (the ledger code, ioredis, JSON) and redis-server's, per call */
  client_cpu_us_per_call: number
  redis_cpu_us_per_call: number | null
}

interface LedgerResult {
  attempt: Attempt
  sequential: LedgerPhase
  parallel: LedgerPhase
  /** one PING at a time on the same client: the round-trip floor of a sequential call */
  ping_p50_us: number
  /** lib/period.ts dayOf(), called once per recordAttempt (Intl formatToParts) */
  day_of_us: number
  redis_commands_per_call: number
}

/**
 * recordAttempt as posta-outbound calls it once per delivery result: a hot-path client (auto-pipelining, like
 * Haraka's), a delivered attempt of a 2.4 KB one-recipient message from a pool IP, tenant and 40 destination
 * domains; after a warm-up that fills the tenant's recent list to its cap (steady state: every call trims it).
 */
async function ledgerBench(n: number, c: number): Promise<LedgerResult> {
  console.log(`\n== ledger: ${n} recordAttempt calls sequential, then ${n} at ${c} in parallel (in this process)`)
  const redis = await testRedis()
  const closeRedis = track('redis ledger', () => redis.close(), () => redis.server && killPid(redis.server.process))
  const client = connectHotPath(redis.url)
  client.on('error', () => {})
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve)
      setTimeout(() => reject(new Error('ledger: Redis not ready after 5 s')), 5000).unref()
    })
    const redisPid = redis.server?.process.pid
    const tenant = uniqueName('bench-ledger')
    let k = 0
    const attempt = (): Attempt => {
      const i = k++
      return {
        at: Date.now(),
        tenant,
        tx: `${randomUUID().toUpperCase()}.${1 + (i % 9)}.1`,
        ip: POOL5[i % POOL5.length],
        domain: `d${i % 40}.example.com`,
        mx: `mx${i % 2}.d${i % 40}.example.com`,
        result: 'delivered',
        code: '250 2.0.0',
        response: `250 2.0.0 Ok: queued as ${randomUUID().slice(0, 12).toUpperCase()}`,
        size: 2433,
        rcpts: 1,
      }
    }
    const opts = { ...DEFAULT_LEDGER }
    for (let i = 0; i < Math.max(300, opts.recentMax + 50); i++) await recordAttempt(client, attempt(), opts)

    const phase = async (calls: number, conc: number): Promise<LedgerPhase> => {
      const lat: number[] = []
      let next = 0
      const cpu0 = process.cpuUsage()
      const r0 = redisPid ? cpuMs(redisPid) : NaN
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (next < calls) {
            next++
            const s = performance.now()
            await recordAttempt(client, attempt(), opts)
            lat.push(performance.now() - s)
          }
        }),
      )
      const seconds = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      const redisMs = redisPid ? cpuMs(redisPid) - r0 : NaN
      lat.sort((a, b) => a - b)
      return {
        calls,
        concurrency: conc,
        seconds: round(seconds, 3),
        calls_per_s: round(calls / seconds, 0),
        us_per_call: round((seconds * 1e6) / calls, 1),
        p50_us: round(percentile(lat, 0.5) * 1000, 1),
        p99_us: round(percentile(lat, 0.99) * 1000, 1),
        max_us: round(lat[lat.length - 1] * 1000, 1),
        client_cpu_us_per_call: round((cpu.user + cpu.system) / calls, 1),
        // USER_HZ ticks: 10 ms resolution, fine over thousands of calls
        redis_cpu_us_per_call: Number.isFinite(redisMs) ? round((redisMs * 1000) / calls, 1) : null,
      }
    }
    // the round-trip floor first, on the same warmed-up client
    const pings: number[] = []
    for (let i = 0; i < 1000; i++) {
      const s = performance.now()
      await client.ping()
      pings.push(performance.now() - s)
    }
    pings.sort((a, b) => a - b)
    const sequential = await phase(n, 1)
    const parallel = await phase(n, c)

    const d0 = performance.now()
    const dayN = 20000
    for (let i = 0; i < dayN; i++) dayOf(new Date(Date.now() + i), opts.timeZone)
    const dayOfUs = ((performance.now() - d0) * 1000) / dayN

    // the commands of one call, as recordAttempt sends them (lib/ledger.ts): two scripts, sent together, one per
    // hash tag: ledger_ip (the IP's hour hash: 4 HINCRBY, EXPIRE) and ledger_tenant (the day's HINCRBY and EXPIRE NX,
    // the recent list's ZADD, two trims and EXPIRE, HSETNX of the domain); the pool IP's last use (HSET) at most once
    // a second per IP; a tenant's first attempt to a domain adds one HINCRBY in a second round trip
    const commands = 2
    const result: LedgerResult = {
      attempt: attempt(),
      sequential,
      parallel,
      ping_p50_us: round(percentile(pings, 0.5) * 1000, 1),
      day_of_us: round(dayOfUs, 2),
      redis_commands_per_call: commands,
    }
    for (const [name, ph] of [['sequential', sequential], [`${c} in parallel`, parallel]] as const) {
      console.log(
        `   ${name}: ${ph.calls} calls in ${ph.seconds} s = ${ph.calls_per_s} calls/s, ${ph.us_per_call} µs/call; ` +
          `latency p50 ${ph.p50_us} µs, p99 ${ph.p99_us} µs, max ${ph.max_us} µs; CPU per call: this process ${ph.client_cpu_us_per_call} µs, redis-server ${ph.redis_cpu_us_per_call ?? 'n/a'} µs`,
      )
    }
    console.log(`   for scale: PING p50 ${result.ping_p50_us} µs on the same client; dayOf() ${result.day_of_us} µs per call; ${commands} Redis script calls per recordAttempt (ledger_ip, ledger_tenant), sent together`)
    return result
  } finally {
    client.disconnect()
    await closeRedis()
  }
}

function crashLines(log: string): string {
  return log.split('\n').filter((l) => /\[(CRIT|ERROR|EMERG)\]/.test(l)).slice(0, 15).join('\n')
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function pad(cells: string[][]): string {
  const w = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)))
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n')
}

async function main(): Promise<number> {
  const benchT0 = performance.now()
  const n = intEnv('BENCH_N', 2000)
  const sizes = listEnv('BENCH_SIZES', [2048, 102400])
  const cs = listEnv('BENCH_C', [10, 50])
  // the first cell (first size, first C) is the one every section below reads; the others run MATRIX_CONFIGS
  const size = sizes[0]
  const c = cs[0]
  const matrixConfigs = configsFromEnv('BENCH_MATRIX_CONFIGS', MATRIX_CONFIGS)
  const matrixN = intEnv('BENCH_MATRIX_N', 1000)
  const quotaC1N = intEnv('BENCH_QUOTA_C1_N', 300, 0)
  const idleN = intEnv('BENCH_IDLE', 1000, 0)
  const cells: Cell[] = sizes.flatMap((sz) => cs.map((cc) => ({ size: sz, c: cc })))
  cells.forEach((cell, i) => {
    cell.n = i === 0 ? n : matrixN
    cell.configs = i === 0 ? configsFromEnv() : matrixConfigs
  })
  const warmup = intEnv('BENCH_WARMUP', 50, 0)
  const keep = process.env.BENCH_KEEP === '1'
  const rounds = intEnv('BENCH_ROUNDS', 3)
  const prime = process.env.BENCH_PRIME !== '0' && warmup > 0
  const ledgerN = intEnv('BENCH_LEDGER_N', 5000, 0)
  const ledgerC = intEnv('BENCH_LEDGER_C', 50)
  const harakaVersion = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'node_modules', 'Haraka', 'package.json'), 'utf8')) as { version: string }).version
  const machine = {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    mem_gib: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    haraka: harakaVersion,
    platform: `${os.platform()} ${os.release()}`,
  }
  console.log(`Posta submission benchmark: N=${n} C=${c} warm-up=${warmup}${prime ? ' (first message alone)' : ''} rounds=${rounds}, ${size}-byte text body, one recipient per message`)
  console.log(`matrix (BENCH_SIZES x BENCH_C): ${cells.map((x) => `${x.size} B at C=${x.c}: N=${x.n}, ${x.configs!.join(', ')}`).join('; ')}`)
  console.log(`then: ledger ${ledgerN ? `${ledgerN} calls` : 'skipped'}; quota latency at C=1 ${quotaC1N ? `(posta, N=${quotaC1N})` : 'skipped'}; idle sessions ${idleN ? `${idleN} (posta, stock+nodelay)` : 'skipped'}`)
  const postaPlugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  console.log(`posta plugins (config/plugins): ${postaPlugins.join(', ')}`)
  const loadAtStart = os.loadavg()
  console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (other processes on the machine skew every figure)`)
  console.log(`machine: ${machine.cpus} CPU(s) (${machine.cpu_model}), ${machine.mem_gib} GiB, node ${machine.node}, Haraka ${machine.haraka}, ${machine.platform}`)

  // Everything this run writes (Haraka dirs with their queues, Redis dirs, the test TLS pair) goes into a private
  // temp dir: os.tmpdir() follows TMPDIR, and a cleanup of /tmp/posta-haraka-* by anything else on the machine
  // cannot pull a queue from under a running Haraka.
  // Not named posta-*: a cleanup of /tmp/posta-* by another job on the machine removed it mid-run once (every run
  // after that failed with ENOENT).
  const ownTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-submit-'))
  process.env.TMPDIR = ownTmp
  process.env.POSTA_KEEP_TEST_DIRS = '1' // HarakaNode.stop() leaves its dir: the benchmark removes it, or keeps a failed run's log
  track('temp dir', async () => {
    if (!keep && !runFailedForCleanup) fs.rmSync(ownTmp, { recursive: true, force: true })
    else console.log(`temp dir kept: ${ownTmp}`)
  }, () => {})
  const sink = await startFastSink()
  track('fast sink', () => sink.close(), () => {})
  console.log(`fast sink 127.0.0.1:${sink.port}; temp dir ${ownTmp}`)

  let runFailed = false
  const failed = (what: string, err: unknown) => {
    runFailed = true
    runFailedForCleanup = true
    console.error(`   ${what} FAILED: ${(err as Error).message}`)
  }
  // cell by cell, the rounds of a cell interleave its configurations (the runs a per-round ratio pairs are close in time)
  for (const [ci, cell] of cells.entries()) {
    cell.runs = []
    for (let round_ = 1; round_ <= rounds; round_++) {
      console.log(`\n### cell ${ci + 1}/${cells.length} (${cell.size} B, C=${cell.c}, N=${cell.n})${rounds > 1 ? `, round ${round_}/${rounds}` : ''}`)
      for (const config of cell.configs!) {
        try {
          const r = await runConfig(config, { n: cell.n!, c: cell.c, size: cell.size, warmup, prime, keep }, sink)
          r.round = round_ // the same object: quotaWindowsOf is keyed by it
          cell.runs.push(r)
        } catch (err) {
          failed(`${config} (${cell.size} B, C=${cell.c})`, err)
        }
      }
    }
  }
  const all: RunResult[] = cells[0].runs!
  const configs = cells[0].configs!
  // the quota scripts' latency at C=1: one run of posta, one message at a time (no queueing in Haraka's event loop)
  let quotaC1: RunResult | null = null
  if (quotaC1N > 0) {
    console.log(`\n### quota latency at C=1 (posta, ${size} B, N=${quotaC1N})`)
    try {
      quotaC1 = await runConfig('posta', { n: quotaC1N, c: 1, size, warmup, prime, keep }, sink)
    } catch (err) {
      failed('posta at C=1', err)
    }
  }
  const idle: IdleResult[] = []
  if (idleN > 0) {
    for (const config of ['posta', 'stock+nodelay'] as const) {
      try {
        idle.push(await idleBench(config, idleN, sink))
      } catch (err) {
        failed(`idle sessions (${config})`, err)
      }
    }
  }
  let ledger: LedgerResult | null = null
  if (ledgerN > 0) {
    try {
      ledger = await ledgerBench(ledgerN, ledgerC)
    } catch (err) {
      runFailed = true
      runFailedForCleanup = true
      console.error(`   ledger FAILED: ${(err as Error).message}`)
    }
  }
  await cleanupAll()

  // per configuration: the run with the median submitted rate (rounds interleave the configurations, so
  // load from other processes on the machine hits all of them alike)
  const results = medianRuns(all, configs)
  const fmtX = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : `${v}x`)
  const by = (name: ConfigName) => results.find((r) => r.config === name)
  console.log('\npeak RSS: max VmRSS polled every 100 ms during the measured run; VmHWM: since Haraka started (warm-up AUTH included)')
  console.log('others %: CPU of every other process on the machine during the measured run, in % of one core (of ' + machine.cpus * 100 + '): the noise')
  const header = ['config', 'submitted msg/s', 'end-to-end msg/s', 'p50 ms', 'p99 ms', 'failures', 'peak RSS MiB', 'VmHWM MiB', 'Haraka CPU ms/msg', 'Redis CPU ms/msg', 'others %']
  const row = (r: RunResult, label: string) => [
    label, r.submit_msgs_per_s.toFixed(1), r.e2e_msgs_per_s.toFixed(1), r.p50_ms.toFixed(1), r.p99_ms.toFixed(1),
    String(r.failures), r.peak_rss_mib.toFixed(1), r.hwm_rss_mib.toFixed(1), r.haraka_cpu_ms_per_msg.toFixed(2),
    r.redis_cpu_ms_per_msg === null ? 'n/a' : r.redis_cpu_ms_per_msg.toFixed(2),
    r.others_cpu_percent === null ? 'n/a' : r.others_cpu_percent.toFixed(0),
  ]
  const cellSummaries = cells.map(cellSummary)
  for (const [ci, cell] of cells.entries()) {
    const cs_ = cellSummaries[ci]
    const what = `${cell.size} B, N=${cell.n}, C=${cell.c}`
    if (rounds > 1) {
      console.log(`All runs (${what}):`)
      console.log(pad([header, ...(cell.runs ?? []).map((r) => row(r, `${r.config} #${r.round}`))]))
      console.log('')
    }
    console.log(`Results (${what}, ${rounds > 1 ? `median of ${rounds} rounds, ` : ''}${machine.cpus} CPU(s), node ${machine.node}, Haraka ${machine.haraka})`)
    console.log(pad([header, ...cs_.results.map((r) => row(r, r.config))]))
    console.log(`  Haraka CPU ms/msg, posta / stock+nodelay, per round: ${cs_.ratios_per_round.cpu_posta_vs_stock_nodelay.map((x) => `${x}x`).join(', ') || 'n/a'}; ` +
      `their median ${fmtX(cs_.ratios.cpu_posta_vs_stock_nodelay)}  (target <= ${TARGETS.cpuVsNodelay}x)   ${cs_.targets.cpu_posta_vs_stock_nodelay}`)
    console.log(`  submitted msg/s, posta / stock+nodelay = ${fmtX(cs_.ratios.posta_vs_stock_nodelay)} (median runs; per round ${cs_.ratios_per_round.posta_vs_stock_nodelay.map((x) => `${x}x`).join(', ') || 'n/a'})  ` +
      `(target >= ${TARGETS.vsNodelay}x)   ${cs_.targets.posta_vs_stock_nodelay}   [end-to-end ${fmtX(cs_.ratios.posta_vs_stock_nodelay_e2e)}]\n`)
  }

  const p = by('posta')
  const s = by('stock')
  const sn = by('stock+nodelay')
  const ratios: Record<string, number | null> = {
    posta_vs_stock: p && s ? round(p.submit_msgs_per_s / s.submit_msgs_per_s, 2) : null,
    posta_vs_stock_nodelay: p && sn ? round(p.submit_msgs_per_s / sn.submit_msgs_per_s, 2) : null,
    posta_vs_stock_e2e: p && s ? round(p.e2e_msgs_per_s / s.e2e_msgs_per_s, 2) : null,
    posta_vs_stock_nodelay_e2e: p && sn ? round(p.e2e_msgs_per_s / sn.e2e_msgs_per_s, 2) : null,
  }
  const verdict = verdictMin
  const targets = {
    posta_vs_stock: verdict(ratios.posta_vs_stock, TARGETS.vsStock),
    posta_vs_stock_nodelay: verdict(ratios.posta_vs_stock_nodelay, TARGETS.vsNodelay),
    posta_msgs_per_s: verdict(p?.submit_msgs_per_s, TARGETS.postaMsgsPerS),
  }
  const first = cellSummaries[0]
  Object.assign(ratios, { cpu_posta_vs_stock_nodelay: first.ratios.cpu_posta_vs_stock_nodelay })
  console.log('\nTargets:')
  for (const x of cellSummaries) {
    console.log(`  Haraka CPU per message: posta / stock+nodelay <= ${TARGETS.cpuVsNodelay}x (median of per-round ratios): ${x.size} B, C=${x.c}: ` +
      `${fmtX(x.ratios.cpu_posta_vs_stock_nodelay)} [per round: ${x.ratios_per_round.cpu_posta_vs_stock_nodelay.map((v) => `${v}x`).join(', ') || 'n/a'}; ` +
      `${x.haraka_cpu_ms_per_msg.posta ?? 'n/a'} vs ${x.haraka_cpu_ms_per_msg.stock_nodelay ?? 'n/a'} ms/msg]   ${x.targets.cpu_posta_vs_stock_nodelay}`)
  }
  for (const x of cellSummaries) {
    console.log(`  Submission throughput posta / stock+nodelay >= ${TARGETS.vsNodelay}x: ${x.size} B, C=${x.c}: ${fmtX(x.ratios.posta_vs_stock_nodelay)}   ${x.targets.posta_vs_stock_nodelay}`)
  }
  console.log(`Earlier targets, ${size} B, C=${c} (submitted msg/s):`)
  console.log(`  posta / stock          = ${fmtX(ratios.posta_vs_stock)}  (target >= ${TARGETS.vsStock}x)   ${targets.posta_vs_stock}   [end-to-end ${fmtX(ratios.posta_vs_stock_e2e)}]`)
  console.log(`  posta / stock+nodelay  = ${fmtX(ratios.posta_vs_stock_nodelay)}  (target >= ${TARGETS.vsNodelay}x)   ${targets.posta_vs_stock_nodelay}   [end-to-end ${fmtX(ratios.posta_vs_stock_nodelay_e2e)}]`)
  console.log(`  posta into the durable outbound queue = ${p ? p.submit_msgs_per_s : 'n/a'} msg/s  (target >= ${TARGETS.postaMsgsPerS})   ${targets.posta_msgs_per_s}`)

  const nq = by('posta-noquota')
  const p5 = by('posta-pool5')
  const runsOf = (name: ConfigName) => all.filter((r) => r.config === name)
  /** per round, a / b of the same round (the configurations of a round run minutes apart, under similar load) */
  const paired = (a: ConfigName, b: ConfigName, f: (r: RunResult) => number) =>
    runsOf(a).flatMap((ra) => {
      const rb = runsOf(b).find((r) => r.round === ra.round)
      return rb ? [round(f(ra) / f(rb), 2)] : []
    })
  ratios.posta_vs_noquota = p && nq ? round(p.submit_msgs_per_s / nq.submit_msgs_per_s, 2) : null
  ratios.posta_vs_noquota_e2e = p && nq ? round(p.e2e_msgs_per_s / nq.e2e_msgs_per_s, 2) : null
  // the pool is judged end to end: the median end-to-end rate of each (the median run above is by submitted rate)
  const e2eMedianOf = (name: ConfigName) => (runsOf(name).length ? median(runsOf(name).map((r) => r.e2e_msgs_per_s)) : null)
  const e2eP = e2eMedianOf('posta')
  const e2eP5 = e2eMedianOf('posta-pool5')
  ratios.pool5_vs_one_address_e2e = e2eP && e2eP5 ? round(e2eP5 / e2eP, 2) : null
  ratios.pool5_vs_one_address_submit = p && p5 ? round(p5.submit_msgs_per_s / p.submit_msgs_per_s, 2) : null
  // The same ratios over the quiet runs only: runs during which the rest of the machine used at most QUIET_OTHERS %
  // of a core (on a shared machine, the slow runs are the ones another job ran beside).
  const quietRuns = (name: ConfigName) => runsOf(name).filter((r) => r.others_cpu_percent !== null && r.others_cpu_percent <= QUIET_OTHERS)
  const quietRatio = (a: ConfigName, b: ConfigName, f: (r: RunResult) => number) => {
    const qa = quietRuns(a)
    const qb = quietRuns(b)
    if (!qa.length || !qb.length) return null
    return { ratio: round(median(qa.map(f)) / median(qb.map(f)), 2), [a]: median(qa.map(f)), [b]: median(qb.map(f)), runs: { [a]: qa.length, [b]: qb.length } }
  }
  const quiet = {
    posta_vs_noquota: quietRatio('posta', 'posta-noquota', (r) => r.submit_msgs_per_s),
    pool5_vs_one_address_e2e: quietRatio('posta-pool5', 'posta', (r) => r.e2e_msgs_per_s),
  }
  const quietLine = (q: ReturnType<typeof quietRatio>, a: ConfigName, b: ConfigName, target: number) =>
    q
      ? `    quiet runs only (the rest of the machine <= ${QUIET_OTHERS}% of a core): ${a} ${q[a]} (${q.runs[a]} run(s)) / ${b} ${q[b]} (${q.runs[b]}) = ${q.ratio}x   ${verdict(q.ratio, target)}`
      : `    quiet runs only: n/a (no run of ${a} or ${b} with the rest of the machine <= ${QUIET_OTHERS}% of a core)`
  const perRound = {
    cpu_posta_vs_stock_nodelay: first.ratios_per_round.cpu_posta_vs_stock_nodelay,
    posta_vs_noquota: paired('posta', 'posta-noquota', (r) => r.submit_msgs_per_s),
    pool5_vs_one_address_e2e: paired('posta-pool5', 'posta', (r) => r.e2e_msgs_per_s),
  }
  const fromPoolAll = runsOf('posta-pool5').map((r) => {
    const total = Object.values(r.delivered_from).reduce((a, b) => a + b, 0)
    const pooled = POOL5.reduce((a, ip) => a + (r.delivered_from[ip] ?? 0), 0)
    return { round: r.round, pooled, total, ips_used: POOL5.filter((ip) => (r.delivered_from[ip] ?? 0) > 0).length }
  })
  const poolCheck = fromPoolAll.length === 0 ? 'n/a' : fromPoolAll.every((x) => x.total > 0 && x.pooled === x.total && x.ips_used === POOL5.length) ? 'OK' : 'FAILED'
  Object.assign(targets, {
    quota_cost: verdict(ratios.posta_vs_noquota, TARGETS.quotaRatio),
    pool_cost: verdict(ratios.pool5_vs_one_address_e2e, TARGETS.poolRatio),
    pool_deliveries_from_pool: poolCheck,
  })
  const t = targets as Record<string, string>
  const list = (v: number[]) => (v.length ? ` [per round: ${v.map((x) => `${x}x`).join(', ')}; their median ${median(v)}x]` : '')

  /**
   * CPU per message of a against b, Haraka and redis-server: medians over all runs, the per-round differences, and
   * b's own spread over its runs. A difference counts as meaningful when it is larger than that spread and every
   * round agrees on its sign (on a shared machine CPU per message moves by 10 % from run to run).
   */
  function cpuCompare(a: ConfigName, b: ConfigName) {
    if (!runsOf(a).length || !runsOf(b).length) return null
    const one = (f: (r: RunResult) => number | null) => {
      const va = runsOf(a).map(f).filter((x): x is number => x !== null)
      const vb = runsOf(b).map(f).filter((x): x is number => x !== null)
      if (!va.length || !vb.length) return null
      const perRound = runsOf(a).flatMap((ra) => {
        const rb = runsOf(b).find((r) => r.round === ra.round)
        const x = f(ra)
        const y = rb ? f(rb) : null
        return x !== null && y !== null ? [round(x - y, 3)] : []
      })
      const diff = round(median(va) - median(vb), 3)
      const spread = vb.length > 1 ? round(Math.max(...vb) - Math.min(...vb), 3) : null
      const agree = perRound.length > 1 && (perRound.every((d) => d > 0) || perRound.every((d) => d < 0))
      return {
        [a]: median(va), [b]: median(vb), diff_ms_per_msg: diff, diff_percent: round((100 * diff) / median(vb), 1), per_round: perRound,
        spread_of_b: spread, meaningful: spread !== null && Math.abs(diff) > spread && agree,
      }
    }
    return { a, b, haraka: one((r) => r.haraka_cpu_ms_per_msg), redis: one((r) => r.redis_cpu_ms_per_msg) }
  }
  function cpuLine(x: NonNullable<ReturnType<typeof cpuCompare>>): string {
    const sign = (d: number) => `${d >= 0 ? '+' : ''}${d}`
    const part = (what: string, y: Record<string, unknown> | null) => {
      if (!y) return `${what} n/a`
      const d = y as { diff_ms_per_msg: number; diff_percent: number; per_round: number[]; spread_of_b: number | null; meaningful: boolean }
      return `${what} ${y[x.a]} vs ${y[x.b]} ms/msg = ${sign(d.diff_ms_per_msg)} ms (${sign(d.diff_percent)}%; per round ${d.per_round.map(sign).join(', ') || 'n/a'}; ` +
        `${x.b}'s own spread ${d.spread_of_b ?? 'n/a'} ms: ${d.meaningful ? 'larger than the noise' : 'within the noise'})`
    }
    return `CPU per message, ${x.a} vs ${x.b} (medians over the runs): ${part('Haraka', x.haraka)}; ${part('redis-server', x.redis)}`
  }

  // the quota scripts as the plugin measured them, over every round of posta (one address, the shipped setup)
  const quotaAll = quotaSummary(runsOf('posta').flatMap((r) => quotaWindowsOf.get(r) ?? []))
  const quotaPool5 = quotaSummary(runsOf('posta-pool5').flatMap((r) => quotaWindowsOf.get(r) ?? []))
  console.log('\nQuota cost:')
  console.log(`  posta / posta-noquota, submitted = ${fmtX(ratios.posta_vs_noquota)}  (target >= ${TARGETS.quotaRatio}x: the quota costs at most 5%)   ${t.quota_cost}` +
    `   [end-to-end ${fmtX(ratios.posta_vs_noquota_e2e)}]${list(perRound.posta_vs_noquota)}`)
  if (p && nq) console.log(quietLine(quiet.posta_vs_noquota, 'posta', 'posta-noquota', TARGETS.quotaRatio))
  const cpuQuota = cpuCompare('posta', 'posta-noquota')
  if (cpuQuota) console.log(`  ${cpuLine(cpuQuota)}`)
  if (quotaAll) {
    console.log(`  quota scripts, measured in the plugin (posta-quota.ini stats_interval=1; ${quotaAll.windows} one-second windows, n=${quotaAll.reservations} reservations, ${quotaAll.commits} commits, all rounds of posta):`)
    console.log(`    reserve: median p50 ${quotaAll.reserve_p50_ms} ms, max p99 ${quotaAll.reserve_p99_ms} ms;  commit: median p50 ${quotaAll.commit_p50_ms} ms, max p99 ${quotaAll.commit_p99_ms} ms`)
  } else if (p) console.log('  quota scripts: no "quota latency" line in the measured phase of posta (is posta-quota in config/plugins?)')
  if (quotaPool5) console.log(`    (posta-pool5, ${quotaPool5.windows} windows, n=${quotaPool5.reservations}: reserve p50 ${quotaPool5.reserve_p50_ms} / p99 ${quotaPool5.reserve_p99_ms} ms, commit p50 ${quotaPool5.commit_p50_ms} / p99 ${quotaPool5.commit_p99_ms} ms)`)
  const quotaC1Summary = quotaC1 ? quotaSummary(quotaWindowsOf.get(quotaC1) ?? []) : null
  if (quotaC1) {
    console.log(quotaC1Summary
      ? `    at C=1 (one run of posta, N=${quotaC1.n}, ${quotaC1Summary.windows} windows, n=${quotaC1Summary.reservations}): reserve p50 ${quotaC1Summary.reserve_p50_ms} / p99 ${quotaC1Summary.reserve_p99_ms} ms, commit p50 ${quotaC1Summary.commit_p50_ms} / p99 ${quotaC1Summary.commit_p99_ms} ms`
      : '    at C=1: no "quota latency" line in the measured phase')
  }
  Object.assign(targets, {
    reserve_p99: verdictMax(quotaAll?.reserve_p99_ms, TARGETS.reserveP99Ms),
    reserve_p99_c1: verdictMax(quotaC1Summary?.reserve_p99_ms, TARGETS.reserveP99Ms),
  })
  console.log(`  reservation p99 < ${TARGETS.reserveP99Ms} ms (max of the one-second p99s): at C=${c} ${quotaAll ? `${quotaAll.reserve_p99_ms} ms` : 'n/a'}   ${t.reserve_p99}; ` +
    `at C=1 ${quotaC1Summary ? `${quotaC1Summary.reserve_p99_ms} ms` : 'n/a'}   ${t.reserve_p99_c1}` +
    ' (the plugin\'s figure includes the wait in Haraka\'s event loop: on a saturated box it measures the box)')

  // Redis Cluster against one redis-server: the quota scripts' latency and the rate, posta's plugins alike
  const pc = by('posta-cluster')
  const quotaCluster = quotaSummary(runsOf('posta-cluster').flatMap((r) => quotaWindowsOf.get(r) ?? []))
  const redisCluster = pc ? {
    quota_latency: { posta: quotaAll, posta_cluster: quotaCluster },
    reserve_p50_cluster_vs_single: quotaAll && quotaCluster && quotaAll.reserve_p50_ms > 0 ? round(quotaCluster.reserve_p50_ms / quotaAll.reserve_p50_ms, 2) : null,
    submit_cluster_vs_single: p ? round(pc.submit_msgs_per_s / p.submit_msgs_per_s, 2) : null,
    submit_per_round: paired('posta-cluster', 'posta', (r) => r.submit_msgs_per_s),
    redis_cpu_ms_per_msg: { posta: p?.redis_cpu_ms_per_msg ?? null, posta_cluster: pc.redis_cpu_ms_per_msg },
  } : null
  if (redisCluster) {
    console.log('\nRedis Cluster (posta-cluster: a 3-master Redis Cluster on loopback) against one redis-server (posta):')
    const q = (x: ReturnType<typeof quotaSummary>) => (x ? `reserve p50 ${x.reserve_p50_ms} / p99 ${x.reserve_p99_ms} ms, commit p50 ${x.commit_p50_ms} / p99 ${x.commit_p99_ms} ms (${x.windows} windows, n=${x.reservations})` : 'n/a')
    console.log(`  quota scripts: posta-cluster ${q(quotaCluster)}`)
    console.log(`                 posta         ${q(quotaAll)}`)
    console.log(`  reserve p50, Cluster / single = ${fmtX(redisCluster.reserve_p50_cluster_vs_single)}; submitted msg/s posta-cluster / posta = ${fmtX(redisCluster.submit_cluster_vs_single)}${list(redisCluster.submit_per_round)}`)
    console.log(`  Redis CPU ms/msg (the Cluster: its three masters summed): posta-cluster ${redisCluster.redis_cpu_ms_per_msg.posta_cluster ?? 'n/a'}, posta ${p?.redis_cpu_ms_per_msg ?? 'n/a'}`)
  }

  // Haraka's cluster mode: two workers against one process, end to end (each worker has its own outbound queue)
  const pn2 = by('posta-nodes2')
  const e2eN2 = e2eMedianOf('posta-nodes2')
  const e2eP1 = e2eMedianOf('posta')
  const nodes2 = pn2 ? {
    nodes: NODES2,
    e2e_msgs_per_s: { nodes1: e2eP1, nodes2: e2eN2 },
    e2e_nodes2_vs_nodes1: e2eN2 && e2eP1 ? round(e2eN2 / e2eP1, 2) : null,
    e2e_per_round: paired('posta-nodes2', 'posta', (r) => r.e2e_msgs_per_s),
    submit_nodes2_vs_nodes1: p ? round(pn2.submit_msgs_per_s / p.submit_msgs_per_s, 2) : null,
    haraka_cpu_ms_per_msg: { nodes1: p?.haraka_cpu_ms_per_msg ?? null, nodes2: pn2.haraka_cpu_ms_per_msg },
    haraka_processes: pn2.haraka_processes,
  } : null
  if (nodes2) {
    console.log(`\nHaraka cluster mode (posta-nodes2: smtp.ini nodes=${NODES2}, a master and ${NODES2} workers) against one process (posta, nodes=0):`)
    console.log(`  end-to-end msg/s: nodes=${NODES2} ${e2eN2 ?? 'n/a'} / nodes=1 ${e2eP1 ?? 'n/a'} = ${fmtX(nodes2.e2e_nodes2_vs_nodes1)} (medians over the rounds)${list(nodes2.e2e_per_round)}`)
    console.log(`  submitted msg/s: ${fmtX(nodes2.submit_nodes2_vs_nodes1)}; Haraka CPU ms/msg (master and workers summed) ${nodes2.haraka_cpu_ms_per_msg.nodes2} vs ${p?.haraka_cpu_ms_per_msg ?? 'n/a'}; ${machine.cpus} CPU(s) for client, sink, Redis and Haraka together`)
  }

  if (idle.length) {
    console.log(`\nMemory per idle connection (${idleN} sessions: STARTTLS + AUTH PLAIN, then nothing; Haraka VmRSS before and after):`)
    console.log(pad([['config', 'sessions', 'addresses', 'RSS before MiB', 'RSS after MiB', 'MiB / 1,000 sessions', 'KiB / session'],
      ...idle.map((x) => [x.config, String(x.sessions), String(x.source_addresses), String(x.rss_before_mib), String(x.rss_after_mib), String(x.mib_per_1000_sessions), String(x.kib_per_session)])]))
    const ip = idle.find((x) => x.config === 'posta')
    const isn = idle.find((x) => x.config === 'stock+nodelay')
    if (ip && isn) console.log(`  posta - stock+nodelay: ${round(ip.kib_per_session - isn.kib_per_session, 1)} KiB per session`)
  }

  console.log('\nPool cost (end to end: submitted and delivered to the sink):')
  const e2eRuns = (name: ConfigName) => (rounds > 1 ? ` [runs: ${runsOf(name).map((r) => r.e2e_msgs_per_s).join(' / ')}]` : '')
  if (e2eP) console.log(`  posta, one address          ${e2eP} msg/s end to end${e2eRuns('posta')}`)
  if (e2eP5) console.log(`  posta-pool5, 5 IPs active   ${e2eP5} msg/s end to end${e2eRuns('posta-pool5')}`)
  console.log(`  posta-pool5 / posta = ${fmtX(ratios.pool5_vs_one_address_e2e)}  (target >= ${TARGETS.poolRatio}x: a five-IP pool at most 10% slower)   ${t.pool_cost}${list(perRound.pool5_vs_one_address_e2e)}`)
  if (e2eP && e2eP5) console.log(quietLine(quiet.pool5_vs_one_address_e2e, 'posta-pool5', 'posta', TARGETS.poolRatio))
  for (const x of fromPoolAll) {
    const r = runsOf('posta-pool5').find((y) => y.round === x.round)!
    console.log(`  round ${x.round}: ${x.pooled}/${x.total} deliveries came from pool addresses, ${x.ips_used} of ${POOL5.length} IPs used (${POOL5.map((ip) => `${ip.split('.')[3]}: ${r.delivered_from[ip] ?? 0}`).join(', ')})`)
  }
  if (poolCheck === 'FAILED') console.log('  WARNING: some deliveries of posta-pool5 did not come from the pool, or some pool IP was never used: the pool figures measure something else')
  if (p) console.log(`  posta (no pool) delivered from: ${Object.entries(p.delivered_from).map(([ip, k]) => `${ip} ${k}`).join(', ')}`)

  // CPU per message, pool vs one address: meaningful only when it stands out of posta's own run-to-run spread
  const cpuPool = cpuCompare('posta-pool5', 'posta')
  if (cpuPool) {
    console.log(`  ${cpuLine(cpuPool)}`)
    console.log('    Both write the ledger (posta under "default"): this difference is the rotation (pool version GET, sticky SET, resolve, bind), not the ledger.')
  }

  if (ledger) {
    const sq = ledger.sequential
    const pp = ledger.parallel
    console.log('\nLedger write per delivery (recordAttempt in this process, against a private Redis):')
    console.log(`  sequential: p50 ${sq.p50_us} µs, p99 ${sq.p99_us} µs per call, ${sq.calls_per_s} calls/s (${sq.calls} calls; PING p50 ${ledger.ping_p50_us} µs)`)
    console.log(`  ${pp.concurrency} in parallel: ${pp.us_per_call} µs per call (wall / calls), ${pp.calls_per_s} calls/s; latency p50 ${pp.p50_us} µs, p99 ${pp.p99_us} µs`)
    console.log(`  CPU per call: caller ${sq.client_cpu_us_per_call} µs sequential / ${pp.client_cpu_us_per_call} µs parallel; redis-server ${sq.redis_cpu_us_per_call ?? 'n/a'} / ${pp.redis_cpu_us_per_call ?? 'n/a'} µs` +
      (p ? `; one call per delivery: ~${round(pp.client_cpu_us_per_call / 1000 / p.haraka_cpu_ms_per_msg * 100, 1)}% of posta's Haraka CPU per message (${p.haraka_cpu_ms_per_msg} ms), ` +
        `~${round((p.e2e_msgs_per_s * pp.client_cpu_us_per_call) / 1e4, 1)}% of a core at its ${p.e2e_msgs_per_s} msg/s` : ''))
  }

  // issue 14's targets in one place (every figure above; n/a where its configuration or measurement did not run)
  console.log('\nTargets of issue 14 (summary):')
  for (const x of cellSummaries) {
    console.log(`  Haraka CPU per message: posta / stock+nodelay <= ${TARGETS.cpuVsNodelay}x (median of per-round ratios), ${x.size} B, C=${x.c}: ${fmtX(x.ratios.cpu_posta_vs_stock_nodelay)}   ${x.targets.cpu_posta_vs_stock_nodelay}`)
  }
  for (const x of cellSummaries) {
    console.log(`  Submission throughput posta / stock+nodelay >= ${TARGETS.vsNodelay}x, ${x.size} B, C=${x.c}: ${fmtX(x.ratios.posta_vs_stock_nodelay)}   ${x.targets.posta_vs_stock_nodelay}`)
  }
  console.log(`  Quota: posta / posta-noquota >= ${TARGETS.quotaRatio}x (submitted, median runs; ${size} B, C=${c}): ${fmtX(ratios.posta_vs_noquota)}   ${t.quota_cost}${list(perRound.posta_vs_noquota)}`)
  console.log(`  Quota: reservation p99 < ${TARGETS.reserveP99Ms} ms: at C=${c} ${quotaAll ? `p50 ${quotaAll.reserve_p50_ms} / p99 ${quotaAll.reserve_p99_ms} ms` : 'n/a'}   ${t.reserve_p99}; ` +
    `at C=1 ${quotaC1Summary ? `p50 ${quotaC1Summary.reserve_p50_ms} / p99 ${quotaC1Summary.reserve_p99_ms} ms` : 'n/a'}   ${t.reserve_p99_c1}`)

  const anyFailures = [...cells.flatMap((x) => x.runs ?? []), ...(quotaC1 ? [quotaC1] : [])].some((r) => r.failures > 0)
  console.log(`\nload average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log(JSON.stringify({
    bench: 'submit', date: new Date().toISOString(), machine, n, c, size, sizes, concurrencies: cs, matrix_n: matrixN, matrix_configs: matrixConfigs,
    warmup, prime, rounds, posta_plugins: postaPlugins, load_at_start: loadAtStart,
    load_at_end: os.loadavg(), duration_seconds: round((performance.now() - benchT0) / 1000, 1), results, runs: all, ratios, ratios_per_round: perRound, ratios_quiet_runs: quiet, targets,
    cells: cellSummaries,
    quota_latency: { posta: quotaAll, posta_pool5: quotaPool5, posta_c1: quotaC1Summary, posta_cluster: quotaCluster },
    quota_c1_run: quotaC1, redis_cluster: redisCluster, nodes2, idle: idle.length ? { sessions: idleN, per_source_address: CONNS_PER_SOURCE, results: idle } : null,
    pool: { ips: POOL5, active: 5, rounds: fromPoolAll }, cpu: { quota: cpuQuota, pool: cpuPool },
    ledger: ledger ? { n: ledgerN, c: ledgerC, ...ledger } : null, ok: !runFailed && !anyFailures,
  }))
  if (runFailed || anyFailures) {
    console.error('benchmark did not run cleanly: see the failures above')
    return 1
  }
  return 0
}

main()
  .then((code) => {
    process.exitCode = code
    setTimeout(() => process.exit(code), 3000).unref() // a leaked handle must not keep the benchmark alive
  })
  .catch(async (err: Error) => {
    console.error(`benchmark failed: ${err.stack ?? err.message}`)
    await cleanupAll()
    process.exitCode = 1
  })
