// End to end: SMTP AUTH against a real Haraka and a real Redis, spoken line by line with a raw client.
// TLS before AUTH on every port (loopback included), PLAIN and LOGIN, failure counters and lockouts per client IP,
// per (login, client) pair and per login across connections (a login under attack still lets in the customer),
// tenant status and password changes, Redis outages, malformed input, logs.
// Failures are made from random 127.x.y.z source addresses, so counters never collide (also in a shared REDIS_URL).
import { strict as assert } from 'node:assert'
import { keys } from '../lib/keys'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { b64, plainResponse, SmtpClient, type SmtpReply } from '../testkit/smtp-client'

interface Creds {
  tenant: string
  login: string
  password: string
}

describe('SMTP AUTH end to end (real Redis, Haraka, raw SMTP)', function () {
  this.timeout(90_000)
  let redis: TestRedis
  let haraka: HarakaNode
  let env: Record<string, string>
  const pkg = uniqueName('authpkg')
  /** Every secret this file sent, right or wrong: none may show up in Haraka's log. */
  const secrets: string[] = []

  before(async function () {
    this.timeout(60000)
    redis = await testRedis()
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({
      redisUrl: redis.url,
      overrides: {
        'posta-auth.ini': [
          '[main]',
          'ip_max=10',
          'ip_window=900',
          'pair_max=10',
          'pair_window=3600',
          'user_max=20',
          'user_window=3600',
          'failure_delay_ms=0',
          'max_attempts_per_connection=3',
          'cache_seconds=300',
          '',
        ].join('\n'),
      },
    })
  })
  after(async () => {
    await haraka?.stop()
    await redis?.close()
  })

  // ---- helpers ----

  const usedIps = new Set<string>()
  /** A client address of its own for each test that counts failures (all of 127.0.0.0/8 is local). */
  function freshIp(): string {
    for (;;) {
      const r = () => 1 + Math.floor(Math.random() * 253)
      const ip = `127.${r()}.${r()}.${r()}`
      if (!usedIps.has(ip)) {
        usedIps.add(ip)
        return ip
      }
    }
  }

  async function ensurePackage() {
    // a restarted private Redis (the outage test) comes back empty
    if (await redis.client.exists(keys.package(pkg))) return
    const r = await posta(['package', 'set', pkg, '--traffic', '1GB'], env)
    assert.equal(r.code, 0, r.stderr)
  }

  async function newTenant(): Promise<Creds> {
    await ensurePackage()
    const r = await posta(['tenant', 'create', uniqueName('auth'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const c = r.json<Creds>()
    secrets.push(c.password)
    return c
  }

  function wrongPassword(): string {
    const p = `wrong-${uniqueName('pw')}`
    secrets.push(p)
    return p
  }

  /** Connected, EHLO, STARTTLS (unless implicit TLS), EHLO again. */
  async function tlsClient(ip: string, port: 'smtp' | 'submission' | 'smtps' = 'submission'): Promise<SmtpClient> {
    const implicit = port === 'smtps'
    const c = await SmtpClient.connect({
      port: port === 'smtp' ? haraka.smtpPort : port === 'submission' ? haraka.submissionPort : haraka.smtpsPort,
      tls: implicit,
      localAddress: ip,
    })
    assert.equal(c.greeting.code, 220)
    assert.equal((await c.ehlo()).code, 250)
    if (!implicit) {
      await c.starttls()
      assert.equal((await c.ehlo()).code, 250)
    }
    return c
  }

  const authPlain = (c: SmtpClient, user: string, pass: string) => c.send(`AUTH PLAIN ${plainResponse(user, pass)}`)

  async function authLogin(c: SmtpClient, user: string, pass: string): Promise<SmtpReply> {
    const r1 = await c.send('AUTH LOGIN')
    assert.equal(r1.raw, '334 VXNlcm5hbWU6', 'AUTH LOGIN asks for the username')
    const r2 = await c.send(b64(user))
    assert.equal(r2.raw, '334 UGFzc3dvcmQ6', 'AUTH LOGIN asks for the password')
    return c.send(b64(pass))
  }

  function expectReply(r: SmtpReply, code: number, re?: RegExp, what = '') {
    assert.equal(r.code, code, `${what} expected ${code}, got: ${r.raw}`)
    if (re) assert.match(r.raw, re, what)
  }

  const ipFails = async (ip: string) => Number(await redis.client.get(keys.authFailIp(ip)))
  const userFails = async (user: string) => Number(await redis.client.get(keys.authFailUser(user.toLowerCase())))
  const pairFails = async (ip: string, user: string) => Number(await redis.client.get(keys.authFailPair(user.toLowerCase(), ip)))
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

  /** `count` wrong-password attempts from one address, spread over connections of at most 3 attempts each. */
  async function failFrom(ip: string, login: string, count: number): Promise<void> {
    while (count > 0) {
      const c = await tlsClient(ip)
      const n = Math.min(3, count)
      for (let i = 1; i <= n; i++) {
        const r = i % 2 ? await authPlain(c, login, wrongPassword()) : await authLogin(c, login, wrongPassword())
        if (i < 3) expectReply(r, 535, /^535 5\.7\.8 /, `failure ${i} on a connection`)
        else expectReply(r, 421, /^421 4\.7\.0 /, 'third failure on a connection')
      }
      if (n === 3) assert.ok(await c.waitClosed(), 'closed after the third failure')
      await c.close()
      count -= n
    }
  }

  /**
   * `count` wrong guesses from one address that may be refused: connections of at most 3 attempts; returns how many
   * were verified and failed (535, or 421 at a connection's third failure) and how many were refused (454).
   */
  async function guessFrom(ip: string, login: string, count: number): Promise<{ failed: number; refused: number }> {
    const out = { failed: 0, refused: 0 }
    let c = await tlsClient(ip)
    try {
      for (let i = 0; i < count; i++) {
        const r = await authPlain(c, login, wrongPassword())
        if (r.code === 454) {
          assert.match(r.raw, /^454 4\.7\.0 /)
          out.refused++
          continue
        }
        out.failed++
        if (r.code === 421) {
          assert.ok(await c.waitClosed())
          await c.close()
          c = await tlsClient(ip)
        } else expectReply(r, 535, /^535 5\.7\.8 /, `guess ${i + 1}`)
      }
    } finally {
      await c.close()
    }
    return out
  }

  // ---- TLS before AUTH ----

  for (const port of ['submission', 'smtp'] as const) {
    it(`${port} port: no AUTH in plaintext EHLO, AUTH before STARTTLS is 530 5.7.0 (from 127.0.0.1 too)`, async () => {
      const creds = await newTenant()
      const c = await SmtpClient.connect({ port: port === 'smtp' ? haraka.smtpPort : haraka.submissionPort, localAddress: '127.0.0.1' })
      try {
        assert.equal(c.localAddress, '127.0.0.1')
        const ehlo = await c.ehlo()
        expectReply(ehlo, 250)
        const ext = SmtpClient.extensions(ehlo)
        assert.ok(ext.includes('STARTTLS'), `STARTTLS offered: ${ehlo.raw}`)
        assert.ok(!ext.some((e) => e.startsWith('AUTH')), `no AUTH before TLS: ${ehlo.raw}`)
        // even with the right password, in both mechanisms
        expectReply(await authPlain(c, creds.login, creds.password), 530, /^530 5\.7\.0 .*STARTTLS/i, 'AUTH PLAIN in plaintext')
        expectReply(await c.send('AUTH LOGIN'), 530, /^530 5\.7\.0 .*STARTTLS/i, 'AUTH LOGIN in plaintext')
        expectReply(await c.send(`AUTH LOGIN ${b64(creds.login)}`), 530, /^530 5\.7\.0 .*STARTTLS/i, 'AUTH LOGIN in plaintext')
        // nothing was counted against the login, and the session goes on: MAIL still needs AUTH
        assert.equal(await redis.client.exists(keys.authFailUser(creds.login.toLowerCase())), 0)
        const mail = await c.send(`MAIL FROM:<x@${creds.tenant}.posta.localhost>`)
        assert.ok(mail.code >= 500, `unauthenticated MAIL refused: ${mail.raw}`)
        // the same session, upgraded, logs in with the same password
        await c.starttls()
        const ehlo2 = await c.ehlo()
        assert.ok(SmtpClient.extensions(ehlo2).includes('AUTH PLAIN LOGIN'), ehlo2.raw)
        expectReply(await authPlain(c, creds.login, creds.password), 235, /^235 2\.7\.0 /)
      } finally {
        await c.close()
      }
    })
  }

  for (const port of ['smtp', 'submission', 'smtps'] as const) {
    it(`${port} port: EHLO inside TLS advertises exactly AUTH PLAIN LOGIN`, async () => {
      const c = await SmtpClient.connect({
        port: port === 'smtp' ? haraka.smtpPort : port === 'submission' ? haraka.submissionPort : haraka.smtpsPort,
        tls: port === 'smtps',
      })
      try {
        if (port !== 'smtps') {
          await c.ehlo()
          await c.starttls()
        }
        assert.ok(c.encrypted)
        const ehlo = await c.ehlo()
        const auth = SmtpClient.extensions(ehlo).filter((e) => e.startsWith('AUTH'))
        assert.deepEqual(auth, ['AUTH PLAIN LOGIN'], ehlo.raw)
        assert.ok(!SmtpClient.extensions(ehlo).includes('STARTTLS'), 'no second STARTTLS inside TLS')
      } finally {
        await c.close()
      }
    })
  }

  it('a second STARTTLS inside TLS is 503 5.5.1 on every port, and the session goes on unharmed', async () => {
    const creds = await newTenant()
    for (const port of ['submission', 'smtp', 'smtps'] as const) {
      const c = await tlsClient(freshIp(), port)
      try {
        assert.ok(c.encrypted)
        expectReply(await c.send('STARTTLS'), 503, /^503 5\.5\.1 TLS already active/, `STARTTLS inside TLS on ${port}`)
        expectReply(await c.send('STARTTLS now'), 503, /^503 5\.5\.1 /, `STARTTLS with an argument on ${port}`)
        // the TLS session is intact: EHLO, AUTH and MAIL work on it
        expectReply(await c.ehlo(), 250, undefined, `EHLO after the refused STARTTLS on ${port}`)
        expectReply(await authPlain(c, creds.login, creds.password), 235, undefined, `AUTH after the refused STARTTLS on ${port}`)
        expectReply(await c.send('STARTTLS'), 503, /^503 5\.5\.1 /, `STARTTLS after AUTH on ${port}`)
        expectReply(await c.send(`MAIL FROM:<a@${creds.tenant}.example>`), 250, undefined, `MAIL on ${port}`)
      } finally {
        await c.close()
      }
    }
    await haraka.waitForLog(/STARTTLS refused: TLS already active/)
    // in plaintext STARTTLS still works, and the line "STARTTLS" inside an AUTH exchange is AUTH data, not a command
    const c = await tlsClient(freshIp())
    try {
      expectReply(await c.send('AUTH LOGIN'), 334)
      expectReply(await c.send('STARTTLS'), 334, /^334 UGFzc3dvcmQ6/, '"STARTTLS" read as the base64 user name')
      expectReply(await c.send('*'), 501, /cancel/i)
    } finally {
      await c.close()
    }
  })

  // ---- good logins ----

  it('PLAIN (initial response and 334 continuation) and LOGIN (both forms) log in with 235 and may send', async () => {
    const creds = await newTenant()
    const ways: [string, (c: SmtpClient) => Promise<SmtpReply>][] = [
      ['PLAIN initial response', (c) => authPlain(c, creds.login, creds.password)],
      ['PLAIN continuation', async (c) => {
        const r = await c.send('AUTH PLAIN')
        assert.equal(r.code, 334, r.raw)
        return c.send(plainResponse(creds.login, creds.password))
      }],
      ['LOGIN', (c) => authLogin(c, creds.login, creds.password)],
      ['LOGIN with initial username', async (c) => {
        const r = await c.send(`AUTH LOGIN ${b64(creds.login)}`)
        assert.equal(r.raw, '334 UGFzc3dvcmQ6', r.raw)
        return c.send(b64(creds.password))
      }],
      ['PLAIN with authzid = login, upper-case login', (c) => c.send(`AUTH PLAIN ${plainResponse(creds.login.toUpperCase(), creds.password, creds.login)}`)],
    ]
    for (const [port, [what, auth]] of ways.map((w, i) => [(['submission', 'smtps', 'smtp'] as const)[i % 3], w] as const)) {
      const c = await tlsClient('127.0.0.1', port)
      try {
        expectReply(await auth(c), 235, /^235 2\.7\.0 /, `${what} on ${port}`)
        expectReply(await c.send(`MAIL FROM:<sender@${creds.tenant}.example>`), 250, undefined, `MAIL after ${what}`)
      } finally {
        await c.close()
      }
    }
    await haraka.waitForLog(new RegExp(`\\[posta-auth\\] AUTH ok tenant=${esc(creds.tenant)} auth_user=${esc(creds.login)} client_ip=127\\.0\\.0\\.1 method=LOGIN`))
  })

  // ---- failures and their counters ----

  it('a wrong password is 535 5.7.8 and counted per IP, per pair and per lower-cased login; a good login clears only its pair', async () => {
    const creds = await newTenant()
    const ip = freshIp()
    const login = creds.login.toLowerCase()
    const c = await tlsClient(ip)
    try {
      expectReply(await authPlain(c, creds.login.toUpperCase(), wrongPassword()), 535, /^535 5\.7\.8 /)
      assert.equal(await redis.client.get(`posta:authfail:ip:${ip}`), '1', 'key layout posta:authfail:ip:<ip>')
      assert.equal(await redis.client.get(`posta:authfail:{${login}}:pair:${ip}`), '1', 'key layout posta:authfail:{<login>}:pair:<ip>')
      assert.equal(await redis.client.get(`posta:authfail:{${login}}:user`), '1', 'key layout posta:authfail:{<login>}:user')
      assert.equal(await redis.client.exists(`posta:authfail:{${login}}:busy:${ip}`), 0, 'nothing left in flight')
      const ipTtl = await redis.client.ttl(keys.authFailIp(ip))
      const pairTtl = await redis.client.ttl(keys.authFailPair(login, ip))
      const userTtl = await redis.client.ttl(keys.authFailUser(login))
      assert.ok(ipTtl > 800 && ipTtl <= 900, `ip window 900 s, ttl ${ipTtl}`)
      assert.ok(pairTtl > 3500 && pairTtl <= 3600, `pair window 3600 s, ttl ${pairTtl}`)
      assert.ok(userTtl > 3500 && userTtl <= 3600, `user window 3600 s, ttl ${userTtl}`)
      // the same client then logs in (second attempt on the connection): its pair starts over, the login and the
      // address keep the failure
      expectReply(await authLogin(c, creds.login, creds.password), 235)
      assert.equal(await redis.client.exists(keys.authFailPair(login, ip)), 0)
      assert.equal(await userFails(creds.login), 1)
      assert.equal(await ipFails(ip), 1)
      await haraka.waitForLog(new RegExp(`SASL PLAIN authentication failed auth_user=${esc(login)} client_ip=${esc(ip)} reason="?wrong password"? ip_fails=1 pair_fails=1 user_fails=1`))
    } finally {
      await c.close()
    }
  })

  it('closes a connection with 421 4.7.0 at the third failure', async () => {
    const creds = await newTenant()
    const ip = freshIp()
    const c = await tlsClient(ip)
    try {
      expectReply(await authPlain(c, creds.login, wrongPassword()), 535, /^535 5\.7\.8 /, 'first')
      expectReply(await authLogin(c, `nobody@${creds.tenant}.posta.localhost`, wrongPassword()), 535, /^535 5\.7\.8 /, 'second (unknown login)')
      expectReply(await authPlain(c, creds.login, wrongPassword()), 421, /^421 4\.7\.0 .*connection/i, 'third')
      assert.ok(await c.waitClosed(), 'the server closed the connection')
      assert.equal(await ipFails(ip), 3)
      assert.equal(await userFails(creds.login), 2)
    } finally {
      await c.close()
    }
    // the address is not locked yet (3 < 10): a new connection logs in
    const c2 = await tlsClient(ip)
    try {
      expectReply(await authPlain(c2, creds.login, creds.password), 235)
    } finally {
      await c2.close()
    }
  })

  it('locks a client IP out after 10 failures over several connections: the 11th, right password, is 421 and closed', async () => {
    const creds = await newTenant()
    const ip = freshIp()
    await failFrom(ip, creds.login, 10) // connections of 3, 3, 3, 1
    assert.equal(await ipFails(ip), 10)
    const c = await tlsClient(ip)
    const r = await authPlain(c, creds.login, creds.password)
    expectReply(r, 421, /^421 4\.7\.0 .*(address|IP)/i, '11th attempt from the address')
    assert.ok(await c.waitClosed(), 'the server closed the connection')
    await c.close()
    assert.equal(await ipFails(ip), 10, 'a refused attempt is not counted (and never hashed)')
    await haraka.waitForLog(new RegExp(`AUTH refused: too many failures auth_user=${esc(creds.login)} client_ip=${esc(ip)} by=ip retry_after=\\d+`))
    // LOGIN from that address is refused too
    const c2 = await tlsClient(ip)
    expectReply(await authLogin(c2, creds.login, creds.password), 421, /^421 4\.7\.0 /, 'LOGIN from the locked address')
    assert.ok(await c2.waitClosed())
    await c2.close()
    // the lockout is per address: the same login from elsewhere works
    const c3 = await tlsClient(freshIp())
    try {
      expectReply(await authPlain(c3, creds.login, creds.password), 235)
    } finally {
      await c3.close()
    }
  })

  // ---- a login under attack: strangers cannot lock the customer out ----

  it('30 wrong guesses from three addresses: the right password from a fourth address logs in, the three are refused', async function () {
    this.timeout(180_000) // 30 scrypt hashes and AUTH failure delays: slow on a loaded machine, never a timing assertion
    const victim = await newTenant()
    const other = await newTenant()
    const attackers = [freshIp(), freshIp(), freshIp()]
    // ten wrong guesses from each: the first twenty fail; then the login is under attack and the third address,
    // once it has failed, is refused for it (454, uncounted, never hashed)
    await failFrom(attackers[0], victim.login, 10)
    await failFrom(attackers[1], victim.login, 10)
    const third = await guessFrom(attackers[2], victim.login, 10)
    assert.deepEqual(third, { failed: 1, refused: 9 }, 'the third address gets one guess')
    assert.equal(await userFails(victim.login), 21, 'twenty-one failures counted for the login')
    for (const [ip, n] of [[attackers[0], 10], [attackers[1], 10], [attackers[2], 1]] as const) {
      assert.equal(await ipFails(ip), n)
      assert.equal(await pairFails(ip, victim.login), n)
    }

    // the customer, from an address that never failed: PLAIN and LOGIN, connection after connection, and sends
    const home = freshIp()
    for (let k = 0; k < 4; k++) {
      const c = await tlsClient(home, k === 3 ? 'smtps' : 'submission')
      try {
        const r = k % 2 ? await authLogin(c, victim.login, victim.password) : await authPlain(c, victim.login, victim.password)
        expectReply(r, 235, /^235 2\.7\.0 /, `login ${k + 1} from a fourth address`)
        expectReply(await c.send(`MAIL FROM:<news@${victim.tenant}.example>`), 250, undefined, 'and may send')
      } finally {
        await c.close()
      }
    }

    // the three attacking addresses are refused, the right password included: two have spent their address budget
    // (421, disconnected), the third has failed for this login while it is under attack (454)
    for (const ip of attackers.slice(0, 2)) {
      const c = await tlsClient(ip)
      expectReply(await authPlain(c, victim.login, victim.password), 421, /^421 4\.7\.0 .*address/i, `attacker ${ip}`)
      assert.ok(await c.waitClosed(), 'and disconnected')
      await c.close()
    }
    const c3 = await tlsClient(attackers[2])
    try {
      expectReply(await authLogin(c3, victim.login, victim.password), 454, /^454 4\.7\.0 .*from your address/, 'third attacker')
      expectReply(await authPlain(c3, other.login, other.password), 235, undefined, 'another login from the third address')
    } finally {
      await c3.close()
    }
    await haraka.waitForLog(new RegExp(`AUTH refused: too many failures auth_user=${esc(victim.login)} client_ip=${esc(attackers[2])} by=user retry_after=\\d+`))
    // once an attacker's 15-minute address budget is over, it is still refused for this login, and only for it
    await redis.client.del(keys.authFailIp(attackers[0])) // the address window has ended
    const c = await tlsClient(attackers[0])
    try {
      expectReply(await authPlain(c, victim.login, victim.password), 454, /^454 4\.7\.0 .*from your address, try again in \d+ seconds/, 'attacker after its address window')
      assert.ok(!c.closed, '454 keeps the connection')
      expectReply(await authPlain(c, other.login, other.password), 235, undefined, 'another login from that address')
    } finally {
      await c.close()
    }
    await haraka.waitForLog(new RegExp(`AUTH refused: too many failures auth_user=${esc(victim.login)} client_ip=${esc(attackers[0])} by=pair retry_after=\\d+`))
    // the customer's successes cleared none of the attack's counts
    assert.equal(await userFails(victim.login), 21)
    for (const [ip, n] of [[attackers[0], 10], [attackers[1], 10], [attackers[2], 1]] as const) assert.equal(await pairFails(ip, victim.login), n)
    assert.equal(await pairFails(home, victim.login), 0)
    assert.equal(await ipFails(home), 0, 'successes are not counted against the customer')
  })

  it('a success from one client does not clear another client\'s failures; under attack only clients that failed are refused', async () => {
    const victim = await newTenant()
    const typo = freshIp() // the customer's own second office, which mistyped once
    const c1 = await tlsClient(typo)
    expectReply(await authPlain(c1, victim.login, wrongPassword()), 535, /^535 5\.7\.8 /)
    await c1.close()
    const office = freshIp()
    const c2 = await tlsClient(office)
    expectReply(await authPlain(c2, victim.login, victim.password), 235)
    await c2.close()
    assert.equal(await pairFails(typo, victim.login), 1, "the other client's failure stays")
    assert.equal(await userFails(victim.login), 1, 'the login keeps its failure (the success is taken back, nothing cleared)')
    assert.equal(await ipFails(typo), 1)

    // strangers push the login past user_max (20): 1 + 10 + 9
    const [a1, a2] = [freshIp(), freshIp()]
    await failFrom(a1, victim.login, 10)
    await failFrom(a2, victim.login, 9)
    assert.equal(await userFails(victim.login), 20)

    // the address that failed is refused with the right password; so is a2 (9 failures: below every budget of its own)
    for (const ip of [typo, a2]) {
      const c = await tlsClient(ip)
      try {
        expectReply(await authPlain(c, victim.login, victim.password), 454, /^454 4\.7\.0 .*from your address/, `client ${ip} that failed`)
        expectReply(await authLogin(c, victim.login.toUpperCase(), victim.password), 454, /^454 4\.7\.0 /, 'any spelling of the login')
      } finally {
        await c.close()
      }
    }
    await haraka.waitForLog(new RegExp(`AUTH refused: too many failures auth_user=${esc(victim.login)} client_ip=${esc(a2)} by=user retry_after=\\d+`))
    // the office that logged in before and a new address log in
    for (const ip of [office, freshIp()]) {
      const c = await tlsClient(ip)
      try {
        expectReply(await authLogin(c, victim.login, victim.password), 235, undefined, `client ${ip} that never failed`)
      } finally {
        await c.close()
      }
    }
    // refusals are not counted, successes are taken back: every count is as the failures left it
    assert.equal(await userFails(victim.login), 20)
    assert.equal(await pairFails(typo, victim.login), 1)
    assert.equal(await pairFails(a1, victim.login), 10)
    assert.equal(await pairFails(a2, victim.login), 9)
    assert.equal(await ipFails(a2), 9)
  })

  it('under attack, pooled clients (parallel connections, right password) all log in; parallel guesses get one try', async () => {
    const victim = await newTenant() // fresh: nothing in the verify cache
    const [a1, a2] = [freshIp(), freshIp()]
    await failFrom(a1, victim.login, 10)
    await failFrom(a2, victim.login, 10)
    assert.equal(await userFails(victim.login), 20)

    const pool = freshIp()
    const conns = await Promise.all(Array.from({ length: 12 }, () => tlsClient(pool)))
    try {
      const replies = await Promise.all(conns.map((c, k) => (k % 2 ? authLogin(c, victim.login, victim.password) : authPlain(c, victim.login, victim.password))))
      for (const [k, r] of replies.entries()) expectReply(r, 235, /^235 2\.7\.0 /, `pooled connection ${k + 1}`)
      for (const c of conns) expectReply(await c.send(`MAIL FROM:<app@${victim.tenant}.example>`), 250)
    } finally {
      await Promise.all(conns.map((c) => c.close()))
    }
    assert.equal(await pairFails(pool, victim.login), 0)
    assert.equal(await ipFails(pool), 0)
    assert.equal(await userFails(victim.login), 20)

    // a guesser at a fresh address firing in parallel: one guess is verified, the others are refused uncounted
    const g = freshIp()
    const guessers = await Promise.all(Array.from({ length: 8 }, () => tlsClient(g)))
    try {
      const replies = await Promise.all(guessers.map((c) => authPlain(c, victim.login, wrongPassword())))
      const codes = replies.map((r) => r.code).sort()
      assert.deepEqual(codes, [454, 454, 454, 454, 454, 454, 454, 535], replies.map((r) => r.raw).join(' | '))
    } finally {
      await Promise.all(guessers.map((c) => c.close()))
    }
    assert.equal(await userFails(victim.login), 21)
    assert.equal(await pairFails(g, victim.login), 1)
    assert.equal(await ipFails(g), 1)
  })

  // ---- tenant lifecycle ----

  it('a suspended tenant cannot log in, a resumed one can; a new password replaces the old one', async () => {
    const creds = await newTenant()
    const ip = freshIp()
    const login = async (password: string, port: 'submission' | 'smtps' = 'submission') => {
      const c = await tlsClient(ip, port)
      try {
        return await authPlain(c, creds.login, password)
      } finally {
        await c.close()
      }
    }
    expectReply(await login(creds.password), 235, undefined, 'active') // also fills the verify cache

    assert.equal((await posta(['tenant', 'suspend', creds.tenant], env)).code, 0)
    expectReply(await login(creds.password), 535, /^535 5\.7\.8 .*suspended/, 'suspended')
    expectReply(await login(creds.password, 'smtps'), 535, /^535 5\.7\.8 /, 'suspended, SMTPS')

    assert.equal((await posta(['tenant', 'resume', creds.tenant], env)).code, 0)
    expectReply(await login(creds.password), 235, undefined, 'resumed')

    const r = await posta(['tenant', 'password', creds.tenant, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const renewed = r.json<Creds>()
    secrets.push(renewed.password)
    assert.notEqual(renewed.password, creds.password)
    assert.equal(renewed.login, creds.login)
    expectReply(await login(creds.password), 535, /^535 5\.7\.8 /, 'old password (was cached)')
    expectReply(await login(renewed.password), 235, undefined, 'new password')
  })

  // ---- Redis outage ----

  it('answers 454 4.7.0 at once while Redis is down, and logs in again once it is back', async function () {
    // Stopping Redis is only possible for the private redis-server this file started; a REDIS_URL Redis is
    // shared with others and is not ours to stop.
    if (!redis.server) this.skip()
    const before = await newTenant()
    await redis.stop()
    let restarted = false
    try {
      const c = await tlsClient(freshIp())
      try {
        const t0 = Date.now()
        const r = await authPlain(c, before.login, before.password)
        const ms = Date.now() - t0
        expectReply(r, 454, /^454 4\.7\.0 /, 'Redis down')
        assert.ok(ms < 2500, `answered in ${ms} ms`)
        assert.ok(!c.closed, 'the session stays open')
        expectReply(await authLogin(c, before.login, before.password), 454, /^454 4\.7\.0 /, 'Redis down, LOGIN')
      } finally {
        await c.close()
      }
      await haraka.waitForLog(/\[posta-auth\] AUTH backend unavailable/)
      assert.equal(haraka.process.exitCode, null, 'Haraka still runs')

      await redis.restart()
      restarted = true
      // the private Redis has no persistence: it comes back empty, so make a tenant again
      const creds = await newTenant()
      const until = Date.now() + 10000
      let last: SmtpReply | null = null
      while (Date.now() < until) {
        const c2 = await tlsClient(freshIp())
        try {
          last = await authPlain(c2, creds.login, creds.password)
        } finally {
          await c2.close()
        }
        if (last.code === 235) break
        assert.equal(last.code, 454, `only a temporary failure while reconnecting: ${last.raw}`)
        await new Promise((r) => setTimeout(r, 250))
      }
      assert.equal(last?.code, 235, `logs in after Redis is back: ${last?.raw}`)
    } finally {
      if (!restarted) await redis.restart()
    }
  })

  // ---- malformed input ----

  it('answers malformed AUTH input with 5xx, never crashes, and a good login still works', async () => {
    const creds = await newTenant()
    const ip = freshIp()
    const long = 'a'.repeat(300)
    // [what, lines to send (all but the last answered 334), expected final code, expected reply]
    const cancelled = /^501 \S+ .*cancel/i
    const cases: [string, string[], number, RegExp?][] = [
      ['bad base64', ['AUTH PLAIN !!!'], 501],
      ['bad base64 in continuation', ['AUTH PLAIN', '!!!'], 501],
      ['empty PLAIN response', ['AUTH PLAIN', ''], 501],
      ['"=" (empty initial response)', ['AUTH PLAIN ='], 501],
      ['PLAIN without NULs', [`AUTH PLAIN ${b64(`${creds.login}${creds.password}`)}`], 501],
      ['PLAIN with one NUL', [`AUTH PLAIN ${b64(`${creds.login}\0${creds.password}`)}`], 501],
      ['PLAIN with four parts', [`AUTH PLAIN ${b64(`\0${creds.login}\0${creds.password}\0x`)}`], 501],
      ['PLAIN with an empty password', [`AUTH PLAIN ${b64(`\0${creds.login}\0`)}`], 501],
      ['PLAIN with a 300-char user', [`AUTH PLAIN ${plainResponse(`${long}@${creds.tenant}.posta.localhost`, 'x')}`], 501],
      ['PLAIN with a 300-char password', [`AUTH PLAIN ${plainResponse(creds.login, long)}`], 501],
      ['LOGIN with a 300-char user', [`AUTH LOGIN ${b64(long)}`], 501],
      ['LOGIN with a 300-char user in continuation', ['AUTH LOGIN', b64(long)], 501],
      ['LOGIN with a 300-char password', ['AUTH LOGIN', b64(creds.login), b64(long)], 501],
      ['LOGIN with an empty user line', ['AUTH LOGIN', ''], 501],
      ['LOGIN with bad base64 password', ['AUTH LOGIN', b64(creds.login), '!!!!'], 501],
      ['LOGIN response with a space inside', ['AUTH LOGIN', `${b64(creds.login).slice(0, 4)} ${b64(creds.login).slice(4)}`], 501],
      ['PLAIN response with a space inside', ['AUTH PLAIN', `${plainResponse(creds.login, creds.password).slice(0, 8)} ${plainResponse(creds.login, creds.password).slice(8)}`], 501],
      ['a new AUTH command in the middle of an exchange', ['AUTH LOGIN', `AUTH PLAIN ${plainResponse(creds.login, creds.password)}`], 501],
      ['unknown mechanism', ['AUTH CRAM-MD5'], 504],
      ['unknown mechanism with data', ['AUTH XOAUTH2 dXNlcj0='], 504],
      ['no mechanism', ['AUTH'], 504],
      ['extra arguments', [`AUTH PLAIN ${plainResponse(creds.login, creds.password)} extra`], 501],
      ['LOGIN cancelled with *', ['AUTH LOGIN', '*'], 501, cancelled],
      ['LOGIN cancelled with * at the password', ['AUTH LOGIN', b64(creds.login), '*'], 501, cancelled],
      ['PLAIN cancelled with *', ['AUTH PLAIN', '*'], 501, cancelled],
      ['authzid of someone else', [`AUTH PLAIN ${plainResponse(creds.login, creds.password, `other@${creds.tenant}.posta.localhost`)}`], 535],
    ]
    const c = await tlsClient(ip)
    try {
      for (const [what, lines, code, re] of cases) {
        let r: SmtpReply | null = null
        for (let i = 0; i < lines.length; i++) {
          r = await c.send(lines[i])
          if (i < lines.length - 1) assert.equal(r.code, 334, `${what}: step ${i + 1} expects 334, got: ${r.raw}`)
        }
        assert.equal(r!.code, code, `${what}: expected ${code}, got: ${r!.raw}`)
        if (re) assert.match(r!.raw, re, what)
        assert.ok(!c.closed, `${what}: connection kept`)
      }
      // none of that was a password guess
      assert.equal(await redis.client.exists(keys.authFailIp(ip)), 0, 'malformed input is not counted as failures')
      // the same connection still logs in, and a second AUTH is refused
      expectReply(await authPlain(c, creds.login, creds.password), 235, /^235 /, 'good login after malformed input')
      expectReply(await authPlain(c, creds.login, creds.password), 503, /^503 /, 'AUTH twice')
      expectReply(await c.send('AUTH LOGIN'), 503, /^503 /, 'AUTH LOGIN after success')
      expectReply(await c.send(`MAIL FROM:<a@${creds.tenant}.example>`), 250)
      expectReply(await c.send('AUTH CRAM-MD5'), 503, /^503 /, 'AUTH during a transaction')
    } finally {
      await c.close()
    }

    // control characters in the login (log injection) and binary garbage: plain failures, counted
    const c2 = await tlsClient(ip)
    try {
      const injected = `x\r\n[CRIT] fake line\x07@${creds.tenant}.posta.localhost`
      expectReply(await c2.send(`AUTH PLAIN ${Buffer.from(`\0${injected}\0pw`).toString('base64')}`), 535, /^535 /, 'control characters')
      expectReply(await c2.send(`AUTH PLAIN ${Buffer.from([0, 0xff, 0xfe, 0x80, 0, 0xc3, 0x28]).toString('base64')}`), 535, /^535 /, 'invalid UTF-8')
      assert.equal(await ipFails(ip), 2)
    } finally {
      await c2.close()
    }
    assert.ok(!/\n[^\n]*\[CRIT\] fake line/.test(haraka.log()), 'a login cannot inject a log line')

    // a command line over the 512-byte limit: Haraka's own 5xx, and the process lives on
    const c3 = await tlsClient(ip)
    try {
      const r = await c3.send(`AUTH PLAIN ${b64('\0' + 'u'.repeat(300) + '\0' + 'p'.repeat(300))}`).catch(() => null)
      if (r) assert.ok(r.code >= 500 && r.code < 600, `overlong line: ${r.raw}`)
    } finally {
      await c3.close()
    }

    assert.equal(haraka.process.exitCode, null, 'Haraka is still running')
    assert.equal(haraka.process.signalCode, null, 'Haraka is still running')
    assert.doesNotMatch(haraka.log(), /uncaught|unhandled|TypeError|ReferenceError/i)
    const c4 = await tlsClient(freshIp(), 'smtps')
    try {
      expectReply(await authLogin(c4, creds.login, creds.password), 235, undefined, 'a good login at the end')
    } finally {
      await c4.close()
    }
  })

  // ---- logs ----

  it('never logs a password, in clear or base64 (right or wrong, PLAIN or LOGIN)', async () => {
    // runs last: it checks everything the tests above sent
    const log = haraka.log()
    assert.ok(secrets.length >= 20, `passwords were used (${secrets.length})`)
    assert.match(log, /AUTH ok/)
    assert.match(log, /SASL (PLAIN|LOGIN) authentication failed/)
    for (const p of secrets) {
      assert.ok(!log.includes(p), 'password in clear')
      assert.ok(!log.includes(b64(p)), 'password in base64 (AUTH LOGIN)')
      // AUTH PLAIN blobs: any authzid\0user\0 prefix; the base64 of the password part shows up whatever the
      // prefix length modulo 3 is, so look for each of the three alignments
      for (const pad of ['', '\0', '\0\0']) {
        const core = b64(pad + p).slice(4, -4)
        assert.ok(core.length >= 12 && !log.includes(core), 'password inside a PLAIN blob')
      }
    }
  })
})
