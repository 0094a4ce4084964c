// The panel's languages (lib/language.ts: en, it): every text by key, and numbers, sizes and dates in the language's
// conventions through Intl (`1,5 GB` in Italian, `1.5 GB` in English; `1 gennaio 2027`).
//
// Exports:
//   t(lang, key, params?)       the text of a key, with {name} placeholders filled; an unknown key is a type error
//   formatNumber(lang, n)       1.234.567 / 1,234,567
//   formatBytes(lang, bytes)    decimal units like lib/size.ts formatSize: 1,5 GB / 1.5 GB
//   formatPercent(lang, p)      a percentage given as 0..100+: 80,5 % / 80.5%
//   formatDate(lang, date, tz)  1 gennaio 2027 / 1 January 2027
//   formatMonth(lang, 'YYYY-MM') dicembre 2026 / December 2026
//   formatDateTime(lang, date, tz)
//   MESSAGES, MessageKey
// Admin pages add their texts in their own module with the same shape, or extend MESSAGES additively.
import type { Language } from '../lib/language'

const en = {
  'app.name': 'Posta',
  'nav.dashboard': 'Dashboard',
  'nav.messages': 'Messages',
  'nav.settings': 'Connection settings',
  'nav.password': 'Password',
  'nav.logout': 'Log out',
  'nav.language': 'Language',
  'nav.signed_in_as': 'Signed in as {login}',
  'lang.en': 'English',
  'lang.it': 'Italiano',

  'login.title': 'Log in',
  'login.intro': 'Log in with the SMTP login and password of your account.',
  'login.login': 'Login',
  'login.login_hint': 'like mail@acme.{domain}',
  'login.password': 'Password',
  'login.submit': 'Log in',
  'login.bad': 'Wrong login or password.',
  'login.missing': 'Enter your login and your password.',
  'login.locked': 'Too many failed logins: try again in {seconds} seconds.',
  'login.locked_minutes': 'Too many failed logins: try again in {minutes} minutes.',
  'login.busy': 'Another login for this account from your address is still being checked: try again in a few seconds.',
  'login.suspended': 'This account is suspended: contact support.',
  'login.closed': 'This account is closed: contact support.',
  'logout.done': 'You are logged out.',
  'session.expired': 'Your session has ended: log in again.',

  'dash.title': 'Dashboard',
  'dash.month': 'Traffic this month ({month})',
  'dash.used': 'Used',
  'dash.remaining': 'Remaining',
  'dash.allowance': 'Allowance',
  'dash.allowance_detail': '{package} package {bytes}, plus {topup} top-up',
  'dash.allowance_package': '{package} package',
  'dash.resets': 'Resets on {date}',
  'dash.messages': 'Messages',
  'dash.recipients': 'Recipients',
  'dash.delivered': 'Delivered',
  'dash.deferred': 'Deferred',
  'dash.bounced': 'Bounced',
  'dash.chart': 'Daily traffic',
  'dash.chart_empty': 'No traffic yet this month.',
  'dash.chart_day': '{date}: {bytes}, {messages} messages',
  'dash.notice_80': 'You have used {percent} of this month\'s traffic.',
  'dash.notice_90': 'You have used {percent} of this month\'s traffic: new messages will be refused at 100 %.',
  'dash.notice_100': 'This month\'s traffic is used up: new messages are refused until {date}. Ask support for a top-up.',
  'dash.status_suspended': 'This account is suspended: messages are refused. Contact support.',

  'msg.title': 'Messages',
  'msg.recent': 'Recent delivery attempts',
  'msg.filter': 'Status',
  'msg.filter_all': 'All',
  'msg.filter_apply': 'Show',
  'msg.time': 'Time',
  'msg.recipient': 'Recipient',
  'msg.status': 'Status',
  'msg.reply': 'Remote reply',
  'msg.none': 'No delivery attempts to show.',
  'msg.more': 'and {count} more',
  'msg.status_delivered': 'delivered',
  'msg.status_deferred': 'deferred',
  'msg.status_bounced': 'bounced',
  'msg.kind_dsn': 'bounce notice to your sender',
  'msg.kind_notice': 'notice from the service',
  'msg.suppressed': 'Suppressed recipients',
  'msg.suppressed_intro': 'These addresses hard-bounced: messages to them are refused until the date shown.',
  'msg.suppressed_none': 'No suppressed recipients.',
  'msg.address': 'Address',
  'msg.until': 'Suppressed until',
  'msg.bad_status': 'Unknown status "{status}": choose delivered, deferred or bounced.',

  'set.title': 'Connection settings',
  'set.intro': 'Type these values into your mail program (Outlook, Thunderbird) or bulk mailer.',
  'set.host': 'Server (outgoing, SMTP)',
  'set.port_submission': 'Port {port}, with STARTTLS',
  'set.port_smtps': 'Port {port}, with SSL/TLS',
  'set.ports': 'Port and security',
  'set.ports_choice': 'either of these; use {port} with STARTTLS if unsure',
  'set.auth': 'Authentication',
  'set.auth_value': 'Normal password (PLAIN or LOGIN), only over TLS',
  'set.user': 'User name',
  'set.password': 'Password',
  'set.password_value': 'The password you were given, or the one you chose',
  'set.api': 'API',
  'set.api_value': 'The same login and password work for the JSON API, with HTTP Basic authentication.',

  'pw.title': 'Change password',
  'pw.current': 'Current password',
  'pw.mode': 'New password',
  'pw.generate': 'Generate a strong password for me (shown once)',
  'pw.choose': 'Choose my own',
  'pw.new': 'New password',
  'pw.confirm': 'New password again',
  'pw.rules': 'At least 12 characters, and at least 3 of: lower case, upper case, digits, symbols; not containing your login.',
  'pw.submit': 'Change password',
  'pw.current_wrong': 'The current password is wrong.',
  'pw.current_missing': 'Enter your current password.',
  'pw.mode_bad': 'Choose a generated password or your own.',
  'pw.too_short': 'The new password is too short: at least 12 characters.',
  'pw.too_long': 'The new password is too long: at most 256 characters.',
  'pw.too_simple': 'The new password needs at least 3 of: lower case, upper case, digits, symbols.',
  'pw.has_login': 'The new password must not contain your login.',
  'pw.same': 'The new password is the same as the current one.',
  'pw.mismatch': 'The two new passwords differ.',
  'pw.done': 'Your password is changed. Set it in your mail programs now: your other panel sessions have ended.',
  'pw.generated': 'Your new password (shown only now, copy it):',

  'err.csrf': 'The form has expired or did not come from this site: reload the page and try again.',
  'err.not_found': 'There is nothing at this address.',
  'err.bad_request': 'The request was not understood: go back and check what you entered.',
  'err.forbidden': 'You may not see this.',
  'err.unavailable': 'The service is temporarily unavailable (its database cannot be reached). Try again in a minute.',
  'err.internal': 'Something went wrong on our side. Try again; if it keeps happening, contact support.',
  'err.title': 'Error',
  'err.back': 'Back to the dashboard',
  'nav.domains': 'Sender domains',
  'dom.title': 'Sender domains',
  'dom.intro': 'You may send as these domains only: the envelope sender and the From: address must be at one of them, or at a subdomain of one. To add a domain, ask support; publish its records below, then check them here.',
  'dom.verified': 'verified',
  'dom.pending': 'pending',
  'dom.service': 'Your own name at the service: always yours, nothing to publish.',
  'dom.added': 'Added on {date}',
  'dom.verified_on': 'verified on {date}',
  'dom.pending_help': 'Not verified yet: publish the TXT record {name} below; the domain is verified once it is seen.',
  'dom.col_name': 'Name',
  'dom.col_type': 'Type',
  'dom.col_value': 'Value',
  'dom.col_state': 'In DNS',
  'dom.state_right': 'right',
  'dom.state_missing': 'missing',
  'dom.state_wrong': 'wrong',
  'dom.state_unknown': 'could not be checked',
  'dom.fix_missing': 'Publish TXT {name} with the value "{value}".',
  'dom.fix_wrong': 'Replace the TXT record at {name} with "{value}".',
  'dom.fix_unknown': 'The lookup failed: try again in a few minutes.',
  'dom.found': 'Found: {found}',
  'dom.note_verification': 'proves the domain is yours; keep it',
  'dom.note_dkim': 'DKIM: the key your mail is signed with',
  'dom.note_spf': 'SPF: our servers may send for the domain; one v=spf1 record per name, so add the include: to an existing one',
  'dom.note_dmarc': 'DMARC: a suggestion; start with p=none',
  'dom.check': 'Check the DNS records',
  'dom.all_right': 'Every record is right.',
  'dom.some_wrong': 'Some records need a change: see below.',
  'dom.check_unknown': 'That is not one of your sender domains.',
  'dom.none': 'You have no domains of your own yet.',
} as const

