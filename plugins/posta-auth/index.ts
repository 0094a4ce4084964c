// SMTP AUTH PLAIN and LOGIN against the tenants' hashed credentials, only inside TLS.
// Failed logins are throttled in Redis per client, per (login, client) pair and per login, checked before any hashing
// (lib/authguard.ts: a stranger's guesses never refuse the right password from an address that did not fail).
import * as crypto from 'node:crypto'
import { beginAttempt, clientKey, endAttempt, failureCounts, lockoutState, type AuthLimits, type LockedBy } from '../../lib/authguard'
import { AUTH_INI } from '../../lib/inis'
import { authFailed, authSucceeded } from '../../lib/metrics'
import type { RedisClient } from '../../lib/redis'
import { loginOf, setLogin } from '../../lib/submission'
import { authRecord, parseLogin, type TenantStatus } from '../../lib/tenants'
import { generatePassword, hashPassword, verifyPassword } from '../../lib/password'
import { constants, getRedis, getSettings, type Connection, type Next, type Plugin } from '../shared/haraka'
import { loadIni } from '../shared/settings'

interface AuthConfig {
  limits: AuthLimits
  failureDelayMs: number
  cacheSeconds: number
  maxAttempts: number
}

const MAX_FIELD = 256
let cfg: AuthConfig
/** Successful verifies, keyed by HMAC(user, password, stored hash) with a per-process secret: no plaintext kept. */
const verified = new Map<string, number>()
const cacheSecret = crypto.randomBytes(32)

export function register(this: Plugin) {
  load_auth_ini.call(this)
  // Before the tls plugin (priority 0): it answers a STARTTLS inside TLS with "220 Go ahead" and a TLS-in-TLS upgrade.
  this.register_hook('unrecognized_command', 'refuse_starttls_in_tls', -100)
}

function load_auth_ini(this: Plugin) {
  loadIni(this, AUTH_INI, ({ values: { main: m } }) => {
    cfg = {
      limits: { ipMax: m.ip_max, ipWindow: m.ip_window, pairMax: m.pair_max, pairWindow: m.pair_window, userMax: m.user_max, userWindow: m.user_window },
      failureDelayMs: m.failure_delay_ms,
      cacheSeconds: m.cache_seconds,
      maxAttempts: m.max_attempts_per_connection,
    }
  })
}

export { hook_init_child, hook_init_master } from '../shared/init'

export function hook_capabilities(this: Plugin, next: Next, connection: Connection) {
  // AUTH is offered only inside TLS, on every address, loopback included.
  if (connection.tls.enabled) connection.capabilities.push('AUTH PLAIN LOGIN')
  next()
}

/** A second STARTTLS inside TLS (after STARTTLS, or on the SMTPS port) is a protocol error (RFC 3207 §4.2). */
export function refuse_starttls_in_tls(this: Plugin, next: Next, connection: Connection, params: string[]) {
  if (!connection.tls.enabled || String(params[0]).toUpperCase() !== 'STARTTLS') return next()
  // Inside an AUTH exchange the line is the client's base64 answer: read it here, before the tls plugin takes it.
  if (connection.notes.posta_auth) return hook_unrecognized_command.call(this, next, connection, params)
  connection.lognotice(this, 'STARTTLS refused: TLS already active', { auth_user: loginOf(connection.notes)?.auth_user, client_ip: connection.remote.ip })
  connection.respond(503, '5.5.1 TLS already active', () => next(constants.ok))
}

interface AuthState {
  method: 'PLAIN' | 'LOGIN'
  step: 'plain' | 'login-user' | 'login-pass'
  user?: string
}

