// lib/limits: the settings of posta-limits.ini, the per-client connection count, the refusal log, the bare-CR test.
import { strict as assert } from 'node:assert'
import { bareCrIndex, ConnectionCount, DEFAULT_LIMITS, parseLimitSettings, RefusalLog } from '../lib/limits'

describe('lib/limits', () => {
  describe('parseLimitSettings', () => {
    it('an empty file gives the documented defaults', () => {
      assert.deepEqual(parseLimitSettings({ main: {} }), DEFAULT_LIMITS)
      assert.deepEqual(DEFAULT_LIMITS, {
        recipients: { enabled: true, maxRecipients: 1000 },
        connections: { enabled: true, maxPerClient: 50 },
        tlsHandshake: { enabled: true, timeoutSeconds: 10 },
        bareCr: { enabled: true },
      })
    })

    it('reads every key, as strings or as Haraka-converted values', () => {
      const s = parseLimitSettings({
        recipients: { enabled: 'false', max_recipients: '7' },
        connections: { enabled: true, max_per_client: 3 },
        tls_handshake: { enabled: 'yes', timeout_seconds: '30' },
        bare_cr: { enabled: 'off' },
      })
      assert.deepEqual(s, {
        recipients: { enabled: false, maxRecipients: 7 },
        connections: { enabled: true, maxPerClient: 3 },
        tlsHandshake: { enabled: true, timeoutSeconds: 30 },
        bareCr: { enabled: false },
      })
    })

    it('refuses 0, negatives, fractions, words and values past the range, naming the key', () => {
      for (const [section, key, value] of [
        ['recipients', 'max_recipients', '0'], ['recipients', 'max_recipients', '100001'], ['recipients', 'max_recipients', 'lots'],
        ['connections', 'max_per_client', '-1'], ['connections', 'max_per_client', '2.5'], ['connections', 'max_per_client', '0'],
        ['tls_handshake', 'timeout_seconds', '0'], ['tls_handshake', 'timeout_seconds', '3601'],
      ]) {
        assert.throws(() => parseLimitSettings({ [section]: { [key]: value } }), new RegExp(`\\[${section}\\] ${key}: ${value.replace('.', '\\.')} is not a whole number`))
      }
      assert.throws(() => parseLimitSettings({ bare_cr: { enabled: 'maybe' } }), /\[bare_cr\] enabled: maybe is not true or false/)
    })

    it('refuses unknown sections and keys (a typo must not silently leave a default in force)', () => {
      assert.throws(() => parseLimitSettings({ recipient: { max_recipients: '5' } }), /unknown section \[recipient\]/)
      assert.throws(() => parseLimitSettings({ recipients: { max: '5' } }), /\[recipients\]: unknown key max/)
      assert.throws(() => parseLimitSettings({ main: { max_recipients: '5' } }), /\[main\]: unknown key max_recipients/)
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