export type MessageKey = keyof typeof en

const it: Record<MessageKey, string> = {
  'app.name': 'Posta',
  'nav.dashboard': 'Riepilogo',
  'nav.messages': 'Messaggi',
  'nav.settings': 'Impostazioni di connessione',
  'nav.password': 'Password',
  'nav.logout': 'Esci',
  'nav.language': 'Lingua',
  'nav.signed_in_as': 'Accesso come {login}',
  'lang.en': 'English',
  'lang.it': 'Italiano',

  'login.title': 'Accedi',
  'login.intro': 'Accedi con l\'utente e la password SMTP del tuo account.',
  'login.login': 'Utente',
  'login.login_hint': 'come mail@acme.{domain}',
  'login.password': 'Password',
  'login.submit': 'Accedi',
  'login.bad': 'Utente o password errati.',
  'login.missing': 'Inserisci utente e password.',
  'login.locked': 'Troppi accessi falliti: riprova tra {seconds} secondi.',
  'login.locked_minutes': 'Troppi accessi falliti: riprova tra {minutes} minuti.',
  'login.busy': 'Un altro accesso a questo account dal tuo indirizzo è ancora in verifica: riprova tra qualche secondo.',
  'login.suspended': 'Questo account è sospeso: contatta l\'assistenza.',
  'login.closed': 'Questo account è chiuso: contatta l\'assistenza.',
  'logout.done': 'Sei uscito.',
  'session.expired': 'La sessione è terminata: accedi di nuovo.',

  'dash.title': 'Riepilogo',
  'dash.month': 'Traffico di questo mese ({month})',
  'dash.used': 'Usato',
  'dash.remaining': 'Disponibile',
  'dash.allowance': 'Traffico incluso',
  'dash.allowance_detail': 'pacchetto {package} {bytes}, più {topup} di ricarica',
  'dash.allowance_package': 'pacchetto {package}',
  'dash.resets': 'Si azzera il {date}',
  'dash.messages': 'Messaggi',
  'dash.recipients': 'Destinatari',
  'dash.delivered': 'Consegnati',
  'dash.deferred': 'In ritardo',
  'dash.bounced': 'Respinti',
  'dash.chart': 'Traffico giornaliero',
  'dash.chart_empty': 'Ancora nessun traffico questo mese.',
  'dash.chart_day': '{date}: {bytes}, {messages} messaggi',
  'dash.notice_80': 'Hai usato il {percent} del traffico di questo mese.',
  'dash.notice_90': 'Hai usato il {percent} del traffico di questo mese: al 100 % i nuovi messaggi saranno rifiutati.',
  'dash.notice_100': 'Il traffico di questo mese è esaurito: i nuovi messaggi sono rifiutati fino al {date}. Chiedi una ricarica all\'assistenza.',
  'dash.status_suspended': 'Questo account è sospeso: i messaggi sono rifiutati. Contatta l\'assistenza.',

  'msg.title': 'Messaggi',
  'msg.recent': 'Tentativi di consegna recenti',
  'msg.filter': 'Stato',
  'msg.filter_all': 'Tutti',
  'msg.filter_apply': 'Mostra',
  'msg.time': 'Ora',
  'msg.recipient': 'Destinatario',
  'msg.status': 'Stato',
  'msg.reply': 'Risposta del server',
  'msg.none': 'Nessun tentativo di consegna da mostrare.',
  'msg.more': 'e altri {count}',
  'msg.status_delivered': 'consegnato',
  'msg.status_deferred': 'in ritardo',
  'msg.status_bounced': 'respinto',
  'msg.kind_dsn': 'avviso di mancata consegna al tuo mittente',
  'msg.kind_notice': 'avviso del servizio',
  'msg.suppressed': 'Destinatari sospesi',
  'msg.suppressed_intro': 'Questi indirizzi hanno respinto definitivamente: i messaggi per loro sono rifiutati fino alla data indicata.',
  'msg.suppressed_none': 'Nessun destinatario sospeso.',
  'msg.address': 'Indirizzo',
  'msg.until': 'Sospeso fino al',
  'msg.bad_status': 'Stato "{status}" sconosciuto: scegli consegnato, in ritardo o respinto.',

  'set.title': 'Impostazioni di connessione',
  'set.intro': 'Inserisci questi valori nel tuo programma di posta (Outlook, Thunderbird) o di invio massivo.',
  'set.host': 'Server (posta in uscita, SMTP)',
  'set.port_submission': 'Porta {port}, con STARTTLS',
  'set.port_smtps': 'Porta {port}, con SSL/TLS',
  'set.ports': 'Porta e sicurezza',
  'set.ports_choice': 'una delle due; nel dubbio usa la {port} con STARTTLS',
  'set.auth': 'Autenticazione',
  'set.auth_value': 'Password normale (PLAIN o LOGIN), solo su TLS',
  'set.user': 'Nome utente',
  'set.password': 'Password',
  'set.password_value': 'La password che ti è stata data, o quella che hai scelto',
  'set.api': 'API',
  'set.api_value': 'Lo stesso utente e la stessa password valgono per l\'API JSON, con autenticazione HTTP Basic.',

  'pw.title': 'Cambia password',
  'pw.current': 'Password attuale',
  'pw.mode': 'Nuova password',
  'pw.generate': 'Genera per me una password robusta (mostrata una sola volta)',
  'pw.choose': 'Scelgo io',
  'pw.new': 'Nuova password',
  'pw.confirm': 'Ripeti la nuova password',
  'pw.rules': 'Almeno 12 caratteri, e almeno 3 tra: minuscole, maiuscole, cifre, simboli; senza il tuo nome utente.',
  'pw.submit': 'Cambia password',
  'pw.current_wrong': 'La password attuale è errata.',
  'pw.current_missing': 'Inserisci la password attuale.',
  'pw.mode_bad': 'Scegli una password generata o una tua.',
  'pw.too_short': 'La nuova password è troppo corta: almeno 12 caratteri.',
  'pw.too_long': 'La nuova password è troppo lunga: al massimo 256 caratteri.',
  'pw.too_simple': 'La nuova password deve avere almeno 3 tra: minuscole, maiuscole, cifre, simboli.',
  'pw.has_login': 'La nuova password non deve contenere il tuo nome utente.',
  'pw.same': 'La nuova password è uguale a quella attuale.',
  'pw.mismatch': 'Le due nuove password sono diverse.',
  'pw.done': 'La password è cambiata. Impostala subito nei tuoi programmi di posta: le altre sessioni del pannello sono terminate.',
  'pw.generated': 'La tua nuova password (mostrata solo ora, copiala):',

  'err.csrf': 'Il modulo è scaduto o non proviene da questo sito: ricarica la pagina e riprova.',
  'err.not_found': 'A questo indirizzo non c\'è nulla.',
  'err.bad_request': 'La richiesta non è stata compresa: torna indietro e controlla i dati inseriti.',
  'err.forbidden': 'Non puoi vedere questa pagina.',
  'err.unavailable': 'Il servizio è momentaneamente non disponibile (il suo database non risponde). Riprova tra un minuto.',
  'err.internal': 'Qualcosa è andato storto da parte nostra. Riprova; se succede ancora, contatta l\'assistenza.',
  'err.title': 'Errore',
  'err.back': 'Torna al riepilogo',
  'nav.domains': 'Domini mittenti',
  'dom.title': 'Domini mittenti',
  'dom.intro': 'Puoi inviare solo come questi domini: il mittente della busta e l\'indirizzo From: devono essere in uno di essi, o in un suo sottodominio. Per aggiungere un dominio chiedi all\'assistenza; pubblica i suoi record qui sotto, poi controllali qui.',
  'dom.verified': 'verificato',
  'dom.pending': 'in attesa',
  'dom.service': 'Il tuo nome presso il servizio: sempre tuo, niente da pubblicare.',
  'dom.added': 'Aggiunto il {date}',
  'dom.verified_on': 'verificato il {date}',
  'dom.pending_help': 'Non ancora verificato: pubblica il record TXT {name} qui sotto; il dominio è verificato quando il record risulta visibile.',
  'dom.col_name': 'Nome',
  'dom.col_type': 'Tipo',
  'dom.col_value': 'Valore',
  'dom.col_state': 'Nel DNS',
  'dom.state_right': 'corretto',
  'dom.state_missing': 'mancante',
  'dom.state_wrong': 'errato',
  'dom.state_unknown': 'non verificabile',
  'dom.fix_missing': 'Pubblica il record TXT {name} con il valore "{value}".',
  'dom.fix_wrong': 'Sostituisci il record TXT in {name} con "{value}".',
  'dom.fix_unknown': 'La ricerca DNS non è riuscita: riprova tra qualche minuto.',
  'dom.found': 'Trovato: {found}',
  'dom.note_verification': 'dimostra che il dominio è tuo; lascialo pubblicato',
  'dom.note_dkim': 'DKIM: la chiave con cui è firmata la tua posta',
  'dom.note_spf': 'SPF: i nostri server possono inviare per il dominio; un solo record v=spf1 per nome, quindi aggiungi l\'include: a quello esistente',
  'dom.note_dmarc': 'DMARC: un suggerimento; inizia con p=none',
  'dom.check': 'Controlla i record DNS',
  'dom.all_right': 'Tutti i record sono corretti.',
  'dom.some_wrong': 'Alcuni record vanno corretti: vedi sotto.',
  'dom.check_unknown': 'Questo non è uno dei tuoi domini mittenti.',
  'dom.none': 'Non hai ancora domini tuoi.',
}

