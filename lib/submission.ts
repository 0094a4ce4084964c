// What Posta keeps on a message, from MAIL FROM to its last delivery attempt: one typed contract over the notes
// Haraka carries with a transaction. Haraka serialises transaction.notes into every queue file it writes (one per
// recipient domain) and gives them back at delivery as hmail.todo.notes, after a restart too (reference/haraka.md);
// connection.notes are not carried. So every field here is small and JSON-safe, and a reader checks what it reads:
// a queue file may come from an older version or be damaged.
// Plugins read and write these fields only through the functions below, never as `notes.<field>`. This module knows
// nothing of Haraka: it works on a plain notes object (plugins/shared/submission.ts finds it on a transaction or an
// outbound item).
import type { Reservation } from './quota'

/** Haraka's notes bag (transaction.notes, hmail.todo.notes): any JSON-safe value under a string key. */
export type Notes = Record<string, unknown>

/** Who sent the message; set once per transaction at MAIL FROM (posta-relay). */
export interface Sender {
  /** The tenant's slug. */
  tenant: string
  /** The login that authenticated (`local@tenant`). */
  auth_user: string
  /** The address the client connected from. */
  client_ip: string
}

/**
 * The names in notes. Stable on purpose: mail queued by a previous version is read with them, and other Haraka
 * plugins (and operators reading a queue file with `haraka --qlist`) see the same names.
 */
const F = {
  tenant: 'tenant',
  authUser: 'auth_user',
  clientIp: 'client_ip',
  size: 'size',
  reservation: 'posta_reservation',
  sourceIp: 'posta_source_ip',
  dropped: 'posta_dropped',
  banned: 'posta_banned',
  notice: 'posta_notice',
  noticeTenant: 'tenant_notice',
  /** haraka-plugin-dkim's own flag (it skips a message that has it, and sets it once it signed). */
  dkimSigned: 'dkim_signed',
} as const

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined)

// ---- the sender ----

export function setSender(notes: Notes, s: Sender): void {
  notes[F.tenant] = s.tenant
  notes[F.authUser] = s.auth_user
  notes[F.clientIp] = s.client_ip
}

/** The tenant whose message this is; undefined for mail the relay itself sends (DSNs, notices). */
export function tenantOf(notes: Notes | null | undefined): string | undefined {
  return notes ? str(notes[F.tenant]) : undefined
}

/** The sender, or null for mail the relay itself sends. */
export function senderOf(notes: Notes | null | undefined): Sender | null {
  const tenant = tenantOf(notes)
  if (!tenant || !notes) return null
  return { tenant, auth_user: str(notes[F.authUser]) ?? '-', client_ip: str(notes[F.clientIp]) ?? '-' }
}

/** tenant, auth_user and client_ip for a log line ('-' when unknown). */
export function senderFields(notes: Notes | null | undefined): Sender {
  return senderOf(notes) ?? { tenant: '-', auth_user: str(notes?.[F.authUser]) ?? '-', client_ip: str(notes?.[F.clientIp]) ?? '-' }
}

// ---- the login (connection.notes: set by posta-auth, read when each transaction starts) ----

/** Who authenticated on a connection. connection.notes are not carried with a message: setSender copies them. */
export interface Login {
  tenant: string
  auth_user: string
}

export function setLogin(connectionNotes: Notes, l: Login): void {
  connectionNotes[F.tenant] = l.tenant
  connectionNotes[F.authUser] = l.auth_user
}

/** The connection's login, or null before a successful AUTH. */
export function loginOf(connectionNotes: Notes | null | undefined): Login | null {
  const tenant = str(connectionNotes?.[F.tenant])
  const authUser = str(connectionNotes?.[F.authUser])
  return tenant && authUser ? { tenant, auth_user: authUser } : null
}

// ---- the message ----

/** The message's size as the client sent it in DATA (posta-quota counts it exactly; the ledger reads it). */
export function setSize(notes: Notes, bytes: number): void {
  notes[F.size] = Math.max(0, Math.floor(bytes))
}

