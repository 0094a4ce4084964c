// The one reader of Posta's ini files. Each file has a schema (lib/inis.ts): every key with its kind, its default
// and the values it allows. A value of the wrong kind or out of range, or a key or section the schema does not know
// (a typo would otherwise leave the default in force without a word), is refused with a sentence that names the
// file, the section, the key, the value and what is allowed. Plugins read through Haraka's loader (values arrive
// as strings, or as numbers when Haraka recognised one), the CLI and `npm start` through lib/ini.ts (strings).
// See docs/settings.md.

/** One setting: how to read it, its default, and what it allows (said to the operator when a value is refused). */
export interface Setting<T> {
  kind: string
  default: T
  /** What is allowed, as a phrase: "an integer from 1 to 365". */
  allowed: string
  /** The value, or undefined when the raw value is refused. */
  parse(raw: unknown): T | undefined
  /** Examples of values it refuses (test/config.test.ts tries each of them on every key). */
  bad: string[]
}

export type Section = Record<string, Setting<unknown>>
export type Sections = Record<string, Section>
export type SectionValues<T extends Section> = { [K in keyof T]: T[K] extends Setting<infer V> ? V : never }
export type IniValues<S extends Sections> = { [K in keyof S]: SectionValues<S[K]> }

export interface IniSchema<S extends Sections = Sections, P extends Section = Section> {
  /** The file name in config/ (posta-outbound.ini). */
  file: string
  sections: S
  /** Sections named `<prefix><name>` (e.g. `[zone zen.spamhaus.org]`), each with the same keys. */
  prefixed?: { prefix: string; keys: P }
  /** Checks across keys, after each key was read; each refusal returned names its section and key. */
  check?: (v: IniValues<S>) => Omit<Refusal, 'file'>[]
}

export interface ReadResult<S extends Sections, P extends Section> {
  values: IniValues<S>
  /** The prefixed sections by name (without the prefix). */
  prefixed: Record<string, SectionValues<P>>
}

/** One refused value, as fields (for a log line) and as a sentence (for a terminal). */
export interface Refusal {
  file: string
  section: string
  /** Absent when the whole section is unknown. */
  key?: string
  /** The value as written; absent for an unknown key or section. */
  value?: string
  /** What is allowed (or which keys or sections exist). */
  allowed: string
  text: string
}

/** Settings refused; `problems` has one sentence per refused value, `refusals` the same as fields. */
export class SettingsError extends Error {
  readonly problems: string[]
  constructor(readonly refusals: Refusal[]) {
    super(refusals.map((r) => r.text).join('; '))
    this.problems = refusals.map((r) => r.text)
    this.name = 'SettingsError'
  }
}

type RawIni = Record<string, Record<string, unknown> | undefined>

/** A raw value as the operator wrote it: Haraka hands numbers and booleans already converted. */
function text(raw: unknown): string {
  return Array.isArray(raw) ? raw.map(String).join(',') : String(raw).trim()
}

function range(min: number, max: number, unit: string): string {
  const u = unit ? ` ${unit}` : ''
  if (max === Infinity) return `from ${min}${u} up`
  return `from ${min} to ${max}${u}`
}

const outside = (min: number, max: number, step: number) => [String(min - step), ...(max === Infinity ? [] : [String(max + step)])]

export function integer(dflt: number, min: number, max: number, unit = ''): Setting<number> {
  return {
    kind: 'integer', default: dflt, allowed: `an integer ${range(min, max, unit)}`, bad: ['', 'abc', '1.5', '10x', ...outside(min, max, 1)],
    parse(raw) {
      const s = text(raw)
      if (!/^-?\d+$/.test(s)) return undefined
      const n = Number(s)
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined
    },
  }
}

export function number(dflt: number, min: number, max: number, unit = ''): Setting<number> {
  return {
    kind: 'number', default: dflt, allowed: `a number ${range(min, max, unit)}`, bad: ['', 'abc', '1e3', ...outside(min, max, 0.5)],
    parse(raw) {
      const s = text(raw)
      if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(s)) return undefined
      const n = Number(s)
      return n >= min && n <= max ? n : undefined
    },
  }
}

/** A duration in the unit of the key's suffix (`*_seconds`, `*_days`): an integer in a range. */
export function duration(dflt: number, min: number, max: number, unit: 'milliseconds' | 'seconds' | 'minutes' | 'hours' | 'days'): Setting<number> {
  return { ...integer(dflt, min, max, unit), kind: 'duration' }
}

export function boolean(dflt: boolean): Setting<boolean> {
  return {
    kind: 'boolean', default: dflt, allowed: 'true or false', bad: ['', 'maybe', '2', 'enabled'],
    parse(raw) {
      if (typeof raw === 'boolean') return raw
      const s = text(raw).toLowerCase()
      if (/^(true|yes|on|1)$/.test(s)) return true
      if (/^(false|no|off|0)$/.test(s)) return false
      return undefined
    },
  }
}

