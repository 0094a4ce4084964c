// Operator accounts through the real `posta` CLI (child process, compiled code in dist/) against a real Redis:
// create (password shown once, stored as a scrypt hash), list, password, remove, names checked, every change in
// the audit log; verifyOperator and listAudit directly.
import { strict as assert } from 'node:assert'
import { audit, listAudit } from '../lib/audit'
import { keys } from '../lib/keys'
import { checkOperatorName, verifyOperator } from '../lib/operators'
import { posta, type CliResult } from '../testkit/cli'
import { testRedis, type TestRedis } from '../testkit/redis'

function assertRefused(res: CliResult, re: RegExp) {
  assert.equal(res.code, 2, `exit code (stderr: ${res.stderr})`)
  assert.equal(res.stdout, '')
  assert.match(res.stderr, /^posta: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(res.stderr)}`)
  assert.match(res.stderr, re)
}

describe('posta operator (child process, real Redis)', function () {
  this.timeout(60000)
  let r: TestRedis
  let env: Record<string, string>
  const run = (...args: string[]) => posta(args, env)

  before(async () => {
    r = await testRedis()
    env = { REDIS_URL: r.url, POSTA_SERVICE_DOMAIN: 'posta.example' }
  })
  after(async () => {
    await r?.close()
  })

  it('create prints the password once, stores only its scrypt hash, and list shows the account without it', async () => {
    const res = await run('operator', 'create', 'alice', '--json')
    assert.equal(res.code, 0, res.stderr)
    const c = res.json<{ name: string; password: string }>()
    assert.equal(c.name, 'alice')
    assert.match(c.password, /^[A-Za-z0-9]{24}$/)
    const stored = JSON.parse((await r.client.hget(keys.operators(), 'alice'))!)
    assert.match(stored.hash, /^scrypt\$32768\$8\$1\$/)
    assert.ok(!JSON.stringify(stored).includes(c.password), 'the password itself is not stored')
    assert.equal(await verifyOperator(r.client, 'alice', c.password), true)
    assert.equal(await verifyOperator(r.client, 'alice', `${c.password}x`), false)

    const list = await run('operator', 'list', '--json')
    assert.equal(list.code, 0, list.stderr)
    const l = list.json<Record<string, string>[]>()
    assert.deepEqual(l.map((o) => o.name), ['alice'])
    assert.deepEqual(Object.keys(l[0]).sort(), ['created_at', 'name', 'password_changed_at'])
    assert.ok(!list.stdout.includes('scrypt') && !list.stdout.includes(c.password))

    const text = await run('operator', 'list')
    assert.match(text.stdout, /^OPERATOR\s+CREATED\s+PASSWORD CHANGED\nalice\s+\d{4}-/)
  })

  it('the text output of create says the password is shown once', async () => {
    const res = await run('operator', 'create', 'bob')
    assert.equal(res.code, 0, res.stderr)
    const pw = /password\s+(\S+)/.exec(res.stdout)![1]
    assert.match(res.stdout, /shown this once/)
    assert.equal(await verifyOperator(r.client, 'bob', pw), true)
  })

  it('create refuses an existing name and keeps its password', async () => {
    const before = await r.client.hget(keys.operators(), 'alice')
    assertRefused(await run('operator', 'create', 'alice'), /operator "alice" already exists: "posta operator password alice"/)
    assert.equal(await r.client.hget(keys.operators(), 'alice'), before)
  })

  it('create refuses bad names with one line naming the rule, and writes nothing', async () => {
    const bad = ['Alice', '1alice', 'a'.repeat(33), 'al ice', 'al{ice}', 'al:ice', 'al.ice!']
    const results = await Promise.all(bad.map((n) => run('operator', 'create', n)))
    for (const res of results) assertRefused(res, /bad operator name ".*": use 1-32 lower-case letters, digits, '\.', '_' or '-', starting with a letter/)
    assert.deepEqual((await r.client.hkeys(keys.operators())).sort(), ['alice', 'bob'])
    assert.throws(() => checkOperatorName('-alice'), /bad operator name "-alice"/)
    assert.equal(checkOperatorName('a'.repeat(32)), 'a'.repeat(32))
    assert.equal(checkOperatorName('ops.on-call_2'), 'ops.on-call_2')
  })

  it('password gives a new password once: the old one stops working, created_at stays', async () => {
    const before = JSON.parse((await r.client.hget(keys.operators(), 'bob'))!)
    await new Promise((ok) => setTimeout(ok, 5))
    const res = await run('operator', 'password', 'bob', '--json')
    assert.equal(res.code, 0, res.stderr)
    const c = res.json<{ name: string; password: string }>()
    assert.equal(c.name, 'bob')
    const after = JSON.parse((await r.client.hget(keys.operators(), 'bob'))!)
    assert.equal(after.created_at, before.created_at)
    assert.ok(after.password_changed_at > before.password_changed_at)
    assert.notEqual(after.hash, before.hash)
    assert.equal(await verifyOperator(r.client, 'bob', c.password), true)
  })

  it('password and remove of an unknown operator are refused and create nothing', async () => {
    assertRefused(await run('operator', 'password', 'carol'), /unknown operator "carol": see "posta operator list"/)
    assertRefused(await run('operator', 'remove', 'carol'), /unknown operator "carol"/)
    assert.equal(await r.client.hexists(keys.operators(), 'carol'), 0)
  })

  it('remove deletes the account: its password no longer verifies, list no longer shows it', async () => {
    const c = (await run('operator', 'create', 'dave', '--json')).json<{ password: string }>()
    assert.equal(await verifyOperator(r.client, 'dave', c.password), true)
    const res = await run('operator', 'remove', 'dave', '--json')
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual(res.json(), { removed: 'dave' })
    assert.equal(await verifyOperator(r.client, 'dave', c.password), false)
    assert.ok(!(await run('operator', 'list', '--json')).json<{ name: string }[]>().some((o) => o.name === 'dave'))
  })

  it('every account change is in the audit log, newest first, by cli:<user>, without a password', async () => {
    const l = await listAudit(r.client)
    const mine = l.filter((e) => e.operator.startsWith('cli:')).map((e) => `${e.action} ${e.target}`)
    assert.deepEqual(mine.slice(0, 5), ['operator remove dave', 'operator create dave', 'operator password bob', 'operator create bob', 'operator create alice'])
    for (const e of l) {
      assert.match(e.at, /^\d{4}-\d\d-\d\dT/)
      assert.match(e.operator, /^cli:\S+$/)
    }
    const raw = (await r.client.lrange(keys.audit(), 0, -1)).join('\n')
    assert.ok(!raw.includes('scrypt') && !/"password"/.test(raw), 'no password or hash in the audit log')
  })

  it('verifyOperator: unknown, malformed or oversized input is false, never an error', async () => {
    assert.equal(await verifyOperator(r.client, 'nobody', 'x'), false)
    assert.equal(await verifyOperator(r.client, '', ''), false)
    assert.equal(await verifyOperator(r.client, 'ALICE', 'x'), false)
    assert.equal(await verifyOperator(r.client, 'alice', 'x'.repeat(5000)), false)
    assert.equal(await verifyOperator(r.client, undefined as unknown as string, undefined as unknown as string), false)
  })

  it('listAudit returns the newest first and honours the limit', async () => {
    for (let i = 0; i < 5; i++) await audit(r.client, { operator: 'alice', action: 'tenant topup', target: `t${i}`, details: { i } })
    const l = await listAudit(r.client, 3)
    assert.deepEqual(l.map((e) => e.target), ['t4', 't3', 't2'])
    assert.deepEqual(l[0].details, { i: 4 })
    assert.equal((await listAudit(r.client, 0)).length, 1, 'a limit below 1 reads one entry')
  })

  it('--help and the overall help list the operator commands', async () => {
    const all = await run('--help')
    for (const v of ['create <name>', 'list', 'remove <name>', 'password <name>']) assert.ok(all.stdout.includes(`posta operator ${v}`), v)
  })
})
