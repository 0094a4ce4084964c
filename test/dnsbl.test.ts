// lib/dnsbl.ts: query names (IPv4, IPv6 nibbles), answer matching and classification per zone, and real queries
// against a DNS server on loopback (testkit/dns.ts); the shipped config/posta-monitor.ini parsed as the CLI does.
import { strict as assert } from 'node:assert'
import * as path from 'node:path'
import { canary, check, classify, makeResolver, matches, queryName, zoneFromIni, type Zone } from '../lib/dnsbl'
import { SettingsError } from '../lib/config'
import { readIni } from '../lib/ini'
import { monitorOptionsFromIni } from '../lib/monitor'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { startDns, type TestDns } from '../testkit/dns'
import { uniqueName } from '../testkit/redis'

const zen = (name = 'zen.spamhaus.org'): Zone =>
  zoneFromIni(name, {
    listed: '127.0.0.2:SBL,127.0.0.3:CSS,127.0.0.4:XBL,127.0.0.9:DROP,127.0.0.10:PBL,127.0.0.11:PBL',
    errors: '127.255.255.0/24',
    informational: '127.0.0.10,127.0.0.11',
    ipv6: 'true',
  })

describe('dnsbl: query names', () => {
  it('reverses IPv4 octets under the zone', () => {
    assert.equal(queryName('203.0.113.7', 'zen.spamhaus.org'), '7.113.0.203.zen.spamhaus.org')
    assert.equal(queryName('198.18.0.1', 'bl.example'), '1.0.18.198.bl.example')
    assert.equal(queryName('127.0.0.2', 'z.test'), '2.0.0.127.z.test')
  })

  it('reverses the 32 nibbles of an IPv6 address (RFC 5782 example)', () => {
    assert.equal(
      queryName('2001:db8:1:2:3:4:567:89ab', 'dnsbl.example'),
      'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.dnsbl.example',
    )
  })

  it('gives the same name for the compressed, full, zero-padded and upper-case forms of one IPv6 address', () => {
    const expected = '7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.z.test'
    for (const ip of ['2001:db8::7', '2001:0db8:0000:0000:0000:0000:0000:0007', '2001:db8:0:0:0:0:0:7', '2001:0DB8::0007', '2001:db8:0::0:7']) {
      assert.equal(queryName(ip, 'z.test'), expected, ip)
    }
    // leading-zero groups in the middle
    assert.equal(
      queryName('2001:0db8:0001:0002:0003:0004:0567:89ab', 'z.test'),
      queryName('2001:db8:1:2:3:4:567:89ab', 'z.test'),
    )
    // :: at either end
    assert.equal(queryName('::1', 'z.test'), `1${'.0'.repeat(31)}.z.test`)
    assert.equal(queryName('fe80::', 'z.test'), `${'0.'.repeat(28)}0.8.e.f.z.test`)
    for (const ip of ['2001:db8::7', '::1', 'fe80::', '2001:db8:1:2:3:4:567:89ab']) {
      const labels = queryName(ip, 'z.test').split('.')
      assert.equal(labels.length, 32 + 2, `${ip}: 32 nibble labels`)
      assert.ok(labels.slice(0, 32).every((l) => /^[0-9a-f]$/.test(l)), ip)
    }
  })

  it('refuses what is not an IP address', () => {
    assert.throws(() => queryName('mail.example.com', 'z.test'), /not an IP address/)
    assert.throws(() => queryName('1.2.3', 'z.test'), /not an IP address/)
    assert.throws(() => queryName('2001:db8:::1', 'z.test'), /not an IP address/)
  })
})

