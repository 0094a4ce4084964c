// The escaping rules of log lines (lib/logs.ts): a value or a message can never contain a raw `=`, CR, LF or other
// control character, and every value reads back exactly.
import { strict as assert } from 'node:assert'
import { escapeText, formatFields, formatKey, formatValue, parseFields } from '../lib/logs'

describe('log line escaping (lib/logs)', () => {
  it('writes safe values bare and quotes the rest JSON-style, with = as \\u003d', () => {
    assert.equal(formatValue('192.0.2.7'), '192.0.2.7')
    assert.equal(formatValue('mail@acme.posta.localhost'), 'mail@acme.posta.localhost')
    assert.equal(formatValue(42), '42')
    assert.equal(formatValue(''), '""')
    assert.equal(formatValue(null), '""')
    assert.equal(formatValue(undefined), '""')
    assert.equal(formatValue('a b'), '"a b"')
    assert.equal(formatValue('tenant=victim'), '"tenant\\u003dvictim"')
    assert.equal(formatValue('say "hi"\\'), '"say \\"hi\\"\\\\"')
    assert.equal(formatValue('x\r\ny\tz\u0000\u007f\u0085\u2028\u202e'), '"x\\r\\ny\\tz\\u0000\\u007f\\u0085\\u2028\\u202e"')
    assert.equal(formatValue('àé日本'), 'àé日本', 'printable Unicode stays readable')
    assert.equal(formatValue('a\u00a0b'), '"a\u00a0b"', 'a Unicode space is quoted')
    assert.equal(formatValue({ a: 1 }), '"{\\"a\\":1}"', 'a plain object as JSON')
    assert.equal(formatValue(['a', 'b']), 'a,b')
    assert.equal(formatValue(Object.assign(Object.create(null), { a: 'b=c' })), '"{\\"a\\":\\"b\\u003dc\\"}"', 'a null-prototype object')
    assert.equal(formatValue(new Date(Date.UTC(2026, 11, 2))), '2026-12-02T00:00:00.000Z')
  })

  it('escapes free text: =, backslash and control characters, keeping spaces and quotes', () => {
    assert.equal(escapeText('sender <a@b> ok'), 'sender <a@b> ok')
    assert.equal(escapeText('("<z@e> result=bounced tenant=victim")'), '("<z@e> result\\u003dbounced tenant\\u003dvictim")')
    assert.equal(escapeText('a\\u003db'), 'a\\\\u003db', 'a literal \\u003d cannot pass for an escaped =')
    assert.equal(escapeText('one\r\ntwo\u2029'), 'one\\r\\ntwo\\u2029')
  })

  it('no value and no text can put a raw =, CR or LF in a line', () => {
    const hostile = ['=', 'a=b', 'x tenant=victim', '"q=1"', '\\=', 'k\n[CRIT] x=y', '\u2028tenant=v', 'a\\"=b', '\r=\r']
    for (const h of hostile) {
      for (const out of [formatValue(h), escapeText(h)]) {
        assert.doesNotMatch(out, /[=\r\n\u2028]/, `${JSON.stringify(h)} -> ${out}`)
      }
    }
  })

  it('keys are code, but still cannot carry separators', () => {
    assert.equal(formatKey('client_ip'), 'client_ip')
    assert.equal(formatKey('a b=c\n'), 'a_b_c_')
    assert.equal(formatKey(''), '_')
  })

  it('fields read back exactly, and a forged field inside a value or the text is never read as one', () => {
    const fields = { tenant: 'acme', auth_user: 'x@acme tenant=victim client_ip=6.6.6.6', client_ip: '127.0.0.1', note: 'a "b" \\ c\r\n', empty: '' }
    const line = `[NOTICE] [u] [posta-auth] ${escapeText('text tenant=victim2 with "quotes')} ${formatFields(fields)}`
    const back = parseFields(line)
    assert.deepEqual(back, fields)
    assert.equal(line.match(/ tenant=/g)?.length, 1)
    assert.equal(line.match(/ client_ip=/g)?.length, 1)
  })
})
