// `npm start`: runs a whole Posta node on this machine: Redis (embedded unless REDIS_URL is set), Haraka with
// Posta's plugins, and the panel, each a supervised child process (service/supervisor.ts: a child that dies is
// restarted; too many crashes stop the node). SIGTERM or SIGINT (Ctrl-C) stops everything it started.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { connectTool, describeRedisUrl } from '../lib/redis'
import { checkConfigDir } from '../lib/inis'
import { loadSettings, publishSettings } from '../lib/settings'
import { buildHarakaDir, harakaBin, PROJECT_ROOT } from './haraka-dir'
import { acquireLock, type DataDirLock } from './lock'
import { SUPERVISOR_PID_ENV } from './parent'
import { canConnect, startRedisServer, waitFor, type RedisServer } from './redis-server'
import { harakaStopTimeoutMs } from './shutdown'
import { Supervisor } from './supervisor'
import { serviceCertificate } from './tls'

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, host, () => srv.close(() => resolve(true)))
  })
}

function log(msg: string) {
  process.stdout.write(`[posta] ${msg}\n`)
}

let lock: DataDirLock | null = null

/** SHUTDOWN (AOF flushed) to a redis-server on `socket`, if one answers; true when there was one. */
async function stopOrphanRedis(socket: string): Promise<boolean> {
  if (!fs.existsSync(socket) || !(await canConnect({ path: socket }))) return false
  const orphan = connectTool(`unix://${socket}`)
  try {
    await orphan.connect()
    await orphan.call('SHUTDOWN').catch(() => undefined) // the server closes the connection as it exits
  } finally {
    orphan.disconnect()
  }
  await waitFor(async () => !(await canConnect({ path: socket })), 'the orphaned redis-server to exit', 15000)
  return true
}

/** POSTA_RESTART_DELAY_MS: the wait before the first restart of a child that died (doubling on each crash). */
function restartDelayMs(env: NodeJS.ProcessEnv): number {
  const raw = env.POSTA_RESTART_DELAY_MS
  if (raw === undefined || raw === '') return 1000
  if (!/^\d+$/.test(raw) || Number(raw) < 10 || Number(raw) > 60000) {
    throw new Error(`POSTA_RESTART_DELAY_MS=${raw} is refused: allowed is a whole number of milliseconds from 10 to 60000 (default 1000)`)
  }
  return Number(raw)
}

/** The largest POSTA_NODES taken as a number: more workers than that is a typo, not a machine (`cpus` has no cap). */
const MAX_NODES = 64

/**
 * POSTA_NODES: Haraka's cluster mode, written over `nodes` in smtp.ini (unset: smtp.ini decides). A number of worker
 * processes, `cpus` for one per core, or 0 for no cluster (one process, as `nodes=0`).
 */
function harakaNodes(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.POSTA_NODES
  if (raw === undefined || raw === '') return undefined
  if (raw === 'cpus') return raw
  if (!/^\d+$/.test(raw) || Number(raw) > MAX_NODES) {
    throw new Error(`POSTA_NODES=${raw} is refused: allowed is a whole number of Haraka worker processes from 1 to ${MAX_NODES}, cpus (one per core), or 0 (no cluster: one process); unset, smtp.ini's nodes is used`)
  }
  return String(Number(raw))
}

