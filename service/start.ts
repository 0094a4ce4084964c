// `npm start`: runs a whole Posta node on this machine: Redis (embedded unless REDIS_URL is set), Haraka with
// Posta's plugins, and the panel. Ctrl-C stops everything it started.
import { serve } from '@hono/node-server'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as https from 'node:https'
import * as net from 'node:net'
import * as path from 'node:path'
import { connectHotPath, connectTool, describeRedisUrl } from '../lib/redis'
import { AUTH_INI, checkConfigDir, readConfigFile } from '../lib/inis'
import { loadSettings, publishSettings } from '../lib/settings'
import { createApp } from '../web/app'
import { buildHarakaDir, harakaBin, PROJECT_ROOT } from './haraka-dir'
import { startRedisServer, type RedisServer } from './redis-server'
import { ensureSelfSigned } from './tls'

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

async function main() {
  const settings = loadSettings()
  // Every Posta ini is checked before anything starts: one line per refused value, then exit 1.
  const configDir = path.resolve(process.env.POSTA_CONFIG_DIR || path.join(PROJECT_ROOT, 'config'))
  const problems = checkConfigDir(configDir)
  if (problems.length) throw new Error(`not starting, bad settings in ${configDir}:\n${problems.map((p) => `  ${p}`).join('\n')}`)
  fs.mkdirSync(settings.dataDir, { recursive: true })

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
    log(`starting embedded redis-server in ${dir} (set REDIS_URL to use your own)`)
    embedded = await startRedisServer({ dir, socket: path.join(dir, 'redis.sock'), persistent: true })
  }
  const redis = connectTool(settings.redisUrl)
  try {
    await redis.connect()
    await redis.ping()
    await publishSettings(redis, settings)
  } catch (err) {
    await embedded?.stop()
    throw new Error(`cannot reach Redis at ${describeRedisUrl(settings.redisUrl)}: ${(err as Error).message}`)
  }

  const tls = settings.tls ?? ensureSelfSigned(path.join(settings.dataDir, 'tls'), settings.serviceDomain)

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
  })
  const env = { ...process.env, REDIS_URL: settings.redisUrl, POSTA_DATA_DIR: settings.dataDir }
  const haraka = spawn(process.execPath, [harakaBin(), '-c', dir], { stdio: 'inherit', env })

  // The panel's own client fails fast while Redis is down (its pages answer 503) and reconnects by itself.
  const panelRedis = connectHotPath(settings.redisUrl, { commandTimeout: 2000 })
  panelRedis.on('error', () => {})
  const app = createApp({ redis: panelRedis, settings, auth: readConfigFile(configDir, AUTH_INI).values.main, secure: settings.panelTls })
  const panelTls = settings.panelTls ? { createServer: https.createServer, serverOptions: { key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert) } } : {}
  const panel = serve({ fetch: app.fetch, port: settings.panelPort, hostname: settings.listen, ...panelTls })
  panel.on('error', (err: Error) => {
    log(`panel: ${err.message}; stopping`)
    void stop(1)
  })

  log(`SMTP ${settings.smtpPort} (STARTTLS), submission ${settings.submissionPort} (STARTTLS), SMTPS ${settings.smtpsPort} (TLS)`)
  log(`panel ${settings.panelTls ? 'https' : 'http'}://${settings.listen.includes(':') ? `[${settings.listen === '::' ? '::1' : settings.listen}]` : settings.listen}:${settings.panelPort}/`)
  log(`redis ${describeRedisUrl(settings.redisUrl)}, service domain ${settings.serviceDomain}, data in ${settings.dataDir}`)
  log('create a package and a tenant: npx posta package set basic --traffic 10GB; npx posta tenant create acme --package basic --contact you@example.net')

  let stopping = false
  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    log('stopping')
    panel.close()
    if (haraka.exitCode === null && haraka.signalCode === null) {
      const exited = new Promise((r) => haraka.once('exit', r))
      haraka.kill('SIGINT') // Haraka handles SIGINT (SIGTERM only as pid 1)
      const timer = setTimeout(() => haraka.kill('SIGKILL'), 35000)
      await exited
      clearTimeout(timer)
    }
    redis.disconnect()
    panelRedis.disconnect()
    await embedded?.stop()
    process.exit(code)
  }
  process.on('SIGINT', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))
  haraka.on('exit', (code, signal) => {
    if (stopping) return
    log(`haraka exited (${signal ?? code}); stopping`)
    void stop(code || 1)
  })
}

main().catch((err: Error) => {
  process.stderr.write(`posta: ${err.message}\n`)
  process.exit(1)
})
