// `posta`: the operator's command line, a thin adapter over the domain core in lib/.
// Each file in cli/commands/ holds the verbs of one subject.
import { parseArgs } from 'node:util'
import { InputError } from '../lib/errors'
import { connectTool, describeRedisUrl } from '../lib/redis'
import { loadSettings, withPublished } from '../lib/settings'
import { commands as dkimCommands } from './commands/dkim'
import { commands as domainCommands } from './commands/domains'
import { commands as monitorCommands } from './commands/monitor'
import { commands as operatorCommands } from './commands/operators'
import { commands as packageCommands } from './commands/packages'
import { commands as poolCommands } from './commands/pool'
import { commands as routeCommands } from './commands/routes'
import { commands as tenantCommands } from './commands/tenants'
import { commands as trapCommands } from './commands/traps'
import type { Command } from './util'

const commands: Record<string, Command> = { ...packageCommands, ...tenantCommands, ...poolCommands, ...monitorCommands, ...trapCommands, ...routeCommands, ...operatorCommands, ...domainCommands, ...dkimCommands }

function helpAll(): string {
  const rows = Object.values(commands).map((c) => [c.usage, c.summary])
  return [
    'posta: operate a Posta relay',
    '',
    ...rows.map(([u, s]) => `  ${u}\n      ${s}`),
    '',
    'Every command takes --json (machine-readable output) and --help.',
    'Redis: REDIS_URL when set, otherwise the embedded Redis of `npm start` (POSTA_DATA_DIR, default ./var).',
  ].join('\n')
}

function helpOne(c: Command): string {
  const opts = Object.entries(c.options ?? {}).map(([k, o]) => `  --${k}${o.type === 'string' ? ' <value>' : ''}  ${o.help}`)
  return [`usage: ${c.usage}`, '', c.summary, '', 'options:', ...opts, '  --json  machine-readable output', '  --help  this text'].join('\n')
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  const positional = argv.filter((a) => !a.startsWith('-'))
  const name = [positional.slice(0, 2).join(' '), positional[0]].find((k) => k !== undefined && k in commands)
  const wantsHelp = argv.includes('--help') || argv.includes('-h')
  if (!name) {
    if (argv.length === 0 || wantsHelp || argv[0] === 'help') {
      out(helpAll())
      return argv.length === 0 ? 1 : 0
    }
    throw new InputError(`unknown command "${argv.filter((a) => !a.startsWith('-')).slice(0, 2).join(' ')}": see "posta --help"`)
  }
  const cmd = commands[name]
  if (wantsHelp) {
    out(helpOne(cmd))
    return 0
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = { json: { type: 'boolean' } }
  for (const [k, o] of Object.entries(cmd.options ?? {})) options[k] = { type: o.type }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new InputError(`${(err as Error).message.split('\n')[0]} (see "${cmd.usage.split(' ').slice(0, 3).join(' ')} --help")`)
  }
  const args = parsed.positionals.slice(name.split(' ').length)
  if (args.length !== cmd.args) throw new InputError(`expected ${cmd.args} argument${cmd.args === 1 ? '' : 's'}: ${cmd.usage}`)

  const settings = loadSettings()
  const redis = connectTool(settings.redisUrl)
  let lastError: Error | undefined
  redis.on('error', (err: Error) => (lastError = err)) // reported by the failing command below
  try {
    try {
      await redis.connect()
    } catch (err) {
      // connect() rejects with a bare "Connection is closed."; the error event has the cause (ECONNREFUSED, ENOENT...)
      const cause = (lastError ?? (err as Error)).message
      throw new Error(`cannot reach Redis at ${describeRedisUrl(settings.redisUrl)} (${cause}): is "npm start" running, or REDIS_URL set?`)
    }
    // a command may return its exit status (a check that found something to change: 1); otherwise 0
    const status = await cmd.run({ redis, settings: await withPublished(redis, settings), args, opts: parsed.values, json: Boolean(parsed.values.json), out })
    return typeof status === 'number' ? status : 0
  } finally {
    redis.disconnect()
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`posta: ${err.message}\n`)
      process.exit(err instanceof InputError ? 2 : 1)
    },
  )
}
