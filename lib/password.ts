// Passwords: generated strong, stored only as a salted scrypt hash in a self-describing string
// (scrypt$N$r$p$salt$hash, base64), verified in constant time. scrypt runs on libuv's thread pool,
// never blocking the event loop of an SMTP worker.
import * as crypto from 'node:crypto'
import { promisify } from 'node:util'

const scrypt = promisify(crypto.scrypt) as (
  password: crypto.BinaryLike,
  salt: crypto.BinaryLike,
  keylen: number,
  options: crypto.ScryptOptions,
) => Promise<Buffer>

export const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 }
const MAXMEM = 128 * 1024 * 1024

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789'

/** 24 characters from a 57-symbol alphabet without look-alikes: about 140 bits. */
export function generatePassword(length = 24): string {
  const out: string[] = []
  while (out.length < length) {
    for (const b of crypto.randomBytes(length * 2)) {
      // rejection sampling keeps the distribution uniform
      if (b < 256 - (256 % ALPHABET.length) && out.length < length) out.push(ALPHABET[b % ALPHABET.length])
    }
  }
  return out.join('')
}

export async function hashPassword(password: string, params = SCRYPT): Promise<string> {
  const salt = crypto.randomBytes(16)
  const key = await scrypt(password, salt, params.keylen, { N: params.N, r: params.r, p: params.p, maxmem: MAXMEM })
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

/** True when `password` matches `stored`; false for a wrong password or a malformed stored string. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = String(stored).split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number)
  if (![N, r, p].every(Number.isSafeInteger) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0) return false
  if (r < 1 || r > 32 || p < 1 || p > 16) return false
  const salt = Buffer.from(parts[4], 'base64')
  const expected = Buffer.from(parts[5], 'base64')
  if (expected.length < 16) return false
  try {
    const key = await scrypt(password, salt, expected.length, { N, r, p, maxmem: MAXMEM })
    return crypto.timingSafeEqual(key, expected)
  } catch {
    return false // parameters scrypt refuses (e.g. more memory than MAXMEM): not a hash we made
  }
}

/** The rule for a password a customer chooses: length, variety, not their own names. */
export const CHOSEN_PASSWORD = { min: 12, max: 256, classes: 3 }

export type PasswordProblem = 'too short' | 'too long' | 'too simple' | 'has login'

/**
 * What is wrong with a chosen password, or null: at least 12 characters (at most 256), at least 3 of lower case,
 * upper case, digits and other characters, and none of `names` (login, slug; 3+ characters) inside it.
 */
export function passwordProblem(password: string, names: string[] = []): PasswordProblem | null {
  if (typeof password !== 'string' || [...password].length < CHOSEN_PASSWORD.min) return 'too short'
  if ([...password].length > CHOSEN_PASSWORD.max) return 'too long'
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((re) => re.test(password)).length
  if (classes < CHOSEN_PASSWORD.classes) return 'too simple'
  const lower = password.toLowerCase()
  if (names.some((n) => n.length >= 3 && lower.includes(n.toLowerCase()))) return 'has login'
  return null
}
