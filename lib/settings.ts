// Service-wide settings shared by the Haraka plugins, the panel and the CLI.
// They come from the environment (README.md lists every variable) so that the three
// processes of one node, started by `npm start`, always agree. Every variable is checked here: a bad value throws
// an error that names the variable, the value and what is allowed, and `npm start` (and Haraka) do not start.
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import type { RedisClient as Redis } from './redis'
import { InputError } from './errors'
import { isResolver } from './inis'
import { keys } from './keys'
import { DEFAULT_LANGUAGE, isLanguage, LANGUAGES, type Language } from './language'
import { describeRedisUrl, parseRedisUrl, REDIS_URL_FORMS, RedisUrlError } from './redis'

export interface Settings {
  serviceDomain: string
  timeZone: string
  dataDir: string
  redisUrl: string
  listen: string
  smtpPort: number
  submissionPort: number
  smtpsPort: number
  panelPort: number
  /** The host name Haraka announces (POSTA_HOSTNAME, default smtp.<service domain>). */
  hostname: string
  /** The TLS key and certificate files (POSTA_TLS_KEY and POSTA_TLS_CERT), or null: a self-signed pair. */
  tls: { key: string; cert: string } | null
  /** The language of new tenants (their bounces), unless `posta tenant create --lang` says otherwise. */
  language: Language
  /**
   * The DNS resolvers of the service's own lookups (MX of outbound mail, the DNS checks of `posta ip add`, and the
   * blocklist monitor when posta-monitor.ini names none): POSTA_RESOLVERS, host:port list; empty = the system's.
   */
  resolvers: string[]
  /**
   * Where each Haraka node serves its Prometheus metrics (README "Metrics"): POSTA_METRICS_PORT (default 9587; 0 = not
   * served) on POSTA_METRICS_LISTEN (default 127.0.0.1: loopback, as the metrics name the pool's IPs).
   */
  metrics: { port: number; listen: string }
  /** The panel serves HTTPS with the service's certificate (POSTA_PANEL_TLS=1); plain HTTP otherwise. */
  panelTls: boolean
  /** This node's name (POSTA_NODE, default the host name): it binds the pool IPs it owns and the shared ones. */
  node: string
}

export const DEFAULT_SERVICE_DOMAIN = 'posta.localhost'

function port(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return dflt
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < 1 || n > 65535) throw new Error(`${name}=${raw} is not a TCP port (allowed: an integer from 1 to 65535)`)
  return n
}

const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/

/**
 * REDIS_URL: redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// (the embedded Redis when unset);
 * a bad one gets one error that says what is wrong with it, and the password is never shown.
 */
export function checkRedisUrl(raw: string): string {
  try {
    parseRedisUrl(raw)
  } catch (err) {
    if (err instanceof RedisUrlError) throw err
    throw new Error(`REDIS_URL=${describeRedisUrl(raw)}: expected ${REDIS_URL_FORMS}`)
  }
  return raw
}

const NODE_NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/

/** A node name (POSTA_NODE, `posta ip add --node`): lower-cased; letters, digits, '.', '_' and '-', up to 63. */
export function checkNodeName(raw: string, what: string): string {
  const n = String(raw).trim().toLowerCase()
  if (!NODE_NAME.test(n)) throw new InputError(`${what}=${raw} is not a node name (allowed: letters, digits, '.', '_' and '-', up to 63, e.g. relay-1)`)
  return n
}

