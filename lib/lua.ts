// Lua scripts are files beside their module (lib/lua/*.lua); compiled JS in dist/lib finds them in the source tree.
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { RedisClient as Redis } from './redis'

const cache = new Map<string, string>()

export function loadLua(name: string): string {
  let src = cache.get(name)
  if (src !== undefined) return src
  const candidates = [path.join(__dirname, 'lua', `${name}.lua`), path.resolve(__dirname, '..', '..', 'lib', 'lua', `${name}.lua`)]
  const file = candidates.find((f) => fs.existsSync(f))
  if (!file) throw new Error(`Lua script ${name}.lua not found (looked in ${candidates.join(', ')})`)
  src = fs.readFileSync(file, 'utf8')
  cache.set(name, src)
  return src
}

/** Every script and its number of KEYS. Helper-6-style additions: add the file and a line here. */
export const SCRIPTS: Record<string, number> = {
  attempt_begin: 1,
  attempt_end: 3,
  attempt_login: 3,
  attempt_uncount: 1,
  dkim_key: 1,
  domain_claim: 3,
  domain_remove: 3,
  ledger_deferred: 2,
  ledger_ip: 1,
  ledger_tenant: 3,
  operator_password: 1,
  pool_add: 2,
  pool_remove: 2,
  quota_commit: 5,
  quota_reserve: 4,
  quota_state: 3,
  tenant_allowance: 1,
  tenant_create: 2,
  tenant_package: 1,
  tenant_status: 1,
}

/** Each script's SHA-1, as Redis names it in EVALSHA. */
const shas = new Map<string, string>()
function shaOf(name: string): string {
  let sha = shas.get(name)
  if (!sha) shas.set(name, (sha = createHash('sha1').update(loadLua(name)).digest('hex')))
  return sha
}

/**
 * Calls a script: EVALSHA, and EVAL (which also loads it) when Redis answers NOSCRIPT (a restarted server, a failover,
 * a Cluster node that never ran it). Plain commands, not ioredis' defineCommand: a client with custom commands copies
 * every one of them into each pipeline it makes, and the hot path's auto-pipelining makes one per event-loop tick
 * (18 scripts: three property writes each, several times per message). It also cannot break as a script defined
 * after a pipeline was made did ("pipeline[functionName] is not a function", docs/benchmarks.md finding 1).
 */
export async function runScript<T>(redis: Redis, name: string, numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<T> {
  if (SCRIPTS[name] !== numberOfKeys) throw new Error(`Lua script ${name}: ${numberOfKeys} keys given, SCRIPTS says ${SCRIPTS[name]}`)
  if (keys.length !== numberOfKeys) throw new Error(`Lua script ${name}: ${keys.length} keys passed, it takes ${numberOfKeys}`)
  try {
    return (await redis.evalsha(shaOf(name), numberOfKeys, ...keys, ...args)) as T
  } catch (err) {
    if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err
    return (await redis.eval(loadLua(name), numberOfKeys, ...keys, ...args)) as T
  }
}
