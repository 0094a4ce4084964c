// lib/metrics.ts and the strict Prometheus reader the end-to-end tests use (test/metrics.parse.ts): the registry's
// text parses line by line, and the reader refuses what Prometheus would refuse.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { authFailed, deliveryAttempted, refusalReason, refused, refusing, registry } from '../lib/metrics'
import { parsePrometheus, sumOf, valueOf } from './metrics.parse'

describe('metrics: the registry and the strict reader', () => {
  it('the registry text parses, every line, and holds what was counted', async () => {
    const before = parsePrometheus(await registry.metrics())
    authFailed('wrong password')
    authFailed('locked_ip')
    deliveryAttempted('192.0.2.1', 'deferred')
    refused('quota', 'data_post', true)
    const after = parsePrometheus(await registry.metrics())
    const diff = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels)
    assert.equal(diff('posta_auth_failures_total', { reason: 'wrong_password' }), 1)
    assert.equal(diff('posta_auth_failures_total', { reason: 'locked_ip' }), 1)
    assert.equal(diff('posta_deliveries_total', { source_ip: '192.0.2.1', result: 'deferred' }), 1)
    assert.equal(diff('posta_smtp_refusals_total', { reason: 'quota', stage: 'data_post', type: 'permanent' }), 1)
    assert.equal(after.get('posta_redis_command_seconds')?.type, 'histogram')
  })

  it('docker/grafana-dashboard.json is JSON whose queries name only metrics the node serves', () => {
    const root = path.join(__dirname, '..')
    const dashboard = JSON.parse(fs.readFileSync(path.join(root, 'docker', 'grafana-dashboard.json'), 'utf8'))
    const served = new Set<string>()
    for (const f of ['lib/metrics.ts', 'plugins/posta-metrics/index.ts']) {
      for (const m of fs.readFileSync(path.join(root, f), 'utf8').matchAll(/name: '(posta_[a-z_]+)'/g)) served.add(m[1])
    }
    assert.ok(served.size > 15)
    const exprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr))
    assert.ok(exprs.length >= 8)
    for (const e of exprs) {
      for (const [name] of e.matchAll(/posta_[a-z_]+/g)) {
        assert.ok(served.has(name.replace(/_(bucket|sum|count)$/, '')), `${name} in "${e}" is not a metric the node serves`)
      }
    }
  })

  it('a refusal takes the reason its plugin named, once; else its plugin\'s', () => {
    const conn = {}
    refusing(conn, 'suppression')
    assert.equal(refusalReason(conn, 'posta-trap', 'rcpt'), 'suppression')
    assert.equal(refusalReason(conn, 'posta-trap', 'rcpt'), 'trap', 'the named reason is used up')
    assert.equal(refusalReason(conn, 'posta-relay', 'mail'), 'auth')
    assert.equal(refusalReason(conn, 'posta-relay', 'rcpt'), 'relay')
    assert.equal(refusalReason(conn, 'posta-quota', 'mail'), 'quota')
    assert.equal(refusalReason(conn, 'some-other-plugin', 'data_post'), 'policy')
  })

  const good = [
    '# HELP a_total A counter.',
    '# TYPE a_total counter',
    'a_total{x="1",y="q\\"uo\\\\te\\n"} 3',
    'a_total 4 1700000000000',
    '# TYPE h histogram',
    'h_bucket{le="0.1"} 1',
    'h_bucket{le="+Inf"} 2',
    'h_sum 0.3',
    'h_count 2',
    '',
  ].join('\n')

  it('reads good text', () => {
    const f = parsePrometheus(good)
    assert.equal(valueOf(f, 'a_total', { x: '1', y: 'q"uo\\te\n' }), 3)
    assert.equal(sumOf(f, 'a_total'), 7)
    assert.equal(valueOf(f, 'h_count'), 2)
  })

  const bad: [string, string, RegExp][] = [
    ['no final line feed', good.slice(0, -1), /does not end with a line feed/],
    ['an undeclared family', good + 'b 1\n', /undeclared family/],
    ['a bad value', good.replace('a_total 4', 'a_total four'), /bad value/],
    ['a sample twice', good + 'a_total 5\n', /sample twice/],
    ['a negative counter', good.replace('a_total 4', 'a_total -4'), /negative counter/],
    ['an unquoted label', good.replace('x="1"', 'x=1'), /not quoted/],
    ['a bad escape', good.replace('q\\"uo', 'q\\tuo'), /bad escape/],
    ['buckets not cumulative', good.replace('h_bucket{le="+Inf"} 2', 'h_bucket{le="+Inf"} 0'), /not cumulative/],
    ['+Inf not equal to _count', good.replace('h_count 2', 'h_count 3'), /not equal to _count/],
    ['a bad type', good.replace('histogram', 'histo'), /bad type/],
    ['a TYPE without its type', good.replace('# TYPE h histogram', '# TYPE h'), /bad type|bad comment/],
    ['a sample before its TYPE', good.replace('# TYPE a_total counter\n', '') + '# TYPE a_total counter\n', /undeclared family|TYPE after samples/],
  ]
  for (const [what, text, re] of bad) {
    it(`refuses ${what}`, () => assert.throws(() => parsePrometheus(text), re))
  }
})
