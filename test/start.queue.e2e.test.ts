// Mail deferred before a restart is retried at its due time after it, not later: Haraka 3.3.4 alone waits about
// twice the remaining interval (outbound/queue.js compares reloaded files against the load time again when their
// timer fires); posta-service keeps that clock fresh (plugins/posta-service, docs/haraka-upstream.md).
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { waitFor } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { restartHaraka, startHaraka, type HarakaNode, type StartHarakaOptions } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { smtpError, startSink, type Sink } from '../testkit/sink'

describe('queued mail after a restart (real Haraka, real sink)', function () {
  this.timeout(120000)
  let redis: TestRedis
  let sink: Sink
  let haraka: HarakaNode
  let opts: StartHarakaOptions
  const sinkDomain = `${uniqueName('sink')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    opts = { redisUrl: redis.url, overrides: { 'outbound.ini': 'enable_tls=false\nlocal_mx_ok=true\ntemp_fail_intervals=20s*3\n' } }
    haraka = await startHaraka(opts)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  it('a deferred message is retried at its due time after a restart (not twice the remaining wait)', async () => {
    const env = { REDIS_URL: redis.url }
    const pkg = uniqueName('pkg')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', '1GB'], env)).code, 0)
    const t = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
    assert.equal(t.code, 0, t.stderr)
    const creds = t.json()
    assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)

    let refusing = true
    sink.rcptPolicy = () => (refusing ? smtpError(451, 'try again later') : null)
    const subject = uniqueName('deferred')
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: haraka.submissionPort, requireTLS: true, auth: { user: creds.login, pass: creds.password }, tls: { rejectUnauthorized: false } })
      .sendMail({ from: 'sender@customer.example', to: `rcpt@${sinkDomain}`, subject, text: 'later' })
    assert.match(info.response, /^250 /)

    // the queue file names its next attempt: <arrival>_<next_attempt>_<attempts>_...
    const queueDir = path.join(haraka.dir, 'queue')
    let due = 0
    await waitFor(async () => {
      const f = fs.readdirSync(queueDir).find((n) => /^\d+_\d+_1_/.test(n))
      if (f) due = Number(f.split('_')[1])
      return due > 0
    }, 'the first attempt to be deferred', 30000)
    assert.ok(due - Date.now() > 12000, `next attempt ${due - Date.now()} ms away`)

    await haraka.kill() // a crash: the queue file stays (stop() would remove the test dir)
    assert.ok(fs.readdirSync(queueDir).some((n) => n.includes(`_${due}_1_`)), 'the deferred file is still queued')
    refusing = false
    haraka = await restartHaraka(haraka, opts)
    const restartedAt = Date.now()
    const remaining = due - restartedAt
    assert.ok(remaining > 8000, `restarted ${remaining} ms before the due time: too late to tell the two behaviours apart`)

    let arrived = 0
    await waitFor(async () => {
      if (sink.messages.some((m) => m.raw.includes(subject))) arrived = Date.now()
      return arrived > 0
    }, 'the retry to reach the sink', 60000)
    const late = arrived - due
    // Haraka's timers tick each second; without the fix the retry comes about `remaining` ms after the due time
    assert.ok(late > -1500, `delivered ${-late} ms before its due time`)
    assert.ok(late < Math.min(5000, remaining / 2), `delivered ${late} ms after its due time (${remaining} ms were left at the restart)`)
  })
})
