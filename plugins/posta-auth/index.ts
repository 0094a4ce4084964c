// SMTP AUTH PLAIN and LOGIN against the tenants' hashed credentials, only inside TLS.
// Failed logins are throttled in Redis per client, per (login, client) pair and per login, checked before any hashing
// (lib/authguard.ts: a stranger's guesses never refuse the right password from an address that did not fail).
// The verdict on a login (throttling, verify cache, scrypt, tenant status) is lib/login.ts, shared with the panel.
import { failureCounts, type AuthLimits } from '../../lib/authguard'
import { AUTH_INI } from '../../lib/inis'
import { authFailed, authSucceeded } from '../../lib/metrics'
import { judgeLogin, normalLogin } from '../../lib/login'
import { loginOf, setLogin } from '../../lib/submission'
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

function verify(this: Plugin, next: Next, connection: Connection, method: string, rawUser: string, pass: string) {
  const user = normalLogin(rawUser)
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
    const v = await judgeLogin(redis, { limits: cfg.limits, cacheSeconds: cfg.cacheSeconds, serviceDomain: getSettings().serviceDomain }, ip, user, pass)
    if (v.kind !== 'ok' && v.kind !== 'bad') authFailed(v.kind === 'locked' ? `locked_${v.by}` : 'busy')
    if (v.kind === 'locked') {
      connection.logwarn(this, 'AUTH refused: too many failures', { auth_user: user, client_ip: ip, by: v.by, retry_after: v.retryAfter })
      if (v.by === 'ip') return reply(421, `4.7.0 Too many failed logins from your address, try again in ${v.retryAfter} seconds`, true)
      return reply(454, `4.7.0 Too many failed logins for this user from your address, try again in ${v.retryAfter} seconds`)
    }
    if (v.kind === 'busy') {
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
