// `npm run bench:monitor`: the DNSBL monitor's cost.
//
// Part 1, one cycle (lib/monitor.ts runCycle): a private Redis, a real DNS server on loopback (testkit/dns.ts)
// serving the 8 zones of the shipped config/posta-monitor.ini, 256 pool IPs (198.18.0.0/24 and 198.18.1.0/24 from
// BENCH_IPS > 254: they need not be local, no mail is sent) with a few listings, error answers and SERVFAILs; one
// cycle at the shipped concurrency (32), then at 8 and 64; first with the server answering at once, then with
// BENCH_LATENCY_MS (20) of latency per answer (a recursive resolver's cache misses); then the bad case: one zone
// whose canary answers but whose every IP query times out (timeout_ms 3000 as shipped). Prints queries/s and the
// cycle time of each (target: under 30 s per cycle with bounded concurrency).
//
// Part 2, SMTP submission throughput of one Haraka node (testkit/haraka.ts, Posta's plugins as shipped), a tenant
// made with the CLI, a route to testkit/fastsink.ts, a nodemailer pool at C=10 sending N=1000: once with
// posta-monitor off (commented out in config/plugins) and once with it cycling every second (interval=1, the
// shortest) in the Haraka process, against the loopback DNS, over a pool of 64 IPs that are not local.
// Submission only (messages/s until the last 250): a non-empty pool makes deliveries bind to pool IPs, and these
// cannot be bound here; so the 64 IPs are suspended by an operator, deliveries wait in the queue (no connect, no
// bind error) in both runs alike, and the monitor still checks all 64 IPs (suspended IPs are checked too).
//
// Variables: BENCH_IPS (256), BENCH_LATENCY_MS (20), BENCH_WORST (1; 0 skips the timing-out zone run),
// BENCH_SMTP (1; 0 skips part 2), BENCH_N (1000), BENCH_C (10), BENCH_SMTP_POOL (64), BENCH_ROUNDS (3: the two
// SMTP configurations run interleaved this many times; the ratio is of the medians).
// The benchmark always starts its own redis-server (REDIS_URL is ignored): it needs a pool of exactly its IPs.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { readIni } from '../lib/ini'
import { keys } from '../lib/keys'
import { monitorOptionsFromIni, runCycle, type CycleReport, type Logger, type MonitorOptions } from '../lib/monitor'
import { addIp, getPool, suspendIp } from '../lib/pool'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { posta } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { startFastSink } from '../testkit/fastsink'
import { startHaraka } from '../testkit/haraka'
import { testRedis } from '../testkit/redis'

const quiet: Logger = { info: () => {}, notice: () => {}, warn: () => {}, crit: () => {} }
const SHIPPED_INI = path.join(PROJECT_ROOT, 'config', 'posta-monitor.ini')

