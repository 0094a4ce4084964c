// The page frame every panel page renders in: head (the panel's own stylesheet, no inline script or style), a header
// with the navigation, the language switch and the logout button, and the page's content.
//
// Exports:
//   Layout({ c, title, active?, nav?, children })  c: the request context (language, session, CSRF token, path);
//                                                  nav: links to show instead of the tenant's (the operator area
//                                                  passes its own); active: the href of the current page
//   CsrfField({ c })                                the hidden `_csrf` input every form must carry (web/csrf.ts)
//   Notice({ kind, children })                      a message box: 'info' | 'warn' | 'error' | 'ok'
//   langHref(method, url, lang)                   the language switch's link (after a POST: the form's page)
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

/** POST-only routes and the page their form is on: /admin/tenants/<slug>/<action>, /admin/ips/<ip>/<action>, logouts. */
const FORM_PAGES: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^(\/admin\/tenants\/[^/]+)\/[^/]+$/, (m) => m[1]],
  [/^\/admin\/ips\/[^/]+\/[^/]+$/, () => '/admin/ips'],
  [/^\/logout$/, () => '/login'],
  [/^\/admin\/logout$/, () => '/admin/login'],
]

/**
 * The page a language link reloads. For a GET, the current URL with `lang` set, the rest of the query kept. After a
 * POST (a refused login, a form with errors, a CSRF refusal) the page of that form, without the POST's query: a POST
 * path may have no GET (/admin/tenants/<slug>/topup), and the link must not send the form again.
 */
export function langHref(method: string, url: string, lang: string): string {
  const u = new URL(url)
  if (method === 'GET' || method === 'HEAD') {
    u.searchParams.set('lang', lang)
    return `${u.pathname}?${u.searchParams.toString()}`
  }
  let page = u.pathname
  for (const [re, to] of FORM_PAGES) {
    const m = re.exec(page)
    if (m) {
      page = to(m)
      break
    }
  }
  return `${page}?${new URLSearchParams({ lang }).toString()}`
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
              {LANGUAGES.map((l) => (l === lang ? <strong lang={l}>{t(l, `lang.${l}`)}</strong> : <a href={langHref(c.req.method, c.req.url, l)} lang={l} hreflang={l}>{t(l, `lang.${l}`)}</a>))}
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
