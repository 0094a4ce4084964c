// The tenant's sender domains in the panel and the API (docs/domains.md): every domain with the DNS records to
// publish, and on demand the check of those records through the service's resolvers (POSTA_RESOLVERS). Read only:
// domains are added and verified with `posta domain add|verify` (the operator) for now.
//
//   GET /domains                  the page: each domain, its status and records
//   GET /domains?check=<domain>   the same, with that domain's records looked up (right / missing / wrong / unknown)
//   GET /api/v1/domains           JSON: { tenant, domains: [{ domain, kind, status, added_at, verified_at, records }] }
//   GET /api/v1/domains?check=<domain>   that domain's records with state, found and fix
import type { Context } from 'hono'
import { makeResolver } from '../lib/dnsbl'
import { checkDomainRecords, domainRecords, serviceSpfName, withInclude, type PublishRecord, type RecordCheck } from '../lib/dns-check'
import { checkSenderDomain, listDomains, type Domain } from '../lib/domains'
import { InputError } from '../lib/errors'
import type { Language } from '../lib/language'
import type { PanelConfig, PanelEnv } from './context'
import { apiError } from './errors'
import { formatDate, t, type MessageKey } from './i18n'
import { Layout, Notice } from './layout'

type C = Context<PanelEnv>

export interface DomainReport extends Domain {
  /** The records to publish (none for the tenant's own <slug>.<service domain>: the operator publishes those). */
  records: PublishRecord[] | RecordCheck[]
  /** The records were looked up (?check=). */
  checked: boolean
  all_right?: boolean
}

/** The tenant's domains with their records; `check` (a domain of the tenant) is looked up too. */
export async function domainsReport(cfg: PanelConfig, tenant: string, check: string | null): Promise<DomainReport[]> {
  const ds = await listDomains(cfg.redis, cfg.settings, tenant)
  return Promise.all(ds.map(async (d): Promise<DomainReport> => {
    if (d.kind === 'service') return { ...d, records: [], checked: false }
    if (d.domain === check) {
      const r = await checkDomainRecords(cfg.redis, cfg.settings, tenant, d.domain, makeResolver(cfg.settings.resolvers, 3000))
      return { ...r.domain, records: r.records, checked: true, all_right: r.allRight }
    }
    return { ...d, records: (await domainRecords(cfg.redis, cfg.settings, tenant, d.domain)).records, checked: false }
  }))
}

/** ?check=: a normalised domain, or null (absent); InputError for a name that is no domain. */
function checkParam(c: C): string | null {
  const raw = c.req.query('check')
  return raw === undefined || raw === '' ? null : checkSenderDomain(raw.slice(0, 300))
}

export async function domainsApi(c: C, cfg: PanelConfig) {
  let check: string | null
  try {
    check = checkParam(c)
  } catch (err) {
    if (err instanceof InputError) return apiError(c, 400, err.message)
    throw err
  }
  const domains = await domainsReport(cfg, c.get('tenant'), check)
  if (check && !domains.some((d) => d.domain === check && d.checked)) return apiError(c, 404, `${check} is not one of your added sender domains`)
  return c.json({ tenant: c.get('tenant'), domains })
}

const STATE_KEY: Record<RecordCheck['state'], MessageKey> = { right: 'dom.state_right', missing: 'dom.state_missing', wrong: 'dom.state_wrong', unknown: 'dom.state_unknown' }
const NOTE_KEY: Record<PublishRecord['purpose'], MessageKey> = { verification: 'dom.note_verification', dkim: 'dom.note_dkim', spf: 'dom.note_spf', dmarc: 'dom.note_dmarc' }

/** What to publish instead, in the page's language: the record, or for an SPF record without the include, that record with it. */
function fixText(lang: Language, r: RecordCheck, serviceDomain: string): string {
  if (r.state === 'unknown') return t(lang, 'dom.fix_unknown')
  const value = r.purpose === 'spf' && r.found.length === 1 ? withInclude(r.found[0], serviceSpfName(serviceDomain)) : r.value
  return t(lang, r.state === 'missing' ? 'dom.fix_missing' : 'dom.fix_wrong', { name: r.name, value })
}

