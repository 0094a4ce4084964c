// lib/validate.ts: the names and addresses an operator types, checked before anything is written.
import { strict as assert } from 'node:assert'
import { InputError } from '../lib/errors'
import { checkDomain, checkEmail, checkLocalPart, checkNewSlug, checkPackageName, checkSlug, isDomain, parseRouteTarget, RESERVED_SLUGS } from '../lib/validate'

/** Asserts that fn throws an InputError whose one-line message matches re. */
function refuses(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InputError, `expected InputError, got ${err}`)
    assert.match(err.message, re)
    assert.ok(!err.message.includes('\n'), 'one-line message')
    return true
  })
}

describe('validate', () => {
  describe('checkSlug', () => {
    const good = ['acme', 'a', 'a-1', '0', '1a', 'a--b', 'x'.repeat(63), `a${'-'.repeat(61)}b`]
    for (const s of good) it(`accepts ${JSON.stringify(s.length > 20 ? `${s.length} chars` : s)}`, () => assert.equal(checkSlug(s), s))

    const bad = ['Acme', 'ACME', '-a', 'a-', '-', 'a_b', 'a.b', 'a b', ' acme', 'acme ', 'àcme', 'x'.repeat(64), '']
    for (const s of bad) {
      it(`refuses ${JSON.stringify(s.length > 20 ? `${s.length} chars` : s)}`, () => refuses(() => checkSlug(s), /bad tenant slug/))
    }

    it('refuses a non-string', () => refuses(() => checkSlug(undefined as unknown as string), /bad tenant slug/))
  })

  describe('checkPackageName', () => {
    it('accepts short identifiers', () => {
      for (const n of ['basic', 'pro-50gb', 'Pro_2', 'v1.2', 'a'.repeat(64)]) assert.equal(checkPackageName(n), n)
    })
    it('refuses the rest', () => {
      for (const n of ['', '-x', '.x', 'a b', 'a/b', 'a:b', 'a{b}', 'a'.repeat(65)]) refuses(() => checkPackageName(n), /bad package name/)
    })
  })

  describe('checkLocalPart', () => {
    const good = ['mail', 'news', 'a', 'a.b', 'a_b', 'a-b', 'a+tag', 'no-reply.2', 'x'.repeat(64)]
    for (const s of good) it(`accepts ${JSON.stringify(s.length > 20 ? `${s.length} chars` : s)}`, () => assert.equal(checkLocalPart(s), s))

    const bad = ['', 'Mail', '.a', 'a.', 'a..b', '-a', 'a-', '+a', 'a b', 'a@b', 'a"b', 'à', 'x'.repeat(65)]
    for (const s of bad) {
      it(`refuses ${JSON.stringify(s.length > 20 ? `${s.length} chars` : s)}`, () => refuses(() => checkLocalPart(s), /bad local part/))
    }
  })

  describe('checkDomain and isDomain', () => {
    it('accepts names of two or more labels, lower-cased, without the trailing dot', () => {
      assert.equal(checkDomain('example.net'), 'example.net')
      assert.equal(checkDomain('Example.NET'), 'example.net')
      assert.equal(checkDomain('example.net.'), 'example.net')
      assert.equal(checkDomain('a.b.c.d.example.co.uk'), 'a.b.c.d.example.co.uk')
      assert.equal(checkDomain('xn--bcher-kva.example'), 'xn--bcher-kva.example')
      assert.equal(checkDomain(`${'a'.repeat(63)}.net`), `${'a'.repeat(63)}.net`)
    })

    const bad = [
      '', 'localhost', 'example', '.example.net', 'example..net', 'example.net..', '-a.net', 'a-.net', 'a_b.net', 'a b.net',
      'exa mple.net', 'bücher.example', `${'a'.repeat(64)}.net`, `${'a.'.repeat(127)}net`, 'example.net/x', 'user@example.net',
      '1.2.3.4', '999.1.1.1',
    ]
    for (const d of bad) {
      it(`refuses ${JSON.stringify(d.length > 30 ? `${d.length} chars` : d)}`, () => {
        assert.equal(isDomain(d), false)
        refuses(() => checkDomain(d), /bad domain/)
      })
    }

    it('names what it checked in the message', () => refuses(() => checkDomain('nope', 'route domain'), /^bad route domain "nope"/))
  })

  describe('checkEmail', () => {
    it('accepts plain addresses and lower-cases only the domain', () => {
      assert.equal(checkEmail('ops@example.net'), 'ops@example.net')
      assert.equal(checkEmail('Ops.Team+x@Example.NET'), 'Ops.Team+x@example.net')
      assert.equal(checkEmail('ops@sub.example.co.uk'), 'ops@sub.example.co.uk')
    })

    it("drops the domain's trailing dot", () => {
      assert.equal(checkEmail('ops@Example.Net.'), 'ops@example.net')
    })

    const bad = [
      '', 'ops', 'ops.example.net', '@example.net', 'ops@', 'ops @example.net', 'ops@ example.net', ' ops@example.net',
      'ops@example.net ', 'a@b@example.net', 'ops@localhost', 'ops@-example.net', 'ops@example..net', 'ops@exa_mple.net',
      '"ops"@example.net', '<ops@example.net>', 'Ops <ops@example.net>', 'a,b@example.net', `${'x'.repeat(65)}@example.net`,
    ]
    for (const a of bad) {
      it(`refuses ${JSON.stringify(a.length > 30 ? `${a.length} chars` : a)}`, () => refuses(() => checkEmail(a), /bad contact address/))
    }

    it('accepts the atext a recipient may hold', () => {
      for (const a of ["o'brien@example.net", 'a#b$c&d@example.net', 'ops/dept=x@example.net', 'x^y_z`{|}~@example.net', 'a.b-c+d@example.net', `${'x'.repeat(64)}@example.net`]) {
        assert.equal(checkEmail(a), a)
      }
    })

    // what a recipient may not hold, a contact may not either: Posta writes to it (quota notices)
    const controls = ['o\x01\x7fps@x.example', 'ops\x00@example.net', 'ops\r\nBcc: x@evil.example@example.net', 'ops\t@example.net', 'ops@exa\x7fmple.net', 'ops\x1b[31m@example.net']
    for (const a of controls) {
      it(`refuses the control character in ${JSON.stringify(a)}, and shows it escaped`, () => {
        refuses(() => checkEmail(a), /bad contact address ".*": /)
        try {
          checkEmail(a)
        } catch (err) {
          assert.doesNotMatch((err as Error).message, /[\x00-\x1f\x7f]/, 'no raw control character in the message')
          assert.match((err as Error).message, /\\x[0-9a-f]{2}/, 'the control character shown as \\xNN')
        }
      })
    }
    const routing = [
      'ops%evil.example@example.net', 'evil.example!ops@example.net', '@relay.example:ops@example.net', '@a.example,@b.example:ops@example.net',
      '"ops@evil.example"@example.net', 'ops@evil.example@example.net', '"a b"@example.net',
    ]
    for (const a of routing) {
      it(`refuses the routing syntax of ${JSON.stringify(a)}`, () => refuses(() => checkEmail(a), /routing syntax/))
    }
    const others = ['.ops@example.net', 'ops.@example.net', 'o..ps@example.net', 'ops@[192.0.2.1]', 'ops@192.0.2.1', 'é@example.net', 'ops\u2028@example.net', 'ops@bücher.example', `${'x'.repeat(250)}@example.net`]
    for (const a of others) {
      it(`refuses ${JSON.stringify(a.length > 30 ? `${a.length} chars` : a)}`, () => refuses(() => checkEmail(a), /bad contact address/))
    }
    it('says how to write an international domain', () => refuses(() => checkEmail('ops@bücher.example'), /xn--/))
  })

  describe('checkNewSlug (reserved slugs)', () => {
    const named = ['smtp', 'mail', 'mx', 'www', 'panel', 'admin', 'imap', 'pop', 'pop3', 'postmaster', 'webmail', 'autoconfig', 'autodiscover', 'abuse', 'mailer-daemon', 'localhost']
    for (const s of named) {
      it(`reserves "${s}"`, () => {
        assert.ok(RESERVED_SLUGS.includes(s))
        refuses(() => checkNewSlug(s), new RegExp(`^tenant slug "${s}" is reserved: .*pick another`))
        assert.equal(checkSlug(s), s, 'still a valid slug for tenants that already have it')
      })
    }
    for (const s of ['mta', 'mta7', 'mta-sts', 'mta-eu-1', 'mx1', 'mx-2', 'smtp2', 'mail3', 'ns1', 'relay4', 'imap1', 'pop2', 'out5', 'www2']) {
      it(`reserves the family name "${s}"`, () => refuses(() => checkNewSlug(s), /is reserved/))
    }
    for (const s of ['acme', 'mailchimp', 'smtpx', 'mx-shop', 'my-mail', 'www-shop', 'outdoors', 'relayco', 'a']) {
      it(`accepts "${s}"`, () => assert.equal(checkNewSlug(s), s))
    }
    it("reserves POSTA_HOSTNAME's first label, whatever its domain", () => {
      refuses(() => checkNewSlug('edge', { hostname: 'Edge.Other.Example.', serviceDomain: 'posta.example' }), /"edge" is reserved/)
      refuses(() => checkNewSlug('eu', { hostname: 'smtp.eu.posta.example', serviceDomain: 'posta.example' }), /"eu" is reserved/)
      assert.equal(checkNewSlug('other', { hostname: 'edge.other.example', serviceDomain: 'posta.example' }), 'other')
    })
    it("reserves the label of each own host name inside the service domain (the pool's HELO names)", () => {
      const own = { hostname: 'smtp.posta.example', serviceDomain: 'posta.example', names: ['gw.posta.example', 'x.y.posta.example', 'out.other.example'] }
      refuses(() => checkNewSlug('gw', own), /reserved/)
      refuses(() => checkNewSlug('y', own), /reserved/)
      assert.equal(checkNewSlug('x', own), 'x')
      assert.equal(checkNewSlug('other', own), 'other')
    })
    it('still refuses a bad slug as a bad slug', () => refuses(() => checkNewSlug('Bad_Slug'), /bad tenant slug/))
  })

  describe('parseRouteTarget', () => {
    const good: [string, { host: string; port: number }][] = [
      ['smtp.example.net', { host: 'smtp.example.net', port: 25 }],
      ['SMTP.Example.NET', { host: 'smtp.example.net', port: 25 }],
      ['smtp.example.net:587', { host: 'smtp.example.net', port: 587 }],
      ['localhost:2525', { host: 'localhost', port: 2525 }],
      ['10.0.0.1', { host: '10.0.0.1', port: 25 }],
      ['127.0.0.1:2525', { host: '127.0.0.1', port: 2525 }],
      ['[2001:db8::1]', { host: '2001:db8::1', port: 25 }],
      ['[2001:db8::1]:587', { host: '2001:db8::1', port: 587 }],
      ['[::1]:25', { host: '::1', port: 25 }],
      ['mx.example.net:1', { host: 'mx.example.net', port: 1 }],
      ['mx.example.net:65535', { host: 'mx.example.net', port: 65535 }],
    ]
    for (const [t, want] of good) it(`reads ${t}`, () => assert.deepEqual(parseRouteTarget(t), want))

    const bad = [
      'mx.example.net:0', 'mx.example.net:70000', 'mx.example.net:65536', 'mx.example.net:', 'mx.example.net:x', 'mx.example.net:-1',
      'mx.example.net:25:25', '2001:db8::1', '[2001:db8::1', '[2001:zz::1]:25', '[1.2.3.4]:25', '[]:25', '', ':25', 'mx', 'garbage!',
      'mx example.net', 'smtp://mx.example.net', '-mx.example.net', '999.1.1.1',
    ]
    for (const t of bad) it(`refuses ${JSON.stringify(t)}`, () => refuses(() => parseRouteTarget(t), /bad route target/))
  })
})