async function main() {
  const settings = loadSettings()
  const restart = { firstDelayMs: restartDelayMs(process.env) }
  const nodes = harakaNodes(process.env)
  // Every Posta ini is checked before anything starts: one line per refused value, then exit 1.
  const configDir = path.resolve(process.env.POSTA_CONFIG_DIR || path.join(PROJECT_ROOT, 'config'))
  const problems = checkConfigDir(configDir)
  if (problems.length) throw new Error(`not starting, bad settings in ${configDir}:\n${problems.map((p) => `  ${p}`).join('\n')}`)
  fs.mkdirSync(settings.dataDir, { recursive: true })

  // one service per data dir: a second one would share the Redis socket and the queue with the first
  lock = acquireLock(path.join(settings.dataDir, 'posta.lock'))
  if (lock.staleFrom !== null) log(`took over the lock ${lock.file} of a service that is gone (pid ${lock.staleFrom || 'unknown'})`)

  for (const [name, port] of [
    ['POSTA_SMTP_PORT', settings.smtpPort], ['POSTA_SUBMISSION_PORT', settings.submissionPort],
    ['POSTA_SMTPS_PORT', settings.smtpsPort], ['POSTA_PANEL_PORT', settings.panelPort],
  ] as const) {
    if (!(await portFree(settings.listen, port))) {
      throw new Error(`port ${port} on ${settings.listen} is in use: stop what holds it, or set ${name} to another port`)
    }
  }

  let embedded: RedisServer | null = null
  if (!process.env.REDIS_URL) {
    const dir = path.join(settings.dataDir, 'redis')
    const socket = path.join(dir, 'redis.sock')
    // we hold the lock: a redis-server answering on our socket was left by a launcher killed without its stop
    if (await stopOrphanRedis(socket)) log(`stopped the embedded redis-server a previous launcher left running on ${socket}`)
    log(`starting embedded redis-server in ${dir} (set REDIS_URL to use your own)`)
    embedded = await startRedisServer({ dir, socket, persistent: true })
  }
  const redis = connectTool(settings.redisUrl)
  try {
    await redis.connect()
    await redis.ping()
    await publishSettings(redis, settings)
  } catch (err) {
    await embedded?.stop()
    throw new Error(`cannot reach Redis at ${describeRedisUrl(settings.redisUrl)}: ${(err as Error).message}`)
  } finally {
    redis.disconnect()
  }

  const tls = serviceCertificate(settings)

  const dir = buildHarakaDir({
    dir: path.join(settings.dataDir, 'haraka'),
    configDir,
    listen: settings.listen,
    smtpPort: settings.smtpPort,
    submissionPort: settings.submissionPort,
    smtpsPort: settings.smtpsPort,
    tlsKey: tls.key,
    tlsCert: tls.cert,
    me: settings.hostname,
    nodes,
  })
  const env = { ...process.env, REDIS_URL: settings.redisUrl, POSTA_DATA_DIR: settings.dataDir, POSTA_CONFIG_DIR: configDir, [SUPERVISOR_PID_ENV]: String(process.pid) }

  let stopping = false
  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    log(code === 0 ? 'stopping' : 'stopping after a failure')
    // Haraka first: it stops listening, tells open sessions 421 and keeps its queue on disk (config/smtp.ini)
    await Promise.all([haraka.stop('SIGINT', harakaStopTimeoutMs(path.join(dir, 'config', 'smtp.ini'))), panel.stop('SIGTERM', 10000)])
    await embedded?.stop()
    lock?.release()
    log('stopped')
    process.exit(code)
  }
  const giveUp = (reason: string) => {
    process.stderr.write(`posta: ${reason}; stopping the node\n`)
    void stop(1)
  }
  // Each child in its own process group: a Ctrl-C on the terminal reaches the launcher only, which stops the
  // children in order (a second SIGINT would make Haraka exit at once, without draining).
  const haraka = new Supervisor({
    name: 'haraka', log, giveUp, ...restart,
    start: () => spawn(process.execPath, [harakaBin(), '-c', dir], { stdio: 'inherit', env, detached: true }),
  })
  const panel = new Supervisor({
    name: 'panel', log, giveUp, ...restart,
    start: () => spawn(process.execPath, [path.join(__dirname, 'panel.js')], { stdio: 'inherit', env, detached: true }),
  })
  process.on('SIGINT', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))
  haraka.run()
  panel.run()

  log(`SMTP ${settings.smtpPort} (STARTTLS), submission ${settings.submissionPort} (STARTTLS), SMTPS ${settings.smtpsPort} (TLS)`)
  log(`panel ${settings.panelTls ? 'https' : 'http'}://${settings.listen.includes(':') ? `[${settings.listen === '::' ? '::1' : settings.listen}]` : settings.listen}:${settings.panelPort}/`)
  if (nodes !== undefined) log(`haraka nodes=${nodes} (POSTA_NODES)${nodes === '0' ? ': one process, no cluster' : ''}`)
  log(`redis ${describeRedisUrl(settings.redisUrl)}, service domain ${settings.serviceDomain}, data in ${settings.dataDir}`)
  log(`launcher pid ${process.pid}`)
  log('create a package and a tenant: npx posta package set basic --traffic 10GB; npx posta tenant create acme --package basic --contact you@example.net')
}

main().catch((err: Error) => {
  lock?.release()
  process.stderr.write(`posta: ${err.message}\n`)
  process.exit(1)
})
