// The panel as `npm start` serves it with POSTA_PANEL_TLS=1: HTTPS with the service's (self-signed) certificate,
// Secure cookies and HSTS; a tenant made with the CLI logs in; a message relayed through SMTP AUTH shows in
// /api/v1/usage with the figures `posta usage` shows.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as https from 'node:https'
import * as os from 'node:os'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { freePort } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { serviceEnv, startService, type Service, type ServicePorts } from '../testkit/service'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

describe('panel under npm start with POSTA_PANEL_TLS=1', function () {
  this.timeout(120000)
  let dataDir: string
  let svc: Service
  let env: Record<string, string>
  let ports: ServicePorts & { metrics: number }
  let ca: Buffer

  function request(method: string, p: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: ports.panel, path: p, method, headers, ca, servername: 'relay.example' }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
      })
      req.on('error', reject)
      if (body) req.write(body)
      req.end()
    })
  }

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-panel-start-'))
    ports = { smtp: await freePort(), submission: await freePort(), smtps: await freePort(), panel: await freePort(), metrics: await freePort() }
    // the service's own environment (embedded Redis, loopback ports), used by the CLI calls below too
    env = serviceEnv(dataDir, ports, { POSTA_METRICS_PORT: String(ports.metrics), POSTA_PANEL_TLS: '1' }) as Record<string, string>
    svc = await startService(env, ports)
    ca = fs.readFileSync(path.join(dataDir, 'tls', 'cert.pem'))
  })

  after(async () => {
    if (svc && svc.child.exitCode === null) {
      svc.child.kill('SIGINT')
      const timer = setTimeout(() => svc.child.kill('SIGKILL'), 40000)
      await svc.exited
      clearTimeout(timer)
    }
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('serves HTTPS with Secure cookies and HSTS; a CLI-made tenant logs in and sees what it relayed over SMTP', async () => {
    assert.match(svc.out(), new RegExp(`panel https://127\\.0\\.0\\.1:${ports.panel}/`))
    assert.equal((await posta(['package', 'set', 'basic', '--traffic', '10MB'], env)).code, 0)
    const made = await posta(['tenant', 'create', 'acme', '--package', 'basic', '--contact', 'ops@acme.example', '--json'], env)
    assert.equal(made.code, 0, made.stderr)
    const creds = made.json<{ login: string; password: string }>()

    const page = await request('GET', '/login')
    assert.equal(page.status, 200)
    assert.match(String(page.headers['strict-transport-security']), /max-age=\d+/)
    const pre = ([] as string[]).concat(page.headers['set-cookie'] ?? []).find((l) => l.startsWith('posta_csrf='))!
    assert.match(pre, /Secure/)
    const token = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]
    const form = new URLSearchParams({ _csrf: token, login: creds.login, password: creds.password }).toString()
    const login = await request('POST', '/login', {
      'content-type': 'application/x-www-form-urlencoded', origin: `https://127.0.0.1:${ports.panel}`, cookie: pre.split(';')[0],
    }, form)
    assert.equal(login.status, 303, login.body)
    const session = ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((l) => l.startsWith('posta_session='))!
    assert.match(session, /Secure/)
    assert.match(session, /HttpOnly/i)

    const transport = nodemailer.createTransport({
      host: '127.0.0.1', port: ports.submission, secure: false, requireTLS: true, tls: { rejectUnauthorized: false },
      auth: { user: creds.login, pass: creds.password },
    })
    try {
      await transport.sendMail({ from: `me@${creds.login.split('@')[1]}`, to: ['one@example.net', 'two@example.org'], subject: 'panel', text: 'x'.repeat(5000) })
    } finally {
      transport.close()
    }
    const cli = (await posta(['usage', 'acme', '--json'], env)).json<{ used_bytes: number; messages: number }>()
    assert.ok(cli.used_bytes > 10000, `two recipients of a 5 KB message: ${cli.used_bytes}`)
    const auth = `Basic ${Buffer.from(`${creds.login}:${creds.password}`).toString('base64')}`
    const api = JSON.parse((await request('GET', '/api/v1/usage', { authorization: auth })).body)
    assert.equal(api.used_bytes, cli.used_bytes)
    assert.equal(api.messages, 1)
    assert.equal(api.recipients, 2)
    const dash = await request('GET', '/?lang=en', { cookie: session.split(';')[0] })
    assert.equal(dash.status, 200)
    assert.match(dash.body, /data-testid="messages">1</)
    assert.match(dash.body, /data-testid="recipients">2</)
  })
})
