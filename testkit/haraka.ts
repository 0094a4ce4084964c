// Starts a real Haraka process with Posta's plugins on free loopback ports, for tests and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseIni } from '../lib/ini'
import { monitorOptionsFromIni } from '../lib/monitor'
import { buildHarakaDir, harakaBin, PROJECT_ROOT } from '../service/haraka-dir'
import { canConnect, freePort, waitFor } from '../service/redis-server'
import { ensureSelfSigned } from '../service/tls'

export interface HarakaNode {
  host: string
  smtpPort: number
  submissionPort: number
  smtpsPort: number
  dir: string
  logFile: string
  process: ChildProcess
  /** Everything Haraka has logged so far. */
  log(): string
  /** Waits until the log matches. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  stop(): Promise<void>
  /** Kills the process at once (SIGKILL: no shutdown, the queue as it is on disk) and keeps its directory. */
  kill(): Promise<void>
}

export interface StartHarakaOptions {
  redisUrl: string
  /** Whole config files written over the project's (e.g. { 'posta-auth.ini': '...' }). */
  overrides?: Record<string, string>
  /** Extra plain plugins (name -> JS source), e.g. a baseline's routing plugin in a benchmark. */
  extraPlugins?: Record<string, string>
  /** Extra environment (POSTA_SERVICE_DOMAIN, ...). */
  env?: Record<string, string>
  host?: string
  /** An existing node directory to run from again (its queue kept), e.g. after kill(); with `ports`. */
  dir?: string
  ports?: { smtp: number; submission: number; smtps: number }
  /** Node.js flags for the Haraka process (e.g. --cpu-prof in a benchmark). */
  nodeArgs?: string[]
}

/** Starts Haraka again on a stopped or killed node's directory and ports: what it had queued is delivered. */
export function restartHaraka(node: HarakaNode, opts: StartHarakaOptions): Promise<HarakaNode> {
  return startHaraka({ ...opts, host: node.host, dir: node.dir, ports: { smtp: node.smtpPort, submission: node.submissionPort, smtps: node.smtpsPort } })
}

let certs: { key: string; cert: string } | null = null

/**
 * Where tests send the DNS lookups of the service (POSTA_RESOLVERS): a loopback port where nothing answers (an ICMP
 * port-unreachable fails each lookup at once), so no test asks a public resolver an MX, a PTR or a blocklist.
 */
export const TEST_RESOLVERS = '127.0.0.1:9'
// A test Haraka serves no metrics (POSTA_METRICS_PORT=0) unless its test sets POSTA_METRICS_PORT in `env`: parallel
// runs would race for the default port.

/** True when every resolver of the list is on loopback (127.0.0.0/8 or ::1). */
export function loopbackResolvers(list: string[]): boolean {
  return list.length > 0 && list.every((r) => /^(127\.\d+\.\d+\.\d+(:\d+)?|\[::1\](:\d+)?|::1)$/.test(r))
}

/**
 * The config overrides of a test Haraka, made hermetic: without a posta-monitor.ini of the test's own, the monitor is
 * off (removed from config/plugins); a test's posta-monitor.ini must name loopback resolvers only (testkit/dns.ts).
 * Throws for a test that would let a monitor cycle ask a public resolver or blocklist.
 */
export function hermeticOverrides(overrides: Record<string, string> = {}): Record<string, string> {
  const plugins = overrides.plugins ?? fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8')
  const monitorOn = /^\s*posta-monitor\s*$/m.test(plugins)
  if (!monitorOn) return overrides
  const ini = overrides['posta-monitor.ini']
  if (ini === undefined) {
    if (overrides.plugins !== undefined) throw new Error('testkit: a test that lists posta-monitor in its plugins must give a posta-monitor.ini with loopback resolvers (testkit/dns.ts)')
    return { ...overrides, plugins: plugins.replace(/^\s*posta-monitor\s*$/m, '# posta-monitor (off in tests without a posta-monitor.ini of their own: testkit/haraka.ts)') }
  }
  const resolvers = monitorOptionsFromIni(parseIni(ini)).resolvers
  if (!loopbackResolvers(resolvers)) throw new Error(`testkit: posta-monitor.ini resolvers=${resolvers.join(',') || '(empty: the system\'s)'} would ask a public resolver; use the test DNS server (testkit/dns.ts)`)
  return overrides
}

/**
 * A test Haraka's sender policy: `any` (config/posta-domains.ini policy=any) unless the test gives its own
 * posta-domains.ini, so that tests not about sender domains may send as any domain (you@acme.example); the tests of
 * the policy itself (test/domains*.e2e.test.ts) give `verified`, the shipped default.
 */
export function senderPolicyOverrides(overrides: Record<string, string>): Record<string, string> {
  return 'posta-domains.ini' in overrides ? overrides : { ...overrides, 'posta-domains.ini': '[main]\npolicy=any\n' }
}

export function testCerts(): { key: string; cert: string } {
  if (!certs) certs = ensureSelfSigned(path.join(os.tmpdir(), 'posta-test-tls'), 'posta.localhost')
  return certs
}

