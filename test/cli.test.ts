// cli/posta.ts: the real `posta` CLI as a child process (bin/posta.js, compiled code in dist/) against a real Redis.
// Run `npx tsc -p .` (or `npm test`, which builds) first.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { keys } from '../lib/keys'
import { verifyPassword } from '../lib/password'
import type { RedisClient } from '../lib/redis'
import { posta, type CliResult } from '../testkit/cli'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const DOMAIN = 'posta.example'
const UNREACHABLE = 'redis://127.0.0.1:1'

/** The verbs this suite knows; `posta --help` may list more (each is checked for --help too). */
const VERBS = [
  'package set', 'package list',
  'tenant create', 'tenant show', 'tenant list', 'tenant password', 'tenant suspend', 'tenant resume',
  'route set', 'route list', 'route delete',
]

/** A refused command: the given exit code, nothing on stdout, one line on stderr naming the problem. */
function assertRefused(res: CliResult, re: RegExp, code = 2) {
  assert.equal(res.code, code, `exit code (stderr: ${res.stderr})`)
  assert.equal(res.stdout, '', 'nothing on stdout')
  assert.match(res.stderr, /^posta: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(res.stderr)}`)
  assert.match(res.stderr, re)
}

function assertOk(res: CliResult) {
  assert.equal(res.code, 0, `exit code (stderr: ${res.stderr})`)
  assert.equal(res.stderr, '')
}

describe('posta CLI (child process, real Redis)', function () {
  this.timeout(30000)
  let r: TestRedis
  let redis: RedisClient
  let env: Record<string, string>
  const run = (...args: string[]) => posta(args, env)

  before(async function () {
    const entry = path.join(__dirname, '..', 'dist', 'cli', 'posta.js')
    if (!fs.existsSync(entry)) throw new Error('dist/cli/posta.js is missing: run "npx tsc -p ." first')
    r = await testRedis()
    redis = r.client
    env = { REDIS_URL: r.url, POSTA_SERVICE_DOMAIN: DOMAIN }
  })
  after(async () => {
    await r?.close()
  })

  /** A package made through the CLI. */
  async function newPackage(traffic = '1GB'): Promise<string> {
    const name = uniqueName('pkg')
    assertOk(await run('package', 'set', name, '--traffic', traffic))
    return name
  }

  /** A tenant made through the CLI; returns its --json credentials. */
  async function newTenant(pkg: string, ...extra: string[]) {
    const slug = uniqueName('t')
    const res = await run('tenant', 'create', slug, '--package', pkg, '--contact', 'ops@example.net', '--json', ...extra)
    assertOk(res)
    return res.json<{ tenant: string; login: string; password: string; smtp_host: string }>()
  }

  async function assertNoTenant(slug: string) {
    assert.equal(await redis.exists(keys.tenant(slug)), 0, 'no tenant hash')
    assert.equal(await redis.exists(keys.credentials(slug)), 0, 'no credentials')
    assert.equal(await redis.sismember(keys.tenants(), slug), 0, 'not in the tenants set')
  }

  describe('help', () => {
    let helpAll: CliResult
    before(async () => {
      helpAll = await posta(['--help'], { REDIS_URL: UNREACHABLE })
    })

    it('posta --help lists every command and exits 0, without Redis', () => {
      assertOk(helpAll)
      assert.match(helpAll.stdout, /^posta: operate a Posta relay/)
      for (const v of VERBS) assert.ok(helpAll.stdout.includes(`posta ${v}`), v)
      assert.match(helpAll.stdout, /--json/)
    })

    it('posta help exits 0; posta with no arguments prints the help and fails', async () => {
      const [help, none] = await Promise.all([posta(['help'], { REDIS_URL: UNREACHABLE }), posta([], { REDIS_URL: UNREACHABLE })])
      assertOk(help)
      assert.equal(help.stdout, helpAll.stdout)
      assert.notEqual(none.code, 0)
      assert.equal(none.stdout, helpAll.stdout)
    })

    it('every verb has --help (exit 0, usage), without Redis', async function () {
      this.timeout(180_000) // ~40 CLI processes at once: slow on a loaded 2-core machine, never a timing assertion
      const listed = [...helpAll.stdout.matchAll(/^ {2}posta ((?:[a-z]+ ?)+?)(?= <| \[| --|$)/gm)].map((m) => m[1].trim())
      for (const v of VERBS) assert.ok(listed.includes(v), `${v} in ${JSON.stringify(listed)}`)
      const verbs = [...new Set([...VERBS, ...listed])]
      const results = await Promise.all([
        ...verbs.map((v) => posta([...v.split(' '), '--help'], { REDIS_URL: UNREACHABLE }).then((res) => [v, '--help', res] as const)),
        posta(['tenant', 'show', 'x', '-h'], { REDIS_URL: UNREACHABLE }).then((res) => ['tenant show', '-h', res] as const),
      ])
      for (const [v, flag, res] of results) {
        assert.equal(res.code, 0, `${v} ${flag}: ${res.stderr}`)
        assert.equal(res.stderr, '', `${v} ${flag}`)
        assert.ok(res.stdout.startsWith(`usage: posta ${v}`), `${v} ${flag}: ${res.stdout}`)
        assert.match(res.stdout, /--help/, `${v} ${flag}`)
      }
    })

    it('a verb --help lists its options', async () => {
      const res = await posta(['tenant', 'create', '--help'], { REDIS_URL: UNREACHABLE })
      assertOk(res)
      for (const o of ['--package', '--contact', '--local', '--json']) assert.ok(res.stdout.includes(o), o)
    })
  })

  describe('package', () => {
    it('package set takes decimal and binary sizes and plain bytes', async () => {
      const cases: [string, number][] = [['10GB', 10e9], ['1.5GiB', 1.5 * 1024 ** 3], ['500MB', 500e6], ['123456', 123456], ['2 tb', 2e12]]
      await Promise.all(
        cases.map(async ([size, bytes]) => {
          const name = uniqueName('pkg')
          const res = await run('package', 'set', name, '--traffic', size, '--json')
          assertOk(res)
          const p = res.json()
          assert.equal(p.name, name)
          assert.equal(p.traffic_bytes, bytes, size)
          assert.equal(await redis.hget(keys.package(name), 'traffic_bytes'), String(bytes))
        }),
      )
    })

    it('package set prints the size for people', async () => {
      const name = uniqueName('pkg')
      const res = await run('package', 'set', name, '--traffic', '1.5GB')
      assertOk(res)
      assert.equal(res.stdout, `package ${name}: 1.5 GB (1500000000 bytes) a month\n`)
    })

    it('package set again changes the allowance', async () => {
      const name = await newPackage('1GB')
      assertOk(await run('package', 'set', name, '--traffic', '2GB'))
      assert.equal(await redis.hget(keys.package(name), 'traffic_bytes'), '2000000000')
    })

    it('package list --json lists packages with their bytes; package list prints a table', async () => {
      const [a, b] = await Promise.all([newPackage('1GB'), newPackage('250MB')])
      const res = await run('package', 'list', '--json')
      assertOk(res)
      const list = res.json<{ name: string; traffic_bytes: number }[]>()
      assert.ok(Array.isArray(list))
      assert.equal(list.find((p) => p.name === a)?.traffic_bytes, 1e9)
      assert.equal(list.find((p) => p.name === b)?.traffic_bytes, 250e6)
      const text = await run('package', 'list')
      assertOk(text)
      assert.match(text.stdout, /^PACKAGE\s+TRAFFIC\s+BYTES$/m)
      assert.match(text.stdout, new RegExp(`^${a}\\s+1 GB\\s+1000000000$`, 'm'))
    })
  })

  describe('tenant', () => {
    let pkg: string
    before(async () => {
      pkg = await newPackage('1GB')
    })

    it('tenant create --json gives tenant, login, password, smtp_host; the password is stored only hashed', async () => {
      const c = await newTenant(pkg)
      assert.match(c.tenant, /^t-/)
      assert.equal(c.login, `mail@${c.tenant}.${DOMAIN}`)
      assert.equal(c.smtp_host, `${c.tenant}.${DOMAIN}`)
      assert.match(c.password, /^[A-Za-z0-9]{24}$/)
      const stored = (await redis.hget(keys.credentials(c.tenant), 'mail'))!
      assert.equal(await verifyPassword(c.password, stored), true)
      const all = JSON.stringify([await redis.hgetall(keys.tenant(c.tenant)), await redis.hgetall(keys.credentials(c.tenant))])
      assert.ok(!all.includes(c.password))
    })

    it('tenant create prints the credentials once, for people', async () => {
      const slug = uniqueName('t')
      const res = await run('tenant', 'create', slug, '--package', pkg, '--contact', 'ops@example.net', '--local', 'news')
      assertOk(res)
      assert.match(res.stdout, new RegExp(`^login\\s+news@${slug}\\.posta\\.example$`, 'm'))
      const pw = /^password\s+(\S+)$/m.exec(res.stdout)?.[1]
      assert.ok(pw)
      assert.equal(await verifyPassword(pw, (await redis.hget(keys.credentials(slug), 'news'))!), true)
      assert.match(res.stdout, /shown this once/)
    })

    it('tenant show --json shows package, status, contact, logins and no secret', async () => {
      const c = await newTenant(pkg)
      const res = await run('tenant', 'show', c.tenant, '--json')
      assertOk(res)
      const t = res.json()
      assert.equal(t.tenant, c.tenant)
      assert.equal(t.package, pkg)
      assert.equal(t.status, 'active')
      assert.equal(t.contact, 'ops@example.net')
      assert.equal(t.smtp_host, c.smtp_host)
      assert.deepEqual(t.logins, [c.login])
      assert.ok(!res.stdout.includes(c.password))
      assert.ok(!res.stdout.includes('scrypt$'))
      const text = await run('tenant', 'show', c.tenant)
      assertOk(text)
      assert.match(text.stdout, new RegExp(`^status\\s+active$`, 'm'))
      assert.ok(!text.stdout.includes('scrypt$'))
    })

    it('tenant list --json includes the tenants', async () => {
      const [a, b] = await Promise.all([newTenant(pkg), newTenant(pkg)])
      const res = await run('tenant', 'list', '--json')
      assertOk(res)
      const list = res.json<{ tenant: string; status: string; package: string }[]>()
      for (const c of [a, b]) {
        const t = list.find((x) => x.tenant === c.tenant)
        assert.ok(t, c.tenant)
        assert.equal(t.package, pkg)
        assert.equal(t.status, 'active')
      }
      assert.ok(!res.stdout.includes('scrypt$'))
      const text = await run('tenant', 'list')
      assertOk(text)
      assert.match(text.stdout, new RegExp(`^${a.tenant}\\s+active\\s+${pkg}\\s+ops@example\\.net$`, 'm'))
    })

    it('tenant password prints a new password and the old one stops working', async () => {
      const c = await newTenant(pkg)
      const res = await run('tenant', 'password', c.tenant, '--json')
      assertOk(res)
      const n = res.json()
      assert.equal(n.login, c.login)
      assert.match(n.password, /^[A-Za-z0-9]{24}$/)
      assert.notEqual(n.password, c.password)
      const stored = (await redis.hget(keys.credentials(c.tenant), 'mail'))!
      assert.equal(await verifyPassword(n.password, stored), true)
      assert.equal(await verifyPassword(c.password, stored), false)

      const text = await run('tenant', 'password', c.tenant)
      assertOk(text)
      const pw = /^password\s+(\S+)$/m.exec(text.stdout)?.[1]
      assert.ok(pw && pw !== n.password)
      assert.equal(await verifyPassword(pw, (await redis.hget(keys.credentials(c.tenant), 'mail'))!), true)
    })

    it('tenant password --local adds a login', async () => {
      const c = await newTenant(pkg)
      const res = await run('tenant', 'password', c.tenant, '--local', 'news', '--json')
      assertOk(res)
      assert.equal(res.json().login, `news@${c.tenant}.${DOMAIN}`)
      const show = await run('tenant', 'show', c.tenant, '--json')
      assert.deepEqual(show.json().logins, [c.login, `news@${c.tenant}.${DOMAIN}`])
      assert.equal(await verifyPassword(c.password, (await redis.hget(keys.credentials(c.tenant), 'mail'))!), true, 'the first login keeps its password')
    })

    it('tenant suspend and resume', async () => {
      const c = await newTenant(pkg)
      const s = await run('tenant', 'suspend', c.tenant, '--json')
      assertOk(s)
      assert.equal(s.json().status, 'suspended')
      assert.equal(await redis.hget(keys.tenant(c.tenant), 'status'), 'suspended')
      const text = await run('tenant', 'resume', c.tenant)
      assertOk(text)
      assert.equal(text.stdout, `tenant ${c.tenant} active\n`)
      assert.equal(await redis.hget(keys.tenant(c.tenant), 'status'), 'active')
    })
  })

  describe('route', () => {
    it('route set, list and delete', async () => {
      const d = `${uniqueName('d')}.test`
      const set = await run('route', 'set', `.${d}`, '127.0.0.1:2525', '--json')
      assertOk(set)
      assert.deepEqual(set.json(), { domain: `.${d}`, host: '127.0.0.1', port: 2525 })
      assertOk(await run('route', 'set', d, 'MX.Example.NET'))
      assert.equal(await redis.hget(keys.routes(), d), 'mx.example.net:25')

      const list = await run('route', 'list', '--json')
      assertOk(list)
      const mine = list.json<{ domain: string; host: string; port: number }[]>().filter((x) => x.domain.endsWith(d))
      assert.deepEqual(mine, [
        { domain: `.${d}`, host: '127.0.0.1', port: 2525 },
        { domain: d, host: 'mx.example.net', port: 25 },
      ])
      const text = await run('route', 'list')
      assertOk(text)
      assert.match(text.stdout, new RegExp(`^\\.${d.replace(/\./g, '\\.')}\\s+127\\.0\\.0\\.1\\s+2525$`, 'm'))

      const del = await run('route', 'delete', `.${d}`)
      assertOk(del)
      assert.equal(await redis.hexists(keys.routes(), `.${d}`), 0)
      assert.equal(await redis.hget(keys.routes(), d), 'mx.example.net:25', 'the other route stays')
      const after = (await run('route', 'list', '--json')).json<{ domain: string }[]>()
      assert.ok(!after.some((x) => x.domain === `.${d}`))
    })

    it('route delete of an unknown route fails', async () => {
      assertRefused(await run('route', 'delete', `${uniqueName('d')}.test`), /no route for/)
    })

    it('route set refuses a bad domain or target and writes nothing', async () => {
      const before = await redis.hgetall(keys.routes())
      const d = `${uniqueName('d')}.test`
      const [a, b, c] = await Promise.all([
        run('route', 'set', 'localhost', '127.0.0.1'),
        run('route', 'set', d, '127.0.0.1:70000'),
        run('route', 'set', d, 'not a host'),
      ])
      assertRefused(a, /bad route domain "localhost"/)
      assertRefused(b, /bad route target "127\.0\.0\.1:70000"/)
      assertRefused(c, /bad route target/)
      assert.deepEqual(await redis.hgetall(keys.routes()), before)
    })
  })

  describe('bad input: one line on stderr, non-zero exit, nothing half-written', () => {
    let pkg: string
    before(async () => {
      pkg = await newPackage('1GB')
    })

    it('unknown package', async () => {
      const slug = uniqueName('t')
      const nope = uniqueName('nopkg')
      assertRefused(await run('tenant', 'create', slug, '--package', nope, '--contact', 'ops@example.net'), new RegExp(`unknown package "${nope}"`))
      await assertNoTenant(slug)
    })

    it('bad slug', async () => {
      await Promise.all(
        ['Bad_Slug', 'acme-', 'x'.repeat(64)].map(async (slug) => {
          assertRefused(await run('tenant', 'create', slug, '--package', pkg, '--contact', 'ops@example.net'), /bad tenant slug/)
          await assertNoTenant(slug)
        }),
      )
    })

    it('bad contact, bad local part', async () => {
      const slug = uniqueName('t')
      assertRefused(await run('tenant', 'create', slug, '--package', pkg, '--contact', 'not-an-address'), /bad contact address "not-an-address"/)
      assertRefused(await run('tenant', 'create', slug, '--package', pkg, '--contact', 'ops@example.net', '--local', 'Bad Local'), /bad local part/)
      await assertNoTenant(slug)
    })

    it('missing --package or --contact', async () => {
      const slug = uniqueName('t')
      assertRefused(await run('tenant', 'create', slug, '--contact', 'ops@example.net'), /missing --package/)
      assertRefused(await run('tenant', 'create', slug, '--package', pkg), /missing --contact/)
      await assertNoTenant(slug)
    })

    it('duplicate tenant: refused, the existing one untouched', async () => {
      const c = await newTenant(pkg)
      const before = [await redis.hgetall(keys.tenant(c.tenant)), await redis.hgetall(keys.credentials(c.tenant))]
      const other = await newPackage('5GB')
      assertRefused(
        await run('tenant', 'create', c.tenant, '--package', other, '--contact', 'else@example.net', '--local', 'other'),
        new RegExp(`tenant "${c.tenant}" already exists`),
      )
      assert.deepEqual([await redis.hgetall(keys.tenant(c.tenant)), await redis.hgetall(keys.credentials(c.tenant))], before)
    })

    it('unknown tenant', async () => {
      const slug = uniqueName('none')
      const results = await Promise.all(['show', 'password', 'suspend', 'resume'].map((verb) => run('tenant', verb, slug)))
      for (const res of results) assertRefused(res, new RegExp(`unknown tenant "${slug}"`))
      await assertNoTenant(slug)
    })

    it('bad size', async () => {
      await Promise.all(
        ['10XB', '0', 'abc', '-5', '99999999999TB'].map(async (size) => {
          const name = uniqueName('pkg')
          assertRefused(await run('package', 'set', name, `--traffic=${size}`), new RegExp(`bad size "${size}"`))
          assert.equal(await redis.exists(keys.package(name)), 0)
          assert.equal(await redis.sismember(keys.packages(), name), 0)
        }),
      )
    })

    it('bad size leaves an existing package as it was', async () => {
      const name = await newPackage('1GB')
      const before = await redis.hgetall(keys.package(name))
      assertRefused(await run('package', 'set', name, '--traffic', '10XB'), /bad size/)
      assert.deepEqual(await redis.hgetall(keys.package(name)), before)
    })

    it('missing --traffic', async () => {
      const name = uniqueName('pkg')
      assertRefused(await run('package', 'set', name), /missing --traffic/)
      assertRefused(await run('package', 'set', name, '--traffic'), /--traffic/)
      assert.equal(await redis.exists(keys.package(name)), 0)
    })

    it('unknown option', async () => {
      assertRefused(await run('package', 'list', '--bogus'), /Unknown option '--bogus'.*posta package list --help/)
      const slug = uniqueName('t')
      assertRefused(await run('tenant', 'create', slug, '--package', pkg, '--contact', 'ops@example.net', '--frob'), /Unknown option '--frob'/)
      await assertNoTenant(slug)
      assertRefused(await run('package', 'list', '--json=yes'), /--json/)
    })

    it('wrong argument count', async () => {
      const slug = uniqueName('t')
      const [a, b, c, d, e] = await Promise.all([
        run('tenant', 'show'),
        run('tenant', 'show', 'a', 'b'),
        run('package', 'list', 'extra'),
        run('route', 'set', 'example.net'),
        run('tenant', 'create', slug, 'extra', '--package', pkg, '--contact', 'ops@example.net'),
      ])
      assertRefused(a, /expected 1 argument: posta tenant show <slug>/)
      assertRefused(b, /expected 1 argument/)
      assertRefused(c, /expected 0 arguments/)
      assertRefused(d, /expected 2 arguments/)
      assertRefused(e, /expected 1 argument/)
      await assertNoTenant(slug)
    })

    it('unknown command', async () => {
      const [a, b, c] = await Promise.all([run('frobnicate'), run('tenant', 'frob', 'x'), run('tenant')])
      assertRefused(a, /unknown command "frobnicate".*posta --help/)
      assertRefused(b, /unknown command "tenant frob"/)
      assertRefused(c, /unknown command "tenant"/)
    })

    it('Redis unreachable: a clear error naming the address and the cause, exit 1', async () => {
      const t0 = Date.now()
      const res = await posta(['package', 'list'], { REDIS_URL: UNREACHABLE, POSTA_SERVICE_DOMAIN: DOMAIN })
      assert.ok(Date.now() - t0 < 10000, 'fails fast')
      assertRefused(res, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1 .*ECONNREFUSED/, 1)
      const slug = uniqueName('t')
      const create = await posta(['tenant', 'create', slug, '--package', pkg, '--contact', 'ops@example.net'], { REDIS_URL: UNREACHABLE })
      assertRefused(create, /cannot reach Redis/, 1)
    })

    it('Redis unreachable: the password in REDIS_URL is not shown', async () => {
      const res = await posta(['tenant', 'list'], { REDIS_URL: 'redis://admin:s3cretpw@127.0.0.1:1' })
      assertRefused(res, /cannot reach Redis at redis:\/\/admin:\*\*\*@127\.0\.0\.1:1/, 1)
      assert.ok(!res.stderr.includes('s3cretpw'))
    })

    it('a REDIS_URL that is not a Redis URL', async () => {
      assertRefused(await posta(['package', 'list'], { REDIS_URL: 'http://127.0.0.1:6379' }), /REDIS_URL=http:\/\/127\.0\.0\.1:6379: expected redis:\/\//, 1)
    })
  })
})
