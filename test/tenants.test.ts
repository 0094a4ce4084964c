// lib/tenants.ts against a real Redis: logins, all-or-nothing creation, passwords stored only hashed, status,
// reserved slugs, contacts checked like recipients at creation and on change.
import { strict as assert } from 'node:assert'
import { InputError, NotFoundError } from '../lib/errors'
import { keys } from '../lib/keys'
import { setPackage } from '../lib/packages'
import { verifyPassword } from '../lib/password'
import type { RedisClient } from '../lib/redis'
import { loadSettings, type Settings } from '../lib/settings'
import { banTenant } from '../lib/bans'
import { addIp, removeIp } from '../lib/pool'
import { authRecord, changeContact, createTenant, getTenant, listTenants, parseLogin, resetPassword, setTenantStatus } from '../lib/tenants'
import { scanKeys, testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const DOMAIN = 'posta.example'

/** The hash tag Redis Cluster hashes a key by: the text between the first '{' and the next '}', when not empty. */
function hashTag(key: string): string | null {
  const open = key.indexOf('{')
  if (open < 0) return null
  const close = key.indexOf('}', open + 1)
  if (close <= open + 1) return null
  return key.slice(open + 1, close)
}

/** Every key whose name mentions the tenant's hash tag, with its whole content as text. */
async function tenantKeys(redis: RedisClient, slug: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const k of (await scanKeys(redis, `*${slug}*`)).sort()) out.set(k, await dumpKey(redis, k))
  return out
}

async function dumpKey(redis: RedisClient, key: string): Promise<string> {
  const type = await redis.type(key)
  switch (type) {
    case 'string':
      return String(await redis.get(key))
    case 'hash':
      return JSON.stringify(await redis.hgetall(key))
    case 'set':
      return JSON.stringify(await redis.smembers(key))
    case 'zset':
      return JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES'))
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1))
    default:
      return `<${type}>`
  }
}

