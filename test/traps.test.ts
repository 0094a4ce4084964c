// lib/traps.ts, lib/bans.ts and lib/suppression.ts against a real Redis.
import { strict as assert } from 'node:assert'
import { banReason, banTenant, bansOf } from '../lib/bans'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import { setPackage } from '../lib/packages'
import type { RedisClient } from '../lib/redis'
import { loadSettings } from '../lib/settings'
import { isHardBounce, listSuppressed, suppress, suppressedCount, suppressedUntil, unsuppress } from '../lib/suppression'
import { createTenant, getTenant } from '../lib/tenants'
import { addTrap, importTraps, matchTrap, normaliseEntry, recordTrapHit, removeTrap, trapHits } from '../lib/traps'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

describe('traps, bans, suppression (real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient
  const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example' })
  const pkg = uniqueName('p')

  before(async () => {
    r = await testRedis()
    redis = r.client
    await setPackage(redis, pkg, 1e9)
  })
  after(async () => {
    await r?.close()
  })

  const tenant = async (contact = `ops@${uniqueName('c')}.example`) =>
    (await createTenant(redis, settings, { slug: uniqueName('t'), package: pkg, contact })).tenant

  it('matches a trap by its normalised address, or by its domain', async () => {
    const d = `${uniqueName('d')}.example`
    await addTrap(redis, `"Trap.One"@${d.toUpperCase()}.`, 'pristine', 'n')
    await addTrap(redis, `@${uniqueName('whole')}.example`, 'recycled')
    assert.equal((await matchTrap(redis, `trap.one@${d}`))?.class, 'pristine')
    assert.equal(await matchTrap(redis, `trap.two@${d}`), null)
    const whole = normaliseEntry(`@${d}`)
    await addTrap(redis, whole, 'typo')
    assert.equal((await matchTrap(redis, `anyone@${d}`))?.entry, whole, 'the domain entry catches every address')
    assert.equal((await matchTrap(redis, `trap.one@${d}`))?.entry, `trap.one@${d}`, 'the exact entry wins')
    assert.equal(await matchTrap(redis, 'not an address'), null)
    await removeTrap(redis, whole)
    await assert.rejects(removeTrap(redis, whole), NotFoundError)
    await assert.rejects(addTrap(redis, `x@${d}`, 'hot'), InputError)
  })

  it('imports good lines and reports the others', async () => {
    const d = `${uniqueName('i')}.example`
    const res = await importTraps(redis, `# c\na@${d} pristine note here\n\n@${d} typo\nnope\nb@${d} mild\n`)
    assert.equal(res.imported, 2)
    assert.deepEqual(res.skipped.map((s) => s.line), [5, 6])
    assert.equal((await matchTrap(redis, `a@${d}`))?.note, 'note here')
  })

  it('counts hits and typo strikes per tenant', async () => {
    const t = await tenant()
    const typo = { entry: '@x.example', class: 'typo' as const, note: '', added_at: '' }
    assert.deepEqual(await recordTrapHit(redis, t, typo), { hits: 1, strikes: 1 })
    assert.deepEqual(await recordTrapHit(redis, t, { ...typo, class: 'pristine' }), { hits: 2, strikes: 1 })
    assert.equal(await trapHits(redis, t), 2)
  })

  it('a ban closes the tenant, appends to the ledger with evidence, and blocks slug, contact and domain', async () => {
    const d = `${uniqueName('corp')}.example`
    const t = await tenant(`Boss+x@${d}`)
    await redis.sadd(keys.tenantSenders(t), 'news.example')
    const b = await banTenant(redis, t, 'mail to a pristine spamtrap', 'posta-trap', { trap: '@x.example' })
    assert.equal((await getTenant(redis, t))?.status, 'closed')
    assert.equal(b.contact_domain, d)
    assert.deepEqual(b.sender_domains, ['news.example'])
    assert.equal((await bansOf(redis, t)).length, 1)
    assert.match((await banReason(redis, t, 'x@other.example'))!, /name/)
    assert.match((await banReason(redis, uniqueName('n'), `boss@${d.toUpperCase()}`))!, /contact/)
    assert.match((await banReason(redis, uniqueName('n'), `other@${d}`))!, /contacts at/)
    assert.equal(await banReason(redis, uniqueName('n'), 'someone@elsewhere.example'), null)
    await assert.rejects(createTenant(redis, settings, { slug: t, package: pkg, contact: 'z@z.example' }), /banned account; bans cannot be undone/)
    await assert.rejects(banTenant(redis, t, '  ', 'operator'), InputError)
    await banTenant(redis, t, 'second look', 'operator')
    assert.equal((await bansOf(redis, t)).length, 2, 'append-only: a second ban is a second entry')
  })

  it('suppresses addresses per tenant until they expire, and tells hard bounces from others', async () => {
    const [t, u] = [await tenant(), await tenant()]
    const now = Date.now()
    await suppress(redis, t, 'Gone@Dead.example', 30, now)
    assert.ok((await suppressedUntil(redis, t, 'gone@dead.example', now))!.getTime() - now === 30 * 86400000)
    assert.equal(await suppressedUntil(redis, u, 'gone@dead.example', now), null, 'per tenant')
    assert.equal(await suppressedUntil(redis, t, 'gone@dead.example', now + 31 * 86400000), null, 'expired')
    assert.equal(await suppressedCount(redis, t, now), 1)
    assert.deepEqual((await listSuppressed(redis, t, now)).map((s) => s.address), ['gone@dead.example'])
    await unsuppress(redis, t, 'GONE@dead.example')
    await assert.rejects(unsuppress(redis, t, 'gone@dead.example'), NotFoundError)
    assert.ok(isHardBounce('550', '5.1.1', 'no such user'))
    assert.ok(isHardBounce(550, undefined, 'Recipient address rejected: User unknown'))
    assert.ok(!isHardBounce('550', '5.7.1', 'message rejected as spam'), 'a policy refusal is not a dead address')
    assert.ok(!isHardBounce('451', '4.1.1', 'user unknown, try later'), 'temporary')
    assert.ok(!isHardBounce('552', '5.2.2', 'mailbox full'))
  })
})
