// The operator area's pages, rendered on the server in the request's language (web/layout.tsx frame, web/i18n.ts
// formats, texts from ./i18n). Every form posts with the CSRF field; every value is escaped by hono/jsx.
import type { Context } from 'hono'
import type { Child } from 'hono/jsx'
import type { AuditEntry } from '../../lib/audit'
import type { Ban } from '../../lib/bans'
import type { Investigation } from '../../lib/investigation'
import type { Language } from '../../lib/language'
import type { PanelEnv } from '../context'
import { formatBytes, formatDate, formatDateTime, formatMonth, formatNumber, formatPercent } from '../i18n'
import { CsrfField, Layout, Notice, type NavLink } from '../layout'
import type { FieldErrors, Fields } from './actions'
import type { PoolRow, TenantDetail, TenantRow, todaysRotation } from './data'
import { ta, type AdminKey } from './i18n'

type C = Context<PanelEnv>

/** What a page says about the form just posted: done (after the redirect), or the errors of a refused post. */
export interface FormState {
  done?: { key: AdminKey; params: Record<string, string> }
  /** Which form the errors belong to, e.g. `topup`, `ban`, `suspend:203.0.113.7`. */
  form?: string
  errors?: FieldErrors
  refused?: string
  fields?: Fields
}

export const tenantPath = (slug: string) => `/admin/tenants/${encodeURIComponent(slug)}`
export const ipPath = (ip: string) => `/admin/ips/${encodeURIComponent(ip)}`

function adminNav(lang: Language): NavLink[] {
  return [
    { href: '/admin', label: { text: ta(lang, 'nav.tenants') } },
    { href: '/admin/ips', label: { text: ta(lang, 'nav.ips') } },
    { href: '/admin/investigations', label: { text: ta(lang, 'nav.investigations') } },
    { href: '/admin/bans', label: { text: ta(lang, 'nav.bans') } },
    { href: '/admin/audit', label: { text: ta(lang, 'nav.audit') } },
  ]
}

function Page({ c, title, active, children }: { c: C; title: string; active?: string; children?: Child }) {
  return <Layout c={c} title={title} active={active} nav={c.get('session')?.subject.kind === 'operator' ? adminNav(c.get('lang')) : []}>{children}</Layout>
}

const when = (c: C, tz: string, iso: string | number | null | undefined) => (iso === null || iso === undefined || iso === '' ? '-' : formatDateTime(c.get('lang'), new Date(iso), tz))

/** The error of one field, next to it; id for aria-describedby. */
function FieldError({ c, state, form, name }: { c: C; state?: FormState; form: string; name: string }) {
  const key = state?.form === form ? state.errors?.[name] : undefined
  return key ? <p class="notice notice-error field-error" id={`err-${form}-${name}`} role="alert">{ta(c.get('lang'), key)}</p> : null
}

function FormNotice({ c, state, form }: { c: C; state?: FormState; form: string }) {
  if (state?.form !== form) return null
  if (state.errors && Object.keys(state.errors).length) return <Notice kind="error">{ta(c.get('lang'), 'err.form')}</Notice>
  return null
}

const value = (state: FormState | undefined, form: string, name: string) => (state?.form === form ? (state.fields?.[name] ?? '') : '')

/** At the top of a page: what the last action did, or why the domain refused it. */
function Done({ c, state }: { c: C; state?: FormState }) {
  if (state?.refused) return <Notice kind="error">{ta(c.get('lang'), 'err.refused', { reason: state.refused })}</Notice>
  return state?.done ? <Notice kind="ok">{ta(c.get('lang'), state.done.key, state.done.params)}</Notice> : null
}

// ---- login ----

