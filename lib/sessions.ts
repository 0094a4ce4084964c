// Panel sessions in Redis, shared by every node: a random cookie value, stored only as its SHA-256 (reading Redis
// does not give anyone a session), expiring on its own, with a per-session CSRF token. Two kinds of subject: a
// tenant login (`local@slug.<service domain>`) and an operator (by name). Each subject's sessions are indexed so that
// a password change, a ban or an operator's removal ends all of them at once (endSessionsOf).
//
// Exports: Subject, SubjectRef, Session, SESSION_SECONDS, subjectOf, createSession, getSession, endSession,
// endSessionsOf.
import * as crypto from 'node:crypto'
import type { RedisClient as Redis } from './redis'
import { keys } from './keys'

export type Subject = { kind: 'tenant'; tenant: string; login: string } | { kind: 'operator'; operator: string }
/** Whose sessions to end: a tenant (every login of it) or an operator. */
export type SubjectRef = { kind: 'tenant'; tenant: string } | { kind: 'operator'; operator: string }

export interface Session {
  /** The cookie value (only in memory: Redis holds its hash). */
  id: string
  subject: Subject
  /** The token every form of this session carries (web/csrf.ts). */
  csrf: string
  created_at: string
  expires_at: string
}

/** How long a session lasts from login, by default: a working day. */
export const SESSION_SECONDS = 8 * 3600
/** Past this many sessions of one subject, the index is pruned of expired ones at the next login. */
const PRUNE_AT = 50

/** The index name of a subject: `tenant:<slug>` or `operator:<name>`. */
export function subjectOf(s: SubjectRef): string {
  return s.kind === 'tenant' ? `tenant:${s.tenant}` : `operator:${s.operator}`
}

function hashOf(id: string): string {
  return crypto.createHash('sha256').update(id).digest('hex')
}

/** A cookie value of ours: 43 base64url characters (32 random bytes). Anything else is not looked up. */
const ID_RE = /^[A-Za-z0-9_-]{43}$/

export async function createSession(redis: Redis, subject: Subject, ttlSeconds = SESSION_SECONDS, now = Date.now()): Promise<Session> {
  const id = crypto.randomBytes(32).toString('base64url')
  const session: Session = {
    id,
    subject,
    csrf: crypto.randomBytes(32).toString('base64url'),
    created_at: new Date(now).toISOString(),
    expires_at: new Date(now + ttlSeconds * 1000).toISOString(),
  }
  const { id: _, ...stored } = session
  const index = keys.sessionsOf(subjectOf(subject))
  const res = await redis
    .multi()
    .set(keys.session(hashOf(id)), JSON.stringify(stored), 'EX', ttlSeconds)
    .sadd(index, hashOf(id))
    .expire(index, ttlSeconds, 'GT')
    .expire(index, ttlSeconds, 'NX')
    .scard(index)
    .exec()
  const failed = res?.find(([err]) => err)
  if (!res || failed) throw failed?.[0] ?? new Error('session not stored: transaction aborted')
  if (Number(res[4][1]) > PRUNE_AT) await prune(redis, index)
  return session
}

async function prune(redis: Redis, index: string): Promise<void> {
  const members = await redis.smembers(index)
  const pipe = redis.pipeline()
  for (const h of members) pipe.exists(keys.session(h))
  const alive = (await pipe.exec()) ?? []
  const dead = members.filter((_, i) => alive[i]?.[1] === 0)
  if (dead.length) await redis.srem(index, ...dead)
}

/** The session of a cookie value, or null (unknown, expired, ended, or not a value we make). */
export async function getSession(redis: Redis, id: string | undefined | null): Promise<Session | null> {
  if (typeof id !== 'string' || !ID_RE.test(id)) return null
  const raw = await redis.get(keys.session(hashOf(id)))
  if (!raw) return null
  try {
    return { id, ...(JSON.parse(raw) as Omit<Session, 'id'>) }
  } catch {
    return null
  }
}

/** Ends one session (logout). Harmless when it is already gone. */
export async function endSession(redis: Redis, id: string | undefined | null): Promise<void> {
  const s = await getSession(redis, id)
  if (!s) return
  await redis.multi().del(keys.session(hashOf(s.id))).srem(keys.sessionsOf(subjectOf(s.subject)), hashOf(s.id)).exec()
}

/** Ends every session of a subject; returns how many were alive. */
export async function endSessionsOf(redis: Redis, subject: SubjectRef): Promise<number> {
  const index = keys.sessionsOf(subjectOf(subject))
  const members = await redis.smembers(index)
  if (members.length === 0) return 0
  // one key at a time, not one multi-key DEL: the session keys need not share a cluster slot
  const pipe = redis.pipeline()
  for (const h of members) pipe.del(keys.session(h))
  pipe.del(index)
  const res = (await pipe.exec()) ?? []
  const failed = res.find(([err]) => err)
  if (failed) throw failed[0]
  return res.slice(0, members.length).reduce((n, [, v]) => n + Number(v), 0)
}
