// posta-dkim: readies haraka-plugin-dkim (listed after it in config/plugins) to sign a tenant's message with the key
// of the right domain, and keeps it from signing anything else (docs/dkim.md).
// The keys live in Redis (lib/dkim.ts), shared by every node. haraka-plugin-dkim reads a domain's key from
// config/dkim/<domain>/{selector,private} of the Haraka directory and signs with d= that directory's name (the From:
// host or its nearest parent that has one); it takes no key from notes or a hook. So, at queue_outbound, before it:
//   the From: host (found the way haraka-plugin-dkim finds it) -> the signing domain (lib/dkim.ts signingDomain)
//   -> its active key (cached for KEY_CACHE_MS) -> written to config/dkim/<domain>/ (0600 files in 0700
//   directories, readable by the service user only) when the files differ, and Haraka's config cache refreshed
//   at once, so haraka-plugin-dkim never reads a selector and a key that do not belong together.
// Mail that must not be signed (no tenant, a domain that is not the tenant's, no key) is marked so that
// haraka-plugin-dkim skips it. Any failure here: logged, the message goes unsigned; never a refusal.
// A domain in use also has its pending rotation looked up at most once per ROTATION_CHECK_MS (lib/dkim.ts
// advanceRotation), in the background: a rotation switches once its new record is in DNS.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { RedisClient as Redis } from '../../lib/redis'
import { domainAndParents } from '../../lib/addresses'
import { advanceRotation, createDomainKey, signingDomain, signingKey, type SigningKey } from '../../lib/dkim'
import { makeResolver } from '../../lib/dnsbl'
import { isDkimSettled, keepUnsigned, tenantOf } from '../../lib/submission'
import { isDomain } from '../../lib/validate'
import { debugOn, getRedis, getSettings, messageFields, type Connection, type Next, type Plugin } from '../shared/haraka'
import { transactionContext } from '../shared/sender'

/** How long a node signs with a key it read before reading it again (a switch elsewhere reaches it this late; both
 *  records are published then, so either verifies). */
const KEY_CACHE_MS = 10_000
/** How often a node looks up the pending record of a domain it signs for. */
const ROTATION_CHECK_MS = 60_000

// eslint-disable-next-line @typescript-eslint/no-require-imports
const stock: { get_sender_domain(this: unknown, c: Connection): string | undefined } = require('haraka-plugin-dkim')
// Haraka's config module and its one cache (the same instance Haraka hands haraka-plugin-dkim).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const harakaConfig: { module_config(defaults: string, overrides?: string): { get(name: string, type: string): string[] } } = require('haraka-config')
// eslint-disable-next-line @typescript-eslint/no-require-imports
const configReader: { load_config(name: string, type: string): unknown } = require('haraka-config/lib/reader')
const STOCK_DIR = path.dirname(require.resolve('haraka-plugin-dkim/package.json'))

const keyCache = new Map<string, { key: SigningKey | null; at: number }>()
const lastRotationCheck = new Map<string, number>()

export function register(this: Plugin) {
  // Before haraka-plugin-dkim's queue_outbound hook (priority 0) and posta-quota's hand-off (100).
  this.register_hook('queue_outbound', 'ready_signing', -10)
}

export { hook_init_child, hook_init_master } from '../shared/init'

function harakaDir(): string {
  return path.resolve(process.env.HARAKA || '.')
}

/** config/dkim of this node's Haraka directory, where haraka-plugin-dkim looks for keys. */
function keyRoot(): string {
  return path.join(harakaDir(), 'config', 'dkim')
}

/** What haraka-plugin-dkim reads for a domain now, through Haraka's config cache. */
function stockView(domain: string): { selector: string; privateKeyPem: string } {
  const cfg = harakaConfig.module_config(STOCK_DIR, harakaDir())
  return {
    selector: cfg.get(path.join('dkim', domain, 'selector'), 'data').join('\n').trim(),
    privateKeyPem: cfg.get(path.join('dkim', domain, 'private'), 'data').join('\n'),
  }
}

function writeAtomically(file: string, text: string) {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  fs.writeFileSync(tmp, text, { mode: 0o600 })
  fs.renameSync(tmp, file)
}

/**
 * Makes haraka-plugin-dkim see exactly this key for the domain: the files written when they differ, Haraka's cached
 * copy of both read again at once (its own reload comes 5 s after a change, file by file). Throws when it cannot.
 */
