// A message's life after the final dot, end to end: real Haraka, real Redis, real sink, raw SMTP clients that
// misbehave. Whatever the client or the node does (RST right after the dot, kill -9 of Haraka, Redis frozen at the
// reservation or at the commit, Redis stopped), a queued message is counted exactly once, a message not queued is
// not counted, and no reservation is left holding a tenant's traffic (docs/quota.md).
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { keys } from '../lib/keys'
import { monthOf } from '../lib/period'
import { DEFAULT_QUOTA, quotaState } from '../lib/quota'
import { setIniMain, PROJECT_ROOT } from '../service/haraka-dir'
import { waitFor } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { restartHaraka, startHaraka, type HarakaNode, type StartHarakaOptions } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink, type SunkMessage } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'

/**
 * Test only: freezes the test's redis-server (SIGSTOP, SIGCONT a second later) at one step of a message that asks
 * for it with `X-Freeze-Redis: reserve` (just before posta-quota reserves) or `commit` (as the queue write starts,
 * so the commit that follows it meets a frozen Redis). The pid is read from a file the test keeps current.
 */
const FREEZER = `const fs = require('fs')
function freeze(connection, step) {
  const tx = connection.transaction
  const want = tx && tx.header.get('X-Freeze-Redis')
  if (!want || want.trim() !== step) return
  const pid = Number(fs.readFileSync(process.env.POSTA_TEST_REDIS_PID_FILE, 'utf8'))
  try { process.kill(pid, 'SIGSTOP') } catch (e) { return }
  setTimeout(() => { try { process.kill(pid, 'SIGCONT') } catch (e) {} }, 1000)
  connection.loginfo('test: redis frozen at ' + step + ' tx=' + tx.uuid)
}
exports.hook_data_post = function (next, connection) { freeze(connection, 'reserve'); next() }
exports.hook_pre_send_trans_email = function (next, connection) { freeze(connection, 'commit'); next() }
`

const KB = 1024
const month = () => monthOf(new Date(), DEFAULT_QUOTA.timeZone)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A message of exactly `size` bytes as sent in DATA (CRLF lines, none starting with a dot), without a Message-ID. */
function message(run: string, seq: number, size: number, extra: string[] = []): string {
  const head = [`Subject: ${run} ${seq}`, 'From: <me@customer.example>', `X-Run: ${run}`, `X-Seq: ${seq}`, ...extra, '', ''].join('\r\n')
  let body = ''
  const line = `${'x'.repeat(76)}\r\n`
  while (Buffer.byteLength(head) + body.length + line.length <= size) body += line
  const rest = size - Buffer.byteLength(head) - body.length
  if (rest >= 2) body += `${'y'.repeat(rest - 2)}\r\n`
  const m = head + body
  assert.equal(Buffer.byteLength(m), size, 'message size')
  return m
}