describe('dnsbl: matches', () => {
  it('matches an exact answer', () => {
    assert.equal(matches('127.0.0.2', '127.0.0.2'), true)
    assert.equal(matches('127.0.0.20', '127.0.0.2'), false)
    assert.equal(matches('127.0.0.2', '127.0.0.20'), false)
  })
  it('matches a /24 block and nothing outside it', () => {
    for (const a of ['127.255.255.0', '127.255.255.252', '127.255.255.254', '127.255.255.255']) assert.equal(matches(a, '127.255.255.0/24'), true, a)
    for (const a of ['127.255.254.255', '127.0.0.2', '128.255.255.1', '127.255.0.255']) assert.equal(matches(a, '127.255.255.0/24'), false, a)
    assert.equal(matches('127.255.255.9', '127.255.255.200/24'), true, 'the base need not be the network address')
  })
  it('/32 is exact, /0 is everything IPv4, /8 is the loopback block', () => {
    assert.equal(matches('127.0.0.10', '127.0.0.10/32'), true)
    assert.equal(matches('127.0.0.11', '127.0.0.10/32'), false)
    for (const a of ['0.0.0.0', '10.1.2.3', '127.0.0.2', '255.255.255.255']) assert.equal(matches(a, '0.0.0.0/0'), true, a)
    assert.equal(matches('127.1.2.3', '127.0.0.0/8'), true)
    assert.equal(matches('126.255.255.255', '127.0.0.0/8'), false)
  })
  it('an answer that is not IPv4 matches no CIDR block', () => {
    assert.equal(matches('::1', '0.0.0.0/0'), false)
    assert.equal(matches('::ffff:127.255.255.254', '127.255.255.0/24'), false)
    assert.equal(matches('garbage', '127.255.255.0/24'), false)
    assert.equal(matches('127.255.255.254', '::/0'), false, 'nor does an IPv4 answer match a non-IPv4 block')
  })
})

describe('dnsbl: classify', () => {
  const z = zen()

  it('listing codes with their meanings; several answers give several meanings', () => {
    const sbl = classify(z, ['127.0.0.2'])
    assert.deepEqual(sbl, { zone: 'zen.spamhaus.org', state: 'LISTED', answers: ['127.0.0.2'], meaning: 'SBL', actionable: true })
    assert.equal(classify(z, ['127.0.0.3']).meaning, 'CSS')
    assert.equal(classify(z, ['127.0.0.4']).meaning, 'XBL')
    assert.equal(classify(z, ['127.0.0.9']).meaning, 'DROP')
    const both = classify(z, ['127.0.0.2', '127.0.0.4'])
    assert.equal(both.state, 'LISTED')
    assert.equal(both.meaning, 'SBL,XBL')
    assert.equal(both.actionable, true)
  })

  it('a 127.x answer the zone does not name (and that is no error) is a listing "listed"', () => {
    const r = classify(z, ['127.0.0.7'])
    assert.equal(r.state, 'LISTED')
    assert.equal(r.meaning, 'listed')
    assert.equal(r.actionable, true)
  })

  it('Spamhaus error answers 127.255.255.252/.254/.255 are UNKNOWN, never LISTED', () => {
    for (const a of ['127.255.255.252', '127.255.255.254', '127.255.255.255', '127.255.255.1']) {
      const r = classify(z, [a])
      assert.equal(r.state, 'UNKNOWN', a)
      assert.equal(r.actionable, false, a)
      assert.match(r.meaning, new RegExp(`error answer ${a.replace(/\./g, '\\.')}`))
    }
    assert.equal(classify(z, ['127.255.255.254', '127.255.255.255']).state, 'UNKNOWN', 'two errors are still no listing')
  })

  it('an error answer mixed with a listing: the listing counts, the error adds no meaning', () => {
    const r = classify(z, ['127.255.255.254', '127.0.0.4'])
    assert.equal(r.state, 'LISTED')
    assert.equal(r.meaning, 'XBL', 'the error answer is not read as a "listed" meaning')
    assert.equal(r.actionable, true)
    assert.deepEqual(r.answers, ['127.255.255.254', '127.0.0.4'], 'every answer is kept as evidence')
    const pbl = classify(z, ['127.255.255.254', '127.0.0.10'])
    assert.equal(pbl.state, 'LISTED')
    assert.equal(pbl.actionable, false, 'an error next to an informational answer does not make it actionable')
  })

  it('informational answers (PBL) are LISTED but not actionable, unless an abuse code comes with them', () => {
    for (const a of ['127.0.0.10', '127.0.0.11']) {
      const r = classify(z, [a])
      assert.equal(r.state, 'LISTED', a)
      assert.equal(r.meaning, 'PBL', a)
      assert.equal(r.actionable, false, a)
    }
    assert.equal(classify(z, ['127.0.0.10', '127.0.0.11']).meaning, 'PBL', 'one meaning, once')
    const mixed = classify(z, ['127.0.0.10', '127.0.0.2'])
    assert.equal(mixed.actionable, true)
    assert.equal(mixed.meaning, 'PBL,SBL')
  })

  it('informational answers may be CIDR blocks', () => {
    const cidr = zoneFromIni('x.test', { listed: '127.0.0.2:abuse', informational: '127.0.1.0/24' })
    assert.equal(classify(cidr, ['127.0.1.7']).actionable, false)
    assert.equal(classify(cidr, ['127.0.1.7']).state, 'LISTED')
    assert.equal(classify(cidr, ['127.0.0.2']).actionable, true)
  })

  it('an informational zone (UCEPROTECT L2/L3) lists but is never actionable', () => {
    const l2 = zoneFromIni('dnsbl-2.uceprotect.net', { listed: '127.0.0.2:UCEPROTECT-L2', informational_zone: 'true', errors: '127.255.255.0/24' })
    const r = classify(l2, ['127.0.0.2'])
    assert.equal(r.state, 'LISTED')
    assert.equal(r.meaning, 'UCEPROTECT-L2')
    assert.equal(r.actionable, false)
    assert.equal(classify(l2, ['127.0.0.7']).actionable, false, 'whatever the answer')
  })

  it('answers outside 127.0.0.0/8 (a hijacking resolver, NXDOMAIN redirection) are UNKNOWN', () => {
    for (const answers of [['10.0.0.1'], ['93.184.216.34'], ['0.0.0.0'], []]) {
      const r = classify(z, answers)
      assert.equal(r.state, 'UNKNOWN', answers.join(','))
      assert.equal(r.actionable, false)
    }
    assert.match(classify(z, ['93.184.216.34']).meaning, /unexpected answer 93\.184\.216\.34/)
  })
})

