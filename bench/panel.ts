// `npm run bench:panel`: the panel's speed with a big tenant.
//
// A private redis-server; a package and a tenant made with the domain core (lib/packages setPackage, lib/tenants
// createTenant); then BENCH_MESSAGES (1,000,000) messages this month, spread evenly from the month's first local
// midnight to now (about 5 % deferred once before their delivery, 2 % bounced). The last BENCH_REAL (10,000) go
// through the domain core's own writers, BENCH_BATCH (2000) in flight: lib/quota commit() (the counters posta-quota
// writes) and lib/ledger recordAttempt() (delivered / deferred / bounced per recipient, per-IP hours, the full
// recent list of the panel). The others are summed per day and written into the same counters (lib/keys.ts layout)
// in one pipeline: a million Lua calls from one Node process take a quarter of an hour on this machine, and what the
// panel reads is the same. A probe tenant checks first that the writers write exactly the fields the bulk writes,
// and usage() must show exactly the seed's totals afterwards.
//
// The panel then runs in a child process (this file with --serve: the same createApp as `npm start`, on a loopback
// port), so that the load generator does not share its event loop. A keep-alive HTTP client loop at BENCH_C (50)
// concurrent clients requests, for BENCH_SECONDS (10) each after a 2 s warm-up:
//   - GET /              the dashboard, with the session cookie of a real POST /login;
//   - GET /api/v1/usage  the JSON usage, with HTTP Basic (the SMTP login and password) on every request.
// Every response must be 200 (the run fails otherwise); prints p50 / p95 / p99 latency and requests/s of each.
// Target: p95 under 50 ms. Variables: BENCH_MESSAGES, BENCH_REAL, BENCH_C, BENCH_SECONDS, BENCH_BATCH, and
// BENCH_PROFILE=<dir> (a CPU profile of the panel process written there).
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { serve } from '@hono/node-server'
import { AUTH_INI, readConfigFile } from '../lib/inis'
import { keys } from '../lib/keys'
import { DEFAULT_LEDGER, recordAttempt, resultField, type Attempt, type DeliveryResult } from '../lib/ledger'
import { setPackage } from '../lib/packages'
import { dayOf, daysOfMonth, localMidnight, monthOf } from '../lib/period'
import { commit, DEFAULT_QUOTA, reservationFor, usage, type QuotaOptions, type Usage } from '../lib/quota'
import { connectHotPath } from '../lib/redis'
import { loadSettings, type Settings } from '../lib/settings'
import { createTenant } from '../lib/tenants'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { freePort, waitFor } from '../service/redis-server'
import { SESSION_COOKIE } from '../web/auth'
import { createApp } from '../web/app'
import { basic, PanelClient } from '../testkit/panel'
import { testRedis, type TestRedis } from '../testkit/redis'