/** A string; `test` says whether a non-empty value is good (empty is allowed only with `empty`). */
export function string(dflt: string, allowed: string, test: (s: string) => boolean = () => true, opts: { empty?: boolean; bad?: string[] } = {}): Setting<string> {
  return {
    kind: 'string', default: dflt, allowed, bad: [...(opts.empty ? [] : ['']), ...(opts.bad ?? [])],
    parse(raw) {
      const s = text(raw)
      if (s === '') return opts.empty ? s : undefined
      return test(s) ? s : undefined
    },
  }
}

/** A comma-separated list of items of one kind, with at least `min` and at most `max` items. */
export function list<T>(dflt: T[], item: Setting<T>, opts: { min?: number; max?: number; unique?: boolean; what?: string } = {}): Setting<T[]> {
  const min = opts.min ?? 0
  const max = opts.max ?? Infinity
  const count = max === Infinity ? (min > 0 ? `at least ${min} ` : '') : `${min} to ${max} `
  return {
    kind: 'list', default: dflt,
    allowed: `${min === 0 ? 'empty, or ' : ''}a comma-separated list of ${count}${opts.what ?? 'items'}, each ${item.allowed}`,
    // a bad item alone and among good ones; too few items
    bad: [...item.bad.filter((b) => b !== '' && !b.includes(',')).flatMap((b) => (dflt.length ? [b, `${dflt.map(String).join(',')},${b}`] : [b])), ...(min > 0 ? [''] : []), ...(opts.unique && dflt.length ? [`${dflt[0]},${dflt[0]}`] : [])],
    parse(raw) {
      const s = text(raw)
      const parts = s === '' ? [] : s.split(',').map((p) => p.trim())
      if (parts.length < min || parts.length > max) return undefined
      const out: T[] = []
      for (const p of parts) {
        const v = item.parse(p)
        if (v === undefined) return undefined
        out.push(v)
      }
      if (opts.unique && new Set(out.map(String)).size !== out.length) return undefined
      return out
    },
  }
}

/** A setting of its own kind (e.g. "a count or a fraction"). */
export function custom<T>(kind: string, dflt: T, allowed: string, bad: string[], parse: (s: string) => T | undefined): Setting<T> {
  return { kind, default: dflt, allowed, bad, parse: (raw) => parse(text(raw)) }
}

function shown(raw: unknown): string {
  const s = text(raw)
  return s === '' ? '(empty)' : JSON.stringify(s).slice(1, -1)
}

function readSection<T extends Section>(file: string, name: string, keys: T, raw: Record<string, unknown>, problems: Refusal[]): SectionValues<T> {
  const out: Record<string, unknown> = {}
  for (const [key, setting] of Object.entries(keys)) {
    const v = raw[key]
    if (v === undefined) {
      out[key] = setting.default
      continue
    }
    const parsed = setting.parse(v)
    if (parsed === undefined) {
      problems.push({ file, section: name, key, value: text(v), allowed: setting.allowed, text: `${file} [${name}] ${key}=${shown(v)} is refused: allowed is ${setting.allowed}` })
      out[key] = setting.default
    } else {
      out[key] = parsed
    }
  }
  for (const key of Object.keys(raw)) {
    if (key in keys) continue
    const known = `known: ${Object.keys(keys).join(', ')}`
    problems.push({ file, section: name, key, allowed: known, text: `${file} [${name}] ${key} is not a setting of this file (${known})` })
  }
  return out as SectionValues<T>
}

/**
 * Reads an ini (as parsed by Haraka or lib/ini.ts) against its schema: every key with its value or its default.
 * Throws SettingsError naming every refused value; nothing is half-applied.
 */
export function readSettings<S extends Sections, P extends Section>(schema: IniSchema<S, P>, ini: RawIni, file = schema.file): ReadResult<S, P> {
  const problems: Refusal[] = []
  const values: Record<string, unknown> = {}
  const prefixed: Record<string, SectionValues<P>> = {}
  for (const [name, keys] of Object.entries(schema.sections)) values[name] = readSection(file, name, keys, ini[name] ?? {}, problems)
  for (const [name, raw] of Object.entries(ini)) {
    if (name in schema.sections) continue
    const pre = schema.prefixed
    if (pre && name.startsWith(pre.prefix) && name.length > pre.prefix.length) {
      prefixed[name.slice(pre.prefix.length).trim()] = readSection(file, name, pre.keys, raw ?? {}, problems)
      continue
    }
    // Haraka always hands an empty [main]; an empty unknown section changes nothing either.
    if (raw && Object.keys(raw).length === 0) continue
    const known = [...Object.keys(schema.sections), ...(pre ? [`${pre.prefix}<name>`] : [])]
    const allowed = `known: ${known.map((k) => `[${k}]`).join(', ')}`
    problems.push({ file, section: name, allowed, text: `${file} [${name}] is not a section of this file (${allowed})` })
  }
  if (!problems.length && schema.check) problems.push(...schema.check(values as IniValues<S>).map((p) => ({ ...p, file, text: `${file} ${p.text}` })))
  if (problems.length) throw new SettingsError(problems)
  return { values: values as IniValues<S>, prefixed }
}

/** Every key of a schema with its default (what a missing file means). */
export function defaults<S extends Sections, P extends Section>(schema: IniSchema<S, P>): IniValues<S> {
  return readSettings(schema, {}).values
}