export function LoginPage({ c, errors, name, message }: { c: C; errors?: FieldErrors; name?: string; message?: string }) {
  const lang = c.get('lang')
  return (
    <Page c={c} title={ta(lang, 'login.title')}>
      <p class="muted">{ta(lang, 'login.intro')}</p>
      {message && <Notice kind="error">{message}</Notice>}
      <form method="post" action="/admin/login" class="stack">
        <CsrfField c={c} />
        <label>
          {ta(lang, 'login.name')}
          <input type="text" name="name" value={name ?? ''} autocomplete="username" autocapitalize="none" spellcheck={false} required maxlength={32} />
        </label>
        {errors?.name && <p class="notice notice-error field-error" role="alert">{ta(lang, errors.name)}</p>}
        <label>
          {ta(lang, 'login.password')}
          <input type="password" name="password" autocomplete="current-password" required maxlength={256} />
        </label>
        {errors?.password && <p class="notice notice-error field-error" role="alert">{ta(lang, errors.password)}</p>}
        <button type="submit">{ta(lang, 'login.submit')}</button>
      </form>
    </Page>
  )
}

// ---- tenants ----

const statusText = (lang: Language, s: string) => (s === 'active' || s === 'suspended' || s === 'closed' ? ta(lang, `status.${s}`) : s)

