// Lua scripts are files beside their module (lib/lua/*.lua); compiled JS in dist/lib finds them in the source tree.
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
  quota_commit: 5,
  quota_reserve: 4,
  quota_state: 3,
  tenant_allowance: 1,
  tenant_create: 2,
  tenant_package: 1,
  tenant_status: 1,
}

/**
 * Defines every script on a new client at once. Defining one lazily on first use breaks under auto-pipelining:
 * a pipeline created before the definition does not know the command ("pipeline[functionName] is not a function").
 */
export function defineScripts<C extends Redis>(redis: C): C {
  for (const [name, numberOfKeys] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys, lua: loadLua(name) })
  return redis
}

/** Calls a script (EVALSHA, with EVAL when Redis does not know it yet, as ioredis does). */
export function runScript<T>(redis: Redis, name: string, numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<T> {
  if (SCRIPTS[name] !== numberOfKeys) throw new Error(`Lua script ${name}: ${numberOfKeys} keys given, SCRIPTS says ${SCRIPTS[name]}`)
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<T>>)[name]
  if (typeof fn !== 'function') throw new Error(`Lua script ${name} is not defined on this client: create clients with lib/redis.ts`)
  return fn.call(redis, ...keys, ...args)
}
