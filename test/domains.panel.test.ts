// The Domains page and GET /api/v1/domains over HTTP (real redis-server, the app on a free port, real fetch, the
// loopback DNS server as POSTA_RESOLVERS): the tenant's domains with their records, the checks on demand (right,
// missing, wrong), both languages, and tenant A never seeing or checking B's domains.
import { strict as assert } from 'node:assert'
import { addDomain, verifyDomain } from '../lib/domains'
import { makeResolver } from '../lib/dnsbl'
import { domainRecords } from '../lib/dns-check'
import { setPackage } from '../lib/packages'
import { loadSettings, type Settings } from '../lib/settings'
import { createTenant, type Credentials } from '../lib/tenants'
import { startDns, type TestDns } from '../testkit/dns'
import { basic, PanelClient, startPanel, type TestPanel } from '../testkit/panel'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const DOMAIN = 'posta.example'
const LIMITS = { ip_max: 1000, ip_window: 900, pair_max: 50, pair_window: 3600, user_max: 50, user_window: 3600, failure_delay_ms: 0, max_attempts_per_connection: 3, cache_seconds: 300 }

interface ApiDomain { domain: string; kind: string; status: string; checked: boolean; all_right?: boolean; records: { purpose: string; name: string; value: string; state?: string; fix?: string }[] }

