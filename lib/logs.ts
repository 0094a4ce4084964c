// The escaping of log lines, so that text a client chose (an EHLO name, an address, a parameter, an AUTH user
// name) can neither add a `key=value` field nor start a new line. One rule, for values and free text alike: a raw
// `=` appears in a line only between a field's key and its value, and no control character appears raw.
//
// - A field value made only of printable characters other than space, `"`, `\` and `=` is written as is
//   (`client_ip=192.0.2.7`); any other value is quoted JSON-style (`auth_user="a b"`), with `=` written `\u003d`.
// - Free text (the message part of a line) keeps its spaces and quotes; `\` is written `\\`, `=` `\u003d`.
// - Control characters (C0, DEL, C1, line and paragraph separators, bidi and zero-width format characters) are
//   written `\n`, `\r`, `\t` or `\uXXXX` everywhere.

const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/
const UNSAFE_CHARS_G = new RegExp(UNSAFE_CHARS.source, 'g')
/** Free text that needs any escaping at all: one scan for the common case, a line with nothing to escape. */
const NEEDS_ESCAPE = new RegExp(`[\\\\=]|${UNSAFE_CHARS.source}`)
/** A value that must be quoted (bare() is false), in one scan. */
const NOT_BARE = new RegExp(`[\\s"\\\\=]|${UNSAFE_CHARS.source}`)
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '"': '\\"', '\\': '\\\\', '=': '\\u003d' }

const hex4 = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
const escapeChar = (c: string) => NAMED[c] ?? hex4(c)

/** True when a value can be written without quotes. */
function bare(v: string): boolean {
  return v !== '' && !NOT_BARE.test(v)
}

/** Free text: `\` -> `\\`, `=` -> `\u003d`, control characters escaped; spaces and quotes kept. */
export function escapeText(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return s
  return s.replace(/[\\=]/g, escapeChar).replace(UNSAFE_CHARS_G, escapeChar)
}

/** One field value: bare when safe, else a JSON-style quoted string with `=` written `\u003d`. */
export function formatValue(v: unknown): string {
  let s: string
  if (v === null || v === undefined) s = ''
  else if (typeof v === 'string') s = v
  else if (v instanceof Date) s = Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()
  else {
    // an object without a string of its own (of any realm) as JSON; an Address, an array ... as their own string
    try {
      s = String(v)
    } catch {
      s = '[object Object]' // no toString at all (a null-prototype object)
    }
    if (typeof v === 'object' && s === '[object Object]') s = safeJson(v)
  }
  if (bare(s)) return s
  return `"${s.replace(/["\\=]/g, escapeChar).replace(UNSAFE_CHARS_G, escapeChar)}"`
}

function safeJson(v: object): string {
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}

/** A field key is written by code, not by a client; still, anything but [A-Za-z0-9_.-] becomes `_`. */
export function formatKey(k: string): string {
  const s = k.replace(/[^A-Za-z0-9_.-]/g, '_')
  return s === '' ? '_' : s
}

/** `key=value key2="v 2"` in the object's key order. */
export function formatFields(fields: Record<string, unknown>): string {
  const out: string[] = []
  for (const k of Object.keys(fields)) out.push(`${formatKey(k)}=${formatValue(fields[k])}`)
  return out.join(' ')
}

/**
 * Reads the fields of a line written by these rules (for tests and tools): `{ key: value }` with quoted values
 * unescaped. Free text between fields is skipped; a key that appears twice keeps its first value.
 */
export function parseFields(line: string): Record<string, string> {
  const out: Record<string, string> = {}
  const re = /(?:^| )([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^ ]*)/g
  for (let m = re.exec(line); m; m = re.exec(line)) {
    const [, key, raw] = m
    if (key in out) continue
    out[key] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw
  }
  return out
}