function intEnv(name: string, dflt: number): number {
  const v = Number(process.env[name] ?? dflt)
  return Number.isFinite(v) && v >= 0 ? v : dflt
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d
function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** The pool: 198.18.0.1-198.18.0.254, then 198.18.1.x, ... (never 127.0.0.1/.2, the canaries' names). */
function poolIps(n: number, third = 0): string[] {
  return Array.from({ length: n }, (_, i) => `198.18.${third + Math.floor(i / 254)}.${(i % 254) + 1}`)
}

/** The shipped zones (config/posta-monitor.ini), asked through the loopback server. */
function shippedOptions(dns: TestDns, concurrency: number): MonitorOptions {
  const ini = readIni(SHIPPED_INI)
  return monitorOptionsFromIni({ ...ini, main: { ...ini.main, resolvers: dns.server, concurrency: String(concurrency) } })
}

/** What a real cycle meets: listings (with TXT), informational listings, error answers, SERVFAIL. */
function seed(dns: TestDns, ips: string[]) {
  dns.set('zen.spamhaus.org', ips[3], { a: ['127.0.0.2'], txt: 'https://check.spamhaus.org/sbl/bench' })
  dns.set('dnsbl-1.uceprotect.net', ips[7], { a: ['127.0.0.2'], txt: 'UCEPROTECT level 1' })
  dns.set('zen.spamhaus.org', ips[11], { a: ['127.0.0.10'], txt: 'PBL' })
  dns.set('dnsbl-2.uceprotect.net', ips[13], { a: ['127.0.0.2'] })
  dns.set('b.barracudacentral.org', ips[5], { a: ['127.255.255.254'] })
  dns.set('bl.spamcop.net', ips[17], 'servfail')
}

interface CycleRow { label: string; latency_ms: number; concurrency: number; cycle_s: number; queries: number; queries_per_s: number; listed: number; unknown: number; suspended: number; unhealthy: number; warnings: number }

/** One cycle on a fresh Redis with nIps pool IPs. */
async function oneCycle(label: string, dns: TestDns, nIps: number, concurrency: number, latency: number, prepare?: (ips: string[]) => void): Promise<CycleRow> {
  const redis = await testRedis()
  try {
    const ips = poolIps(nIps)
    for (const ip of ips) await addIp(redis.client, ip, `mta-${ip.replace(/\./g, '-')}.bench.test`)
    prepare?.(ips)
    const q0 = dns.queries
    const r: CycleReport = await runCycle(redis.client, shippedOptions(dns, concurrency), { node: 'bench', log: quiet })
    const queries = dns.queries - q0
    const row: CycleRow = {
      label, latency_ms: latency, concurrency, cycle_s: round(r.duration_ms / 1000, 3), queries, queries_per_s: Math.round(queries / (r.duration_ms / 1000)),
      listed: r.listed.length, unknown: r.unknown, suspended: r.suspended.length, unhealthy: r.zones.filter((z) => !z.healthy).length, warnings: r.warnings.length,
    }
    console.log(
      `${label.padEnd(34)} latency ${String(latency).padStart(3)} ms, concurrency ${String(concurrency).padStart(2)}: cycle ${String(row.cycle_s).padStart(7)} s, ` +
        `${queries} queries, ${String(row.queries_per_s).padStart(6)} queries/s; listed ${row.listed}, unknown ${row.unknown}, suspended ${row.suspended}`,
    )
    return row
  } finally {
    await redis.close()
  }
}

async function main() {
  delete process.env.REDIS_URL
  const nIps = intEnv('BENCH_IPS', 256)
  const latency = intEnv('BENCH_LATENCY_MS', 20)
  const zones = monitorOptionsFromIni(readIni(SHIPPED_INI)).zones
  const ipv6Zones = zones.filter((z) => z.ipv6).length
  console.log(`# DNSBL monitor benchmark: ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log(`# part 1: one cycle, ${nIps} IPv4 pool IPs x ${zones.length} zones of config/posta-monitor.ini (${zones.map((z) => z.name).join(', ')}; ${ipv6Zones} with ipv6), + 2 canary queries per zone, + a TXT query per listing`)

  const fast = await startDns()
  const slow = latency > 0 ? await startDns({ latencyMs: latency }) : null
  const rows: CycleRow[] = []
  try {
    for (const [dns, ms] of [[fast, 0], ...(slow ? [[slow, latency]] : [])] as [TestDns, number][]) {
      seed(dns, poolIps(nIps))
      for (const c of [32, 8, 64]) rows.push(await oneCycle(c === 32 ? 'shipped concurrency' : 'other concurrency', dns, nIps, c, ms))
    }
    if (process.env.BENCH_WORST !== '0') {
      // a zone that answers its canary but lets every IP query time out (rate limited, half broken): each of its
      // queries holds a slot for the whole timeout (3000 ms as shipped; c-ares may give up sooner or up to ~1 s later)
      rows.push(await oneCycle('one zone timing out (timeout 3 s)', fast, nIps, 32, 0, (ips) => {
        for (const ip of ips) fast.set('bl.spamcop.net', ip, 'timeout')
      }))
      for (const ip of poolIps(nIps)) fast.set('bl.spamcop.net', ip, undefined)
    }
  } finally {
    await fast.close()
    await slow?.close()
  }
  const shipped = rows.filter((r) => r.concurrency === 32)
  const worst = Math.max(...shipped.map((r) => r.cycle_s))
  console.log(`target: a cycle under 30 s at the shipped concurrency (32): ${worst < 30 ? 'MET' : 'MISSED'} (slowest run at 32: ${worst} s)`)

  const smtp = process.env.BENCH_SMTP === '0' ? null : await smtpWhileCycling()
  console.log(JSON.stringify({ bench: 'monitor', date: new Date().toISOString(), cpus: os.cpus().length, node: process.version, ips: nIps, zones: zones.length, cycles: rows, smtp }))
}

/** User + system CPU of a process so far, ms (Linux /proc; NaN elsewhere). */
function cpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100 // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN
  }
}

interface SmtpRow { monitor: boolean; round: number; idle_cpu_ms_per_s: number; idle_cycles: number; submit_msgs_per_s: number; haraka_cpu_ms_per_msg: number; p50_ms: number; p99_ms: number; failures: number; cycles_during_run: number; cycle_ms_median: number | null; busy_share: number | null; delivered_to_sink: number }

async function smtpWhileCycling() {
  const n = intEnv('BENCH_N', 1000)
  const c = intEnv('BENCH_C', 10)
  const poolSize = intEnv('BENCH_SMTP_POOL', 64)
  const rounds = Math.max(1, intEnv('BENCH_ROUNDS', 3))
  const load0 = os.loadavg()
  console.log(`\n# part 2: SMTP submission of one Haraka node, N=${n} at C=${c} (nodemailer pool, STARTTLS, AUTH PLAIN, ~2 KB), pool of ${poolSize} non-local IPs; ${rounds} round(s), monitor off / on interleaved; load ${load0.map((x) => x.toFixed(2)).join(' ')}`)
  console.log(`# submission only (messages/s until the last 250): the pool's IPs cannot be bound here, so they are suspended by an operator and`)
  console.log(`# deliveries wait in the queue in both runs alike; the monitor checks all ${poolSize} IPs x 8 zones anyway (every second, in Haraka's process)`)
  const dns = await startDns()
  const shippedPlugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8')
  const monitorIni = fs.readFileSync(SHIPPED_INI, 'utf8')
    .replace(/^interval=.*$/m, 'interval=1')
    .replace(/^resolvers=.*$/m, `resolvers=${dns.server}`)
    .replace(/^concurrency=.*$/m, 'concurrency=32')
  const text = ('x'.repeat(76) + '\r\n').repeat(26)
  const out: SmtpRow[] = []
  try {
    for (let round_ = 1; round_ <= rounds; round_++) {
      for (const withMonitor of [false, true]) {
        const redis = await testRedis()
        const sink = await startFastSink()
        const env = { REDIS_URL: redis.url }
        const ips = poolIps(poolSize, 2) // 198.18.2.x: not local
        for (const ip of ips) {
          await addIp(redis.client, ip, `mta-${ip.replace(/\./g, '-')}.bench.test`)
          await suspendIp(redis.client, ip, 'bench: not a local address, no delivery', 'operator')
        }
        seed(dns, ips)
        const cli = async (args: string[]) => {
          const r = await posta(args, env)
          if (r.code !== 0) throw new Error(`posta ${args.join(' ')}: ${r.stderr}`)
          return r
        }
        await cli(['route', 'set', 'bench-sink.test', `127.0.0.1:${sink.port}`])
        await cli(['package', 'set', 'bench', '--traffic', '1TB'])
        const t = (await cli(['tenant', 'create', `bench${Date.now() % 1000000}`, '--package', 'bench', '--contact', 'b@bench.example', '--json'])).json()
        const haraka = await startHaraka({
          redisUrl: redis.url,
          overrides: {
            plugins: withMonitor ? shippedPlugins : shippedPlugins.replace(/^posta-monitor$/m, '# posta-monitor'),
            'posta-monitor.ini': monitorIni,
            'outbound.ini': 'enable_tls=false\n',
          },
        })
        const tr = nodemailer.createTransport({
          host: '127.0.0.1', port: haraka.submissionPort, secure: false, requireTLS: true, authMethod: 'PLAIN', pool: true, maxConnections: c, maxMessages: Infinity,
          auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false },
        })
        try {
          const lat: number[] = []
          let failures = 0
          const send = async (count: number, conc: number, measure: boolean) => {
            let next = 0
            await Promise.all(Array.from({ length: conc }, async () => {
              while (next < count) {
                const i = next++
                const s = performance.now()
                try {
                  const info = await tr.sendMail({ from: 'bench@customer.example', to: `r${i % 50}@bench-sink.test`, subject: `m${i}`, text })
                  if (!/^250/.test(String(info.response))) throw new Error(String(info.response))
                } catch (err) {
                  if (measure) failures++
                  else throw err
                }
                if (measure) lat.push(performance.now() - s)
              }
            }))
          }
          // idle: Haraka's CPU over 4 s with no mail, so what the cycles themselves cost shows without the noise of SMTP
          await new Promise((r) => setTimeout(r, 1500))
          const idleCycles0 = await redis.client.llen(keys.monitorCycles())
          const idleCpu0 = cpuMs(haraka.process.pid!)
          await new Promise((r) => setTimeout(r, 4000))
          const idleCpuMs = cpuMs(haraka.process.pid!) - idleCpu0
          const idleCycles = (await redis.client.llen(keys.monitorCycles())) - idleCycles0
          await send(1, 1, false) // alone first: the first AUTH and Lua script definitions, not under concurrency
          await send(49, c, false) // warm-up: opens the pool's connections
          // both runs settle alike: the warm-up's deliveries are tried (and put back to wait) before the measure
          await new Promise((r) => setTimeout(r, 3000))
          if (withMonitor) {
            // cycles are running before the measure starts
            const until = Date.now() + 15000
            while ((await redis.client.llen(keys.monitorCycles())) < 2) {
              if (Date.now() > until) throw new Error(`posta-monitor ran no cycle; Haraka log: ${haraka.logFile}`)
              await new Promise((r) => setTimeout(r, 200))
            }
          }
          const cycles0 = await redis.client.llen(keys.monitorCycles())
          const cpu0 = cpuMs(haraka.process.pid!)
          const t0 = performance.now()
          await send(n, c, true)
          const seconds = (performance.now() - t0) / 1000
          const cpu = cpuMs(haraka.process.pid!) - cpu0
          const cyc = (await redis.client.lrange(keys.monitorCycles(), 0, -1)).slice(0, (await redis.client.llen(keys.monitorCycles())) - cycles0)
            .map((v) => JSON.parse(v) as CycleReport)
          if (withMonitor && cyc.some((r) => r.ips !== poolSize)) throw new Error('a cycle did not see the whole pool')
          lat.sort((a, b) => a - b)
          const cycleMs = cyc.map((r) => r.duration_ms)
          const row: SmtpRow = {
            monitor: withMonitor, round: round_, idle_cpu_ms_per_s: round(idleCpuMs / 4, 1), idle_cycles: idleCycles, submit_msgs_per_s: round(n / seconds, 1), haraka_cpu_ms_per_msg: round(cpu / n, 2), p50_ms: round(lat[Math.floor(lat.length * 0.5)], 1),
            p99_ms: round(lat[Math.floor(lat.length * 0.99)], 1), failures, cycles_during_run: cyc.length,
            cycle_ms_median: cycleMs.length ? median(cycleMs) : null,
            busy_share: cycleMs.length ? round(cycleMs.reduce((a, b) => a + b, 0) / 1000 / seconds, 2) : null,
            delivered_to_sink: sink.messages,
          }
          console.log(
            `round ${round_}, monitor ${withMonitor ? 'cycling every second' : 'off                 '}: submitted ${n} in ${round(seconds, 2)} s = ${row.submit_msgs_per_s} msg/s, ` +
              `p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms, Haraka CPU ${row.haraka_cpu_ms_per_msg} ms/msg, failures ${failures}` +
              `; idle ${row.idle_cpu_ms_per_s} ms CPU/s${withMonitor ? ` (${idleCycles} cycles in 4 s)` : ''}` +
              (withMonitor ? `; ${cyc.length} cycles during the run (median ${row.cycle_ms_median} ms each, busy ${Math.round((row.busy_share ?? 0) * 100)}% of the time)` : ''),
          )
          out.push(row)
          if (failures) throw new Error(`${failures} submissions failed`)
        } finally {
          tr.close()
          await haraka.stop()
          await sink.close()
          await redis.close()
        }
      }
    }
  } finally {
    await dns.close()
  }
  const off = median(out.filter((r) => !r.monitor).map((r) => r.submit_msgs_per_s))
  const on = median(out.filter((r) => r.monitor).map((r) => r.submit_msgs_per_s))
  const ratio = round(on / off, 3)
  const busy = out.filter((r) => r.monitor && r.busy_share !== null).map((r) => r.busy_share!)
  console.log(`SMTP submission with monitor cycles running / without: ${on} / ${off} msg/s = ${ratio}x (median of ${rounds} run(s) each; 1.0 = no effect)`)
  const cpuOff = median(out.filter((r) => !r.monitor).map((r) => r.haraka_cpu_ms_per_msg))
  const cpuOn = median(out.filter((r) => r.monitor).map((r) => r.haraka_cpu_ms_per_msg))
  console.log(`Haraka CPU per submitted message, with cycles / without: ${cpuOn} / ${cpuOff} ms = ${round(cpuOn / cpuOff, 3)}x (medians)`)
  const idleOff = median(out.filter((r) => !r.monitor).map((r) => r.idle_cpu_ms_per_s))
  const idleOn = median(out.filter((r) => r.monitor).map((r) => r.idle_cpu_ms_per_s))
  const perCycle = median(out.filter((r) => r.monitor && r.idle_cycles > 0).map((r) => ((r.idle_cpu_ms_per_s - idleOff) * 4) / r.idle_cycles))
  console.log(`Haraka idle (no mail), CPU per second: ${idleOn} ms with a cycle every second, ${idleOff} ms without: one cycle of ${poolSize} IPs x 8 zones costs about ${round(perCycle, 0)} ms of Haraka CPU`)
  console.log(`(the monitor was running a cycle ${Math.round(median(busy) * 100)}% of the measured time, median; client, DNS server, Redis and Haraka share ${os.cpus().length} CPU(s))`)
  return { n, c, pool: poolSize, rounds, load_at_start: load0, runs: out, median_off: off, median_on: on, ratio, haraka_cpu_ms_per_msg_off: cpuOff, haraka_cpu_ms_per_msg_on: cpuOn, idle_cpu_ms_per_s_off: idleOff, idle_cpu_ms_per_s_on: idleOn, cpu_ms_per_cycle: round(perCycle, 0) }
}

main()
  .then(() => setTimeout(() => process.exit(0), 2000).unref())
  .catch((err) => {
    console.error(err)
    process.exit(1)
  })
