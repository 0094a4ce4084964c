// lib/dnsbl.ts: query names, reply semantics, and checks against a real DNS server on loopback.
import { strict as assert } from 'node:assert'
import * as path from 'node:path'
import { canary, check, classify, makeResolver, matches, queryName, zoneFromIni } from '../lib/dnsbl'
import { readIni } from '../lib/ini'
import { monitorOptionsFromIni } from '../lib/monitor'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { startDns, type TestDns } from '../testkit/dns'

const ZEN = zoneFromIni('zen.test', { listed: '127.0.0.2:SBL,127.0.0.4:XBL,127.0.0.10:PBL', errors: '127.255.255.0/24', informational: '127.0.0.10', ipv6: 'true' })

describe('dnsbl', () => {
  let dns: TestDns
  before(async () => {
    dns = await startDns()
  })
  after(async () => {
    await dns?.close()
  })

  it('builds query names: reversed octets, and reversed nibbles for IPv6 (RFC 5782)', () => {
    assert.equal(queryName('203.0.113.7', 'zen.test'), '7.113.0.203.zen.test')
    assert.equal(
      queryName('2001:db8:1:2:3:4:567:89ab', 'zen.test'),
      'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.zen.test',
    )
    assert.equal(queryName('2001:db8::1', 'z.test'), `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.z.test`)
    assert.throws(() => queryName('nope', 'z.test'))
  })

  it('matches answers exactly or by CIDR block', () => {
    assert.ok(matches('127.255.255.254', '127.255.255.0/24'))
    assert.ok(!matches('127.255.254.1', '127.255.255.0/24'))
    assert.ok(matches('127.0.0.2', '127.0.0.2'))
    assert.ok(matches('10.1.2.3', '0.0.0.0/0'))
    assert.ok(!matches('::1', '127.0.0.0/8'))
  })

  it('never takes an error answer for a listing; informational listings do not act', () => {
    assert.deepEqual(classify(ZEN, ['127.0.0.2']), { zone: 'zen.test', state: 'LISTED', answers: ['127.0.0.2'], meaning: 'SBL', actionable: true })
    for (const err of ['127.255.255.252', '127.255.255.254', '127.255.255.255']) assert.equal(classify(ZEN, [err]).state, 'UNKNOWN', err)
    assert.equal(classify(ZEN, ['127.0.0.10']).actionable, false)
    assert.equal(classify(ZEN, ['127.0.0.10']).state, 'LISTED')
    assert.equal(classify(ZEN, ['127.0.0.10', '127.0.0.4']).actionable, true, 'PBL with XBL: XBL acts')
    assert.equal(classify(ZEN, ['127.0.0.7']).meaning, 'listed', 'an unmapped 127 answer is a plain listing')
    assert.equal(classify(ZEN, ['10.0.0.1']).state, 'UNKNOWN', 'a non-127 answer is not a listing')
    const l2 = zoneFromIni('l2.test', { listed: '127.0.0.2:L2', informational_zone: 'true' })
    assert.equal(classify(l2, ['127.0.0.2']).actionable, false)
  })

  it('checks against a real DNS server: listed with TXT, not listed, timeout, SERVFAIL, error code', async () => {
    const r = makeResolver([dns.server], 300)
    dns.set('zen.test', '198.18.1.1', { a: ['127.0.0.2'], txt: 'see https://example/sbl' })
    dns.set('zen.test', '198.18.1.2', 'timeout')
    dns.set('zen.test', '198.18.1.3', 'servfail')
    dns.set('zen.test', '198.18.1.4', { a: ['127.255.255.254'] })
    dns.set('zen.test', '2001:db8::5', { a: ['127.0.0.4'] })
    const listed = await check(r, '198.18.1.1', ZEN)
    assert.equal(listed.state, 'LISTED')
    assert.equal(listed.txt, 'see https://example/sbl')
    assert.equal((await check(r, '198.18.1.9', ZEN)).state, 'NOT_LISTED')
    const t0 = Date.now()
    const to = await check(r, '198.18.1.2', ZEN)
    assert.deepEqual([to.state, to.meaning], ['UNKNOWN', 'ETIMEOUT'])
    assert.ok(Date.now() - t0 < 2000, 'bounded by the timeout')
    assert.equal((await check(r, '198.18.1.3', ZEN)).state, 'UNKNOWN')
    assert.equal((await check(r, '198.18.1.4', ZEN)).state, 'UNKNOWN')
    assert.equal((await check(r, '2001:db8::5', ZEN)).meaning, 'XBL')
  })

  it('canaries: 127.0.0.2 must be listed and 127.0.0.1 must not be', async () => {
    const r = makeResolver([dns.server], 300)
    assert.deepEqual(await canary(r, zoneFromIni('ok.test')), { healthy: true, reason: '' })
    dns.breakCanary('broken.test', true)
    assert.equal((await canary(r, zoneFromIni('broken.test'))).healthy, false)
    dns.set('all.test', '127.0.0.1', { a: ['127.0.0.2'] }) // a zone that lists everything
    assert.match((await canary(r, zoneFromIni('all.test'))).reason, /127\.0\.0\.1 is LISTED .*expected NOT_LISTED/)
  })

  it('ships sensible zones: no SORBS, Spamhaus errors and PBL right, UCEPROTECT 2-3 informational', () => {
    const o = monitorOptionsFromIni(readIni(path.join(PROJECT_ROOT, 'config', 'posta-monitor.ini')))
    assert.equal(o.intervalMs, 600000)
    assert.equal(o.zones.length, 8)
    assert.ok(!o.zones.some((z) => /sorbs/.test(z.name)))
    const zen = o.zones.find((z) => z.name === 'zen.spamhaus.org')!
    assert.equal(classify(zen, ['127.255.255.254']).state, 'UNKNOWN')
    assert.equal(classify(zen, ['127.0.0.11']).actionable, false)
    assert.equal(classify(zen, ['127.0.0.4']).meaning, 'XBL')
    for (const n of ['dnsbl-2.uceprotect.net', 'dnsbl-3.uceprotect.net']) assert.ok(o.zones.find((z) => z.name === n)!.informationalZone, n)
    assert.ok(!o.zones.find((z) => z.name === 'dnsbl-1.uceprotect.net')!.informationalZone)
  })
})