export function hook_unrecognized_command(this: Plugin, next: Next, connection: Connection, params: string[]) {
  const state = connection.notes.posta_auth as AuthState | undefined
  const [cmd, rest = ''] = params
  // Haraka logs params[0] of a hook that answers OK: a continuation line is a base64 secret, so blank it.
  if (state) {
    params[0] = '(auth data)'
    // The whole line is the response: Haraka split it at the first space, and "dXNl cg==" is not "dXNl".
    const line = params.length > 1 && rest !== '' ? `${cmd} ${rest}` : String(cmd)
    return continueAuth.call(this, next, connection, state, line)
  }
  if (String(cmd).toUpperCase() !== 'AUTH') return next()

  const reply = (code: number, msg: string) => connection.respond(code, msg, () => next(constants.ok))
  if (!connection.tls.enabled) return reply(530, '5.7.0 Must issue a STARTTLS command first: AUTH is only accepted over TLS')
  if (connection.relaying && loginOf(connection.notes)) return reply(503, '5.5.1 Already authenticated')
  if (connection.transaction) return reply(503, '5.5.1 AUTH not allowed during a mail transaction')

  const [mech, initial, extra] = rest.trim().split(/\s+/)
  const method = String(mech ?? '').toUpperCase()
  if (method !== 'PLAIN' && method !== 'LOGIN') {
    return reply(504, '5.5.4 Unrecognized authentication type: use PLAIN or LOGIN')
  }
  if (extra !== undefined) return reply(501, '5.5.2 Syntax error in AUTH parameters')

  if (method === 'PLAIN') {
    if (initial === undefined) {
      connection.notes.posta_auth = { method, step: 'plain' } satisfies AuthState
      return reply(334, ' ')
    }
    return finishPlain.call(this, next, connection, initial)
  }
  if (initial === undefined) {
    connection.notes.posta_auth = { method, step: 'login-user' } satisfies AuthState
    return reply(334, 'VXNlcm5hbWU6') // "Username:"
  }
  const user = decode(initial)
  if (user === null || user === '' || user.length > MAX_FIELD) return reply(501, '5.5.2 Invalid AUTH LOGIN username: expected base64')
  connection.notes.posta_auth = { method, step: 'login-pass', user } satisfies AuthState
  return reply(334, 'UGFzc3dvcmQ6') // "Password:"
}

function continueAuth(this: Plugin, next: Next, connection: Connection, state: AuthState, line: string) {
  const reply = (code: number, msg: string) => connection.respond(code, msg, () => next(constants.ok))
  if (line === '*') {
    delete connection.notes.posta_auth
    return reply(501, '5.0.0 Authentication cancelled')
  }
  if (state.step === 'plain') {
    delete connection.notes.posta_auth
    return finishPlain.call(this, next, connection, line)
  }
  if (state.step === 'login-user') {
    const user = decode(line)
    if (user === null || user === '' || user.length > MAX_FIELD) {
      delete connection.notes.posta_auth
      return reply(501, '5.5.2 Invalid AUTH LOGIN username: expected base64')
    }
    connection.notes.posta_auth = { ...state, step: 'login-pass', user }
    return reply(334, 'UGFzc3dvcmQ6')
  }
  delete connection.notes.posta_auth
  const pass = decode(line)
  if (pass === null || pass === '' || pass.length > MAX_FIELD) return reply(501, '5.5.2 Invalid AUTH LOGIN password: expected base64')
  return verify.call(this, next, connection, 'LOGIN', state.user!, pass)
}

function finishPlain(this: Plugin, next: Next, connection: Connection, b64: string) {
  const reply = (code: number, msg: string) => connection.respond(code, msg, () => next(constants.ok))
  const decoded = decode(b64)
  // authzid \0 authcid \0 passwd (RFC 4616)
  const parts = decoded === null ? [] : decoded.split('\0')
  if (parts.length !== 3 || !parts[1] || !parts[2] || parts[1].length > MAX_FIELD || parts[2].length > MAX_FIELD) {
    return reply(501, '5.5.2 Invalid AUTH PLAIN response: expected base64 of authzid\\0user\\0password')
  }
  if (parts[0] && parts[0].toLowerCase() !== parts[1].toLowerCase()) {
    return reply(535, '5.7.8 Authentication failed: authorization identity must be empty or the login itself')
  }
  return verify.call(this, next, connection, 'PLAIN', parts[1], parts[2])
}

