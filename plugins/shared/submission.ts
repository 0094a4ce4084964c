// Where the Haraka objects keep a message's notes (lib/submission.ts is the contract over them).
import type { Notes } from '../../lib/submission'
import type { Connection, HMailItem } from './haraka'

/** The notes of the connection's open transaction; null outside a transaction. */
export function txNotes(connection: Connection): Notes | null {
  return connection.transaction?.notes ?? null
}

/**
 * The notes a queued message carries: hmail.todo.notes, read back from the queue file (after a restart too;
 * hmail.notes is empty then). A message without a todo yet gets an empty, throwaway object.
 */
export function deliveryNotes(hmail: HMailItem): Notes {
  return hmail.todo?.notes ?? {}
}
