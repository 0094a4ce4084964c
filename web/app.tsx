// The customer and operator panel (a Hono app over the same Redis as the relay).
// Until the panel issue lands it serves a landing page with the connection settings and a health check.
import { Hono } from 'hono'
import { secureHeaders } from 'hono/secure-headers'
import type Redis from 'ioredis'
import type { Settings } from '../lib/settings'

export interface PanelDeps {
  redis: Redis
  settings: Settings
}

export function createApp({ redis, settings }: PanelDeps) {
  const app = new Hono()
  app.use('*', secureHeaders())

  app.get('/healthz', async (c) => {
    try {
      await redis.ping()
      return c.json({ ok: true, redis: 'up' })
    } catch (err) {
      return c.json({ ok: false, redis: 'down', error: (err as Error).message }, 503)
    }
  })

  app.get('/', (c) =>
    c.html(
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <title>Posta</title>
        </head>
        <body>
          <h1>Posta relay</h1>
          <p>The customer panel is coming. To send mail, set your mail client to:</p>
          <ul>
            <li>SMTP server: <code>&lt;your account&gt;.{settings.serviceDomain}</code></li>
            <li>Port {settings.submissionPort} with STARTTLS, or {settings.smtpsPort} with SSL/TLS</li>
            <li>Authentication: normal password (PLAIN or LOGIN), with the login and password you were given</li>
          </ul>
        </body>
      </html>,
    ),
  )
  return app
}