/** Starts Haraka; when it cannot listen (a port taken between picking and binding), tries again with new ports. */
export async function startHaraka(opts: StartHarakaOptions): Promise<HarakaNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHarakaOnce(opts)
    } catch (err) {
      if (attempt >= 3) throw err
      process.stderr.write(`testkit: Haraka did not start (attempt ${attempt}), trying new ports: ${(err as Error).message.split('\n')[0]}\n`)
    }
  }
}

async function startHarakaOnce(opts: StartHarakaOptions): Promise<HarakaNode> {
  const host = opts.host ?? '127.0.0.1'
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'posta-haraka-'))
  const [smtpPort, submissionPort, smtpsPort] = opts.ports
    ? [opts.ports.smtp, opts.ports.submission, opts.ports.smtps]
    : [await freePort(host), await freePort(host), await freePort(host)]
  const { key, cert } = testCerts()
  buildHarakaDir({ dir, listen: host, smtpPort, submissionPort, smtpsPort, tlsKey: key, tlsCert: cert, me: 'relay.posta.localhost', overrides: senderPolicyOverrides(hermeticOverrides(opts.overrides)), extraPlugins: opts.extraPlugins })
  const logFile = path.join(dir, 'haraka.log')
  const out = fs.openSync(logFile, 'a')
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: opts.redisUrl, POSTA_DATA_DIR: dir, POSTA_RESOLVERS: TEST_RESOLVERS, POSTA_METRICS_PORT: '0', ...opts.env }
  delete env.NODE_OPTIONS // no ts-node hooks inside Haraka: it runs the compiled plugins
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), harakaBin(), '-c', dir], { stdio: ['ignore', out, out], env, cwd: PROJECT_ROOT })
  fs.closeSync(out)
  let exited = false
  let stopping = false
  child.once('exit', (code, signal) => {
    exited = true
    if (stopping) return
    // Haraka died under the test: say why where CI output shows it, and keep its directory.
    const crit = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => /\[(CRIT|EMERG)\]/.test(l)).slice(0, 20).join('\n') : ''
    process.stderr.write(`\ntestkit: Haraka (${dir}) exited unexpectedly (code ${code}, signal ${signal}); its CRIT lines:\n${crit || '(none)'}\n`)
  })
  const read = () => fs.readFileSync(logFile, 'utf8')
  try {
    await waitFor(async () => {
      if (exited) throw new Error('exited')
      for (const port of [smtpPort, submissionPort, smtpsPort]) if (!(await canConnect({ host, port }))) return false
      return true
    }, 'Haraka to listen', 30000)
  } catch {
    stopping = true
    child.kill('SIGKILL')
    throw new Error(`Haraka did not start; its log (${logFile}):\n${read().slice(-4000)}`)
  }
  return {
    host, smtpPort, submissionPort, smtpsPort, dir, logFile, process: child,
    log: read,
    async waitForLog(re, timeoutMs = 10000) {
      let m: RegExpMatchArray | null = null
      await waitFor(async () => (m = read().match(re)) !== null, `log line ${re}`, timeoutMs)
      return m!
    },
    async stop() {
      const died = exited
      stopping = true
      await new Promise<void>((resolve) => {
        if (exited) return resolve()
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        child.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
        child.kill('SIGINT')
      })
      if (!process.env.POSTA_KEEP_TEST_DIRS && !died) fs.rmSync(dir, { recursive: true, force: true })
    },
    async kill() {
      stopping = true
      if (exited) return
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGKILL')
      })
    },
  }
}

/**
 * Runs Haraka with these settings when it is expected not to start: resolves with its exit code and log once it
 * exits; rejects if it listens instead (it started with settings it should have refused).
 */
export async function harakaRefuses(opts: StartHarakaOptions): Promise<{ code: number | null; log: string }> {
  const host = opts.host ?? '127.0.0.1'
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-haraka-'))
  const [smtpPort, submissionPort, smtpsPort] = [await freePort(host), await freePort(host), await freePort(host)]
  const { key, cert } = testCerts()
  buildHarakaDir({ dir, listen: host, smtpPort, submissionPort, smtpsPort, tlsKey: key, tlsCert: cert, me: 'relay.posta.localhost', overrides: senderPolicyOverrides(hermeticOverrides(opts.overrides)) })
  const logFile = path.join(dir, 'haraka.log')
  const out = fs.openSync(logFile, 'a')
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: opts.redisUrl, POSTA_DATA_DIR: dir, POSTA_RESOLVERS: TEST_RESOLVERS, POSTA_METRICS_PORT: '0', ...opts.env }
  delete env.NODE_OPTIONS
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), harakaBin(), '-c', dir], { stdio: ['ignore', out, out], env, cwd: PROJECT_ROOT })
  fs.closeSync(out)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let code: number | null | undefined
  void exited.then((c) => (code = c))
  try {
    await waitFor(async () => code !== undefined || (await canConnect({ host, port: smtpPort })), 'Haraka to exit', 30000)
    if (code === undefined) throw new Error(`Haraka started (listening on ${smtpPort}) with settings it should refuse`)
    return { code, log: fs.readFileSync(logFile, 'utf8') }
  } finally {
    if (code === undefined) {
      child.kill('SIGKILL')
      await exited
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