export function sizeOf(notes: Notes | null | undefined): number {
  return count(notes?.[F.size]) ?? 0
}

// ---- the quota reservation (posta-quota) ----

/**
 * The traffic held for this message at end of DATA. It travels in the queue files, so that a delivery can count a
 * message whose count was lost at the queue hand-off (a crash, Redis down); see docs/quota.md.
 */
export function setReservation(notes: Notes, r: Reservation): void {
  notes[F.reservation] = { tenant: r.tenant, id: r.id, bytes: r.bytes, recipients: r.recipients, month: r.month, day: r.day }
}

/** The reservation carried by the message, when it has a well-formed one. */
export function reservationOf(notes: Notes | null | undefined): Reservation | undefined {
  const v = notes?.[F.reservation]
  if (!v || typeof v !== 'object') return undefined
  const o = v as Record<string, unknown>
  const tenant = str(o.tenant)
  const id = str(o.id)
  const bytes = count(o.bytes)
  const recipients = count(o.recipients)
  const month = str(o.month)
  const day = str(o.day)
  if (!tenant || !id || bytes === undefined || recipients === undefined || !month || !/^\d{4}-\d{2}$/.test(month) || !day || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined
  return { tenant, id, bytes, recipients, month, day }
}

// ---- delivery (posta-outbound) ----

/** The pool IP the delivery leaves from (set by the MX lookup of each attempt). */
export function setSourceIp(notes: Notes, ip: string): void {
  notes[F.sourceIp] = ip
}

export function sourceIpOf(notes: Notes | null | undefined): string | undefined {
  return str(notes?.[F.sourceIp])
}

/** The tenant is closed: the message is neither delivered nor bounced. */
export function markDropped(notes: Notes): void {
  notes[F.dropped] = true
}

export function isDropped(notes: Notes | null | undefined): boolean {
  return notes?.[F.dropped] === true
}

// ---- the session (posta-trap) ----

/** This transaction's sender was banned while it was open: the message is refused whole at DATA. */
export function markBanned(notes: Notes): void {
  notes[F.banned] = true
}

export function isBanned(notes: Notes | null | undefined): boolean {
  return notes?.[F.banned] === true
}

// ---- mail the relay itself sends ----

/** The notes of a notice Posta sends about a tenant (a quota warning): no sender, so it is never counted. */
export function noticeNotes(kind: string, tenant: string): Notes {
  return { [F.notice]: kind, [F.noticeTenant]: tenant }
}

export function noticeOf(notes: Notes | null | undefined): { kind: string; tenant: string | undefined } | undefined {
  const kind = str(notes?.[F.notice])
  return kind ? { kind, tenant: str(notes?.[F.noticeTenant]) } : undefined
}

/**
 * The notes of a bounce (DSN) Posta sends to the sender of a tenant's failed message: a notice of kind `dsn` about
 * that tenant (ledgered under it, never counted in its quota), naming the transaction that failed.
 */
export function bounceNotes(tenant: string, tx: string): Notes {
  return { ...noticeNotes('dsn', tenant), posta_bounce_of: tx }
}

/** The transaction a DSN reports on, when these are a DSN's notes. */
export function bounceOf(notes: Notes | null | undefined): string | undefined {
  return noticeOf(notes)?.kind === 'dsn' ? str(notes?.posta_bounce_of) : undefined
}

// ---- DKIM (plugins/posta-dkim, docs/dkim.md) ----

/** Keeps haraka-plugin-dkim from signing the message (not the tenant's domain, or its key could not be readied). */
export function keepUnsigned(notes: Notes): void {
  notes[F.dkimSigned] = true
}

/** True once haraka-plugin-dkim signed the message, or posta-dkim kept it unsigned. */
export function isDkimSettled(notes: Notes | null | undefined): boolean {
  return notes?.[F.dkimSigned] === true
}