function intEnv(name: string, dflt: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return dflt
  const v = Number(raw)
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name}=${raw}: expected a positive integer`)
  return v
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d

/** The message sizes of the seed: 2 KB to 60 KB, one recipient each (deterministic, so runs compare). */
function sizeOf(i: number): number {
  return 2048 + ((i * 7919) % 59) * 1024
}

/** What happened to message i: most delivered at once, some deferred once first, a few bounced. */
function fateOf(i: number): 'delivered' | 'deferred-then-delivered' | 'bounced' {
  const r = (i * 2654435761) % 100
  return r < 2 ? 'bounced' : r < 7 ? 'deferred-then-delivered' : 'delivered'
}

const IPS = ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4', '198.18.0.5']

function attempt(slug: string, i: number, at: number, result: DeliveryResult): Attempt {
  const codes = { delivered: ['250', '250 2.0.0 OK queued'], deferred: ['451', '451 4.7.1 greylisted, try again later'], bounced: ['550', '550 5.1.1 no such user'] }
  const [code, response] = codes[result]
  return {
    at, tenant: slug, tx: `bench${i}`, delivery: `bench${i}.1`, ip: IPS[i % IPS.length], domain: `d${i % 997}.example`, mx: `mx.d${i % 997}.example`,
    result, code, response, size: sizeOf(i), rcpts: 1, recipients: [`user${i}@d${i % 997}.example`],
  }
}

/** Message i of n sent this month: its time, spread evenly from the month's first local midnight to now. */
function timeOf(i: number, n: number, start: number, now: number): number {
  return start + Math.floor(((now - start) * i) / n)
}

/** Message i as Haraka would write it: committed at the queue hand-off, then its delivery attempts ledgered. */
async function writeReal(redis: TestRedis['client'], quota: QuotaOptions, slug: string, i: number, at: number): Promise<void> {
  const when = new Date(at)
  const fate = fateOf(i)
  const ledger = { ...DEFAULT_LEDGER, timeZone: quota.timeZone }
  await commit(redis, quota, reservationFor(quota, slug, `bench${i}`, sizeOf(i), 1, when), when)
  if (fate === 'deferred-then-delivered') await recordAttempt(redis, attempt(slug, i, at, 'deferred'), ledger)
  await recordAttempt(redis, attempt(slug, i, at, fate === 'bounced' ? 'bounced' : 'delivered'), ledger)
}

/** The fields the bulk path writes into a day hash and a month hash. */
const BULK_DAY_FIELDS = ['bytes', 'messages', 'recipients', resultField('message', 'delivered'), resultField('message', 'deferred'), resultField('message', 'bounced')]
const BULK_MONTH_FIELDS = ['bytes', 'messages']

/**
 * Before the seed: 100 messages of a probe tenant through the real writers (every fate) write exactly the fields
 * the bulk path writes, so the bulk counters are what the writers would have left.
 */
async function probeLayout(redis: TestRedis['client'], quota: QuotaOptions, slug: string): Promise<void> {
  const now = Date.now()
  for (let i = 0; i < 100; i++) await writeReal(redis, quota, slug, i, now)
  const month = monthOf(new Date(now), quota.timeZone)
  const day = dayOf(new Date(now), quota.timeZone)
  const same = (a: string[], b: string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort())
  const dayFields = await redis.hkeys(keys.usageDay(slug, day))
  const monthFields = await redis.hkeys(keys.usageMonth(slug, month))
  if (!same(dayFields, BULK_DAY_FIELDS) || !same(monthFields, BULK_MONTH_FIELDS)) {
    throw new Error(`the writers' layout changed: day fields ${dayFields}, month fields ${monthFields}; the bulk seed writes ${BULK_DAY_FIELDS} and ${BULK_MONTH_FIELDS}: update bench/panel.ts`)
  }
}

/**
 * Seeds n messages of this month. The last `real` ones go through the domain core's writers, `batch` at a time:
 * lib/quota commit() and lib/ledger recordAttempt() (counters, per-IP hours, the recent list). The others are added
 * up per day and written with one HINCRBY per field and day into the same hashes (lib/keys.ts usageMonth and usageDay;
 * the result fields from lib/ledger resultField): what a million commit() calls leave in the counters the panel
 * reads, without a million round trips (commit markers and per-IP hours of those are left out: the panel reads
 * neither). probeLayout() first proves that the writers write exactly those fields; seedCheck() that the totals add up.
 */
