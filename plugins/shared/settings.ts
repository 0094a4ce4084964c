// How a plugin reads its ini: through Haraka's loader (which watches the file), checked against the file's schema
// (lib/inis.ts). At start a refused value is logged (CRIT) and thrown from register(): Haraka does not start
// (config/smtp.ini ignore_bad_plugins=0). On a reload (the file changed under a running Haraka) the previous values
// stay in force and the refusal is logged (ERROR).
import * as dns from 'node:dns'
import { readSettings, SettingsError, type IniSchema, type Refusal, type ReadResult, type Section, type Sections } from '../../lib/config'
import type { Plugin } from './haraka'

export function loadIni<S extends Sections, P extends Section>(plugin: Plugin, schema: IniSchema<S, P>, apply: (r: ReadResult<S, P>) => void): void {
  const load = (reload: boolean) => {
    // No booleans declared to Haraka: it would turn any word that is not "true" into false; the schema reads them.
    const raw = plugin.config.get(schema.file, 'ini', () => load(true))
    let read: ReadResult<S, P>
    try {
      read = readSettings(schema, raw)
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err
      // one line per refused value, its parts as fields: file, section, key, value, allowed
      const fields = ({ text: _text, ...f }: Refusal) => f
      if (!reload) {
        for (const r of err.refusals) plugin.logcrit(plugin, 'bad setting, not starting', fields(r))
        throw new Error(`bad settings in config/${schema.file}: ${err.message}`)
      }
      for (const r of err.refusals) plugin.logerror(plugin, 'bad setting after an edit, the previous settings stay in force', fields(r))
      return
    }
    apply(read)
    if (reload) plugin.lognotice(plugin, `${schema.file} reloaded`)
  }
  load(false)
}

/**
 * Points this process's DNS lookups (Node's default resolver, and haraka-net-utils' own, which get_mx uses) at
 * POSTA_RESOLVERS when it is set; otherwise they stay on the system's resolvers.
 */
export function useServiceResolvers(resolvers: string[]): void {
  if (!resolvers.length) return
  dns.setServers(resolvers)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const netDns: { getDnsResolver(): { setServers(s: string[]): void } } = require('haraka-net-utils/lib/dns_config')
  netDns.getDnsResolver().setServers(resolvers)
}
