// plugins/shared/chain.ts under Haraka 3.3.4's own hook dispatch (node_modules/Haraka/plugins.js, run in process):
// a run of chained hooks is one Haraka hook call, in Haraka's order, and every rule of Haraka's dispatch still
// holds: a refusal names the plugin that refused (its log line, the deny hook's parameters), skip_plugins, a hook
// that throws, a client gone, a hook Haraka ended (its timeout), a callback called twice.
import { strict as assert } from 'node:assert'
import { chained } from '../plugins/shared/chain'
import { constants } from '../plugins/shared/haraka'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const plugins = require('Haraka/plugins')

type Next = (code?: number, msg?: unknown) => void
type Hook = (this: unknown, next: Next, target: Connection, params: unknown) => void

/** Just what Haraka's dispatch reads and calls on a connection. */
class Connection {
  state = 0
  transaction: { notes: { skip_plugins: string[] } } | null = { notes: { skip_plugins: [] } }
  hooks_to_run: unknown[] = []
  current_hook: unknown = null
  hook = ''
  ran: string[] = []
  replies: { code: number; msg: unknown }[] = []
  crit: string[] = []
  lines: unknown[] = []
  logdebug() {}
  logprotocol() {}
  loginfo(...args: unknown[]) { this.lines.push(args[0]) }
  lognotice() {}
  logwarn() {}
  logerror() {}
  logcrit(...args: unknown[]) { this.crit.push(String(args[0])) }
  mail_respond(code: number, msg: unknown) { this.replies.push({ code, msg }) }
  reset_transaction_respond() { this.ran.push('reset answered') }
}

let order = 0
/** Registers plugins for the `mail` hook, in this order, each with its hook; `deny` records what the deny hook got. */
function register(list: { name: string; hook: Hook; chain?: boolean; timeout?: number; on?: string }[]) {
  plugins.registered_plugins = {}
  plugins.registered_hooks = { mail: [], deny: [], reset_transaction: [] }
  for (const { name, hook, chain = true, timeout = 0, on = 'mail' } of list) {
    plugins.registered_plugins[name] = { name, timeout, [`hook_${on}`]: chain ? chained(hook as never) : hook }
    plugins.registered_hooks[on].push({ plugin: name, method: `hook_${on}`, priority: 0, order: order++, timeout })
  }
  const denied: unknown[][] = []
  plugins.registered_plugins.denylog = { name: 'denylog', timeout: 0, hook_deny(next: Next, _c: unknown, params: unknown[]) { denied.push(params); next() } }
  plugins.registered_hooks.deny.push({ plugin: 'denylog', method: 'hook_deny', priority: 0, order: order++ })
  return denied
}