export function TenantsPage({ c, rows, more, q, max }: { c: C; rows: TenantRow[]; more: boolean; q: string; max: number }) {
  const lang = c.get('lang')
  return (
    <Page c={c} title={ta(lang, 'tenants.title')} active="/admin">
      <form method="get" action="/admin" class="filters" role="search">
        <label>
          {ta(lang, 'tenants.search')} <input type="text" name="q" value={q} maxlength={254} />
        </label>
        <button type="submit">{ta(lang, 'tenants.search_submit')}</button>
      </form>
      {more && <Notice kind="info">{ta(lang, 'tenants.more', { n: formatNumber(lang, max) })}</Notice>}
      {rows.length === 0 ? (
        <p class="muted">{ta(lang, 'tenants.none')}</p>
      ) : (
        <table>
          <thead>
            <tr>
              {(['col.tenant', 'col.status', 'col.package', 'col.contact', 'col.used', 'col.limit', 'col.percent', 'col.messages'] as const).map((k) => <th>{ta(lang, k)}</th>)}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr data-tenant={r.tenant}>
                <td><a href={tenantPath(r.tenant)}>{r.tenant}</a></td>
                <td class={`tenant-${r.status}`}>{statusText(lang, r.status)}</td>
                <td>{r.package}</td>
                <td>{r.contact}</td>
                <td>{formatBytes(lang, r.used_bytes)}</td>
                <td>{formatBytes(lang, r.limit_bytes)}</td>
                <td>{formatPercent(lang, r.percent)}</td>
                <td>{formatNumber(lang, r.messages)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  )
}

function ActionForm({ c, slug, action, children }: { c: C; slug: string; action: string; children?: Child }) {
  return (
    <form method="post" action={`${tenantPath(slug)}/${action}`} class="stack" data-action={action}>
      <CsrfField c={c} />
      {children}
    </form>
  )
}

export function TenantPage({ c, d, tz, state }: { c: C; d: TenantDetail; tz: string; state?: FormState }) {
  const lang = c.get('lang')
  const t = d.tenant
  const u = d.usage
  const slug = t.slug
  return (
    <Page c={c} title={ta(lang, 'tenant.title', { slug })} active="/admin">
      <Done c={c} state={state} />
      <h2>{ta(lang, 'tenant.account')}</h2>
      <dl class="settings card">
        <dt>{ta(lang, 'col.status')}</dt><dd class={`tenant-${t.status}`}>{statusText(lang, t.status)}</dd>
        <dt>{ta(lang, 'col.package')}</dt><dd>{t.package}</dd>
        <dt>{ta(lang, 'col.contact')}</dt><dd>{t.contact}</dd>
        <dt>{ta(lang, 'tenant.language')}</dt><dd>{t.lang ?? '-'}</dd>
        <dt>{ta(lang, 'tenant.logins')}</dt><dd>{t.logins_full.join(', ')}</dd>
        <dt>{ta(lang, 'tenant.created')}</dt><dd>{when(c, tz, t.created_at)}</dd>
      </dl>

      <h2 id="month" data-month={u.month}>{ta(lang, 'tenant.usage', { month: formatMonth(lang, u.month) })}</h2>
      <div class="figures">
        <div class="figure"><div class="label">{ta(lang, 'col.used')}</div><div class="value" data-figure="used">{formatBytes(lang, u.used_bytes)}</div></div>
        <div class="figure"><div class="label">{ta(lang, 'col.limit')}</div><div class="value" data-figure="limit">{formatBytes(lang, u.limit_bytes)}</div></div>
        <div class="figure"><div class="label">{ta(lang, 'tenant.remaining')}</div><div class="value" data-figure="remaining">{formatBytes(lang, u.remaining_bytes)}</div></div>
        <div class="figure"><div class="label">{ta(lang, 'col.percent')}</div><div class="value">{formatPercent(lang, u.percent)}</div></div>
        <div class="figure"><div class="label">{ta(lang, 'col.messages')}</div><div class="value">{formatNumber(lang, u.messages)}</div></div>
      </div>
      <p class="muted">
        {u.topup_bytes > 0 && `${ta(lang, 'tenant.topup_included', { bytes: formatBytes(lang, u.topup_bytes) })}. `}
        {ta(lang, 'tenant.resets', { date: formatDate(lang, new Date(u.resets_at), tz) })}.{' '}
        {ta(lang, 'tenant.delivery', { delivered: formatNumber(lang, u.delivered), deferred: formatNumber(lang, u.deferred), bounced: formatNumber(lang, u.bounced) })}
      </p>

      <h2>{ta(lang, 'tenant.actions')}</h2>
      {t.status === 'closed' ? (
        <Notice kind="warn">{ta(lang, 'tenant.closed_note')}</Notice>
      ) : (
        <div class="actions">
          <FormNotice c={c} state={state} form={t.status === 'active' ? 'suspend' : 'resume'} />
          {t.status === 'active' ? (
            <ActionForm c={c} slug={slug} action="suspend"><button type="submit">{ta(lang, 'act.suspend')}</button></ActionForm>
          ) : (
            <ActionForm c={c} slug={slug} action="resume"><button type="submit">{ta(lang, 'act.resume')}</button></ActionForm>
          )}

          <h3>{ta(lang, 'act.topup')}</h3>
          <FormNotice c={c} state={state} form="topup" />
          <ActionForm c={c} slug={slug} action="topup">
            <label>
              {ta(lang, 'act.topup_field')} <span class="muted">({ta(lang, 'act.topup_hint')})</span>
              <input type="text" name="traffic" value={value(state, 'topup', 'traffic')} required maxlength={32} />
            </label>
            <FieldError c={c} state={state} form="topup" name="traffic" />
            <button type="submit">{ta(lang, 'act.topup')}</button>
          </ActionForm>

          <h3>{ta(lang, 'act.package')}</h3>
          <FormNotice c={c} state={state} form="package" />
          <ActionForm c={c} slug={slug} action="package">
            <label>
              {ta(lang, 'act.package_field')}
              <select name="package">
                {d.packages.map((p) => (
                  <option value={p.name} selected={p.name === t.package}>{`${p.name} (${formatBytes(lang, p.traffic_bytes)})`}</option>
                ))}
              </select>
            </label>
            <FieldError c={c} state={state} form="package" name="package" />
            <button type="submit">{ta(lang, 'act.package')}</button>
          </ActionForm>

          <h3>{ta(lang, 'act.ban')}</h3>
          <Notice kind="warn">{ta(lang, 'act.ban_warning', { slug })}</Notice>
          <FormNotice c={c} state={state} form="ban" />
          <ActionForm c={c} slug={slug} action="ban">
            <label>
              {ta(lang, 'act.ban_reason')}
              <input type="text" name="reason" value={value(state, 'ban', 'reason')} required maxlength={500} />
            </label>
            <FieldError c={c} state={state} form="ban" name="reason" />
            <label>
              {ta(lang, 'act.ban_confirm', { slug })}
              <input type="text" name="confirm" value="" required autocomplete="off" />
            </label>
            <FieldError c={c} state={state} form="ban" name="confirm" />
            <button type="submit" class="danger">{ta(lang, 'act.ban')}</button>
          </ActionForm>
        </div>
      )}

      <h2>{ta(lang, 'tenant.recent')}</h2>
      {d.recent.length === 0 ? (
        <p class="muted">{ta(lang, 'tenant.recent_none')}</p>
      ) : (
        <table>
          <thead>
            <tr>{(['col.time', 'col.domain', 'col.recipients', 'col.result', 'col.ip', 'col.reply'] as const).map((k) => <th>{ta(lang, k)}</th>)}</tr>
          </thead>
          <tbody>
            {d.recent.map((a) => (
              <tr>
                <td>{when(c, tz, a.at)}</td>
                <td>{a.recipients?.length ? a.recipients.join(', ') : a.domain}</td>
                <td>{formatNumber(lang, a.rcpts)}</td>
                <td class={`status-${a.result}`}>{ta(lang, `result.${a.result}`)}{a.kind && a.kind !== 'message' ? ` (${a.kind})` : ''}</td>
                <td>{a.ip}</td>
                <td class="reply">{a.result === 'delivered' ? '' : `${a.code} ${a.response}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>{ta(lang, 'tenant.traps')}</h2>
      <p data-figure="trap-hits">{ta(lang, 'tenant.traps_line', { hits: d.trap_hits.hits, pristine: d.trap_hits.pristine, recycled: d.trap_hits.recycled, typo: d.trap_hits.typo })}</p>
      {d.trap_hits.strikes.length > 0 && (
        <>
          <p class="muted">{ta(lang, 'tenant.strikes')}</p>
          <ul>{d.trap_hits.strikes.map((s) => <li><code>{s}</code></li>)}</ul>
        </>
      )}

      <h2>{ta(lang, 'tenant.suppressions')}</h2>
      {d.suppressions.length === 0 ? (
        <p class="muted">{ta(lang, 'tenant.suppressions_none')}</p>
      ) : (
        <table>
          <thead><tr><th>{ta(lang, 'col.address')}</th><th>{ta(lang, 'col.expires')}</th></tr></thead>
          <tbody>{d.suppressions.map((s) => <tr><td>{s.address}</td><td>{when(c, tz, s.expires_at)}</td></tr>)}</tbody>
        </table>
      )}

      {d.bans.length > 0 && (
        <>
          <h2>{ta(lang, 'tenant.bans')}</h2>
          <BanTable c={c} bans={d.bans} tz={tz} />
        </>
      )}
    </Page>
  )
}

// ---- pool, rotation ----

export function PoolPage({ c, pool, rotation, schedule, tz, state }: {
  c: C; pool: PoolRow[]; rotation: { slotMinutes: number; timeZone: string }; schedule: ReturnType<typeof todaysRotation>; tz: string; state?: FormState
}) {
  const lang = c.get('lang')
  return (
    <Page c={c} title={ta(lang, 'ips.title')} active="/admin/ips">
      <Done c={c} state={state} />
      {pool.length === 0 ? (
        <p class="muted">{ta(lang, 'ips.empty')}</p>
      ) : (
        <>
          <table>
            <thead>
              <tr>{(['col.ip', 'col.helo', 'col.state', 'col.slot', 'col.last_use', 'col.listings', 'col.reason', 'col.actions'] as const).map((k) => <th>{ta(lang, k)}</th>)}</tr>
            </thead>
            <tbody>
              {pool.map((p) => {
                const form = `${p.state === 'active' ? 'suspend' : 'reinstate'}:${p.ip}`
                return (
                  <tr data-ip={p.ip}>
                    <td>{p.ip}</td>
                    <td>{p.helo}</td>
                    <td class={`ip-${p.state}`}>{statusText(lang, p.state)}{p.suspended_by ? ` (${p.suspended_by})` : ''}</td>
                    <td>{ta(lang, p.active ? 'slot.active' : 'slot.resting')}</td>
                    <td>{when(c, tz, p.last_use)}</td>
                    <td>
                      {p.listings.length === 0 ? '-' : p.listings.map((l) => (
                        <div>{`${l.zone}: ${l.meaning} (${l.answers.join(',')})`}{l.actionable ? '' : ` [${ta(lang, 'ips.informational')}]`}</div>
                      ))}
                    </td>
                    <td>{p.reason ?? ''}</td>
                    <td>
                      <FormNotice c={c} state={state} form={form} />
                      <form method="post" action={`${ipPath(p.ip)}/${p.state === 'active' ? 'suspend' : 'reinstate'}`} class="stack" data-action={form}>
                        <CsrfField c={c} />
                        {p.state === 'active' && (
                          <>
                            <label>
                              {ta(lang, 'act.ip_reason')}
                              <input type="text" name="reason" value={value(state, form, 'reason')} required maxlength={500} />
                            </label>
                            <FieldError c={c} state={state} form={form} name="reason" />
                          </>
                        )}
                        <button type="submit">{ta(lang, p.state === 'active' ? 'act.ip_suspend' : 'act.ip_reinstate')}</button>
                      </form>
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>

          <h2>{ta(lang, 'ips.rotation', { day: formatDate(lang, new Date(`${schedule.day}T12:00:00Z`), 'UTC'), zone: rotation.timeZone, minutes: rotation.slotMinutes })}</h2>
          <table>
            <thead><tr>{(['col.from', 'col.to', 'col.active_ips'] as const).map((k) => <th>{ta(lang, k)}</th>)}</tr></thead>
            <tbody>
              {schedule.slots.map((s) => (
                <tr class={s.current ? 'current' : undefined} aria-current={s.current ? 'time' : undefined}>
                  <td>{hhmm(s.slot.start, rotation.timeZone)}{s.current ? ` (${ta(lang, 'ips.now')})` : ''}</td>
                  <td>{hhmm(s.slot.end, rotation.timeZone)}</td>
                  <td>{s.active.join(' ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Page>
  )
}

const hhmm = (d: Date, tz: string) => new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d)

// ---- investigations ----

export function InvestigationsPage({ c, list, tz }: { c: C; list: Investigation[]; tz: string }) {
  const lang = c.get('lang')
  return (
    <Page c={c} title={ta(lang, 'inv.title')} active="/admin/investigations">
      {list.length === 0 ? (
        <p class="muted">{ta(lang, 'inv.none')}</p>
      ) : (
        <table>
          <thead><tr>{(['col.id', 'col.ip', 'col.opened', 'col.trigger', 'col.top_tenant'] as const).map((k) => <th>{ta(lang, k)}</th>)}</tr></thead>
          <tbody>
            {list.map((i) => (
              <tr>
                <td><a href={`/admin/investigations/${encodeURIComponent(i.id)}`}>{i.id}</a></td>
                <td>{i.ip}</td>
                <td>{when(c, tz, i.opened_at)}</td>
                <td>{i.trigger}</td>
                <td>{i.tenants[0] ? `${i.tenants[0].tenant} (${formatPercent(lang, i.tenants[0].share)})` : '-'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  )
}

export function InvestigationPage({ c, inv, tz }: { c: C; inv: Investigation; tz: string }) {
  const lang = c.get('lang')
  return (
    <Page c={c} title={ta(lang, 'inv.one', { id: inv.id })} active="/admin/investigations">
      <p>{ta(lang, 'inv.window', { ip: inv.ip, since: when(c, tz, inv.since), until: when(c, tz, inv.until), bytes: formatBytes(lang, inv.total_bytes) })}</p>
      {inv.evidence.length > 0 && (
        <>
          <h2>{ta(lang, 'inv.evidence')}</h2>
          <ul>{inv.evidence.map((e) => <li><code>{JSON.stringify(e)}</code></li>)}</ul>
        </>
      )}
      {inv.tenants.length === 0 ? (
        <p class="muted">{ta(lang, 'inv.nobody')}</p>
      ) : (
        <table>
          <thead>
            <tr>{(['col.tenant', 'col.share', 'col.bytes', 'col.attempts', 'col.bounce_rate', 'col.refusal_rate', 'col.new_domain', 'col.trap_hits', 'col.suppressed'] as const).map((k) => <th>{ta(lang, k)}</th>)}</tr>
          </thead>
          <tbody>
            {inv.tenants.map((t) => (
              <tr>
                <td>{t.tenant === '-' ? '-' : <a href={tenantPath(t.tenant)}>{t.tenant}</a>}</td>
                <td>{formatPercent(lang, t.share)}</td>
                <td>{formatBytes(lang, t.bytes)}</td>
                <td>{formatNumber(lang, t.attempts)}</td>
                <td>{formatPercent(lang, t.bounce_rate)}</td>
                <td>{formatPercent(lang, t.refusal_rate)}</td>
                <td>{formatPercent(lang, t.new_domain_share)}</td>
                <td>{t.trap_hits === null ? '-' : formatNumber(lang, t.trap_hits)}</td>
                <td>{t.suppressed === null ? '-' : formatNumber(lang, t.suppressed)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  )
}

// ---- bans, audit ----

function BanTable({ c, bans, tz }: { c: C; bans: Ban[]; tz: string }) {
  const lang = c.get('lang')
  return (
    <table>
      <thead><tr>{(['col.tenant', 'col.at', 'col.by', 'col.reason', 'col.contact', 'col.banned_domains', 'col.evidence'] as const).map((k) => <th>{ta(lang, k)}</th>)}</tr></thead>
      <tbody>
        {bans.map((b) => (
          <tr>
            <td><a href={tenantPath(b.tenant)}>{b.tenant}</a></td>
            <td>{when(c, tz, b.at)}</td>
            <td>{b.by}</td>
            <td>{b.reason}</td>
            <td>{b.contact}</td>
            <td>{b.banned_domains.join(', ') || '-'}</td>
            <td class="reply">{Object.entries(b.evidence ?? {}).map(([k, v]) => <div>{`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`}</div>)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function BansPage({ c, bans, tz }: { c: C; bans: Ban[]; tz: string }) {
  const lang = c.get('lang')
  return (
    <Page c={c} title={ta(lang, 'bans.title')} active="/admin/bans">
      {bans.length === 0 ? <p class="muted">{ta(lang, 'bans.none')}</p> : <BanTable c={c} bans={bans} tz={tz} />}
    </Page>
  )
}

export function AuditPage({ c, entries, tz }: { c: C; entries: AuditEntry[]; tz: string }) {
  const lang = c.get('lang')
  return (
    <Page c={c} title={ta(lang, 'audit.title')} active="/admin/audit">
      {entries.length === 0 ? (
        <p class="muted">{ta(lang, 'audit.none')}</p>
      ) : (
        <table>
          <thead><tr>{(['col.at', 'col.operator', 'col.action', 'col.target', 'col.details'] as const).map((k) => <th>{ta(lang, k)}</th>)}</tr></thead>
          <tbody>
            {entries.map((e) => (
              <tr data-action={e.action} data-target={e.target}>
                <td>{when(c, tz, e.at)}</td>
                <td>{e.operator}</td>
                <td>{e.action}</td>
                <td>{e.target}</td>
                <td class="reply">{Object.keys(e.details).length ? JSON.stringify(e.details) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  )
}