async function seed(redis: TestRedis['client'], quota: QuotaOptions, slug: string, n: number, real: number, batch: number): Promise<{ bulkSeconds: number; realSeconds: number }> {
  const now = Date.now()
  const month = monthOf(new Date(now), quota.timeZone)
  const [y, m] = month.split('-').map(Number)
  const start = localMidnight(y, m, 1, quota.timeZone).getTime()
  const days = daysOfMonth(month)
  const dayStarts = days.map((_, d) => localMidnight(y, m, d + 1, quota.timeZone).getTime())
  const bulk = Math.max(0, n - real)

  const t0 = performance.now()
  const perDay = new Map<string, Record<string, number>>()
  let d = 0
  for (let i = 0; i < bulk; i++) {
    const at = timeOf(i, n, start, now)
    while (d + 1 < dayStarts.length && at >= dayStarts[d + 1]) d++
    const h = perDay.get(days[d]) ?? {}
    perDay.set(days[d], h)
    const add = (f: string, v: number) => (h[f] = (h[f] ?? 0) + v)
    const fate = fateOf(i)
    const [bytes, messages, recipients, delivered, deferred, bounced] = BULK_DAY_FIELDS
    add(bytes, sizeOf(i))
    add(messages, 1)
    add(recipients, 1)
    if (fate === 'deferred-then-delivered') add(deferred, 1)
    add(fate === 'bounced' ? bounced : delivered, 1)
  }
  const p = redis.pipeline()
  for (const [day, h] of perDay) {
    for (const [f, v] of Object.entries(h)) p.hincrby(keys.usageDay(slug, day), f, v)
    for (const f of BULK_MONTH_FIELDS) p.hincrby(keys.usageMonth(slug, month), f, h[f])
  }
  for (const [err] of (await p.exec()) ?? []) if (err) throw err
  const bulkSeconds = (performance.now() - t0) / 1000

  const t1 = performance.now()
  for (let from = bulk; from < n; from += batch) {
    const work: Promise<unknown>[] = []
    for (let i = from; i < Math.min(n, from + batch); i++) {
      const at = timeOf(i, n, start, now)
      work.push(writeReal(redis, quota, slug, i, at))
    }
    await Promise.all(work)
  }
  return { bulkSeconds, realSeconds: (performance.now() - t1) / 1000 }
}

/** The figures the seed must show: the sums of every message's size and fate. */
function expected(n: number): { bytes: number; delivered: number; deferred: number; bounced: number } {
  const e = { bytes: 0, delivered: 0, deferred: 0, bounced: 0 }
  for (let i = 0; i < n; i++) {
    const fate = fateOf(i)
    e.bytes += sizeOf(i)
    if (fate === 'bounced') e.bounced++
    else e.delivered++
    if (fate === 'deferred-then-delivered') e.deferred++
  }
  return e
}