function RecordRows({ lang, d, serviceDomain }: { lang: Language; d: DomainReport; serviceDomain: string }) {
  return (
    <table class="records">
      <thead>
        <tr>
          <th>{t(lang, 'dom.col_name')}</th>
          <th>{t(lang, 'dom.col_type')}</th>
          <th>{t(lang, 'dom.col_value')}</th>
          {d.checked && <th>{t(lang, 'dom.col_state')}</th>}
        </tr>
      </thead>
      <tbody>
        {d.records.map((r) => {
          const ch = d.checked ? (r as RecordCheck) : null
          return (
            <tr class={ch ? `state-${ch.state}` : undefined} data-purpose={r.purpose}>
              <td><code>{r.name}</code><div class="muted">{t(lang, NOTE_KEY[r.purpose])}</div></td>
              <td>{r.type}</td>
              <td><code class="value">{r.value}</code></td>
              {ch && (
                <td>
                  <strong>{t(lang, STATE_KEY[ch.state])}</strong>
                  {ch.state !== 'right' && <div>{fixText(lang, ch, serviceDomain)}</div>}
                  {ch.state !== 'right' && ch.found.length > 0 && <div class="muted">{t(lang, 'dom.found', { found: ch.found.map((v) => `"${v}"`).join(', ') })}</div>}
                </td>
              )}
            </tr>
          )
        })}
      </tbody>
    </table>
  )
}

export async function domainsPage(c: C, cfg: PanelConfig) {
  const lang = c.get('lang')
  const tz = cfg.settings.timeZone
  let check: string | null = null
  let bad = false
  try {
    check = checkParam(c)
  } catch (err) {
    if (!(err instanceof InputError)) throw err
    bad = true
  }
  const domains = await domainsReport(cfg, c.get('tenant'), check)
  const unknownCheck = check !== null && !domains.some((d) => d.domain === check && d.checked)
  return c.html(
    <Layout c={c} title={t(lang, 'dom.title')} active="/domains">
      <p>{t(lang, 'dom.intro')}</p>
      {(bad || unknownCheck) && <Notice kind="error">{t(lang, 'dom.check_unknown')}</Notice>}
      {domains.map((d) => (
        <section class="card" id={`domain-${d.domain}`}>
          <h2>
            <code>{d.domain}</code> <span class={`badge badge-${d.status}`}>{t(lang, d.status === 'verified' ? 'dom.verified' : 'dom.pending')}</span>
          </h2>
          {d.kind === 'service' ? (
            <p>{t(lang, 'dom.service')}</p>
          ) : (
            <>
              <p class="muted">
                {t(lang, 'dom.added', { date: d.added_at ? formatDate(lang, new Date(d.added_at), tz) : '-' })}
                {d.verified_at ? ` · ${t(lang, 'dom.verified_on', { date: formatDate(lang, new Date(d.verified_at), tz) })}` : ''}
              </p>
              {d.status === 'pending' && <Notice kind="info">{t(lang, 'dom.pending_help', { name: d.verification!.name })}</Notice>}
              {d.checked && <Notice kind={d.all_right ? 'ok' : 'warn'}>{t(lang, d.all_right ? 'dom.all_right' : 'dom.some_wrong')}</Notice>}
              <RecordRows lang={lang} d={d} serviceDomain={cfg.settings.serviceDomain} />
              <p><a class="button" href={`/domains?check=${encodeURIComponent(d.domain)}#domain-${d.domain}`}>{t(lang, 'dom.check')}</a></p>
            </>
          )}
        </section>
      ))}
      {domains.length === 1 && <p>{t(lang, 'dom.none')}</p>}
    </Layout>,
  )
}