export const MESSAGES: Record<Language, Record<MessageKey, string>> = { en, it }

/** The text of a key in a language, with `{name}` placeholders filled from params. */
export function t(lang: Language, key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = MESSAGES[lang][key] ?? MESSAGES.en[key]
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m))
}

const LOCALE: Record<Language, string> = { en: 'en-GB', it: 'it-IT' }

// Intl formatters are costly to build (tens of microseconds each, dozens per dashboard): one per language and options.
const formatters = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>()
function numberFormat(lang: Language, o: Intl.NumberFormatOptions): Intl.NumberFormat {
  const k = `n|${lang}|${JSON.stringify(o)}`
  let f = formatters.get(k) as Intl.NumberFormat | undefined
  if (!f) formatters.set(k, (f = new Intl.NumberFormat(LOCALE[lang], o)))
  return f
}
function dateFormat(lang: Language, o: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const k = `d|${lang}|${JSON.stringify(o)}`
  let f = formatters.get(k) as Intl.DateTimeFormat | undefined
  if (!f) formatters.set(k, (f = new Intl.DateTimeFormat(LOCALE[lang], o)))
  return f
}

export function formatNumber(lang: Language, n: number, maxFractionDigits = 0): string {
  return numberFormat(lang, { maximumFractionDigits: maxFractionDigits }).format(n)
}

