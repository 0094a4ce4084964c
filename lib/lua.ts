// Lua scripts are files beside their module (lib/lua/*.lua); compiled JS in dist/lib finds them in the source tree.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type Redis from 'ioredis'

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

/** Defines a script as a command on the client once (EVALSHA with EVAL fallback, as ioredis does). */
export function defineScript(redis: Redis, name: string, numberOfKeys: number): void {
  const r = redis as unknown as Record<string, unknown>
  if (typeof r[name] === 'function') return
  redis.defineCommand(name, { numberOfKeys, lua: loadLua(name) })
}

/** Calls a script defined with defineScript. */
export function runScript<T>(redis: Redis, name: string, numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<T> {
  defineScript(redis, name, numberOfKeys)
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<T>>)[name]
  return fn.call(redis, ...keys, ...args)
}
