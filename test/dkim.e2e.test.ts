// DKIM end to end: a tenant relays through a real Haraka (posta-dkim + haraka-plugin-dkim) to a real sink; a real
// verifier (mailauth) checks the DKIM-Signature the sink received against the records served by a DNS server on
// loopback. Edges: one body byte changed fails; no key, not signed, still delivered; a key that cannot be readied,
// not signed, still delivered; rotation keeps every message verifiable across the switch.
import { strict as assert } from 'node:assert'
import * as dns from 'node:dns'
import * as fs from 'node:fs'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { advanceRotation, dkimRecords, rotateKey } from '../lib/dkim'
import { makeResolver } from '../lib/dnsbl'
import { addDomain, verifyDomain } from '../lib/domains'
import { DEFAULT_SERVICE_DOMAIN } from '../lib/settings'
import { cliTenant, posta } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'
import { startSink, type Sink, type SunkMessage } from '../testkit/sink'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify(input: string | Buffer, o: { resolver: (name: string, type: string) => Promise<unknown> }): Promise<{ results: { signingDomain: string; selector: string; status: { result: string; comment?: string } }[] }>
}

describe('dkim end to end (real Redis, Haraka, sink, loopback DNS, mailauth)', function () {
  this.timeout(120_000)
  let redis: TestRedis
  let haraka: HarakaNode
  let sink: Sink
  let testDns: TestDns
  let env: Record<string, string>
  let creds: { login: string; password: string; smtp_host: string; tenant: string }
  const sinkDomain = `${uniqueName('sink')}.test`
  const domain = `${uniqueName('acme')}.test`
  let verifierDns: dns.promises.Resolver

  /** mailauth asks the loopback server only. */
  const verify = (raw: string | Buffer) => dkimVerify(raw, { resolver: (name, type) => verifierDns.resolve(name, type) })

  /** A domain added and verified for a tenant the way `posta domain add` and `verify` do it, its records published. */
  async function verified(slug: string, d: string) {
    const settings = { serviceDomain: DEFAULT_SERVICE_DOMAIN }
    const { entry } = await addDomain(redis.client, settings, slug, d)
    testDns.setTxt(entry.verification!.name, [entry.verification!.value])
    assert.equal((await verifyDomain(redis.client, settings, slug, d, makeResolver([testDns.server], 2000))).verified, true)
    await publish(d)
  }

  /** Publishes every DKIM record lib/dkim.ts lists for the domain, as a customer would. */
  async function publish(d: string) {
    for (const r of await dkimRecords(redis.client, d)) testDns.setTxt(r.name, [r.value])
  }

  async function send(from: string, subject: string, text = 'Ciao!\r\nA line with trailing spaces   \r\n\r\n.leading dot\r\n'): Promise<SunkMessage> {
    const before = sink.messages.length
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: haraka.submissionPort, requireTLS: true, auth: { user: creds.login, pass: creds.password }, tls: { rejectUnauthorized: false } })
    const info = await t.sendMail({ from, to: `rcpt@${sinkDomain}`, subject, text })
    assert.match(info.response, /^250 /)
    await sink.waitFor(before + 1, 30_000)
    const m = sink.messages.find((x) => x.raw.includes(subject))
    assert.ok(m, `the sink got "${subject}"`)
    return m
  }

  before(async () => {
    redis = await testRedis()
    sink = await startSink()
    testDns = await startDns()
    verifierDns = new dns.promises.Resolver({ timeout: 2000, tries: 1 })
    verifierDns.setServers([testDns.server])
    env = { REDIS_URL: redis.url }
    haraka = await startHaraka({ redisUrl: redis.url, env: { POSTA_RESOLVERS: testDns.server } })
    creds = await cliTenant(env)
    assert.equal((await posta(['route', 'set', `.${sinkDomain}`, `127.0.0.1:${sink.port}`], env)).code, 0)
    await verified(creds.tenant, domain)
  })
  after(async () => {
    await haraka?.stop()
    await sink?.close()
    await testDns?.close()
    await redis?.close()
  })

  it('signs mail from the domain with d= the domain; mailauth verifies it; one body byte changed fails', async () => {
    const m = await send(`Sender <sender@${domain}>`, `signed ${Date.now()}`)
    const [selector] = (await dkimRecords(redis.client, domain)).map((r) => r.selector)
    assert.match(m.raw, new RegExp(`^DKIM-Signature: .*d=${domain.replace(/\./g, '\\.')}`, 'ms'))
    const ok = await verify(m.raw)
    assert.equal(ok.results.length, 1)
    assert.deepEqual([ok.results[0].signingDomain, ok.results[0].selector, ok.results[0].status.result], [domain, selector, 'pass'])
    const at = m.raw.indexOf('Ciao!')
    assert.ok(at > 0)
    const tampered = m.raw.slice(0, at) + 'c' + m.raw.slice(at + 1)
    const bad = await verify(tampered)
    assert.notEqual(bad.results[0].status.result, 'pass')
    assert.equal(bad.results[0].status.comment, 'body hash did not verify', JSON.stringify(bad.results[0].status))
    // the key files haraka-plugin-dkim read are the service user's only
    const dir = path.join(haraka.dir, 'config', 'dkim', domain)
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700)
    assert.equal(fs.statSync(path.join(dir, 'private')).mode & 0o777, 0o600)
    assert.equal(fs.statSync(path.join(haraka.dir, 'config', 'dkim')).mode & 0o777, 0o700)
    assert.doesNotMatch(haraka.log(), /BEGIN PRIVATE KEY/, 'no private key in the log')
  })

  it('a subdomain of the domain is signed with d= the domain (DMARC relaxed alignment), past a key directory left on the node', async () => {
    const stale = path.join(haraka.dir, 'config', 'dkim', `mail.${domain}`) // as a removed domain would leave it
    fs.mkdirSync(stale, { recursive: true })
    fs.writeFileSync(path.join(stale, 'selector'), 'old\n')
    fs.writeFileSync(path.join(stale, 'private'), 'not a key\n')
    const m = await send(`news@mail.${domain}`, `sub ${Date.now()}`)
    const r = await verify(m.raw)
    assert.deepEqual([r.results[0].signingDomain, r.results[0].status.result], [domain, 'pass'])
    assert.equal(fs.existsSync(stale), false)
  })

  it("mail from <tenant>.<service domain> is signed with the service's key, made on first use", async () => {
    const service = DEFAULT_SERVICE_DOMAIN
    assert.deepEqual(await dkimRecords(redis.client, service), [], 'no service key before the first message')
    const m = await send(`app@${creds.tenant}.${service}`, `service ${Date.now()}`)
    const records = await dkimRecords(redis.client, service)
    assert.equal(records.length, 1)
    await publish(service)
    const r = await verify(m.raw)
    assert.deepEqual([r.results[0].signingDomain, r.results[0].selector, r.results[0].status.result], [service, records[0].selector, 'pass'])
    await haraka.waitForLog(/dkim key made for the service domain: publish its record/)
  })

  it('mail from a domain that is not the tenant\'s goes unsigned and is delivered (sender policy any): none, another tenant\'s', async () => {
    const m = await send(`someone@${uniqueName('nokey')}.test`, `nokey ${Date.now()}`)
    assert.doesNotMatch(m.raw, /^DKIM-Signature:/im)
    assert.deepEqual((await verify(m.raw)).results.map((x) => x.status.result), ['none'])
    // another tenant's verified domain, with its key: never signed for this tenant
    const other = `${uniqueName('other')}.test`
    const pkg = uniqueName('pkg')
    assert.equal((await posta(['package', 'set', pkg, '--traffic', '1GB'], env)).code, 0)
    const t = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
    assert.equal(t.code, 0, t.stderr)
    await verified(t.json<{ tenant: string }>().tenant, other)
    const forged = await send(`ceo@${other}`, `forged ${Date.now()}`)
    assert.doesNotMatch(forged.raw, /^DKIM-Signature:/im)
    // and another tenant's <slug>.<service domain>
    const theirs = await send(`x@${t.json<{ tenant: string }>().tenant}.${DEFAULT_SERVICE_DOMAIN}`, `theirs ${Date.now()}`)
    assert.doesNotMatch(theirs.raw, /^DKIM-Signature:/im)
  })

  it('a key that cannot be readied on the node: logged, the message goes unsigned and is delivered', async () => {
    const broken = `${uniqueName('broken')}.test`
    await verified(creds.tenant, broken)
    fs.mkdirSync(path.join(haraka.dir, 'config', 'dkim'), { recursive: true })
    fs.writeFileSync(path.join(haraka.dir, 'config', 'dkim', broken), 'not a directory')
    const m = await send(`x@${broken}`, `broken ${Date.now()}`)
    assert.doesNotMatch(m.raw, /^DKIM-Signature:/im)
    await haraka.waitForLog(/\[posta-dkim\] dkim signing skipped: the key could not be readied/)
  })

  it('rotation: every message verifies before, across and after the switch; then the new selector signs', async () => {
    const d = `${uniqueName('rot')}.test`
    await verified(creds.tenant, d)
    const old = (await dkimRecords(redis.client, d))[0].selector
    const rot = await rotateKey(redis.client, d)
    const sent: SunkMessage[] = []
    sent.push(await send(`a@${d}`, `rot-pending ${Date.now()}`)) // the new record not yet in DNS: the old key signs
    assert.equal((await verify(sent[0].raw)).results[0].selector, old)
    testDns.setTxt(rot.record.name, [rot.record.value])
    const r = await advanceRotation(redis.client, d, makeResolver([testDns.server], 2000)) // what posta domain check does
    assert.deepEqual(r.switched, { from: old, to: rot.selector })
    sent.push(await send(`a@${d}`, `rot-switch ${Date.now()}`)) // a node may still sign with the old key a moment
    await new Promise((res) => setTimeout(res, 10_500)) // past the node's key cache
    const last = await send(`a@${d}`, `rot-after ${Date.now()}`)
    sent.push(last)
    for (const m of sent) assert.equal((await verify(m.raw)).results[0].status.result, 'pass')
    assert.equal((await verify(last.raw)).results[0].selector, rot.selector)
    // the replaced record stays listed (retiring) so that mail signed before the switch keeps verifying
    assert.deepEqual((await dkimRecords(redis.client, d)).map((x) => [x.selector, x.state]), [[rot.selector, 'active'], [old, 'retiring']])
  })

  it('the relay completes a rotation itself: its first message from the domain looks the pending record up', async () => {
    const d = `${uniqueName('self')}.test`
    await verified(creds.tenant, d)
    const old = (await dkimRecords(redis.client, d))[0].selector
    const rot = await rotateKey(redis.client, d)
    testDns.setTxt(rot.record.name, [rot.record.value])
    const m = await send(`a@${d}`, `self ${Date.now()}`)
    assert.equal((await verify(m.raw)).results[0].status.result, 'pass')
    await haraka.waitForLog(new RegExp(`dkim key switched: the new record is in DNS .*domain=${d.replace(/\./g, '\\.')} from=${old} selector=${rot.selector}`))
    assert.deepEqual((await dkimRecords(redis.client, d)).map((x) => [x.selector, x.state]), [[rot.selector, 'active'], [old, 'retiring']])
  })
})
