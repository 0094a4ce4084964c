// The languages Posta writes to customers in (bounces today). A tenant has one; the service default is
// POSTA_LANGUAGE. Adding a language: a code here, and config/outbound.bounce_message.<code> (+ _html.<code>).
import { InputError } from './errors'

export const LANGUAGES = ['en', 'it'] as const
export type Language = (typeof LANGUAGES)[number]
export const DEFAULT_LANGUAGE: Language = 'en'

export function isLanguage(v: unknown): v is Language {
  return typeof v === 'string' && (LANGUAGES as readonly string[]).includes(v)
}

/** A language code from user input (CLI, environment); `what` names the input in the error. */
export function checkLanguage(v: unknown, what = 'language'): Language {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : v
  if (!isLanguage(s)) throw new InputError(`bad ${what} "${String(v)}": use one of ${LANGUAGES.join(', ')}`)
  return s
}
