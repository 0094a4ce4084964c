// lib/domains.ts and lib/dns-check.ts against a real Redis and the loopback DNS server (testkit/dns.ts), looked up
// through the service's resolver factory (makeResolver, as POSTA_RESOLVERS feeds it): adding, verifying (right,
// missing, wrong token), who may claim what (one tenant per domain tree, no service names, no banned domains), and
// the record checks (right, missing, wrong, unknown).
import { strict as assert } from 'node:assert'
import { banTenant } from '../lib/bans'
import { makeResolver } from '../lib/dnsbl'
import { checkDomainRecords, checkRecords, checkSpf, domainRecords, serviceSpfName, withInclude, type RecordCheck } from '../lib/dns-check'
import { dkimRecords } from '../lib/dkim'
import { addDomain, feedbackId, listDomains, removeDomain, requireDomain, senderAllowed, senderContext, verifyDomain } from '../lib/domains'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import { setPackage } from '../lib/packages'
import type { RedisClient } from '../lib/redis'
import { loadSettings } from '../lib/settings'
import { createTenant, setTenantStatus } from '../lib/tenants'
import { startDns, type TestDns } from '../testkit/dns'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

describe('sender domains (real Redis, loopback DNS)', function () {
  this.timeout(30000)
  let r: TestRedis
  let redis: RedisClient
  let dns: TestDns
  let resolver: ReturnType<typeof makeResolver>
  const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example' })
  const pkg = uniqueName('p')

  before(async () => {
    r = await testRedis()
    redis = r.client
    dns = await startDns()
    resolver = makeResolver([dns.server], 1000)
    await setPackage(redis, pkg, 1e9)
  })
  after(async () => {
    await dns?.close()
    await r?.close()
  })

  const tenant = async () => (await createTenant(redis, settings, { slug: uniqueName('t'), package: pkg, contact: `ops@${uniqueName('c')}.example` })).tenant
  const domain = () => `${uniqueName('d')}.example`
  /** Adds and verifies a domain for a tenant (publishes its token in the test DNS). */
  const verified = async (slug: string, d: string) => {
    const { entry } = await addDomain(redis, settings, slug, d)
    dns.setTxt(entry.verification!.name, [entry.verification!.value])
    const v = await verifyDomain(redis, settings, slug, d, resolver)
    assert.equal(v.verified, true, v.message)
    return entry
  }

  describe('add and verify', () => {
    it('add prints a TXT token record under the domain; adding again gives the same token', async () => {
      const t = await tenant()
      const d = domain()
      const { entry, created } = await addDomain(redis, settings, t, ` ${d.toUpperCase()}. `)
      assert.equal(created, true)
      assert.equal(entry.domain, d, 'normalised')
      assert.equal(entry.status, 'pending')
      assert.equal(entry.verification!.type, 'TXT')
      assert.equal(entry.verification!.name, `_posta-verification.${d}`)
      assert.match(entry.verification!.value, /^posta-verification=[0-9a-f]{32}$/)
      const again = await addDomain(redis, settings, t, d)
      assert.equal(again.created, false)
      assert.equal(again.entry.verification!.value, entry.verification!.value)
      // another domain gets another token
      assert.notEqual((await addDomain(redis, settings, t, domain())).entry.verification!.value, entry.verification!.value)
    })

    it('verify: missing, then wrong token, then right; the domain stays verified when the record goes', async () => {
      const t = await tenant()
      const d = domain()
      const { entry } = await addDomain(redis, settings, t, d)
      const rec = entry.verification!
      let v = await verifyDomain(redis, settings, t, d, resolver)
      assert.deepEqual([v.state, v.verified], ['missing', false])
      assert.match(v.message, new RegExp(`no TXT record at _posta-verification\\.${d.replace(/\./g, '\\.')}: publish TXT .* "posta-verification=`))
      dns.setTxt(rec.name, ['posta-verification=0123456789abcdef0123456789abcdef', 'unrelated'])
      v = await verifyDomain(redis, settings, t, d, resolver)
      assert.deepEqual([v.state, v.verified], ['wrong', false])
      assert.match(v.message, /does not hold this domain's token/)
      assert.equal((await requireDomain(redis, settings, t, d)).status, 'pending')
      dns.setTxt(rec.name, ['unrelated', rec.value])
      v = await verifyDomain(redis, settings, t, d, resolver)
      assert.deepEqual([v.state, v.verified], ['right', true])
      const got = await requireDomain(redis, settings, t, d)
      assert.equal(got.status, 'verified')
      assert.ok(got.verified_at)
      dns.setTxt(rec.name, undefined)
      v = await verifyDomain(redis, settings, t, d, resolver)
      assert.deepEqual([v.state, v.verified], ['missing', true])
      assert.match(v.message, /stays verified/)
    })

    it('verify: a failing lookup (SERVFAIL, timeout) is unknown and changes nothing', async () => {
      const t = await tenant()
      const d = domain()
      const { entry } = await addDomain(redis, settings, t, d)
      for (const answer of ['servfail', 'timeout'] as const) {
        dns.setTxt(entry.verification!.name, answer)
        const v = await verifyDomain(redis, settings, t, d, resolver)
        assert.deepEqual([v.state, v.verified], ['unknown', false], answer)
      }
      assert.equal((await requireDomain(redis, settings, t, d)).status, 'pending')
    })

    it('list: the tenant\'s own <slug>.<service domain> first (always verified), then its domains; remove', async () => {
      const t = await tenant()
      const [a, b] = [`a-${domain()}`, `b-${domain()}`]
      await addDomain(redis, settings, t, b)
      await verified(t, a)
      const ds = await listDomains(redis, settings, t)
      assert.deepEqual(ds.map((x) => [x.domain, x.kind, x.status]), [[`${t}.posta.example`, 'service', 'verified'], [a, 'own', 'verified'], [b, 'own', 'pending']])
      assert.equal((await dkimRecords(redis, a)).length, 1)
      await removeDomain(redis, settings, t, a)
      assert.deepEqual((await listDomains(redis, settings, t)).map((x) => x.domain), [`${t}.posta.example`, b])
      assert.deepEqual(await dkimRecords(redis, a), [], 'a verified domain\'s DKIM key goes with it')
      await assert.rejects(removeDomain(redis, settings, t, a), (e: Error) => e instanceof NotFoundError && /has no sender domain/.test(e.message))
      await assert.rejects(removeDomain(redis, settings, t, `${t}.posta.example`), /cannot be removed: it is tenant .*'s own name/)
      await assert.rejects(listDomains(redis, settings, uniqueName('nobody')), NotFoundError)
    })

    it('refuses bad names, the service\'s names, and a closed tenant', async () => {
      const t = await tenant()
      for (const bad of ['', 'localhost', 'no_underscore.example', '1.2.3.4', 'a..b.example', 'x'.repeat(64) + '.example']) {
        await assert.rejects(addDomain(redis, settings, t, bad), (e: Error) => e instanceof InputError && /bad sender domain/.test(e.message), bad)
      }
      await assert.rejects(addDomain(redis, settings, t, `${t}.posta.example`), /already yours/)
      await assert.rejects(addDomain(redis, settings, t, `news.${t}.posta.example`), /already yours/)
      await assert.rejects(addDomain(redis, settings, t, 'other.posta.example'), /is a name of the service \(posta\.example\)/)
      await assert.rejects(addDomain(redis, settings, t, 'posta.example'), /is a name of the service/)
      await assert.rejects(addDomain(redis, settings, t, 'spf.posta.example'), /is a name of the service/)
      const closed = await tenant()
      await redis.hset(keys.tenant(closed), 'status', 'closed')
      await assert.rejects(addDomain(redis, settings, closed, domain()), /is closed: it cannot add sender domains/)
      await assert.rejects(addDomain(redis, settings, uniqueName('nobody'), domain()), NotFoundError)
    })

    it('a service domain under a customer domain: the parent cannot be claimed', async () => {
      const s2 = loadSettings({ POSTA_SERVICE_DOMAIN: 'mail.bigcorp.example' })
      const t = (await createTenant(redis, s2, { slug: uniqueName('t'), package: pkg, contact: 'ops@x.example' })).tenant
      await assert.rejects(addDomain(redis, s2, t, 'bigcorp.example'), /holds the service domain mail\.bigcorp\.example/)
    })
  })

  describe('one tenant per domain tree', () => {
    it('a domain verified for one tenant cannot be added or verified by another, nor its parents or subdomains', async () => {
      const [a, b] = [await tenant(), await tenant()]
      const d = domain()
      await verified(a, `mail.${d}`)
      for (const name of [`mail.${d}`, d, `x.mail.${d}`]) {
        await assert.rejects(addDomain(redis, settings, b, name), (e: Error) => e instanceof InputError && /another account's verified sender domain/.test(e.message) && !e.message.includes(a), name)
      }
      // the other tenant's name never shows
      await assert.rejects(addDomain(redis, settings, b, d), /cannot add .*: its subdomain mail\..* is another account's/)
      await assert.rejects(addDomain(redis, settings, b, `x.mail.${d}`), /its parent mail\..* is another account's/)
      // the owner itself: a subdomain of its verified domain needs no adding; its parent it may add
      await assert.rejects(addDomain(redis, settings, a, `x.mail.${d}`), /is a subdomain of mail\..*, verified for .* already/)
      await verified(a, d)
    })

    it('a pending domain blocks nobody: who publishes the token verifies, the other one then cannot', async () => {
      const [squatter, owner] = [await tenant(), await tenant()]
      const d = domain()
      const s = await addDomain(redis, settings, squatter, d)
      await verified(owner, d)
      dns.setTxt(s.entry.verification!.name, [s.entry.verification!.value])
      await assert.rejects(verifyDomain(redis, settings, squatter, d, resolver), /cannot verify .*: .* is another account's verified sender domain/)
      assert.equal((await requireDomain(redis, settings, squatter, d)).status, 'pending')
      // the owner removes it: now the other may verify
      await removeDomain(redis, settings, owner, d)
      assert.equal((await verifyDomain(redis, settings, squatter, d, resolver)).verified, true)
      // the owner's removal took the domain's DKIM key: the other tenant's records make a new one
      assert.equal((await domainRecords(redis, settings, squatter, d)).records.filter((x) => x.purpose === 'dkim').length, 1)
    })

    it('two tenants verifying the same domain at once: exactly one wins', async () => {
      const ts = await Promise.all([tenant(), tenant(), tenant(), tenant()])
      const d = domain()
      // every tenant's token published at once (the test DNS holds them all)
      const entries = await Promise.all(ts.map((t) => addDomain(redis, settings, t, d)))
      dns.setTxt(`_posta-verification.${d}`, entries.map((e) => e.entry.verification!.value))
      const results = await Promise.allSettled(ts.map((t) => verifyDomain(redis, settings, t, d, resolver)))
      assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1, JSON.stringify(results))
      assert.equal(Object.keys(await redis.hgetall(keys.domainOwners())).filter((k) => k === d).length, 1)
    })

    it('a banned domain, and its subdomains, can never be added', async () => {
      const bad = await tenant()
      const d = domain()
      await redis.hset(keys.tenant(bad), 'contact', `boss@${d}`)
      await banTenant(redis, bad, 'spam', 'operator', {}, { freemail: new Set(), senderDomains: false })
      const t = await tenant()
      await assert.rejects(addDomain(redis, settings, t, d), /cannot add .*: it belongs to a banned account/)
      await assert.rejects(addDomain(redis, settings, t, `news.${d}`), new RegExp(`${d.replace(/\./g, '\\.')} belongs to a banned account`))
    })
  })

  describe('the sender policy\'s read', () => {
    it('senderContext: the verified domains, the package and the status in one read; senderAllowed takes subdomains too', async () => {
      const t = await tenant()
      const [v, p] = [domain(), domain()]
      await verified(t, v)
      await addDomain(redis, settings, t, p)
      const ctx = await senderContext(redis, t)
      assert.deepEqual([...ctx.verified], [v])
      assert.equal(ctx.package, pkg)
      assert.equal(ctx.status, 'active')
      await setTenantStatus(redis, t, 'suspended')
      assert.equal((await senderContext(redis, t)).status, 'suspended', 'the status as of each read')
      await setTenantStatus(redis, t, 'active')
      assert.equal(senderAllowed(ctx, v, 'posta.example'), true)
      assert.equal(senderAllowed(ctx, `news.${v}`, 'posta.example'), true)
      assert.equal(senderAllowed(ctx, `${t}.posta.example`, 'posta.example'), true)
      assert.equal(senderAllowed(ctx, `bounce.${t}.posta.example`, 'posta.example'), true)
      assert.equal(senderAllowed(ctx, p, 'posta.example'), false, 'pending')
      assert.equal(senderAllowed(ctx, `x${v}`, 'posta.example'), false, 'not a subdomain')
      assert.equal(senderAllowed(ctx, 'other.posta.example', 'posta.example'), false)
      assert.equal(senderAllowed(ctx, 'posta.example', 'posta.example'), false)
      assert.equal(feedbackId(t, pkg, 'posta.example'), `${t}:${pkg}:posta:posta.example`)
    })
  })

  describe('records and checks', () => {
    const byPurpose = (cs: RecordCheck[], p: string) => cs.filter((c) => c.purpose === p)

    it('records: verification, SPF include of spf.<service domain>, a DMARC suggestion', async () => {
      const t = await tenant()
      const d = domain()
      const { entry } = await addDomain(redis, settings, t, d)
      const { records } = await domainRecords(redis, settings, t, d)
      assert.deepEqual(records.filter((x) => x.purpose !== 'dkim').map((x) => [x.purpose, x.type, x.name, x.value]), [
        ['verification', 'TXT', `_posta-verification.${d}`, entry.verification!.value],
        ['spf', 'TXT', d, 'v=spf1 include:spf.posta.example ~all'],
        ['dmarc', 'TXT', `_dmarc.${d}`, 'v=DMARC1; p=none'],
      ])
      const dkim = records.filter((x) => x.purpose === 'dkim')
      assert.equal(dkim.length, 1, 'add made the DKIM key')
      assert.match(dkim[0].selector!, /^posta\d{6}$/)
      assert.equal(dkim[0].name, `${dkim[0].selector}._domainkey.${d}`)
      assert.match(dkim[0].value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/)
      assert.deepEqual(records.map((x) => x.purpose), ['verification', 'dkim', 'spf', 'dmarc'])
      assert.equal(serviceSpfName('posta.example'), 'spf.posta.example')
      await assert.rejects(domainRecords(redis, settings, t, `${t}.posta.example`), /its records are the operator's/)
      await assert.rejects(domainRecords(redis, settings, t, domain()), NotFoundError)
    })

    it('check: every record right when published as printed', async () => {
      const t = await tenant()
      const d = domain()
      await addDomain(redis, settings, t, d)
      const { records } = await domainRecords(redis, settings, t, d)
      // SPF and DMARC share names with nothing else here: one record each
      for (const rec of records) dns.setTxt(rec.name, [rec.value])
      const { records: checks, allRight } = await checkDomainRecords(redis, settings, t, d, resolver)
      assert.deepEqual(checks.map((c) => [c.purpose, c.state, c.fix]), records.map((x) => [x.purpose, 'right', '']))
      assert.equal(allRight, true)
      // a DKIM record of another key is wrong
      const dk = records.find((x) => x.purpose === 'dkim')!
      dns.setTxt(dk.name, [dk.value.replace(/p=.{8}/, 'p=AAAAAAAA')])
      const again = await checkDomainRecords(redis, settings, t, d, resolver)
      assert.deepEqual(again.records.map((c) => c.state), ['right', 'wrong', 'right', 'right'])
      assert.equal(again.allRight, false)
      assert.match(again.records[1].fix, /does not hold this key: replace it/)
    })

    it('check: missing records say what to publish', async () => {
      const t = await tenant()
      const d = domain()
      await addDomain(redis, settings, t, d)
      const { records } = await domainRecords(redis, settings, t, d)
      const { records: checks, allRight } = await checkDomainRecords(redis, settings, t, d, resolver)
      assert.equal(allRight, false)
      assert.deepEqual(checks.map((c) => c.purpose), ['verification', 'dkim', 'spf', 'dmarc'])
      for (const c of checks.filter((x) => x.purpose !== 'dkim')) {
        assert.equal(c.state, 'missing', c.purpose)
        assert.equal(c.fix, `publish TXT ${c.name} "${c.value}"`)
      }
      assert.equal(checks[1].state, 'missing')
      assert.match(checks[1].fix, /^no TXT record at posta\d{6}\._domainkey\./)
    })

    it('check: wrong records say what to change', async () => {
      const t = await tenant()
      const d = domain()
      await addDomain(redis, settings, t, d)
      const records = (await domainRecords(redis, settings, t, d)).records.filter((x) => x.purpose !== 'dkim')
      dns.setTxt(`_posta-verification.${d}`, ['posta-verification=ffffffffffffffffffffffffffffffff'])
      dns.setTxt(d, ['v=spf1 include:_spf.google.com -all', 'google-site-verification=abc'])
      dns.setTxt(`_dmarc.${d}`, ['v=DMARC1; rua=mailto:x@example.net'])
      let checks = await checkRecords(resolver, d, records, 'posta.example')
      assert.deepEqual(checks.map((c) => c.state), ['wrong', 'wrong', 'wrong'])
      assert.match(byPurpose(checks, 'verification')[0].fix, /does not hold this domain's token: replace it with "posta-verification=[0-9a-f]{32}" \(found "posta-verification=f+"\)/)
      assert.equal(byPurpose(checks, 'spf')[0].fix, `the SPF record of ${d} does not include the service: change it to "v=spf1 include:_spf.google.com include:spf.posta.example -all"`)
      assert.deepEqual(byPurpose(checks, 'spf')[0].found, ['v=spf1 include:_spf.google.com -all'])
      assert.match(byPurpose(checks, 'dmarc')[0].fix, /no valid p= tag/)
      // two SPF records, two DMARC records: receivers treat both as errors
      dns.setTxt(d, ['v=spf1 include:spf.posta.example ~all', 'v=spf1 mx -all'])
      dns.setTxt(`_dmarc.${d}`, ['v=DMARC1; p=none', 'v=DMARC1; p=reject'])
      checks = await checkRecords(resolver, d, records, 'posta.example')
      assert.match(byPurpose(checks, 'spf')[0].fix, /has 2 SPF records, which receivers treat as an error \(permerror\)/)
      assert.match(byPurpose(checks, 'dmarc')[0].fix, /has 2 DMARC records, so receivers ignore them all/)
      dns.setTxt(d, undefined)
      dns.setTxt(`_dmarc.${d}`, undefined)
    })

    it('check: DMARC is inherited from a parent; a failed lookup is unknown, not missing', async () => {
      const t = await tenant()
      const parent = domain()
      const d = `news.${parent}`
      await addDomain(redis, settings, t, d)
      const records = (await domainRecords(redis, settings, t, d)).records.filter((x) => x.purpose !== 'dkim')
      dns.setTxt(`_dmarc.${parent}`, ['v=DMARC1; p=quarantine'])
      let checks = await checkRecords(resolver, d, records, 'posta.example')
      assert.equal(byPurpose(checks, 'dmarc')[0].state, 'right')
      dns.setTxt(d, 'servfail')
      dns.setTxt(`_posta-verification.${d}`, 'timeout')
      checks = await checkRecords(resolver, d, records, 'posta.example')
      assert.equal(byPurpose(checks, 'spf')[0].state, 'unknown')
      assert.match(byPurpose(checks, 'spf')[0].fix, /lookup of TXT .* failed \(ESERVFAIL\)/)
      assert.equal(byPurpose(checks, 'verification')[0].state, 'unknown')
    })

    it('SPF: an include is added before the all term, or at the end; any case and a trailing dot count', () => {
      assert.equal(withInclude('v=spf1 mx ~all', 'spf.p.example'), 'v=spf1 mx include:spf.p.example ~all')
      assert.equal(withInclude('v=spf1 mx', 'spf.p.example'), 'v=spf1 mx include:spf.p.example')
      assert.equal(withInclude('v=spf1 a redirect=_spf.x.example', 'spf.p.example'), 'v=spf1 a redirect=_spf.x.example include:spf.p.example')
      const rec = { purpose: 'spf' as const, type: 'TXT' as const, name: 'x.example', value: '', note: '' }
      assert.equal(checkSpf(rec, { state: 'found', values: ['V=SPF1 Include:SPF.Posta.Example. -all'] }, 'posta.example').state, 'right')
      assert.equal(checkSpf(rec, { state: 'found', values: ['v=spf1 include:spf.posta.example.evil.example -all'] }, 'posta.example').state, 'wrong')
      assert.equal(checkSpf(rec, { state: 'found', values: ['v=spf10 include:spf.posta.example'] }, 'posta.example').state, 'missing')
    })
  })
})
