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
const frozen = new Set() // once per message (X-Run, X-Seq): its retries pass
function freeze(connection, step) {
  const tx = connection.transaction
  const want = tx && tx.header.get('X-Freeze-Redis')
  if (!want || want.trim() !== step) return
  const key = tx.header.get('X-Run') + '|' + tx.header.get('X-Seq')
  if (frozen.has(key)) return
  frozen.add(key)
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
        'outbound.ini': setIniMain(outboundIni, { temp_fail_intervals: '5s*200' }),
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

  /**
   * Waits until the queue is empty and (unless told otherwise: a killed node leaves reservations that only expire)
   * nothing is reserved, twice in a row half a second apart.
   */
  async function settled(slug: string, { reservations = true } = {}, timeoutMs = 60_000) {
    let calm = 0
    await waitFor(async () => {
      const s = await quotaState(redis.client, DEFAULT_QUOTA, slug)
      calm = queued().length === 0 && (!reservations || s.pending === 0) ? calm + 1 : 0
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

  /**
   * Sends `total` distinct messages from `workers` connections; each is retried (RSET) on a temporary refusal or a
   * lost connection until it gets a 250 or `deadline` passes. Returns the sequence numbers that got a 250 and every
   * non-250 reply seen.
   */
  async function load(
    t: { login: string; password: string }, run: string, total: number, size: number, workers: number, deadline: number,
    onAccepted?: (n: number) => void, extra: (n: number) => string[] = () => [],
  ) {
    const accepted = new Set<number>()
    const replies: string[] = []
    let next = 0
    const worker = async () => {
      let c: SmtpClient | null = null
      for (let n = next++; n < total; n = next++) {
        const body = message(run, n, size, extra(n))
        while (Date.now() < deadline) {
          try {
            c ??= await login(t)
            const r = await send(c, `load@${domain}`, body)
            if (r.code === 250) {
              accepted.add(n)
              onAccepted?.(accepted.size)
              break
            }
            replies.push(r.raw)
            if (r.code >= 500) break // permanent: the test fails on it below
            await c.send('RSET')
          } catch {
            await c?.close()
            c = null
          }
          await sleep(100)
        }
      }
      await c?.close()
    }
    await Promise.all(Array.from({ length: workers }, worker))
    return { accepted, replies }
  }

  it('kill -9 of Haraka during 500 messages, restarted on the same queue: every 250 is delivered, each message counted once', async () => {
    const size = 2 * KB
    const t = await tenant(10_000 * size)
    const run = uniqueName('kill')
    const total = 500
    const accepted = new Set<number>()
    let next = 0
    let killed: Promise<void> | null = null
    let restarted!: () => void
    const back = new Promise<void>((resolve) => (restarted = resolve))
    // ten connections sending; after the 150th 250 the node is killed wherever each transaction is
    const worker = async () => {
      let c: SmtpClient | null = null
      for (let n = next++; n < total; n = next++) {
        try {
          c ??= await login(t)
          const r = await send(c, `kill@${domain}`, message(run, n, size))
          if (r.code === 250) accepted.add(n)
          else await c.send('RSET')
        } catch {
          // the message in flight at the kill may or may not be queued; the next ones go to the restarted node
          c?.close()
          c = null
          if (killed) await back
        }
        if (accepted.size >= 150 && !killed) killed = node.kill()
      }
      await c?.close()
    }
    const phase1 = Promise.all(Array.from({ length: 10 }, worker))
    await waitFor(async () => killed !== null, 'the kill', 60_000)
    await killed
    const inQueue = queued().length
    node = await restartHaraka(node, opts)
    restarted()
    await phase1 // the workers carry on against the restarted node up to 500 messages
    await settled(t.slug, { reservations: false })
    const got = delivered(run)
    const seqs = new Set([...got.values()].map((m) => Number(header(m, 'X-Seq'))))
    const lost = [...accepted].filter((n) => !seqs.has(n))
    assert.deepEqual(lost, [], 'every message that got a 250 reached the sink')
    const c = await counters(t.slug)
    assert.equal(c.messages, got.size, `counted = distinct delivered (${got.size} delivered, ${accepted.size} with a 250, ${inQueue} queue files at the kill)`)
    assert.equal(c.bytes, got.size * size)
    assert.ok(accepted.size >= 300, `the load went on after the restart (${accepted.size} accepted)`)
  })

  it('a message answered 451 while Redis froze at its reservation gets its room back: the retry is accepted, not 552', async () => {
    const size = 20_000
    const t = await tenant(30_000) // room for one such message, not two
    const run = uniqueName('freeze-reserve')
    const c = await login(t)
    const first = await send(c, `f@${domain}`, message(run, 0, size, ['X-Freeze-Redis: reserve']))
    assert.match(first.raw, /^451 4\.3\.0 Traffic accounting is temporarily unavailable/)
    // Redis ran the timed-out reserve when it woke, and the release sent after it: the retry fits
    const replies: string[] = []
    let r: SmtpReply = first
    for (let i = 0; i < 100 && r.code !== 250; i++) {
      await c.send('RSET')
      await sleep(100)
      r = await send(c, `f@${domain}`, message(run, 0, size, ['X-Freeze-Redis: reserve']))
      replies.push(r.raw)
      assert.notEqual(r.code, 552, `a message that fits was refused for good: ${r.raw}`)
    }
    assert.equal(r.code, 250, replies.join('\n'))
    await c.close()
    await settled(t.slug)
    const n = await counters(t.slug)
    assert.deepEqual(n, { bytes: size, messages: 1, pending: 0 })
    assert.equal(delivered(run).size, 1)
  })

  it('Redis frozen at the commit: the 250 goes out, the message is counted once before its delivery, the room stays exact', async () => {
    const size = 10_000
    const t = await tenant(2 * size)
    const run = uniqueName('freeze-commit')
    const c = await login(t)
    const r = await send(c, `f@${domain}`, message(run, 0, size, ['X-Freeze-Redis: commit']))
    assert.equal(r.code, 250, r.raw)
    const tx = /\(([0-9A-F-]+\.\d+)\)/.exec(r.raw)![1]
    // the hand-off's commit met the frozen Redis; the delivery counted it (or found it counted when Redis woke)
    await node.waitForLog(new RegExp(`quota commit failed at the queue hand-off[^\\n]*${tx}`))
    await settled(t.slug)
    assert.deepEqual(await counters(t.slug), { bytes: size, messages: 1, pending: 0 })
    assert.equal(delivered(run).size, 1)
    // exactly one more fits, and then nothing: neither counted twice nor left held
    assert.equal((await send(c, `f@${domain}`, message(run, 1, size))).code, 250)
    const over = await send(c, `f@${domain}`, message(run, 2, size))
    assert.equal(over.code, 552, over.raw)
    assert.ok(over.raw.includes(`0 bytes of your 20 KB are left this month (20 KB (${2 * size} bytes) used)`), over.raw)
    await c.close()
    await settled(t.slug)
    assert.deepEqual(await counters(t.slug), { bytes: 2 * size, messages: 2, pending: 0 })
  })

  it('under load, Redis frozen 1 s at a reservation and at a commit, then stopped 10 s: each delivered message counted once, no phantom, no 552', async () => {
    const size = 3 * KB
    const total = 150
    const t = await tenant(total * size) // exactly the load: a phantom reservation or a double count would refuse the last ones
    const run = uniqueName('outage')
    let outage: Promise<void> | null = null
    const freezeMsgs = new Map([[20, 'reserve'], [50, 'commit']])
    const result = await load(t, run, total, size, 6, Date.now() + 120_000, (accepted) => {
      if (accepted >= 90 && !outage) {
        outage = (async () => {
          await redis.stop()
          await sleep(10_000)
          await redis.restart()
          writePid()
        })()
      }
    }, (n) => (freezeMsgs.has(n) ? [`X-Freeze-Redis: ${freezeMsgs.get(n)}`] : []))
    await outage
    assert.deepEqual(result.replies.filter((r) => r.startsWith('5')), [], 'no permanent refusal of mail that fits')
    assert.equal(result.accepted.size, total, `all ${total} accepted in the end; refusals seen:\n${[...new Set(result.replies)].join('\n')}`)
    assert.ok(result.replies.some((r) => /^451 4\.3\.0/.test(r)), 'the outage was seen by clients')
    await settled(t.slug)
    const got = delivered(run)
    const seqs = new Set([...got.values()].map((m) => Number(header(m, 'X-Seq'))))
    assert.equal(seqs.size, total, 'every accepted message was delivered')
    const c = await counters(t.slug)
    assert.deepEqual(c, { bytes: got.size * size, messages: got.size, pending: 0 }, `${got.size} delivered`)
  })
})

