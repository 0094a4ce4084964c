// lib/addresses.ts: the normalisation that trap matching and ban checks rely on.
import { strict as assert } from 'node:assert'
import { canonicalContact, FREEMAIL, normaliseAddress } from '../lib/addresses'
import { InputError } from '../lib/errors'

describe('addresses', () => {
  it('normalises case, trailing dots, angle brackets and quoted local parts', () => {
    assert.equal(normaliseAddress('User@Example.NET.').address, 'user@example.net')
    assert.equal(normaliseAddress('<a@b.example>').address, 'a@b.example')
    assert.equal(normaliseAddress('"Old.Box"@b.example').address, 'old.box@b.example')
    assert.equal(normaliseAddress('"we\\"ird"@b.example').address, 'we"ird@b.example')
    assert.deepEqual(normaliseAddress('x@Sub.B.Example'), { local: 'x', domain: 'sub.b.example', address: 'x@sub.b.example' })
  })
  it('refuses what is not an address', () => {
    for (const bad of ['', 'plain', '@b.example', 'a@', 'a@not_a_domain', 'a@localhost', `${'x'.repeat(65)}@b.example`, 'a b@c.example']) {
      assert.throws(() => normaliseAddress(bad), InputError, bad)
    }
  })
  it('canonical contacts drop plus tags everywhere and dots where the provider ignores them', () => {
    assert.equal(canonicalContact('Ops+Relay@Acme.example'), 'ops@acme.example')
    assert.equal(canonicalContact('first.last@acme.example'), 'first.last@acme.example')
    assert.equal(canonicalContact('First.Last+x@GoogleMail.com'), 'firstlast@gmail.com')
    assert.equal(canonicalContact('f.i.r.s.t.l.a.s.t@gmail.com'), canonicalContact('firstlast@googlemail.com'))
  })
  it('knows the public mailbox providers whose domains are never banned', () => {
    for (const d of ['gmail.com', 'outlook.com', 'libero.it', 'yahoo.it']) assert.ok(FREEMAIL.has(d), d)
    assert.ok(!FREEMAIL.has('acme.example'))
  })
})