describe('tenants (real Redis)', () => {
  let r: TestRedis
  let redis: RedisClient
  let settings: Settings
  let pkg: string

  before(async () => {
    r = await testRedis()
    redis = r.client
    settings = loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: r.url })
    pkg = uniqueName('pkg')
    await setPackage(redis, pkg, 1e9)
  })
  after(async () => {
    await r?.close()
  })

  /** Asserts the tenant left no trace at all. */
  async function assertNothingWritten(slug: string) {
    assert.equal(await redis.exists(keys.tenant(slug)), 0, 'no tenant hash')
    assert.equal(await redis.exists(keys.credentials(slug)), 0, 'no credentials hash')
    assert.equal(await redis.sismember(keys.tenants(), slug), 0, 'not in the tenants set')
    assert.deepEqual([...(await tenantKeys(redis, slug)).keys()], [], 'no key names the tenant')
  }

  describe('parseLogin', () => {
    it('splits <local>@<slug>.<service domain>', () => {
      assert.deepEqual(parseLogin(`mail@acme.${DOMAIN}`, DOMAIN), { local: 'mail', slug: 'acme' })
      assert.deepEqual(parseLogin(`news.letter+x@a-1.${DOMAIN}`, DOMAIN), { local: 'news.letter+x', slug: 'a-1' })
    })

    it('is case-insensitive and returns lower case', () => {
      assert.deepEqual(parseLogin(`MAIL@Acme.POSTA.Example`, DOMAIN), { local: 'mail', slug: 'acme' })
    })

    it('returns null for another service domain', () => {
      assert.equal(parseLogin('mail@acme.other.example', DOMAIN), null)
      assert.equal(parseLogin(`mail@acme.x${DOMAIN}`, DOMAIN), null)
      assert.equal(parseLogin(`mail@acme.${DOMAIN}.evil.example`, DOMAIN), null)
      assert.equal(parseLogin(`mail@${DOMAIN}`, DOMAIN), null, 'the service domain itself has no tenant')
    })

    it('returns null for a nested subdomain', () => {
      assert.equal(parseLogin(`mail@a.acme.${DOMAIN}`, DOMAIN), null)
      assert.equal(parseLogin(`mail@.acme.${DOMAIN}`, DOMAIN), null)
    })

    it('returns null for a bad slug or local part', () => {
      for (const login of [
        `@acme.${DOMAIN}`, `ma il@acme.${DOMAIN}`, `-mail@acme.${DOMAIN}`, `mail-@acme.${DOMAIN}`, `"mail"@acme.${DOMAIN}`,
        `a@b@acme.${DOMAIN}`, `mail@-acme.${DOMAIN}`, `mail@ac_me.${DOMAIN}`, `mail@.${DOMAIN}`, `${'x'.repeat(65)}@acme.${DOMAIN}`,
      ]) {
        assert.equal(parseLogin(login, DOMAIN), null, login)
      }
    })

    it('returns null for no @, empty input, non-strings and very long input', () => {
      assert.equal(parseLogin('mail', DOMAIN), null)
      assert.equal(parseLogin('', DOMAIN), null)
      assert.equal(parseLogin(undefined as unknown as string, DOMAIN), null)
      assert.equal(parseLogin(`${'a'.repeat(300)}@${'b'.repeat(30)}.${DOMAIN}`, DOMAIN), null)
    })
  })

  describe('createTenant', () => {
    it('returns the login, SMTP host, ports and a password', async () => {
      const slug = uniqueName('t')
      const c = await createTenant(redis, settings, { slug, package: pkg, contact: 'Ops@Example.NET' })
      assert.equal(c.tenant, slug)
      assert.equal(c.login, `mail@${slug}.${DOMAIN}`)
      assert.equal(c.smtp_host, `${slug}.${DOMAIN}`)
      assert.match(c.password, /^[A-Za-z0-9]{24}$/)
      assert.deepEqual(c.ports, { submission: settings.submissionPort, smtps: settings.smtpsPort, smtp: settings.smtpPort })
      assert.deepEqual(parseLogin(c.login, DOMAIN), { local: 'mail', slug })

      const t = await getTenant(redis, slug)
      assert.ok(t)
      assert.equal(t.slug, slug)
      assert.equal(t.package, pkg)
      assert.equal(t.status, 'active')
      assert.equal(t.contact, 'Ops@example.net', 'contact domain lower-cased')
      assert.deepEqual(t.logins, ['mail'])
      assert.ok(!Number.isNaN(Date.parse(t.created_at)))
      assert.equal(await redis.sismember(keys.tenants(), slug), 1)
      assert.ok((await listTenants(redis)).some((x) => x.slug === slug))
    })

    it('takes a local part for the first login', async () => {
      const slug = uniqueName('t')
      const c = await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net', local: 'news' })
      assert.equal(c.login, `news@${slug}.${DOMAIN}`)
      assert.deepEqual((await getTenant(redis, slug))!.logins, ['news'])
      assert.equal(await redis.hexists(keys.credentials(slug), 'mail'), 0)
    })

    it('stores a hash that verifies, and the plaintext nowhere in Redis', async () => {
      const slug = uniqueName('t')
      const c = await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      const stored = await redis.hget(keys.credentials(slug), 'mail')
      assert.ok(stored)
      assert.match(stored, /^scrypt\$/)
      assert.equal(await verifyPassword(c.password, stored), true)
      assert.equal(await verifyPassword(`${c.password}x`, stored), false)
      assert.deepEqual(await authRecord(redis, slug, 'mail'), { status: 'active', hash: stored })

      const dump = await tenantKeys(redis, slug)
      assert.ok(dump.has(keys.tenant(slug)) && dump.has(keys.credentials(slug)), [...dump.keys()].join(' '))
      for (const [k, v] of dump) {
        assert.ok(!v.includes(c.password), `password in ${k}`)
        assert.ok(!v.includes(Buffer.from(c.password).toString('base64')), `base64 password in ${k}`)
      }
      if (r.server || r.cluster) {
        // a private Redis or Cluster: look at every key, not only the tenant's
        for (const k of await scanKeys(redis, '*')) assert.ok(!(await dumpKey(redis, k)).includes(c.password), `password in ${k}`)
      }
    })

    it("keeps every key of a tenant under the hash tag {slug}", async () => {
      const slug = uniqueName('t')
      assert.equal(hashTag(keys.tenant(slug)), slug)
      assert.equal(hashTag(keys.credentials(slug)), slug)
      // every key function that makes a hash-tagged key tags it with the slug it was given (the ban ledger and its
      // markers, the pool, the packages, the investigations and the panel sessions share fixed tags of their own: they are
      // not a tenant's keys; so do the sender domains, {domains}, whose one script checks a tenant's domain against every
      // other tenant's: lib/domains.ts)
      const fixed = ['bans', 'pool', 'packages', 'investigations', 'sessions', 'domains']
      for (const [name, fn] of Object.entries(keys) as [string, (...a: string[]) => string][]) {
        const k = fn(slug, '2025-01')
        if (k.includes('{')) assert.equal(hashTag(k), fixed.find((f) => k.includes(`{${f}}`)) ?? slug, `keys.${name}`)
      }
      await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      await resetPassword(redis, settings, slug, 'news')
      const names = [...(await tenantKeys(redis, slug)).keys()]
      assert.ok(names.length >= 2)
      for (const k of names) assert.equal(hashTag(k), slug, k)
    })

    it('refuses a duplicate slug and leaves the existing tenant untouched', async () => {
      const slug = uniqueName('t')
      const first = await createTenant(redis, settings, { slug, package: pkg, contact: 'first@example.net' })
      const before = await tenantKeys(redis, slug)
      await assert.rejects(
        createTenant(redis, settings, { slug, package: pkg, contact: 'second@example.net', local: 'other' }),
        (err: unknown) => err instanceof InputError && /tenant ".*" already exists/.test(err.message),
      )
      assert.deepEqual(await tenantKeys(redis, slug), before)
      assert.equal(await verifyPassword(first.password, (await redis.hget(keys.credentials(slug), 'mail'))!), true)
    })

    it('lets exactly one of two concurrent creations of a slug win', async () => {
      const slug = uniqueName('t')
      const results = await Promise.allSettled([
        createTenant(redis, settings, { slug, package: pkg, contact: 'a@example.net', local: 'aaa' }),
        createTenant(redis, settings, { slug, package: pkg, contact: 'b@example.net', local: 'bbb' }),
      ])
      const ok = results.filter((x) => x.status === 'fulfilled')
      assert.equal(ok.length, 1, JSON.stringify(results.map((x) => x.status)))
      const rejected = results.find((x) => x.status === 'rejected') as PromiseRejectedResult
      assert.match(String(rejected.reason.message), /already exists/)
      const t = (await getTenant(redis, slug))!
      assert.equal(t.logins.length, 1, 'one credential, of the winner')
      const winner = (ok[0] as PromiseFulfilledResult<{ login: string; password: string }>).value
      assert.equal(winner.login.split('@')[0], t.logins[0])
      assert.equal(t.contact, t.logins[0] === 'aaa' ? 'a@example.net' : 'b@example.net')
      assert.equal(await verifyPassword(winner.password, (await redis.hget(keys.credentials(slug), t.logins[0]))!), true)
    })

    it('refuses an unknown package and writes nothing', async () => {
      const slug = uniqueName('t')
      await assert.rejects(
        createTenant(redis, settings, { slug, package: uniqueName('nopkg'), contact: 'ops@example.net' }),
        (err: unknown) => err instanceof NotFoundError && /unknown package/.test(err.message),
      )
      await assertNothingWritten(slug)
    })

    it('refuses a bad package name and writes nothing', async () => {
      const slug = uniqueName('t')
      await assert.rejects(createTenant(redis, settings, { slug, package: 'no such/pkg', contact: 'ops@example.net' }), /bad package name/)
      await assertNothingWritten(slug)
    })

    it('refuses a bad contact and writes nothing', async () => {
      for (const contact of ['', 'not-an-address', 'ops@localhost', 'a b@example.net']) {
        const slug = uniqueName('t')
        await assert.rejects(
          createTenant(redis, settings, { slug, package: pkg, contact }),
          (err: unknown) => err instanceof InputError && /bad contact address/.test(err.message),
          contact,
        )
        await assertNothingWritten(slug)
      }
    })

    it('refuses a bad slug or local part and writes nothing', async () => {
      for (const slug of ['Bad', 'a_b', '-a', 'x'.repeat(64)]) {
        await assert.rejects(createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' }), /bad tenant slug/, slug)
        assert.equal(await redis.exists(keys.tenant(slug)), 0)
        assert.equal(await redis.sismember(keys.tenants(), slug), 0)
      }
      const slug = uniqueName('t')
      await assert.rejects(createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net', local: 'Bad..Local' }), /bad local part/)
      await assertNothingWritten(slug)
    })
  })

  describe('createTenant: reserved slugs and contacts checked like recipients', () => {
    async function assertNoTenant(slug: string) {
      assert.equal(await redis.exists(keys.tenant(slug)), 0, `no tenant ${slug}`)
      assert.equal(await redis.exists(keys.credentials(slug)), 0)
      assert.equal(await redis.sismember(keys.tenants(), slug), 0)
    }

    it("refuses the service's own host names as slugs and writes nothing", async () => {
      for (const slug of ['smtp', 'mail', 'mx', 'www', 'panel', 'admin', 'imap', 'pop', 'postmaster', 'mta7', 'mta-sts']) {
        await assert.rejects(
          createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' }),
          (err: unknown) => err instanceof InputError && new RegExp(`tenant slug "${slug}" is reserved`).test(err.message),
          slug,
        )
        await assertNoTenant(slug)
      }
    })

    it("refuses POSTA_HOSTNAME's first label", async () => {
      const label = uniqueName('edge')
      const own: Settings = { ...settings, hostname: `${label}.other.example` }
      await assert.rejects(createTenant(redis, own, { slug: label, package: pkg, contact: 'ops@example.net' }), /is reserved/)
      await assertNoTenant(label)
      // the same slug with another host name is an ordinary slug
      await createTenant(redis, settings, { slug: label, package: pkg, contact: 'ops@example.net' })
      assert.equal((await getTenant(redis, label))!.slug, label)
    })

    it("refuses the label of a pool IP's HELO name in the service domain", async () => {
      const label = uniqueName('gw')
      const ip = '198.18.250.7'
      await addIp(redis, ip, `${label}.${DOMAIN}`)
      try {
        await assert.rejects(createTenant(redis, settings, { slug: label, package: pkg, contact: 'ops@example.net' }), /is reserved/)
        await assertNoTenant(label)
      } finally {
        await removeIp(redis, ip)
      }
      await createTenant(redis, settings, { slug: label, package: pkg, contact: 'ops@example.net' })
    })

    it('refuses contacts with control characters or routing syntax and writes nothing', async () => {
      for (const contact of ['o\x01\x7fps@x.example', 'ops%evil.example@example.net', 'x!ops@example.net', '@relay.example:ops@example.net', '"ops@evil"@example.net', 'ops\n@example.net']) {
        const slug = uniqueName('t')
        await assert.rejects(
          createTenant(redis, settings, { slug, package: pkg, contact }),
          (err: unknown) => err instanceof InputError && /bad contact address/.test(err.message) && !/[\x00-\x1f\x7f]/.test(err.message),
          JSON.stringify(contact),
        )
        await assertNoTenant(slug)
      }
    })
  })

  describe('changeContact', () => {
    it('changes the contact, lower-casing the domain, and keeps the rest', async () => {
      const slug = uniqueName('t')
      await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      const before = (await getTenant(redis, slug))!
      const t = await changeContact(redis, slug, 'Billing+posta@Example.ORG')
      assert.equal(t.contact, 'Billing+posta@example.org')
      assert.deepEqual({ ...t, contact: before.contact, updated_at: before.updated_at }, before)
      assert.ok(t.updated_at >= before.updated_at)
    })

    it('refuses what tenant create refuses, and leaves the contact as it was', async () => {
      const slug = uniqueName('t')
      await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      for (const contact of ['o\x01\x7fps@x.example', 'ops%evil.example@example.net', 'a!b@example.net', '', 'ops@localhost', 'two@@example.net']) {
        await assert.rejects(changeContact(redis, slug, contact), (err: unknown) => err instanceof InputError && /bad contact address/.test(err.message), JSON.stringify(contact))
      }
      assert.equal((await getTenant(redis, slug))!.contact, 'ops@example.net')
    })

    it('refuses an unknown tenant, a closed tenant, and a banned contact', async () => {
      const none = uniqueName('none')
      await assert.rejects(changeContact(redis, none, 'ops@example.net'), NotFoundError)
      assert.equal(await redis.exists(keys.tenant(none)), 0)
      const closed = uniqueName('t')
      await createTenant(redis, settings, { slug: closed, package: pkg, contact: 'ops@example.net' })
      await redis.hset(keys.tenant(closed), 'status', 'closed')
      await assert.rejects(changeContact(redis, closed, 'new@example.net'), /closed/)
      const [banned, other] = [uniqueName('t'), uniqueName('t')]
      const bannedContact = `${uniqueName('spam')}@gmail.com`
      await createTenant(redis, settings, { slug: banned, package: pkg, contact: bannedContact })
      await banTenant(redis, banned, 'test', 'operator', {}, { freemail: new Set(['gmail.com']), senderDomains: false, serviceDomain: DOMAIN })
      await createTenant(redis, settings, { slug: other, package: pkg, contact: 'ops@example.net' })
      await assert.rejects(changeContact(redis, other, bannedContact.toUpperCase()), /banned account/)
      assert.equal((await getTenant(redis, other))!.contact, 'ops@example.net')
    })
  })

  describe('resetPassword', () => {
    it("replaces the primary login's hash: the old password stops working", async () => {
      const slug = uniqueName('t')
      const first = await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      const oldHash = (await redis.hget(keys.credentials(slug), 'mail'))!
      const oldUpdated = (await getTenant(redis, slug))!.updated_at
      await new Promise((res) => setTimeout(res, 5))

      const next = await resetPassword(redis, settings, slug)
      assert.equal(next.login, first.login)
      assert.equal(next.smtp_host, first.smtp_host)
      assert.notEqual(next.password, first.password)
      const newHash = (await redis.hget(keys.credentials(slug), 'mail'))!
      assert.notEqual(newHash, oldHash)
      assert.equal(await verifyPassword(next.password, newHash), true)
      assert.equal(await verifyPassword(first.password, newHash), false)
      const t = (await getTenant(redis, slug))!
      assert.deepEqual(t.logins, ['mail'])
      assert.ok(t.updated_at > oldUpdated, 'updated_at moves')
      for (const [k, v] of await tenantKeys(redis, slug)) assert.ok(!v.includes(next.password), `password in ${k}`)
    })

    it('with a new local part adds a login and keeps the others', async () => {
      const slug = uniqueName('t')
      const first = await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      const news = await resetPassword(redis, settings, slug, 'news')
      assert.equal(news.login, `news@${slug}.${DOMAIN}`)
      const alpha = await resetPassword(redis, settings, slug, 'alpha')
      assert.deepEqual((await getTenant(redis, slug))!.logins, ['mail', 'alpha', 'news'], 'primary first, then sorted')
      const creds = await redis.hgetall(keys.credentials(slug))
      assert.equal(await verifyPassword(first.password, creds.mail), true)
      assert.equal(await verifyPassword(news.password, creds.news), true)
      assert.equal(await verifyPassword(alpha.password, creds.alpha), true)
      assert.equal(await verifyPassword(news.password, creds.mail), false)
    })

    it('refuses an unknown tenant, a bad local part, and a closed tenant', async () => {
      await assert.rejects(resetPassword(redis, settings, uniqueName('none')), (e: unknown) => e instanceof NotFoundError)
      const slug = uniqueName('t')
      await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      const before = await redis.hgetall(keys.credentials(slug))
      await assert.rejects(resetPassword(redis, settings, slug, 'Bad Local'), /bad local part/)
      await redis.hset(keys.tenant(slug), 'status', 'closed')
      await assert.rejects(resetPassword(redis, settings, slug), /closed/)
      assert.deepEqual(await redis.hgetall(keys.credentials(slug)), before)
    })
  })

  describe('setTenantStatus', () => {
    it('suspends and resumes', async () => {
      const slug = uniqueName('t')
      await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      const s = await setTenantStatus(redis, slug, 'suspended')
      assert.equal(s.status, 'suspended')
      assert.equal((await getTenant(redis, slug))!.status, 'suspended')
      assert.equal((await authRecord(redis, slug, 'mail')).status, 'suspended')
      const a = await setTenantStatus(redis, slug, 'active')
      assert.equal(a.status, 'active')
      assert.equal((await authRecord(redis, slug, 'mail')).status, 'active')
    })

    it('refuses an unknown tenant without creating it', async () => {
      const slug = uniqueName('none')
      await assert.rejects(setTenantStatus(redis, slug, 'suspended'), (e: unknown) => e instanceof NotFoundError && /unknown tenant/.test(e.message))
      await assertNothingWritten(slug)
    })

    it('leaves a closed tenant closed', async () => {
      const slug = uniqueName('t')
      await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      await redis.hset(keys.tenant(slug), 'status', 'closed')
      await assert.rejects(setTenantStatus(redis, slug, 'active'), /closed/)
      await assert.rejects(setTenantStatus(redis, slug, 'suspended'), /closed/)
      assert.equal((await getTenant(redis, slug))!.status, 'closed')
    })
  })

  describe('authRecord', () => {
    it('is empty for an unknown tenant or login', async () => {
      assert.deepEqual(await authRecord(redis, uniqueName('none'), 'mail'), { status: null, hash: null })
      const slug = uniqueName('t')
      await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
      assert.deepEqual(await authRecord(redis, slug, 'nobody'), { status: 'active', hash: null })
    })
  })
})
