// guard() (plugins/shared/haraka.ts): an async hook that fails answers DENYSOFT once, and its error line names the
// message like every other line (tenant, auth_user, client_ip, tx), whether the hook's first argument is a
// connection (SMTP side) or an outbound item (delivery side).
import { strict as assert } from 'node:assert'
import { constants, guard, logFields, messageFields, type Connection, type HMailItem, type Next, type Plugin } from '../plugins/shared/haraka'

type Call = { level: string; args: unknown[] }

function recorder(calls: Call[]) {
  const log = (level: string) => (...args: unknown[]) => void calls.push({ level, args })
  return { logdebug: log('debug'), loginfo: log('info'), lognotice: log('notice'), logwarn: log('warn'), logerror: log('error'), logcrit: log('crit') }
}

function fieldsOf(call: Call): Record<string, unknown> {
  return Object.assign({}, ...call.args.slice(2).filter((a) => a && typeof a === 'object' && (a as object).constructor === Object))
}

describe('guard(): error lines carry the message fields', () => {
  const calls: Call[] = []
  const plugin = { name: 'posta-test', ...recorder(calls) } as unknown as Plugin
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const failing = guard('lookup failed, will retry', async function (this: Plugin, _next: Next, _target: Connection | HMailItem) {
    throw new Error('redis down')
  })
  let replies: [number | undefined, unknown][] = []
  const next: Next = (code, msg) => void replies.push([code, msg])
  const settle = () => new Promise((r) => setImmediate(r))

  beforeEach(() => {
    calls.length = 0
    replies = []
  })

  it('on the SMTP side: tenant, auth_user, client_ip and tx of the connection', async () => {
    const connection = {
      uuid: 'C0FFEE', remote: { ip: '192.0.2.9', port: 1 }, notes: { tenant: 'acme', auth_user: 'mail@acme.posta.localhost' },
      transaction: { uuid: 'C0FFEE.1', notes: { tenant: 'acme' } }, ...recorder(calls),
    } as unknown as Connection
    failing.call(plugin, next, connection)
    await settle()
    assert.deepEqual(replies, [[constants.denysoft, 'lookup failed, will retry']])
    assert.equal(calls.length, 1)
    assert.equal(calls[0].level, 'error')
    assert.equal(calls[0].args[0], plugin, 'the line names the plugin')
    assert.match(String(calls[0].args[1]), /^lookup failed, will retry: redis down$/)
    assert.deepEqual(fieldsOf(calls[0]), { tenant: 'acme', auth_user: 'mail@acme.posta.localhost', client_ip: '192.0.2.9', tx: 'C0FFEE.1' })
    assert.deepEqual(fieldsOf(calls[0]), messageFields(connection))
  })

  it('on the delivery side: the fields the message carries, tx as the client saw it', async () => {
    const hmail = {
      uuid: 'C0FFEE.1.2', num_failures: 0,
      todo: { uuid: 'C0FFEE.1.2', domain: 'example.net', notes: { tenant: 'acme', auth_user: 'mail@acme.posta.localhost', client_ip: '192.0.2.9' }, rcpt_to: [], queue_time: 0 },
      ...recorder(calls),
    } as unknown as HMailItem
    failing.call(plugin, next, hmail)
    await settle()
    assert.deepEqual(replies, [[constants.denysoft, 'lookup failed, will retry']])
    assert.equal(calls.length, 1)
    assert.deepEqual(fieldsOf(calls[0]), { tenant: 'acme', auth_user: 'mail@acme.posta.localhost', client_ip: '192.0.2.9', tx: 'C0FFEE.1', delivery: 'C0FFEE.1.2' })
  })

  it('mail the relay sends itself (a DSN: no notes) and other first arguments: the line still goes out', async () => {
    const dsn = { uuid: 'D5N.1', todo: { uuid: 'D5N.1.1', domain: 'x', notes: {}, rcpt_to: [], queue_time: 0 }, ...recorder(calls) } as unknown as HMailItem
    failing.call(plugin, next, dsn)
    failing.call(plugin, next, 'not an object' as unknown as Connection)
    await settle()
    assert.equal(replies.length, 2)
    assert.equal(calls.length, 2)
    assert.deepEqual(fieldsOf(calls[0]), { tenant: '-', auth_user: '-', client_ip: '-', tx: 'D5N.1', delivery: 'D5N.1.1' })
    assert.deepEqual(logFields('x'), {})
    assert.deepEqual(logFields(null), {})
  })

  it('calls next once even when the hook answered before it failed', async () => {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const late = guard('x failed', async function (this: Plugin, n: Next, _target: Connection) {
      n(constants.ok)
      throw new Error('after the reply')
    })
    late.call(plugin, next, { ...recorder(calls), remote: { ip: '192.0.2.1' }, notes: {}, transaction: null, uuid: 'U' } as unknown as Connection)
    await settle()
    assert.deepEqual(replies, [[constants.ok, undefined]])
    assert.equal(calls.length, 1, 'the error is still logged')
  })
})
