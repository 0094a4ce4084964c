// Runs a redis-server child: the embedded default of `npm start` (persistent, AOF, unix socket in the data dir)
// and the private Redis of each test file (no persistence, a free TCP port).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'

export interface RedisServer {
  url: string
  process: ChildProcess
  stop(): Promise<void>
}

export function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

export const REDIS_MISSING = 'redis-server is not installed: install it (Debian/Ubuntu: sudo apt-get install redis-server) or set REDIS_URL to a Redis you run'

function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10000): Promise<void> {
  const until = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const tick = async () => {
      if (await check().catch(() => false)) return resolve()
      if (Date.now() > until) return reject(new Error(`timed out waiting for ${what}`))
      setTimeout(tick, 50)
    }
    void tick()
  })
}

function canConnect(opts: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(opts)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

export interface StartRedisOptions {
  /** Working directory (AOF and logs go here). */
  dir: string
  /** Unix socket path; when set, no TCP port is opened. */
  socket?: string
  port?: number
  persistent?: boolean
}

export async function startRedisServer(opts: StartRedisOptions): Promise<RedisServer> {
  if (!redisServerInstalled()) throw new Error(REDIS_MISSING)
  fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 })
  const args = ['--dir', opts.dir, '--daemonize', 'no', '--protected-mode', 'yes']
  if (opts.socket) args.push('--port', '0', '--unixsocket', opts.socket, '--unixsocketperm', '700')
  else args.push('--port', String(opts.port ?? 0), '--bind', '127.0.0.1')
  if (opts.persistent) args.push('--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '3600 1')
  else args.push('--appendonly', 'no', '--save', '')
  args.push('--logfile', path.join(opts.dir, 'redis.log'))
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  const target: net.NetConnectOpts = opts.socket ? { path: opts.socket } : { port: opts.port!, host: '127.0.0.1' }
  try {
    await waitFor(async () => {
      if (exited) throw new Error('exited')
      return canConnect(target)
    }, 'redis-server to accept connections')
  } catch {
    child.kill('SIGKILL')
    const log = fs.existsSync(path.join(opts.dir, 'redis.log')) ? fs.readFileSync(path.join(opts.dir, 'redis.log'), 'utf8').slice(-2000) : ''
    throw new Error(`redis-server did not start (see ${path.join(opts.dir, 'redis.log')}):\n${log}`)
  }
  return {
    url: opts.socket ? `unix://${opts.socket}` : `redis://127.0.0.1:${opts.port}`,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

/** Ports this process handed out lately: a port is free until its taker binds it, so two calls must not give the same one. */
const handedOut = new Set<number>()

/**
 * A TCP port free right now, for a server a test or benchmark is about to start. Picked at random below Linux's
 * ephemeral range (32768-60999): a port from listen(0) comes from that range, where the very next outgoing
 * connection (to Redis, say) may take it before the server binds it.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  if (handedOut.size > 4000) handedOut.clear()
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000)
    if (handedOut.has(port)) continue
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, host, () => srv.close(() => resolve(true)))
    })
    if (free) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error(`no free TCP port found on ${host} in 20000-31999`)
}

export { waitFor, canConnect }
