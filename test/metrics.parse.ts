// A strict reader of the Prometheus text format (version 0.0.4) for the metrics tests: every line must be empty, a
// HELP, a TYPE, a comment or a sample of a declared family; names, label sets and values must be well formed; no sample appears twice;
// a histogram's buckets are cumulative and end with le="+Inf" equal to its _count. Throws on the first bad line.

export type Labels = Record<string, string>
export interface Sample { name: string; labels: Labels; value: number }
export interface Family { name: string; type: string; help: string; samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue(s: string, line: string): number {
  // Go's strconv.ParseFloat, which Prometheus reads values with, takes NaN and Inf in any case (prom-client writes
  // "Nan" for an event-loop-lag mean with no sample yet)
  if (/^[+]?inf(inity)?$/i.test(s)) return Infinity
  if (/^-inf(inity)?$/i.test(s)) return -Infinity
  if (/^nan$/i.test(s)) return NaN
  if (!/^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value ${JSON.stringify(s)} in: ${line}`)
  return Number(s)
}

/** The label set of `{a="x",b="y"}`, with \\, \" and \n unescaped; the index after the closing brace. */
function parseLabels(text: string, at: number, line: string): { labels: Labels; end: number } {
  const labels: Labels = {}
  let i = at + 1
  for (;;) {
    if (text[i] === '}') return { labels, end: i + 1 }
    const eq = text.indexOf('=', i)
    if (eq < 0) throw new Error(`bad labels in: ${line}`)
    const key = text.slice(i, eq)
    if (!LABEL.test(key) || key.startsWith('__')) throw new Error(`bad label name ${JSON.stringify(key)} in: ${line}`)
    if (key in labels) throw new Error(`label ${key} twice in: ${line}`)
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`)
    let v = ''
    let j = eq + 2
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const e = text[++j]
        if (e === 'n') v += '\n'
        else if (e === '\\' || e === '"') v += e
        else throw new Error(`bad escape \\${e} in: ${line}`)
      } else v += text[j]
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`)
    labels[key] = v
    i = j + 1
    if (text[i] === ',') i++
    else if (text[i] !== '}') throw new Error(`expected , or } in: ${line}`)
  }
}

function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const exact = families.get(name)
  if (exact) return exact
  const m = /^(.*)_(bucket|sum|count)$/.exec(name)
  const f = m ? families.get(m[1]) : undefined
  return f && (f.type === 'histogram' || (f.type === 'summary' && m![2] !== 'bucket')) ? f : undefined
}

export function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the text does not end with a line feed')
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue // empty lines are ignored (the format says so; prom-client puts one between families)
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) {
        if (/^# (HELP|TYPE)\b/.test(line)) throw new Error(`bad comment: ${line}`)
        continue // a plain comment
      }
      const [, kind, name, rest] = m
      if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`)
      const f = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] }
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`bad type in: ${line}`)
        if (families.has(name) && f.type !== 'untyped') throw new Error(`TYPE twice for ${name}`)
        if (f.samples.length) throw new Error(`TYPE after samples for ${name}`)
        f.type = rest
      } else f.help = rest
      families.set(name, f)
      continue
    }
    const nameEnd = line.search(/[{ ]/)
    if (nameEnd <= 0) throw new Error(`bad sample: ${line}`)
    const name = line.slice(0, nameEnd)
    if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`)
    let labels: Labels = {}
    let i = nameEnd
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, line))
    if (line[i] !== ' ') throw new Error(`expected a space before the value in: ${line}`)
    const parts = line.slice(i + 1).split(' ')
    if (parts.length < 1 || parts.length > 2 || (parts.length === 2 && !/^-?\d+$/.test(parts[1]))) throw new Error(`bad value or timestamp in: ${line}`)
    const value = parseValue(parts[0], line)
    const f = familyOf(name, families)
    if (!f) throw new Error(`sample of an undeclared family: ${line}`)
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) throw new Error(`sample twice: ${line}`)
    seen.add(key)
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`negative counter: ${line}`)
    f.samples.push({ name, labels, value })
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f)
  return families
}

function checkHistogram(f: Family) {
  const series = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>()
  for (const s of f.samples) {
    const { le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    const h = series.get(key) ?? { buckets: [] }
    series.set(key, h)
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}_bucket without le`)
      h.buckets.push([parseValue(le, `le="${le}"`), s.value])
    } else if (s.name === `${f.name}_count`) h.count = s.value
    else if (s.name === `${f.name}_sum`) h.sum = s.value
    else throw new Error(`${s.name} in histogram ${f.name}`)
  }
  for (const [key, h] of series) {
    if (h.count === undefined || h.sum === undefined || !h.buckets.length) throw new Error(`histogram ${f.name}${key} lacks _count, _sum or buckets`)
    for (let i = 1; i < h.buckets.length; i++) {
      if (!(h.buckets[i][0] > h.buckets[i - 1][0])) throw new Error(`histogram ${f.name}${key}: le not increasing`)
      if (h.buckets[i][1] < h.buckets[i - 1][1]) throw new Error(`histogram ${f.name}${key}: buckets not cumulative`)
    }
    const last = h.buckets[h.buckets.length - 1]
    if (last[0] !== Infinity || last[1] !== h.count) throw new Error(`histogram ${f.name}${key}: le="+Inf" missing or not equal to _count`)
  }
}

/** The value of one sample (0 when absent: a counter never bumped has no sample for its labels). */
export function valueOf(families: Map<string, Family>, name: string, labels: Labels = {}): number {
  const f = familyOf(name, families)
  const s = f?.samples.find((x) => x.name === name && Object.keys(labels).every((k) => x.labels[k] === labels[k]) && Object.keys(x.labels).length === Object.keys(labels).length)
  return s?.value ?? 0
}

/** The sum of a family's samples named `name` whose labels include `labels`. */
export function sumOf(families: Map<string, Family>, name: string, labels: Labels = {}): number {
  const f = familyOf(name, families)
  return (f?.samples ?? []).filter((x) => x.name === name && Object.keys(labels).every((k) => x.labels[k] === labels[k])).reduce((a, x) => a + x.value, 0)
}
