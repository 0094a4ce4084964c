// lib/limits: the settings of posta-limits.ini, the per-client connection count, the refusal log, the bare-CR test.
import { strict as assert } from 'node:assert'
import { readSettings } from '../lib/config'
import { LIMITS_INI } from '../lib/inis'
import { bareCrIndex, ConnectionCount, DEFAULT_LIMITS, RefusalLog } from '../lib/limits'

describe('lib/limits', () => {
  describe('posta-limits.ini (schema LIMITS_INI, read by lib/config.ts)', () => {
    const read = (ini: Record<string, Record<string, unknown>>) => readSettings(LIMITS_INI, ini).values

    it('an empty file gives the documented defaults', () => {
      assert.deepEqual(read({ main: {} }), DEFAULT_LIMITS)
      assert.deepEqual(DEFAULT_LIMITS, {
        recipients: { enabled: true, max_recipients: 1000 },
        connections: { enabled: true, max_per_client: 50 },
        tls_handshake: { enabled: true, timeout_seconds: 10 },
        bare_cr: { enabled: true },
      })
    })

    it('reads every key, as strings or as Haraka-converted values', () => {
      assert.deepEqual(read({
        recipients: { enabled: 'false', max_recipients: '7' },
        connections: { enabled: true, max_per_client: 3 },
        tls_handshake: { enabled: 'yes', timeout_seconds: '30' },
        bare_cr: { enabled: 'off' },
      }), {
        recipients: { enabled: false, max_recipients: 7 },
        connections: { enabled: true, max_per_client: 3 },
        tls_handshake: { enabled: true, timeout_seconds: 30 },
        bare_cr: { enabled: false },
      })
    })

    it('refuses 0 for every number (a limit is turned off with enabled=false), and unknown keys', () => {
      for (const [section, key] of [['recipients', 'max_recipients'], ['connections', 'max_per_client'], ['tls_handshake', 'timeout_seconds']]) {
        assert.throws(() => read({ [section]: { [key]: '0' } }), new RegExp(`posta-limits\\.ini \\[${section}\\] ${key}=0 is refused`))
      }
      assert.throws(() => read({ recipients: { max: '5' } }), /\[recipients\] max is not a setting of this file/)
    })
  })

  describe('ConnectionCount', () => {
    type Conn = { open: boolean }
    const conn = (): Conn => ({ open: true })

    it('counts per client up to max, releases on close, and other clients are separate', () => {
      const count = new ConnectionCount<Conn>((c) => c.open)
      const a = [conn(), conn(), conn()]
      assert.ok(count.tryOpen('a', a[0], 2))
      assert.ok(count.tryOpen('a', a[1], 2))
      assert.equal(count.tryOpen('a', a[2], 2), false)
      assert.ok(count.tryOpen('b', conn(), 2), 'another client is not affected')
      count.close('a', a[0])
      assert.equal(count.of('a'), 1)
      assert.ok(count.tryOpen('a', a[2], 2))
      count.close('a', a[1])
      count.close('a', a[2])
      count.close('a', a[2]) // twice is harmless
      assert.equal(count.of('a'), 0)
      assert.equal(count.sweep(), 1, 'only b is left')
    })

    it('a connection whose close was missed is found closed when its client reaches the cap, and by sweep()', () => {
      const count = new ConnectionCount<Conn>((c) => c.open)
      const [x, y] = [conn(), conn()]
      assert.ok(count.tryOpen('a', x, 2))
      assert.ok(count.tryOpen('a', y, 2))
      x.open = false // closed, but close() never called
      assert.ok(count.tryOpen('a', conn(), 2))
      y.open = false
      const z = conn()
      const other = new ConnectionCount<Conn>((c) => c.open)
      other.tryOpen('q', z, 1)
      z.open = false
      assert.equal(other.sweep(), 0)
      assert.equal(other.of('q'), 0)
    })
  })

  describe('RefusalLog', () => {
    it('one line per client and interval, the next line carrying the refusals counted meanwhile', () => {
      const log = new RefusalLog(60000)
      const t0 = 1_000_000
      assert.deepEqual(log.note('a', t0), { log: true, refused: 1 })
      for (let i = 1; i <= 149; i++) assert.deepEqual(log.note('a', t0 + i), { log: false, refused: 0 })
      assert.deepEqual(log.note('b', t0 + 10), { log: true, refused: 1 }, 'each client has its own line')
      assert.deepEqual(log.note('a', t0 + 60000), { log: true, refused: 150 })
      assert.deepEqual(log.note('a', t0 + 60001), { log: false, refused: 0 })
    })

    it('forgets quiet clients', () => {
      const log = new RefusalLog(1000)
      log.note('a', 0)
      log.note('b', 5000) // prunes a, quiet for two intervals with nothing unlogged
      assert.deepEqual(log.note('a', 5001), { log: true, refused: 1 })
    })
  })

  describe('bareCrIndex', () => {
    const b = (s: string) => Buffer.from(s, 'latin1')
    it('accepts lines that end in CRLF and have no other CR', () => {
      for (const s of ['hello\r\n', '\r\n', '.\r\n', 'a\tb\r\n', 'no cr at all\n', '']) assert.equal(bareCrIndex(b(s)), -1, JSON.stringify(s))
    })
    it('finds every other CR', () => {
      assert.equal(bareCrIndex(b('\r.\r\n')), 0)
      assert.equal(bareCrIndex(b('a\rb\r\n')), 1)
      assert.equal(bareCrIndex(b('line\r\r\n')), 4)
      assert.equal(bareCrIndex(b('\r\r\n')), 0)
      assert.equal(bareCrIndex(b('tail\r')), 4, 'a CR with no LF after it')
      assert.equal(bareCrIndex(b('x\ry\n')), 1)
    })
  })
})
