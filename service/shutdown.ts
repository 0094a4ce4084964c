// How long the launcher waits for Haraka to stop before it kills it, from the runtime smtp.ini: Haraka's own
// shutdown takes up to force_shutdown_timeout (one process), or up to 30 s per worker disconnect plus 30 s for its
// exit plus force_shutdown_timeout in cluster mode (nodes, Haraka 3.3.4 server.js _graceful). A margin of 10 s on top.
import { readIni } from '../lib/ini'

export function harakaStopTimeoutMs(smtpIni: string): number {
  const main = readIni(smtpIni).main ?? {}
  const force = Number(main.force_shutdown_timeout) > 0 ? Number(main.force_shutdown_timeout) : 30
  const nodes = main.nodes ?? '0'
  const cluster = nodes === 'cpus' || Number(nodes) > 0
  return ((cluster ? 60 : 0) + force + 10) * 1000
}
