// lib/suppression.ts: per-tenant suppression of hard-bounced addresses (real Redis), and which replies count as one.
import { strict as assert } from 'node:assert'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import type { RedisClient } from '../lib/redis'
import { isHardBounce, listSuppressed, suppress, suppressedCount, suppressedUntil, unsuppress } from '../lib/suppression'
import { uniqueName, useTestRedis } from '../testkit/redis'

const DAY = 86400000

describe('suppression', () => {
  describe('in Redis', () => {
    const db = useTestRedis()
    let redis: RedisClient
    before(() => {
      redis = db.client
    })

    it('suppresses a normalised address per tenant until it expires', async () => {
      const [t, u] = [uniqueName('t'), uniqueName('u')]
      const now = Date.now()
      const s = await suppress(redis, t, '"Gone"@Dead.example.', { days: 30, maxEntries: 100 }, now)
      assert.deepEqual(s, { address: 'gone@dead.example', expires_at: new Date(now + 30 * DAY).toISOString() })
      assert.equal((await suppressedUntil(redis, t, 'GONE@dead.example', now))!.getTime(), now + 30 * DAY)
      assert.equal(await suppressedUntil(redis, u, 'gone@dead.example', now), null, 'per tenant')
      assert.equal(await suppressedUntil(redis, t, 'gone@dead.example', now + 31 * DAY), null, 'expired')
      await assert.rejects(suppressedUntil(redis, t, 'not an address', now), InputError, 'an address that cannot be checked is an error, never "not suppressed"')
      assert.equal(await suppressedCount(redis, t, now), 1)
      assert.equal(await suppressedCount(redis, t, now + 31 * DAY), 0)
      assert.deepEqual(await listSuppressed(redis, t, now), [s])
      const ttl = await redis.pttl(keys.suppression(t))
      assert.ok(ttl > 29 * DAY && ttl <= 30 * DAY, 'the key expires with its newest entry')
    })

    it('refuses every spelling of a suppressed address, and its +tags; a suppressed +tag leaves the base mailbox alone', async () => {
      const t = uniqueName('t')
      const now = Date.now()
      await suppress(redis, t, 'dead@bounce.test', { days: 30, maxEntries: 100 }, now)
      const spellings = ['dead@ｂounce.test', 'dead@ｂｏｕｎｃｅ.ｔｅｓｔ', 'dead@bounce。test', 'dead@bou\u00adnce.test', 'dead@bou\u200bnce.test', 'DEAD@BOUNCE.TEST.', 'ｄｅａｄ@bounce.test', 'dead+x@bounce.test', 'Dead+Promo+2@Bounce.Test', 'dead＋x@bounce.test']
      for (const s of spellings) assert.equal((await suppressedUntil(redis, t, s, now))?.getTime(), now + 30 * DAY, JSON.stringify(s))
      assert.equal(await suppressedUntil(redis, t, 'dead@sub.bounce.test', now), null, 'another domain')
      assert.equal(await suppressedUntil(redis, t, 'deadx@bounce.test', now), null, 'another mailbox')
      const s = await suppress(redis, t, 'Alive+List@ｂounce.test', { days: 10, maxEntries: 100 }, now)
      assert.equal(s.address, 'alive+list@bounce.test', 'stored normalised')
      assert.ok(await suppressedUntil(redis, t, 'alive+list@bounce.test', now))
      assert.equal(await suppressedUntil(redis, t, 'alive@bounce.test', now), null, 'the tag bounced, not the mailbox')
      assert.equal(await suppressedUntil(redis, t, 'alive+other@bounce.test', now), null)
      assert.equal(await unsuppress(redis, t, 'alive+list@ｂounce.test'), 'alive+list@bounce.test')
    })

    it('drops expired entries on write and keeps at most maxEntries, the longest-lived', async () => {
      const t = uniqueName('t')
      const now = Date.now()
      await suppress(redis, t, 'old@x.example', { days: 1, maxEntries: 3 }, now - 2 * DAY)
      for (let i = 0; i < 5; i++) await suppress(redis, t, `a${i}@x.example`, { days: 30, maxEntries: 3 }, now + i * 1000)
      assert.deepEqual(await redis.zrange(keys.suppression(t), '0', '-1'), ['a2@x.example', 'a3@x.example', 'a4@x.example'])
    })

    it('an operator removes an address; removing it twice says it is not suppressed', async () => {
      const t = uniqueName('t')
      await suppress(redis, t, 'gone@dead.example')
      assert.equal(await unsuppress(redis, t, 'GONE@dead.example'), 'gone@dead.example')
      await assert.rejects(unsuppress(redis, t, 'gone@dead.example'), (e: Error) => e instanceof NotFoundError && /gone@dead\.example is not suppressed for/.test(e.message))
      assert.equal(await suppressedCount(redis, t), 0)
    })
  })

  describe('isHardBounce', () => {
    const hard: [string | number, string | undefined, string][] = [
      ['550', '5.1.1', 'no such user here'],
      ['550', '5.1.1', 'The email account that you tried to reach does not exist.'],
      ['553', '5.1.3', 'bad recipient address syntax'],
      ['551', '5.1.6', 'mailbox has moved'],
      ['550', '5.1.10', 'recipient address has null MX'],
      [550, undefined, 'Recipient address rejected: User unknown in local recipient table'],
      ['550', '5.0.0', '<x@y.example>... User unknown'],
      ['550', '5.1.0', 'Address rejected: mailbox does not exist'],
      ['550', '', "Sorry, no mailbox here by that name."],
      ['550', undefined, "Requested action not taken: user doesn't exist"],
    ]
    const soft: [string | number | undefined, string | undefined, string, string][] = [
      ['550', '5.7.1', 'message rejected as spam', 'a policy refusal'],
      ['554', '5.7.1', '<x@y.example>: Recipient address rejected: Access denied', 'policy, whatever the words'],
      ['550', '5.7.1', 'user unknown', 'the status says policy'],
      ['550', undefined, 'Requested action not taken: mailbox unavailable', 'RFC 5321 text: policy or missing, cannot tell'],
      ['550', '5.1.0', 'Sender denied', '5.1.0 about the sender'],
      ['550', '5.1.8', 'Sender address rejected: Domain not found', 'sender problem'],
      ['552', '5.2.2', 'mailbox full', 'full'],
      ['451', '4.1.1', 'user unknown, try later', 'temporary'],
      ['554', '5.1.1', 'user unknown', 'only 550, 551 and 553 say a mailbox is missing'],
      [undefined, undefined, 'user unknown', 'no code'],
    ]
    for (const [code, extc, text] of hard) it(`hard: ${code} ${extc ?? ''} ${text}`, () => assert.ok(isHardBounce(code, extc, text)))
    for (const [code, extc, text, why] of soft) it(`not hard (${why}): ${code} ${extc ?? ''} ${text}`, () => assert.ok(!isHardBounce(code, extc, text)))
  })
})
