// Operator accounts: the people who run the service and sign in to the operator area (/admin). Made with
// `posta operator create <name>`; the password is generated, shown once and stored only as a scrypt hash
// (lib/password.ts). Removing an operator or renewing their password ends their panel sessions (lib/sessions.ts).
import * as crypto from 'node:crypto'
import type { RedisClient as Redis } from './redis'
import { beginAttempt, endAttempt, lockoutState, type AuthLimits } from './authguard'
import { InputError, NotFoundError } from './errors'
import { keys } from './keys'
import { runScript } from './lua'
import { generatePassword, hashPassword, verifyPassword } from './password'
import { endSessionsOf } from './sessions'

export interface Operator {
  name: string
  created_at: string
  password_changed_at: string
}

interface StoredOperator extends Operator {
  hash: string
}

/** The name and the password, which is shown this once. */
export interface OperatorCredentials {
  name: string
  password: string
}

/** Operator name: 1-32 of lower-case letters, digits, '.', '_' and '-', starting with a letter (like a Unix user). */
const OPERATOR_NAME = /^[a-z][a-z0-9._-]{0,31}$/

export function checkOperatorName(name: string): string {
  if (typeof name !== 'string' || !OPERATOR_NAME.test(name)) {
    throw new InputError(`bad operator name "${String(name).slice(0, 64)}": use 1-32 lower-case letters, digits, '.', '_' or '-', starting with a letter (e.g. alice)`)
  }
  return name
}

const unknown = (name: string) => new NotFoundError(`unknown operator "${name}": see "posta operator list"`)

/** Creates an operator with a generated password (returned once). */
export async function createOperator(redis: Redis, name: string): Promise<OperatorCredentials> {
  const n = checkOperatorName(name)
  const password = generatePassword()
  const now = new Date().toISOString()
  const stored: StoredOperator = { name: n, hash: await hashPassword(password), created_at: now, password_changed_at: now }
  if (!(await redis.hsetnx(keys.operators(), n, JSON.stringify(stored)))) {
    throw new InputError(`operator "${n}" already exists: "posta operator password ${n}" gives them a new password`)
  }
  return { name: n, password }
}

const publicView = ({ name, created_at, password_changed_at }: StoredOperator): Operator => ({ name, created_at, password_changed_at })

/** Every operator, by name; never their hashes. */
export async function listOperators(redis: Redis): Promise<Operator[]> {
  const all = await redis.hgetall(keys.operators())
  return Object.values(all)
    .map((v) => publicView(JSON.parse(v) as StoredOperator))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

export async function getOperator(redis: Redis, name: string): Promise<Operator | null> {
  const v = await redis.hget(keys.operators(), checkOperatorName(name))
  return v ? publicView(JSON.parse(v) as StoredOperator) : null
}

/** Removes an operator; their sessions end. */
export async function removeOperator(redis: Redis, name: string): Promise<void> {
  const n = checkOperatorName(name)
  if (!(await redis.hdel(keys.operators(), n))) throw unknown(n)
  await endSessionsOf(redis, { kind: 'operator', operator: n })
}

/** Gives an operator a new generated password (returned once); their sessions end. */
export async function renewOperatorPassword(redis: Redis, name: string): Promise<OperatorCredentials> {
  const n = checkOperatorName(name)
  const password = generatePassword()
  const set = await runScript<number>(redis, 'operator_password', 1, [keys.operators()], [n, await hashPassword(password), new Date().toISOString()])
  if (set !== 1) throw unknown(n)
  await endSessionsOf(redis, { kind: 'operator', operator: n })
  return { name: n, password }
}

/** A hash of a password nobody knows: an unknown name costs the same scrypt as a known one (no name probing by timing). */
let decoy: Promise<string> | undefined

/** True when `name` is an operator and `password` is theirs. Unknown or malformed names are false, never an error. */
export async function verifyOperator(redis: Redis, name: string, password: string): Promise<boolean> {
  return (await verifyOperatorHash(redis, name, password)) !== false
}

/** verifyOperator, giving the stored hash the password matched (false when it did not). */
async function verifyOperatorHash(redis: Redis, name: string, password: string): Promise<string | false> {
  const valid = typeof name === 'string' && OPERATOR_NAME.test(name) && typeof password === 'string' && password.length <= 1024
  const v = valid ? await redis.hget(keys.operators(), name) : null
  if (!v) {
    decoy ??= hashPassword(generatePassword())
    await verifyPassword(typeof password === 'string' ? password.slice(0, 1024) : '', await decoy)
    return false
  }
  const hash = (JSON.parse(v) as StoredOperator).hash
  return (await verifyPassword(password, hash)) ? hash : false
}

/** The login an operator's attempts are counted under by lib/authguard.ts: apart from every tenant login. */
export const operatorLogin = (name: string) => `operator:${String(name).toLowerCase()}`

export type OperatorVerdict = { kind: 'ok'; name: string } | { kind: 'bad' } | { kind: 'locked'; retryAfter: number } | { kind: 'busy' }

/** Successful operator verifies, keyed by HMAC(name, password, stored hash) with a per-process secret (as lib/login.ts). */
const verified = new Map<string, number>()
const cacheSecret = crypto.randomBytes(32)
function cacheKey(name: string, password: string, hash: string): string {
  return crypto.createHmac('sha256', cacheSecret).update(name).update('\0').update(password).update('\0').update(hash).digest('base64')
}

/**
 * An operator login (the /admin form, Basic on /api/v1/admin), throttled by the rules and the Redis counters of SMTP
 * AUTH (lib/authguard.ts, per client, per (login, client) and per login, as `operator:<name>`): the gate is read
 * before anything is hashed, the attempt counted before the password is verified. With `cacheSeconds` > 0 a
 * successful verify is remembered in this process for that long, as lib/login.ts does for tenants (posta-auth.ini
 * cache_seconds), so an operator's API client pays one scrypt, not one per request: the entry is keyed by the stored
 * hash too, so a renewed password or a removed operator is verified (and refused) afresh.
 */
export async function judgeOperator(redis: Redis, limits: AuthLimits, ip: string, name: string, password: string, cacheSeconds = 0): Promise<OperatorVerdict> {
  const counted = operatorLogin(name)
  const gate = await lockoutState(redis, ip, counted, limits)
  if (gate.kind === 'go' && cacheSeconds > 0 && OPERATOR_NAME.test(name) && typeof password === 'string' && password.length <= 1024) {
    const stored = await redis.hget(keys.operators(), name)
    const hash = stored ? (JSON.parse(stored) as StoredOperator).hash : null
    if (hash && (verified.get(cacheKey(name, password, hash)) ?? 0) > Date.now()) return { kind: 'ok', name }
  }
  const begun = gate.kind === 'go' ? await beginAttempt(redis, ip, counted, limits) : gate
  if (begun.kind === 'locked') return { kind: 'locked', retryAfter: begun.retryAfter }
  if (begun.kind === 'wait') return { kind: 'busy' }
  let ok: string | false = false
  try {
    ok = await verifyOperatorHash(redis, name, password)
  } finally {
    await endAttempt(redis, ip, counted, ok !== false)
  }
  if (ok === false) return { kind: 'bad' }
  if (cacheSeconds > 0) {
    if (verified.size > 1000) verified.clear()
    verified.set(cacheKey(name, password, ok), Date.now() + cacheSeconds * 1000)
  }
  return { kind: 'ok', name }
}