/** Strict base64 (RFC 4648, padded); null for anything else. */
function decode(s: string): string | null {
  if (typeof s !== 'string' || s.length === 0 || s.length > 1024 || s.length % 4 !== 0) return null
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null
  return Buffer.from(s, 'base64').toString('utf8')
}

let dummy: Promise<string> | null = null
/** A hash of a random password, made once, to verify unknown logins against. */
function dummyHash(): Promise<string> {
  if (!dummy) dummy = hashPassword(generatePassword())
  return dummy
}

function cacheKey(user: string, pass: string, hash: string): string {
  return crypto.createHmac('sha256', cacheSecret).update(user).update('\0').update(pass).update('\0').update(hash).digest('base64')
}

type Verdict =
  | { kind: 'locked'; by: LockedBy; retryAfter: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'busy' }
  | { kind: 'bad'; reason: string }
  | { kind: 'ok'; slug: string; status: TenantStatus }

/** Verifies in progress, by client and credential: a burst of pooled connections with the same login pays one hash. */
const inflight = new Map<string, Promise<Verdict>>()

/** How long a login waits, at most, for the outcome of its client's previous attempt (see Gate 'wait'). */
const WAIT_MAX_MS = 10000
const WAIT_STEP_MS = 100

/**
 * The verdict on a login: the gate first (a read, nothing hashed), then the verify cache, then one counted attempt
 * and one scrypt, shared by identical attempts of one client in flight. Each distinct guess is counted before it is
 * hashed, so parallel connections cannot overrun a budget. When the login is under attack and this client's
 * previous attempt is still being verified, wait for its outcome: pooled connections are let in once one of them
 * has shown the password, and a guesser gets one guess per address.
 */
async function judge(redis: RedisClient, ip: string, user: string, pass: string): Promise<Verdict> {
  const deadline = Date.now() + WAIT_MAX_MS
  for (;;) {
    const v = await judgeOnce(redis, ip, user, pass)
    if (v.kind !== 'wait') return v
    if (Date.now() >= deadline) return { kind: 'busy' }
    await new Promise((res) => setTimeout(res, Math.min(v.ms, WAIT_STEP_MS)))
  }
}

async function judgeOnce(redis: RedisClient, ip: string, user: string, pass: string): Promise<Verdict> {
  const gate = await lockoutState(redis, ip, user, cfg.limits)
  if (gate.kind !== 'go') return gate
  const login = parseLogin(user, getSettings().serviceDomain)
  const rec = login ? await authRecord(redis, login.slug, login.local) : { status: null, hash: null }
  const key = cacheKey(user, pass, rec.hash ?? '-')
  if (login && rec.status && rec.hash && (verified.get(key) ?? 0) > Date.now()) return { kind: 'ok', slug: login.slug, status: rec.status }
  const flightKey = `${clientKey(ip)} ${key}`
  let flight = inflight.get(flightKey)
  if (!flight) {
    flight = (async (): Promise<Verdict> => {
      const begun = await beginAttempt(redis, ip, user, cfg.limits)
      if (begun.kind !== 'go') return begun
      let ok = false
      try {
        if (!login || !rec.status || !rec.hash) {
          // An unknown login costs the same hash as a known one: the reply time does not tell which logins exist.
          await verifyPassword(pass, await dummyHash())
          return { kind: 'bad', reason: login ? 'no such login' : 'not a login of this service' }
        }
        if (!(await verifyPassword(pass, rec.hash))) return { kind: 'bad', reason: 'wrong password' }
        ok = true
        if (cfg.cacheSeconds > 0) {
          if (verified.size > 10000) verified.clear()
          verified.set(key, Date.now() + cfg.cacheSeconds * 1000)
        }
        return { kind: 'ok', slug: login.slug, status: rec.status }
      } finally {
        await endAttempt(redis, ip, user, ok)
      }
    })().finally(() => inflight.delete(flightKey))
    inflight.set(flightKey, flight)
  }
  return flight
}

