// The spamtrap list: secret addresses and domains with a class. Matching is on the address as it will be delivered
// (lib/addresses.ts: the delivery's own IDNA mapping, a +tag also as its base mailbox, a domain entry covering its
// subdomains); tenants never see the list. Hits are counted per tenant (investigations show them); typo-trap hits
// are strikes in a window, one per transaction and trap domain.
import type { RedisClient as Redis } from './redis'
import { domainAndParents, normaliseAddress, normaliseDomain, type Normalised } from './addresses'
import { InputError, NotFoundError } from './errors'
import { keys } from './keys'

export type TrapClass = 'pristine' | 'recycled' | 'typo'
export const TRAP_CLASSES: TrapClass[] = ['pristine', 'recycled', 'typo']

export interface Trap {
  /** `user@domain` or `@domain` (every address of the domain). */
  entry: string
  class: TrapClass
  note: string
  added_at: string
}

const NOTE_MAX = 500

/** The canonical form of an entry: a normalised address, or @domain. */
export function normaliseEntry(entry: string): string {
  const e = String(entry ?? '').trim()
  if (!e) throw new InputError('missing trap: give an address (bait@example.net) or a whole domain (@example.net)')
  if (e.startsWith('@')) return `@${normaliseDomain(e.slice(1), 'trap domain')}`
  return normaliseAddress(e).address
}

export function checkClass(c: string): TrapClass {
  const v = String(c ?? '').toLowerCase()
  if (!TRAP_CLASSES.includes(v as TrapClass)) throw new InputError(`bad trap class "${c}": use ${TRAP_CLASSES.join(', ')}`)
  return v as TrapClass
}

function checkNote(note: string): string {
  const n = String(note ?? '').trim()
  if (n.length > NOTE_MAX) throw new InputError(`the note is longer than ${NOTE_MAX} characters: keep it short`)
  return n
}

export function makeTrap(entry: string, cls: string, note = '', at = new Date().toISOString()): Trap {
  return { entry: normaliseEntry(entry), class: checkClass(cls), note: checkNote(note), added_at: at }
}

/** Adds a trap, or changes the class and note of an existing one. */
export async function addTrap(redis: Redis, entry: string, cls: string, note = ''): Promise<Trap> {
  const t = makeTrap(entry, cls, note)
  await redis.hset(keys.traps(), t.entry, JSON.stringify(t))
  return t
}

export async function removeTrap(redis: Redis, entry: string): Promise<string> {
  const e = normaliseEntry(entry)
  if (!(await redis.hdel(keys.traps(), e))) throw new NotFoundError(`no trap "${e}": see "posta trap list"`)
  return e
}

/** The whole list, by domain: a domain's whole-domain entry first, then its addresses. */
export async function listTraps(redis: Redis): Promise<Trap[]> {
  const key = (t: Trap) => {
    const at = t.entry.lastIndexOf('@')
    return `${t.entry.slice(at + 1)} ${t.entry.slice(0, at)}`
  }
  return Object.values(await redis.hgetall(keys.traps()))
    .map((v) => JSON.parse(v) as Trap)
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
}

export interface SkippedLine {
  line: number
  text: string
  reason: string
}

/**
 * Parses an import file: one entry a line, `<address|@domain> <class> [note...]`; `#` starts a comment; blank lines
 * are ignored. Pure: returns the traps and each skipped line with the reason.
 */
export function parseTrapFile(text: string, at = new Date().toISOString()): { traps: Trap[]; skipped: SkippedLine[] } {
  const skipped: SkippedLine[] = []
  const seen = new Map<string, number>()
  const traps: Trap[] = []
  text.split(/\r\n|\r|\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim()
    if (!line) return
    const [entry, cls, ...note] = line.split(/\s+/)
    try {
      if (cls === undefined) throw new InputError('missing class: write "<address|@domain> <pristine|recycled|typo> [note]"')
      const t = makeTrap(entry, cls, note.join(' '), at)
      const first = seen.get(t.entry)
      if (first !== undefined) throw new InputError(`duplicate of line ${first} (${t.entry})`)
      seen.set(t.entry, i + 1)
      traps.push(t)
    } catch (err) {
      if (!(err instanceof InputError)) throw err
      skipped.push({ line: i + 1, text: raw.trim(), reason: err.message })
    }
  })
  return { traps, skipped }
}

