// `npm run bench`: submission throughput of Posta against stock Haraka on the same Haraka version.
//
// Three configurations run one after the other, each with its own private Redis, all into one fast SMTP sink:
//   posta          the project as shipped (config/ and plugins), a CLI-made tenant, a static route to the sink
//   stock          stock Haraka: tls, auth/flat_file and a 3-line get_mx plugin routing to the same sink
//   stock+nodelay  stock plus the project's posta-nodelay plugin listed first
// Each one gets a warm-up, then N messages (BENCH_N, default 2000) at concurrency C (BENCH_C, default 10) from a
// nodemailer pool (STARTTLS, AUTH PLAIN). Every message goes through Haraka's durable outbound queue (one file,
// fsync, per message) and is delivered to the sink. It prints a table, the ratios against the targets and a JSON
// line; it exits non-zero only when something fails to run (a run with failed messages included).
//
// With BENCH_ROUNDS=3 (the default) the three configurations run interleaved three times and the table shows the
// median run of each; every run is listed too.
// Environment: BENCH_N, BENCH_C, BENCH_WARMUP (50), BENCH_PRIME (1: the warm-up's first message goes alone;
// 0: the whole warm-up at C, a cold start under concurrency), BENCH_ROUNDS (3), BENCH_CONFIGS (comma list, default all three),
// BENCH_KEEP=1 keeps each Haraka dir (log, queue) under the OS temp dir, REDIS_URL uses an existing Redis.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import nodemailer from 'nodemailer'
import { posta } from '../testkit/cli'
import { startFastSink, type FastSink } from '../testkit/fastsink'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { PROJECT_ROOT } from '../service/haraka-dir'

type ConfigName = 'posta' | 'stock' | 'stock+nodelay' | 'posta-noquota' | 'posta-pool5'
/**
 * posta: the project as shipped, one address (empty pool). stock / stock+nodelay: the baselines.
 * posta-noquota: posta without posta-quota (the quota's cost). posta-pool5: posta with a pool of five loopback
 * IPs, all active (the rotation's and the ledger's cost).
 */
const ALL_CONFIGS: ConfigName[] = ['posta', 'stock', 'stock+nodelay', 'posta-noquota', 'posta-pool5']
const POOL5 = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']

interface Creds {
  user: string
  pass: string
}

interface RunResult {
  config: ConfigName
  n: number
  c: number
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
  client_cpu_percent: number
  sink_connections: number
  haraka_log_errors: number
  /** posta configs: the quota scripts' latency as the plugin measured it (stats_interval=1 lines). */
  quota_reserve_p50_ms?: number
  quota_reserve_p99_ms?: number
  quota_commit_p50_ms?: number
  quota_commit_p99_ms?: number
  quota_samples?: number
  /** posta-pool5: deliveries that arrived from a pool address / all. */
  from_pool?: string
  round?: number
}

interface RunOpts {
  n: number
  c: number
  warmup: number
  prime: boolean
  keep: boolean
}

const TARGETS = { vsStock: 5, vsNodelay: 0.85, postaMsgsPerS: 400 }

