// Service-wide settings shared by the Haraka plugins, the panel and the CLI.
// They come from the environment (README.md lists every variable) so that the three
// processes of one node, started by `npm start`, always agree.
import * as path from 'node:path'
import type Redis from 'ioredis'
import { keys } from './keys'

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
}

export const DEFAULT_SERVICE_DOMAIN = 'posta.localhost'

function port(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return dflt
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name}=${raw} is not a TCP port (1-65535)`)
  return n
}

/** Where the embedded Redis (started by `npm start`) listens: a unix socket in the data dir. */
export function embeddedRedisUrl(dataDir: string): string {
  return `unix://${path.join(dataDir, 'redis', 'redis.sock')}`
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const dataDir = path.resolve(env.POSTA_DATA_DIR || 'var')
  const serviceDomain = (env.POSTA_SERVICE_DOMAIN || DEFAULT_SERVICE_DOMAIN).toLowerCase().replace(/\.$/, '')
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(serviceDomain)) {
    throw new Error(`POSTA_SERVICE_DOMAIN=${serviceDomain} is not a domain name (e.g. soloposta.biz)`)
  }
  const timeZone = env.POSTA_TIMEZONE || 'Europe/Rome'
  try {
    new Intl.DateTimeFormat('en', { timeZone })
  } catch {
    throw new Error(`POSTA_TIMEZONE=${timeZone} is not an IANA time zone (e.g. Europe/Rome)`)
  }
  return {
    serviceDomain,
    timeZone,
    dataDir,
    redisUrl: env.REDIS_URL || embeddedRedisUrl(dataDir),
    listen: env.POSTA_LISTEN || '::',
    smtpPort: port(env, 'POSTA_SMTP_PORT', 2525),
    submissionPort: port(env, 'POSTA_SUBMISSION_PORT', 2587),
    smtpsPort: port(env, 'POSTA_SMTPS_PORT', 2465),
    panelPort: port(env, 'POSTA_PANEL_PORT', 8080),
  }
}

/** Settings that customers see (login domain, ports) and that the CLI must print as the running service uses them. */
const PUBLISHED: [keyof Settings, string, string][] = [
  ['serviceDomain', 'service_domain', 'POSTA_SERVICE_DOMAIN'],
  ['timeZone', 'time_zone', 'POSTA_TIMEZONE'],
  ['smtpPort', 'smtp_port', 'POSTA_SMTP_PORT'],
  ['submissionPort', 'submission_port', 'POSTA_SUBMISSION_PORT'],
  ['smtpsPort', 'smtps_port', 'POSTA_SMTPS_PORT'],
  ['panelPort', 'panel_port', 'POSTA_PANEL_PORT'],
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
