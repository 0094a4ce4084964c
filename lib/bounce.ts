// What a bounce (the DSN Posta sends to a sender whose mail failed) says, in the tenant's language. The DSN itself is
// Haraka's (config/outbound.bounce_message*, an RFC 3464 multipart/report); this module gives it the per-recipient
// lines a person can read: the remote server's reply, and for mail that waited too long, how long it was tried.
// Knows nothing of Haraka: it works on plain recipient records.
import type { Language } from './language'

/** What Haraka's outbound keeps on a recipient after an attempt (hmail.js), all optional. */
export interface RecipientOutcome {
  dsn_smtp_code?: string
  dsn_smtp_extc?: string
  dsn_smtp_response?: string
  /** Haraka's own line for a recipient refused or deferred at RCPT: `550 5.1.1 <reply>`. */
  reason?: string
}

const oneLine = (s: string) => s.replace(/[\r\n\t]+/g, ' ').replace(/\s{2,}/g, ' ').trim()

/**
 * The receiving server's reply about a recipient (`550 5.1.1 no such user`), or `fallback` (Haraka's reason, e.g.
 * `Tried all MXs`) when no server answered about it.
 */
export function remoteReply(r: RecipientOutcome, fallback: string): string {
  if (r.dsn_smtp_code) return oneLine(`${r.dsn_smtp_code} ${r.dsn_smtp_extc ?? ''} ${r.dsn_smtp_response ?? ''}`)
  if (r.reason) return oneLine(r.reason)
  return oneLine(fallback.replace(/^Error: /, ''))
}

/** Haraka bounces a message whose retries ran out with `Too many failures (<last error>)`. */
export function isExpiry(reason: string): boolean {
  return /^(Error: )?Too many failures\b/.test(reason)
}

const UNITS: Record<Language, { s: [string, string]; m: [string, string]; h: [string, string]; d: [string, string] }> = {
  en: { s: ['second', 'seconds'], m: ['minute', 'minutes'], h: ['hour', 'hours'], d: ['day', 'days'] },
  it: { s: ['secondo', 'secondi'], m: ['minuto', 'minuti'], h: ['ora', 'ore'], d: ['giorno', 'giorni'] },
}

/** "5 days", "3 ore", "40 seconds": the largest whole unit, rounded. */
export function formatDuration(ms: number, lang: Language): string {
  const s = Math.max(0, Math.round(ms / 1000))
  const [n, unit] = s >= 86400 * 2 ? [Math.round(s / 86400), 'd'] : s >= 7200 ? [Math.round(s / 3600), 'h'] : s >= 120 ? [Math.round(s / 60), 'm'] : [s, 's']
  const names = UNITS[lang][unit as 's' | 'm' | 'h' | 'd']
  return `${n} ${n === 1 ? names[0] : names[1]}`
}

/** The line a bounce shows for a recipient: the server's reply, and when retries ran out, how long they lasted. */
export function recipientLine(r: RecipientOutcome, reason: string, lang: Language, expired?: { attempts: number; ms: number }): string {
  const reply = remoteReply(r, reason.replace(/^(Error: )?Too many failures \((.*)\)$/, '$2'))
  if (!expired) return reply
  const span = formatDuration(expired.ms, lang)
  return lang === 'it'
    ? `${reply} (errore temporaneo: ${expired.attempts} tentativi in ${span}, poi Posta ha rinunciato alla consegna)`
    : `${reply} (a temporary error: ${expired.attempts} attempts over ${span}, then delivery was given up)`
}

/**
 * The id the client saw in its `250 Message Queued (<tx>)`, from Haraka's id of one delivery of it: Haraka queues
 * one file per recipient domain and names each `<tx>.<n>` (outbound/index.js).
 */
export function txOfDelivery(delivery: string): string {
  return delivery.replace(/\.\d+$/, '')
}
