// A minimal reader of Haraka-style ini files (sections, key=value, ; and # comments), for the CLI, which runs
// outside Haraka but must read the same plugin settings (plugins read them through Haraka's own config loader).
import * as fs from 'node:fs'

export type Ini = Record<string, Record<string, string>>

export function parseIni(text: string): Ini {
  const out: Ini = { main: {} }
  let section = 'main'
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith(';') || line.startsWith('#')) continue
    const sec = /^\[\s*(.+?)\s*\]$/.exec(line)
    if (sec) {
      section = sec[1]
      out[section] ??= {}
      continue
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line)
    if (kv) out[section][kv[1]] = kv[2]
  }
  return out
}

export function readIni(file: string): Ini {
  return parseIni(fs.readFileSync(file, 'utf8'))
}
