// lib/addresses.ts: the one normalisation that traps, suppression, bans and the ledger rely on.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { canonicalContact, domainAndParents, inDomainSet, normaliseAddress, normaliseDomain, parseDomainList } from '../lib/addresses'
import { InputError } from '../lib/errors'

// Haraka's own envelope parser: what it computes as `host` is the domain outbound looks up and delivers to.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Address } = require('@haraka/email-address') as { Address: new (s: string) => { user: string; host: string } }

describe('addresses', () => {
  it('normalises case, trailing dots, angle brackets and quoted local parts', () => {
    assert.equal(normaliseAddress('User@Example.NET.').address, 'user@example.net')
    assert.equal(normaliseAddress('<a@b.example>').address, 'a@b.example')
    assert.equal(normaliseAddress(' <a@b.example> ').address, 'a@b.example')
    assert.equal(normaliseAddress('"Old.Box"@b.example').address, 'old.box@b.example')
    assert.equal(normaliseAddress('"Old.Box"@B.EXAMPLE.').address, normaliseAddress('old.box@b.example').address)
    assert.equal(normaliseAddress('"we\\"ird"@b.example').local, 'we"ird')
    assert.equal(normaliseAddress('"we\\"ird"@b.example').address, '"we\\"ird"@b.example', 'quoted again where it must be')
    assert.equal(normaliseAddress('"a b"@b.example').address, '"a b"@b.example', 'a quoted local part may hold a space')
    assert.deepEqual(normaliseAddress('x@Sub.B.Example'), { local: 'x', mailbox: 'x', domain: 'sub.b.example', address: 'x@sub.b.example', base: 'x@sub.b.example' })
    assert.deepEqual(normaliseAddress('Bait+Promo@b.example'), { local: 'bait+promo', mailbox: 'bait', domain: 'b.example', address: 'bait+promo@b.example', base: 'bait@b.example' })
    assert.equal(normaliseAddress('+all@b.example').base, '+all@b.example', 'a local part that is all tag stays')
  })

  it('refuses what is not an address, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /expected local@domain/], ['plain', /expected local@domain/], ['@b.example', /expected local@domain/], ['a@', /expected local@domain/],
      ['a@not_a_domain', /expected a name like example.net/], ['a@localhost', /expected a name like example.net/], [`${'x'.repeat(65)}@b.example`, /longer than 64/],
      ['a@[127.0.0.1]', /expected a name like example.net/], ['a@1.2.3.4', /expected a name like example.net/], ['a@b%41.example', /expected a name/],
      ['a@tr\u200dap.example', /not a valid international domain name/], ['a@tr\u3000ap.example', /not a valid international/],
      ['a@xn--zz.example', /not valid Punycode/], ['bait＠x@b.example', /bad local part/], ['bait（x）@b.example', /bad local part/],
      ['a\u0085b@b.example', /bad local part/], [`${'\u337f'.repeat(21)}@b.example`, /longer than 64 octets/],
      ['a b@c.example', /bad local part/], ['a@b@c.example', /bad local part/], ['a..b@c.example', /bad local part/],
      ['.a@c.example', /bad local part/], ['a.@c.example', /bad local part/], ['a,b@c.example', /bad local part/], ['""@c.example', /bad quoted/],
    ]
    for (const [input, why] of bad) assert.throws(() => normaliseAddress(input), (e: Error) => e instanceof InputError && why.test(e.message), input)
  })

  it('maps a domain exactly as Haraka does before it delivers (UTS #46: url.domainToASCII)', () => {
    const spellings = [
      'ｔｒａｐ.test', 'trap。test', 'trap．test', 'trap｡test', 'tr\u00adap.test', 'tr\u200bap.test', 'tr\u2060ap.test', 'tr\ufeffap.test',
      'TRAP.TEST', 'ＴＲＡＰ.test', 'tr\u034fap.test',
    ]
    for (const s of spellings) {
      assert.equal(normaliseDomain(s), 'trap.test', JSON.stringify(s))
      assert.equal(normaliseDomain(s), new Address(`<bait@${s}>`).host, `Haraka's host for ${JSON.stringify(s)}`)
    }
    for (const s of ['bücher.example', 'BÜCHER.example', 'bu\u0308cher.example', 'ß.example', 'ﬁ.example', 'xn--bcher-kva.example', '例え.jp', 'Ⅻ.example']) {
      assert.equal(normaliseDomain(s), new Address(`<x@${s}>`).host, JSON.stringify(s))
    }
    assert.equal(normaliseDomain('bücher.example'), 'xn--bcher-kva.example')
    assert.equal(normaliseDomain('ß.example'), 'xn--zca.example', 'non-transitional, like the delivery: ß is not ss')
    assert.equal(normaliseDomain('trap.test。'), 'trap.test', 'a trailing full stop is a trailing dot')
    // what Haraka's parser refuses, the normaliser refuses too
    for (const s of ['tr\u200dap.test', 'tr\u200cap.test', 'tr\u3000ap.test']) {
      assert.throws(() => normaliseDomain(s), InputError, s)
      assert.throws(() => new Address(`<x@${s}>`), /invalid IDN domain/, `Haraka refuses ${s} too`)
    }
    // Haraka would look up a bogus A-label as written; the normaliser refuses it rather than guess
    assert.equal(new Address('<x@xn--zz.test>').host, 'xn--zz.test')
    assert.throws(() => normaliseDomain('xn--zz.test'), /not valid Punycode/)
  })

  it('maps the local part to the widest form a mailbox server could read it as', () => {
    for (const s of ['ＢＡＩＴ', 'ba\u00adit', 'ba\u200bit', 'Bait', 'ｂａｉｔ', 'b\u034fait']) assert.equal(normaliseAddress(`${s}@trap.test`).local, 'bait', JSON.stringify(s))
    assert.equal(normaliseAddress('bait＋promo@trap.test').base, 'bait@trap.test', 'a fullwidth plus is a plus')
    assert.equal(normaliseAddress('"Bait"@trap.test').address, 'bait@trap.test')
  })

  it('is idempotent: normalise(normalise(x)) = normalise(x)', () => {
    const samples = [
      'User@Example.NET.', '"Old.Box"@B.EXAMPLE.', '"we\\"ird"@b.example', '"a b"@b.example', '"a\\\\b"@b.example', '"a..b"@b.example', '".a"@b.example',
      'Bait+Promo@ｔｒａｐ.test', 'ＢＡＩＴ@trap。test', 'ba\u00adit@tr\u200bap.test', 'İstanbul@bücher.example', 'ǅ@ß.example', 'ﬃ@ﬁ.example',
      '\u3164x@b.example', 'x\u1160@b.example', 'Ⅻ+Ⅻ@Ⅻ.example', 'ΣΑΣ@b.example', 'ﬀ\u0307@b.example', '"a@b"@c.example', '"(x)"@c.example',
    ]
    // and a deterministic spread of mixed characters (letters, marks, compatibility forms, ignorables, specials)
    const alphabet = [...'aZ.+-_~!#$%&\'*/=?^`{|}'].concat(['ü', 'u\u0308', 'ß', 'İ', 'ı', 'ﬁ', 'Ａ', '＋', '\u00ad', '\u200b', '\u3164', 'ǅ', 'Σ', 'ς', 'Ⅻ', '①', 'ｶ', 'ﾞ', '㍿', 'ﬃ', '\u0345'])
    let seed = 7
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n
    for (let i = 0; i < 2000; i++) {
      let local = ''
      for (let j = 1 + rnd(10); j > 0; j--) local += alphabet[rnd(alphabet.length)]
      samples.push(`${local}@b.example`, `"${local.replace(/["\\]/g, '\\$&')} x"@b.example`)
    }
    let checked = 0
    for (const s of samples) {
      let once
      try {
        once = normaliseAddress(s)
      } catch (e) {
        assert.ok(e instanceof InputError, `${JSON.stringify(s)}: ${(e as Error).message}`)
        continue
      }
      assert.deepEqual(normaliseAddress(once.address), once, JSON.stringify(s))
      assert.equal(normaliseAddress(once.base).address, once.base, JSON.stringify(s))
      assert.equal(normaliseDomain(once.domain), once.domain)
      checked++
    }
    assert.ok(checked > 1000, `most samples normalise (${checked})`)
  })

  it('canonical contacts drop plus tags everywhere and dots where the provider ignores them', () => {
    assert.equal(canonicalContact('Ops+Relay@Acme.example'), 'ops@acme.example')
    assert.equal(canonicalContact('first.last@acme.example'), 'first.last@acme.example', 'dots matter at most providers')
    assert.equal(canonicalContact('First.Last+x@GoogleMail.com'), 'firstlast@gmail.com')
    assert.equal(canonicalContact('f.i.r.s.t.l.a.s.t@gmail.com'), canonicalContact('firstlast@googlemail.com'))
    assert.equal(canonicalContact('+tag@acme.example'), '+tag@acme.example', 'a local part that is all tag stays')
  })

  it('lists a domain and its parents down to two labels', () => {
    assert.deepEqual(domainAndParents('A.b.Example.NET.'), ['a.b.example.net', 'b.example.net', 'example.net'])
    assert.deepEqual(domainAndParents('example.net'), ['example.net'])
  })

  it('tells whether a domain or one of its parents is in a set', () => {
    const set = new Set(['gmail.com', 'example.net'])
    assert.ok(inDomainSet(set, 'gmail.com'))
    assert.ok(inDomainSet(set, 'eu.mail.example.net'))
    assert.ok(!inDomainSet(set, 'notgmail.com'))
    assert.ok(!inDomainSet(set, 'com'))
  })

  it('reads a domain list, each domain normalised like a delivered one', () => {
    assert.deepEqual([...parseDomainList('# comment\nGmail.com\n\n  libero.it  # Italian\nnot a domain\nexample.net.\nｗｅｂ。de\nbücher.example\n')], ['gmail.com', 'libero.it', 'example.net', 'web.de', 'xn--bcher-kva.example'])
    const shipped = parseDomainList(fs.readFileSync(path.join(__dirname, '..', 'config', 'posta-freemail'), 'utf8'))
    for (const d of ['tin.it', 'tim.it', 'fastwebnet.it']) assert.ok(shipped.has(d), `${d}: an operator addition the package lacks`)
    assert.ok(!shipped.has('acme.example'))
  })
})
