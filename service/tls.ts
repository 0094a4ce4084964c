// A self-signed certificate for first start, made with the system's openssl (present on every Debian).
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Settings } from '../lib/settings'

export function ensureSelfSigned(dir: string, commonName: string): { key: string; cert: string } {
  const key = path.join(dir, 'key.pem')
  const cert = path.join(dir, 'cert.pem')
  if (fs.existsSync(key) && fs.existsSync(cert)) return { key, cert }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '825',
      '-subj', `/CN=${commonName}`,
      '-addext', `subjectAltName=DNS:${commonName},DNS:*.${commonName}`,
      '-keyout', key, '-out', cert,
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    throw new Error(`could not create a self-signed certificate with openssl (install it: apt-get install openssl): ${(err as Error).message}`)
  }
  fs.chmodSync(key, 0o600)
  return { key, cert }
}

/** The certificate a node serves: POSTA_TLS_KEY/POSTA_TLS_CERT, else the self-signed pair in the data dir. */
export function serviceCertificate(s: Pick<Settings, 'tls' | 'dataDir' | 'serviceDomain'>): { key: string; cert: string } {
  return s.tls ?? ensureSelfSigned(path.join(s.dataDir, 'tls'), s.serviceDomain)
}
