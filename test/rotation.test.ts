// lib/rotation.ts: slots of the day in the service time zone (DST included), the active subset of a slot and the
// day's schedule. Pure functions: no Redis.
import { strict as assert } from 'node:assert'
import { localMidnight } from '../lib/period'
import { activeByOwner, activeCount, activeIps, daySchedule, DEFAULT_ROTATION, slotAt, slotsPerDay, sortPool, type OwnedIp, type RotationOptions, type Slot } from '../lib/rotation'

const ROME: RotationOptions = { ...DEFAULT_ROTATION, timeZone: 'Europe/Rome' }
const UTC: RotationOptions = { ...DEFAULT_ROTATION, timeZone: 'UTC' }
const H = 3600000
const M = 60000

/** A pool of n distinct documentation addresses (198.18.0.0/15), not in sorted order. */
const pool = (n: number, base = 10) => Array.from({ length: n }, (_, i) => `198.18.${base}.${(i * 37) % 250 + 1}`)

/** `YYYY-MM-DD` of the day after. */
const nextDay = (day: string) => new Date(Date.UTC(+day.slice(0, 4), +day.slice(5, 7) - 1, +day.slice(8, 10) + 1)).toISOString().slice(0, 10)

/** Every slot of a day, walked with slotAt alone (from local midnight, jumping to each slot's end). */
function slotsOfDay(day: string, o: RotationOptions): Slot[] {
  const [y, m, d] = day.split('-').map(Number)
  const out: Slot[] = []
  let at = localMidnight(y, m, d, o.timeZone)
  for (let guard = 0; guard < 100; guard++) {
    const s = slotAt(at, o)
    if (s.day !== day) return out
    out.push(s)
    at = s.end
  }
  throw new Error(`slots of ${day} do not end`)
}

/** Asserts that the slots tile the day: first starts at midnight, each ends where the next starts, last at the next midnight. */
function assertTiles(day: string, slots: Slot[], o: RotationOptions): void {
  const [y, m, d] = day.split('-').map(Number)
  assert.equal(slots[0].start.getTime(), localMidnight(y, m, d, o.timeZone).getTime(), `${day}: first slot starts at local midnight`)
  assert.equal(slots[slots.length - 1].end.getTime(), localMidnight(y, m, d + 1, o.timeZone).getTime(), `${day}: last slot ends at the next midnight`)
  slots.forEach((s, i) => {
    assert.equal(s.index, i, `${day}: slot indices are 0..n-1`)
    assert.equal(s.day, day)
    assert.ok(s.end.getTime() > s.start.getTime(), `${day}: slot ${i} is not empty`)
    if (i > 0) {
      assert.equal(s.start.getTime(), slots[i - 1].end.getTime(), `${day}: slot ${i} starts where slot ${i - 1} ends`)
      assert.equal(s.number, slots[i - 1].number + 1, `${day}: slot numbers are consecutive within the day`)
    }
    // an instant inside is in that slot, and the last millisecond too
    assert.equal(slotAt(new Date(s.start.getTime() + 1), o).number, s.number)
    assert.equal(slotAt(new Date(s.end.getTime() - 1), o).number, s.number)
  })
}

