// lib/addresses.ts: the normalisation that trap matching and ban checks rely on.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { canonicalContact, domainAndParents, normaliseAddress, parseDomainList } from '../lib/addresses'
import { InputError } from '../lib/errors'

describe('addresses', () => {
  it('normalises case, trailing dots, angle brackets and quoted local parts', () => {
    assert.equal(normaliseAddress('User@Example.NET.').address, 'user@example.net')
    assert.equal(normaliseAddress('<a@b.example>').address, 'a@b.example')
    assert.equal(normaliseAddress(' <a@b.example> ').address, 'a@b.example')
    assert.equal(normaliseAddress('"Old.Box"@b.example').address, 'old.box@b.example')
    assert.equal(normaliseAddress('"Old.Box"@B.EXAMPLE.').address, normaliseAddress('old.box@b.example').address)
    assert.equal(normaliseAddress('"we\\"ird"@b.example').address, 'we"ird@b.example')
    assert.equal(normaliseAddress('"a b"@b.example').address, 'a b@b.example', 'a quoted local part may hold a space')
    assert.deepEqual(normaliseAddress('x@Sub.B.Example'), { local: 'x', domain: 'sub.b.example', address: 'x@sub.b.example' })
  })

  it('refuses what is not an address, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /expected local@domain/], ['plain', /expected local@domain/], ['@b.example', /expected local@domain/], ['a@', /expected local@domain/],
      ['a@not_a_domain', /is not a domain/], ['a@localhost', /is not a domain/], [`${'x'.repeat(65)}@b.example`, /longer than 64/],
      ['a b@c.example', /bad local part/], ['a@b@c.example', /bad local part/], ['a..b@c.example', /bad local part/],
      ['.a@c.example', /bad local part/], ['a.@c.example', /bad local part/], ['a,b@c.example', /bad local part/], ['""@c.example', /bad quoted/],
    ]
    for (const [input, why] of bad) assert.throws(() => normaliseAddress(input), (e: Error) => e instanceof InputError && why.test(e.message), input)
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

  it('reads a domain list, and the shipped free-mail list holds the big providers', () => {
    assert.deepEqual([...parseDomainList('# comment\nGmail.com\n\n  libero.it  # Italian\nnot a domain\nexample.net.\n')], ['gmail.com', 'libero.it', 'example.net'])
    const shipped = parseDomainList(fs.readFileSync(path.join(__dirname, '..', 'config', 'posta-freemail'), 'utf8'))
    for (const d of ['gmail.com', 'googlemail.com', 'outlook.com', 'hotmail.com', 'yahoo.com', 'icloud.com', 'libero.it', 'yahoo.it']) assert.ok(shipped.has(d), d)
    assert.ok(!shipped.has('acme.example'))
  })
})