function verify(this: Plugin, next: Next, connection: Connection, method: string, rawUser: string, pass: string) {
  // eslint-disable-next-line no-control-regex
  const user = rawUser.replace(/[\x00-\x1f\x7f]/g, '').toLowerCase()
  const ip = connection.remote.ip
  const redis = getRedis(this)
  let answered = false
  const reply = (code: number, msg: string, disconnect = false) => {
    if (answered) return
    answered = true
    connection.respond(code, msg, () => {
      if (disconnect) connection.disconnect()
      next(constants.ok)
    })
  }
  const fail = async (reason: string) => {
    authFailed(reason)
    const counts = await failureCounts(redis, ip, user)
    const attempts = ((connection.notes.posta_auth_fails as number) ?? 0) + 1
    connection.notes.posta_auth_fails = attempts
    // One line per failure with user and IP, in the words fail2ban's postfix filter understands.
    connection.lognotice(this, `SASL ${method} authentication failed`, {
      auth_user: user, client_ip: ip, reason, ip_fails: counts.ip, pair_fails: counts.pair, user_fails: counts.user,
    })
    connection.results.add(this, { fail: `auth/${method}` })
    setTimeout(() => {
      if (attempts >= cfg.maxAttempts) reply(421, '4.7.0 Too many failed AUTH attempts on this connection, closing', true)
      else reply(535, '5.7.8 Authentication failed: wrong login or password')
    }, cfg.failureDelayMs)
  }

  ;(async () => {
    const v = await judge(redis, ip, user, pass)
    if (v.kind !== 'ok' && v.kind !== 'bad') authFailed(v.kind === 'locked' ? `locked_${v.by}` : 'busy')
    if (v.kind === 'locked') {
      connection.logwarn(this, 'AUTH refused: too many failures', { auth_user: user, client_ip: ip, by: v.by, retry_after: v.retryAfter })
      if (v.by === 'ip') return reply(421, `4.7.0 Too many failed logins from your address, try again in ${v.retryAfter} seconds`, true)
      return reply(454, `4.7.0 Too many failed logins for this user from your address, try again in ${v.retryAfter} seconds`)
    }
    if (v.kind === 'wait' || v.kind === 'busy') {
      connection.logwarn(this, 'AUTH refused: previous attempt of this client still being verified', { auth_user: user, client_ip: ip })
      return reply(454, '4.7.0 Another login for this user from your address is still being checked, try again in a few seconds')
    }
    if (v.kind === 'bad') return fail(v.reason)
    // The password was checked before the status, so a suspended tenant's status is not revealed to a guesser.
    if (v.status !== 'active') {
      authFailed(`tenant_${v.status}`)
      connection.lognotice(this, `AUTH refused: tenant ${v.status}`, { tenant: v.slug, auth_user: user, client_ip: ip })
      return reply(535, `5.7.8 Authentication failed: this account is ${v.status}, contact support`)
    }
    authSucceeded()
    connection.relaying = true
    setLogin(connection.notes, { tenant: v.slug, auth_user: user })
    connection.results.add({ name: 'relay' }, { pass: this.name })
    connection.results.add({ name: 'auth' }, { pass: this.name, method, user })
    connection.authheader = '(authenticated bits=0)\n'
    connection.auth_results(`auth=pass (${method.toLowerCase()})`)
    connection.loginfo(this, 'AUTH ok', { tenant: v.slug, auth_user: user, client_ip: ip, method })
    reply(235, '2.7.0 Authentication successful')
  })().catch((err: Error) => {
    authFailed('unavailable')
    connection.logerror(this, `AUTH backend unavailable: ${err.message}`, { auth_user: user, client_ip: ip })
    reply(454, '4.7.0 Temporary authentication failure, try again later')
  })
}