describe('dnsbl: queries against a DNS server on loopback', () => {
  let dns: TestDns
  const name = `${uniqueName('zen')}.test`
  const z = zen(name)
  const TIMEOUT = 500

  before(async () => {
    dns = await startDns()
  })
  after(async () => {
    await dns?.close()
  })

  it('LISTED with the meaning and the TXT reason', async () => {
    dns.set(name, '198.18.7.1', { a: ['127.0.0.2'], txt: 'https://check.spamhaus.example/sbl/123' })
    const r = await check(makeResolver([dns.server], TIMEOUT), '198.18.7.1', z)
    assert.deepEqual(r, {
      zone: name, state: 'LISTED', answers: ['127.0.0.2'], meaning: 'SBL', actionable: true, txt: 'https://check.spamhaus.example/sbl/123',
    })
  })

  it('withTxt=false does not ask for the TXT record', async () => {
    dns.set(name, '198.18.7.9', { a: ['127.0.0.4'], txt: 'xbl' })
    const q0 = dns.queries
    const r = await check(makeResolver([dns.server], TIMEOUT), '198.18.7.9', z, false)
    assert.equal(r.state, 'LISTED')
    assert.equal(r.txt, undefined)
    assert.equal(dns.queries - q0, 1)
  })

  it('a listing without a TXT record is still a listing', async () => {
    dns.set(name, '198.18.7.2', { a: ['127.0.0.4'] })
    const r = await check(makeResolver([dns.server], TIMEOUT), '198.18.7.2', z)
    assert.equal(r.state, 'LISTED')
    assert.equal(r.meaning, 'XBL')
    assert.ok(!r.txt)
  })

  it('an IPv6 address is asked in nibble form', async () => {
    dns.set(name, '2001:db8::7', { a: ['127.0.0.2'], txt: 'v6' })
    const r = await check(makeResolver([dns.server], TIMEOUT), '2001:0db8:0:0::0007', z)
    assert.equal(r.state, 'LISTED')
    assert.equal(r.txt, 'v6')
  })

  it('NXDOMAIN is NOT_LISTED', async () => {
    const r = await check(makeResolver([dns.server], TIMEOUT), '198.18.7.3', z)
    assert.deepEqual(r, { zone: name, state: 'NOT_LISTED', answers: [], meaning: '', actionable: false })
  })

  it('no answer is UNKNOWN (ETIMEOUT), within about the timeout', async () => {
    dns.set(name, '198.18.7.4', 'timeout')
    const t0 = Date.now()
    const r = await check(makeResolver([dns.server], TIMEOUT), '198.18.7.4', z)
    const took = Date.now() - t0
    assert.equal(r.state, 'UNKNOWN')
    assert.equal(r.meaning, 'ETIMEOUT')
    assert.equal(r.actionable, false)
    // c-ares 1.34 adapts its timeouts (a cold 300 ms timeout waits ~600 ms): bounded, not exact
    assert.ok(took >= TIMEOUT * 0.8, `gave up after ${took} ms, before the timeout`)
    assert.ok(took < TIMEOUT * 2 + 500, `gave up after ${took} ms`)
  })

  it('SERVFAIL is UNKNOWN', async () => {
    dns.set(name, '198.18.7.5', 'servfail')
    const r = await check(makeResolver([dns.server], TIMEOUT), '198.18.7.5', z)
    assert.equal(r.state, 'UNKNOWN')
    assert.equal(r.meaning, 'ESERVFAIL')
  })

  it('an error answer (query through a public resolver) is UNKNOWN and no TXT is asked', async () => {
    dns.set(name, '198.18.7.6', { a: ['127.255.255.254'], txt: 'public resolver' })
    const q0 = dns.queries
    const r = await check(makeResolver([dns.server], TIMEOUT), '198.18.7.6', z)
    assert.equal(r.state, 'UNKNOWN')
    assert.deepEqual(r.answers, ['127.255.255.254'])
    assert.equal(r.txt, undefined)
    assert.equal(dns.queries - q0, 1)
  })

  it('a resolver nobody answers on is UNKNOWN, not NOT_LISTED', async () => {
    // a closed UDP port on loopback: ECONNREFUSED or a timeout, UNKNOWN either way
    const r = await check(makeResolver(['127.0.0.1:9'], 300), '198.18.7.7', z)
    assert.equal(r.state, 'UNKNOWN')
  })

  it('canary: healthy when 127.0.0.2 is listed and 127.0.0.1 is not', async () => {
    assert.deepEqual(await canary(makeResolver([dns.server], TIMEOUT), z), { healthy: true, reason: '' })
  })

  it('canary: broken when 127.0.0.2 is not listed, when it answers an error, or when 127.0.0.1 is listed', async () => {
    const r = makeResolver([dns.server], TIMEOUT)
    const b1 = zen(`${uniqueName('b1')}.test`)
    dns.breakCanary(b1.name, true)
    const c1 = await canary(r, b1)
    assert.equal(c1.healthy, false)
    assert.match(c1.reason, /127\.0\.0\.2 is NOT_LISTED, expected LISTED/)
    dns.breakCanary(b1.name, false)
    assert.equal((await canary(r, b1)).healthy, true, 'mended')

    const b2 = zen(`${uniqueName('b2')}.test`)
    dns.set(b2.name, '127.0.0.2', { a: ['127.255.255.254'] }) // every query through a public resolver
    const c2 = await canary(r, b2)
    assert.equal(c2.healthy, false)
    assert.match(c2.reason, /127\.0\.0\.2 is UNKNOWN \(error answer 127\.255\.255\.254\)/)

    const b3 = zen(`${uniqueName('b3')}.test`)
    dns.set(b3.name, '127.0.0.1', { a: ['127.0.0.2'] }) // a zone that lists everything
    const c3 = await canary(r, b3)
    assert.equal(c3.healthy, false)
    assert.match(c3.reason, /127\.0\.0\.1 is LISTED .*expected NOT_LISTED/)

    const b4 = zen(`${uniqueName('b4')}.test`)
    dns.set(b4.name, '127.0.0.2', 'servfail')
    assert.equal((await canary(r, b4)).healthy, false)
  })
})

