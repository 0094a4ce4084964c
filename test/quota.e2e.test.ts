// The monthly traffic quota end to end: real Haraka processes sharing a real Redis, a real sink, raw SMTP.
import { strict as assert } from 'node:assert'
import { keys } from '../lib/keys'
import { monthOf } from '../lib/period'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { saveAll, testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'

// A message whose counted size we know exactly: CRLF lines; the line starting with "." is sent dot-stuffed and
// counted once, without its stuffing dot; the final "." line is not counted.
function message(subject: string, extraHeaders: string[] = []): string {
  return [`Subject: ${subject}`, 'From: <me@customer.example>', ...extraHeaders, '', 'Hello.', '.a line that starts with a dot', 'Bye.', ''].join('\r\n')
}

/** A refusing plugin that runs after posta-quota has reserved: it stands for any later plugin saying no. */
const REFUSER = `exports.hook_data_post = function (next, connection) {
  if (connection.transaction.header.get('X-Refuse-Me')) return next(DENY, 'refused by a later plugin')
  next()
}`

describe('monthly traffic quota end to end', function () {
  this.timeout(90000)
  let redis: TestRedis
  let a: HarakaNode
  let b: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  const domain = `${uniqueName('q')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    const overrides = {
      plugins: 'posta-nodelay\ntls\nposta-auth\nposta-relay\nposta-quota\ntest_refuser\nposta-outbound\n',
      'posta-auth.ini': '[main]\nfailure_delay_ms=0\n',
    }
    ;[a, b] = await Promise.all([
      startHaraka({ redisUrl: redis.url, overrides, extraPlugins: { test_refuser: REFUSER } }),
      startHaraka({ redisUrl: redis.url, overrides, extraPlugins: { test_refuser: REFUSER } }),
    ])
    assert.equal((await posta(['route', 'set', `.${domain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await sink?.close()
    await redis?.close()
  })

  async function tenant(traffic: number): Promise<{ slug: string; login: string; password: string }> {
    const pkg = uniqueName('p')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', String(traffic)], env)).code, 0)
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', `owner@${domain}`, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const j = r.json()
    return { slug: j.tenant, login: j.login, password: j.password }
  }

  async function login(node: HarakaNode, t: { login: string; password: string }): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: node.submissionPort })
    await c.ehlo()
    assert.equal((await c.starttls()).code, 220)
    await c.ehlo()
    const r = await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)
    assert.equal(r.code, 235, r.raw)
    return c
  }

  /** MAIL, RCPT and DATA; null when the server said 354, else the reply that refused. */
  async function begin(c: SmtpClient, rcpts: string[]): Promise<SmtpReply | null> {
    const m = await c.send('MAIL FROM:<me@customer.example>')
    if (m.code !== 250) return m
    for (const r of rcpts) {
      const rr = await c.send(`RCPT TO:<${r}>`)
      if (rr.code !== 250) return rr
    }
    const d = await c.send('DATA')
    return d.code === 354 ? null : d
  }

  /** The body, dot-stuffed, and the final dot; returns the end-of-DATA reply. */
  function finish(c: SmtpClient, body: string): Promise<SmtpReply> {
    const stuffed = body.split('\r\n').map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n')
    c.write(`${stuffed}.`)
    return c.read()
  }

  /** One transaction; returns the reply that decided it (MAIL, RCPT or end of DATA). */
  async function send(c: SmtpClient, rcpts: string[], body: string): Promise<SmtpReply> {
    return (await begin(c, rcpts)) ?? finish(c, body)
  }

  /** Waits until the tenant's month counts `n` messages (commits follow the 250 by a moment); returns the count. */
  async function countedMessages(slug: string, n: number): Promise<number> {
    let m = 0
    for (let i = 0; i < 50; i++) {
      m = Number((await redis.client.hget(keys.usageMonth(slug, monthOf(new Date(), 'Europe/Rome')), 'messages')) ?? 0)
      if (m >= n) break
      await new Promise((r) => setTimeout(r, 100))
    }
    return m
  }

  async function usage(slug: string) {
    const r = await posta(['usage', slug, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return r.json()
  }

  it('accepts exactly the messages that fit, then refuses with a permanent reply that says used, limit and reset', async () => {
    const body = message('fits')
    const size = Buffer.byteLength(body)
    const t = await tenant(size * 2 * 3) // three messages to two recipients each
    const c = await login(a, t)
    const sinkBefore = sink.messages.length
    for (let i = 0; i < 3; i++) {
      const r = await send(c, [`one@${domain}`, `two@${domain}`], body)
      assert.equal(r.code, 250, r.raw)
    }
    const over = await send(c, [`one@${domain}`, `two@${domain}`], body)
    assert.equal(over.code, 552, over.raw)
    assert.match(over.raw, /^552 5\.2\.3 Monthly traffic quota exceeded: this message needs .* of your .* are left this month \(.* used\)\. The allowance resets on 1 [A-Z][a-z]+ 20\d\d\./)
    // a message to one recipient does not fit either: nothing is left
    assert.equal((await send(c, [`one@${domain}`], body)).code, 552)
    await c.close()

    await countedMessages(t.slug, 3)
    const u = await usage(t.slug)
    assert.equal(u.used_bytes, size * 6)
    assert.equal(u.messages, 3)
    assert.equal(u.remaining_bytes, 0)
    assert.equal(u.limit_bytes, size * 6)
    const today = u.days.find((d: { messages: number }) => d.messages > 0)
    assert.deepEqual({ bytes: today.bytes, messages: today.messages, recipients: today.recipients }, { bytes: size * 6, messages: 3, recipients: 6 })
    // what the sink received matches what was counted: three messages, two recipients each, our bytes inside
    const got = (await sink.waitFor(sinkBefore + 3)).slice(sinkBefore).filter((m) => m.raw.includes('Subject: fits'))
    assert.equal(got.length, 3)
    assert.equal(got.reduce((n, m) => n + m.to.length, 0), 6)
    for (const m of got) assert.ok(m.raw.includes('\r\n\r\nHello.\r\n.a line that starts with a dot\r\nBye.'), 'the body arrives as sent')
  })

  it('warns the contact at 80%, 90% and 100%, once each, without counting the notices', async () => {
    const body = message('warn me')
    const size = Buffer.byteLength(body)
    const t = await tenant(size * 10)
    const c = await login(a, t)
    for (let i = 0; i < 10; i++) assert.equal((await send(c, [`w@${domain}`], body)).code, 250)
    await c.close()
    const notices = async () => sink.messages.filter((m) => m.to.includes(`owner@${domain}`) && m.raw.includes(`Posta: ${t.slug} has used`))
    await sink.waitFor(0)
    for (let i = 0; i < 100 && (await notices()).length < 3; i++) await new Promise((r) => setTimeout(r, 100))
    const got = await notices()
    assert.deepEqual(got.map((m) => /has used (\d+)%/.exec(m.raw)![1]).sort(), ['100', '80', '90'])
    for (const pct of [80, 90, 100]) await a.waitForLog(new RegExp(`tenant crossed ${pct}% of its monthly traffic tenant=${t.slug} `))
    assert.equal((await usage(t.slug)).used_bytes, size * 10, 'notices are not counted')
  })

  it('refuses at MAIL FROM a SIZE= that cannot fit even once', async () => {
    const t = await tenant(10_000)
    const c = await login(a, t)
    const r = await c.send('MAIL FROM:<me@customer.example> SIZE=10001')
    assert.equal(r.code, 552, r.raw)
    assert.match(r.raw, /5\.2\.3 .*declares 10 KB \(10001 bytes\), and 10 KB \(10000 bytes\) of your 10 KB are left/)
    assert.equal((await c.send('MAIL FROM:<me@customer.example> SIZE=9000')).code, 250, 'a size that fits is accepted')
    await c.close()
  })

  it('leaves the counters unchanged when a later plugin refuses a reserved message', async () => {
    const body = message('refused later', ['X-Refuse-Me: yes'])
    const t = await tenant(1_000_000)
    const c = await login(a, t)
    const r = await send(c, [`x@${domain}`], body)
    assert.equal(r.code, 550, r.raw)
    assert.match(r.raw, /refused by a later plugin/)
    const month = monthOf(new Date(), 'Europe/Rome')
    // the reservation is released as the transaction resets
    for (let i = 0; i < 50 && (await redis.client.zcard(keys.reservations(t.slug, month))) > 0; i++) await new Promise((res) => setTimeout(res, 50))
    assert.equal(await redis.client.zcard(keys.reservations(t.slug, month)), 0)
    const u = await usage(t.slug)
    assert.equal(u.used_bytes, 0)
    assert.equal(u.messages, 0)
    // and the whole allowance is still there for a message that is accepted
    assert.equal((await send(c, [`x@${domain}`], message('accepted'))).code, 250)
    await c.close()
  })

  it('40 connections over two nodes racing for the last part of the allowance never exceed it', async () => {
    const body = message('race')
    const size = Buffer.byteLength(body)
    const t = await tenant(Math.floor(size * 10.5)) // room for exactly 10
    const clients = await Promise.all(Array.from({ length: 40 }, (_, i) => login(i % 2 ? a : b, t)))
    // every client gets to the brink of DATA first, then all end their DATA at once
    const ready = await Promise.all(clients.map((c) => begin(c, [`race@${domain}`])))
    assert.deepEqual(ready.filter((r) => r !== null), [], 'all 40 reached DATA')
    const replies = await Promise.all(clients.map((c) => finish(c, body)))
    const accepted = replies.filter((r) => r.code === 250).length
    // a loser sees 552 when the winners' traffic is already counted, else a temporary 451 4.2.3: the room is held
    // by messages still being sent, which could yet fail
    const refused = replies.filter((r) => r.code === 552 && /^552 5\.2\.3 Monthly traffic quota exceeded/.test(r.raw)).length
    const held = replies.filter((r) => r.code === 451 && /^451 4\.2\.3 Monthly traffic quota nearly used: .* held by messages still being sent\)\. Please try again/.test(r.raw)).length
    assert.equal(accepted + refused + held, 40, replies.filter((r) => r.code !== 250).map((r) => r.raw).join('\n'))
    assert.equal(accepted, 10)
    await countedMessages(t.slug, accepted)
    const u = await usage(t.slug)
    assert.equal(u.used_bytes, accepted * size, 'the counter equals what the clients saw accepted')
    assert.ok(u.used_bytes <= u.limit_bytes)
    // once the winners are counted, a loser's retry is refused for good, with nothing held in flight
    const loser = clients.find((_, i) => replies[i].code !== 250)!
    const retry = await send(loser, [`race@${domain}`], body)
    assert.equal(retry.code, 552, retry.raw)
    assert.ok(retry.raw.includes(`are left this month (${accepted * size} bytes used). The allowance resets`), retry.raw)
    await Promise.all(clients.map((c) => c.close()))
  })

  it('answers 451 4.3.0 at once while Redis is down, and sending resumes by itself when it returns', async function () {
    if (!redis.server && !redis.cluster) this.skip() // with an external REDIS_URL the test cannot stop Redis
    const t = await tenant(1_000_000)
    const c = await login(a, t)
    assert.equal((await send(c, [`d@${domain}`], message('before'))).code, 250)
    await countedMessages(t.slug, 1) // the commit follows the 250
    await saveAll(redis.client) // the test Redis keeps nothing on disk by itself; the restart must find the tenant
    await redis.stop()
    const t0 = Date.now()
    const down = await send(c, [`d@${domain}`], message('during'))
    assert.equal(down.code, 451, down.raw)
    assert.match(down.raw, /^451 4\.3\.0 Traffic accounting is temporarily unavailable/)
    assert.ok(Date.now() - t0 < 5000, 'no hang')
    await redis.restart()
    let r: SmtpReply | null = null
    for (let i = 0; i < 40; i++) {
      r = await send(c, [`d@${domain}`], message('after'))
      if (r.code === 250) break
      await c.send('RSET')
      await new Promise((res) => setTimeout(res, 250))
    }
    assert.equal(r!.code, 250, r!.raw)
    await c.close()
    assert.equal(await countedMessages(t.slug, 2), 2, 'the refused message was not counted')
  })
})
