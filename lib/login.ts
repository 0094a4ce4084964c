// The one check of a tenant login (`local@slug.<service domain>` and password), for SMTP AUTH (posta-auth) and the
// panel (its login form and the API's Basic authentication): the cross-node failure throttling of lib/authguard.ts,
// a per-process cache of successful verifies, one scrypt per distinct attempt, and the tenant's status.
//
// Exports: LoginPolicy, Verdict, DEFAULT_LOGIN_POLICY, loginPolicyOf, normalLogin, judgeLogin.
import * as crypto from 'node:crypto'
import { beginAttempt, clientKey, DEFAULT_AUTH_LIMITS, endAttempt, lockoutState, type AuthLimits, type LockedBy } from './authguard'
import type { AUTH_INI } from './inis'
import type { IniValues } from './config'
import type { RedisClient } from './redis'
import { authRecord, parseLogin, type TenantStatus } from './tenants'
import { generatePassword, hashPassword, verifyPassword } from './password'

export interface LoginPolicy {
  limits: AuthLimits
  /** How long a successful verify is remembered (0: never), so a login that keeps connecting pays one scrypt. */
  cacheSeconds: number
  serviceDomain: string
}

export const DEFAULT_LOGIN_POLICY: Omit<LoginPolicy, 'serviceDomain'> = { limits: DEFAULT_AUTH_LIMITS, cacheSeconds: 300 }

/** The policy posta-auth.ini ([main]) sets, for a service domain. */
export function loginPolicyOf(m: IniValues<(typeof AUTH_INI)['sections']>['main'], serviceDomain: string): LoginPolicy {
  return {
    limits: { ipMax: m.ip_max, ipWindow: m.ip_window, pairMax: m.pair_max, pairWindow: m.pair_window, userMax: m.user_max, userWindow: m.user_window },
    cacheSeconds: m.cache_seconds,
    serviceDomain,
  }
}

/**
 * The verdict on a login. `locked`: too many failures (by client, pair or login), nothing was checked. `busy`:
 * this client's previous attempt for the login is still being verified. `bad`: wrong login or password (the reason
 * is for logs only, never for the client). `ok`: the password is right; the caller refuses a tenant whose status is
 * not `active` (checked after the password, so a guesser does not learn it).
 */
export type Verdict =
  | { kind: 'locked'; by: LockedBy; retryAfter: number }
  | { kind: 'busy' }
  | { kind: 'bad'; reason: string }
  | { kind: 'ok'; slug: string; local: string; status: TenantStatus }

type Step = Verdict | { kind: 'wait'; ms: number }

/** A login as it is counted and compared: control characters dropped, lower case. */
export function normalLogin(raw: string): string {
  // eslint-disable-next-line no-control-regex
  return String(raw).replace(/[\x00-\x1f\x7f]/g, '').toLowerCase()
}

/** Successful verifies, keyed by HMAC(user, password, stored hash) with a per-process secret: no plaintext kept. */
const verified = new Map<string, number>()
const cacheSecret = crypto.randomBytes(32)
/** Verifies in progress, by client and credential: a burst of pooled connections with the same login pays one hash. */
const inflight = new Map<string, Promise<Step>>()

/** How long a login waits, at most, for the outcome of its client's previous attempt (see Gate 'wait'). */
const WAIT_MAX_MS = 10000
const WAIT_STEP_MS = 100

let dummy: Promise<string> | null = null
/** A hash of a random password, made once, to verify unknown logins against. */
function dummyHash(): Promise<string> {
  if (!dummy) dummy = hashPassword(generatePassword())
  return dummy
}

function cacheKey(user: string, pass: string, hash: string): string {
  return crypto.createHmac('sha256', cacheSecret).update(user).update('\0').update(pass).update('\0').update(hash).digest('base64')
}

/**
 * The verdict on a login: the gate first (a read, nothing hashed), then the verify cache, then one counted attempt
 * and one scrypt, shared by identical attempts of one client in flight. Each distinct guess is counted before it is
 * hashed, so parallel attempts cannot overrun a budget. When the login is under attack and this client's previous
 * attempt is still being verified, wait for its outcome: pooled connections are let in once one of them has shown
 * the password, and a guesser gets one guess per address. `user` is taken as normalLogin() gives it.
 */
export async function judgeLogin(redis: RedisClient, policy: LoginPolicy, ip: string, user: string, pass: string): Promise<Verdict> {
  const deadline = Date.now() + WAIT_MAX_MS
  for (;;) {
    const v = await judgeOnce(redis, policy, ip, user, pass)
    if (v.kind !== 'wait') return v
    if (Date.now() >= deadline) return { kind: 'busy' }
    await new Promise((res) => setTimeout(res, Math.min(v.ms, WAIT_STEP_MS)))
  }
}

async function judgeOnce(redis: RedisClient, policy: LoginPolicy, ip: string, user: string, pass: string): Promise<Step> {
  const gate = await lockoutState(redis, ip, user, policy.limits)
  if (gate.kind !== 'go') return gate
  const login = parseLogin(user, policy.serviceDomain)
  const rec = login ? await authRecord(redis, login.slug, login.local) : { status: null, hash: null }
  const key = cacheKey(user, pass, rec.hash ?? '-')
  if (login && rec.status && rec.hash && (verified.get(key) ?? 0) > Date.now()) return { kind: 'ok', slug: login.slug, local: login.local, status: rec.status }
  const flightKey = `${clientKey(ip)} ${key}`
  let flight = inflight.get(flightKey)
  if (!flight) {
    flight = (async (): Promise<Step> => {
      const begun = await beginAttempt(redis, ip, user, policy.limits)
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
        if (policy.cacheSeconds > 0) {
          if (verified.size > 10000) verified.clear()
          verified.set(key, Date.now() + policy.cacheSeconds * 1000)
        }
        return { kind: 'ok', slug: login.slug, local: login.local, status: rec.status }
      } finally {
        await endAttempt(redis, ip, user, ok)
      }
    })().finally(() => inflight.delete(flightKey))
    inflight.set(flightKey, flight)
  }
  return flight
}