/** Imports a trap file (see parseTrapFile); entries already on the list take the file's class and note. */
export async function importTraps(redis: Redis, text: string): Promise<{ imported: number; skipped: SkippedLine[] }> {
  const { traps, skipped } = parseTrapFile(text)
  if (traps.length) await redis.hset(keys.traps(), Object.fromEntries(traps.map((t) => [t.entry, JSON.stringify(t)])))
  return { imported: traps.length, skipped }
}

/**
 * The entries that could catch a recipient, most specific first: its address, its base mailbox (without the +tag),
 * then `@domain` for its domain and each parent down to two labels (a domain entry covers its subdomains).
 */
export function trapCandidates(n: Normalised): string[] {
  const out = [n.address]
  if (n.base !== n.address) out.push(n.base)
  for (const d of domainAndParents(n.domain)) out.push(`@${d}`)
  return out
}

/**
 * The trap a recipient hits, if any (one round trip). A recipient that does not normalise throws the InputError of
 * normaliseAddress: a match that cannot be computed must refuse the recipient, never let it through.
 */
export async function matchTrap(redis: Redis, rcpt: string | Normalised): Promise<Trap | null> {
  const n = typeof rcpt === 'string' ? normaliseAddress(rcpt) : rcpt
  const hit = (await redis.hmget(keys.traps(), ...trapCandidates(n))).find((v) => v !== null)
  return hit ? (JSON.parse(hit) as Trap) : null
}

/** The domain a trap entry stands for: `@gmial.example` and `x@gmial.example` both give gmial.example. */
export function trapDomain(trap: Trap): string {
  return trap.entry.slice(trap.entry.lastIndexOf('@') + 1)
}

/**
 * Counts a tenant's trap hit. A typo-trap hit is also a strike, kept `windowMs` (0: for ever); returns the strikes
 * in the window, which the caller compares with its threshold. A strike is one per transaction (`tx`) and trap
 * domain: one message to three addresses of a typo domain is one honest mistake, not three. Every hit still counts
 * in `hits`. One round trip, atomic.
 */
export async function recordTrapHit(
  redis: Redis, tenant: string, trap: Trap, hit: { tx: string; windowMs: number; now?: number },
): Promise<{ hits: number; strikes: number }> {
  const now = hit.now ?? Date.now()
  const m = redis.multi().hincrby(keys.trapHits(tenant), 'hits', 1).hincrby(keys.trapHits(tenant), trap.class, 1)
  if (trap.class === 'typo') {
    const k = keys.trapStrikes(tenant)
    m.zadd(k, 'NX', now, `${hit.tx}|${trapDomain(trap)}`)
    if (hit.windowMs > 0) m.zremrangebyscore(k, '-inf', now - hit.windowMs).pexpire(k, hit.windowMs)
    m.zcard(k)
  }
  const res = (await m.exec()) ?? []
  const err = res.find(([e]) => e)
  if (err) throw err[0]
  return { hits: Number(res[0][1]), strikes: trap.class === 'typo' ? Number(res[res.length - 1][1]) : 0 }
}

/** A tenant's spamtrap hits (all classes), for investigations. */
export async function trapHits(redis: Redis, tenant: string): Promise<number> {
  return Number((await redis.hget(keys.trapHits(tenant), 'hits')) ?? 0)
}

/** A tenant's spamtrap hits by class, and the typo-trap strikes still inside their window (`<tx>|<domain>`), for operators. */
export async function trapHitCounts(redis: Redis, tenant: string): Promise<{ hits: number; pristine: number; recycled: number; typo: number; strikes: string[] }> {
  const [h, strikes] = await Promise.all([redis.hgetall(keys.trapHits(tenant)), redis.zrevrange(keys.trapStrikes(tenant), 0, 49)])
  const n = (f: string) => Number(h[f] ?? 0)
  return { hits: n('hits'), pristine: n('pristine'), recycled: n('recycled'), typo: n('typo'), strikes }
}
