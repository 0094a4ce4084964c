// lib/tenants.ts tenantStatus(): the one reader of a tenant's status (real Redis), and no plugin or CLI command
// reads the status field by itself.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { banTenant } from '../lib/bans'
import { keys } from '../lib/keys'
import { setPackage } from '../lib/packages'
import { loadSettings } from '../lib/settings'
import { createTenant, setTenantStatus, tenantStatus } from '../lib/tenants'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { uniqueName, useTestRedis } from '../testkit/redis'

describe('tenantStatus (real Redis)', () => {
  const db = useTestRedis()

  it('active, suspended, closed, and null for no such tenant; an unknown value fails closed', async () => {
    const redis = db.client
    const settings = loadSettings({ POSTA_SERVICE_DOMAIN: 'posta.example', REDIS_URL: db.redis.url })
    const pkg = uniqueName('pkg')
    await setPackage(redis, pkg, 1e9)
    const slug = uniqueName('st')
    await createTenant(redis, settings, { slug, package: pkg, contact: 'ops@example.net' })
    assert.equal(await tenantStatus(redis, slug), 'active')
    await setTenantStatus(redis, slug, 'suspended')
    assert.equal(await tenantStatus(redis, slug), 'suspended')
    await banTenant(redis, slug, 'test', 'test', {}, { freemail: null, senderDomains: false })
    assert.equal(await tenantStatus(redis, slug), 'closed')
    assert.equal(await tenantStatus(redis, uniqueName('nobody')), null)
    await redis.hset(keys.tenant(slug), 'status', 'weird')
    assert.equal(await tenantStatus(redis, slug), 'suspended')
  })

  it('plugins, the CLI and the panel read the status only through lib/tenants.ts', () => {
    const offenders: string[] = []
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name)
        if (e.isDirectory()) walk(p)
        else if (p.endsWith('.ts') || p.endsWith('.tsx')) {
          const src = fs.readFileSync(p, 'utf8')
          if (/hm?get\(\s*keys\.tenant\([^)]*\)\s*,[^)]*'status'/.test(src)) offenders.push(path.relative(PROJECT_ROOT, p))
        }
      }
    }
    for (const d of ['plugins', 'cli', 'web']) walk(path.join(PROJECT_ROOT, d))
    assert.deepEqual(offenders, [])
  })
})
