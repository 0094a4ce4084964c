// Spamtraps, bans and suppression end to end: real Haraka, real Redis, a real sink, the real CLI.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { keys } from '../lib/keys'
import { suppress } from '../lib/suppression'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { posta } from '../testkit/cli'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { smtpError, startSink, type Sink } from '../testkit/sink'
import { plainResponse, SmtpClient } from '../testkit/smtp-client'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('spamtraps, bans and suppression end to end', function () {
  this.timeout(60000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let env: Record<string, string>
  const domain = `${uniqueName('trap')}.test`
  const trapDomain = `${uniqueName('pristine')}.test`
  // a domain whose address bait@ is a trap, and a typo domain: both routed to the sink, so what passes is delivered
  const baitDomain = `${uniqueName('bait').replace(/-/g, '')}.test`
  const typoDomain = `${uniqueName('gmial').replace(/-/g, '')}.test`

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({
      redisUrl: redis.url,
      // Haraka refuses retry intervals under 5 s: a deferred message comes back after 5 s
      overrides: {
        'posta-auth.ini': '[main]\nfailure_delay_ms=0\n',
        'outbound.ini': 'enable_tls=false\ntemp_fail_intervals=5s*20\n',
        // off by default (senders can be forged); on here to test that path
        'posta-trap.ini': fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'posta-trap.ini'), 'utf8').replace(/^sender_domains=.*$/m, 'sender_domains=true'),
      },
    })
    for (const d of [domain, baitDomain, typoDomain, trapDomain]) assert.equal((await posta(['route', 'set', `.${d}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `bait@${baitDomain}`, '--class', 'pristine'], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `@${typoDomain}`, '--class', 'typo'], env)).code, 0)
    assert.equal((await posta(['package', 'set', 'traps', '--traffic', '1GB'], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `@${trapDomain}`, '--class', 'pristine', '--note', 'harvested list bait'], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `"Old.Box"@${domain.toUpperCase()}.`, '--class', 'recycled'], env)).code, 0)
    assert.equal((await posta(['trap', 'add', `typo@${domain}`, '--class', 'typo'], env)).code, 0)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await redis?.close()
  })

  async function tenant(contact = `ops@${uniqueName('c')}.example`) {
    const r = await posta(['tenant', 'create', uniqueName('t'), '--package', 'traps', '--contact', contact, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    return r.json() as { tenant: string; login: string; password: string }
  }

  async function login(t: { login: string; password: string }): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ port: haraka.submissionPort })
    await c.ehlo()
    await c.starttls()
    await c.ehlo()
    const r = await c.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)
    assert.equal(r.code, 235, r.raw)
    return c
  }

  const transport = (t: { login: string; password: string }) =>
    nodemailer.createTransport({ host: '127.0.0.1', port: haraka.submissionPort, requireTLS: true, auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false } })

  const status = async (slug: string) => (await posta(['tenant', 'show', slug, '--json'], env)).json().status as string

  it('a pristine trap refuses the message, closes the tenant at once, stops its sessions and records the ban with its evidence', async () => {
    const contactDomain = `${uniqueName('corp')}.example`
    const shop = `${uniqueName('shop')}.example`
    const t = await tenant(`Sales.Team@${contactDomain}`)
    // other sessions of the same tenant, open before the hit: idle, between MAIL and RCPT, between RCPT and DATA
    const idle = await login(t)
    assert.equal((await idle.send('MAIL FROM:<someone@gmail.com>')).code, 250) // a free-mail sender domain: evidence, never banned
    assert.equal((await idle.send('RSET')).code, 250)
    const atRcpt = await login(t)
    assert.equal((await atRcpt.send(`MAIL FROM:<news@${shop}>`)).code, 250)
    const atData = await login(t)
    assert.equal((await atData.send(`MAIL FROM:<news@${shop}>`)).code, 250)
    assert.equal((await atData.send(`RCPT TO:<someone@${domain}>`)).code, 250)

    const c = await login(t)
    assert.equal((await c.send(`MAIL FROM:<news@${shop}>`)).code, 250)
    assert.equal((await c.send(`RCPT TO:<someone@${domain}>`)).code, 250)
    const hit = await c.send(`RCPT TO:<Victim@${trapDomain.toUpperCase()}>`)
    assert.equal(hit.raw, '550 5.7.1 Message refused by policy', 'a generic refusal: the reply does not reveal the trap')
    const data = await c.send('DATA')
    assert.equal(data.code, 550, `the message is refused whole: ${data.raw}`)
    await c.close()
    assert.equal(await status(t.tenant), 'closed')

    // open sessions are refused from their next command, whatever it is
    assert.match((await idle.send(`MAIL FROM:<news@${shop}>`)).raw, /^554 5\.7\.1 This account is closed/)
    assert.match((await atRcpt.send(`RCPT TO:<someone@${domain}>`)).raw, /^554 5\.7\.1 This account is closed/)
    assert.match((await atData.send('DATA')).raw, /^554 5\.7\.1 This account is closed/)
    await Promise.all([idle.close(), atRcpt.close(), atData.close()])
    // new connections cannot log in
    const again = await SmtpClient.connect({ port: haraka.submissionPort })
    await again.ehlo()
    await again.starttls()
    await again.ehlo()
    const auth = await again.send(`AUTH PLAIN ${plainResponse(t.login, t.password)}`)
    assert.equal(auth.code, 535, auth.raw)
    await again.close()

    const bans = (await posta(['ban', 'show', t.tenant, '--json'], env)).json() as {
      tenant: string; reason: string; at: string; by: string; evidence: Record<string, string>; sender_domains: string[]; client_ips: string[]; banned_domains: string[]
    }[]
    assert.equal(bans.length, 1)
    const [b] = bans
    assert.equal(b.tenant, t.tenant)
    assert.equal(b.reason, 'mail to a pristine spamtrap')
    assert.equal(b.by, 'posta-trap')
    assert.ok(Math.abs(Date.parse(b.at) - Date.now()) < 30000)
    assert.equal(b.evidence.trap, `@${trapDomain}`)
    assert.equal(b.evidence.class, 'pristine')
    assert.equal(b.evidence.note, 'harvested list bait')
    assert.equal(b.evidence.recipient, `Victim@${trapDomain.toUpperCase()}`)
    assert.equal(b.evidence.client_ip, '127.0.0.1')
    assert.equal(b.evidence.auth_user, t.login)
    assert.equal(b.evidence.sender, `news@${shop}`)
    assert.equal(b.evidence.sender_domain, shop)
    assert.equal(b.evidence.source, 'smtp rcpt')
    assert.match(b.evidence.tx, /^[0-9A-F-]+\.\d+$/)
    assert.ok(Date.parse(b.evidence.at) > 0)
    assert.deepEqual(b.sender_domains, [shop, 'gmail.com'], 'most recent first')
    assert.deepEqual(b.client_ips, ['127.0.0.1'])
    assert.deepEqual(b.banned_domains, [contactDomain, shop].sort())
    await haraka.waitForLog(new RegExp(`\\[CRIT\\] .*tenant BANNED: mail to a pristine spamtrap tenant=${t.tenant} .*tx=${b.evidence.tx.replace(/[.]/g, '\\.')} `))
    assert.equal((await posta(['ban', 'list', '--json'], env)).json().filter((x: { tenant: string }) => x.tenant === t.tenant).length, 1)
    assert.match((await posta(['ban', 'show', t.tenant], env)).stdout, /reason +mail to a pristine spamtrap/)

    // the same name, the same person (normalised), a contact at its domain or at a sender domain it used: refused
    const cases: [string, string, RegExp][] = [
      [t.tenant, `new@${uniqueName('x')}.example`, /the name ".*" belongs to a banned account/],
      [uniqueName('n'), `sales.team+new@${contactDomain.toUpperCase()}`, /the contact .* belongs to a banned account/],
      [uniqueName('n'), `someone.else@${contactDomain}`, /contacts at .* belong to a banned account/],
      [uniqueName('n'), `boss@${shop}`, new RegExp(`contacts at ${shop.replace(/[.]/g, '\\.')} belong to a banned account`)],
    ]
    for (const [slug, contact, why] of cases) {
      const r = await posta(['tenant', 'create', slug, '--package', 'traps', '--contact', contact], env)
      assert.equal(r.code, 2, `${slug} ${contact}`)
      assert.match(r.stderr, why)
      assert.match(r.stderr, /^posta: cannot create tenant ".*": .*; bans cannot be undone\n$/)
    }
    assert.equal((await posta(['tenant', 'resume', t.tenant], env)).code, 2, 'a closed tenant cannot be resumed')
  })

  it('queued mail of a banned tenant is never delivered, and bounces nothing', async () => {
    const t = await tenant()
    const held = `held-${Date.now()}@${domain}`
    sink.rcptPolicy = (a) => (a === held ? smtpError(451, '4.7.1 greylisted, try later') : null)
    try {
      await transport(t).sendMail({ from: `me@${domain}`, to: held, subject: 'held', text: 'x' })
      await haraka.waitForLog(new RegExp(`\\[posta-outbound\\] deferred tenant=${t.tenant} `))
      // the tenant mails a recycled trap, written differently from the list's entry
      const c = await login(t)
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<OLD.BOX@${domain.toUpperCase()}>`)).raw, '550 5.7.1 Message refused by policy')
      await c.close()
      assert.match((await posta(['ban', 'show', t.tenant, '--json'], env)).json()[0].reason, /recycled spamtrap/)
      sink.rcptPolicy = () => null // the MX would now accept it
      await haraka.waitForLog(new RegExp(`dropped: the tenant is closed, no delivery and no bounce tenant=${t.tenant} .*result=dropped`), 20000)
      await sleep(500)
      assert.equal(sink.messages.filter((m) => m.to.includes(held)).length, 0, 'never delivered')
      assert.equal(sink.messages.filter((m) => m.to.includes(`me@${domain}`)).length, 0, 'no bounce to the sender')
      assert.doesNotMatch(haraka.log(), new RegExp(`bounced tenant=${t.tenant} `))
    } finally {
      sink.rcptPolicy = () => null
    }
  })

  it('an operator bans by hand; a free-mail contact bans the person, not the provider; there is no unban', async () => {
    const g = await tenant('john.doe+relay@gmail.com')
    const none = await posta(['ban', 'add', g.tenant], env)
    assert.equal(none.code, 2)
    assert.match(none.stderr, /a ban needs a reason: --reason/)
    assert.equal(await status(g.tenant), 'active', 'nothing written')
    const b = await posta(['ban', 'add', g.tenant, '--reason', 'investigation 42: bought list', '--json'], env)
    assert.equal(b.code, 0, b.stderr)
    assert.equal(b.json().by, 'operator')
    assert.equal(b.json().evidence.source, 'posta ban add')
    assert.deepEqual(b.json().banned_domains, [])
    assert.equal(await status(g.tenant), 'closed')
    assert.deepEqual((await posta(['ban', 'show', g.tenant, '--json'], env)).json().map((x: { reason: string }) => x.reason), ['investigation 42: bought list'])
    const same = await posta(['tenant', 'create', uniqueName('n'), '--package', 'traps', '--contact', 'JohnDoe@googlemail.com'], env)
    assert.equal(same.code, 2)
    assert.match(same.stderr, /the contact JohnDoe@googlemail.com belongs to a banned account/)
    const ok = await posta(['tenant', 'create', uniqueName('n'), '--package', 'traps', '--contact', 'jane@gmail.com'], env)
    assert.equal(ok.code, 0, ok.stderr)
    const unknown = await posta(['ban', 'show', uniqueName('nobody')], env)
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /is not banned: see "posta ban list"/)
    const help = (await posta(['--help'], env)).stdout
    assert.match(help, /posta ban add/)
    assert.doesNotMatch(help, /posta unban|posta ban (remove|delete|lift)/, 'no unban verb exists')
    assert.equal((await posta(['ban', 'remove', g.tenant], env)).code, 2)
  })

  it('typo-trap hits refuse that recipient only, count strikes, and ban at the threshold', async () => {
    const t = await tenant()
    const c = await login(t)
    for (let i = 1; i <= 3; i++) {
      assert.equal((await c.send('MAIL FROM:<me@shop.example>')).code, 250, `MAIL ${i}`)
      assert.equal((await c.send(`RCPT TO:<friend@${domain}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<Typo@${domain}>`)).raw, '550 5.7.1 Message refused by policy')
      assert.equal(await status(t.tenant), i < 3 ? 'active' : 'closed', `after ${i} strikes`)
      if (i < 3) await haraka.waitForLog(new RegExp(`typo-trap hit tenant=${t.tenant} .*strikes=${i} ban_at=3`))
      await c.send('RSET')
    }
    await c.close()
    const [b] = (await posta(['ban', 'show', t.tenant, '--json'], env)).json()
    assert.match(b.reason, /^3 typo-trap hits in 30 days$/)
    assert.equal(b.evidence.class, 'typo')
    assert.equal(b.evidence.strikes, 3)
  })

  it('a hard bounce suppresses the address for the tenant; the next RCPT is refused until an operator removes it', async () => {
    const t = await tenant()
    const other = await tenant()
    const dead = `nobody-${Date.now()}@${domain}`
    const denied = `denied-${Date.now()}@${domain}`
    const live = `live-${Date.now()}@${domain}`
    sink.rcptPolicy = (a) => (a === dead ? smtpError(550, '5.1.1 no such user here') : a === denied ? smtpError(550, '5.7.1 Recipient address rejected: Access denied') : null)
    try {
      // one message, three recipients: one delivered, one dead mailbox, one policy refusal
      await transport(t).sendMail({ from: `me@${domain}`, to: [live, dead, denied], subject: 'x', text: 'x' })
      await haraka.waitForLog(new RegExp(`recipient suppressed after a hard bounce tenant=${t.tenant} .*suppressed=${dead.replace(/[.]/g, '\\.')} `), 15000)
      assert.ok(sink.messages.some((m) => m.to.includes(live)), 'the live recipient got it')
      // the sender still gets its bounce (a DSN), as for any failed recipient
      for (let i = 0; i < 50 && !sink.messages.some((m) => m.from === '' && m.to.includes(`me@${domain}`) && m.raw.includes(dead)); i++) await sleep(100)
      assert.ok(sink.messages.some((m) => m.from === '' && m.to.includes(`me@${domain}`) && m.raw.includes(dead)), 'a DSN to the sender')
      const list = (await posta(['suppression', 'list', t.tenant, '--json'], env)).json() as { address: string; expires_at: string }[]
      assert.deepEqual(list.map((s) => s.address), [dead], 'a policy refusal is not a dead mailbox')
      const days = (Date.parse(list[0].expires_at) - Date.now()) / 86400000
      assert.ok(days > 29.9 && days <= 30, `expires in 30 days (${days})`)
      assert.match((await posta(['suppression', 'list', t.tenant], env)).stdout, new RegExp(`^ADDRESS +EXPIRES\\n${dead.replace(/[.]/g, '\\.')} `))

      const c = await login(t)
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      const r = await c.send(`RCPT TO:<${dead.toUpperCase().replace(/@.*/, '')}@${domain}>`)
      assert.match(r.raw, /^550 5\.1\.1 .* hard-bounced recently \(no such mailbox\) and is suppressed for this account until \d{4}-\d\d-\d\d$/)
      assert.equal((await c.send(`RCPT TO:<${live}>`)).code, 250, 'other recipients are not affected')
      await c.send('RSET')
      // another tenant may still mail it
      const o = await login(other)
      assert.equal((await o.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      assert.equal((await o.send(`RCPT TO:<${dead}>`)).code, 250)
      await o.close()

      const removed = await posta(['suppression', 'remove', t.tenant, dead.toUpperCase()], env)
      assert.equal(removed.code, 0, removed.stderr)
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<${dead}>`)).code, 250)
      await c.close()
      const twice = await posta(['suppression', 'remove', t.tenant, dead], env)
      assert.equal(twice.code, 2, 'removing twice is an error')
      assert.match(twice.stderr, /is not suppressed for/)
    } finally {
      sink.rcptPolicy = () => null
    }
  })

  /** The fullwidth form of an ASCII string (ｔｒａｐ for trap). */
  const fullwidth = (s: string) => [...s].map((c) => (c >= '!' && c <= '~' ? String.fromCodePoint(c.codePointAt(0)! + 0xfee0) : c)).join('')
  const [label] = baitDomain.split('.')
  const baitSpellings: [string, string][] = [
    ['the plain trap address', `bait@${baitDomain}`],
    ['a fullwidth domain', `bait@${fullwidth(label)}.test`],
    ['an ideographic full stop', `bait@${label}\u3002test`],
    ['a soft hyphen in the domain', `bait@${label.slice(0, 3)}\u00ad${label.slice(3)}.test`],
    ['a zero-width space in the domain', `bait@${label.slice(0, 3)}\u200b${label.slice(3)}.test`],
    ['a +tag', `bait+promo@${baitDomain}`],
    ['capitals', `BAIT@${baitDomain.toUpperCase()}`],
    ['a subdomain of a domain trap', `victim@mail.sub.${trapDomain}`],
  ]
  for (const [what, spelling] of baitSpellings) {
    it(`a trap written with ${what} closes the tenant and nothing reaches the sink: ${JSON.stringify(spelling)}`, async () => {
      const t = await tenant()
      const c = await login(t)
      assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
      assert.equal((await c.send(`RCPT TO:<friend@${domain}>`)).code, 250)
      const hit = await c.send(`RCPT TO:<${spelling}>`)
      assert.equal(hit.raw, '550 5.7.1 Message refused by policy', `${spelling}: ${hit.raw}`)
      assert.equal((await c.send('DATA')).code, 550, 'the message is refused whole')
      await c.close()
      assert.equal(await status(t.tenant), 'closed')
      const [b] = (await posta(['ban', 'show', t.tenant, '--json'], env)).json()
      assert.equal(b.reason, 'mail to a pristine spamtrap')
      assert.equal(b.evidence.trap, spelling.startsWith('victim@') ? `@${trapDomain}` : `bait@${baitDomain}`)
      assert.equal(b.evidence.recipient, spelling)
      // the tenant's next message (a new session would not even log in) is refused too: nothing was delivered
      assert.ok(!sink.messages.some((m) => m.to.some((a) => a.toLowerCase().includes(baitDomain) || a.toLowerCase().includes(trapDomain))), 'nothing at the sink for the trap')
    })
  }

  /** The message at the sink for this recipient, waited for. */
  async function delivered(rcpt: string) {
    for (let i = 0; i < 100 && !sink.messages.some((m) => m.to.includes(rcpt)); i++) await sleep(100)
    return sink.messages.find((m) => m.to.includes(rcpt))
  }

  it('a trap hit by a tenant whose contact is at a free-mail domain (the package, or config/posta-freemail) bans the person, not the domain', async () => {
    for (const provider of ['orange.fr', 't-online.de', 'tin.it']) {
      const contact = `${uniqueName('jean').replace(/-/g, '')}@${provider}`
      const t = await tenant(contact)
      const c = await login(t)
      assert.equal((await c.send(`MAIL FROM:<${contact}>`)).code, 250, 'a free-mail sender domain too (sender_domains=true here)')
      assert.equal((await c.send(`RCPT TO:<bait@${baitDomain}>`)).raw, '550 5.7.1 Message refused by policy')
      await c.close()
      const [b] = (await posta(['ban', 'show', t.tenant, '--json'], env)).json()
      assert.equal(b.contact_domain, provider)
      assert.deepEqual(b.banned_domains, [], `${provider} is not banned`)
      const other = await posta(['tenant', 'create', uniqueName('n'), '--package', 'traps', '--contact', `someone.else@${provider}`], env)
      assert.equal(other.code, 0, `another person at ${provider} may still sign up: ${other.stderr}`)
    }
  })

  it('addresses that are not the trap are delivered: the trap tests above can fail', async () => {
    const t = await tenant()
    const to = [`bait2@${baitDomain}`, `bait@sub.${baitDomain}`] // another mailbox; an address entry is not a domain entry
    await transport(t).sendMail({ from: `me@${domain}`, to, subject: 'not a trap', text: 'x' })
    for (const a of to) assert.ok(await delivered(a), `${a} delivered`)
    assert.equal(await status(t.tenant), 'active')
  })

  it('every spelling of a suppressed address is refused, +tags included; the base of a suppressed +tag is not', async () => {
    const t = await tenant()
    const bounce = `${uniqueName('bounce').replace(/-/g, '')}.test`
    const [b] = bounce.split('.')
    await suppress(redis.client, t.tenant, `dead@${bounce}`)
    await suppress(redis.client, t.tenant, `alive+list@${bounce}`)
    const c = await login(t)
    assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
    const spellings = [
      `dead@${bounce}`, `dead@${fullwidth(b.slice(0, 1))}${b.slice(1)}.test`, `dead@${fullwidth(b)}.test`, `dead@${b}\u3002test`,
      `dead@${b.slice(0, 2)}\u00ad${b.slice(2)}.test`, `dead@${b.slice(0, 2)}\u200b${b.slice(2)}.test`, `dead+x@${bounce}`, `DEAD+Promo@${bounce.toUpperCase()}`,
      `alive+list@${bounce}`,
    ]
    for (const s of spellings) {
      const r = await c.send(`RCPT TO:<${s}>`)
      assert.match(r.raw, /^550 5\.1\.1 .* hard-bounced recently \(no such mailbox\) and is suppressed for this account until \d{4}-\d\d-\d\d$/, `${s}: ${r.raw}`)
    }
    for (const s of [`alive@${bounce}`, `alive+other@${bounce}`, `deadx@${bounce}`]) assert.equal((await c.send(`RCPT TO:<${s}>`)).code, 250, s)
    await c.close()
    assert.equal(await status(t.tenant), 'active')
  })

  it('one message to three addresses of a typo-trap domain is one strike; the tenant stays active', async () => {
    const t = await tenant()
    const friend = `friend-${Date.now()}@${domain}`
    const info = await transport(t).sendMail({ from: `me@${domain}`, to: [`anna@${typoDomain}`, `bob@${typoDomain}`, `carl@mail.${typoDomain}`, friend], subject: 'typo', text: 'x' })
    assert.deepEqual(info.accepted, [friend])
    assert.equal(info.rejected.length, 3)
    assert.ok(await delivered(friend), 'the good recipient got it')
    assert.equal(await redis.client.zcard(keys.trapStrikes(t.tenant)), 1, 'one strike')
    assert.equal(Number(await redis.client.hget(keys.trapHits(t.tenant), 'typo')), 3, 'every hit is still counted')
    assert.equal(await status(t.tenant), 'active')
    // a second and third message with the same mistake: three strikes, the threshold
    await transport(t).sendMail({ from: `me@${domain}`, to: [`anna@${typoDomain}`, `bob@${typoDomain}`, friend], subject: 'typo 2', text: 'x' })
    assert.equal(await redis.client.zcard(keys.trapStrikes(t.tenant)), 2)
    assert.equal(await status(t.tenant), 'active')
    await assert.rejects(transport(t).sendMail({ from: `me@${domain}`, to: [`anna@${typoDomain}`], subject: 'typo 3', text: 'x' }))
    assert.equal(await status(t.tenant), 'closed', 'three messages with typos: three strikes')
  })

  it('an address the normaliser rejects is refused at RCPT, never let through unchecked', async () => {
    const t = await tenant()
    const c = await login(t)
    assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
    // Haraka's parser takes these (fullwidth @ and parentheses are UTF-8 atext, ㍿ x 21 is 63 octets); mapped, they
    // hold an @, a comment, or 84 characters (㍿ is 株式会社)
    for (const s of [`bait\uff20x@${baitDomain}`, `bait\uff08x\uff09@${baitDomain}`, `${'\u337f'.repeat(21)}@${domain}`]) {
      const r = await c.send(`RCPT TO:<${s}>`)
      assert.equal(r.raw, '553 5.1.3 Recipient address not accepted: use a plain user@domain address', `${s}: ${r.raw}`)
    }
    assert.equal((await c.send(`RCPT TO:<ok@${domain}>`)).code, 250, 'the session goes on')
    await c.close()
    await haraka.waitForLog(new RegExp(`RCPT refused: the address does not normalise, traps and suppression cannot be checked tenant=${t.tenant} `))
    assert.equal(await status(t.tenant), 'active')
  })

  it('rejects malformed trap entries and import lines with clear messages', async () => {
    const bad: [string[], RegExp][] = [
      [['trap', 'add', 'not-an-address', '--class', 'pristine'], /^posta: bad address "not-an-address": expected local@domain\n$/],
      [['trap', 'add', 'a@b.example', '--class', 'spicy'], /^posta: bad trap class "spicy": use pristine, recycled, typo\n$/],
      [['trap', 'add', 'a@b.example'], /^posta: missing --class \(pristine, recycled or typo\)\n$/],
      [['trap', 'add', '@not_a_domain', '--class', 'typo'], /^posta: bad trap domain "not_a_domain": expected a name like example\.net\n$/],
      [['trap', 'add', 'a b@c.example', '--class', 'typo'], /^posta: bad address "a b@c\.example": bad local part/],
      [['trap', 'remove', `nobody@${domain}`], /^posta: no trap "nobody@.*": see "posta trap list"\n$/],
    ]
    for (const [args, why] of bad) {
      const r = await posta(args, env)
      assert.equal(r.code, 2, args.join(' '))
      assert.match(r.stderr, why)
      assert.equal(r.stdout, '')
    }
    const file = path.join(os.tmpdir(), `traps-${Date.now()}.txt`)
    fs.writeFileSync(file, ['# bought from nobody', `one@${domain} pristine from a honeypot`, '@gmial.example typo', 'broken-line', `two@${domain} unknown`, '@bad_domain recycled', `ONE@${domain} typo`, ''].join('\n'))
    const r = await posta(['trap', 'import', file, '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const j = r.json()
    assert.equal(j.imported, 2)
    assert.deepEqual(j.skipped.map((s: { line: number }) => s.line), [4, 5, 6, 7])
    assert.match(j.skipped[0].reason, /missing class/)
    assert.match(j.skipped[1].reason, /bad trap class "unknown"/)
    assert.match(j.skipped[2].reason, /bad trap domain "bad_domain"/)
    assert.match(j.skipped[3].reason, /duplicate of line 2/)
    const text = await posta(['trap', 'import', file], env)
    assert.equal(text.code, 0)
    assert.match(text.stdout, /^imported 2 traps, skipped 4 lines\n {2}line 4: missing class.*: broken-line\n/)
    fs.writeFileSync(file, '# only junk\nbroken-line\n')
    const junk = await posta(['trap', 'import', file], env)
    assert.equal(junk.code, 2, 'nothing imported is a failure')
    assert.match(junk.stderr, /^posta: no trap imported from .*: line 2: missing class/)
    fs.rmSync(file)
    const list = (await posta(['trap', 'list', '--json'], env)).json() as { entry: string; class: string; note: string }[]
    assert.ok(list.some((t) => t.entry === `one@${domain}` && t.class === 'pristine' && t.note === 'from a honeypot'))
    assert.ok(list.some((t) => t.entry === '@gmial.example' && t.class === 'typo'))
    assert.ok(list.some((t) => t.entry === `old.box@${domain}` && t.class === 'recycled'), 'entries are stored normalised')
    const missing = await posta(['trap', 'import', '/nonexistent/file'], env)
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /cannot read \/nonexistent\/file: ENOENT/)
    assert.equal((await posta(['trap', 'remove', `ONE@${domain.toUpperCase()}`], env)).code, 0)
  })

  it('answers 451 at once, never acceptance, while Redis is unreachable', async function () {
    if (!redis.server && !redis.cluster) this.skip() // with an external REDIS_URL the test cannot stop Redis
    const t = await tenant()
    const c = await login(t)
    const d = await login(t)
    assert.equal((await c.send(`MAIL FROM:<me@${domain}>`)).code, 250)
    await redis.stop()
    const t0 = Date.now()
    const rcpt = await c.send(`RCPT TO:<someone@${domain}>`)
    assert.equal(rcpt.raw, '451 4.3.0 Account checks are temporarily unavailable, please try again later')
    const mail = await d.send(`MAIL FROM:<me@${domain}>`)
    assert.equal(mail.raw, '451 4.3.0 Account checks are temporarily unavailable, please try again later')
    assert.ok(Date.now() - t0 < 5000, 'no hang')
    await Promise.all([c.close(), d.close()])
    await redis.restart()
  })
})
