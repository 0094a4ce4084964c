// lib/password.ts: generated passwords, scrypt hashes in a self-describing string, constant-time verification.
import { strict as assert } from 'node:assert'
import { generatePassword, hashPassword, SCRYPT, verifyPassword } from '../lib/password'

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789'

describe('password', () => {
  describe('generatePassword', () => {
    it('is 24 characters by default and honours a given length', () => {
      assert.equal(generatePassword().length, 24)
      for (const n of [1, 8, 32, 100, 257]) assert.equal(generatePassword(n).length, n)
    })

    it('uses only the look-alike-free alphabet', () => {
      const all = Array.from({ length: 200 }, () => generatePassword()).join('')
      for (const ch of all) assert.ok(ALPHABET.includes(ch), `unexpected character ${JSON.stringify(ch)}`)
      for (const lookAlike of ['0', 'O', '1', 'l', 'I']) assert.ok(!all.includes(lookAlike), lookAlike)
    })

    it('draws from the whole alphabet', () => {
      const seen = new Set(Array.from({ length: 300 }, () => generatePassword()).join(''))
      assert.equal(seen.size, ALPHABET.length)
    })

    it('never repeats over many draws', () => {
      const n = 20000
      const set = new Set(Array.from({ length: n }, () => generatePassword()))
      assert.equal(set.size, n)
    })
  })

  describe('hashPassword and verifyPassword', () => {
    let pw: string
    let stored: string
    before(async () => {
      pw = generatePassword()
      stored = await hashPassword(pw)
    })

    it('stores scrypt$N$r$p$salt$hash with base64 salt and hash', () => {
      const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$/.exec(stored)
      assert.ok(m, stored)
      assert.deepEqual([Number(m[1]), Number(m[2]), Number(m[3])], [SCRYPT.N, SCRYPT.r, SCRYPT.p])
      assert.equal(Buffer.from(m[4], 'base64').length, 16)
      assert.equal(Buffer.from(m[5], 'base64').length, SCRYPT.keylen)
      assert.ok(!stored.includes(pw))
    })

    it('verifies the right password', async () => {
      assert.equal(await verifyPassword(pw, stored), true)
    })

    it('refuses a wrong password, a near miss and the empty string', async () => {
      assert.equal(await verifyPassword(`${pw}x`, stored), false)
      assert.equal(await verifyPassword(pw.slice(0, -1), stored), false)
      assert.equal(await verifyPassword(pw.toLowerCase() === pw ? pw.toUpperCase() : pw.toLowerCase(), stored), false)
      assert.equal(await verifyPassword('', stored), false)
    })

    it('salts: the same password hashes differently each time, and each hash verifies', async () => {
      const a = await hashPassword('same password')
      const b = await hashPassword('same password')
      assert.notEqual(a, b)
      assert.notEqual(a.split('$')[4], b.split('$')[4], 'different salts')
      assert.equal(await verifyPassword('same password', a), true)
      assert.equal(await verifyPassword('same password', b), true)
    })

    it('reads its parameters from the stored string', async () => {
      const light = await hashPassword('pw', { N: 1024, r: 8, p: 1, keylen: 32 })
      assert.match(light, /^scrypt\$1024\$8\$1\$/)
      assert.equal(await verifyPassword('pw', light), true)
      assert.equal(await verifyPassword('pW', light), false)
    })

    it('handles non-ASCII passwords', async () => {
      const h = await hashPassword('pässwörd ✓', { N: 1024, r: 8, p: 1, keylen: 32 })
      assert.equal(await verifyPassword('pässwörd ✓', h), true)
      assert.equal(await verifyPassword('passwort ✓', h), false)
    })

    it('returns false for a tampered hash or salt', async () => {
      const parts = stored.split('$')
      const hash = Buffer.from(parts[5], 'base64')
      hash[0] ^= 1
      assert.equal(await verifyPassword(pw, [...parts.slice(0, 5), hash.toString('base64')].join('$')), false)
      const salt = Buffer.from(parts[4], 'base64')
      salt[3] ^= 0x80
      assert.equal(await verifyPassword(pw, [...parts.slice(0, 4), salt.toString('base64'), parts[5]].join('$')), false)
      // a weaker work factor with the same salt and hash is a different key, not a shortcut
      assert.equal(await verifyPassword(pw, ['scrypt', '1024', ...parts.slice(2)].join('$')), false)
    })

    describe('malformed stored strings return false, never throw', () => {
      const salt = Buffer.alloc(16, 7).toString('base64')
      const hash = Buffer.alloc(32, 9).toString('base64')
      const malformed: [string, unknown][] = [
        ['empty', ''],
        ['null', null],
        ['undefined', undefined],
        ['plain text', 'not a hash'],
        ['the password itself', 'hunter2'],
        ['other scheme', `bcrypt$16384$8$1$${salt}$${hash}`],
        ['too few fields', `scrypt$16384$8$1$${salt}`],
        ['too many fields', `scrypt$16384$8$1$${salt}$${hash}$x`],
        ['non-numeric N', `scrypt$abc$8$1$${salt}$${hash}`],
        ['fractional N', `scrypt$1024.5$8$1$${salt}$${hash}`],
        ['N not a power of two', `scrypt$1000$8$1$${salt}$${hash}`],
        ['N = 0', `scrypt$0$8$1$${salt}$${hash}`],
        ['N = 1', `scrypt$1$8$1$${salt}$${hash}`],
        ['negative N', `scrypt$-16384$8$1$${salt}$${hash}`],
        ['N too large', `scrypt$${2 ** 21}$8$1$${salt}$${hash}`],
        ['r = 0', `scrypt$16384$0$1$${salt}$${hash}`],
        ['p = 0', `scrypt$16384$8$0$${salt}$${hash}`],
        ['negative p', `scrypt$16384$8$-1$${salt}$${hash}`],
        ['memory above the limit', `scrypt$${2 ** 20}$32$1$${salt}$${hash}`],
        ['empty fields', `scrypt$$$$$`],
        ['short hash', `scrypt$16384$8$1$${salt}$${Buffer.alloc(8).toString('base64')}`],
        ['empty hash', `scrypt$16384$8$1$${salt}$`],
        ['hash not base64', `scrypt$16384$8$1$${salt}$!!!!`],
      ]
      for (const [what, value] of malformed) {
        it(what, async () => {
          assert.equal(await verifyPassword('hunter2', value as string), false)
        })
      }
    })
  })
})
