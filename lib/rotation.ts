// The daily rotation of the outbound pool: the day is cut into slots (in the service time zone) and each slot has
// its active subset of the pool. The subset is a function of the pool and the slot number alone, so every node
// computes the same one from its clock, with no coordination.
import type { RedisClient as Redis } from './redis'
import { keys } from './keys'
import { dayOf, localMidnight } from './period'

export interface RotationOptions {
  timeZone: string
  /** Slot length in minutes (default 240: six slots a day). */
  slotMinutes: number
  /** Active IPs per slot: a count (>= 1), or a fraction of the pool (0 < f < 1). Default 0.5, rounded up. */
  active: number
}

export const DEFAULT_ROTATION: RotationOptions = { timeZone: 'Europe/Rome', slotMinutes: 240, active: 0.5 }

/** Rotation settings as the running service published them (config/posta-outbound.ini), else the defaults. */
export async function publishedRotation(redis: Redis, timeZone: string): Promise<RotationOptions> {
  const [slot, active] = await redis.hmget(keys.published(), 'rotation_slot_minutes', 'rotation_active')
  return { timeZone, slotMinutes: Number(slot) || DEFAULT_ROTATION.slotMinutes, active: Number(active) || DEFAULT_ROTATION.active }
}

export interface Slot {
  /** Global slot number: days since 1970-01-01 (local date) x slots a day + index in the day. */
  number: number
  day: string
  index: number
  start: Date
  end: Date
}

export function slotsPerDay(o: RotationOptions): number {
  return Math.ceil((24 * 60) / o.slotMinutes)
}

/** The last slot computed per time zone and slot length: every delivery asks, and a slot lasts minutes. */
const slotMemo = new Map<string, Slot>()

/** The slot an instant falls in. Slots start at local midnight; the last one of a day may be shorter. */
export function slotAt(at: Date, o: RotationOptions): Slot {
  const memoKey = `${o.timeZone}|${o.slotMinutes}`
  const hit = slotMemo.get(memoKey)
  const t = at.getTime()
  if (hit && t >= hit.start.getTime() && t < hit.end.getTime()) return hit
  const slot = computeSlot(at, o)
  slotMemo.set(memoKey, slot)
  return slot
}

function computeSlot(at: Date, o: RotationOptions): Slot {
  const day = dayOf(at, o.timeZone)
  const [y, m, d] = day.split('-').map(Number)
  const midnight = localMidnight(y, m, d, o.timeZone)
  const perDay = slotsPerDay(o)
  const index = Math.min(perDay - 1, Math.floor((at.getTime() - midnight.getTime()) / 60000 / o.slotMinutes))
  const dayNumber = Math.round(Date.UTC(y, m - 1, d) / 86400000)
  const start = new Date(midnight.getTime() + index * o.slotMinutes * 60000)
  const nextMidnight = localMidnight(y, m, d + 1, o.timeZone)
  const end = index === perDay - 1 ? nextMidnight : new Date(Math.min(start.getTime() + o.slotMinutes * 60000, nextMidnight.getTime()))
  return { number: dayNumber * perDay + index, day, index, start, end }
}

/** How many of a pool of n are active in a slot. */
export function activeCount(n: number, o: RotationOptions): number {
  if (n === 0) return 0
  const k = o.active < 1 ? Math.ceil(n * o.active) : Math.floor(o.active)
  return Math.max(1, Math.min(n, k))
}

/** Canonical order of a pool, so that every node sees the same sequence whatever order Redis returns. */
export function sortPool(ips: string[]): string[] {
  return [...ips].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * The active subset of a slot: a window of k consecutive IPs (in the canonical order) that moves k places each
 * slot. Every IP therefore works in turn and rests in turn, as evenly as k and n allow, and whenever
 * slots-a-day x k >= n every IP works at some slot of every day.
 */
export function activeIps(pool: string[], slotNumber: number, o: RotationOptions): string[] {
  const ips = sortPool(pool)
  const n = ips.length
  const k = activeCount(n, o)
  if (n === 0) return []
  const start = (((slotNumber * k) % n) + n) % n
  return Array.from({ length: k }, (_, i) => ips[(start + i) % n])
}

/** A pool IP and the node that owns it (none: a shared IP, every node's). */
export interface OwnedIp {
  ip: string
  node?: string
}

/**
 * The active IPs of a slot when IPs have owners: the IPs of each node rotate as a group of their own, and so do the
 * shared ones (with no owners at all, this is activeIps of the whole pool). A node binds the active IPs of its own
 * group and of the shared group; each IP's state in a slot depends on its group alone, the same on every node.
 */
export function activeByOwner(pool: readonly OwnedIp[], slotNumber: number, o: RotationOptions): string[] {
  const groups = new Map<string, string[]>()
  for (const p of pool) groups.set(p.node ?? '', [...(groups.get(p.node ?? '') ?? []), p.ip])
  return [...groups.values()].flatMap((ips) => activeIps(ips, slotNumber, o))
}

/** The schedule of a day: each slot with its active IPs (each owner's IPs rotating as a group, see activeByOwner). */
export function daySchedule(pool: readonly (string | OwnedIp)[], day: string, o: RotationOptions): { slot: Slot; active: string[] }[] {
  const owned = pool.map((p) => (typeof p === 'string' ? { ip: p } : p))
  const [y, m, d] = day.split('-').map(Number)
  const out: { slot: Slot; active: string[] }[] = []
  let at = localMidnight(y, m, d, o.timeZone)
  for (;;) {
    const slot = slotAt(at, o)
    if (slot.day !== day) break
    out.push({ slot, active: activeByOwner(owned, slot.number, o) })
    at = slot.end
  }
  return out
}
