// The whole service as an operator runs it, for the tests of `npm start`: its launcher (dist/service/start.js, or
// `npm start` itself) on free loopback ports and a data dir of the test's, its services' lookups on loopback.
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { pidAlive } from '../service/lock'
import { canConnect, freePort, waitFor } from '../service/redis-server'

export const START_JS = path.join(PROJECT_ROOT, 'dist', 'service', 'start.js')

export interface ServicePorts { smtp: number; submission: number; smtps: number; panel: number }

export interface Service {
  child: ChildProcess
  env: NodeJS.ProcessEnv
  ports: ServicePorts
  /** Everything the launcher and its children printed so far (stdout and stderr). */
  out(): string
  /** Pids from the "<name> running (pid N)" lines, in order. */
  pids(name: 'haraka' | 'panel'): number[]
  launcherPid(): number
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export async function servicePorts(): Promise<ServicePorts> {
  return { smtp: await freePort(), submission: await freePort(), smtps: await freePort(), panel: await freePort() }
}

/**
 * Scratch data dirs for the services of a test file, and the pids a failed test may leave running: `cleanUp()` (in
 * the file's `after`) kills the pids still alive and removes the dirs.
 */
export function scratch(prefix: string): { dir(): string; leftovers: number[]; cleanUp(): void } {
  const dirs: string[] = []
  const leftovers: number[] = []
  return {
    dir() {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
      dirs.push(d)
      return d
    },
    leftovers,
    cleanUp() {
      for (const p of leftovers) if (p > 0 && pidAlive(p)) process.kill(p, 'SIGKILL')
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
    },
  }
}

/** The environment of a service on loopback: its ports, data dir and service domain; the embedded Redis unless `extra` names one. */
export function serviceEnv(dataDir: string, ports: ServicePorts, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    POSTA_DATA_DIR: dataDir,
    POSTA_LISTEN: '127.0.0.1',
    POSTA_SMTP_PORT: String(ports.smtp),
    POSTA_SUBMISSION_PORT: String(ports.submission),
    POSTA_SMTPS_PORT: String(ports.smtps),
    POSTA_PANEL_PORT: String(ports.panel),
    POSTA_SERVICE_DOMAIN: 'relay.example',
    // the service's lookups (MX, PTR, the monitor's blocklists) stay on loopback (testkit/haraka.ts)
    POSTA_RESOLVERS: '127.0.0.1:9',
    ...extra,
  }
  if (!extra.REDIS_URL) delete env.REDIS_URL
  delete env.NODE_OPTIONS
  return env
}

/** Starts the service (`npm start` itself, or its launcher directly) and waits until its three SMTP ports and the panel listen. */
export async function startService(env: NodeJS.ProcessEnv, ports: ServicePorts, how: 'npm' | 'node' = 'node', waitMs = 60000): Promise<Service> {
  const child = how === 'npm' ? spawn('npm', ['start'], { env, cwd: PROJECT_ROOT }) : spawn(process.execPath, [START_JS], { env, cwd: PROJECT_ROOT })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })))
  const svc: Service = {
    child, env, ports, exited,
    out: () => out,
    pids: (name) => [...out.matchAll(new RegExp(`\\[posta\\] ${name} running \\(pid (\\d+)\\)`, 'g'))].map((m) => Number(m[1])),
    launcherPid: () => Number(/\[posta\] launcher pid (\d+)/.exec(out)?.[1]),
  }
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`exited: ${out}`)
    if (!/launcher pid/.test(out)) return false
    for (const port of [ports.smtp, ports.submission, ports.smtps, ports.panel]) if (!(await canConnect({ host: '127.0.0.1', port }))) return false
    return true
  }, 'the service to listen', waitMs).catch((err) => {
    child.kill('SIGKILL')
    throw new Error(`${err.message}\n${out.slice(-3000)}`)
  })
  return svc
}

/** Runs the launcher expecting it to refuse: its exit code and output (killed after a minute if it does start). */
export function refusedStart(env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [START_JS], { env, cwd: PROJECT_ROOT })
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (out += d))
    const t = setTimeout(() => c.kill('SIGKILL'), 60000)
    c.on('close', (code) => {
      clearTimeout(t)
      resolve({ code, out })
    })
  })
}

/** The child processes of `pid` (Linux /proc): a Haraka master's cluster workers. Empty when it has none or is gone. */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}
