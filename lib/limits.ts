// Limits that keep one client from holding a shared server up: the type of config/posta-limits.ini's values and the
// small pieces of logic that plugins/posta-limits applies (a per-client connection count, a refusal log that
// writes one line per client and minute, the bare-CR test of a DATA line). Knows nothing of Haraka.
// Clients are counted as lib/authguard counts them (clientKey): an IPv4 address, or an IPv6 /64.
import { defaults, type IniValues } from './config'
import { LIMITS_INI } from './inis'

/** The values of config/posta-limits.ini (schema LIMITS_INI in lib/inis.ts, read by lib/config.ts). */
export type LimitSettings = IniValues<typeof LIMITS_INI.sections>

export const DEFAULT_LIMITS: LimitSettings = defaults(LIMITS_INI)

/**
 * Open connections per client, in this process's memory: it cannot be unreachable, so it never fails open, and a
 * crashed process takes its counts with it. A connection is released by close(); one whose close was missed (Haraka
 * drops the socket's close listeners at STARTTLS) is found by `isOpen` when its client reaches the cap, and by sweep().
 */
export class ConnectionCount<T extends object> {
  private readonly open = new Map<string, Set<T>>()

  constructor(private readonly isOpen: (conn: T) => boolean) {}

  /** Counts `conn` for `client` unless the client already has `max` open; false = refuse it. */
  tryOpen(client: string, conn: T, max: number): boolean {
    if (this.of(client) >= max) return false
    let set = this.open.get(client)
    if (!set) this.open.set(client, (set = new Set()))
    set.add(conn)
    return true
  }

  close(client: string, conn: T): void {
    const set = this.open.get(client)
    if (!set) return
    set.delete(conn)
    if (!set.size) this.open.delete(client)
  }

  /** The client's open connections (those already closed are dropped first). */
  of(client: string): number {
    const set = this.open.get(client)
    if (!set) return 0
    for (const c of set) if (!this.isOpen(c)) set.delete(c)
    if (!set.size) this.open.delete(client)
    return set.size
  }

  /** Drops closed connections of every client; returns how many clients have connections open. */
  sweep(): number {
    for (const client of [...this.open.keys()]) this.of(client)
    return this.open.size
  }
}

/**
 * Refusals are logged once per client and interval, not once per connection: the first refusal writes a line, the
 * next ones within `intervalMs` are only counted, and the first one after it writes a line with that count.
 */
export class RefusalLog {
  private readonly seen = new Map<string, { loggedAt: number; unlogged: number }>()
  private prunedAt = 0

  constructor(private readonly intervalMs = 60000) {}

  /** Whether this refusal writes a line, and how many refusals of the client that line accounts for. */
  note(client: string, now = Date.now()): { log: boolean; refused: number } {
    this.prune(now)
    const s = this.seen.get(client)
    if (!s || now - s.loggedAt >= this.intervalMs) {
      const refused = (s?.unlogged ?? 0) + 1
      this.seen.set(client, { loggedAt: now, unlogged: 0 })
      return { log: true, refused }
    }
    s.unlogged++
    return { log: false, refused: 0 }
  }

  /** Forgets clients quiet for two intervals, so many refused clients cannot grow the map for ever. */
  private prune(now: number) {
    if (now - this.prunedAt < this.intervalMs) return
    this.prunedAt = now
    for (const [k, s] of this.seen) if (now - s.loggedAt >= 2 * this.intervalMs && s.unlogged === 0) this.seen.delete(k)
  }
}

/**
 * Where a DATA line holds a bare CR (a CR not followed by LF), or -1. A line as Haraka hands it over ends at its LF,
 * so the only CR allowed is the one just before that LF. RFC 5321 section 2.3.8: CR and LF appear only together.
 */
export function bareCrIndex(line: Uint8Array): number {
  const i = line.indexOf(0x0d)
  if (i === -1) return -1
  if (i === line.length - 2 && line[line.length - 1] === 0x0a) return -1
  return i
}