function readyStockKey(key: SigningKey) {
  const pem = key.privateKeyPem.trim()
  const same = (v: { selector: string; privateKeyPem: string }) => v.selector === key.selector && v.privateKeyPem.trim() === pem
  if (same(stockView(key.domain))) return
  const dir = path.join(keyRoot(), key.domain)
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  fs.chmodSync(keyRoot(), 0o700)
  fs.chmodSync(dir, 0o700)
  writeAtomically(path.join(dir, 'private'), `${pem}\n`)
  writeAtomically(path.join(dir, 'selector'), `${key.selector}\n`)
  for (const f of ['private', 'selector']) configReader.load_config(path.join(dir, f), 'data')
  if (!same(stockView(key.domain))) throw new Error(`the key files of ${key.domain} do not read back as written`)
}

/** Removes key directories haraka-plugin-dkim would pick before the signing domain's (left by a removed domain). */
function removeNearerDirs(host: string, domain: string) {
  for (const d of domainAndParents(host)) {
    if (d === domain) return
    const dir = path.join(keyRoot(), d)
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function cachedKey(redis: Redis, domain: string, now: number): Promise<SigningKey | null> {
  const hit = keyCache.get(domain)
  if (hit && now - hit.at < KEY_CACHE_MS) return hit.key
  const key = await signingKey(redis, domain)
  keyCache.set(domain, { key, at: now })
  return key
}

function checkRotationSoon(plugin: Plugin, redis: Redis, domain: string, now: number) {
  if (now - (lastRotationCheck.get(domain) ?? 0) < ROTATION_CHECK_MS) return
  lastRotationCheck.set(domain, now)
  const settings = getSettings()
  advanceRotation(redis, domain, makeResolver(settings.resolvers, 2000)).then((r) => {
    if (!r.switched) return
    keyCache.delete(domain)
    plugin.lognotice(plugin, 'dkim key switched: the new record is in DNS', { domain, from: r.switched.from, selector: r.switched.to })
  }, (err: Error) => plugin.logwarn(plugin, 'dkim rotation check failed', { domain, error: err.message }))
}

export function ready_signing(this: Plugin, next: Next, connection: Connection) {
  const tx = connection.transaction
  if (!tx || isDkimSettled(tx.notes)) return next()
  const tenant = tenantOf(tx.notes)
  if (!tenant) {
    keepUnsigned(tx.notes)
    return next()
  }
  ready.call(this, connection, tenant).then(
    () => next(),
    (err: Error) => {
      // never a refusal and never a half-readied key: the message goes, unsigned
      if (connection.transaction) keepUnsigned(connection.transaction.notes)
      connection.logerror(this, 'dkim signing skipped: the key could not be readied', { ...messageFields(connection), error: err.message })
      next()
    },
  )
}

async function ready(this: Plugin, connection: Connection, tenant: string): Promise<void> {
  const tx = connection.transaction!
  const redis = getRedis(this)
  const { serviceDomain } = getSettings()
  const found = stock.get_sender_domain.call(stock, connection)
  const host = found && isDomain(found) ? found : undefined
  const domain = host ? signingDomain(host, tenant, serviceDomain, (await transactionContext(redis, tx, tenant)).verified) : null
  if (!host || !domain) {
    keepUnsigned(tx.notes)
    connection.logdebug(this, 'dkim: not signed, the sender domain is not the tenant\'s', { ...messageFields(connection), from_domain: host ?? '-' })
    return
  }
  const now = Date.now()
  let key = await cachedKey(redis, domain, now)
  if (!key && domain === serviceDomain) {
    // the service's own key for its zone: made on first use (docs/dkim.md has its record)
    const made = await createDomainKey(redis, serviceDomain)
    if (made.created) this.lognotice(this, 'dkim key made for the service domain: publish its record', { domain, selector: made.selector, record: made.record.name })
    keyCache.delete(domain)
    key = await cachedKey(redis, domain, now)
  }
  if (!key) {
    keepUnsigned(tx.notes)
    connection.lognotice(this, 'dkim: not signed, the domain has no key', { ...messageFields(connection), domain })
    return
  }
  removeNearerDirs(host, domain)
  readyStockKey(key)
  checkRotationSoon(this, redis, domain, now)
  if (debugOn()) connection.logdebug(this, 'dkim key readied', { ...messageFields(connection), domain, selector: key.selector })
}