describe('rotation', () => {
  describe('slotsPerDay', () => {
    it('is 24h divided by the slot length, rounded up', () => {
      assert.equal(slotsPerDay(DEFAULT_ROTATION), 6)
      assert.equal(slotsPerDay({ ...ROME, slotMinutes: 60 }), 24)
      assert.equal(slotsPerDay({ ...ROME, slotMinutes: 90 }), 16)
      assert.equal(slotsPerDay({ ...ROME, slotMinutes: 100 }), 15)
      assert.equal(slotsPerDay({ ...ROME, slotMinutes: 420 }), 4)
      assert.equal(slotsPerDay({ ...ROME, slotMinutes: 1440 }), 1)
    })
  })

  describe('slotAt', () => {
    it('cuts an ordinary Rome day (CEST, UTC+2) at local midnight and every 4 hours', () => {
      // 2026-06-15 00:00 in Rome is 2026-06-14T22:00Z
      const midnight = Date.parse('2026-06-14T22:00:00Z')
      for (let i = 0; i < 6; i++) {
        const start = midnight + i * 4 * H
        const s = slotAt(new Date(start), ROME)
        assert.equal(s.day, '2026-06-15')
        assert.equal(s.index, i)
        assert.equal(s.start.getTime(), start)
        assert.equal(s.end.getTime(), start + 4 * H)
        // the last second of the slot is still in it, the first second of the next is not
        const last = slotAt(new Date(start + 4 * H - 1000), ROME)
        assert.equal(last.index, i)
        assert.equal(last.number, s.number)
        const next = slotAt(new Date(start + 4 * H), ROME)
        assert.equal(next.number, s.number + 1)
        assert.equal(next.index, (i + 1) % 6)
        assert.equal(next.day, i === 5 ? '2026-06-16' : '2026-06-15')
      }
      // one second before local midnight belongs to the previous day's last slot
      const before = slotAt(new Date(midnight - 1000), ROME)
      assert.equal(before.day, '2026-06-14')
      assert.equal(before.index, 5)
      assert.equal(before.end.getTime(), midnight)
      assert.equal(before.number + 1, slotAt(new Date(midnight), ROME).number)
    })

    it('uses the local day in winter too (CET, UTC+1)', () => {
      // 2026-01-10T23:30Z is 2026-01-11 00:30 in Rome but still the 10th in UTC
      const at = new Date('2026-01-10T23:30:00Z')
      const rome = slotAt(at, ROME)
      assert.equal(rome.day, '2026-01-11')
      assert.equal(rome.index, 0)
      assert.equal(rome.start.toISOString(), '2026-01-10T23:00:00.000Z')
      assert.equal(rome.end.toISOString(), '2026-01-11T03:00:00.000Z')
      const utc = slotAt(at, UTC)
      assert.equal(utc.day, '2026-01-10')
      assert.equal(utc.index, 5)
      assert.equal(utc.start.toISOString(), '2026-01-10T20:00:00.000Z')
      assert.equal(utc.end.toISOString(), '2026-01-11T00:00:00.000Z')
    })

    it('cuts a UTC day at 00:00, 04:00, ... 20:00 UTC', () => {
      for (let i = 0; i < 6; i++) {
        const start = Date.parse('2026-03-29T00:00:00Z') + i * 4 * H
        const s = slotAt(new Date(start + 2 * H + 17 * M), UTC)
        assert.equal(s.day, '2026-03-29')
        assert.equal(s.index, i)
        assert.equal(s.start.getTime(), start)
        assert.equal(s.end.getTime(), start + 4 * H)
        assert.equal(slotAt(new Date(start + 4 * H - 1000), UTC).index, i, 'last second of the slot')
        assert.equal(slotAt(new Date(start + 4 * H), UTC).number, s.number + 1, 'first second of the next')
      }
      // UTC has no DST: the 29th of March is an ordinary day
      assertTiles('2026-03-29', slotsOfDay('2026-03-29', UTC), UTC)
      assert.ok(slotsOfDay('2026-03-29', UTC).every((s) => s.end.getTime() - s.start.getTime() === 4 * H))
    })

    it('Rome, 2026-03-29 (23 hours, spring forward): six slots, the last one shorter, no gap', () => {
      const slots = slotsOfDay('2026-03-29', ROME)
      assertTiles('2026-03-29', slots, ROME)
      assert.equal(slots.length, 6)
      assert.equal(slots[0].start.toISOString(), '2026-03-28T23:00:00.000Z')
      assert.equal(slots[5].end.toISOString(), '2026-03-29T22:00:00.000Z')
      assert.deepEqual(slots.map((s) => (s.end.getTime() - s.start.getTime()) / H), [4, 4, 4, 4, 4, 3])
      // the instants around the jump (02:00 CET -> 03:00 CEST = 01:00Z) are in slot 0
      assert.equal(slotAt(new Date('2026-03-29T00:59:59Z'), ROME).index, 0)
      assert.equal(slotAt(new Date('2026-03-29T01:00:00Z'), ROME).index, 0)
      // continuity with the days around it
      assert.equal(slotsOfDay('2026-03-28', ROME)[5].end.getTime(), slots[0].start.getTime())
      assert.equal(slots[5].end.getTime(), slotsOfDay('2026-03-30', ROME)[0].start.getTime())
    })

    it('Rome, 2026-10-25 (25 hours, fall back): six slots, the last one longer, no overlap', () => {
      const slots = slotsOfDay('2026-10-25', ROME)
      assertTiles('2026-10-25', slots, ROME)
      assert.equal(slots.length, 6)
      assert.equal(slots[0].start.toISOString(), '2026-10-24T22:00:00.000Z')
      assert.equal(slots[5].end.toISOString(), '2026-10-25T23:00:00.000Z')
      assert.deepEqual(slots.map((s) => (s.end.getTime() - s.start.getTime()) / H), [4, 4, 4, 4, 4, 5])
      // the repeated hour (02:00-03:00 twice: 00:00Z-02:00Z) is one slot, with no overlap
      assert.equal(slotAt(new Date('2026-10-25T00:30:00Z'), ROME).index, 0)
      assert.equal(slotAt(new Date('2026-10-25T01:30:00Z'), ROME).index, 0)
      assert.equal(slotAt(new Date('2026-10-25T02:00:00Z'), ROME).index, 1)
      // the 25th hour is in the last slot
      assert.equal(slotAt(new Date('2026-10-25T22:59:59Z'), ROME).index, 5)
      assert.equal(slotAt(new Date('2026-10-25T23:00:00Z'), ROME).day, '2026-10-26')
      assert.equal(slotsOfDay('2026-10-24', ROME)[5].end.getTime(), slots[0].start.getTime())
      assert.equal(slots[5].end.getTime(), slotsOfDay('2026-10-26', ROME)[0].start.getTime())
    })

    it('slot numbers continue from one day to the next (last slot + 1 = first slot of the next day)', () => {
      for (const o of [ROME, UTC]) {
        let day = '2026-03-25'
        let prev: Slot | null = null
        // 40 days through the spring change, and the end of a month and of a year later
        for (let i = 0; i < 40; i++, day = nextDay(day)) {
          const slots = slotsOfDay(day, o)
          assertTiles(day, slots, o)
          if (prev) {
            assert.equal(slots[0].number, prev.number + 1, `${o.timeZone} ${day}`)
            assert.equal(slots[0].start.getTime(), prev.end.getTime(), `${o.timeZone} ${day}: no gap between days`)
          }
          prev = slots[slots.length - 1]
        }
        const dec31 = slotsOfDay('2026-12-31', o)
        const jan1 = slotsOfDay('2027-01-01', o)
        assert.equal(jan1[0].number, dec31[dec31.length - 1].number + 1, `${o.timeZone}: across the new year`)
        const oct = slotsOfDay('2026-10-25', o)
        assert.equal(slotsOfDay('2026-10-26', o)[0].number, oct[oct.length - 1].number + 1, `${o.timeZone}: after the fall back`)
      }
    })

    it('numbers slots from the epoch: days since 1970-01-01 x slots a day + index', () => {
      const s = slotAt(new Date('2026-06-15T10:00:00Z'), ROME) // 12:00 in Rome: slot 3
      const days = Date.UTC(2026, 5, 15) / 86400000
      assert.equal(s.index, 3)
      assert.equal(s.number, days * 6 + 3)
      assert.equal(slotAt(new Date('1970-01-01T00:00:00Z'), UTC).number, 0)
    })

    it('custom slot_minutes = 60: 24 one-hour slots', () => {
      const o = { ...ROME, slotMinutes: 60 }
      const slots = slotsOfDay('2026-06-15', o)
      assertTiles('2026-06-15', slots, o)
      assert.equal(slots.length, 24)
      assert.ok(slots.every((s) => s.end.getTime() - s.start.getTime() === H))
      assert.equal(slotAt(new Date('2026-06-15T07:59:59Z'), o).index, 9, '09:59:59 in Rome')
      assert.equal(slotAt(new Date('2026-06-15T08:00:00Z'), o).index, 10, '10:00:00 in Rome')
      // on the DST days the slots still tile the day; the fall-back day's last slot is two hours
      const fall = slotsOfDay('2026-10-25', o)
      assertTiles('2026-10-25', fall, o)
      assert.equal(fall.length, 24)
      assert.equal(fall[23].end.getTime() - fall[23].start.getTime(), 2 * H)
      const spring = slotsOfDay('2026-03-29', o)
      assertTiles('2026-03-29', spring, o)
      assert.ok(spring.every((s) => s.end.getTime() - s.start.getTime() === H))
    })

    it('custom slot_minutes = 90 (divides the day): 16 equal slots', () => {
      const o = { ...UTC, slotMinutes: 90 }
      const slots = slotsOfDay('2026-06-15', o)
      assertTiles('2026-06-15', slots, o)
      assert.equal(slots.length, 16)
      assert.ok(slots.every((s) => s.end.getTime() - s.start.getTime() === 90 * M))
      assert.equal(slots[1].start.toISOString(), '2026-06-15T01:30:00.000Z')
    })

    it('custom slot_minutes that do not divide the day (100, 420): the last slot is shorter and ends at midnight', () => {
      const o100 = { ...ROME, slotMinutes: 100 }
      const a = slotsOfDay('2026-06-15', o100)
      assertTiles('2026-06-15', a, o100)
      assert.equal(a.length, 15)
      assert.ok(a.slice(0, 14).every((s) => s.end.getTime() - s.start.getTime() === 100 * M))
      assert.equal(a[14].end.getTime() - a[14].start.getTime(), 40 * M, '1440 - 14 x 100')
      assert.equal(a[14].end.toISOString(), '2026-06-15T22:00:00.000Z', 'midnight in Rome')
      // the last second of the day is in the short slot, the next second starts the next day at slot 0
      assert.equal(slotAt(new Date('2026-06-15T21:59:59Z'), o100).index, 14)
      const next = slotAt(new Date('2026-06-15T22:00:00Z'), o100)
      assert.equal(next.index, 0)
      assert.equal(next.number, a[14].number + 1)

      const o420 = { ...UTC, slotMinutes: 420 }
      const b = slotsOfDay('2026-06-15', o420)
      assertTiles('2026-06-15', b, o420)
      assert.deepEqual(b.map((s) => (s.end.getTime() - s.start.getTime()) / H), [7, 7, 7, 3])
      assert.equal(b[3].end.toISOString(), '2026-06-16T00:00:00.000Z')
      // and on the short DST day with 420: 7 + 7 + 7 + 2
      const o420r = { ...ROME, slotMinutes: 420 }
      const c = slotsOfDay('2026-03-29', o420r)
      assertTiles('2026-03-29', c, o420r)
      assert.deepEqual(c.map((s) => (s.end.getTime() - s.start.getTime()) / H), [7, 7, 7, 2])
    })
  })

  describe('activeCount', () => {
    it('a fraction of the pool, rounded up, at least one', () => {
      assert.equal(activeCount(1, ROME), 1)
      assert.equal(activeCount(2, ROME), 1)
      assert.equal(activeCount(3, ROME), 2)
      assert.equal(activeCount(5, ROME), 3)
      assert.equal(activeCount(12, ROME), 6)
      assert.equal(activeCount(10, { ...ROME, active: 0.25 }), 3)
      assert.equal(activeCount(3, { ...ROME, active: 0.1 }), 1, 'ceil(0.3) = 1')
      assert.equal(activeCount(100, { ...ROME, active: 0.01 }), 1)
      assert.equal(activeCount(101, { ...ROME, active: 0.01 }), 2)
    })

    it('a count, capped at the pool size and at least one', () => {
      assert.equal(activeCount(10, { ...ROME, active: 3 }), 3)
      assert.equal(activeCount(2, { ...ROME, active: 3 }), 2)
      assert.equal(activeCount(10, { ...ROME, active: 1 }), 1)
      assert.equal(activeCount(10, { ...ROME, active: 2.7 }), 2, 'a count is rounded down')
    })

    it('an empty pool has no active IP', () => {
      assert.equal(activeCount(0, ROME), 0)
      assert.equal(activeCount(0, { ...ROME, active: 3 }), 0)
      assert.deepEqual(activeIps([], 12345, ROME), [])
    })
  })

  describe('activeIps', () => {
    it('returns k distinct IPs of the pool, deterministically', () => {
      for (let n = 1; n <= 12; n++) {
        const p = pool(n)
        const k = activeCount(n, ROME)
        for (let slot = 20000; slot < 20000 + 3 * n; slot++) {
          const a = activeIps(p, slot, ROME)
          assert.equal(a.length, k, `n=${n} slot=${slot}`)
          assert.equal(new Set(a).size, k, `n=${n} slot=${slot}: distinct`)
          assert.ok(a.every((ip) => p.includes(ip)), 'only pool IPs')
          assert.deepEqual(activeIps([...p], slot, ROME), a, 'same input, same answer')
        }
      }
    })

    it('does not depend on the order the pool comes in', () => {
      const p = pool(7)
      const reversed = [...p].reverse()
      const shuffled = [p[3], p[0], p[6], p[1], p[5], p[2], p[4]]
      assert.deepEqual(sortPool(shuffled), sortPool(p))
      for (let slot = 1000; slot < 1020; slot++) {
        const a = activeIps(p, slot, ROME)
        assert.deepEqual(activeIps(reversed, slot, ROME), a)
        assert.deepEqual(activeIps(shuffled, slot, ROME), a)
      }
      // the input array is not reordered
      assert.deepEqual(shuffled, [p[3], p[0], p[6], p[1], p[5], p[2], p[4]])
    })

    it('two different slots of a pool of 5 give different sets (all five slots of a cycle differ)', () => {
      const p = pool(5)
      const base = slotAt(new Date('2026-06-15T10:00:00Z'), ROME).number
      const sets = Array.from({ length: 5 }, (_, i) => [...activeIps(p, base + i, ROME)].sort().join(','))
      assert.equal(new Set(sets).size, 5, sets.join(' | '))
      for (let s = base; s < base + 30; s++) {
        assert.notDeepEqual(new Set(activeIps(p, s, ROME)), new Set(activeIps(p, s + 1, ROME)), `slots ${s} and ${s + 1}`)
      }
    })

    it('a pool change moves the subset deterministically and a removed IP is never active', () => {
      const p = pool(6)
      const added = [...p, '198.18.99.99']
      const removed = p[2]
      const less = p.filter((ip) => ip !== removed)
      let changed = 0
      for (let slot = 5000; slot < 5060; slot++) {
        const a = activeIps(added, slot, ROME)
        assert.deepEqual(activeIps([...added].reverse(), slot, ROME), a)
        assert.equal(a.length, activeCount(7, ROME))
        const b = activeIps(less, slot, ROME)
        assert.ok(!b.includes(removed), `slot ${slot}: a removed IP is not active`)
        assert.equal(b.length, activeCount(5, ROME))
        assert.deepEqual(activeIps([...less].reverse(), slot, ROME), b)
        if (a.join() !== activeIps(p, slot, ROME).join()) changed++
      }
      assert.ok(changed > 0, 'adding an IP changes the subset')
      // the new IP takes its turn
      assert.ok(Array.from({ length: 7 }, (_, i) => activeIps(added, 5000 + i, ROME)).some((a) => a.includes('198.18.99.99')))
    })
  })

  describe('daySchedule', () => {
    it('matches slotAt and activeIps for each slot of the day', () => {
      const p = pool(5)
      for (const day of ['2026-06-15', '2026-03-29', '2026-10-25']) {
        const sched = daySchedule(p, day, ROME)
        const slots = slotsOfDay(day, ROME)
        assert.equal(sched.length, slots.length)
        sched.forEach((e, i) => {
          assert.deepEqual(e.slot, slots[i])
          assert.deepEqual(e.active, activeIps(p, slots[i].number, ROME))
        })
      }
      assert.deepEqual(daySchedule([], '2026-06-15', ROME).map((e) => e.active), [[], [], [], [], [], []])
    })

    it('with the defaults every IP of a pool of 1..12 works in some slot of every day and, for n >= 2, rests in some slot', () => {
      const days = ['2026-03-28', '2026-03-29', '2026-03-30', '2026-06-15', '2026-06-16', '2026-06-17', '2026-10-25', '2026-12-31', '2027-01-01']
      for (let n = 1; n <= 12; n++) {
        const p = pool(n, 20 + n)
        for (const day of days) {
          const sched = daySchedule(p, day, DEFAULT_ROTATION)
          assert.equal(sched.length, 6, `${day}`)
          for (const ip of p) {
            const working = sched.filter((e) => e.active.includes(ip)).length
            assert.ok(working >= 1, `n=${n} ${day}: ${ip} never active`)
            if (n >= 2) assert.ok(working < sched.length, `n=${n} ${day}: ${ip} never rests`)
          }
          if (n === 1) assert.ok(sched.every((e) => e.active.length === 1 && e.active[0] === p[0]), 'a lone IP always works')
        }
      }
    })
  })
})

