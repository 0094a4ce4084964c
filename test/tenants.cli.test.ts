// The tenant input checks through the real `posta` CLI (child process, compiled code in dist/) against a real Redis:
// contacts validated like recipients at `tenant create` and `tenant contact`, reserved slugs, POSTA_HOSTNAME.
import { strict as assert } from 'node:assert'
import { keys } from '../lib/keys'
import { posta, type CliResult } from '../testkit/cli'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const DOMAIN = 'posta.example'

/** Refused: exit 2, nothing on stdout, one line on stderr naming the problem, no raw control character. */
function assertRefused(res: CliResult, re: RegExp) {
  assert.equal(res.code, 2, `exit code (stderr: ${res.stderr})`)
  assert.equal(res.stdout, '')
  assert.match(res.stderr, /^posta: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(res.stderr)}`)
  assert.doesNotMatch(res.stderr.slice(0, -1), /[\x00-\x1f\x7f]/, 'control characters are shown escaped')
  assert.match(res.stderr, re)
}

describe('posta tenant: contacts and slugs (child process, real Redis)', function () {
  this.timeout(30000)
  let r: TestRedis
  let env: Record<string, string>
  const pkg = uniqueName('pkg')
  const run = (args: string[], extra: Record<string, string> = {}) => posta(args, { ...env, ...extra })

  before(async () => {
    r = await testRedis()
    env = { REDIS_URL: r.url, POSTA_SERVICE_DOMAIN: DOMAIN }
    const res = await run(['package', 'set', pkg, '--traffic', '1GB'])
    assert.equal(res.code, 0, res.stderr)
  })
  after(async () => {
    await r?.close()
  })

  async function assertNoTenant(slug: string) {
    assert.equal(await r.client.exists(keys.tenant(slug)), 0, `no tenant ${slug}`)
    assert.equal(await r.client.sismember(keys.tenants(), slug), 0)
  }
  const create = (slug: string, contact: string, extra: Record<string, string> = {}) =>
    run(['tenant', 'create', slug, '--package', pkg, '--contact', contact, '--json'], extra)

  it('tenant create refuses a contact with control characters (o\\x01\\x7fps@x.example) and writes nothing', async () => {
    const slug = uniqueName('t')
    const res = await create(slug, 'o\x01\x7fps@x.example')
    assertRefused(res, /bad contact address "o\\x01\\x7fps@x\.example": it holds a control character/)
    await assertNoTenant(slug)
  })

  it('tenant create refuses routing syntax in the contact (ops%evil.example@example.net, bang paths, source routes)', async () => {
    for (const contact of ['ops%evil.example@example.net', 'evil.example!ops@example.net', '@relay.example:ops@example.net', '"ops@evil.example"@example.net']) {
      const slug = uniqueName('t')
      assertRefused(await create(slug, contact), /bad contact address .*routing syntax/)
      await assertNoTenant(slug)
    }
  })

  it("tenant create refuses the service's own host names as slugs, and accepts look-alikes", async () => {
    const reserved = ['smtp', 'mail', 'mx', 'www', 'panel', 'admin', 'imap', 'pop', 'postmaster', 'mta', 'mta7', 'mx2']
    const results = await Promise.all(reserved.map((slug) => create(slug, 'ops@example.net')))
    for (const [i, res] of results.entries()) {
      assertRefused(res, new RegExp(`tenant slug "${reserved[i]}" is reserved: .*pick another`))
      await assertNoTenant(reserved[i])
    }
    const fine = uniqueName('mailshop')
    const ok = await create(fine, 'ops@example.net')
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.json().login, `mail@${fine}.${DOMAIN}`)
  })

  it("tenant create refuses POSTA_HOSTNAME's first label", async () => {
    const label = uniqueName('edge')
    assertRefused(await create(label, 'ops@example.net', { POSTA_HOSTNAME: `${label}.relay.example` }), new RegExp(`tenant slug "${label}" is reserved`))
    await assertNoTenant(label)
    const res = await create(label, 'ops@example.net', { POSTA_HOSTNAME: `smtp.${DOMAIN}` })
    assert.equal(res.code, 0, `with another host name it is an ordinary slug: ${res.stderr}`)
  })

  it('a CLI run without POSTA_HOSTNAME reserves the label of the host name the running service published', async () => {
    const label = uniqueName('pub')
    await r.client.hset(keys.published(), 'hostname', `${label}.relay.example`)
    try {
      assertRefused(await create(label, 'ops@example.net'), new RegExp(`tenant slug "${label}" is reserved`))
      await assertNoTenant(label)
    } finally {
      await r.client.hdel(keys.published(), 'hostname')
    }
    assert.equal((await create(label, 'ops@example.net')).code, 0)
  })

  it('tenant contact changes the contact; a bad one is refused and the contact stays', async () => {
    const slug = uniqueName('t')
    assert.equal((await create(slug, 'ops@example.net')).code, 0)
    const ok = await run(['tenant', 'contact', slug, 'Billing@Example.ORG', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.json().contact, 'Billing@example.org')
    for (const [contact, re] of [
      ['o\x01\x7fps@x.example', /control character/],
      ['ops%evil.example@example.net', /routing syntax/],
      ['not-an-address', /expected an address like/],
    ] as const) {
      assertRefused(await run(['tenant', 'contact', slug, contact]), re)
    }
    const show = await run(['tenant', 'show', slug, '--json'])
    assert.equal(show.json().contact, 'Billing@example.org')
    assertRefused(await run(['tenant', 'contact', slug]), /expected 2 arguments/)
    const none = uniqueName('none')
    const unknown = await run(['tenant', 'contact', none, 'ops@example.net'])
    assert.notEqual(unknown.code, 0)
    assert.match(unknown.stderr, /unknown tenant/)
    await assertNoTenant(none)
  })
})
