// lib/size.ts: traffic sizes typed by the operator (parseSize) and shown to people (formatSize).
import { strict as assert } from 'node:assert'
import { InputError } from '../lib/errors'
import { formatSize, parseSize } from '../lib/size'

describe('size', () => {
  describe('parseSize', () => {
    it('reads a plain number as bytes', () => {
      assert.equal(parseSize('1'), 1)
      assert.equal(parseSize('12345'), 12345)
      assert.equal(parseSize('100B'), 100)
      assert.equal(parseSize('100 b'), 100)
    })

    it('reads KB, MB, GB, TB as powers of 1000', () => {
      assert.equal(parseSize('1KB'), 1000)
      assert.equal(parseSize('500MB'), 500_000_000)
      assert.equal(parseSize('10GB'), 10_000_000_000)
      assert.equal(parseSize('2TB'), 2_000_000_000_000)
    })

    it('reads KiB, MiB, GiB, TiB as powers of 1024', () => {
      assert.equal(parseSize('1KiB'), 1024)
      assert.equal(parseSize('3MiB'), 3 * 1024 ** 2)
      assert.equal(parseSize('10GiB'), 10 * 1024 ** 3)
      assert.equal(parseSize('2TiB'), 2 * 1024 ** 4)
    })

    it('takes decimals and returns a whole number of bytes', () => {
      assert.equal(parseSize('1.5GB'), 1_500_000_000)
      assert.equal(parseSize('0.5KiB'), 512)
      assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3)
      const odd = parseSize('1.3333KB')
      assert.ok(Number.isInteger(odd))
      assert.equal(odd, 1333)
    })

    it('ignores the case of the unit', () => {
      for (const s of ['10gb', '10Gb', '10gB', '10GB']) assert.equal(parseSize(s), 10e9, s)
      for (const s of ['10gib', '10GIB', '10GiB', '10giB']) assert.equal(parseSize(s), 10 * 1024 ** 3, s)
    })

    it('allows spaces around the number and between number and unit', () => {
      assert.equal(parseSize(' 10 GB '), 10e9)
      assert.equal(parseSize('10\tMiB'), 10 * 1024 ** 2)
      assert.equal(parseSize('  42  '), 42)
    })

    const bad: [string, RegExp][] = [
      ['', /bad size ""/],
      ['   ', /bad size/],
      ['10XB', /unknown unit "XB"/],
      ['10 K', /unknown unit "K"/],
      ['-5', /bad size "-5"/],
      ['-5GB', /bad size "-5GB"/],
      ['0', /more than zero/],
      ['0GB', /more than zero/],
      ['0.0001B', /more than zero/],
      ['abc', /bad size "abc"/],
      ['GB', /bad size "GB"/],
      ['1,5GB', /bad size/],
      ['1e9', /bad size/],
      ['.5GB', /bad size/],
      ['10 GB extra', /bad size/],
      ['Infinity', /bad size/],
      ['NaN', /bad size/],
      ['99999999999TB', /too large/],
      ['9'.repeat(400), /too large/],
      ['10000000TiB', /too large/],
    ]
    for (const [input, msg] of bad) {
      it(`refuses ${JSON.stringify(input.length > 20 ? `${input.slice(0, 20)}...` : input)} with an InputError`, () => {
        assert.throws(
          () => parseSize(input),
          (err: unknown) => {
            assert.ok(err instanceof InputError, `expected InputError, got ${err}`)
            assert.match(err.message, msg)
            assert.ok(!err.message.includes('\n'), 'one-line message')
            return true
          },
        )
      })
    }

    it('accepts the largest safe integer and nothing above it', () => {
      assert.equal(parseSize(String(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER)
      assert.throws(() => parseSize('9007199254740993'), /too large/)
    })
  })

  describe('formatSize', () => {
    const cases: [number, string][] = [
      [0, '0 B'],
      [1, '1 B'],
      [999, '999 B'],
      [1000, '1 KB'],
      [1500, '1.5 KB'],
      [12_345, '12.3 KB'],
      [999_000, '999 KB'],
      [1_000_000, '1 MB'],
      [123_456_789, '123 MB'],
      [1_500_000_000, '1.5 GB'],
      [10 * 1024 ** 3, '10.7 GB'],
      [1e12, '1 TB'],
      [2.25e12, '2.25 TB'],
      [1e15, '1 PB'],
      [1e18, '1000 PB'],
    ]
    for (const [bytes, text] of cases) {
      it(`formats ${bytes} as "${text}"`, () => assert.equal(formatSize(bytes), text))
    }

    it('never shows 1000 of a unit when rounding reaches the next unit', () => {
      assert.equal(formatSize(999_500), '1 MB')
      assert.equal(formatSize(999_999), '1 MB')
      assert.equal(formatSize(999_999_999), '1 GB')
      assert.equal(formatSize(999_600_000_000), '1 TB')
    })

    it('round-trips the sizes an operator types', () => {
      for (const s of ['500MB', '1.5GB', '10GB', '2TB', '750KB']) {
        assert.equal(formatSize(parseSize(s)).replace(' ', ''), s)
      }
    })
  })
})