describe('Domains page and GET /api/v1/domains (HTTP, real Redis, loopback DNS)', function () {
  this.timeout(60000)
  let r: TestRedis
  let dns: TestDns
  let settings: Settings
  let panel: TestPanel
  let a: Credentials
  let b: Credentials
  const mine = `${uniqueName('mine')}.example`
  const pending = `${uniqueName('pend')}.example`
  const theirs = `${uniqueName('theirs')}.example`

  before(async () => {
    r = await testRedis()
    dns = await startDns()
    settings = loadSettings({ POSTA_SERVICE_DOMAIN: DOMAIN, REDIS_URL: r.url, POSTA_RESOLVERS: dns.server })
    const pkg = uniqueName('pkg')
    await setPackage(r.client, pkg, 1e9)
    const tenant = () => createTenant(r.client, settings, { slug: uniqueName('t').slice(0, 30), package: pkg, contact: 'ops@example.net' })
    a = await tenant()
    b = await tenant()
    const { entry } = await addDomain(r.client, settings, a.tenant, mine)
    dns.setTxt(entry.verification!.name, [entry.verification!.value])
    assert.equal((await verifyDomain(r.client, settings, a.tenant, mine, makeResolver([dns.server], 1000))).verified, true)
    await addDomain(r.client, settings, a.tenant, pending)
    await addDomain(r.client, settings, b.tenant, theirs)
    panel = await startPanel(r.url, settings, { auth: LIMITS })
  })
  after(async () => {
    await panel?.close()
    await dns?.close()
    await r?.close()
  })

  const api = (path: string, c: Credentials) => fetch(`${panel.url}${path}`, { headers: { authorization: basic(c.login, c.password) } })

  it('GET /api/v1/domains: the tenant\'s own name, then its domains with every record to publish, nothing of another tenant', async () => {
    const res = await api('/api/v1/domains', a)
    assert.equal(res.status, 200)
    const body = (await res.json()) as { tenant: string; domains: ApiDomain[] }
    assert.equal(body.tenant, a.tenant)
    assert.deepEqual(body.domains.map((d) => [d.domain, d.kind, d.status, d.checked]), [
      [`${a.tenant}.${DOMAIN}`, 'service', 'verified', false], [mine, 'own', 'verified', false], [pending, 'own', 'pending', false],
    ])
    const recs = body.domains[1].records
    assert.deepEqual(recs.map((x) => x.purpose), ['verification', 'dkim', 'spf', 'dmarc'])
    assert.equal(recs[2].value, `v=spf1 include:spf.${DOMAIN} ~all`)
    assert.ok(recs.every((x) => x.state === undefined), 'no lookups without ?check=')
    assert.ok(!JSON.stringify(body).includes(theirs))
    assert.ok(!JSON.stringify(body).includes('PRIVATE KEY'), 'no private key')
  })

  it('GET /api/v1/domains?check=: that domain\'s records looked up, right / missing / wrong with what to change', async () => {
    let body = (await (await api(`/api/v1/domains?check=${mine}`, a)).json()) as { domains: ApiDomain[] }
    let d = body.domains.find((x) => x.domain === mine)!
    assert.equal(d.checked, true)
    assert.deepEqual(d.records.map((x) => x.state), ['right', 'missing', 'missing', 'missing'])
    assert.equal(d.all_right, false)
    assert.equal(body.domains.find((x) => x.domain === pending)!.checked, false, 'only the domain asked for')
    const { records } = await domainRecords(r.client, settings, a.tenant, mine)
    for (const rec of records.filter((x) => x.purpose !== 'verification')) dns.setTxt(rec.name, [rec.value])
    dns.setTxt(mine, ['v=spf1 mx -all'])
    body = (await (await api(`/api/v1/domains?check=${mine.toUpperCase()}`, a)).json()) as { domains: ApiDomain[] }
    d = body.domains.find((x) => x.domain === mine)!
    assert.deepEqual(d.records.map((x) => x.state), ['right', 'right', 'wrong', 'right'])
    assert.match(d.records[2].fix!, /change it to "v=spf1 mx include:spf\.posta\.example -all"/)
    dns.setTxt(mine, [records.find((x) => x.purpose === 'spf')!.value])
    body = (await (await api(`/api/v1/domains?check=${mine}`, a)).json()) as { domains: ApiDomain[] }
    assert.equal(body.domains.find((x) => x.domain === mine)!.all_right, true)
  })

  it('refuses ?check= of another tenant\'s domain (404), a bad name (400), and no credentials (401)', async () => {
    const other = await api(`/api/v1/domains?check=${theirs}`, a)
    assert.equal(other.status, 404)
    assert.match(((await other.json()) as { error: string }).error, /is not one of your added sender domains/)
    const bad = await api('/api/v1/domains?check=not..a..domain', a)
    assert.equal(bad.status, 400)
    assert.match(((await bad.json()) as { error: string }).error, /bad sender domain/)
    assert.equal((await fetch(`${panel.url}/api/v1/domains`)).status, 401)
    const own = (await (await api('/api/v1/domains', b)).json()) as { domains: ApiDomain[] }
    assert.deepEqual(own.domains.map((d) => d.domain), [`${b.tenant}.${DOMAIN}`, theirs])
  })

  it('the page lists the domains and their records, checks one on demand, in English and Italian', async () => {
    const c = new PanelClient(panel.url)
    assert.equal((await c.submit('/login', '/login', { login: a.login, password: a.password })).status, 303)
    assert.equal((await new PanelClient(panel.url).get('/domains')).status, 303, 'no session: to the login')
    let html = await (await c.get('/domains')).text()
    assert.match(html, /<title>Sender domains/)
    assert.match(html, /href="\/domains" class="active"/)
    assert.ok(html.includes(mine) && html.includes(pending) && !html.includes(theirs))
    assert.ok(html.includes(`include:spf.${DOMAIN}`))
    assert.match(html, /Not verified yet: publish the TXT record _posta-verification\./)
    assert.ok(!html.includes('In DNS'), 'no check column before a check')
    dns.setTxt(`_dmarc.${mine}`, undefined)
    html = await (await c.get(`/domains?check=${mine}`)).text()
    assert.match(html, /Some records need a change/)
    assert.match(html, /<tr class="state-missing" data-purpose="dmarc">/)
    assert.match(html, new RegExp(`Publish TXT _dmarc\\.${mine.replace(/\./g, '\\.')} with the value &quot;v=DMARC1; p=none&quot;`))
    html = await (await c.get(`/domains?check=${mine}&lang=it`)).text()
    assert.match(html, /<title>Domini mittenti/)
    assert.match(html, /Alcuni record vanno corretti/)
    assert.match(html, /<strong>mancante<\/strong>/)
    html = await (await c.get(`/domains?check=${theirs}`)).text()
    assert.match(html, /That is not one of your sender domains|Questo non è uno dei tuoi domini mittenti/)
    assert.ok(!html.includes('class="state-'), 'nothing looked up for another tenant\'s domain')
  })
})
