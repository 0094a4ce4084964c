// Calendar months and days in the service's time zone: all nodes, the panel and the CLI label usage the same way.
const formatters = new Map<string, Intl.DateTimeFormat>()

/** The month, day and month end of an instant, memoised until the next local midnight (hot path: every message). */
export interface PeriodInfo {
  month: string
  day: string
  monthEnd: Date
}
const periodCache = new Map<string, { from: number; until: number; info: PeriodInfo }>()

export function periodOf(at: Date, timeZone: string): PeriodInfo {
  const t = at.getTime()
  const hit = periodCache.get(timeZone)
  if (hit && t >= hit.from && t < hit.until) return hit.info
  const p = parts(at, timeZone)
  const info = { month: monthOfParts(p), day: dayOfParts(p), monthEnd: monthEndOf(p, timeZone) }
  periodCache.set(timeZone, { from: localMidnight(p.y, p.m, p.d, timeZone).getTime(), until: localMidnight(p.y, p.m, p.d + 1, timeZone).getTime(), info })
  return info
}

type Parts = { y: number; m: number; d: number; h: number; min: number; s: number }

function parts(at: Date, timeZone: string): Parts {
  let f = formatters.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    })
    formatters.set(timeZone, f)
  }
  const p: Record<string, number> = {}
  for (const { type, value } of f.formatToParts(at)) if (type !== 'literal') p[type] = Number(value)
  return { y: p.year, m: p.month, d: p.day, h: p.hour, min: p.minute, s: p.second }
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

const monthOfParts = (p: Parts) => `${p.y}-${pad(p.m)}`
const dayOfParts = (p: Parts) => `${p.y}-${pad(p.m)}-${pad(p.d)}`

/** `YYYY-MM` of the instant in the time zone (memoised until local midnight, as periodOf). */
export function monthOf(at: Date, timeZone: string): string {
  return periodOf(at, timeZone).month
}

/** `YYYY-MM-DD` of the instant in the time zone (memoised until local midnight, as periodOf). */
export function dayOf(at: Date, timeZone: string): string {
  return periodOf(at, timeZone).day
}

/** `YYYY-MM-DD` computed afresh (localMidnight's own checks: periodOf builds on it). */
function dayNow(at: Date, timeZone: string): string {
  return dayOfParts(parts(at, timeZone))
}

/** The instant of local midnight starting the given day (handles DST: offsets are re-read at the result). */
export function localMidnight(y: number, m: number, d: number, timeZone: string): Date {
  const wall = Date.UTC(y, m - 1, d)
  let guess = wall
  for (let i = 0; i < 3; i++) {
    const p = parts(new Date(guess), timeZone)
    const shown = Date.UTC(p.y, p.m - 1, p.d, p.h, p.min, p.s)
    const diff = shown - wall
    if (diff === 0) break
    guess -= diff
  }
  // Where the clocks jump forward at 00:00 (Africa/Cairo, Asia/Beirut) midnight does not exist: the day starts at
  // the first instant that belongs to it.
  const want = dayNow(new Date(wall + 12 * 3600000), timeZone)
  if (dayNow(new Date(guess), timeZone) !== want) {
    for (let t = guess; t < guess + 4 * 3600000; t += 15 * 60000) if (dayNow(new Date(t), timeZone) === want) return new Date(t)
  }
  return new Date(guess)
}

/** When the month containing `at` ends (local midnight of the 1st of the next month): the quota's reset. */
export function monthEnd(at: Date, timeZone: string): Date {
  return periodOf(at, timeZone).monthEnd
}

function monthEndOf(p: Parts, timeZone: string): Date {
  return p.m === 12 ? localMidnight(p.y + 1, 1, 1, timeZone) : localMidnight(p.y, p.m + 1, 1, timeZone)
}

/** Days of the month `YYYY-MM`, as `YYYY-MM-DD`. */
export function daysOfMonth(month: string): string[] {
  const [y, m] = month.split('-').map(Number)
  const n = new Date(Date.UTC(y, m, 0)).getUTCDate()
  return Array.from({ length: n }, (_, i) => `${month}-${pad(i + 1)}`)
}

/** "1 December 2026" in English, for replies and notices. */
export function formatDay(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, day: 'numeric', month: 'long', year: 'numeric' }).format(at)
}

// ---- times typed by an operator (CLI --since/--until): wall-clock times in the service's time zone ----

/** The UTC offset (ms) of the time zone at an instant, to the second. */
function offsetAt(t: number, timeZone: string): number {
  const p = parts(new Date(t), timeZone)
  const s = Math.floor(t / 1000) * 1000
  return Date.UTC(p.y, p.m - 1, p.d, p.h, p.min, p.s) - s
}

/**
 * The instant a wall-clock time in the time zone names. Where clocks go back (the hour exists twice) it is the
 * earlier one; where they jump forward (the time does not exist) it is moved forward by the jump, as a clock that
 * was not changed would show it (02:30 on the spring-forward night in Rome is 03:30 CEST).
 */
export function localTime(y: number, m: number, d: number, h: number, min: number, s: number, ms: number, timeZone: string): Date {
  const wall = Date.UTC(y, m - 1, d, h, min, s, ms)
  const before = offsetAt(wall - 86400000, timeZone)
  const after = offsetAt(wall + 86400000, timeZone)
  const fits = [wall - before, wall - after].filter((t) => offsetAt(t, timeZone) === wall - t).sort((a, b) => a - b)
  return new Date(fits.length ? fits[0] : wall - before)
}

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i

/**
 * An ISO-style date or time as an operator types it: `2026-11-28`, `2026-11-28T14:00`, `2026-11-28 14:00:30`,
 * read in the service's time zone; an explicit `Z` or offset (`2026-11-28T14:00Z`, `...+01:00`, `...-0500`) wins.
 * Returns null for anything else (including impossible dates such as 2026-02-30 or 24:00).
 */
export function parseLocalTime(text: string, timeZone: string): Date | null {
  const m = TIME_RE.exec(text.trim())
  if (!m) return null
  const [y, mo, d, h = '0', mi = '0', s = '0'] = m.slice(1, 7)
  const frac = m[7] ?? ''
  const zone = m[8]
  const n = { y: Number(y), mo: Number(mo), d: Number(d), h: Number(h), mi: Number(mi), s: Number(s), ms: Number(frac.padEnd(3, '0').slice(0, 3)) }
  if (n.mo < 1 || n.mo > 12 || n.d < 1 || n.d > new Date(Date.UTC(n.y, n.mo, 0)).getUTCDate()) return null
  if (n.h > 23 || n.mi > 59 || n.s > 59) return null
  if (!zone) return localTime(n.y, n.mo, n.d, n.h, n.mi, n.s, n.ms, timeZone)
  let offsetMin = 0
  if (zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!
    const oh = Number(z[2])
    const om = Number(z[3] ?? 0)
    if (oh > 23 || om > 59) return null
    offsetMin = (z[1] === '-' ? -1 : 1) * (oh * 60 + om)
  }
  return new Date(Date.UTC(n.y, n.mo - 1, n.d, n.h, n.mi, n.s, n.ms) - offsetMin * 60000)
}
