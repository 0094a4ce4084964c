// The spamtrap list: secret addresses and domains with a class. Matching is on the normalised address; tenants
// never see the list.
import type Redis from 'ioredis'
import { normaliseAddress } from './addresses'
import { InputError, NotFoundError } from './errors'
import { keys } from './keys'
import { checkDomain } from './validate'

export type TrapClass = 'pristine' | 'recycled' | 'typo'
export const TRAP_CLASSES: TrapClass[] = ['pristine', 'recycled', 'typo']

export interface Trap {
  /** `user@domain` or `@domain` (every address of the domain). */
  entry: string
  class: TrapClass
  note: string
  added_at: string
}

/** The canonical form of an entry: a normalised address, or @domain. */
export function normaliseEntry(entry: string): string {
  const e = String(entry).trim()
  if (e.startsWith('@')) return `@${checkDomain(e.slice(1), 'trap domain')}`
  return normaliseAddress(e).address
}

export function checkClass(c: string): TrapClass {
  if (!TRAP_CLASSES.includes(c as TrapClass)) throw new InputError(`bad trap class "${c}": use ${TRAP_CLASSES.join(', ')}`)
  return c as TrapClass
}

export async function addTrap(redis: Redis, entry: string, cls: string, note = ''): Promise<Trap> {
  const t: Trap = { entry: normaliseEntry(entry), class: checkClass(cls), note: String(note).slice(0, 500), added_at: new Date().toISOString() }
  await redis.hset(keys.traps(), t.entry, JSON.stringify(t))
  return t
}

export async function removeTrap(redis: Redis, entry: string): Promise<void> {
  const e = normaliseEntry(entry)
  if (!(await redis.hdel(keys.traps(), e))) throw new NotFoundError(`no trap "${e}": see "posta trap list"`)
}

export async function listTraps(redis: Redis): Promise<Trap[]> {
  return Object.values(await redis.hgetall(keys.traps()))
    .map((v) => JSON.parse(v) as Trap)
    .sort((a, b) => a.entry.replace(/^@/, '').localeCompare(b.entry.replace(/^@/, '')))
}

/** Imports one entry a line: `<address|@domain> <class> [note...]`; `#` starts a comment. */
export async function importTraps(redis: Redis, text: string): Promise<{ imported: number; skipped: { line: number; text: string; reason: string }[] }> {
  const skipped: { line: number; text: string; reason: string }[] = []
  const good: Trap[] = []
  const now = new Date().toISOString()
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim()
    if (!line) return
    const [entry, cls, ...note] = line.split(/\s+/)
    try {
      if (!cls) throw new InputError('missing class (pristine, recycled or typo)')
      good.push({ entry: normaliseEntry(entry), class: checkClass(cls), note: note.join(' ').slice(0, 500), added_at: now })
    } catch (err) {
      skipped.push({ line: i + 1, text: raw.trim(), reason: (err as Error).message })
    }
  })
  if (good.length) await redis.hset(keys.traps(), Object.fromEntries(good.map((t) => [t.entry, JSON.stringify(t)])))
  return { imported: good.length, skipped }
}

/** The trap a recipient hits, if any: its exact address first, then its domain. One round trip. */
export async function matchTrap(redis: Redis, rcpt: string): Promise<Trap | null> {
  let n
  try {
    n = normaliseAddress(rcpt)
  } catch {
    return null
  }
  const [exact, domain] = await redis.hmget(keys.traps(), n.address, `@${n.domain}`)
  const hit = exact ?? domain
  return hit ? (JSON.parse(hit) as Trap) : null
}

/** Counts a tenant's trap hit; returns the tenant's typo strikes when the trap is a typo trap. */
export async function recordTrapHit(redis: Redis, tenant: string, trap: Trap): Promise<{ hits: number; strikes: number }> {
  const [[, hits], [, strikes]] = (await redis
    .multi()
    .hincrby(keys.trapHits(tenant), 'hits', 1)
    .hincrby(keys.trapHits(tenant), 'strikes', trap.class === 'typo' ? 1 : 0)
    .exec()) as [[unknown, number], [unknown, number]]
  return { hits, strikes }
}

/** A tenant's spamtrap hits (all classes), for investigations. */
export async function trapHits(redis: Redis, tenant: string): Promise<number> {
  return Number((await redis.hget(keys.trapHits(tenant), 'hits')) ?? 0)
}
