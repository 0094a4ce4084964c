// Runs the real `posta` CLI (bin/posta.js) as a child process.
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { PROJECT_ROOT } from '../service/haraka-dir'

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
