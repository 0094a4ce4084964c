// lib/bans.ts: closing, the append-only ledger, the markers that stop new accounts, against a real Redis.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseDomainList } from '../lib/addresses'
import { banPolicyFromConfig, banReason, banTenant, bansOf, EVIDENCE_MAX, freemailDomains, listBans, packagedFreemail, recordUse, type BanPolicy } from '../lib/bans'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import { setPackage } from '../lib/packages'
import type { RedisClient } from '../lib/redis'
import { loadSettings } from '../lib/settings'
import { createTenant, getTenant, setTenantStatus } from '../lib/tenants'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

describe('bans (real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient
  const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example' })
  const pkg = uniqueName('p')
  const policy: BanPolicy = { freemail: parseDomainList('gmail.com\ngooglemail.com\nlibero.it'), senderDomains: true, serviceDomain: 'posta.example' }

  before(async () => {
    r = await testRedis()
    redis = r.client
    await setPackage(redis, pkg, 1e9)
  })
  after(async () => {
    await r?.close()
  })

  const tenant = async (contact = `ops@${uniqueName('c')}.example`) =>
    (await createTenant(redis, settings, { slug: uniqueName('t'), package: pkg, contact })).tenant

  it('closes the tenant, appends the ledger entry with its evidence, and blocks the slug, contact and domains', async () => {
    const d = `${uniqueName('corp')}.example`
    const sender = `${uniqueName('news')}.example`
    const t = await tenant(`Boss+x@${d}`)
    await recordUse(redis, t, 'gmail.com', '192.0.2.1', 1000)
    await recordUse(redis, t, `${sender.toUpperCase()}.`, '192.0.2.2', 2000)
    await recordUse(redis, t, 'acme.posta.example', '192.0.2.2', 3000)
    const b = await banTenant(redis, t, '  mail to a pristine spamtrap ', 'posta-trap', { trap: '@x.example', tx: 'ABC.1' }, policy)
    assert.equal((await getTenant(redis, t))?.status, 'closed')
    assert.equal(b.reason, 'mail to a pristine spamtrap')
    assert.equal(b.contact, `Boss+x@${d}`)
    assert.equal(b.contact_canonical, `boss@${d}`)
    assert.deepEqual(b.sender_domains, ['acme.posta.example', sender, 'gmail.com'], 'most recent first')
    assert.deepEqual(b.client_ips, ['192.0.2.2', '192.0.2.1'])
    assert.deepEqual(b.banned_domains, [d, sender].sort(), 'never a free-mail provider nor the service domain')
    assert.deepEqual(b.evidence, { trap: '@x.example', tx: 'ABC.1' })
    assert.equal(b.by, 'posta-trap')
    assert.ok(Date.parse(b.at) > 0)
    assert.deepEqual(await bansOf(redis, t), [b])
    assert.deepEqual((await listBans(redis)).at(-1), b)

    assert.match((await banReason(redis, t, 'x@other.example'))!, /the name ".*" belongs to a banned account/)
    assert.match((await banReason(redis, uniqueName('n'), `BOSS+other@${d.toUpperCase()}`))!, /the contact .* belongs to a banned account/)
    assert.match((await banReason(redis, uniqueName('n'), `other@${d}`))!, new RegExp(`contacts at ${d} belong to a banned account`))
    assert.match((await banReason(redis, uniqueName('n'), `other@mail.${sender}`))!, new RegExp(`contacts at ${sender} belong`), 'subdomains too')
    assert.equal(await banReason(redis, uniqueName('n'), 'someone@gmail.com'), null, 'a free-mail domain is never banned')
    assert.equal(await banReason(redis, uniqueName('n'), 'someone@elsewhere.example'), null)
    await assert.rejects(createTenant(redis, settings, { slug: t, package: pkg, contact: 'z@z.example' }), /cannot create tenant ".*": the name ".*" belongs to a banned account; bans cannot be undone/)
    await assert.rejects(createTenant(redis, settings, { slug: uniqueName('n'), package: pkg, contact: `boss@${d}` }), /the contact boss@.* belongs to a banned account; bans cannot be undone/)
  })

  it('a closed tenant can be neither resumed nor suspended', async () => {
    const t = await tenant()
    await banTenant(redis, t, 'manual', 'operator', {}, policy)
    await assert.rejects(setTenantStatus(redis, t, 'active'), /closed for good and cannot be resumed/)
    await assert.rejects(setTenantStatus(redis, t, 'suspended'), /closed for good and cannot be suspended/)
    assert.equal((await getTenant(redis, t))?.status, 'closed')
  })

  it('bans the person, not the provider, for a free-mail contact; dots and +tags do not help', async () => {
    const local = uniqueName('john').replace(/-/g, '')
    const t = await tenant(`${local.slice(0, 3)}.${local.slice(3)}+relay@gmail.com`)
    const b = await banTenant(redis, t, 'trap', 'posta-trap', {}, policy)
    assert.deepEqual(b.banned_domains, [])
    assert.equal(b.contact_canonical, `${local}@gmail.com`)
    assert.match((await banReason(redis, uniqueName('n'), `${local.toUpperCase()}@googlemail.com`))!, /contact/)
    assert.equal(await banReason(redis, uniqueName('n'), `someone.else@gmail.com`), null)
  })

  it('bans only the contact domain when sender domains are evidence only, and no domain without a free-mail list', async () => {
    const d = `${uniqueName('c')}.example`
    const s = `${uniqueName('s')}.example`
    const t = await tenant(`ops@${d}`)
    await recordUse(redis, t, s, '192.0.2.9')
    const b = await banTenant(redis, t, 'x', 'operator', {}, { ...policy, senderDomains: false })
    assert.deepEqual(b.banned_domains, [d])
    assert.deepEqual(b.sender_domains, [s], 'still in the evidence')
    assert.equal(await banReason(redis, uniqueName('n'), `x@${s}`), null)
    const u = await tenant(`ops@${uniqueName('c')}.example`)
    assert.deepEqual((await banTenant(redis, u, 'x', 'operator', {}, { freemail: null, senderDomains: true })).banned_domains, [])
  })

  it('is append-only: a second ban is a second entry; a ban needs a reason and a tenant', async () => {
    const t = await tenant()
    await banTenant(redis, t, 'first', 'posta-trap', {}, policy)
    await banTenant(redis, t, 'second look', 'operator', {}, policy)
    assert.deepEqual((await bansOf(redis, t)).map((b) => b.reason), ['first', 'second look'])
    await assert.rejects(banTenant(redis, t, '  ', 'operator', {}, policy), (e: Error) => e instanceof InputError && /a ban needs a reason/.test(e.message))
    await assert.rejects(banTenant(redis, uniqueName('ghost'), 'x', 'operator', {}, policy), NotFoundError)
    assert.deepEqual(await bansOf(redis, uniqueName('never')), [])
  })

  it('keeps only the most recent sender domains and client IPs as evidence', async () => {
    const t = uniqueName('t')
    for (let i = 0; i < EVIDENCE_MAX + 10; i++) await recordUse(redis, t, `d${i}.example`, `192.0.2.${i}`, 1000 + i)
    assert.equal(await redis.zcard(keys.tenantSenders(t)), EVIDENCE_MAX)
    assert.equal(await redis.zcard(keys.tenantClients(t)), EVIDENCE_MAX)
    assert.equal((await redis.zrevrange(keys.tenantSenders(t), 0, 0))[0], `d${EVIDENCE_MAX + 9}.example`)
    assert.equal(await redis.zscore(keys.tenantSenders(t), 'd0.example'), null, 'the oldest went')
  })

  it('a contact at a free-mail domain of the package, or a subdomain of one, never bans the domain', async () => {
    const shipped = banPolicyFromConfig(path.join(__dirname, '..', 'config'), 'posta.example')
    for (const d of ['orange.fr', 't-online.de', 'gmx.de', 'web.de', 'wanadoo.fr', 'libero.it', 'outlook.com', 'yahoo.co.uk']) {
      const t = await tenant(`${uniqueName('o').replace(/-/g, '')}@${d}`)
      const b = await banTenant(redis, t, 'trap', 'posta-trap', {}, shipped)
      assert.deepEqual(b.banned_domains, [], d)
      assert.equal(await banReason(redis, uniqueName('n'), `someone.else@${d}`), null, `other people at ${d} may still sign up`)
    }
    const provider = `${uniqueName('isp')}.example`
    const sub = await tenant(`x@mail.${provider}`)
    const b = await banTenant(redis, sub, 'trap', 'posta-trap', {}, { ...shipped, freemail: freemailDomains([provider]) })
    assert.deepEqual(b.banned_domains, [], 'a subdomain of a free-mail domain')
  })

  it('reads the policy from the config directory: the package list plus the operator additions', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-bans-'))
    try {
      const none = banPolicyFromConfig(dir)
      assert.equal(none.senderDomains, false)
      assert.equal(none.freemail!.size, packagedFreemail()!.size, 'no file: the package list alone')
      assert.ok(packagedFreemail()!.size > 10000, `the package holds the big list (${packagedFreemail()!.size})`)
      for (const d of ['gmail.com', 'orange.fr', 't-online.de', 'gmx.de', 'hotmail.fr', 'qq.com', 'seznam.cz', 'wp.pl']) assert.ok(none.freemail!.has(d), d)
      assert.ok(!none.freemail!.has('example.org'))
      fs.writeFileSync(path.join(dir, 'posta-trap.ini'), '[bans]\nsender_domains=true\n')
      fs.writeFileSync(path.join(dir, 'posta-freemail'), '# x\nexample.org\nＭａｉｌ。example\n')
      const p = banPolicyFromConfig(dir, 'posta.example')
      assert.equal(p.senderDomains, true)
      assert.equal(p.serviceDomain, 'posta.example')
      assert.ok(p.freemail!.has('example.org') && p.freemail!.has('mail.example'), 'the operator additions, normalised')
      assert.ok(p.freemail!.has('gmail.com'), 'and the package list')
      const shipped = banPolicyFromConfig(path.join(__dirname, '..', 'config'))
      assert.equal(shipped.senderDomains, false, 'forgeable sender domains are evidence only by default')
      for (const d of ['gmail.com', 'tin.it', 'tim.it', 'fastwebnet.it']) assert.ok(shipped.freemail?.has(d), d)
      assert.equal(freemailDomains(['Bücher.example'])?.has('xn--bcher-kva.example'), true)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