function intEnv(name: string, dflt: number, min = 1): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return dflt
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${raw}: expected an integer >= ${min}`)
  return n
}

function configsFromEnv(): ConfigName[] {
  const raw = process.env.BENCH_CONFIGS
  if (!raw) return ALL_CONFIGS
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean)
  for (const c of list) if (!ALL_CONFIGS.includes(c as ConfigName)) throw new Error(`BENCH_CONFIGS: unknown configuration "${c}" (use ${ALL_CONFIGS.join(', ')})`)
  return list as ConfigName[]
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

function rssPoller(pid: number) {
  let peakKb = 0
  let hwmKb = 0
  const sample = () => {
    const s = readStatusKb(pid)
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

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

const BODY = ('x'.repeat(76) + '\r\n').repeat(26) // 2,028 bytes of text, ~2.4 KB on the wire with headers
const RCPT_DOMAIN = 'bench-sink.test'

function makeTransport(port: number, creds: Creds, c: number) {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
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

/** Sends `n` messages with `c` workers; resolves with per-message latencies and timings. */
async function blast(t: Transport, n: number, c: number, tag: string) {
  let next = 0
  let sent = 0
  let failures = 0
  const errors: string[] = []
  const lat: number[] = []
  let lastOk = 0
  const t0 = performance.now()
  async function worker() {
    while (next < n) {
      const i = next++
      const s = performance.now()
      try {
        const info = await t.sendMail({
          from: 'Bench <bench@customer.example>',
          to: `rcpt${i % 100}@${RCPT_DOMAIN}`,
          subject: `${tag} ${i}`,
          text: BODY,
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
  await Promise.all(Array.from({ length: c }, worker))
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

const STOCK_AUTH_INI = '[core]\nmethods=PLAIN,LOGIN\n\n[users]\nbench=benchpass\n'

async function startConfig(config: ConfigName, redis: TestRedis, sink: FastSink): Promise<{ haraka: HarakaNode; creds: Creds }> {
  if (config.startsWith('posta')) {
    const plugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8')
    const quotaIni = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'posta-quota.ini'), 'utf8').replace(/^stats_interval=.*$/m, 'stats_interval=1')
    const haraka = await startHaraka({
      redisUrl: redis.url,
      overrides: {
        'posta-quota.ini': quotaIni,
        ...(config === 'posta-noquota' ? { plugins: plugins.replace(/^posta-quota$/m, '# posta-quota (off for this run)') } : {}),
        ...(config === 'posta-pool5' ? { 'posta-outbound.ini': '[rotation]\nactive=5\n' } : {}),
      },
    })
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
      if (config === 'posta-pool5') for (const ip of POOL5) await cli(['ip', 'add', ip, '--helo', `mta${ip.split('.')[3]}.bench.test`])
      return { haraka, creds: { user: c.login, pass: c.password } }
    } catch (err) {
      await haraka.stop()
      throw err
    }
  }
  const plugins = config === 'stock' ? 'tls\nauth/flat_file\nbench_route\n' : 'posta-nodelay\ntls\nauth/flat_file\nbench_route\n'
  const haraka = await startHaraka({
    redisUrl: redis.url,
    overrides: { plugins, 'auth_flat_file.ini': STOCK_AUTH_INI },
    extraPlugins: { bench_route: stockRoutePlugin(sink.port) },
  })
  return { haraka, creds: { user: 'bench', pass: 'benchpass' } }
}

async function runConfig(config: ConfigName, opts: RunOpts, sink: FastSink): Promise<RunResult> {
  console.log(`\n== ${config}: starting Redis and Haraka`)
  // A Redis per run: no state (AUTH failure counters, quota usage) carries over from one run to the next.
  const redis = await testRedis()
  const closeRedis = track(`redis ${config}`, () => redis.close(), () => redis.server && killPid(redis.server.process))
  try {
    return await runWith(config, opts, redis, sink)
  } finally {
    await closeRedis()
  }
}

async function runWith(config: ConfigName, opts: RunOpts, redis: TestRedis, sink: FastSink): Promise<RunResult> {
  const { haraka, creds } = await startConfig(config, redis, sink)
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
    const t = makeTransport(haraka.submissionPort, creds, opts.c)
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
        const p = await blast(t, 1, 1, `${config} prime`)
        if (p.failures > 0) throw warmupFailed('priming message (sent alone)', p.failures, p.errors)
        await Promise.race([sink.waitFor(before + 1, 60000), death])
      }
      const w = await blast(t, opts.warmup - primed, opts.c, `${config} warm-up`)
      if (w.failures > 0) throw warmupFailed(`of ${opts.warmup - primed} warm-up message(s)`, w.failures, w.errors)
      await Promise.race([sink.waitFor(before + opts.warmup, 60000), death])
      console.log(`   warm-up: ${opts.warmup} sent and delivered; measuring ${opts.n} at C=${opts.c}`)

      const base = sink.messages
      const baseConns = sink.connections
      const baseFrom = { ...(sink.fromAddresses ?? {}) }
      const logBase = haraka.log().length
      rss = rssPoller(pid)
      const cpu0 = cpuMs(pid)
      const client0 = process.cpuUsage()
      const run = await blast(t, opts.n, opts.c, config)
      let e2eEnd = performance.now()
      if (run.sent > 0) {
        await Promise.race([sink.waitFor(base + run.sent, Math.max(120000, run.sent * 100)), death]).catch((err: Error) => {
          const why = haraka.log().split('\n').filter((l) => /deferred|temp_fail|bounce|\[(ERROR|CRIT)\]/i.test(l)).slice(-10).join('\n')
          throw new Error(`${err.message}${why ? `\n   last deferral/error lines of ${haraka.logFile}:\n${why}` : ''}`)
        })
        e2eEnd = performance.now()
      }
      const mem = rss.stop()
      const harakaCpu = cpuMs(pid) - cpu0
      const clientCpu = process.cpuUsage(client0)
      const submitS = (run.lastOk - run.t0) / 1000
      const e2eS = (e2eEnd - run.t0) / 1000
      if (haraka.process.exitCode !== null || haraka.process.signalCode !== null) await death
      const log = haraka.log()
      const result: RunResult = {
        config,
        n: opts.n,
        c: opts.c,
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
        client_cpu_percent: round((clientCpu.user + clientCpu.system) / 1e4 / e2eS, 1),
        sink_connections: sink.connections - baseConns,
        haraka_log_errors: (log.match(/\[(ERROR|CRIT|EMERG)\]/g) ?? []).length,
        ...quotaLatency(log.slice(logBase)),
      }
      if (config === 'posta-pool5' && sink.fromAddresses) {
        const delta = (ip: string) => (sink.fromAddresses![ip] ?? 0) - (baseFrom[ip] ?? 0)
        const total = Object.keys(sink.fromAddresses).reduce((n, ip) => n + delta(ip), 0)
        result.from_pool = `${POOL5.reduce((n, ip) => n + delta(ip), 0)}/${total}`
      }
      console.log(
        `   submitted ${result.sent}/${opts.n} in ${result.submit_seconds} s = ${result.submit_msgs_per_s} msg/s; ` +
          `delivered all in ${result.e2e_seconds} s = ${result.e2e_msgs_per_s} msg/s; p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms; ` +
          `failures ${result.failures}; peak RSS ${result.peak_rss_mib} MiB (VmHWM ${result.hwm_rss_mib}); ` +
          `Haraka CPU ${result.haraka_cpu_ms_per_msg} ms/msg (${result.haraka_cpu_percent}% of a core), client CPU ${result.client_cpu_percent}%`,
      )
      if (run.errors.length) console.log(`   first errors: ${run.errors.join(' | ')}`)
      if (result.haraka_log_errors) console.log(`   Haraka logged ${result.haraka_log_errors} error line(s): ${haraka.logFile}`)
      ok = run.failures === 0
      return result
    } finally {
      t.close()
      rss?.stop()
    }
  } finally {
    haraka.process.off('exit', onExit)
    await untrack()
    if (ok && !opts.keep) fs.rmSync(haraka.dir, { recursive: true, force: true })
    else console.log(`   Haraka dir kept: ${haraka.dir}`)
  }
}

/** The CRIT/ERROR lines of a Haraka log (what a crash leaves), at most 15. */
/** A failed run keeps the temp dir (Haraka logs) for a look. */
let runFailedForCleanup = false

/** The quota plugin's `quota latency` lines of a run: median of the p50s, max of the p99s. */
function quotaLatency(log: string): Partial<RunResult> {
  const lines = [...log.matchAll(/quota latency .*?reserve_n=(\d+) reserve_p50_ms=([\d.]+) reserve_p99_ms=([\d.]+) commit_n=(\d+) commit_p50_ms=([\d.]+) commit_p99_ms=([\d.]+)/g)]
  if (!lines.length) return {}
  const med = (v: number[]) => v.sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)]
  return {
    quota_reserve_p50_ms: med(lines.map((m) => Number(m[2]))),
    quota_reserve_p99_ms: Math.max(...lines.map((m) => Number(m[3]))),
    quota_commit_p50_ms: med(lines.map((m) => Number(m[5]))),
    quota_commit_p99_ms: Math.max(...lines.map((m) => Number(m[6]))),
    quota_samples: lines.reduce((n, m) => n + Number(m[1]), 0),
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
  const n = intEnv('BENCH_N', 2000)
  const c = intEnv('BENCH_C', 10)
  const warmup = intEnv('BENCH_WARMUP', 50, 0)
  const keep = process.env.BENCH_KEEP === '1'
  const configs = configsFromEnv()
  const rounds = intEnv('BENCH_ROUNDS', 3)
  const prime = process.env.BENCH_PRIME !== '0' && warmup > 0
  const harakaVersion = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'node_modules', 'Haraka', 'package.json'), 'utf8')) as { version: string }).version
  const machine = {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    mem_gib: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    haraka: harakaVersion,
    platform: `${os.platform()} ${os.release()}`,
  }
  console.log(`Posta submission benchmark: N=${n} C=${c} warm-up=${warmup}${prime ? ' (first message alone)' : ''} rounds=${rounds}, ~2 KB text body, one recipient per message`)
  const postaPlugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  console.log(`posta plugins (config/plugins): ${postaPlugins.join(', ')}`)
  console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (other processes on the machine skew every figure)`)
  console.log(`machine: ${machine.cpus} CPU(s) (${machine.cpu_model}), ${machine.mem_gib} GiB, node ${machine.node}, Haraka ${machine.haraka}, ${machine.platform}`)

  // Everything this run writes (Haraka dirs with their queues, Redis dirs, the test TLS pair) goes into a private
  // temp dir: os.tmpdir() follows TMPDIR, and a cleanup of /tmp/posta-haraka-* by anything else on the machine
  // cannot pull a queue from under a running Haraka.
  const ownTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-bench-'))
  process.env.TMPDIR = ownTmp
  process.env.POSTA_KEEP_TEST_DIRS = '1' // HarakaNode.stop() leaves its dir: the benchmark removes it, or keeps a failed run's log
  track('temp dir', async () => {
    if (!keep && !runFailedForCleanup) fs.rmSync(ownTmp, { recursive: true, force: true })
    else console.log(`temp dir kept: ${ownTmp}`)
  }, () => {})
  const sink = await startFastSink()
  track('fast sink', () => sink.close(), () => {})
  console.log(`fast sink 127.0.0.1:${sink.port}; temp dir ${ownTmp}`)

  const all: RunResult[] = []
  let runFailed = false
  for (let round_ = 1; round_ <= rounds; round_++) {
    if (rounds > 1) console.log(`\n### round ${round_}/${rounds}`)
    for (const config of configs) {
      try {
        all.push({ ...(await runConfig(config, { n, c, warmup, prime, keep }, sink)), round: round_ })
      } catch (err) {
        runFailed = true
        runFailedForCleanup = true
        console.error(`   ${config} FAILED: ${(err as Error).message}`)
      }
    }
  }
  await cleanupAll()

  // per configuration: the run with the median submitted rate (rounds interleave the configurations, so
  // load from other processes on the machine hits all of them alike)
  const results: RunResult[] = []
  for (const config of configs) {
    const runs = all.filter((r) => r.config === config).sort((a, b) => a.submit_msgs_per_s - b.submit_msgs_per_s)
    if (runs.length) results.push(runs[Math.floor((runs.length - 1) / 2)])
  }
  const by = (name: ConfigName) => results.find((r) => r.config === name)
  console.log('\npeak RSS: max VmRSS polled every 100 ms during the measured run; VmHWM: since Haraka started (warm-up AUTH included)')
  const header = ['config', 'submitted msg/s', 'end-to-end msg/s', 'p50 ms', 'p99 ms', 'failures', 'peak RSS MiB', 'VmHWM MiB', 'Haraka CPU ms/msg']
  const row = (r: RunResult, label: string) => [
    label, r.submit_msgs_per_s.toFixed(1), r.e2e_msgs_per_s.toFixed(1), r.p50_ms.toFixed(1), r.p99_ms.toFixed(1),
    String(r.failures), r.peak_rss_mib.toFixed(1), r.hwm_rss_mib.toFixed(1), r.haraka_cpu_ms_per_msg.toFixed(2),
  ]
  if (rounds > 1) {
    console.log(`All runs (N=${n}, C=${c}):`)
    console.log(pad([header, ...all.map((r) => row(r, `${r.config} #${r.round}`))]))
    console.log('')
  }
  console.log(`Results (N=${n}, C=${c}, ${rounds > 1 ? `median of ${rounds} rounds, ` : ''}${machine.cpus} CPU(s), node ${machine.node}, Haraka ${machine.haraka})`)
  console.log(pad([header, ...results.map((r) => row(r, r.config))]))

  const p = by('posta')
  const s = by('stock')
  const sn = by('stock+nodelay')
  const ratios: Record<string, number | null> = {
    posta_vs_stock: p && s ? round(p.submit_msgs_per_s / s.submit_msgs_per_s, 2) : null,
    posta_vs_stock_nodelay: p && sn ? round(p.submit_msgs_per_s / sn.submit_msgs_per_s, 2) : null,
    posta_vs_stock_e2e: p && s ? round(p.e2e_msgs_per_s / s.e2e_msgs_per_s, 2) : null,
    posta_vs_stock_nodelay_e2e: p && sn ? round(p.e2e_msgs_per_s / sn.e2e_msgs_per_s, 2) : null,
  }
  const fmtX = (v: number | null) => (v === null ? 'n/a' : `${v}x`)
  const verdict = (v: number | null | undefined, target: number) => (v === null || v === undefined ? 'n/a' : v >= target ? 'MET' : 'MISSED')
  const targets = {
    posta_vs_stock: verdict(ratios.posta_vs_stock, TARGETS.vsStock),
    posta_vs_stock_nodelay: verdict(ratios.posta_vs_stock_nodelay, TARGETS.vsNodelay),
    posta_msgs_per_s: verdict(p?.submit_msgs_per_s, TARGETS.postaMsgsPerS),
  }
  console.log('\nTargets (submitted msg/s):')
  console.log(`  posta / stock          = ${fmtX(ratios.posta_vs_stock)}  (target >= ${TARGETS.vsStock}x)   ${targets.posta_vs_stock}   [end-to-end ${fmtX(ratios.posta_vs_stock_e2e)}]`)
  console.log(`  posta / stock+nodelay  = ${fmtX(ratios.posta_vs_stock_nodelay)}  (target >= ${TARGETS.vsNodelay}x)   ${targets.posta_vs_stock_nodelay}   [end-to-end ${fmtX(ratios.posta_vs_stock_nodelay_e2e)}]`)
  console.log(`  posta into the durable outbound queue = ${p ? p.submit_msgs_per_s : 'n/a'} msg/s  (target >= ${TARGETS.postaMsgsPerS})   ${targets.posta_msgs_per_s}`)

  const nq = by('posta-noquota')
  const p5 = by('posta-pool5')
  ratios.posta_vs_noquota = p && nq ? round(p.submit_msgs_per_s / nq.submit_msgs_per_s, 2) : null
  ratios.pool5_vs_one_address_e2e = p && p5 ? round(p5.e2e_msgs_per_s / p.e2e_msgs_per_s, 2) : null
  Object.assign(targets, {
    quota_cost: verdict(ratios.posta_vs_noquota, 0.95),
    pool_cost: verdict(ratios.pool5_vs_one_address_e2e, 0.9),
  })
  console.log(`  posta / posta-noquota  = ${fmtX(ratios.posta_vs_noquota)}  (target >= 0.95x: the quota costs at most 5%)   ${(targets as Record<string, string>).quota_cost}`)
  if (p?.quota_samples) {
    console.log(`    quota scripts measured in the plugin (${p.quota_samples} reservations): reserve p50 ${p.quota_reserve_p50_ms} ms, p99 ${p.quota_reserve_p99_ms} ms; commit p50 ${p.quota_commit_p50_ms} ms, p99 ${p.quota_commit_p99_ms} ms`)
  }
  console.log(`  posta-pool5 / posta, end to end = ${fmtX(ratios.pool5_vs_one_address_e2e)}  (target >= 0.9x: a five-IP pool at most 10% slower)   ${(targets as Record<string, string>).pool_cost}${p5?.from_pool ? `   [deliveries from the pool: ${p5.from_pool}]` : ''}`)
  if (p && p5) console.log(`    Haraka CPU per message: ${p5.haraka_cpu_ms_per_msg} ms with the pool and ledger writes, ${p.haraka_cpu_ms_per_msg} ms with one address`)

  const anyFailures = all.some((r) => r.failures > 0)
  console.log(JSON.stringify({ bench: 'submit', date: new Date().toISOString(), machine, n, c, warmup, prime, rounds, posta_plugins: postaPlugins, load_at_start: os.loadavg(), results, runs: all, ratios, targets, ok: !runFailed && !anyFailures }))
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
