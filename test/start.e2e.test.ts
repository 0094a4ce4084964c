// `npm start` on a fresh data dir: embedded Redis (persistent, AOF), self-signed certificate, Haraka, panel;
// the CLI finds the embedded Redis by itself; SIGINT stops everything it started.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as tls from 'node:tls'
import { canConnect, waitFor } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { refusedStart, serviceEnv, servicePorts, startService, type Service, type ServicePorts } from '../testkit/service'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('npm start (the one-command service)', function () {
  this.timeout(60000)
  let dataDir: string
  let svc: Service
  let env: NodeJS.ProcessEnv
  let ports: ServicePorts

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-start-'))
    ports = await servicePorts()
    env = serviceEnv(dataDir, ports)
    svc = await startService(env, ports, 'node', 40000)
  })

  after(() => {
    if (svc && svc.child.exitCode === null) svc.child.kill('SIGKILL')
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('runs its own persistent Redis under the data dir and the CLI finds it', async () => {
    assert.ok(fs.existsSync(path.join(dataDir, 'redis', 'redis.sock')))
    const r = await posta(['package', 'set', 'basic', '--traffic', '5GB', '--json'], { POSTA_DATA_DIR: dataDir, REDIS_URL: '' })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.json().traffic_bytes, 5e9)
    const t = await posta(['tenant', 'create', 'acme', '--package', 'basic', '--contact', 'ops@acme.example', '--json'], { POSTA_DATA_DIR: dataDir, REDIS_URL: '' })
    assert.equal(t.code, 0, t.stderr)
    assert.equal(t.json().login, 'mail@acme.relay.example')
    assert.equal(t.json().smtp_host, 'acme.relay.example')
    assert.ok(fs.readdirSync(path.join(dataDir, 'redis')).some((f) => f.startsWith('appendonly')), 'AOF persistence is on')
  })

  it('serves SMTPS with a self-signed certificate made on first start', async () => {
    assert.ok(fs.existsSync(path.join(dataDir, 'tls', 'cert.pem')))
    const banner = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: ports.smtps, rejectUnauthorized: false }, () => {
        const cert = s.getPeerCertificate()
        s.once('data', (d) => {
          s.destroy()
          resolve(`${cert.subject?.CN} ${d.toString()}`)
        })
      })
      s.once('error', reject)
    })
    assert.match(banner, /^relay\.example 220 /)
  })

  it('serves the panel with a health check', async () => {
    const res = await fetch(`http://127.0.0.1:${ports.panel}/healthz`)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { ok: true, redis: 'up' })
    const home = await fetch(`http://127.0.0.1:${ports.panel}/`)
    assert.match(await home.text(), /relay\.example/)
  })

  it('stops Haraka and its Redis on SIGINT', async () => {
    const redisPid = Number(fs.readFileSync(path.join(dataDir, 'redis', 'redis.log'), 'utf8').match(/pid=(\d+)/)?.[1])
    assert.ok(redisPid > 0 && alive(redisPid))
    svc.child.kill('SIGINT')
    assert.equal((await svc.exited).code, 0)
    await waitFor(async () => !alive(redisPid), 'redis-server to exit', 10000)
    assert.equal(await canConnect({ host: '127.0.0.1', port: ports.submission }), false)
    assert.equal(await canConnect({ host: '127.0.0.1', port: ports.panel }), false)
  })

  it('says how to install redis-server when it is missing', async () => {
    const e: NodeJS.ProcessEnv = { ...env, PATH: '/nonexistent', POSTA_DATA_DIR: path.join(dataDir, 'other') }
    const r = await refusedStart(e)
    assert.equal(r.code, 1)
    assert.match(r.out, /redis-server is not installed: install it \(.*apt-get install redis-server\) or set REDIS_URL/)
  })
})