/** The bulk and the real writers wrote the same fields into today's hash, and usage() shows exactly the seed. */
async function seedCheck(redis: TestRedis['client'], quota: QuotaOptions, slug: string, n: number): Promise<Usage> {
  const u = await usage(redis, quota, slug)
  const e = expected(n)
  const got = { messages: u.messages, bytes: u.used_bytes, delivered: u.delivered, deferred: u.deferred, bounced: u.bounced, recent: await redis.zcard(keys.ledgerRecent(slug)) }
  const want = { messages: n, ...e, recent: Math.min(DEFAULT_LEDGER.recentMax, got.recent) }
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`the seed does not add up: usage shows ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
  if (got.recent < Math.min(n, DEFAULT_LEDGER.recentMax)) throw new Error(`the recent list holds ${got.recent} attempts, not a full list`)
  return u
}

interface Target {
  label: string
  path: string
  headers: Record<string, string>
}

interface LoadResult {
  label: string
  requests: number
  errors: number
  statuses: Record<string, number>
  rps: number
  p50_ms: number
  p95_ms: number
  p99_ms: number
  max_ms: number
  bytes_per_response: number
  /** CPU the panel process and redis-server used per request: what a request costs whatever else the machine runs. */
  panel_cpu_ms_per_request?: number
  redis_cpu_ms_per_request?: number
}

/** CPU time (user + system) a process has used, in ms, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100 // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN
  }
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

function get(agent: http.Agent, port: number, t: Target): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: t.path, headers: t.headers, agent }, (res) => {
      let bytes = 0
      res.on('data', (d: Buffer) => (bytes += d.length))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(30000, () => req.destroy(new Error('timeout after 30 s')))
  })
}

/** `clients` loops, each one request at a time on its keep-alive connection, for `seconds`; latencies of every request. */
async function load(port: number, t: Target, clients: number, seconds: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients })
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  let errors = 0
  let bytes = 0
  const t0 = performance.now()
  const until = t0 + seconds * 1000
  const loop = async () => {
    while (performance.now() < until) {
      const s = performance.now()
      try {
        const r = await get(agent, port, t)
        statuses[r.status] = (statuses[r.status] ?? 0) + 1
        if (r.status !== 200) errors++
        bytes += r.bytes
      } catch {
        errors++
        statuses.error = (statuses.error ?? 0) + 1
      }
      latencies.push(performance.now() - s)
    }
  }
  await Promise.all(Array.from({ length: clients }, loop))
  const elapsed = (performance.now() - t0) / 1000
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return {
    label: t.label, requests: latencies.length, errors, statuses, rps: round(latencies.length / elapsed),
    p50_ms: round(percentile(latencies, 50), 2), p95_ms: round(percentile(latencies, 95), 2), p99_ms: round(percentile(latencies, 99), 2),
    max_ms: round(latencies[latencies.length - 1] ?? NaN, 2), bytes_per_response: latencies.length ? Math.round(bytes / latencies.length) : 0,
  }
}

/** The panel in this process (the child of --serve): the app `npm start` serves, on POSTA_PANEL_PORT of loopback. */
async function servePanel(): Promise<void> {
  const settings: Settings = loadSettings()
  // as service/start.ts serves it: a fail-fast client, the shipped posta-auth.ini
  const redis = connectHotPath(settings.redisUrl, { commandTimeout: 2000 })
  redis.on('error', () => {})
  const auth = readConfigFile(path.join(PROJECT_ROOT, 'config'), AUTH_INI).values.main
  const server = serve({ fetch: createApp({ redis, settings, auth }).fetch, port: settings.panelPort, hostname: '127.0.0.1' })
  const stop = () => {
    server.close()
    redis.disconnect()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

async function startPanelChild(env: Record<string, string>, port: number): Promise<ChildProcess> {
  // BENCH_PROFILE=<dir>: the panel writes a V8 CPU profile there when it stops (open it in Chrome's DevTools)
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []
  const child = spawn(process.execPath, [...profile, __filename, '--serve'], { env: { ...process.env, ...env, POSTA_PANEL_PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit'] })
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`the panel exited (code ${child.exitCode})`)
    return new Promise<boolean>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/healthz' }, (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      }).on('error', () => resolve(false))
    })
  }, 'the panel to answer /healthz', 30000)
  return child
}

/** A panel session: the login form posted with its CSRF token, as a browser does; the cookies to send. */
async function sessionCookie(port: number, login: string, password: string): Promise<string> {
  const client = new PanelClient(`http://127.0.0.1:${port}`)
  const res = await client.submit('/login', '/login', { login, password })
  if (res.status !== 303 || !client.cookies.has(SESSION_COOKIE)) throw new Error(`POST /login answered ${res.status}, not a session: ${(await res.text()).slice(0, 300)}`)
  return [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
}

async function main() {
  const n = intEnv('BENCH_MESSAGES', 1_000_000)
  const clients = intEnv('BENCH_C', 50)
  const seconds = intEnv('BENCH_SECONDS', 10)
  const batch = intEnv('BENCH_BATCH', 2000)
  const real = intEnv('BENCH_REAL', 10000)
  delete process.env.REDIS_URL // always a private redis-server: the seed is big and needs a Redis of its own
  const redis = await testRedis()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-bench-panel-'))
  const env = { REDIS_URL: redis.url, POSTA_DATA_DIR: dataDir, POSTA_LISTEN: '127.0.0.1' }
  const settings = loadSettings({ ...process.env, ...env })
  const quota: QuotaOptions = { ...DEFAULT_QUOTA, timeZone: settings.timeZone }
  let child: ChildProcess | null = null
  try {
    await setPackage(redis.client, 'bench', 50 * 1024 ** 3)
    const creds = await createTenant(redis.client, settings, { slug: 'benchco', package: 'bench', contact: 'owner@benchco.example' })
    await createTenant(redis.client, settings, { slug: 'benchprobe', package: 'bench', contact: 'owner@benchprobe.example' })
    await probeLayout(redis.client, quota, 'benchprobe')
    console.log(`seeding ${n.toLocaleString('en')} messages this month for tenant benchco, the last ${Math.min(real, n)} through commit() and recordAttempt()...`)
    const t = await seed(redis.client, quota, 'benchco', n, real, batch)
    const u = await seedCheck(redis.client, quota, 'benchco', n)
    const mem = /used_memory_human:(\S+)/.exec(await redis.client.info('memory'))?.[1]
    console.log(`seeded: bulk ${round(t.bulkSeconds)} s, real writers ${round(t.realSeconds)} s (${Math.round(Math.min(real, n) / t.realSeconds)} messages/s); usage: ${u.messages} messages, ${u.used_bytes} bytes (${u.percent} %), delivered ${u.delivered}, deferred ${u.deferred}, bounced ${u.bounced}, ${u.days.length} days; Redis ${mem}`)

    const port = await freePort('127.0.0.1')
    child = await startPanelChild(env, port)
    const cookie = await sessionCookie(port, creds.login, creds.password)
    const targets: Target[] = [
      { label: 'GET / (dashboard, session cookie)', path: '/', headers: { cookie } },
      { label: 'GET /api/v1/usage (Basic auth)', path: '/api/v1/usage', headers: { authorization: basic(creds.login, creds.password) } },
    ]
    const rows: LoadResult[] = []
    const loadBefore = os.loadavg().map((x) => round(x, 2))
    console.log(`load average before the HTTP runs: ${loadBefore.join(' ')} on ${os.cpus().length} CPUs`)
    for (const t of targets) {
      await load(port, t, clients, 2) // warm-up
      const cpu0 = [cpuMs(child.pid), cpuMs(redis.server?.process.pid)]
      const r = await load(port, t, clients, seconds)
      const cpu1 = [cpuMs(child.pid), cpuMs(redis.server?.process.pid)]
      r.panel_cpu_ms_per_request = round((cpu1[0] - cpu0[0]) / r.requests, 3)
      r.redis_cpu_ms_per_request = round((cpu1[1] - cpu0[1]) / r.requests, 3)
      rows.push(r)
      console.log(`${t.label}: ${r.requests} requests in ${seconds} s at ${clients} clients, ${r.rps} req/s, p50 ${r.p50_ms} ms, p95 ${r.p95_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms, ${r.bytes_per_response} bytes each, statuses ${JSON.stringify(r.statuses)}; CPU per request: panel ${r.panel_cpu_ms_per_request} ms, redis ${r.redis_cpu_ms_per_request} ms`)
    }
    console.log(JSON.stringify({ messages: n, loadavg_before: loadBefore, real_writes: Math.min(real, n), clients, seconds, cpus: os.cpus().length, loadavg: os.loadavg().map((x) => round(x, 2)), results: rows }, null, 2))
    const failed = rows.filter((r) => r.errors > 0)
    if (failed.length) throw new Error(`${failed.map((r) => `${r.label}: ${r.errors} non-200 answers`).join('; ')}`)
    const slow = rows.filter((r) => r.p95_ms >= 50)
    console.log(slow.length ? `target missed (p95 < 50 ms): ${slow.map((r) => r.label).join(', ')}` : 'target met: p95 < 50 ms on both')
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    await redis.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--serve') {
  servePanel().catch((err) => {
    console.error(err)
    process.exit(1)
  })
} else {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
