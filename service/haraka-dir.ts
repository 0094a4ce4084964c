// Builds the Haraka directory a node runs from: the project's config/ with the settings of this run applied
// (listen addresses, TLS files), and links to the project's plugins/ and node_modules/.
// `npm start` and the end-to-end tests both run Haraka from such a directory; `haraka -c .` runs the project as is.
import * as fs from 'node:fs'
import * as path from 'node:path'

/** The project root: the nearest directory above this file with a package.json (works from dist/ and from source). */
function findRoot(start: string): string {
  let d = start
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d)
  return d
}
export const PROJECT_ROOT = findRoot(__dirname)

export interface HarakaDirOptions {
  /** Runtime directory to (re)build. */
  dir: string
  listen: string
  smtpPort: number
  submissionPort: number
  smtpsPort: number
  tlsKey: string
  tlsCert: string
  /** The host name Haraka announces (config/me). */
  me?: string
  /** Haraka's cluster mode, written over smtp.ini's `nodes` when set (`npm start`: POSTA_NODES): a count or `cpus`. */
  nodes?: string
  /** The config directory to copy (default: the project's config/; `npm start` passes POSTA_CONFIG_DIR). */
  configDir?: string
  /** Whole config files to write over the project's (tests tune plugin inis this way). */
  overrides?: Record<string, string>
  /** Extra plain plugins (name -> JS source) beside the project's, for benchmarks' baselines. */
  extraPlugins?: Record<string, string>
}

function hostPort(listen: string, port: number): string {
  return listen.includes(':') ? `[${listen}]:${port}` : `${listen}:${port}`
}

/** Replaces `key=value` lines before the first [section] of an ini text, appending keys that are missing. */
export function setIniMain(text: string, values: Record<string, string>): string {
  const lines = text.split('\n')
  const firstSection = lines.findIndex((l) => /^\s*\[/.test(l))
  const end = firstSection < 0 ? lines.length : firstSection
  const seen = new Set<string>()
  for (let i = 0; i < end; i++) {
    const m = /^\s*([A-Za-z0-9_.]+)\s*=/.exec(lines[i])
    if (m && m[1] in values) {
      lines[i] = `${m[1]}=${values[m[1]]}`
      seen.add(m[1])
    }
  }
  const missing = Object.keys(values).filter((k) => !seen.has(k)).map((k) => `${k}=${values[k]}`)
  lines.splice(end, 0, ...missing)
  return lines.join('\n')
}

function link(target: string, at: string) {
  try {
    if (fs.readlinkSync(at) === target) return
    fs.unlinkSync(at)
  } catch {
    /* not there yet */
  }
  fs.symlinkSync(target, at)
}

export function buildHarakaDir(opts: HarakaDirOptions): string {
  const dir = path.resolve(opts.dir)
  const cfgDir = path.join(dir, 'config')
  fs.rmSync(cfgDir, { recursive: true, force: true })
  fs.mkdirSync(cfgDir, { recursive: true })
  fs.cpSync(opts.configDir ?? path.join(PROJECT_ROOT, 'config'), cfgDir, { recursive: true })

  const smtpIni = path.join(cfgDir, 'smtp.ini')
  const ports = [opts.smtpPort, opts.submissionPort, opts.smtpsPort]
  fs.writeFileSync(
    smtpIni,
    setIniMain(fs.readFileSync(smtpIni, 'utf8'), {
      listen: ports.map((p) => hostPort(opts.listen, p)).join(','),
      smtps_port: String(opts.smtpsPort),
      ...(opts.nodes === undefined ? {} : { nodes: opts.nodes }),
    }),
  )
  fs.copyFileSync(opts.tlsKey, path.join(cfgDir, 'tls_key.pem'))
  fs.copyFileSync(opts.tlsCert, path.join(cfgDir, 'tls_cert.pem'))
  fs.chmodSync(path.join(cfgDir, 'tls_key.pem'), 0o600)
  if (opts.me) fs.writeFileSync(path.join(cfgDir, 'me'), `${opts.me}\n`)
  for (const [name, text] of Object.entries(opts.overrides ?? {})) fs.writeFileSync(path.join(cfgDir, name), text)

  const pluginsDir = path.join(dir, 'plugins')
  if (opts.extraPlugins) {
    // a real directory: links to each project plugin, plus the extra files
    fs.rmSync(pluginsDir, { recursive: true, force: true })
    fs.mkdirSync(pluginsDir)
    for (const p of fs.readdirSync(path.join(PROJECT_ROOT, 'plugins'))) link(path.join(PROJECT_ROOT, 'plugins', p), path.join(pluginsDir, p))
    for (const [name, src] of Object.entries(opts.extraPlugins)) fs.writeFileSync(path.join(pluginsDir, `${name}.js`), src)
  } else {
    link(path.join(PROJECT_ROOT, 'plugins'), pluginsDir)
  }
  link(path.join(PROJECT_ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  // plugins/<p>/package.json points at ../../dist/plugins/<p>/index.js, resolved from the link's location
  link(path.join(PROJECT_ROOT, 'dist'), path.join(dir, 'dist'))
  fs.mkdirSync(path.join(dir, 'queue'), { recursive: true })
  return dir
}

export function harakaBin(): string {
  return path.join(PROJECT_ROOT, 'node_modules', 'Haraka', 'bin', 'haraka')
}