const pass = (name: string): Hook => function (next, c) { c.ran.push(name); next() }
const later = (name: string, ms = 5): Hook => function (next, c) { c.ran.push(name); setTimeout(() => next(), ms) }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('chained hooks under Haraka\'s own dispatch', () => {
  const real = plugins.run_next_hook
  let dispatches = 0
  before(() => {
    plugins.run_next_hook = (...args: unknown[]) => { dispatches++; return real(...args) }
  })
  after(() => { plugins.run_next_hook = real })
  beforeEach(() => { dispatches = 0 })

  it('runs a run of chained hooks as one Haraka call, in Haraka\'s order, and breaks it at a plugin that is not chained', async () => {
    register([
      { name: 'a', hook: pass('a') },
      { name: 'b', hook: later('b') },
      { name: 'plain', hook: pass('plain'), chain: false },
      { name: 'c', hook: later('c') },
      { name: 'd', hook: pass('d') },
    ])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    await sleep(50)
    assert.deepEqual(c.ran, ['a', 'b', 'plain', 'c', 'd'])
    assert.deepEqual(c.replies, [{ code: constants.cont, msg: undefined }])
    assert.equal(dispatches, 3, 'a+b, plain, c+d: three of Haraka\'s hook calls instead of five')
    assert.deepEqual(c.crit, [])
  })

  it('answers with the refusal of a hook inside the run, names its plugin to the deny hook and the log, and runs no later hook', async () => {
    const denied = register([
      { name: 'a', hook: pass('a') },
      { name: 'refuser', hook: function (next, c) { c.ran.push('refuser'); setTimeout(() => next(constants.deny, 'no, says refuser'), 2) } },
      { name: 'c', hook: pass('c') },
    ])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    await sleep(30)
    assert.deepEqual(c.ran, ['a', 'refuser'])
    assert.deepEqual(c.replies, [{ code: constants.deny, msg: 'no, says refuser' }])
    assert.equal(denied.length, 1)
    assert.deepEqual(denied[0].slice(0, 4), [constants.deny, 'no, says refuser', 'refuser', 'hook_mail'])
    assert.equal(denied[0][5], 'mail')
    assert.ok(c.lines.some((l) => (l as { plugin?: string }).plugin === 'refuser' && (l as { retval?: string }).retval === 'DENY'), JSON.stringify(c.lines))
  })

  it('skips a chained hook that the transaction\'s skip_plugins names, as Haraka does', async () => {
    register([{ name: 'a', hook: pass('a') }, { name: 'b', hook: pass('b') }, { name: 'c', hook: pass('c') }])
    const c = new Connection()
    c.transaction!.notes.skip_plugins.push('b')
    plugins.run_hooks('mail', c, ['params'])
    await sleep(10)
    assert.deepEqual(c.ran, ['a', 'c'])
    assert.equal(c.replies.length, 1)
  })

  it('logs a chained hook that throws, as Haraka does, and goes on with the next', async () => {
    register([{ name: 'a', hook: pass('a') }, { name: 'thrower', hook: () => { throw new Error('boom') } }, { name: 'c', hook: pass('c') }])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    await sleep(10)
    assert.deepEqual(c.ran, ['a', 'c'])
    assert.deepEqual(c.crit, ['Plugin thrower failed:'])
    assert.deepEqual(c.replies, [{ code: constants.cont, msg: undefined }])
  })

  it('starts no later hook once the client is gone, and answers nothing', async () => {
    register([{ name: 'a', hook: later('a') }, { name: 'b', hook: pass('b') }])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    c.state = constants.connection.state.DISCONNECTING
    await sleep(20)
    assert.deepEqual(c.ran, ['a'])
    assert.deepEqual(c.replies, [])
  })

  it('starts no later hook once Haraka ended the hook (the first plugin\'s timeout covers the run)', async () => {
    register([
      { name: 'slow', hook: later('slow', 1300), timeout: 1 },
      { name: 'b', hook: pass('b') },
    ])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    await sleep(1500)
    assert.deepEqual(c.ran, ['slow'], 'b does not run after the timeout answered')
    assert.deepEqual(c.replies, [{ code: constants.denysoft, msg: 'plugin timeout' }])
  })

  it('starts no later hook once Haraka cancelled the hook (reset_transaction while it ran), not even one of the new hook', async () => {
    const ends: Hook = function (next, c) { setTimeout(() => { c.ran.push('r1 done'); next() }, 30) }
    register([
      { name: 'slow', hook: later('slow', 15) },
      { name: 'b', hook: pass('b') },
      { name: 'r1', hook: ends, on: 'reset_transaction' },
      { name: 'r2', hook: pass('r2'), on: 'reset_transaction' },
    ])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    await sleep(5)
    plugins.run_hooks('reset_transaction', c, [])
    await sleep(60)
    assert.deepEqual(c.ran, ['slow', 'r1 done', 'r2', 'reset answered'], 'the mail hook\'s late next() neither runs b nor takes r2 out of turn')
    assert.deepEqual(c.replies, [])
  })

  it('ignores a second callback of a chained hook and says so', async () => {
    register([
      { name: 'a', hook: pass('a') },
      { name: 'twice', hook: function (next, c) { c.ran.push('twice'); next(); next(constants.deny, 'late') } },
      { name: 'c', hook: later('c') },
    ])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    await sleep(30)
    assert.deepEqual(c.ran, ['a', 'twice', 'c'])
    assert.deepEqual(c.replies, [{ code: constants.cont, msg: undefined }])
    assert.deepEqual(c.crit, ['twice plugin ran callback multiple times - ignoring subsequent calls'])
  })

  it('behaves as a plain hook when Haraka calls it with nothing after it', async () => {
    register([{ name: 'only', hook: later('only') }])
    const c = new Connection()
    plugins.run_hooks('mail', c, ['params'])
    await sleep(20)
    assert.deepEqual(c.ran, ['only'])
    assert.deepEqual(c.replies, [{ code: constants.cont, msg: undefined }])
    assert.equal(dispatches, 1)
  })
})
