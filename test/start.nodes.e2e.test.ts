// POSTA_NODES under `npm start`: Haraka's cluster mode from the environment, over smtp.ini's `nodes`. A bad value is
// refused before anything starts; POSTA_NODES=2 runs a master and two workers that relay mail (each message that
// got a 250 reaches the sink) and whose counters the master's /metrics sums; POSTA_NODES=0 runs one process even
// when smtp.ini says nodes=2.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { freePort, waitFor } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { childPids, refusedStart, scratch, serviceEnv, servicePorts, startService, type Service } from '../testkit/service'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient } from '../testkit/smtp-client'
import { parsePrometheus, valueOf } from './metrics.parse'

async function metrics(port: number) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  assert.equal(res.status, 200)
  return parsePrometheus(await res.text())
}

describe('npm start: POSTA_NODES sets Haraka\'s cluster mode', function () {
  this.timeout(180000)
  const work = scratch('posta-nodes-')
  const { leftovers } = work
  const tmp = () => work.dir()
  after(() => work.cleanUp())

  for (const bad of ['-1', 'abc', '2.5', '65', 'CPUS', ' 2']) {
    it(`refuses POSTA_NODES=${JSON.stringify(bad)} before anything starts, exit 1`, async () => {
      const dataDir = tmp()
      const r = await refusedStart(serviceEnv(dataDir, await servicePorts(), { POSTA_NODES: bad }))
      assert.equal(r.code, 1, r.out)
      assert.ok(
        r.out.includes(`posta: POSTA_NODES=${bad} is refused: allowed is a whole number of Haraka worker processes from 1 to 64, cpus (one per core), or 0 (no cluster: one process)`),
        r.out,
      )
      assert.equal(fs.existsSync(path.join(dataDir, 'posta.lock')), false, 'nothing started: no lock')
      assert.equal(fs.existsSync(path.join(dataDir, 'redis')), false, 'nothing started: no embedded Redis')
    })
  }

  describe('POSTA_NODES=2 (smtp.ini says nodes=0)', () => {
    let redis: TestRedis
    let sink: Sink
    let svc: Service
    let metricsPort: number
    let dataDir: string
    const sinkDomain = `${uniqueName('sink')}.test`

    before(async () => {
      redis = await testRedis()
      sink = await startSink()
      metricsPort = await freePort('127.0.0.1')
      dataDir = tmp()
      const ports = await servicePorts()
      svc = await startService(serviceEnv(dataDir, ports, { REDIS_URL: redis.url, POSTA_NODES: '2', POSTA_METRICS_PORT: String(metricsPort) }), ports)
    })
    after(async () => {
      if (svc) {
        const [master] = svc.pids('haraka')
        leftovers.push(svc.launcherPid(), master, ...childPids(master), ...svc.pids('panel'))
        if (svc.child.exitCode === null) {
          svc.child.kill('SIGTERM')
          await svc.exited
        }
      }
      await sink?.close()
      await redis?.close()
    })

    it('writes nodes=2 into the runtime smtp.ini and says so', () => {
      assert.match(fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'smtp.ini'), 'utf8'), /^nodes=0$/m, 'the project\'s smtp.ini says no cluster')
      assert.match(fs.readFileSync(path.join(dataDir, 'haraka', 'config', 'smtp.ini'), 'utf8'), /^nodes=2$/m)
      assert.match(svc.out(), /\[posta\] haraka nodes=2 \(POSTA_NODES\)\n/)
    })

    it('runs a master and two workers that relay mail; the master\'s /metrics sums them', async () => {
      const [master] = svc.pids('haraka')
      await waitFor(async () => childPids(master).length === 2, 'two Haraka workers', 30000)
      const workers = childPids(master)
      for (const w of workers) assert.match(fs.readFileSync(`/proc/${w}/cmdline`, 'utf8'), /haraka/, `worker ${w} is a Haraka process`)
      await waitFor(async () => valueOf(await metrics(metricsPort), 'posta_haraka_workers') === 2, 'the master to see two workers', 30000)

      const env = { REDIS_URL: redis.url }
      const pkg = uniqueName('pkg')
      assert.equal((await posta(['package', 'set', pkg, '--traffic', '1GB'], env)).code, 0)
      const t = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
      assert.equal(t.code, 0, t.stderr)
      const creds = t.json()
      const from = `sender@${creds.login.split('@')[1]}`
      assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)

      // one session per message: Node's cluster hands connections to the workers in turn
      const N = 10
      const subjects = Array.from({ length: N }, (_, i) => `nodes ${i} ${uniqueName('m')}`)
      for (const subject of subjects) {
        const c = await SmtpClient.connect({ port: svc.ports.submission })
        await c.ehlo()
        assert.equal((await c.starttls()).code, 220)
        await c.ehlo()
        assert.equal((await c.send(`AUTH PLAIN ${plainResponse(creds.login, creds.password)}`)).code, 235)
        assert.equal((await c.send(`MAIL FROM:<${from}>`)).code, 250)
        assert.equal((await c.send(`RCPT TO:<rcpt@${sinkDomain}>`)).code, 250)
        assert.equal((await c.send('DATA')).code, 354)
        const r = await c.send(`From: ${from}\r\nSubject: ${subject}\r\n\r\nrelayed by a cluster worker\r\n.`)
        assert.equal(r.code, 250, r.raw)
        await c.close()
      }
      await waitFor(async () => subjects.every((s) => sink.messages.some((m) => m.raw.includes(s))), 'every message at the sink', 60000)
      let m = await metrics(metricsPort)
      await waitFor(async () => valueOf(m = await metrics(metricsPort), 'posta_deliveries_total', { source_ip: 'default', result: 'delivered' }) === N, 'the workers\' deliveries summed', 20000)
      assert.equal(valueOf(m, 'posta_messages_accepted_total'), N)
      assert.equal(valueOf(m, 'posta_haraka_workers'), 2)
      assert.deepEqual(childPids(master).sort(), workers.sort(), 'the same two workers served it all')
      // the queue file of each delivery names the process that queued it (Haraka: <time>_<time>_<attempts>_<pid>_...)
      const queuedBy = [...svc.out().matchAll(/\[outbound\] delivered_file=\d+_\d+_\d+_(\d+)_/g)].map((d) => Number(d[1]))
      assert.equal(queuedBy.length, N, svc.out().slice(-3000))
      assert.deepEqual([...new Set(queuedBy)].sort(), workers.sort(), 'both workers took and delivered mail, the master none')
    })
  })

  it('POSTA_NODES=0 runs one Haraka process even when smtp.ini says nodes=2', async () => {
    const redis = await testRedis()
    try {
      const configDir = tmp()
      fs.cpSync(path.join(PROJECT_ROOT, 'config'), configDir, { recursive: true })
      const smtpIni = path.join(configDir, 'smtp.ini')
      fs.writeFileSync(smtpIni, fs.readFileSync(smtpIni, 'utf8').replace(/^nodes=0$/m, 'nodes=2'))
      const ports = await servicePorts()
      const metricsPort = await freePort('127.0.0.1')
      const dataDir = tmp()
      const svc = await startService(serviceEnv(dataDir, ports, { REDIS_URL: redis.url, POSTA_CONFIG_DIR: configDir, POSTA_NODES: '0', POSTA_METRICS_PORT: String(metricsPort) }), ports)
      const [haraka] = svc.pids('haraka')
      leftovers.push(svc.launcherPid(), haraka, ...svc.pids('panel'))
      try {
        assert.match(svc.out(), /\[posta\] haraka nodes=0 \(POSTA_NODES\): one process, no cluster\n/)
        assert.match(fs.readFileSync(path.join(dataDir, 'haraka', 'config', 'smtp.ini'), 'utf8'), /^nodes=0$/m)
        await waitFor(async () => valueOf(await metrics(metricsPort), 'posta_haraka_workers') === 1, 'metrics of one process', 30000)
        assert.deepEqual(childPids(haraka), [], 'no cluster worker')
        const c = await SmtpClient.connect({ port: ports.smtp })
        assert.equal((await c.ehlo()).code, 250, 'the one process serves SMTP')
        await c.close()
      } finally {
        svc.child.kill('SIGTERM')
        assert.equal((await svc.exited).code, 0)
      }
    } finally {
      await redis.close()
    }
  })
})