/** Where the embedded Redis (started by `npm start`) listens: a unix socket in the data dir. */
export function embeddedRedisUrl(dataDir: string): string {
  return `unix://${path.join(dataDir, 'redis', 'redis.sock')}`
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const dataDir = path.resolve(env.POSTA_DATA_DIR || 'var')
  const serviceDomain = (env.POSTA_SERVICE_DOMAIN || DEFAULT_SERVICE_DOMAIN).toLowerCase().replace(/\.$/, '')
  if (!DOMAIN.test(serviceDomain)) {
    throw new Error(`POSTA_SERVICE_DOMAIN=${serviceDomain} is not a domain name (e.g. soloposta.biz)`)
  }
  const timeZone = env.POSTA_TIMEZONE || 'Europe/Rome'
  try {
    new Intl.DateTimeFormat('en', { timeZone })
  } catch {
    throw new Error(`POSTA_TIMEZONE=${timeZone} is not an IANA time zone (e.g. Europe/Rome)`)
  }
  const listen = env.POSTA_LISTEN || '::'
  if (net.isIP(listen) === 0) throw new Error(`POSTA_LISTEN=${listen} is refused: allowed is an IP address of this machine, :: (all, the default) or 0.0.0.0`)
  const hostname = (env.POSTA_HOSTNAME || `smtp.${serviceDomain}`).toLowerCase().replace(/\.$/, '')
  if (!DOMAIN.test(hostname)) throw new Error(`POSTA_HOSTNAME=${env.POSTA_HOSTNAME} is not a host name (e.g. smtp.soloposta.biz)`)
  const [key, cert] = [env.POSTA_TLS_KEY || '', env.POSTA_TLS_CERT || '']
  if (!key !== !cert) throw new Error(`POSTA_TLS_KEY and POSTA_TLS_CERT go together: set both (PEM files) or neither (a self-signed pair)`)
  const ports = {
    smtpPort: port(env, 'POSTA_SMTP_PORT', 2525),
    submissionPort: port(env, 'POSTA_SUBMISSION_PORT', 2587),
    smtpsPort: port(env, 'POSTA_SMTPS_PORT', 2465),
    panelPort: port(env, 'POSTA_PANEL_PORT', 8080),
  }
  const language = env.POSTA_LANGUAGE || DEFAULT_LANGUAGE
  if (!isLanguage(language)) throw new Error(`POSTA_LANGUAGE=${language} is refused: allowed is ${LANGUAGES.join(' or ')}`)
  if (new Set(Object.values(ports)).size !== 4) {
    throw new Error(`POSTA_SMTP_PORT, POSTA_SUBMISSION_PORT, POSTA_SMTPS_PORT and POSTA_PANEL_PORT must differ (${Object.values(ports).join(', ')})`)
  }
  const offset = env.POSTA_CLOCK_OFFSET_MS
  if (offset !== undefined && offset !== '' && !/^-?\d+$/.test(offset)) {
    throw new Error(`POSTA_CLOCK_OFFSET_MS=${offset} is refused: allowed is an integer number of milliseconds (unset in production)`)
  }
  const resolvers = (env.POSTA_RESOLVERS ?? '').split(',').map((r) => r.trim()).filter(Boolean)
  for (const r of resolvers) {
    if (!isResolver(r)) throw new Error(`POSTA_RESOLVERS=${env.POSTA_RESOLVERS} is refused: allowed is a comma-separated list of IP addresses with optional ports, like 127.0.0.1:53,[::1]:53 (empty: the system's)`)
  }
  const metrics = metricsSettings(env, [ports.smtpPort, ports.submissionPort, ports.smtpsPort, ports.panelPort])
  const panelTls = env.POSTA_PANEL_TLS ?? ''
  if (!['', '0', '1'].includes(panelTls)) throw new Error(`POSTA_PANEL_TLS=${panelTls} is refused: allowed is 1 (HTTPS with the service's certificate) or 0 (plain HTTP, the default)`)
  const node = checkNodeName(env.POSTA_NODE || os.hostname(), env.POSTA_NODE ? 'POSTA_NODE' : 'POSTA_NODE (the host name)')
  return {
    serviceDomain,
    timeZone,
    dataDir,
    redisUrl: env.REDIS_URL ? checkRedisUrl(env.REDIS_URL) : embeddedRedisUrl(dataDir),
    listen,
    ...ports,
    hostname,
    tls: key ? { key, cert } : null,
    language,
    resolvers,
    metrics,
    panelTls: panelTls === '1',
    node,
  }
}

export const DEFAULT_METRICS_PORT = 9587

/** POSTA_METRICS_PORT (0 turns the metrics off) and POSTA_METRICS_LISTEN (an IP address, loopback by default). */
function metricsSettings(env: NodeJS.ProcessEnv, otherPorts: number[]): Settings['metrics'] {
  const raw = env.POSTA_METRICS_PORT
  let metricsPort = 0
  if (raw !== '0') {
    try {
      metricsPort = port(env, 'POSTA_METRICS_PORT', DEFAULT_METRICS_PORT)
    } catch {
      throw new Error(`POSTA_METRICS_PORT=${raw} is refused: allowed is a TCP port from 1 to 65535, or 0 (no metrics)`)
    }
  }
  if (metricsPort && otherPorts.includes(metricsPort)) throw new Error(`POSTA_METRICS_PORT=${metricsPort} is refused: it is one of the SMTP, submission, SMTPS or panel ports`)
  const listen = env.POSTA_METRICS_LISTEN || '127.0.0.1'
  if (net.isIP(listen) === 0) throw new Error(`POSTA_METRICS_LISTEN=${listen} is refused: allowed is an IP address of this machine (default 127.0.0.1; :: or 0.0.0.0 for all)`)
  return { port: metricsPort, listen }
}

/** Settings that customers see (login domain, ports) and that the CLI must print as the running service uses them. */
const PUBLISHED: [keyof Settings, string, string][] = [
  ['serviceDomain', 'service_domain', 'POSTA_SERVICE_DOMAIN'],
  ['timeZone', 'time_zone', 'POSTA_TIMEZONE'],
  ['smtpPort', 'smtp_port', 'POSTA_SMTP_PORT'],
  ['submissionPort', 'submission_port', 'POSTA_SUBMISSION_PORT'],
  ['smtpsPort', 'smtps_port', 'POSTA_SMTPS_PORT'],
  ['panelPort', 'panel_port', 'POSTA_PANEL_PORT'],
  ['language', 'language', 'POSTA_LANGUAGE'],
  // the greeting name: its first label is reserved for new tenant slugs (lib/validate.ts checkNewSlug)
  ['hostname', 'hostname', 'POSTA_HOSTNAME'],
]

/** Written by `npm start`, so that a CLI run without the same environment still prints the right login and ports. */
export async function publishSettings(redis: Redis, s: Settings): Promise<void> {
  await redis.hset(keys.published(), Object.fromEntries(PUBLISHED.map(([k, field]) => [field, String(s[k])])))
}

/** The environment wins; what it leaves unset comes from the settings the running service published. */
export async function withPublished(redis: Redis, s: Settings, env: NodeJS.ProcessEnv = process.env): Promise<Settings> {
  const pub = await redis.hgetall(keys.published())
  const out = { ...s } as Record<string, unknown>
  for (const [k, field, envName] of PUBLISHED) {
    if (env[envName] || pub[field] === undefined) continue
    out[k] = typeof s[k] === 'number' ? Number(pub[field]) : pub[field]
  }
  return out as unknown as Settings
}
