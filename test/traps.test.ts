// lib/traps.ts: the trap list, its import format, matching and hit counting, against a real Redis.
import { strict as assert } from 'node:assert'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import type { RedisClient } from '../lib/redis'
import { addTrap, importTraps, listTraps, makeTrap, matchTrap, normaliseEntry, parseTrapFile, recordTrapHit, removeTrap, trapHits } from '../lib/traps'
import { uniqueName, useTestRedis } from '../testkit/redis'

describe('traps', () => {
  describe('entries (pure)', () => {
    it('normalises addresses and domains, and refuses malformed entries with the reason', () => {
      assert.equal(normaliseEntry(' "Bait.One"@Example.NET. '), 'bait.one@example.net')
      assert.equal(normaliseEntry('@GMIAL.example.'), '@gmial.example')
      assert.equal(normaliseEntry('@ｇｍｉａｌ。example'), '@gmial.example', 'an entry is stored as the delivery maps it')
      assert.equal(normaliseEntry('@Bücher.example'), '@xn--bcher-kva.example')
      assert.equal(normaliseEntry('Bait+List@trap.example'), 'bait+list@trap.example', 'an entry with a +tag matches that tag only')
      const bad: [string, RegExp][] = [
        ['', /missing trap/], ['bait', /bad address "bait": expected local@domain/], ['@', /bad trap domain "": expected a name like example.net/],
        ['@not_a_domain', /bad trap domain "not_a_domain"/], ['a b@example.net', /bad local part/], ['bait@example', /expected a name like example.net/],
        ['@tr\u200dap.example', /bad trap domain .*not a valid international domain name/], ['@xn--zz.example', /not valid Punycode/],
      ]
      for (const [e, why] of bad) assert.throws(() => normaliseEntry(e), (err: Error) => err instanceof InputError && why.test(err.message), e)
    })

    it('checks the class (any case) and the note', () => {
      assert.equal(makeTrap('a@b.example', 'Pristine').class, 'pristine')
      assert.throws(() => makeTrap('a@b.example', 'spicy'), /bad trap class "spicy": use pristine, recycled, typo/)
      assert.throws(() => makeTrap('a@b.example', 'typo', 'x'.repeat(501)), /note is longer than 500/)
    })

    it('parses an import file: good lines, and each skipped line with its number and reason', () => {
      const { traps, skipped } = parseTrapFile([
        '# traps bought from nobody', // 1
        'one@b.example pristine from a honeypot   # trailing comment', // 2
        '', // 3
        '@gmial.example TYPO', // 4
        'broken-line', // 5
        'two@b.example unknown', // 6
        '@bad_domain recycled', // 7
        'ONE@B.example. recycled', // 8: the same entry as line 2
        'not-an-address pristine', // 9
      ].join('\r\n'))
      assert.deepEqual(traps.map((t) => [t.entry, t.class, t.note]), [['one@b.example', 'pristine', 'from a honeypot'], ['@gmial.example', 'typo', '']])
      assert.deepEqual(skipped.map((s) => s.line), [5, 6, 7, 8, 9])
      assert.match(skipped[0].reason, /missing class/)
      assert.match(skipped[1].reason, /bad trap class "unknown"/)
      assert.match(skipped[2].reason, /bad trap domain "bad_domain"/)
      assert.match(skipped[3].reason, /duplicate of line 2 \(one@b\.example\)/)
      assert.match(skipped[4].reason, /bad address "not-an-address"/)
      assert.equal(skipped[0].text, 'broken-line')
    })
  })

  describe('in Redis', () => {
    const db = useTestRedis()
    let redis: RedisClient
    before(() => {
      redis = db.client
    })

    it('matches a recipient by its normalised address, its base mailbox, or its domain and parents; the most specific entry wins', async () => {
      const d = `${uniqueName('d')}.example`
      await addTrap(redis, `"Trap.One"@${d.toUpperCase()}.`, 'pristine', 'n')
      assert.equal((await matchTrap(redis, `trap.one@${d}`))?.class, 'pristine')
      assert.equal((await matchTrap(redis, `TRAP.ONE@${d.toUpperCase()}.`))?.class, 'pristine')
      assert.equal((await matchTrap(redis, `"trap.one"@${d}`))?.class, 'pristine')
      assert.equal((await matchTrap(redis, `trap.one+promo@${d}`))?.entry, `trap.one@${d}`, 'a +tag is delivered to the base mailbox')
      assert.equal(await matchTrap(redis, `trap.two@${d}`), null)
      assert.equal(await matchTrap(redis, `trap.one@x${d}`), null, 'another domain')
      await addTrap(redis, `@${d}`, 'typo')
      assert.equal((await matchTrap(redis, `anyone@${d}`))?.entry, `@${d}`, 'the domain entry catches every address')
      assert.equal((await matchTrap(redis, `trap.one@${d}`))?.entry, `trap.one@${d}`, 'the exact entry wins')
      assert.equal((await matchTrap(redis, `anyone@a.b.${d}`))?.entry, `@${d}`, 'a domain entry covers its subdomains')
      await addTrap(redis, `@b.${d}`, 'recycled')
      assert.equal((await matchTrap(redis, `anyone@a.b.${d}`))?.entry, `@b.${d}`, 'the nearest domain entry wins')
      await assert.rejects(matchTrap(redis, 'not an address'), InputError, 'an address that cannot be matched is an error, never a miss')
      assert.equal(await removeTrap(redis, `@${d.toUpperCase()}`), `@${d}`)
      await assert.rejects(removeTrap(redis, `@${d}`), (e: Error) => e instanceof NotFoundError && /no trap "@.*": see "posta trap list"/.test(e.message))
      await assert.rejects(addTrap(redis, `x@${d}`, 'hot'), InputError)
    })

    it('matches every spelling that is delivered to the trap: fullwidth, ideographic full stop, soft hyphen, zero-width space', async () => {
      const label = uniqueName('bait').replace(/[^a-z0-9]/g, '')
      const d = `${label}.test`
      await addTrap(redis, `bait@${d}`, 'pristine')
      const full = [...label].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)).join('') // ｔｒａｐ
      const spellings = [
        `bait@${full}.test`, `bait@${label}\u3002test`, `bait@${label}\uff0etest`, `bait@${label.slice(0, 2)}\u00ad${label.slice(2)}.test`,
        `bait@${label.slice(0, 2)}\u200b${label.slice(2)}.test`, `bait@${label.toUpperCase()}.TEST`, `ＢＡＩＴ@${d}`, `ba\u00adit@${d}`, `bait＋x@${d}`,
      ]
      for (const s of spellings) assert.equal((await matchTrap(redis, s))?.entry, `bait@${d}`, JSON.stringify(s))
      const uni = `${uniqueName('u').replace(/[^a-z0-9]/g, '')}ü.test`
      await addTrap(redis, `@${uni}`, 'pristine')
      assert.equal((await matchTrap(redis, `x@${uni.replace('ü', 'u\u0308')}`))?.entry, `@${new URL(`http://${uni}`).hostname}`, 'NFC and NFD are one domain')
    })

    it('adding an entry again changes its class and note; the list is sorted by domain', async () => {
      const d = `${uniqueName('s')}.example`
      await addTrap(redis, `b@${d}`, 'recycled', 'first')
      await addTrap(redis, `B@${d}`, 'pristine', 'second')
      await addTrap(redis, `@${d}`, 'typo')
      const mine = (await listTraps(redis)).filter((t) => t.entry.endsWith(d))
      assert.deepEqual(mine.map((t) => [t.entry, t.class, t.note]), [[`@${d}`, 'typo', ''], [`b@${d}`, 'pristine', 'second']])
    })

    it('imports the good lines of a file and reports the others', async () => {
      const d = `${uniqueName('i')}.example`
      const res = await importTraps(redis, `# c\na@${d} pristine note here\n\n@${d} typo\nnope\nb@${d} mild\n`)
      assert.equal(res.imported, 2)
      assert.deepEqual(res.skipped.map((s) => s.line), [5, 6])
      assert.equal((await matchTrap(redis, `a@${d}`))?.note, 'note here')
      assert.deepEqual(await importTraps(redis, '# nothing\n\nbad line here\n'), { imported: 0, skipped: [{ line: 3, text: 'bad line here', reason: 'bad address "bad": expected local@domain' }] })
    })

    it('counts hits per class; a typo strike counts once per transaction and trap domain, within the window', async () => {
      const t = uniqueName('t')
      const typo = makeTrap('@x.example', 'typo')
      const other = makeTrap('@y.example', 'typo')
      const now = Date.now()
      const day = 86400000
      assert.deepEqual(await recordTrapHit(redis, t, typo, { tx: 'tx1', windowMs: 30 * day, now: now - 40 * day }), { hits: 1, strikes: 1 })
      assert.deepEqual(await recordTrapHit(redis, t, typo, { tx: 'tx2', windowMs: 30 * day, now }), { hits: 2, strikes: 1 }, 'the old strike left the window')
      assert.deepEqual(await recordTrapHit(redis, t, typo, { tx: 'tx2', windowMs: 30 * day, now }), { hits: 3, strikes: 1 }, 'another address of the domain, same transaction')
      assert.deepEqual(await recordTrapHit(redis, t, makeTrap('a@x.example', 'typo'), { tx: 'tx2', windowMs: 30 * day, now }), { hits: 4, strikes: 1 }, 'an address entry of the same domain')
      assert.deepEqual(await recordTrapHit(redis, t, other, { tx: 'tx2', windowMs: 30 * day, now }), { hits: 5, strikes: 2 }, 'another trap domain')
      assert.deepEqual(await recordTrapHit(redis, t, typo, { tx: 'tx3', windowMs: 30 * day, now }), { hits: 6, strikes: 3 }, 'another transaction')
      assert.deepEqual(await recordTrapHit(redis, t, makeTrap('p@x.example', 'pristine'), { tx: 'tx4', windowMs: 30 * day, now }), { hits: 7, strikes: 0 })
      assert.equal(await trapHits(redis, t), 7)
      assert.equal(await trapHits(redis, uniqueName('none')), 0)
      assert.deepEqual(await redis.hgetall(keys.trapHits(t)), { hits: '7', typo: '6', pristine: '1' })
      assert.ok((await redis.pttl(keys.trapStrikes(t))) > 29 * day, 'the strikes expire with the window')
      const forever = uniqueName('t')
      await recordTrapHit(redis, forever, typo, { tx: 'a', windowMs: 0, now: now - 400 * day })
      assert.equal((await recordTrapHit(redis, forever, typo, { tx: 'b', windowMs: 0, now })).strikes, 2, 'window 0: strikes count for ever')
    })
  })
})
