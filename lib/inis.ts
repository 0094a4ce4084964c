// The schema of every Posta plugin ini in config/: each key with its kind, default and allowed values (lib/config.ts
// reads them). The plugins, the CLI and `npm start` (which checks every shipped ini before it starts Haraka) all
// read through these, so a value one of them refuses, all of them refuse. A new key goes here and, with its default
// and a one-line comment, into the shipped ini (test/config.test.ts checks that both agree).
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { boolean, custom, duration, integer, list, readSettings, SettingsError, string, type IniSchema, type Section, type Sections } from './config'
import { readIni } from './ini'
import { isDomain } from './validate'

const schema = <S extends Sections, P extends Section = Section>(s: IniSchema<S, P>) => s

const isEmail = (s: string) => {
  const m = /^([^\s@"<>()[\],;:\\]{1,64})@([^\s@]+)$/.exec(s)
  return !!m && isDomain(m[2].toLowerCase().replace(/\.$/, ''))
}

/** A resolver address: an IP, optionally with a port (IPv6 with a port in brackets). */
export const isResolver = (s: string) => {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([0-9.]+)(?::(\d{1,5}))?$/.exec(s)
  if (m) return net.isIP(m[1]) !== 0 && (m[2] === undefined || (Number(m[2]) >= 1 && Number(m[2]) <= 65535))
  return net.isIPv6(s)
}

const zoneName = string('', 'a DNS zone name like zen.spamhaus.org', (s) => isDomain(s.toLowerCase()), { bad: ['zen', 'not a zone', 'zen..org'] })
const ipv4OrCidr = string('', 'an IPv4 address or block like 127.255.255.0/24', (s) => {
  const [ip, bits, extra] = s.split('/')
  return extra === undefined && net.isIPv4(ip) && (bits === undefined || (/^\d{1,2}$/.test(bits) && Number(bits) <= 32))
}, { bad: ['127.0.0', '127.0.0.256', '127.0.0.0/33', 'abc'] })
/** `answer:meaning` of a listing (the meaning is optional). */
const listing = string('', 'an answer with an optional meaning, like 127.0.0.2:SBL', (s) => {
  const [ip, ...meaning] = s.split(':')
  return net.isIPv4(ip.trim()) && (meaning.length === 0 || meaning.join(':').trim() !== '')
}, { bad: ['SBL', '127.0.0:SBL', '127.0.0.2:'] })

export const AUTH_INI = schema({
  file: 'posta-auth.ini',
  sections: {
    main: {
      ip_max: integer(10, 1, 1_000_000),
      ip_window: duration(900, 1, 30 * 86400, 'seconds'),
      pair_max: integer(10, 1, 1_000_000),
      pair_window: duration(3600, 1, 30 * 86400, 'seconds'),
      user_max: integer(20, 1, 1_000_000),
      user_window: duration(3600, 1, 30 * 86400, 'seconds'),
      // below Haraka's 30 s plugin timeout, or the hook would time out first
      failure_delay_ms: duration(1000, 0, 20_000, 'milliseconds'),
      max_attempts_per_connection: integer(3, 1, 100),
      cache_seconds: duration(300, 0, 86400, 'seconds'),
    },
  },
})

/** posta-limits (lib/limits.ts, docs/limits.md): 0 is outside every range; a limit is turned off with enabled=false. */
export const LIMITS_INI = schema({
  file: 'posta-limits.ini',
  sections: {
    recipients: { enabled: boolean(true), max_recipients: integer(1000, 1, 100_000) },
    connections: { enabled: boolean(true), max_per_client: integer(50, 1, 100_000) },
    tls_handshake: { enabled: boolean(true), timeout_seconds: duration(10, 1, 3600, 'seconds') },
    bare_cr: { enabled: boolean(true) },
  },
})

export const MONITOR_INI = schema({
  file: 'posta-monitor.ini',
  sections: {
    main: {
      interval: duration(600, 1, 86400, 'seconds'),
      resolvers: list([], string('', 'an IP address with an optional port, like 127.0.0.1:53 or [::1]:53', isResolver, { bad: ['dns.google', '127.0.0.1:0', '127.0.0.1:70000', '300.1.1.1'] }), { what: 'resolvers' }),
      timeout_ms: duration(3000, 10, 60_000, 'milliseconds'),
      concurrency: integer(32, 1, 1024),
      auto_reinstate: boolean(false),
      investigation_hours: duration(24, 1, 24 * 90, 'hours'),
      zones: list(
        ['zen.spamhaus.org', 'b.barracudacentral.org', 'bl.spamcop.net', 'psbl.surriel.com', 'ix.dnsbl.manitu.net',
          'dnsbl-1.uceprotect.net', 'dnsbl-2.uceprotect.net', 'dnsbl-3.uceprotect.net'],
        zoneName, { min: 1, unique: true, what: 'zones' },
      ),
    },
  },
  prefixed: {
    prefix: 'zone ',
    keys: {
      listed: list<string>([], listing, { what: 'answers' }),
      errors: list<string>([], ipv4OrCidr, { what: 'answers' }),
      informational: list<string>([], ipv4OrCidr, { what: 'answers' }),
      informational_zone: boolean(false),
      ipv6: boolean(false),
    },
  },
})

/** `active`: a count of IPs (an integer, at least 1) or a fraction of the pool (above 0, below 1). */
const activeSetting = custom('count or fraction', 0.5, 'a count of IPs (an integer from 1 to 100000) or a fraction of the pool above 0 and below 1 (0.5 = half)', ['', '0', '0.0', '-1', '1.5', 'half', '100001'], (s) => {
  if (/^\d+$/.test(s)) return Number(s) >= 1 && Number(s) <= 100_000 ? Number(s) : undefined
  if (/^0?\.\d+$/.test(s)) return Number(s) > 0 && Number(s) < 1 ? Number(s) : undefined
  return undefined
})

export const OUTBOUND_INI = schema({
  file: 'posta-outbound.ini',
  sections: {
    rotation: {
      slot_minutes: duration(240, 1, 1440, 'minutes'),
      active: activeSetting,
      wait_seconds: duration(60, 1, 3600, 'seconds'),
      sticky_days: duration(5, 1, 365, 'days'),
    },
    ledger: {
      hourly_days: duration(30, 1, 3650, 'days'),
      raw_days: duration(7, 1, 365, 'days'),
      recent_max: integer(200, 1, 100_000),
    },
  },
})

export const QUOTA_INI = schema({
  file: 'posta-quota.ini',
  sections: {
    main: {
      reservation_seconds: duration(600, 1, 86400, 'seconds'),
      committed_days: duration(7, 1, 365, 'days'),
      commit_retry_seconds: duration(30, 1, 3600, 'seconds'),
      // a Sentinel set only (docs/redis.md); 0 = no WAIT
      replica_wait_ms: duration(500, 0, 10_000, 'milliseconds'),
      replica_hold_seconds: duration(60, 1, 86400, 'seconds'),
      retention_days: duration(400, 1, 3650, 'days'),
      stats_interval: duration(300, 0, 86400, 'seconds'),
    },
    warnings: {
      enabled: boolean(true),
      thresholds: list([80, 90, 100], integer(0, 1, 1000, 'percent'), { min: 1, unique: true, what: 'percentages' }),
      from: string('', 'empty (postmaster@<service domain>) or an address like postmaster@example.net', isEmail, { empty: true, bad: ['postmaster', 'a@b', '@example.net'] }),
    },
  },
})

export const TRAP_INI = schema({
  file: 'posta-trap.ini',
  sections: {
    main: {
      typo_strikes: integer(3, 1, 1000),
      typo_window_days: duration(30, 0, 3650, 'days'),
    },
    suppression: {
      enabled: boolean(true),
      days: duration(30, 1, 3650, 'days'),
      max_entries: integer(100_000, 1, 10_000_000),
    },
    bans: {
      sender_domains: boolean(false),
    },
  },
})

/** posta-domains (docs/domains.md): whose sender domains a tenant may use. */
export const DOMAINS_INI = schema({
  file: 'posta-domains.ini',
  sections: {
    main: {
      policy: string('verified', 'verified or any', (s) => s === 'verified' || s === 'any', { bad: ['off', 'Verified', 'all'] }),
    },
  },
})

/** Every Posta ini that config/ ships, checked whole by `npm start` before Haraka starts. */
export const SHIPPED_INIS: IniSchema[] = [AUTH_INI, DOMAINS_INI, LIMITS_INI, MONITOR_INI, OUTBOUND_INI, QUOTA_INI, TRAP_INI] as unknown as IniSchema[]

/** Reads one ini of a config directory (lib/ini.ts parser) against its schema; a missing file is all defaults. */
export function readConfigFile<S extends Sections, P extends Section>(configDir: string, s: IniSchema<S, P>) {
  const file = path.join(configDir, s.file)
  let ini = {}
  try {
    ini = readIni(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  return readSettings(s, ini)
}

/** Every refusal in the Posta inis of a config directory (empty: all good). */
export function checkConfigDir(configDir: string): string[] {
  const problems: string[] = []
  for (const s of SHIPPED_INIS) {
    if (!fs.existsSync(path.join(configDir, s.file))) continue
    try {
      readConfigFile(configDir, s)
    } catch (err) {
      if (err instanceof SettingsError) problems.push(...err.problems)
      else problems.push(`${s.file}: ${(err as Error).message}`)
    }
  }
  return problems
}
