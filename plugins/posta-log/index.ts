// Safe log lines: every line Haraka writes, its own included, goes through lib/logs.ts's escaping, so that what a
// client typed (EHLO name, addresses, MAIL/RCPT parameters, AUTH user names) cannot forge a `key=value` field or a
// new line. Haraka's logger (logger.js) builds a line from its arguments: strings are the free-text message, plain
// objects become `key=value` fields, a Connection / Plugin / hmail names the line's uuid and origin. It escapes
// neither `=` nor anything but CR/LF, and core lines embed client text in the message itself (`sender <...>`,
// parser errors). This plugin wraps the log methods so that they get their arguments already escaped: the free
// text and the fields pre-formatted into one message string, the uuid/origin objects passed on untouched.
// Listed near the top of config/plugins; it has no hooks. Applies to `format=default` (config/log.ini); `json` is
// safe by construction; `logfmt` is not supported.
import * as path from 'node:path'
import * as util from 'node:util'
import { escapeText, formatFields } from '../../lib/logs'
import { shareLogger, type Plugin } from '../shared/haraka'

type LogFn = ((...args: unknown[]) => unknown) & { [WRAPPED]?: true }
const WRAPPED = Symbol.for('posta.log.wrapped')

interface HarakaLogger {
  levels: Record<string, number>
  loglevel: number
  format: string
  formats: { DEFAULT: string; LOGFMT: string; JSON: string }
  log_if_level: (level: string, key: string, origin?: string) => LogFn
  [k: string]: unknown
}

const LEVELS = ['DATA', 'PROTOCOL', 'DEBUG', 'INFO', 'NOTICE', 'WARN', 'ERROR', 'CRIT', 'ALERT', 'EMERG']

/** True for a plain object (any realm): Haraka's logger prints those as fields. */
function isPlain(o: object): boolean {
  const proto = Object.getPrototypeOf(o)
  if (proto === null) return true
  return Object.getPrototypeOf(proto) === null && (proto as { constructor?: { name?: string } }).constructor?.name === 'Object'
}

/** The objects logger.js reads the uuid and origin from (Connection, Plugin, hmail, transaction, client pool). */
function namesTheLine(o: object, PluginClass: unknown): boolean {
  if ((o as { constructor?: { name?: string } }).constructor?.name === 'Connection') return true
  if (typeof PluginClass === 'function' && o instanceof (PluginClass as new () => object)) return true
  return Object.hasOwn(o, 'name') || Object.hasOwn(o, 'uuid')
}

/** An Error as logger.js would print it: the summary in the line, each further line of util.inspect on its own. */
function errorParts(err: Error): { summary: string; rest: string[] } {
  const lines = util.inspect(err).split('\n')
  // the summary is the first line; a multi-line message keeps its lines in it (escaped), never as lines of their own
  let i = 1
  while (i < lines.length && !/^\s+at /.test(lines[i])) i++
  return { summary: lines.slice(0, i).join('\n'), rest: lines.slice(i) }
}

export function install(logger: HarakaLogger, PluginClass: unknown, others: object[]): void {
  const safe = (level: string, original: LogFn): LogFn => {
    if (original[WRAPPED]) return original
    const threshold = logger.levels[level]
    const wrapped: LogFn = function (this: unknown, ...args: unknown[]) {
      if (logger.loglevel < threshold) return true
      if (logger.format !== logger.formats.DEFAULT) return original.apply(this, args)
      const pass: object[] = []
      let message = ''
      const tail: string[] = []
      try {
        format()
      } catch (err) {
        // a log call never throws into the hook that made it
        message = `log line not formatted: ${escapeText(String((err as Error)?.message ?? err))}`
        tail.length = 0
      }
      const r = original.call(this, ...pass, message)
      for (const line of tail) original.call(this, ...pass, line)
      return r

      function format() {
        for (const a of args) {
          if (typeof a !== 'object') {
            message += escapeText(String(a))
            continue
          }
          if (a === null) continue
          if (a instanceof Error || util.types.isNativeError(a)) { // an Error of a plain plugin's vm realm too
            const { summary, rest } = errorParts(a as Error)
            if ((a as Error).message) {
              if (message && !message.endsWith(' ')) message += ' '
              message += escapeText(summary)
            }
            tail.push(...rest.map(escapeText))
            continue
          }
          if (namesTheLine(a, PluginClass)) pass.push(a)
          else if (isPlain(a)) {
            if (message && !message.endsWith(' ')) message += ' '
            message += formatFields(a as Record<string, unknown>)
          } else message += escapeText(util.inspect(a))
        }
      }
    }
    wrapped[WRAPPED] = true
    return wrapped
  }

  const wrapObject = (o: object | null | undefined) => {
    if (!o) return
    const obj = o as Record<string, unknown>
    for (const level of LEVELS) {
      for (const name of [`log${level.toLowerCase()}`, level.toLowerCase()]) {
        if (!Object.hasOwn(obj, name) || typeof obj[name] !== 'function') continue
        if (name === level.toLowerCase() && obj !== logger) continue // short names exist on the logger only
        obj[name] = safe(level, obj[name] as LogFn)
      }
    }
  }

  // Connection, Plugin and HMailItem methods call logger.log<level> by name: wrapping the logger covers them.
  wrapObject(logger)
  // Modules that got their own log functions at load (server, plugins, outbound/tls ...).
  for (const o of others) wrapObject(o)
  // Objects given log functions from now on (outbound's connection for new mail).
  const make = logger.log_if_level as HarakaLogger['log_if_level'] & { [WRAPPED]?: true }
  if (!make[WRAPPED]) {
    const wrappedMake = ((level: string, key: string, origin?: string) => safe(level, make(level, key, origin))) as LogFn
    wrappedMake[WRAPPED] = true
    logger.log_if_level = wrappedMake as HarakaLogger['log_if_level']
  }
}

export function register(this: Plugin) {
  const req = (name: string): unknown => (this.haraka_require as (n: string) => unknown).call(this, name)
  const logger = req('logger') as HarakaLogger
  const plugins = req('plugins') as { Plugin?: unknown }
  // Every already loaded Haraka module (beside logger.js) whose exports carry their own log functions.
  const loggerFile = Object.keys(require.cache).find((f) => require.cache[f]?.exports === logger)
  const harakaDir = loggerFile ? path.dirname(loggerFile) + path.sep : null
  const others: object[] = []
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!harakaDir || !file.startsWith(harakaDir) || file.includes(`${path.sep}node_modules${path.sep}`, harakaDir.length)) continue
    const e = mod?.exports as Record<string, unknown> | undefined
    if (e && e !== logger && typeof e === 'object' && Object.hasOwn(e, 'loginfo')) others.push(e)
  }
  install(logger, plugins.Plugin, others)
  shareLogger(logger)
  if (logger.format === logger.formats.LOGFMT) this.logwarn('log.ini format=logfmt: client input is not escaped there; use default or json')
}
