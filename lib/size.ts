import { InputError } from './errors'

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12,
  KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3, TIB: 1024 ** 4,
}

/**
 * Parses a traffic size: a plain number is bytes; KB, MB, GB, TB are powers of 1000 and KiB, MiB, GiB, TiB
 * powers of 1024 (`500MB`, `10GiB`, `1.5GB`). The result is a whole number of bytes.
 */
export function parseSize(input: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(input))
  if (!m) throw new InputError(`bad size "${input}": write bytes or a number with KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 500MB)`)
  const unit = (m[2] || 'B').toUpperCase()
  const mult = UNITS[unit]
  if (mult === undefined) throw new InputError(`bad size "${input}": unknown unit "${m[2]}" (use KB, MB, GB, TB, KiB, MiB, GiB or TiB)`)
  const bytes = Math.round(Number(m[1]) * mult)
  if (!Number.isSafeInteger(bytes)) throw new InputError(`bad size "${input}": too large`)
  if (bytes <= 0) throw new InputError(`bad size "${input}": must be more than zero bytes`)
  return bytes
}

/** Formats bytes for people: decimal units, as a provider's package would state them (1.5 GB). */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`
  const units = ['KB', 'MB', 'GB', 'TB', 'PB']
  const round = (x: number) => Number(x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2))
  let v = bytes
  let i = -1
  // divide while the value, as it will be shown, reaches 1000 (999_999 bytes is "1 MB", not "1000 KB")
  while ((i < 0 ? v : round(v)) >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${round(v)} ${units[i]}`
}