const header = (m: SunkMessage, name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(m.raw.split('\r\n\r\n')[0])?.[1]?.trim()

describe('a message is counted exactly once, whatever happens after the final dot', function () {
  this.timeout(180_000)
  let redis: TestRedis
  let sink: Sink
  let node: HarakaNode
  let env: Record<string, string>
  let opts: StartHarakaOptions
  const pidFile = path.join(os.tmpdir(), `${uniqueName('posta-redis-pid')}`)
  const domain = `${uniqueName('life')}.test`

  const writePid = () => fs.writeFileSync(pidFile, String(redis.server!.process.pid))

  before(async function () {
    redis = await testRedis({ persistent: true })
    if (!redis.server) this.skip() // stopping and freezing Redis needs the test's own server
    writePid()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    const outboundIni = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'outbound.ini'), 'utf8')
    opts = {
      redisUrl: redis.url,
      env: { POSTA_TEST_REDIS_PID_FILE: pidFile },
      extraPlugins: { test_freezer: FREEZER },
      overrides: {
        plugins: 'posta-nodelay\ntls\nposta-auth\nposta-relay\ntest_freezer\nposta-quota\nposta-outbound\n',
        'posta-auth.ini': '[main]\nfailure_delay_ms=0\n',
        'posta-quota.ini': '[main]\ncommit_retry_seconds=1\n[warnings]\nenabled=false\n',
        // a delivery deferred while Redis is away (route lookup) is retried within seconds, not minutes
        'outbound.ini': setIniMain(outboundIni, { temp_fail_intervals: '1s*600' }),
      },
    }
    node = await startHaraka(opts)
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    redis?.thaw()
    await node?.stop()
    await sink?.close()
    await redis?.close()
    fs.rmSync(pidFile, { force: true })
  })

  async function tenant(traffic: number): Promise<{ slug: string; login: string; password: string }> {
    const pkg = uniqueName('p')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', String(traffic)], env)).code, 0)
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', `owner@${domain}`, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const j = r.json()
    return { slug: j.tenant, login: j.login, password: j.password }
  }

  async function login(t: { login: string; password: string }): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: node.submissionPort })
    try {
      await c.ehlo()
      assert.equal((await c.starttls()).code, 220)
      await c.ehlo()
      const r = await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)
      if (r.code !== 235) throw new Error(`AUTH: ${r.raw}`)
      return c
    } catch (err) {
      await c.close()
      throw err
    }
  }

  /** MAIL, RCPT, DATA; null when the server said 354, else the reply that refused. */
  async function begin(c: SmtpClient, rcpt: string): Promise<SmtpReply | null> {
    for (const line of ['MAIL FROM:<me@customer.example>', `RCPT TO:<${rcpt}>`]) {
      const r = await c.send(line)
      if (r.code !== 250) return r
    }
    const d = await c.send('DATA')
    return d.code === 354 ? null : d
  }

  async function send(c: SmtpClient, rcpt: string, body: string): Promise<SmtpReply> {
    const refused = await begin(c, rcpt)
    if (refused) return refused
    c.write(`${body}.`)
    return c.read()
  }

  /** The run's messages at the sink, one per Message-ID (a re-delivery after a crash arrives twice). */
  function delivered(run: string): Map<string, SunkMessage> {
    const byId = new Map<string, SunkMessage>()
    for (const m of sink.messages) {
      if (header(m, 'X-Run') !== run) continue
      const id = header(m, 'Message-Id')
      assert.ok(id, 'Haraka gave the message a Message-ID')
      byId.set(id, m)
    }
    return byId
  }

  /** Files still in the node's queue (delivery pending); temporary and error files aside. */
  const queued = () => fs.readdirSync(path.join(node.dir, 'queue')).filter((f) => !f.startsWith('__tmp__') && !f.startsWith('error.'))

  /** Waits until the queue is empty and nothing is reserved, twice in a row half a second apart. */
  async function settled(slug: string, timeoutMs = 60_000) {
    let calm = 0
    await waitFor(async () => {
      const s = await quotaState(redis.client, DEFAULT_QUOTA, slug)
      calm = queued().length === 0 && s.pending === 0 ? calm + 1 : 0
      if (calm < 2) await sleep(500)
      return calm >= 2
    }, 'an empty queue and no reservation', timeoutMs)
  }

  async function counters(slug: string) {
    const h = await redis.client.hgetall(keys.usageMonth(slug, month()))
    const s = await quotaState(redis.client, DEFAULT_QUOTA, slug)
    return { bytes: Number(h.bytes ?? 0), messages: Number(h.messages ?? 0), pending: s.pending }
  }

  it('50 messages of 512 KB whose client resets TCP right after the final dot: each one delivered is counted, nothing else', async () => {
    const size = 512 * KB
    const t = await tenant(1000 * size)
    const run = uniqueName('rst')
    const rcpt = `rst@${domain}`
    let next = 0
    const worker = async () => {
      for (let n = next++; n < 50; n = next++) {
        const c = await login(t)
        assert.equal(await begin(c, rcpt), null)
        const body = message(run, n, size)
        if (n % 5 === 0) {
          // the dot in the same write as the body: the reset may discard the end of what was sent
          await c.writeThenReset(`${body}.\r\n`)
        } else {
          // the body first; then the final dot alone, and the reset right behind it or a few milliseconds later:
          // it lands before the reservation, during it, during the queue write, or after the 250 went out
          c.write(body.slice(0, -2))
          await sleep(20)
          await c.writeThenReset('.\r\n', [0, 1, 2, 3, 5, 8, 12, 20, 30, 50][n % 10])
        }
      }
    }
    await Promise.all(Array.from({ length: 5 }, worker))
    await settled(t.slug)
    const got = delivered(run)
    const c = await counters(t.slug)
    assert.ok(got.size > 0, 'some messages were queued although their client vanished')
    assert.equal(c.messages, got.size, `counted messages = delivered messages (${got.size} of 50 delivered)`)
    assert.equal(c.bytes, got.size * size, 'the counter is the sum of the delivered messages\' costs')
    assert.equal(c.pending, 0, 'no reservation is left')
    for (const m of got.values()) {
      const sent = message(run, Number(header(m, 'X-Seq')), size)
      assert.ok(m.raw.endsWith(sent.slice(sent.indexOf('\r\n\r\n') + 4)), 'the body arrived whole')
    }
  })
})
