// The panel process of `npm start` (supervised by service/start.ts, which restarts it if it dies): the web panel
// on POSTA_PANEL_PORT (HTTPS with POSTA_PANEL_TLS, on the node's certificate), with its own Redis client. Settings
// come from the same environment as the launcher's (which passes POSTA_CONFIG_DIR).
import { serve } from '@hono/node-server'
import * as fs from 'node:fs'
import * as https from 'node:https'
import * as path from 'node:path'
import { AUTH_INI, readConfigFile } from '../lib/inis'
import { connectHotPath } from '../lib/redis'
import { loadSettings } from '../lib/settings'
import { createApp } from '../web/app'
import { PROJECT_ROOT } from './haraka-dir'
import { exitWithParent } from './parent'
import { serviceCertificate } from './tls'

function main() {
  const settings = loadSettings()
  const configDir = path.resolve(process.env.POSTA_CONFIG_DIR || path.join(PROJECT_ROOT, 'config'))
  // The panel's own client fails fast while Redis is down (its pages answer 503) and reconnects by itself.
  const redis = connectHotPath(settings.redisUrl, { commandTimeout: 2000 })
  redis.on('error', () => {})
  const app = createApp({ redis, settings, auth: readConfigFile(configDir, AUTH_INI).values.main, secure: settings.panelTls })
  const tls = serviceCertificate(settings)
  const panelTls = settings.panelTls ? { createServer: https.createServer, serverOptions: { key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert) } } : {}
  const panel = serve({ fetch: app.fetch, port: settings.panelPort, hostname: settings.listen, ...panelTls })
  panel.on('error', (err: Error) => {
    process.stderr.write(`posta panel: ${err.message}\n`)
    process.exit(1)
  })
  const stop = () => {
    panel.close()
    redis.disconnect()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  exitWithParent(stop)
}

main()