/** Bytes in decimal units (as packages are sold: 1 GB = 10^9 bytes), with the language's decimal mark. */
export function formatBytes(lang: Language, bytes: number): string {
  if (bytes < 1000) return `${formatNumber(lang, bytes)} B`
  const units = ['KB', 'MB', 'GB', 'TB', 'PB']
  const digits = (x: number) => (x >= 100 ? 0 : x >= 10 ? 1 : 2)
  const round = (x: number) => Number(x.toFixed(digits(x)))
  let v = bytes
  let i = -1
  // divide while the value, as it will be shown, reaches 1000 (999_999 bytes is "1 MB", not "1000 KB")
  while ((i < 0 ? v : round(v)) >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${formatNumber(lang, round(v), digits(v))} ${units[i]}`
}

/** A percentage (0..100, or more when over the allowance), to one decimal. */
export function formatPercent(lang: Language, percent: number): string {
  return numberFormat(lang, { style: 'percent', maximumFractionDigits: 1 }).format(percent / 100)
}

export function formatDate(lang: Language, at: Date, timeZone: string): string {
  return dateFormat(lang, { timeZone, day: 'numeric', month: 'long', year: 'numeric' }).format(at)
}

/** A month `YYYY-MM` (lib/period.ts monthOf) by its name: December 2026 / dicembre 2026. */
export function formatMonth(lang: Language, month: string): string {
  const m = /^(\d{4})-(\d{2})$/.exec(month)
  if (!m) return month
  // mid-month at noon UTC, formatted in UTC: the same month whatever the service's time zone
  return dateFormat(lang, { timeZone: 'UTC', month: 'long', year: 'numeric' }).format(new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 15, 12)))
}

export function formatDateTime(lang: Language, at: Date, timeZone: string): string {
  return dateFormat(lang, {
    timeZone, day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).format(at)
}
