// Comparing secrets a request presents (CSRF tokens) with the expected ones, in constant time.
import * as crypto from 'node:crypto'

/** Equal strings, compared in constant time (by their SHA-256, so lengths do not leak either); empty never matches. */
export function sameToken(a: string | undefined | null, b: string | undefined | null): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length === 0) return false
  const x = crypto.createHash('sha256').update(a).digest()
  const y = crypto.createHash('sha256').update(b).digest()
  return crypto.timingSafeEqual(x, y) && a === b
}
