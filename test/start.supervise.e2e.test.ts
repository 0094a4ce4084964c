// `npm start` as a supervised service: SIGTERM to the npm process stops every process it started (pids checked),
// an open session gets 421 and a message in progress is finished first, a second start on the same data dir or a
// busy port is refused, a stale lock is taken over, a killed Haraka or panel is restarted without losing a
// message that got its 250, and repeated crashes end in a give-up with a non-zero exit.
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { pidAlive } from '../service/lock'
import { canConnect, waitFor } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { childPids, refusedStart, scratch, serviceEnv, servicePorts, startService, type Service } from '../testkit/service'
import { startSink, type Sink } from '../testkit/sink'
import { b64, SmtpClient } from '../testkit/smtp-client'

/** True while the pid is a live process (a zombie, exited but not yet reaped by its new parent, is not). */
function runningPid(pid: number): boolean {
  if (!pidAlive(pid)) return false
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}

function deadPid(): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['-e', ''])
    c.on('exit', () => resolve(c.pid!))
  })
}

describe('npm start supervises Haraka and the panel', function () {
  this.timeout(240000)
  const work = scratch('posta-supervise-')
  const { leftovers } = work
  const tmp = () => work.dir()
  after(() => {
    work.cleanUp()
  })

  it('POSTA_RESTART_DELAY_MS must be a number of milliseconds', async () => {
    const r = await refusedStart(serviceEnv(tmp(), await servicePorts(), { POSTA_RESTART_DELAY_MS: '1s' }))
    assert.equal(r.code, 1)
    assert.match(r.out, /POSTA_RESTART_DELAY_MS=1s is refused: allowed is a whole number of milliseconds from 10 to 60000/)
  })

  describe('started as `npm start`, stopped with SIGTERM', () => {
    let svc: Service
    let dataDir: string
    let stalePid: number

    before(async () => {
      dataDir = tmp()
      stalePid = await deadPid()
      fs.writeFileSync(path.join(dataDir, 'posta.lock'), `${stalePid}\n`)
      const ports = await servicePorts()
      // `npm start` builds first: generous on a loaded machine
      svc = await startService(serviceEnv(dataDir, ports), ports, 'npm', 200000)
      leftovers.push(svc.launcherPid(), ...svc.pids('haraka'), ...svc.pids('panel'))
    })
    after(() => {
      if (svc?.child.exitCode === null) svc.child.kill('SIGKILL')
    })

    it('takes over a stale lock of a dead pid, and says so', () => {
      assert.match(svc.out(), new RegExp(`took over the lock .*posta\\.lock of a service that is gone \\(pid ${stalePid}\\)`))
      assert.equal(fs.readFileSync(path.join(dataDir, 'posta.lock'), 'utf8').trim(), String(svc.launcherPid()))
    })

    it('refuses a second start on the same data dir (other ports) with the lock holder\'s pid', async () => {
      const r = await refusedStart(serviceEnv(dataDir, await servicePorts()))
      assert.equal(r.code, 1)
      assert.match(r.out, new RegExp(`another Posta service \\(pid ${svc.launcherPid()}\\) runs on this data dir \\(lock .*posta\\.lock\\)`))
      assert.equal(fs.readFileSync(path.join(dataDir, 'posta.lock'), 'utf8').trim(), String(svc.launcherPid()), 'the lock stays the first one\'s')
    })

    it('refuses a second start on a busy port and names the port', async () => {
      const ports = { ...(await servicePorts()), smtps: svc.ports.smtps }
      const other = tmp()
      const r = await refusedStart(serviceEnv(other, ports))
      assert.equal(r.code, 1)
      assert.match(r.out, new RegExp(`port ${svc.ports.smtps} on 127\\.0\\.0\\.1 is in use: stop what holds it, or set POSTA_SMTPS_PORT to another port`))
      assert.equal(fs.existsSync(path.join(other, 'posta.lock')), false, 'a refused start leaves no lock')
    })

    it('SIGTERM to npm: open sessions get 421, Haraka, the panel, Redis and the launcher exit, the lock is gone', async () => {
      const launcher = svc.launcherPid()
      const [harakaPid] = svc.pids('haraka')
      const [panelPid] = svc.pids('panel')
      const redisPid = Number(fs.readFileSync(path.join(dataDir, 'redis', 'redis.log'), 'utf8').match(/pid=(\d+)/)?.[1])
      for (const p of [launcher, harakaPid, panelPid, redisPid]) assert.ok(p > 0 && pidAlive(p), `pid ${p} runs`)
      const idle = await SmtpClient.connect({ port: svc.ports.smtp })
      assert.equal((await idle.ehlo()).code, 250)
      const fresh = await SmtpClient.connect({ port: svc.ports.submission })
      const started = Date.now()
      svc.child.kill('SIGTERM')
      for (const c of [idle, fresh]) {
        const bye = await c.read(20000)
        assert.equal(bye.code, 421)
        assert.match(bye.raw, /^421 4\.3\.2 Service shutting down, try again later/)
        assert.ok(await c.waitClosed(5000), 'the session is closed after the 421')
      }
      const { code } = await svc.exited
      assert.equal(code, 0, svc.out().slice(-2000))
      assert.ok(Date.now() - started < 20000, 'no wait for the 30 s force timeout once the sessions are gone')
      await waitFor(async () => [launcher, harakaPid, panelPid, redisPid].every((p) => !pidAlive(p)), 'every process to exit', 15000)
      assert.equal(fs.existsSync(path.join(dataDir, 'posta.lock')), false)
      assert.equal(await canConnect({ host: '127.0.0.1', port: svc.ports.panel }), false)
      assert.match(svc.out(), /\[posta-service\] draining open sessions before exit sessions=2/)
    })
  })

  describe('under load, with a tenant and a sink', () => {
    let redis: TestRedis
    let sink: Sink
    let svc: Service
    let creds: { login: string; password: string }
    const sinkDomain = `${uniqueName('sink')}.test`

    before(async () => {
      redis = await testRedis()
      sink = await startSink()
      const ports = await servicePorts()
      svc = await startService(serviceEnv(tmp(), ports, { REDIS_URL: redis.url, POSTA_RESTART_DELAY_MS: '200' }), ports)
      // after the start: the CLI reads the service domain the service published
      const env = { REDIS_URL: redis.url }
      const pkg = uniqueName('pkg')
      assert.equal((await posta(['package', 'set', pkg, '--traffic', '1GB'], env)).code, 0)
      const t = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
      assert.equal(t.code, 0, t.stderr)
      creds = t.json()
      assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    })
    after(async () => {
      if (svc) {
        leftovers.push(...svc.pids('haraka'), ...svc.pids('panel'))
        if (svc.child.exitCode === null) svc.child.kill('SIGKILL')
      }
      await sink?.close()
      await redis?.close()
    })

    const transport = () =>
      nodemailer.createTransport({
        host: '127.0.0.1', port: svc.ports.submission, requireTLS: true,
        auth: { user: creds.login, pass: creds.password }, tls: { rejectUnauthorized: false },
        connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: 10000,
      })

    it('kill -9 of Haraka under load: restarted, and every message that got a 250 reaches the sink', async () => {
      const [first] = svc.pids('haraka')
      const accepted: string[] = []
      let refused = 0
      let running = true
      const sender = async (n: number) => {
        for (let i = 0; running; i++) {
          const subject = `load ${n}.${i} ${uniqueName('m')}`
          try {
            const info = await transport().sendMail({ from: `sender@${creds.login.split('@')[1]}`, to: `rcpt@${sinkDomain}`, subject, text: 'x' })
            if (/^250 /.test(info.response)) accepted.push(subject)
          } catch {
            refused++ // the connection died with Haraka, or nobody listens yet: the client keeps its message
            await new Promise((r) => setTimeout(r, 100))
          }
        }
      }
      const senders = [0, 1, 2, 3].map((n) => sender(n))
      let atRestart: number
      try {
        await waitFor(async () => accepted.length >= 8, 'the first messages accepted', 60000)
        process.kill(first, 'SIGKILL')
        await waitFor(async () => svc.pids('haraka').length === 2, 'haraka to be restarted', 30000)
        assert.match(svc.out(), /\[posta\] haraka died \(killed by signal SIGKILL\); restarting in 0\.2s \(crash 1 of 5 allowed within 60s\)/)
        atRestart = accepted.length
        await waitFor(async () => accepted.length >= atRestart + 8, 'messages accepted after the restart', 90000)
      } finally {
        running = false // a failed wait must stop the senders too, or mocha never exits
        await Promise.all(senders)
      }
      assert.ok(refused > 0 || atRestart > 0)
      await waitFor(async () => accepted.every((s) => sink.messages.some((m) => m.raw.includes(s))), 'every accepted message at the sink', 90000).catch(() => {
        const missing = accepted.filter((s) => !sink.messages.some((m) => m.raw.includes(s)))
        throw new Error(`${missing.length} of ${accepted.length} accepted messages never reached the sink: ${missing.slice(0, 5).join(', ')}`)
      })
      assert.equal(pidAlive(first), false)
    })

    it('kill -9 of the panel: restarted, /healthz answers again', async () => {
      const [first] = svc.pids('panel')
      process.kill(first, 'SIGKILL')
      await waitFor(async () => svc.pids('panel').length === 2, 'the panel to be restarted', 30000)
      assert.match(svc.out(), /\[posta\] panel died \(killed by signal SIGKILL\); restarting in 0\.2s/)
      await waitFor(async () => (await fetch(`http://127.0.0.1:${svc.ports.panel}/healthz`).catch(() => null))?.status === 200, 'the panel to answer', 30000)
    })

    it('SIGTERM: a message in progress is finished (250), then the session gets 421', async () => {
      const c = await SmtpClient.connect({ port: svc.ports.submission })
      await c.ehlo()
      assert.equal((await c.starttls()).code, 220)
      await c.ehlo()
      assert.equal((await c.send(`AUTH PLAIN ${b64(`\0${creds.login}\0${creds.password}`)}`)).code, 235)
      assert.equal((await c.send(`MAIL FROM:<sender@${creds.login.split('@')[1]}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<late@${sinkDomain}>`)).code, 250)
      const before = sink.messages.length
      svc.child.kill('SIGTERM')
      await new Promise((r) => setTimeout(r, 1000))
      assert.equal((await c.send('DATA')).code, 354)
      const subject = uniqueName('late')
      const done = await c.send(`From: sender@${creds.login.split('@')[1]}\r\nSubject: ${subject}\r\n\r\nfinished during the drain\r\n.`)
      assert.equal(done.code, 250, done.raw)
      const bye = await c.read(20000)
      assert.equal(bye.code, 421)
      const { code } = await svc.exited
      assert.equal(code, 0)
      for (const p of [...svc.pids('haraka'), ...svc.pids('panel')]) assert.equal(pidAlive(p), false, `pid ${p} is gone`)
      assert.ok(sink.messages.length >= before)
    })
  })

  it('kill -9 of the launcher: Haraka and the panel stop by themselves; the next start takes over the lock and the Redis left behind', async () => {
    const dataDir = tmp()
    const ports = await servicePorts()
    const first = await startService(serviceEnv(dataDir, ports), ports)
    const launcher = first.launcherPid()
    const children = [...first.pids('haraka'), ...first.pids('panel')]
    const redisPid = Number(fs.readFileSync(path.join(dataDir, 'redis', 'redis.log'), 'utf8').match(/pid=(\d+)/)?.[1])
    leftovers.push(launcher, ...children, redisPid)
    process.kill(launcher, 'SIGKILL')
    await first.exited
    await waitFor(async () => children.every((p) => !pidAlive(p)), 'Haraka and the panel to stop without their launcher', 40000)
    assert.ok(pidAlive(redisPid), 'the embedded redis-server is left running (nothing watches for it)')
    const again = await servicePorts()
    const second = await startService(serviceEnv(dataDir, again), again)
    try {
      assert.match(second.out(), new RegExp(`took over the lock .* of a service that is gone \\(pid ${launcher}\\)`))
      assert.match(second.out(), /stopped the embedded redis-server a previous launcher left running on .*redis\.sock/)
      // the stop is asked of redis-server: wait for it to go (an exited child of the killed launcher may linger as a zombie)
      await waitFor(async () => !runningPid(redisPid), 'the left-behind redis-server to stop', 20000)
      assert.equal((await fetch(`http://127.0.0.1:${again.panel}/healthz`)).status, 200)
    } finally {
      leftovers.push(second.launcherPid(), ...second.pids('haraka'), ...second.pids('panel'))
      second.child.kill('SIGTERM')
      assert.equal((await second.exited).code, 0)
    }
  })

  it('cluster mode (nodes=2 in smtp.ini): SIGTERM gives each worker\'s open session a 421, every process exits', async () => {
    const redis = await testRedis()
    try {
      const configDir = tmp()
      fs.cpSync(path.join(PROJECT_ROOT, 'config'), configDir, { recursive: true })
      const smtpIni = path.join(configDir, 'smtp.ini')
      fs.writeFileSync(smtpIni, fs.readFileSync(smtpIni, 'utf8').replace(/^nodes=0$/m, 'nodes=2'))
      const ports = await servicePorts()
      const svc = await startService(serviceEnv(tmp(), ports, { REDIS_URL: redis.url, POSTA_CONFIG_DIR: configDir }), ports)
      const [master] = svc.pids('haraka')
      const workers = () => childPids(master)
      await waitFor(async () => workers().length === 2, 'two Haraka workers', 30000)
      const forked = workers()
      leftovers.push(master, ...forked, ...svc.pids('panel'))
      // a few sessions, so that both workers are likely to hold some
      const sessions = await Promise.all([0, 1, 2, 3].map(() => SmtpClient.connect({ port: ports.smtp })))
      for (const c of sessions) assert.equal((await c.ehlo()).code, 250)
      const started = Date.now()
      svc.child.kill('SIGTERM')
      for (const c of sessions) {
        const bye = await c.read(35000)
        assert.match(bye.raw, /^421 4\.3\.2 Service shutting down, try again later/)
      }
      assert.equal((await svc.exited).code, 0, svc.out().slice(-2000))
      assert.ok(Date.now() - started < 30000, `stopped in ${Date.now() - started} ms`)
      await waitFor(async () => [master, ...forked, ...svc.pids('panel')].every((p) => !pidAlive(p)), 'every process to exit', 15000)
    } finally {
      await redis.close()
    }
  })

  it('gives up after repeated crashes and exits non-zero, leaving no process behind', async () => {
    const redis = await testRedis()
    try {
      // a plugin that does not exist: Haraka refuses to start (ignore_bad_plugins=0), every time
      const configDir = tmp()
      fs.cpSync(path.join(PROJECT_ROOT, 'config'), configDir, { recursive: true })
      fs.appendFileSync(path.join(configDir, 'plugins'), '\nposta-no-such-plugin\n')
      const ports = await servicePorts()
      const env = serviceEnv(tmp(), ports, { REDIS_URL: redis.url, POSTA_CONFIG_DIR: configDir, POSTA_RESTART_DELAY_MS: '50' })
      const r = await refusedStart(env)
      assert.equal(r.code, 1, r.out.slice(-2000))
      const deaths = [...r.out.matchAll(/\[posta\] haraka died \(exit code (\d+)\)/g)]
      assert.equal(deaths.length, 5, r.out.slice(-3000))
      assert.match(r.out, /restarting in 0\.05s \(crash 1 of 5/)
      assert.match(r.out, /restarting in 0\.4s \(crash 4 of 5/)
      assert.match(r.out, /haraka died \(exit code \d+\): 5 crashes within 60s, giving up/)
      assert.match(r.out, /posta: haraka crashed 5 times within 60s \(last: exit code \d+\); stopping the node/)
      const pids = [...r.out.matchAll(/\[posta\] (?:haraka|panel) running \(pid (\d+)\)/g)].map((m) => Number(m[1]))
      assert.equal(pids.length, 6, 'five Haraka starts and one panel')
      await waitFor(async () => pids.every((p) => !pidAlive(p)), 'no child left', 10000)
      assert.equal(await canConnect({ host: '127.0.0.1', port: ports.panel }), false)
    } finally {
      await redis.close()
    }
  })
})
