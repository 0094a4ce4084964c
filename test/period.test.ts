// lib/period.ts: calendar months and days in the service time zone (quota months, resets, per-day usage).
import { strict as assert } from 'node:assert'
import { dayOf, daysOfMonth, formatDay, localMidnight, localTime, monthEnd, monthOf, parseLocalTime } from '../lib/period'

const ROME = 'Europe/Rome'
const NY = 'America/New_York'
const SYDNEY = 'Australia/Sydney'
const at = (iso: string) => new Date(iso)

describe('period', () => {
  describe('monthOf / dayOf at the month boundary', () => {
    it('Rome, winter (UTC+1): 2026-11-30T22:59:59Z is still November, 23:00:00Z is December', () => {
      assert.equal(monthOf(at('2026-11-30T22:59:59Z'), ROME), '2026-11')
      assert.equal(dayOf(at('2026-11-30T22:59:59Z'), ROME), '2026-11-30')
      assert.equal(monthOf(at('2026-11-30T23:00:00Z'), ROME), '2026-12')
      assert.equal(dayOf(at('2026-11-30T23:00:00Z'), ROME), '2026-12-01')
      // the UTC month is still November for another hour
      assert.equal(monthOf(at('2026-11-30T23:30:00Z'), ROME), '2026-12')
    })

    it('Rome, summer (UTC+2): 2026-07-31T21:59:59Z is July, 22:00:00Z is August', () => {
      assert.equal(monthOf(at('2026-07-31T21:59:59Z'), ROME), '2026-07')
      assert.equal(dayOf(at('2026-07-31T21:59:59Z'), ROME), '2026-07-31')
      assert.equal(monthOf(at('2026-07-31T22:00:00Z'), ROME), '2026-08')
      assert.equal(dayOf(at('2026-07-31T22:00:00Z'), ROME), '2026-08-01')
    })

    it('Rome, year end: 2026-12-31T22:59:59Z is 2026-12, 23:00:00Z is 2027-01', () => {
      assert.equal(monthOf(at('2026-12-31T22:59:59Z'), ROME), '2026-12')
      assert.equal(dayOf(at('2026-12-31T22:59:59Z'), ROME), '2026-12-31')
      assert.equal(monthOf(at('2026-12-31T23:00:00Z'), ROME), '2027-01')
      assert.equal(dayOf(at('2026-12-31T23:00:00Z'), ROME), '2027-01-01')
    })

    it('New York, winter (UTC-5): 2026-12-01T04:59:59Z is still November, 05:00:00Z is December', () => {
      assert.equal(monthOf(at('2026-12-01T04:59:59Z'), NY), '2026-11')
      assert.equal(dayOf(at('2026-12-01T04:59:59Z'), NY), '2026-11-30')
      assert.equal(monthOf(at('2026-12-01T05:00:00Z'), NY), '2026-12')
      assert.equal(dayOf(at('2026-12-01T05:00:00Z'), NY), '2026-12-01')
    })

    it('New York, summer (UTC-4): 2026-11-01T03:59:59Z is October, 04:00:00Z is November', () => {
      assert.equal(monthOf(at('2026-11-01T03:59:59Z'), NY), '2026-10')
      assert.equal(monthOf(at('2026-11-01T04:00:00Z'), NY), '2026-11')
      assert.equal(dayOf(at('2026-11-01T04:00:00Z'), NY), '2026-11-01')
    })

    it('New York, year end: 2027-01-01T04:59:59Z is 2026-12, 05:00:00Z is 2027-01', () => {
      assert.equal(monthOf(at('2027-01-01T04:59:59Z'), NY), '2026-12')
      assert.equal(dayOf(at('2027-01-01T04:59:59Z'), NY), '2026-12-31')
      assert.equal(monthOf(at('2027-01-01T05:00:00Z'), NY), '2027-01')
      assert.equal(dayOf(at('2027-01-01T05:00:00Z'), NY), '2027-01-01')
    })

    it('pads single-digit months and days', () => {
      assert.equal(monthOf(at('2026-03-05T12:00:00Z'), ROME), '2026-03')
      assert.equal(dayOf(at('2026-03-05T12:00:00Z'), ROME), '2026-03-05')
    })

    it('reads local midnight as hour 0 of the new day, never hour 24 of the old one', () => {
      // 2026-06-14T22:00:00Z is exactly 00:00 on 15 June in Rome (UTC+2)
      assert.equal(dayOf(at('2026-06-14T22:00:00Z'), ROME), '2026-06-15')
      assert.equal(dayOf(at('2026-06-14T21:59:59Z'), ROME), '2026-06-14')
    })
  })

  describe('DST change days in Rome', () => {
    it('2026-03-29 (clocks go forward at 02:00 CET): the day starts at 23:00Z the day before, the next at 22:00Z', () => {
      assert.equal(dayOf(at('2026-03-28T22:59:59Z'), ROME), '2026-03-28')
      assert.equal(dayOf(at('2026-03-28T23:00:00Z'), ROME), '2026-03-29')
      // 00:59:59Z is 01:59:59 CET, 01:00:00Z is 03:00:00 CEST: same day
      assert.equal(dayOf(at('2026-03-29T00:59:59Z'), ROME), '2026-03-29')
      assert.equal(dayOf(at('2026-03-29T01:00:00Z'), ROME), '2026-03-29')
      assert.equal(dayOf(at('2026-03-29T21:59:59Z'), ROME), '2026-03-29')
      assert.equal(dayOf(at('2026-03-29T22:00:00Z'), ROME), '2026-03-30')
      assert.equal(localMidnight(2026, 3, 29, ROME).toISOString(), '2026-03-28T23:00:00.000Z')
      assert.equal(localMidnight(2026, 3, 30, ROME).toISOString(), '2026-03-29T22:00:00.000Z')
    })

    it('2026-10-25 (clocks go back at 03:00 CEST): the day starts at 22:00Z the day before and lasts 25 hours', () => {
      assert.equal(dayOf(at('2026-10-24T21:59:59Z'), ROME), '2026-10-24')
      assert.equal(dayOf(at('2026-10-24T22:00:00Z'), ROME), '2026-10-25')
      // both 02:30 (CEST and CET) belong to the 25th
      assert.equal(dayOf(at('2026-10-25T00:30:00Z'), ROME), '2026-10-25')
      assert.equal(dayOf(at('2026-10-25T01:30:00Z'), ROME), '2026-10-25')
      assert.equal(dayOf(at('2026-10-25T22:59:59Z'), ROME), '2026-10-25')
      assert.equal(dayOf(at('2026-10-25T23:00:00Z'), ROME), '2026-10-26')
      const start = localMidnight(2026, 10, 25, ROME)
      const next = localMidnight(2026, 10, 26, ROME)
      assert.equal(start.toISOString(), '2026-10-24T22:00:00.000Z')
      assert.equal(next.toISOString(), '2026-10-25T23:00:00.000Z')
      assert.equal(next.getTime() - start.getTime(), 25 * 3600_000)
    })

    it('the month ends reflect the offset in force at their end', () => {
      // March ends in summer time, October in winter time
      assert.equal(monthEnd(at('2026-03-15T12:00:00Z'), ROME).toISOString(), '2026-03-31T22:00:00.000Z')
      assert.equal(monthEnd(at('2026-03-31T21:59:59Z'), ROME).toISOString(), '2026-03-31T22:00:00.000Z')
      assert.equal(monthOf(at('2026-03-31T21:59:59Z'), ROME), '2026-03')
      assert.equal(monthOf(at('2026-03-31T22:00:00Z'), ROME), '2026-04')
      assert.equal(monthEnd(at('2026-10-01T12:00:00Z'), ROME).toISOString(), '2026-10-31T23:00:00.000Z')
      assert.equal(monthEnd(at('2026-10-25T01:30:00Z'), ROME).toISOString(), '2026-10-31T23:00:00.000Z')
      assert.equal(monthOf(at('2026-10-31T22:59:59Z'), ROME), '2026-10')
      assert.equal(monthOf(at('2026-10-31T23:00:00Z'), ROME), '2026-11')
    })
  })

  describe('DST change days in New York', () => {
    it('2026-03-08 (forward at 02:00 EST) and 2026-11-01 (back at 02:00 EDT)', () => {
      assert.equal(localMidnight(2026, 3, 8, NY).toISOString(), '2026-03-08T05:00:00.000Z')
      assert.equal(localMidnight(2026, 3, 9, NY).toISOString(), '2026-03-09T04:00:00.000Z')
      assert.equal(localMidnight(2026, 11, 1, NY).toISOString(), '2026-11-01T04:00:00.000Z')
      assert.equal(localMidnight(2026, 11, 2, NY).toISOString(), '2026-11-02T05:00:00.000Z')
      assert.equal(dayOf(at('2026-11-02T04:59:59Z'), NY), '2026-11-01')
      assert.equal(dayOf(at('2026-11-02T05:00:00Z'), NY), '2026-11-02')
    })
  })

  describe('DST change days in Sydney (the change falls between UTC midnight and local midnight)', () => {
    it('2026-10-04 (forward at 02:00 AEST) and 2026-04-05 (back at 03:00 AEDT)', () => {
      assert.equal(localMidnight(2026, 10, 4, SYDNEY).toISOString(), '2026-10-03T14:00:00.000Z')
      assert.equal(localMidnight(2026, 10, 5, SYDNEY).toISOString(), '2026-10-04T13:00:00.000Z')
      assert.equal(localMidnight(2026, 4, 5, SYDNEY).toISOString(), '2026-04-04T13:00:00.000Z')
      assert.equal(localMidnight(2026, 4, 6, SYDNEY).toISOString(), '2026-04-05T14:00:00.000Z')
      assert.equal(dayOf(at('2026-10-03T13:59:59Z'), SYDNEY), '2026-10-03')
      assert.equal(dayOf(at('2026-10-03T14:00:00Z'), SYDNEY), '2026-10-04')
    })
  })

  describe('localMidnight', () => {
    it('gives the instant of 00:00 local time', () => {
      assert.equal(localMidnight(2026, 12, 1, ROME).toISOString(), '2026-11-30T23:00:00.000Z')
      assert.equal(localMidnight(2026, 8, 1, ROME).toISOString(), '2026-07-31T22:00:00.000Z')
      assert.equal(localMidnight(2026, 12, 1, NY).toISOString(), '2026-12-01T05:00:00.000Z')
      assert.equal(localMidnight(2026, 8, 1, NY).toISOString(), '2026-08-01T04:00:00.000Z')
      assert.equal(localMidnight(2026, 12, 1, 'UTC').toISOString(), '2026-12-01T00:00:00.000Z')
    })

    it('is the first instant of its day in the zone', () => {
      for (const zone of [ROME, NY, SYDNEY]) {
        for (const [y, m, d] of [[2026, 1, 1], [2026, 3, 29], [2026, 10, 25], [2028, 2, 29], [2026, 11, 1], [2026, 3, 8], [2026, 10, 4], [2026, 4, 5]]) {
          const mid = localMidnight(y, m, d, zone)
          const label = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`
          assert.equal(dayOf(mid, zone), label, `${zone} ${label}`)
          assert.notEqual(dayOf(new Date(mid.getTime() - 1000), zone), label, `${zone} ${label} - 1s`)
        }
      }
    })
  })

  describe('monthEnd', () => {
    it('is local midnight of the 1st of the next month (Rome)', () => {
      assert.equal(monthEnd(at('2026-11-15T10:00:00Z'), ROME).toISOString(), '2026-11-30T23:00:00.000Z')
      // the last second of November still resets at the same instant, the first of December a month later
      assert.equal(monthEnd(at('2026-11-30T22:59:59Z'), ROME).toISOString(), '2026-11-30T23:00:00.000Z')
      assert.equal(monthEnd(at('2026-11-30T23:00:00Z'), ROME).toISOString(), '2026-12-31T23:00:00.000Z')
    })

    it('of December is 1 January of the next year', () => {
      assert.equal(monthEnd(at('2026-12-10T00:00:00Z'), ROME).toISOString(), '2026-12-31T23:00:00.000Z')
      assert.equal(monthEnd(at('2026-12-31T22:59:59Z'), ROME).toISOString(), '2026-12-31T23:00:00.000Z')
      assert.equal(monthEnd(at('2026-12-31T23:00:00Z'), ROME).toISOString(), '2027-01-31T23:00:00.000Z')
      assert.equal(monthEnd(at('2026-12-10T00:00:00Z'), NY).toISOString(), '2027-01-01T05:00:00.000Z')
      // 2027-01-01T03:00Z is still 31 December in New York
      assert.equal(monthEnd(at('2027-01-01T03:00:00Z'), NY).toISOString(), '2027-01-01T05:00:00.000Z')
      assert.equal(monthOf(monthEnd(at('2026-12-10T00:00:00Z'), ROME), ROME), '2027-01')
    })

    it('uses the month of the zone, not of UTC (New York)', () => {
      // 2026-12-01T02:00Z is 30 November 21:00 in New York
      assert.equal(monthEnd(at('2026-12-01T02:00:00Z'), NY).toISOString(), '2026-12-01T05:00:00.000Z')
      assert.equal(monthEnd(at('2026-11-01T03:59:59Z'), NY).toISOString(), '2026-11-01T04:00:00.000Z')
      assert.equal(monthEnd(at('2026-11-01T04:00:00Z'), NY).toISOString(), '2026-12-01T05:00:00.000Z')
    })

    it('of February in a leap year (2028) is 1 March', () => {
      assert.equal(monthEnd(at('2028-02-29T12:00:00Z'), ROME).toISOString(), '2028-02-29T23:00:00.000Z')
      assert.equal(monthOf(at('2028-02-29T22:59:59Z'), ROME), '2028-02')
      assert.equal(dayOf(at('2028-02-29T22:59:59Z'), ROME), '2028-02-29')
      assert.equal(monthOf(at('2028-02-29T23:00:00Z'), ROME), '2028-03')
      assert.equal(monthEnd(at('2028-02-10T12:00:00Z'), NY).toISOString(), '2028-03-01T05:00:00.000Z')
      assert.equal(monthEnd(at('2026-02-10T12:00:00Z'), ROME).toISOString(), '2026-02-28T23:00:00.000Z')
    })

    it('is always after the instant and in the next month', () => {
      for (const zone of [ROME, NY, SYDNEY]) {
        for (let t = Date.parse('2026-01-01T00:00:00Z'); t < Date.parse('2029-01-01T00:00:00Z'); t += 7 * 3600_000 + 13 * 60_000) {
          const now = new Date(t)
          const end = monthEnd(now, zone)
          assert.ok(end.getTime() > t, `${zone} ${now.toISOString()}`)
          assert.notEqual(monthOf(end, zone), monthOf(now, zone), `${zone} ${now.toISOString()}`)
          assert.equal(monthOf(new Date(end.getTime() - 1000), zone), monthOf(now, zone), `${zone} ${now.toISOString()}`)
          assert.equal(dayOf(end, zone).slice(8), '01')
        }
      }
    })
  })

  describe('daysOfMonth', () => {
    it('lists every day of the month', () => {
      const nov = daysOfMonth('2026-11')
      assert.equal(nov.length, 30)
      assert.equal(nov[0], '2026-11-01')
      assert.equal(nov[29], '2026-11-30')
      assert.equal(daysOfMonth('2026-12').length, 31)
      assert.equal(daysOfMonth('2026-12')[30], '2026-12-31')
      assert.equal(daysOfMonth('2026-01').length, 31)
    })

    it('February has 29 days in 2028 and 28 in 2026', () => {
      const feb = daysOfMonth('2028-02')
      assert.equal(feb.length, 29)
      assert.equal(feb[28], '2028-02-29')
      assert.equal(daysOfMonth('2026-02').length, 28)
      assert.equal(daysOfMonth('2100-02').length, 28)
      assert.equal(daysOfMonth('2000-02').length, 29)
    })

    it('pads days and keeps them in order', () => {
      const d = daysOfMonth('2026-03')
      assert.deepEqual(d.slice(0, 3), ['2026-03-01', '2026-03-02', '2026-03-03'])
      assert.deepEqual([...d].sort(), d)
    })
  })

  describe('formatDay', () => {
    it('reads "1 December 2026" for the reset of November in Rome', () => {
      assert.equal(formatDay(monthEnd(at('2026-11-15T00:00:00Z'), ROME), ROME), '1 December 2026')
      assert.equal(formatDay(at('2026-11-30T23:00:00Z'), ROME), '1 December 2026')
      assert.equal(formatDay(at('2026-11-30T22:59:59Z'), ROME), '30 November 2026')
    })

    it('uses the day in the zone', () => {
      assert.equal(formatDay(at('2027-01-01T03:00:00Z'), NY), '31 December 2026')
      assert.equal(formatDay(at('2027-01-01T03:00:00Z'), ROME), '1 January 2027')
      assert.equal(formatDay(monthEnd(at('2028-02-10T00:00:00Z'), NY), NY), '1 March 2028')
    })
  })

  describe('parseLocalTime: what an operator types, in the service time zone', () => {
    const iso = (t: string, tz: string) => parseLocalTime(t, tz)?.toISOString() ?? null

    it('reads a wall-clock time in the zone, whatever the machine zone is', () => {
      assert.equal(iso('2026-11-28T14:00', ROME), '2026-11-28T13:00:00.000Z')
      assert.equal(iso('2026-07-28T14:00', ROME), '2026-07-28T12:00:00.000Z', 'summer time')
      assert.equal(iso('2026-11-28 14:00:30', NY), '2026-11-28T19:00:30.000Z')
      assert.equal(iso('2026-11-28T14:00:30.25', SYDNEY), '2026-11-28T03:00:30.250Z')
      assert.equal(iso('  2026-11-28t14:00  ', ROME), '2026-11-28T13:00:00.000Z')
    })

    it('a date alone is local midnight', () => {
      assert.equal(iso('2026-11-28', ROME), '2026-11-27T23:00:00.000Z')
      assert.equal(iso('2026-11-28', NY), '2026-11-28T05:00:00.000Z')
    })

    it('an explicit Z or offset wins', () => {
      assert.equal(iso('2026-11-28T14:00Z', ROME), '2026-11-28T14:00:00.000Z')
      assert.equal(iso('2026-11-28T14:00z', NY), '2026-11-28T14:00:00.000Z')
      assert.equal(iso('2026-11-28T14:00+05:30', ROME), '2026-11-28T08:30:00.000Z')
      assert.equal(iso('2026-11-28T14:00-0500', ROME), '2026-11-28T19:00:00.000Z')
      assert.equal(iso('2026-11-28T14:00-05', ROME), '2026-11-28T19:00:00.000Z')
    })

    it('clocks going back: the earlier of the two instants; jumping forward: moved on by the jump', () => {
      // Rome, 25 October 2026: 02:30 happens at 00:30Z (CEST) and at 01:30Z (CET)
      assert.equal(iso('2026-10-25T02:30', ROME), '2026-10-25T00:30:00.000Z')
      // Rome, 29 March 2026: 02:30 does not exist; read as 03:30 CEST
      assert.equal(iso('2026-03-29T02:30', ROME), '2026-03-29T01:30:00.000Z')
      assert.equal(iso('2026-11-01T01:30', NY), '2026-11-01T05:30:00.000Z')
      assert.equal(iso('2026-03-08T02:30', NY), '2026-03-08T07:30:00.000Z')
      assert.equal(localTime(2026, 3, 29, 3, 0, 0, 0, ROME).toISOString(), '2026-03-29T01:00:00.000Z')
    })

    it('refuses anything else', () => {
      for (const bad of ['', 'yesterday', '27/11/2026', '2026-11-28T14', '2026-13-01', '2026-02-29', '2026-02-30T10:00', '2026-11-28T24:00',
        '2026-11-28T14:60', '2026-11-28T14:00:61', '2026-11-28T14:00+24:00', '2026-11-28T14:00+01:60', '1764000000', '2026-11-28T14:00 Europe/Rome']) {
        assert.equal(parseLocalTime(bad, ROME), null, bad)
      }
      assert.equal(iso('2028-02-29', ROME), '2028-02-28T23:00:00.000Z', 'a leap day is a day')
    })
  })
})