describe('dnsbl: zones from the ini', () => {
  it('zoneFromIni reads listed, errors, informational, informational_zone and ipv6', () => {
    const z = zoneFromIni('z.test', { listed: ' 127.0.0.2:SBL , 127.0.0.3 ,127.0.0.10: PBL ', errors: '127.255.255.0/24, 127.0.0.1', informational: '127.0.0.10', informational_zone: 'false', ipv6: true })
    assert.equal(z.name, 'z.test')
    assert.deepEqual([...z.listed], [['127.0.0.2', 'SBL'], ['127.0.0.3', 'listed'], ['127.0.0.10', 'PBL']])
    assert.deepEqual(z.errors, ['127.255.255.0/24', '127.0.0.1'])
    assert.deepEqual(z.informational, ['127.0.0.10'])
    assert.equal(z.informationalZone, false)
    assert.equal(z.ipv6, true)
    const empty = zoneFromIni('e.test')
    assert.deepEqual(empty, { name: 'e.test', listed: new Map(), errors: [], informational: [], informationalZone: false, ipv6: false })
    assert.equal(zoneFromIni('i.test', { informational_zone: true }).informationalZone, true, 'a boolean from Haraka\'s loader')
  })

  it('the shipped config/posta-monitor.ini: 8 zones, no SORBS, ZEN PBL informational and errors, UCEPROTECT 2/3 informational', () => {
    const ini = readIni(path.join(PROJECT_ROOT, 'config', 'posta-monitor.ini'))
    const o = monitorOptionsFromIni(ini)
    assert.deepEqual(o.zones.map((z) => z.name), [
      'zen.spamhaus.org', 'b.barracudacentral.org', 'bl.spamcop.net', 'psbl.surriel.com', 'ix.dnsbl.manitu.net',
      'dnsbl-1.uceprotect.net', 'dnsbl-2.uceprotect.net', 'dnsbl-3.uceprotect.net',
    ])
    assert.ok(!o.zones.some((z) => /sorbs/i.test(z.name)), 'SORBS was shut down in 2024')
    assert.ok(!Object.keys(ini).some((s) => /sorbs/i.test(s)))
    assert.equal(o.intervalMs, 600000)
    assert.equal(o.concurrency, 32)
    assert.equal(o.timeoutMs, 3000)
    assert.equal(o.autoReinstate, false)
    assert.equal(o.investigationHours, 24)
    assert.deepEqual(o.resolvers, [])

    const by = Object.fromEntries(o.zones.map((z) => [z.name, z]))
    const z = by['zen.spamhaus.org']
    assert.equal(z.listed.get('127.0.0.10'), 'PBL')
    assert.equal(z.listed.get('127.0.0.11'), 'PBL')
    assert.equal(z.listed.get('127.0.0.2'), 'SBL')
    assert.equal(z.listed.get('127.0.0.4'), 'XBL')
    assert.deepEqual(z.informational, ['127.0.0.10', '127.0.0.11'])
    assert.ok(z.errors.includes('127.255.255.0/24'))
    assert.equal(z.ipv6, true)
    assert.equal(classify(z, ['127.0.0.10']).actionable, false, 'PBL informs only')
    assert.equal(classify(z, ['127.0.0.2']).actionable, true)
    for (const a of ['127.255.255.252', '127.255.255.254', '127.255.255.255']) assert.equal(classify(z, [a]).state, 'UNKNOWN', a)
    for (const zone of o.zones) assert.equal(classify(zone, ['127.255.255.254']).state, 'UNKNOWN', `${zone.name}: errors configured`)

    assert.equal(by['dnsbl-1.uceprotect.net'].informationalZone, false)
    assert.equal(by['dnsbl-2.uceprotect.net'].informationalZone, true)
    assert.equal(by['dnsbl-3.uceprotect.net'].informationalZone, true)
    assert.equal(classify(by['dnsbl-1.uceprotect.net'], ['127.0.0.2']).actionable, true)
    assert.equal(classify(by['dnsbl-2.uceprotect.net'], ['127.0.0.2']).actionable, false)
    assert.equal(o.zones.filter((x) => x.informationalZone).length, 2)
    assert.deepEqual(o.zones.filter((x) => x.ipv6).map((x) => x.name), ['zen.spamhaus.org'])
  })

  it('monitorOptionsFromIni: defaults, and values out of range refused with file, key, value and range', () => {
    const o = monitorOptionsFromIni({})
    assert.deepEqual({ ...o, zones: o.zones.length }, { zones: 8, resolvers: [], timeoutMs: 3000, concurrency: 32, autoReinstate: false, investigationHours: 24, intervalMs: 600000 })
    const p = monitorOptionsFromIni({ main: { interval: '2', resolvers: '127.0.0.1:5353, 10.0.0.1', auto_reinstate: 'true', zones: 'a.test, b.test' } })
    assert.equal(p.intervalMs, 2000)
    assert.deepEqual(p.resolvers, ['127.0.0.1:5353', '10.0.0.1'])
    assert.equal(p.autoReinstate, true)
    assert.deepEqual(p.zones.map((z) => z.name), ['a.test', 'b.test'])
    assert.throws(() => monitorOptionsFromIni({ main: { concurrency: '0', timeout_ms: 'x' } }), (err: SettingsError) =>
      err instanceof SettingsError && err.problems.length === 2 &&
      err.problems[0] === 'posta-monitor.ini [main] timeout_ms=x is refused: allowed is an integer from 10 to 60000 milliseconds' &&
      err.problems[1] === 'posta-monitor.ini [main] concurrency=0 is refused: allowed is an integer from 1 to 1024')
  })
})
