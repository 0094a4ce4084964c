// The page frame every panel page renders in: head (the panel's own stylesheet, no inline script or style), a header
// with the navigation, the language switch and the logout button, and the page's content.
//
// Exports:
//   Layout({ c, title, active?, nav?, children })  c: the request context (language, session, CSRF token, path);
//                                                  nav: links to show instead of the tenant's (the operator area
//                                                  passes its own); active: the href of the current page
//   CsrfField({ c })                                the hidden `_csrf` input every form must carry (web/csrf.ts)
//   Notice({ kind, children })                      a message box: 'info' | 'warn' | 'error' | 'ok'
//   NavLink
import type { Context } from 'hono'
import type { Child } from 'hono/jsx'
import { LANGUAGES } from '../lib/language'
import type { PanelEnv } from './context'
import { CSRF_FIELD } from './csrf'
import { t, type MessageKey } from './i18n'

export interface NavLink {
  href: string
  /** A text key, or a text already in the page's language. */
  label: MessageKey | { text: string }
}

const TENANT_NAV: NavLink[] = [
  { href: '/', label: 'nav.dashboard' },
  { href: '/messages', label: 'nav.messages' },
  { href: '/domains', label: 'nav.domains' },
  { href: '/settings', label: 'nav.settings' },
  { href: '/password', label: 'nav.password' },
]

export function CsrfField({ c }: { c: Context<PanelEnv> }) {
  return <input type="hidden" name={CSRF_FIELD} value={c.get('csrf')} />
}

export function Notice({ kind, children }: { kind: 'info' | 'warn' | 'error' | 'ok'; children?: Child }) {
  return <p class={`notice notice-${kind}`} role={kind === 'error' || kind === 'warn' ? 'alert' : 'status'}>{children}</p>
}

/** The current URL with `lang` set, the rest of the query kept. */
function withLang(c: Context, lang: string): string {
  const url = new URL(c.req.url)
  url.searchParams.set('lang', lang)
  return `${url.pathname}?${url.searchParams.toString()}`
}

export function Layout({ c, title, active, nav, children }: { c: Context<PanelEnv>; title: string; active?: string; nav?: NavLink[]; children?: Child }) {
  const lang = c.get('lang')
  const session = c.get('session')
  const links = nav ?? (session?.subject.kind === 'tenant' ? TENANT_NAV : [])
  const who = session ? (session.subject.kind === 'tenant' ? session.subject.login : session.subject.operator) : null
  return (
    <html lang={lang}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · ${t(lang, 'app.name')}`}</title>
        <link rel="stylesheet" href="/static/panel.css" />
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/">{t(lang, 'app.name')}</a>
          {links.length > 0 && (
            <nav aria-label="main">
              {links.map((l) => (
                <a href={l.href} class={l.href === active ? 'active' : undefined} aria-current={l.href === active ? 'page' : undefined}>
                  {typeof l.label === 'string' ? t(lang, l.label) : l.label.text}
                </a>
              ))}
            </nav>
          )}
          <div class="tools">
            <span class="langs" aria-label={t(lang, 'nav.language')}>
              {LANGUAGES.map((l) => (l === lang ? <strong lang={l}>{t(l, `lang.${l}`)}</strong> : <a href={withLang(c, l)} lang={l} hreflang={l}>{t(l, `lang.${l}`)}</a>))}
            </span>
            {who && (
              <form method="post" action={session?.subject.kind === 'operator' ? '/admin/logout' : '/logout'} class="logout">
                <span class="who">{t(lang, 'nav.signed_in_as', { login: who })}</span>
                <CsrfField c={c} />
                <button type="submit">{t(lang, 'nav.logout')}</button>
              </form>
            )}
          </div>
        </header>
        <main>
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  )
}
