// lib/dkim.ts against a real Redis and a real DNS server on loopback: keys, records, checks, rotation.
import { strict as assert } from 'node:assert'
import { createPrivateKey, createPublicKey, createSign, createVerify } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { RedisClient as Redis } from '../lib/redis'
import {
  advanceRotation, checkDkimRecords, createDomainKey, dkimRecords, KEY_BITS, parseDkimRecord, RETIRING_DAYS,
  removeDomainKeys, rotateKey, sameKey, selectorFor, signingDomain, signingKey,
} from '../lib/dkim'
import { makeResolver } from '../lib/dnsbl'
import { InputError, NotFoundError } from '../lib/errors'
import { parseIni } from '../lib/ini'
import { keys } from '../lib/keys'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { startDns, type TestDns } from '../testkit/dns'
import { uniqueName, useTestRedis } from '../testkit/redis'

const DEC = new Date('2026-12-02T04:00:00Z')
const DAY = 86_400_000

describe('dkim keys (real Redis, loopback DNS)', function () {
  this.timeout(120_000)
  const db = useTestRedis()
  let redis: Redis
  let dns: TestDns
  let resolver: ReturnType<typeof makeResolver>
  before(async () => {
    redis = db.client
    dns = await startDns()
    resolver = makeResolver([dns.server], 1000)
  })
  after(() => dns.close())

  const fresh = () => `${uniqueName('d')}.test`

  it('makes a 2048-bit RSA key with a dated selector, once per domain; the record holds its public key', async () => {
    const d = fresh()
    const a = await createDomainKey(redis, d.toUpperCase() + '.', DEC)
    assert.equal(a.created, true)
    assert.equal(a.selector, 'posta202612')
    assert.equal(a.record.name, `posta202612._domainkey.${d}`)
    assert.match(a.record.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/)
    const b = await createDomainKey(redis, d, new Date('2027-01-05T00:00:00Z'))
    assert.deepEqual(b, { ...a, created: false }, 'a second call returns the same key')
    const key = await signingKey(redis, d)
    assert.ok(key)
    assert.equal(key.selector, 'posta202612')
    assert.equal(createPrivateKey(key.privateKeyPem).asymmetricKeyDetails?.modulusLength, KEY_BITS)
    // the private key signs what the record's public key verifies
    const pub = createPublicKey({ key: Buffer.from(parseDkimRecord(a.record.value).get('p')!, 'base64'), format: 'der', type: 'spki' })
    const sig = createSign('RSA-SHA256').update('x').sign(key.privateKeyPem)
    assert.ok(createVerify('RSA-SHA256').update('x').verify(pub, sig))
    assert.deepEqual(await dkimRecords(redis, d), [{ ...a.record }])
  })

  it('two simultaneous first calls agree on one key', async () => {
    const d = fresh()
    const [a, b] = await Promise.all([createDomainKey(redis, d, DEC), createDomainKey(redis, d, DEC)])
    assert.equal(a.record.value, b.record.value)
    assert.deepEqual([a.created, b.created].sort(), [false, true])
    assert.equal((await dkimRecords(redis, d)).length, 1)
  })

  it('refuses a bad domain with one clear error; a domain without key has no records and no signing key', async () => {
    await assert.rejects(createDomainKey(redis, 'not a domain'), (e: Error) => e instanceof InputError && /bad domain "not a domain"/.test(e.message))
    const d = fresh()
    assert.deepEqual(await dkimRecords(redis, d), [])
    assert.equal(await signingKey(redis, d), null)
    assert.deepEqual(await checkDkimRecords(redis, d, resolver), { records: [], rotation: null })
    await assert.rejects(rotateKey(redis, d), NotFoundError)
    assert.equal(await removeDomainKeys(redis, d), false)
  })

  it('a damaged key entry is no signing key', async () => {
    const d = fresh()
    await createDomainKey(redis, d, DEC)
    await redis.hset(keys.dkim(d), 'key:posta202612', '{not json')
    assert.equal(await signingKey(redis, d), null)
    assert.deepEqual(await dkimRecords(redis, d), [])
  })

  it('selectors: the month, then a letter when taken', () => {
    assert.equal(selectorFor(new Date('2027-03-31T23:59:59Z'), () => false), 'posta202703')
    const taken = new Set(['posta202612', 'posta202612b'])
    assert.equal(selectorFor(DEC, (s) => taken.has(s)), 'posta202612c')
    assert.throws(() => selectorFor(DEC, () => true), InputError)
  })

  it('checks records: right, missing, wrong (another key, a revoked key), unknown (SERVFAIL), a long value in chunks', async () => {
    const d = fresh()
    const { record } = await createDomainKey(redis, d, DEC)
    const check = async () => (await checkDkimRecords(redis, d, resolver, DEC)).records[0]
    let c = await check()
    assert.equal(c.check, 'missing')
    assert.match(c.fix, new RegExp(`^no TXT record at ${record.name.replace(/\./g, '\\.')}: publish TXT`))
    dns.setTxt(record.name, [record.value]) // > 255 bytes: served as several strings
    assert.ok(record.value.length > 255)
    c = await check()
    assert.equal(c.check, 'right')
    assert.equal(c.fix, '')
    dns.setTxt(record.name, [record.value.replace(/; /g, ';  ').replace('k=rsa', 'k=RSA')]) // spacing and case do not matter
    assert.equal((await check()).check, 'right')
    const other = await createDomainKey(redis, fresh(), DEC)
    dns.setTxt(record.name, [other.record.value])
    c = await check()
    assert.equal(c.check, 'wrong')
    assert.deepEqual(c.found, [other.record.value])
    assert.match(c.fix, /does not hold this key: replace it/)
    dns.setTxt(record.name, ['v=DKIM1; k=rsa; p='])
    assert.equal((await check()).check, 'wrong', 'a revoked key (empty p=)')
    dns.setTxt(record.name, [record.value.replace('v=DKIM1', 'v=DKIM2')])
    assert.equal((await check()).check, 'wrong', 'another version')
    dns.setTxt(record.name, [])
    assert.equal((await check()).check, 'missing', 'the name without TXT')
    dns.setTxt(record.name, 'servfail')
    c = await check()
    assert.equal(c.check, 'unknown')
    assert.match(c.fix, /lookup .* failed; try again later/)
    dns.setTxt(record.name, undefined)
  })

  it('sameKey compares the key, not the text', () => {
    assert.ok(sameKey('p=QUJD; v=DKIM1', 'v=DKIM1; k=rsa; p=QUJD'))
    assert.ok(sameKey('v=DKIM1; p=QU JD', 'v=DKIM1; k=rsa; p=QUJD'))
    assert.ok(!sameKey('v=DKIM1; k=ed25519; p=QUJD', 'v=DKIM1; k=rsa; p=QUJD'))
    assert.ok(!sameKey('v=DKIM1; k=rsa', 'v=DKIM1; k=rsa; p=QUJD'))
  })

  it('rotation: pending until its record is seen, then active; the old one retiring for RETIRING_DAYS, then forgotten', async () => {
    const d = fresh()
    const first = await createDomainKey(redis, d, DEC)
    const rot = await rotateKey(redis, d, DEC)
    assert.equal(rot.selector, 'posta202612b', 'same month: a letter')
    assert.equal(rot.replaces, 'posta202612')
    assert.equal(rot.record.state, 'pending')
    await assert.rejects(rotateKey(redis, d, DEC), (e: Error) => e instanceof InputError && /already rotating to selector posta202612b/.test(e.message))
    assert.deepEqual((await dkimRecords(redis, d)).map((r) => [r.selector, r.state]), [['posta202612', 'active'], ['posta202612b', 'pending']])

    // not in DNS: keeps signing with the old key
    assert.deepEqual(await advanceRotation(redis, d, resolver, DEC), { active: 'posta202612', pending: 'posta202612b', switched: null })
    assert.equal((await signingKey(redis, d))!.selector, 'posta202612')
    // a wrong record at the new name: still no switch
    dns.setTxt(rot.record.name, [first.record.value])
    assert.equal((await advanceRotation(redis, d, resolver, DEC)).switched, null)
    const waiting = (await checkDkimRecords(redis, d, resolver, DEC)).records.find((r) => r.state === 'pending')!
    assert.equal(waiting.check, 'wrong')
    assert.match(waiting.fix, /switches to this key once the record is seen/)

    // published: the check switches
    dns.setTxt(rot.record.name, [rot.record.value])
    dns.setTxt(first.record.name, [first.record.value])
    const { records, rotation } = await checkDkimRecords(redis, d, resolver, DEC)
    assert.deepEqual(rotation, { active: 'posta202612b', pending: null, switched: { from: 'posta202612', to: 'posta202612b' } })
    assert.equal((await signingKey(redis, d))!.selector, 'posta202612b')
    const until = new Date(DEC.getTime() + RETIRING_DAYS * DAY).toISOString()
    assert.deepEqual(records.map((r) => [r.selector, r.state, r.check, r.until]), [['posta202612b', 'active', 'right', undefined], ['posta202612', 'retiring', 'right', until]])
    assert.match(records[1].fix, new RegExp(`keep this record until ${until.replace(/\./g, '\\.')}`))
    // a second switch call is a no-op
    assert.equal((await advanceRotation(redis, d, resolver, DEC)).switched, null)

    // after RETIRING_DAYS the old record is no longer listed and its key is dropped
    const later = new Date(DEC.getTime() + RETIRING_DAYS * DAY + 1)
    assert.deepEqual((await dkimRecords(redis, d, later)).map((r) => r.selector), ['posta202612b'])
    await advanceRotation(redis, d, resolver, later)
    assert.deepEqual(Object.keys(await redis.hgetall(keys.dkim(d))).sort(), ['active', 'key:posta202612b'])
  })

  it('a rotation that switches again drops the key retiring from the one before', async () => {
    const d = fresh()
    await createDomainKey(redis, d, DEC)
    for (const sel of ['posta202612b', 'posta202612c']) {
      const r = await rotateKey(redis, d, DEC)
      assert.equal(r.selector, sel)
      dns.setTxt(r.record.name, [r.record.value])
      assert.equal((await advanceRotation(redis, d, resolver, DEC)).switched?.to, sel)
    }
    const h = await redis.hgetall(keys.dkim(d))
    assert.deepEqual(Object.keys(h).filter((k) => k.startsWith('key:')).sort(), ['key:posta202612b', 'key:posta202612c'])
    assert.equal(h.retiring, 'posta202612b')
  })

  it('a rotation removed meanwhile does not come back', async () => {
    const d = fresh()
    await createDomainKey(redis, d, DEC)
    const r = await rotateKey(redis, d, DEC)
    dns.setTxt(r.record.name, [r.record.value])
    assert.equal(await removeDomainKeys(redis, d), true)
    await assert.rejects(advanceRotation(redis, d, resolver, DEC), NotFoundError)
    assert.equal(await redis.exists(keys.dkim(d)), 0)
  })

  it('signingDomain: the service zone for <tenant>.<service domain>, the most specific verified domain, else null', () => {
    const verified = new Set(['acme.example', 'news.acme.example'])
    assert.equal(signingDomain('acme.posta.test', 'acme', 'posta.test', verified), 'posta.test')
    assert.equal(signingDomain('eu.acme.posta.test', 'acme', 'posta.test', verified), 'posta.test')
    assert.equal(signingDomain('other.posta.test', 'acme', 'posta.test', verified), null, "another tenant's name")
    assert.equal(signingDomain('posta.test', 'acme', 'posta.test', verified), null, 'the service domain itself')
    assert.equal(signingDomain('acme.example', 'acme', 'posta.test', verified), 'acme.example')
    assert.equal(signingDomain('mail.acme.example', 'acme', 'posta.test', verified), 'acme.example')
    assert.equal(signingDomain('x.news.acme.example', 'acme', 'posta.test', verified), 'news.acme.example')
    assert.equal(signingDomain('paypal.com', 'acme', 'posta.test', verified), null)
    assert.equal(signingDomain('example', 'acme', 'posta.test', verified), null)
  })

  it('config/dkim.ini: signing on, no default key (it would sign other mail as its domain), verification off; posta-dkim ahead of dkim', () => {
    const ini = parseIni(fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'dkim.ini'), 'utf8')) as Record<string, Record<string, unknown>>
    assert.equal(String(ini.sign.enabled), 'true')
    assert.equal(ini.sign.domain ?? '', '')
    assert.equal(ini.sign.selector ?? '', '')
    assert.match(String(ini.sign.headers), /^From, /)
    assert.equal(ini.canon.body, 'relaxed')
    assert.equal(String(ini.verify.enabled), 'false')
    assert.equal(fs.existsSync(path.join(PROJECT_ROOT, 'config', 'dkim.private.key')), false)
    const plugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    assert.ok(plugins.includes('posta-dkim') && plugins.indexOf('posta-dkim') < plugins.indexOf('dkim'))
  })
})
