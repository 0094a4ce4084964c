// `npm run bench:monitor`: one DNSBL cycle of 256 pool IPs x 8 zones against a DNS server on loopback, at three
// concurrencies, printing queries/s and the cycle time (target: under 30 s with bounded concurrency).
// BENCH_IPS (256), BENCH_ZONES (8), BENCH_LATENCY_MS (0: the loopback server answers at once; set e.g. 20 to model
// a recursive resolver's cache misses).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { keys } from '../lib/keys'
import { monitorOptionsFromIni, runCycle, type Logger } from '../lib/monitor'
import { addIp } from '../lib/pool'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { posta } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { startFastSink } from '../testkit/fastsink'
import { startHaraka } from '../testkit/haraka'
import { testRedis } from '../testkit/redis'

const quiet: Logger = { info: () => {}, notice: () => {}, warn: () => {}, crit: () => {} }

function intEnv(name: string, dflt: number): number {
  const v = Number(process.env[name] ?? dflt)
  return Number.isFinite(v) && v >= 0 ? v : dflt
}

async function main() {
  const nIps = intEnv('BENCH_IPS', 256)
  const nZones = intEnv('BENCH_ZONES', 8)
  const latency = intEnv('BENCH_LATENCY_MS', 0)
  const redis = await testRedis()
  const dns = await startDns({ latencyMs: latency })
  try {
    const ips = Array.from({ length: nIps }, (_, i) => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`)
    for (const ip of ips) await addIp(redis.client, ip, `mta-${ip.replace(/\./g, '-')}.bench.test`)
    const zones = Array.from({ length: nZones }, (_, i) => `z${i}.bench.test`)
    // a few listings, errors and timeouts, as a real cycle meets them
    dns.set(zones[0], ips[3], { a: ['127.0.0.2'], txt: 'bench listing' })
    dns.set(zones[1], ips[5], { a: ['127.255.255.254'] })
    const ini = (concurrency: number) => {
      const sections: Record<string, Record<string, string>> = {
        main: { interval: '600', resolvers: dns.server, timeout_ms: '2000', concurrency: String(concurrency), zones: zones.join(',') },
      }
      for (const z of zones) sections[`zone ${z}`] = { listed: '127.0.0.2:listed', errors: '127.255.255.0/24', ipv6: 'true' }
      return sections
    }
    console.log(`# DNSBL cycle: ${nIps} IPs x ${nZones} zones, loopback DNS (latency ${latency} ms), ${os.cpus().length} CPUs, node ${process.version}`)
    const rows: Record<string, number | string>[] = []
    for (const concurrency of [8, 32, 64]) {
      // each run starts from a pool with nothing suspended
      await redis.client.del(...ips.map((ip) => `posta:monitor:ip:${ip}`))
      for (const ip of ips) await redis.client.hset(keys.pool(), ip, JSON.stringify({ ip, helo: `mta.bench.test`, state: 'active', since: '', added_at: '' }))
      await redis.client.incr(keys.poolVersion())
      const q0 = dns.queries
      const r = await runCycle(redis.client, monitorOptionsFromIni(ini(concurrency)), { node: 'bench', log: quiet })
      const queries = dns.queries - q0
      rows.push({ concurrency, cycle_s: r.duration_ms / 1000, queries, queries_per_s: Math.round(queries / (r.duration_ms / 1000)), listed: r.listed.length, unknown: r.unknown, suspended: r.suspended.length })
    }
    for (const row of rows) {
      console.log(`concurrency ${String(row.concurrency).padStart(3)}: cycle ${String(row.cycle_s).padStart(7)} s, ${row.queries} queries, ${row.queries_per_s} queries/s, listed ${row.listed}, unknown ${row.unknown}, suspended ${row.suspended}`)
    }
    const shipped = rows.find((r) => r.concurrency === 32)!
    console.log(`target: a cycle under 30 s at the shipped concurrency (32): ${Number(shipped.cycle_s) < 30 ? 'MET' : 'MISSED'} (${shipped.cycle_s} s)`)
    const smtp = process.env.BENCH_SMTP === '0' ? null : await smtpWhileCycling(dns, zones)
    console.log(JSON.stringify({ bench: 'monitor', ips: nIps, zones: nZones, latency_ms: latency, runs: rows, smtp }))
  } finally {
    await dns.close()
    await redis.close()
  }
}

/**
 * SMTP submission throughput of one Haraka node with a pool of 256 loopback IPs (all bindable, so deliveries really
 * leave from the pool), once without posta-monitor and once with it running a cycle of 256 IPs x 8 zones every
 * second in the same process, where the service runs it. Fresh Redis for each run.
 */
async function smtpWhileCycling(dns: TestDns, zones: string[]) {
  const n = intEnv('BENCH_N', 1500)
  const c = intEnv('BENCH_C', 10)
  const pool = Array.from({ length: 256 }, (_, i) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`)
  const plugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8')
  const monitorIni = [`[main]`, `interval=1`, `resolvers=${dns.server}`, `timeout_ms=2000`, `concurrency=32`, `zones=${zones.join(',')}`,
    ...zones.map((z) => `[zone ${z}]\nlisted=127.0.0.2:listed\nerrors=127.255.255.0/24`)].join('\n')
  const out: Record<string, unknown>[] = []
  for (const withMonitor of [false, true, false, true]) {
    const redis = await testRedis()
    const sink = await startFastSink()
    const env = { REDIS_URL: redis.url }
    for (const ip of pool) await addIp(redis.client, ip, 'mta.bench.test')
    await posta(['route', 'set', 'bench-sink.test', `127.0.0.1:${sink.port}`], env)
    await posta(['package', 'set', 'bench', '--traffic', '1TB'], env)
    const t = (await posta(['tenant', 'create', `bench${Date.now() % 100000}`, '--package', 'bench', '--contact', 'b@bench.example', '--json'], env)).json()
    const haraka = await startHaraka({
      redisUrl: redis.url,
      overrides: {
        plugins: withMonitor ? plugins : plugins.replace(/^posta-monitor$/m, '# posta-monitor'),
        'posta-monitor.ini': monitorIni,
        'outbound.ini': 'enable_tls=false\nconcurrency_max=100\n',
      },
    })
    const tr = nodemailer.createTransport({ host: '127.0.0.1', port: haraka.submissionPort, requireTLS: true, pool: true, maxConnections: c, maxMessages: Infinity, auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false } })
    const text = ('x'.repeat(76) + '\r\n').repeat(26)
    const send = async (count: number) => {
      let next = 0
      await Promise.all(Array.from({ length: c }, async () => {
        while (next < count) {
          const i = next++
          await tr.sendMail({ from: 'bench@customer.example', to: `r${i % 50}@bench-sink.test`, subject: `m${i}`, text })
        }
      }))
    }
    await send(50) // warm-up
    if (withMonitor) await new Promise((r) => setTimeout(r, 2500)) // cycles are running
    const cycles0 = await redis.client.llen(keys.monitorCycles())
    const t0 = performance.now()
    await send(n)
    const submit = (performance.now() - t0) / 1000
    await sink.waitFor(n + 50, 120000)
    const e2e = (performance.now() - t0) / 1000
    const cycles = (await redis.client.llen(keys.monitorCycles())) - cycles0
    tr.close()
    await haraka.stop()
    await sink.close()
    await redis.close()
    const row = { monitor: withMonitor, submit_msgs_per_s: Math.round(n / submit), e2e_msgs_per_s: Math.round(n / e2e), cycles_during_run: cycles }
    console.log(`SMTP with a 256-IP pool, monitor ${withMonitor ? 'cycling every second' : 'off'}: submitted ${row.submit_msgs_per_s} msg/s, end-to-end ${row.e2e_msgs_per_s} msg/s, ${cycles} cycles during the run`)
    out.push(row)
  }
  const med = (on: boolean, k: string) => {
    const v = out.filter((r) => r.monitor === on).map((r) => Number(r[k])).sort((a, b) => a - b)
    return v[Math.floor(v.length / 2)]
  }
  const ratio = Math.round((med(true, 'submit_msgs_per_s') / med(false, 'submit_msgs_per_s')) * 100) / 100
  console.log(`SMTP submission with cycles running / without: ${ratio}x (best of 2 each; 1.0 = no effect)`)
  return { runs: out, ratio }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
