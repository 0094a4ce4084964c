// posta domain rotate-key | service-key as a child process against a real Redis and a DNS server on loopback.
import { strict as assert } from 'node:assert'
import { createDomainKey, dkimRecords, signingKey, type DkimRecord } from '../lib/dkim'
import { addDomain } from '../lib/domains'
import { posta, type CliResult } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const SERVICE = 'posta.example'

function assertRefused(res: CliResult, re: RegExp) {
  assert.equal(res.code, 2, `exit code (stderr: ${res.stderr})`)
  assert.equal(res.stdout, '')
  assert.match(res.stderr, /^posta: [^\n]+\n$/)
  assert.match(res.stderr, re)
}

describe('posta domain rotate-key, service-key (child process, real Redis, loopback DNS)', function () {
  this.timeout(60_000)
  let r: TestRedis
  let dns: TestDns
  let env: Record<string, string>
  let slug: string
  const run = (...args: string[]) => posta(args, env)
  before(async () => {
    r = await testRedis()
    dns = await startDns()
    env = { REDIS_URL: r.url, POSTA_SERVICE_DOMAIN: SERVICE, POSTA_RESOLVERS: dns.server }
    const pkg = uniqueName('pkg')
    assert.equal((await run('package', 'set', pkg, '--traffic', '1GB')).code, 0)
    slug = uniqueName('t')
    const t = await run('tenant', 'create', slug, '--package', pkg, '--contact', 'ops@example.net', '--json')
    assert.equal(t.code, 0, t.stderr)
  })
  after(async () => {
    await dns?.close()
    await r?.close()
  })

  it('rotate-key: started (the old key signs), waiting while the record is missing, switched once it is seen', async () => {
    const d = `${uniqueName('d')}.test`
    await addDomain(r.client, { serviceDomain: SERVICE }, slug, d) // makes the key, as posta domain add does
    const first = (await dkimRecords(r.client, d))[0]
    let res = await run('domain', 'rotate-key', slug, d, '--json')
    assert.equal(res.code, 0, res.stderr)
    const started = res.json<{ step: string; selector: string; records: DkimRecord[] }>()
    assert.equal(started.step, 'started')
    assert.deepEqual(started.records.map((x) => x.state), ['active', 'pending'])
    assert.equal((await signingKey(r.client, d))!.selector, first.selector)

    res = await run('domain', 'rotate-key', slug, d)
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, new RegExp(`^${started.selector} waits for its record: publish TXT ${started.selector}\\._domainkey\\.`))
    assert.equal((await signingKey(r.client, d))!.selector, first.selector, 'no switch before the record is in DNS')

    const pending = started.records.find((x) => x.state === 'pending')!
    dns.setTxt(pending.name, [pending.value])
    res = await run('domain', 'rotate-key', slug, d, '--json')
    assert.equal(res.code, 0, res.stderr)
    const done = res.json<{ step: string; selector: string; records: DkimRecord[] }>()
    assert.equal(done.step, 'switched')
    assert.deepEqual(done.records.map((x) => [x.selector, x.state]), [[started.selector, 'active'], [first.selector, 'retiring']])
    assert.equal((await signingKey(r.client, d))!.selector, started.selector)
    assert.doesNotMatch(res.stdout, /PRIVATE KEY/)
  })

  it('rotate-key refuses, with one line: an unknown tenant, a bad domain, a domain that is not the tenant\'s, the tenant\'s service name', async () => {
    assertRefused(await run('domain', 'rotate-key', 'nobody-here', 'x.test'), /unknown tenant "nobody-here"/)
    assertRefused(await run('domain', 'rotate-key', slug, 'not_a domain'), /bad sender domain "not_a domain"/)
    const none = `${uniqueName('none')}.test`
    assertRefused(await run('domain', 'rotate-key', slug, none), new RegExp(`tenant "${slug}" has no sender domain ${none.replace(/\./g, '\\.')}: add it with "posta domain add`))
    const other = `${uniqueName('other')}.test`
    await createDomainKey(r.client, other) // a key, but not this tenant's domain
    assertRefused(await run('domain', 'rotate-key', slug, other), /has no sender domain/)
    assert.deepEqual((await dkimRecords(r.client, other)).map((x) => x.state), ['active'], 'nothing rotated')
    assertRefused(await run('domain', 'rotate-key', slug, `${slug}.${SERVICE}`), /signed with the service's key for posta\.example: rotate that one with "posta domain service-key --rotate"/)
    assertRefused(await run('domain', 'rotate-key', slug), /expected 2 arguments/)
  })

  it('service-key: made once, the same record afterwards; --rotate rotates it', async () => {
    let res = await run('domain', 'service-key', '--json')
    assert.equal(res.code, 0, res.stderr)
    const a = res.json<{ domain: string; created: boolean; records: DkimRecord[] }>()
    assert.equal(a.domain, SERVICE)
    assert.equal(a.created, true)
    assert.equal(a.records.length, 1)
    assert.match(a.records[0].name, /^posta\d{6}\._domainkey\.posta\.example$/)
    res = await run('domain', 'service-key')
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /^Publish in the posta\.example zone:/)
    assert.ok(res.stdout.includes(a.records[0].value))
    res = await run('domain', 'service-key', '--rotate', '--json')
    assert.equal(res.code, 0, res.stderr)
    assert.equal(res.json<{ step: string }>().step, 'started')
    assert.deepEqual((await dkimRecords(r.client, SERVICE)).map((x) => x.state), ['active', 'pending'])
  })
})
