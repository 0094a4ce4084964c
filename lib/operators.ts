// Operator accounts: the people who run the service and sign in to the operator area (/admin). Made with
// `posta operator create <name>`; the password is generated, shown once and stored only as a scrypt hash
// (lib/password.ts). Removing an operator or renewing their password ends their panel sessions (lib/sessions.ts).
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
  const valid = typeof name === 'string' && OPERATOR_NAME.test(name) && typeof password === 'string' && password.length <= 1024
  const v = valid ? await redis.hget(keys.operators(), name) : null
  if (!v) {
    decoy ??= hashPassword(generatePassword())
    await verifyPassword(typeof password === 'string' ? password.slice(0, 1024) : '', await decoy)
    return false
  }
  return verifyPassword(password, (JSON.parse(v) as StoredOperator).hash)
}

/** The login an operator's attempts are counted under by lib/authguard.ts: apart from every tenant login. */
export const operatorLogin = (name: string) => `operator:${String(name).toLowerCase()}`

export type OperatorVerdict = { kind: 'ok'; name: string } | { kind: 'bad' } | { kind: 'locked'; retryAfter: number } | { kind: 'busy' }

/**
 * An operator login (the /admin form), throttled by the rules and the Redis counters of SMTP AUTH (lib/authguard.ts,
 * per client, per (login, client) and per login, as `operator:<name>`): the gate is read before anything is hashed,
 * the attempt counted before the password is verified.
 */
export async function judgeOperator(redis: Redis, limits: AuthLimits, ip: string, name: string, password: string): Promise<OperatorVerdict> {
  const counted = operatorLogin(name)
  const gate = await lockoutState(redis, ip, counted, limits)
  const begun = gate.kind === 'go' ? await beginAttempt(redis, ip, counted, limits) : gate
  if (begun.kind === 'locked') return { kind: 'locked', retryAfter: begun.retryAfter }
  if (begun.kind === 'wait') return { kind: 'busy' }
  let ok = false
  try {
    ok = await verifyOperator(redis, name, password)
  } finally {
    await endAttempt(redis, ip, counted, ok)
  }
  return ok ? { kind: 'ok', name } : { kind: 'bad' }
}
