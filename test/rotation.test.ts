// lib/rotation.ts: slots in the service time zone and the active subset of each slot.
import { strict as assert } from 'node:assert'
import { activeCount, activeIps, daySchedule, DEFAULT_ROTATION, slotAt, slotsPerDay, type RotationOptions } from '../lib/rotation'

const ROME: RotationOptions = { ...DEFAULT_ROTATION, timeZone: 'Europe/Rome' }
const pool = (n: number) => Array.from({ length: n }, (_, i) => `198.18.0.${i + 1}`)

describe('rotation', () => {
  it('cuts the day into slots from local midnight', () => {
    assert.equal(slotsPerDay(ROME), 6)
    assert.equal(slotsPerDay({ ...ROME, slotMinutes: 90 }), 16)
    assert.equal(slotsPerDay({ ...ROME, slotMinutes: 100 }), 15)
    const s = slotAt(new Date('2026-11-28T07:59:59Z'), ROME) // 08:59:59 in Rome: slot 2 (08:00-12:00)
    assert.equal(s.index, 2)
    assert.equal(s.start.toISOString(), '2026-11-28T07:00:00.000Z')
    assert.equal(s.end.toISOString(), '2026-11-28T11:00:00.000Z')
    assert.equal(slotAt(new Date('2026-11-28T06:59:59.999Z'), ROME).index, 1, 'the last instant of a slot')
    assert.equal(slotAt(new Date('2026-11-28T07:00:00Z'), ROME).index, 2, 'the first instant of the next')
    assert.equal(slotAt(new Date('2026-11-27T23:00:00Z'), ROME).day, '2026-11-28', 'local midnight starts the day')
  })

  it('has no gaps or overlaps on days when clocks change, and slot numbers run on across days', () => {
    for (const day of ['2026-03-29', '2026-10-25', '2026-11-28']) {
      const s = daySchedule(pool(5), day, ROME)
      assert.equal(s.length, 6, day)
      for (let i = 1; i < s.length; i++) assert.equal(s[i].slot.start.getTime(), s[i - 1].slot.end.getTime(), `${day} slot ${i}`)
      const hours = (s[5].slot.end.getTime() - s[0].slot.start.getTime()) / 3600000
      assert.equal(hours, day === '2026-03-29' ? 23 : day === '2026-10-25' ? 25 : 24, day)
    }
    const last = daySchedule(pool(3), '2026-11-28', ROME).at(-1)!.slot
    const first = daySchedule(pool(3), '2026-11-29', ROME)[0].slot
    assert.equal(first.number, last.number + 1)
    const odd = daySchedule(pool(3), '2026-11-28', { ...ROME, slotMinutes: 100 })
    assert.equal(odd.length, 15)
    assert.equal((odd[14].slot.end.getTime() - odd[14].slot.start.getTime()) / 60000, 40, 'the last slot is shorter and ends at midnight')
    assert.equal(odd[14].slot.end.toISOString(), '2026-11-28T23:00:00.000Z')
  })

  it('chooses how many are active: a fraction rounded up or a count, at least one, at most all', () => {
    assert.equal(activeCount(0, ROME), 0)
    assert.equal(activeCount(1, ROME), 1)
    assert.equal(activeCount(5, ROME), 3)
    assert.equal(activeCount(6, ROME), 3)
    assert.equal(activeCount(5, { ...ROME, active: 2 }), 2)
    assert.equal(activeCount(5, { ...ROME, active: 9 }), 5)
    assert.equal(activeCount(5, { ...ROME, active: 0.01 }), 1)
  })

  it('is a function of the pool and the slot alone: same set whatever the order, distinct IPs', () => {
    const p = pool(7)
    const a = activeIps(p, 12345, ROME)
    assert.deepEqual(activeIps([...p].reverse(), 12345, ROME), a)
    assert.equal(new Set(a).size, a.length)
    assert.equal(a.length, 4)
    assert.notDeepEqual(activeIps(pool(5), 1, ROME), activeIps(pool(5), 2, ROME))
  })

  it('makes every IP work and rest at some slot of every day, for pools of 1 to 12', () => {
    for (const day of ['2026-11-28', '2026-11-29', '2026-03-29']) {
      for (let n = 1; n <= 12; n++) {
        const s = daySchedule(pool(n), day, ROME)
        for (const ip of pool(n)) {
          assert.ok(s.some((x) => x.active.includes(ip)), `${day} n=${n}: ${ip} works`)
          if (n >= 2) assert.ok(s.some((x) => !x.active.includes(ip)), `${day} n=${n}: ${ip} rests`)
        }
      }
    }
  })

  it('follows pool changes: a removed IP is never active, a new one joins', () => {
    const p = pool(5)
    const without = p.filter((ip) => ip !== p[2])
    for (let slot = 0; slot < 20; slot++) assert.ok(!activeIps(without, slot, ROME).includes(p[2]))
    const withNew = [...p, '198.18.9.9']
    assert.ok(Array.from({ length: 6 }, (_, slot) => activeIps(withNew, slot, ROME)).some((a) => a.includes('198.18.9.9')))
  })
})
