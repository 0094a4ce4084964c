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

describe('posta-log: the wrapper around Haraka log methods', () => {
  // A stand-in for logger.js with the parts install() touches; its log methods record what they receive.
  function fakeLogger() {
    const got: unknown[][] = []
    const rec = (...args: unknown[]) => void got.push(args)
    const logger = {
      levels: { DATA: 9, PROTOCOL: 8, DEBUG: 7, INFO: 6, NOTICE: 5, WARN: 4, ERROR: 3, CRIT: 2, ALERT: 1, EMERG: 0 } as Record<string, number>,
      loglevel: 6, format: 'DEFAULT', formats: { DEFAULT: 'DEFAULT', LOGFMT: 'LOGFMT', JSON: 'JSON' },
      log_if_level: (_level: string, _key: string) => rec, loginfo: rec, lognotice: rec, logdebug: rec, info: rec,
    }
    return { logger, got }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { install } = require('../plugins/posta-log') as typeof import('../plugins/posta-log')

  it('hands on one escaped message, and the objects that name the line untouched', () => {
    const { logger, got } = fakeLogger()
    install(logger as never, null, [])
    const conn = { uuid: 'C1', name: undefined }
    logger.loginfo(conn, 'sender <"tenant=v"@x>', { tenant: 'acme', helo: 'a b=c' })
    assert.deepEqual(got, [[conn, 'sender <"tenant\\u003dv"@x> tenant=acme helo="a b\\u003dc"']])
  })

  it('skips lines below the level, passes json through, and never throws', () => {
    const { logger, got } = fakeLogger()
    install(logger as never, null, [])
    logger.logdebug('hidden')
    assert.equal(got.length, 0)
    logger.format = 'JSON'
    logger.loginfo('raw=kept', { a: 1 })
    assert.deepEqual(got.pop(), ['raw=kept', { a: 1 }])
    logger.format = 'DEFAULT'
    const evil = { get boom() { throw new Error('getter=bad') } }
    assert.doesNotThrow(() => logger.loginfo('x', evil))
    assert.deepEqual(got.pop(), ['log line not formatted: getter\\u003dbad'])
    assert.doesNotThrow(() => logger.loginfo(Symbol('s') as never))
    assert.equal(got.length, 1)
  })

  it('wraps once, however often it is installed, and wraps log functions made later', () => {
    const { logger, got } = fakeLogger()
    install(logger as never, null, [])
    install(logger as never, null, [])
    logger.loginfo('a=b')
    assert.deepEqual(got.pop(), ['a\\u003db'])
    const later = logger.log_if_level('INFO', 'LOGINFO') as (...a: unknown[]) => void
    later('c=d')
    assert.deepEqual(got.pop(), ['c\\u003dd'])
  })
})
