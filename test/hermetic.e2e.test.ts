// Tests stay on loopback: a test Haraka runs without the blocklist monitor unless the test gives it a
// posta-monitor.ini with loopback resolvers (testkit refuses anything else), and the service's own lookups (MX of
// outbound mail, the client's PTR (when not in /etc/hosts), `posta ip add`'s checks) go to POSTA_RESOLVERS, which tests point at loopback.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import nodemailer from 'nodemailer'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { posta } from '../testkit/cli'
import { startDns, type TestDns } from '../testkit/dns'
import { hermeticOverrides, loopbackResolvers, startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, uniqueName, type TestRedis } from '../testkit/redis'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const shippedMonitor = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'posta-monitor.ini'), 'utf8')

describe('hermetic tests', function () {
  this.timeout(90000)

  describe('testkit: the monitor of a test Haraka', () => {
    it('is off without a posta-monitor.ini of the test', () => {
      const o = hermeticOverrides({ 'posta-auth.ini': '[main]\nfailure_delay_ms=0\n' })
      assert.doesNotMatch(o.plugins, /^\s*posta-monitor\s*$/m)
      assert.match(o.plugins, /^\s*posta-relay\s*$/m, 'the other plugins stay')
      assert.equal(o['posta-auth.ini'], '[main]\nfailure_delay_ms=0\n')
    })

    it('refuses a posta-monitor.ini that would ask the system\'s or a public resolver', () => {
      assert.throws(() => hermeticOverrides({ 'posta-monitor.ini': shippedMonitor }), /resolvers=\(empty: the system's\) would ask a public resolver/)
      assert.throws(() => hermeticOverrides({ 'posta-monitor.ini': shippedMonitor.replace(/^resolvers=.*$/m, 'resolvers=127.0.0.1:5353,9.9.9.9') }), /resolvers=127\.0\.0\.1:5353,9\.9\.9\.9 would ask a public resolver/)
      const ok = shippedMonitor.replace(/^resolvers=.*$/m, 'resolvers=127.0.0.1:5353')
      assert.equal(hermeticOverrides({ 'posta-monitor.ini': ok })['posta-monitor.ini'], ok)
    })

    it('refuses a test plugins list with the monitor and no posta-monitor.ini', () => {
      const plugins = fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'plugins'), 'utf8')
      assert.throws(() => hermeticOverrides({ plugins }), /must give a posta-monitor\.ini with loopback resolvers/)
      assert.deepEqual(hermeticOverrides({ plugins: plugins.replace(/^posta-monitor$/m, '') }), { plugins: plugins.replace(/^posta-monitor$/m, '') })
    })

    it('loopbackResolvers', () => {
      assert.equal(loopbackResolvers(['127.0.0.1:53', '[::1]:53', '127.9.9.9']), true)
      assert.equal(loopbackResolvers([]), false)
      assert.equal(loopbackResolvers(['10.0.0.1']), false)
      assert.equal(loopbackResolvers(['128.0.0.1']), false)
    })

    it('every test and bench that gives a posta-monitor.ini gives loopback resolvers (a grep of the sources)', () => {
      for (const dir of ['test', 'bench']) {
        for (const f of fs.readdirSync(path.join(PROJECT_ROOT, dir)).filter((n) => n.endsWith('.ts'))) {
          const src = fs.readFileSync(path.join(PROJECT_ROOT, dir, f), 'utf8')
          for (const m of src.matchAll(/^resolvers=(.*)$/gm)) assert.match(m[1], /^\$\{[^}]+\}$|^127\./, `${dir}/${f}: resolvers=${m[1]}`)
          // outside the monitor's own tests, 127.0.0.2 (listed by every blocklist by design) is never a pool IP
          if (!/monitor|dnsbl|pool\.e2e/.test(f)) assert.doesNotMatch(src, /ip', 'add', '127\.0\.0\.2'/, `${dir}/${f}`)
        }
      }
    })
  })

  describe('POSTA_RESOLVERS: the service asks the test DNS server', () => {
    let redis: TestRedis
    let dns: TestDns
    let node: HarakaNode
    let env: Record<string, string>
    before(async () => {
      redis = await testRedis()
      dns = await startDns()
      env = { REDIS_URL: redis.url, POSTA_RESOLVERS: dns.server }
      node = await startHaraka({ redisUrl: redis.url, env: { POSTA_RESOLVERS: dns.server }, overrides: { 'posta-auth.ini': '[main]\nfailure_delay_ms=0\n', 'outbound.ini': 'enable_tls=false\n' } })
    })
    after(async () => {
      await node?.stop()
      await dns?.close()
      await redis?.close()
    })

    it('the monitor of a default test Haraka is off: no cycle runs', async () => {
      assert.match(fs.readFileSync(path.join(node.dir, 'config', 'plugins'), 'utf8'), /^# posta-monitor/m)
      await sleep(2500) // the monitor's first tick would be 1 s after start
      assert.doesNotMatch(node.log(), /DNSBL|posta-monitor/)
    })

    it('outbound MX lookups go to POSTA_RESOLVERS', async () => {
      assert.equal((await posta(['package', 'set', 'herm', '--traffic', '1GB'], env)).code, 0)
      const r = await posta(['tenant', 'create', uniqueName('herm'), '--package', 'herm', '--contact', 'ops@example.net', '--json'], env)
      assert.equal(r.code, 0, r.stderr)
      const t = r.json()
      const domain = `${uniqueName('unrouted')}.test`
      const tr = nodemailer.createTransport({
        host: '127.0.0.1', port: node.submissionPort, secure: false, requireTLS: true,
        auth: { user: t.login, pass: t.password }, tls: { rejectUnauthorized: false },
      })
      await tr.sendMail({ from: 'a@customer.example', to: `someone@${domain}`, subject: 'mx', text: 'x' })
      tr.close()
      const until = Date.now() + 20000
      while (!dns.asked.includes(domain)) {
        if (Date.now() > until) throw new Error(`no MX query for ${domain} reached the test DNS server: ${dns.asked.slice(-20).join(' ')}`)
        await sleep(100)
      }
    })

    it('posta ip add checks PTR and HELO through POSTA_RESOLVERS', async () => {
      const r = await posta(['ip', 'add', '198.18.5.5', '--helo', 'mta5.herm.test', '--json'], env)
      assert.equal(r.code, 0, r.stderr)
      assert.ok(dns.asked.includes('5.5.18.198.in-addr.arpa'), dns.asked.slice(-5).join(' '))
      assert.ok(dns.asked.includes('mta5.herm.test'))
      assert.ok(r.json().warnings.length >= 1, 'the test DNS server knows neither name')
    })
  })
})
