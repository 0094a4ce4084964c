// End to end: log lines that cannot be forged. A real Haraka, a real Redis, raw SMTP clients and a real sink MX.
// Clients try to plant `key=value` fields and new lines through everything Haraka or Posta echoes (EHLO name, MAIL
// FROM parameters, AUTH user names with fields and CR/LF, quoted local parts); a real bounce and a real failed login
// happen beside them. Then README's "Logs" recipes, taken from README.md itself and run with bash over the captured
// haraka.log, must count only what really happened.
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parseFields } from '../lib/logs'
import { waitFor } from '../service/redis-server'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'
import { smtpError, startSink, type Sink } from '../testkit/sink'

interface Creds {
  tenant: string
  login: string
  password: string
}

/** The shell recipes of README's "Logs" section, one per line, without their comments. */
function readmeRecipes(): string[] {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
  const section = /\n## Logs\n([\s\S]*?)\n## /.exec(readme)
  assert.ok(section, 'README has a "Logs" section')
  const blocks = [...section[1].matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1])
  return blocks
    .join('\n')
    .split('\n')
    .map((l) => l.replace(/\s+#[^'"]*$/, '').trim())
    .filter((l) => /^(grep|jq|awk)\b/.test(l))
}

describe('logs that cannot be forged (real Haraka, Redis, raw SMTP, sink)', function () {
  this.timeout(60000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  let sender: Creds
  let victim: Creds
  const sinkDomain = `${uniqueName('sink')}.test`
  /** Client addresses of this file (all of 127.0.0.0/8 is local): each attempt has its own, to tell them apart. */
  const ip = {
    ehlo: '127.41.0.1',
    mailFrom: '127.41.0.2',
    authFields: '127.41.0.3',
    quoted: '127.41.0.4',
    honest: '127.41.0.5',
    wrongPassword: '127.41.0.6',
  }
  const forged = '6.6.6.6'
  let bounces = 0

  before(async function () {
    this.timeout(90000)
    redis = await testRedis()
    env = { REDIS_URL: redis.url }
    sink = await startSink()
    // refuses `nobody...@`: the honest sender's real bounces
    sink.rcptPolicy = (a) => (a.startsWith('nobody') ? smtpError(550, '5.1.1 no such user here') : null)
    // A plain plugin (run in Haraka's vm realm, like third-party plugins) that logs what the client sent as EHLO in
    // the shapes Haraka itself uses: an Error with a multi-line message, a plain object of its realm, extra strings.
    const probe = [
      'exports.hook_ehlo = function (next, connection, helo) {',
      "  if (String(helo).startsWith('probe')) {",
      "    connection.lognotice(this, 'probe error:', new Error('bad ' + helo + '\\nsecond line result=bounced tenant=' + helo))",
      "    connection.lognotice(this, 'probe fields', { helo: helo, nested: { helo: helo } })",
      "    connection.lognotice(this, 'probe text ', helo, ' ', 42)",
      '  }',
      '  next()',
      '}',
    ].join('\n')
    // The shipped plugin list plus the probe, without the blocklist monitor (no test lets it ask a real resolver).
    const plugins = fs.readFileSync(path.join(__dirname, '..', 'config', 'plugins'), 'utf8').replace(/^\s*posta-monitor\s*$/m, '') + '\nposta_logprobe\n'
    haraka = await startHaraka({ redisUrl: redis.url, extraPlugins: { posta_logprobe: probe }, overrides: { plugins } })
    const pkg = uniqueName('logpkg')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', '1GB'], env)).code, 0)
    const make = async (prefix: string): Promise<Creds> => {
      const r = await posta(['tenant', 'create', uniqueName(prefix), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
      assert.equal(r.code, 0, r.stderr)
      return r.json<Creds>()
    }
    sender = await make('logs')
    victim = await make('victim')
    assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  // ---- helpers ----

  function expectReply(r: SmtpReply, code: number, what: string) {
    assert.equal(r.code, code, `${what}: expected ${code}, got: ${r.raw}`)
  }

  async function plainClient(from: string): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: haraka.smtpPort, localAddress: from })
    expectReply(await c.ehlo(), 250, 'EHLO')
    return c
  }

  async function tlsClient(from: string): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: haraka.submissionPort, localAddress: from })
    expectReply(await c.ehlo(), 250, 'EHLO')
    await c.starttls()
    expectReply(await c.ehlo(), 250, 'EHLO after STARTTLS')
    return c
  }

  /** An authenticated transaction, sent line by line; returns the transaction id of the 250. */
  async function send(c: SmtpClient, mailFrom: string, rcpt: string): Promise<string> {
    expectReply(await c.send(`MAIL FROM:<${mailFrom}>`), 250, 'MAIL FROM')
    expectReply(await c.send(`RCPT TO:<${rcpt}>`), 250, 'RCPT TO')
    expectReply(await c.send('DATA'), 354, 'DATA')
    c.write(`From: <${mailFrom}>\r\nTo: <${rcpt}>\r\nSubject: logs ${Date.now()}\r\n\r\nhello\r\n.`)
    const r = await c.read()
    expectReply(r, 250, 'end of DATA')
    return /\(([^)]+)\)/.exec(r.text)![1]
  }

  /** Waits for `n` failed-login lines of a client address; returns them. */
  async function failedLogins(from: string, n: number): Promise<string[]> {
    let lines: string[] = []
    await waitFor(async () => {
      lines = haraka.log().split('\n').filter((l) => l.includes('authentication failed') && l.includes(` client_ip=${from} `))
      return lines.length >= n
    }, `${n} failed logins from ${from}`, 10000)
    assert.equal(lines.length, n, lines.join('\n'))
    return lines
  }

  /** Runs a README recipe with bash over the captured log (`posta.log` is the file, `acme` the tenant). */
  function run(recipe: string, tenant: string): string {
    const cmd = recipe.replace(/posta\.log/g, JSON.stringify(haraka.logFile)).replace(/acme/g, tenant)
    return execFileSync('bash', ['-o', 'pipefail', '-c', `${cmd} || [ $? -eq 1 ]`], { encoding: 'utf8' })
  }

  /** `uniq -c` output as { value: count }. */
  function counts(out: string): Record<string, number> {
    const r: Record<string, number> = {}
    for (const line of out.split('\n')) {
      const m = /^\s*(\d+)\s+(\S+)$/.exec(line)
      if (m) r[m[2]] = Number(m[1])
    }
    return r
  }

  // ---- the attempts, and what really happens beside them ----

  it('a hostile EHLO name is logged escaped', async () => {
    const c = await SmtpClient.connect({ port: haraka.smtpPort, localAddress: ip.ehlo })
    const name = `result=bounced,tenant=${victim.tenant},client_ip=${forged}`
    expectReply(await c.ehlo(name), 250, 'hostile EHLO')
    await c.close()
    const line = (await haraka.waitForLog(/\[core\] disconnect ip=127\.41\.0\.1 .*/))[0]
    assert.equal(parseFields(line).helo, name, 'the name is logged, and reads back exactly')
    assert.doesNotMatch(line, / tenant=|tenant=victim|client_ip=6/)
    assert.match(line, /helo="result\\u003dbounced,tenant\\u003d/)
  })

  it("a plugin's Error, fields of another realm and extra strings are escaped too", async () => {
    const c = await SmtpClient.connect({ port: haraka.smtpPort, localAddress: ip.ehlo })
    const name = `probe,tenant=${victim.tenant},client_ip=${forged}`
    expectReply(await c.ehlo(name), 250, 'EHLO')
    await c.close()
    await haraka.waitForLog(/\[posta_logprobe\] probe text /)
    const all = haraka.log().split('\n').filter((l) => l.includes('[posta_logprobe]'))
    // as in Haraka's logger, each stack frame of the Error is a line of its own; the message's own lines are not
    const frames = all.filter((l) => /\[posta_logprobe\] +at /.test(l))
    const lines = all.filter((l) => !frames.includes(l))
    assert.ok(frames.length >= 1 && frames.every((l) => !l.includes('second line')), frames.join('\n'))
    assert.equal(lines.length, 3, lines.join('\n'))
    for (const l of lines) assert.doesNotMatch(l, / (tenant|client_ip|result)=/, l)
    assert.ok(lines[0].includes(`probe error: Error: bad probe,tenant\\u003d${victim.tenant},client_ip\\u003d6.6.6.6\\nsecond line result\\u003dbounced`), lines[0])
    assert.deepEqual(parseFields(lines[1]), { helo: name, nested: JSON.stringify({ helo: name }) })
    assert.ok(lines[2].endsWith(`probe text probe,tenant\\u003d${victim.tenant},client_ip\\u003d6.6.6.6 42`), lines[2])
  })

  it('MAIL FROM parameters carrying fields (Haraka parser error, unauthenticated) are logged escaped', async () => {
    const c = await plainClient(ip.mailFrom)
    for (let i = 0; i < 3; i++) {
      const r = await c.send(`MAIL FROM:<z@evil.example> result=bounced tenant=${victim.tenant} client_ip=${forged}`)
      assert.ok(r.code >= 500 && r.code < 600, `refused: ${r.raw}`)
    }
    await c.close()
    const log = haraka.log()
    const lines = log.split('\n').filter((l) => l.includes('z@evil.example'))
    assert.ok(lines.length >= 3, `the attempts are logged:\n${lines.join('\n')}`)
    for (const l of lines) {
      assert.doesNotMatch(l, /(^| )(tenant|result|client_ip)=/, l)
      assert.match(l, /result\\u003dbounced tenant\\u003d/, l)
    }
  })

  it('AUTH user names carrying fields or CR/LF fail as logins of the real client address, escaped', async () => {
    const c = await tlsClient(ip.authFields)
    const withFields = `x@${sender.tenant}.posta.localhost result=bounced tenant=${victim.tenant} client_ip=${forged}`
    expectReply(await c.send(`AUTH PLAIN ${plainResponse(withFields, 'wrong-pw-1')}`), 535, 'user with fields')
    const withNewline = `y@${sender.tenant}.posta.localhost\r\n2026-12-01T00:00:00.000Z [NOTICE] [FORGED] [posta-auth] SASL PLAIN authentication failed auth_user=z client_ip=${forged}`
    expectReply(await c.send(`AUTH PLAIN ${plainResponse(withNewline, 'wrong-pw-2')}`), 535, 'user with CR/LF')
    await c.close()
    const failed = await failedLogins(ip.authFields, 2)
    const log = haraka.log()
    assert.equal(parseFields(failed[0]).auth_user, withFields.toLowerCase())
    // the forged record stays inside the user name's value (posta-auth drops the CR/LF of a login it refuses)
    assert.match(parseFields(failed[1]).auth_user, /^y@.*\[posta-auth\] sasl plain authentication failed auth_user=z client_ip=6\.6\.6\.6$/)
    for (const l of failed) {
      assert.equal(parseFields(l).client_ip, ip.authFields)
      assert.equal(l.match(/ client_ip=/g)?.length, 1, `one client_ip field: ${l}`)
      assert.doesNotMatch(l, / (tenant|result)=/, l)
    }
    // no line starts where the forged one would
    for (const l of log.split('\n')) assert.ok(!/^2026-12-01T00:00:00\.000Z|\[FORGED\]/.test(l.slice(0, 80)), `a forged line: ${l}`)
  })

  it('a quoted local part carrying fields is logged escaped, as sender and as recipient', async () => {
    // unauthenticated: refused at MAIL FROM, Haraka logs the sender
    const c = await plainClient(ip.quoted)
    const quoted = `"tenant=${victim.tenant} result=bounced client_ip=${forged}"@example.net`
    const r = await c.send(`MAIL FROM:<${quoted}>`)
    assert.ok(r.code >= 500, `refused: ${r.raw}`)
    await c.close()
    // authenticated: a quoted sender, a quoted recipient (refused: routing syntax), then a recipient the sink
    // refuses (a real bounce, whose DSN goes back to the quoted sender)
    const a = await tlsClient(ip.honest)
    expectReply(await a.send(`AUTH PLAIN ${plainResponse(sender.login, sender.password)}`), 235, 'AUTH')
    const before = sink.messages.length
    const from = `"tenant=${victim.tenant},client_ip=${forged}"@bounce.${sinkDomain}`
    expectReply(await a.send(`MAIL FROM:<${from}>`), 250, 'quoted sender')
    expectReply(await a.send(`RCPT TO:<"tenant=${victim.tenant}"@${sinkDomain}>`), 553, 'quoted recipient')
    expectReply(await a.send(`RCPT TO:<nobody-quoted@${sinkDomain}>`), 250, 'recipient')
    expectReply(await a.send('DATA'), 354, 'DATA')
    a.write(`Subject: quoted ${Date.now()}\r\n\r\nhello\r\n.`)
    const done = await a.read()
    expectReply(done, 250, 'end of DATA')
    const tx = /\(([^)]+)\)/.exec(done.text)![1]
    bounces++
    await a.close()
    const refused = (await haraka.waitForLog(/\[posta-relay\] RCPT refused: routing syntax .*tenant\\u003d.*/))[0]
    assert.equal(parseFields(refused).tenant, sender.tenant)
    assert.equal(parseFields(refused).to, `<"tenant=${victim.tenant}"@${sinkDomain}>`)
    const bounced = (await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] bounced .*tx=${tx.replace(/\./g, '\\.')}.*`), 20000))[0]
    const f = parseFields(bounced)
    assert.equal(f.tenant, sender.tenant)
    assert.equal(f.client_ip, ip.honest)
    assert.equal(f.from, from)
    // the DSN reaches the (quoted) sender at the sink
    await sink.waitFor(before + 1)
    const log = haraka.log()
    for (const l of log.split('\n').filter((x) => x.includes('tenant\\u003d'))) assert.doesNotMatch(l, / tenant=victim/, l)
  })

  it('a real bounce and a real failed login', async () => {
    const a = await tlsClient(ip.honest)
    expectReply(await a.send(`AUTH PLAIN ${plainResponse(sender.login, sender.password)}`), 235, 'AUTH')
    const tx = await send(a, `me@bounce.${sinkDomain}`, `nobody-plain@${sinkDomain}`)
    bounces++
    await send(a, `me@bounce.${sinkDomain}`, `someone@${sinkDomain}`)
    await a.close()
    await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] bounced .*tx=${tx.replace(/\./g, '\\.')}`), 20000)

    const w = await tlsClient(ip.wrongPassword)
    expectReply(await w.send(`AUTH PLAIN ${plainResponse(sender.login, 'not-the-password')}`), 535, 'wrong password')
    expectReply(await w.send(`AUTH PLAIN ${plainResponse(sender.login, 'not-it-either')}`), 535, 'wrong password')
    await w.close()
    await failedLogins(ip.wrongPassword, 2)
  })

  // ---- README's recipes over everything above ----

  it("README's recipes count only what really happened", async () => {
    const recipes = readmeRecipes()
    const byTenant = recipes.find((r) => r.includes('acme'))
    const bounceRecipe = recipes.find((r) => r.includes('bounced'))
    const loginRecipe = recipes.find((r) => r.includes('authentication failed'))
    assert.ok(byTenant && bounceRecipe && loginRecipe, `README has the three recipes: ${recipes.join('\n')}`)
    assert.equal(recipes.length, 3, 'every recipe in README is run here')

    // bounces per tenant: the honest sender's, nobody else's
    assert.deepEqual(counts(run(bounceRecipe, sender.tenant)), { [`tenant=${sender.tenant}`]: bounces })

    // failed logins per client address: the two real failures of each of the two clients that failed
    assert.deepEqual(counts(run(loginRecipe, sender.tenant)), { [`client_ip=${ip.authFields}`]: 2, [`client_ip=${ip.wrongPassword}`]: 2 })

    // everything one tenant did: nothing for the victim; for the sender, only lines that are really its own
    assert.equal(run(byTenant, victim.tenant), '')
    const own = run(byTenant, sender.tenant).split('\n').filter(Boolean)
    assert.ok(own.length >= 6, `the sender's lines:\n${own.join('\n')}`)
    for (const l of own) assert.equal(parseFields(l).tenant, sender.tenant, l)
  })

  it('what a client sent is only ever inside a whole record: no raw control character, no line of its own', () => {
    // (libraries may print lines of their own on stdout, e.g. haraka-tld's "loaded TLD files": none carries client text)
    const sent = /evil\.example|6\.6\.6\.6|FORGED|victim-|probe,/
    const lines = haraka.log().split('\n').filter((l) => sent.test(l))
    assert.ok(lines.length >= 10, `the attempts are in the log (${lines.length} lines)`)
    for (const l of lines) {
      assert.doesNotMatch(l, /[\u0000-\u0008\u000b-\u001f\u007f]/, l)
      if (!/^\d{4}-\d{2}-\d{2}T\S+ \[[A-Z]+\] \[[^\]]+\] \[[^\]]+\] /.test(l)) assert.fail(`client text on a line that is not a log record: ${l}`)
    }
  })
})
