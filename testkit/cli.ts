// Runs the real `posta` CLI (bin/posta.js) as a child process.
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { uniqueName } from './redis'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  json<T = any>(): T
}

export function posta(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // the CLI's DNS lookups (posta ip add, monitor run) never leave loopback (testkit/haraka.ts TEST_RESOLVERS)
    const e: NodeJS.ProcessEnv = { ...process.env, POSTA_RESOLVERS: '127.0.0.1:9', ...env }
    delete e.NODE_OPTIONS
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'posta.js'), ...args], { env: e, cwd: PROJECT_ROOT })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) =>
      resolve({ code: code ?? -1, stdout, stderr, json: () => JSON.parse(stdout) }),
    )
  })
}

/** What `posta tenant create --json` prints: the tenant, its login and password, and the host to send through. */
export interface CliTenant { tenant: string; login: string; password: string; smtp_host: string }

/**
 * A fresh tenant made as an operator would, with the CLI: a package of its own (`traffic`, default 1GB) and a
 * contact at example.net. Throws with the CLI's output when either command fails.
 */
export async function cliTenant(env: Record<string, string>, traffic = '1GB'): Promise<CliTenant> {
  const pkg = uniqueName('pkg')
  const p = await posta(['package', 'set', pkg, '--traffic', traffic], env)
  if (p.code !== 0) throw new Error(`posta package set failed (${p.code}): ${p.stderr || p.stdout}`)
  const r = await posta(['tenant', 'create', uniqueName('t'), '--package', pkg, '--contact', 'ops@example.net', '--json'], env)
  if (r.code !== 0) throw new Error(`posta tenant create failed (${r.code}): ${r.stderr || r.stdout}`)
  return r.json<CliTenant>()
}