describe('rotation: IPs owned by nodes (activeByOwner)', () => {
  const owned: OwnedIp[] = [
    ...pool(6, 20).map((ip) => ({ ip, node: 'alpha' })),
    ...pool(3, 30).map((ip) => ({ ip, node: 'beta' })),
    ...pool(4, 40).map((ip) => ({ ip })),
  ]
  const group = (node?: string) => owned.filter((p) => p.node === node).map((p) => p.ip)

  it('with no owners it is activeIps of the whole pool', () => {
    for (let slot = 7000; slot < 7020; slot++) assert.deepEqual(activeByOwner(pool(7).map((ip) => ({ ip })), slot, ROME), activeIps(pool(7), slot, ROME))
  })

  it("each node's IPs and the shared ones rotate as groups of their own", () => {
    for (let slot = 7000; slot < 7020; slot++) {
      const active = activeByOwner(owned, slot, ROME)
      const expected = [...activeIps(group('alpha'), slot, ROME), ...activeIps(group('beta'), slot, ROME), ...activeIps(group(undefined), slot, ROME)]
      assert.deepEqual([...active].sort(), [...expected].sort())
      // every group has its share active in every slot: a node is never left with only resting IPs
      for (const g of ['alpha', 'beta', undefined]) assert.ok(group(g).some((ip) => active.includes(ip)), `slot ${slot}: ${g ?? 'shared'}`)
    }
  })

  it("an IP's state depends on its own group alone: another node's pool changing moves nothing", () => {
    const more = [...owned, { ip: '198.18.99.1', node: 'beta' }, { ip: '198.18.99.2', node: 'gamma' }]
    for (let slot = 7000; slot < 7020; slot++) {
      const before = activeByOwner(owned, slot, ROME).filter((ip) => group('alpha').includes(ip))
      const after = activeByOwner([...more].reverse(), slot, ROME).filter((ip) => group('alpha').includes(ip))
      assert.deepEqual(after.sort(), before.sort())
    }
  })

  it('daySchedule takes owned IPs and rotates them by group', () => {
    const sched = daySchedule(owned, '2026-06-15', ROME)
    for (const e of sched) assert.deepEqual([...e.active].sort(), [...activeByOwner(owned, e.slot.number, ROME)].sort())
  })
})
