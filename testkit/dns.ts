// A real DNS server on loopback (dns2) serving blocklist zones that tests change while the monitor runs:
// listings (A + TXT), error answers, timeouts (no answer), SERVFAIL, and zones whose canary fails; and TXT records
// at any name (sender domains: verification tokens, SPF, DKIM, DMARC), a value longer than 255 bytes sent as several
// character-strings like a real zone.
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const dns2 = createRequire(__filename)('dns2')
const { Packet } = dns2

export type Answer = { a: string[]; txt?: string } | 'timeout' | 'servfail'

export interface TestDns {
  /** host:port for resolvers= */
  server: string
  port: number
  /** Sets what a query for `<reversed ip>.<zone>` answers; undefined = NXDOMAIN. */
  set(zone: string, ip: string, answer: Answer | undefined): void
  /** Sets the TXT records at a name (each value one record); an empty list = the name exists without TXT (NODATA);
   *  undefined = NXDOMAIN; 'timeout' and 'servfail' as for set(). */
  setTxt(name: string, records: string[] | 'timeout' | 'servfail' | undefined): void
  /** Breaks a zone's canary (127.0.0.2 not listed) or mends it. */
  breakCanary(zone: string, broken: boolean): void
  queries: number
  /** Every name asked, lower case, in order (a test checks who asked what). */
  asked: string[]
  close(): Promise<void>
}

function reverse(ip: string): string {
  if (ip.includes(':')) {
    const [head, tail = ''] = ip.split('::')
    const h = head ? head.split(':') : []
    const t = tail ? tail.split(':') : []
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
    return groups.map((g) => g.padStart(4, '0')).join('').toLowerCase().split('').reverse().join('.')
  }
  return ip.split('.').reverse().join('.')
}

/** A TXT value as character-strings of at most 255 bytes (RFC 1035 3.3.14), as a zone file splits a long DKIM key. */
function chunks(value: string): Buffer[] {
  const b = Buffer.from(value, 'utf8')
  const out: Buffer[] = []
  for (let i = 0; i < b.length; i += 255) out.push(b.subarray(i, i + 255))
  return out.length ? out : [Buffer.alloc(0)]
}

/** latencyMs delays every answer (a resolver's cache misses), for benchmarks. */
export async function startDns(opts: { latencyMs?: number } = {}): Promise<TestDns> {
  const answers = new Map<string, Answer>()
  const txts = new Map<string, string[] | 'timeout' | 'servfail'>()
  const broken = new Set<string>()
  const t = { queries: 0, asked: [] as string[] } as TestDns
  const server = dns2.createServer({
    udp: true,
    handle: (request: any, reply: (r: any) => void) => {
      t.queries++
      const send = (r: any) => (opts.latencyMs ? setTimeout(() => reply(r), opts.latencyMs) : reply(r))
      const response = Packet.createResponseFromRequest(request)
      const [q] = request.questions
      const name = String(q.name).toLowerCase()
      if (t.asked.length < 100_000) t.asked.push(name)
      const txt = txts.get(name)
      if (txt !== undefined) {
        if (txt === 'timeout') return
        if (txt === 'servfail') response.header.rcode = 2
        else if (q.type === Packet.TYPE.TXT) {
          for (const v of txt) response.answers.push({ name: q.name, type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 1, data: chunks(v) })
        }
        return send(response)
      }
      let a = answers.get(name)
      // canaries: every zone lists 127.0.0.2 unless broken; 127.0.0.1 is never listed
      if (a === undefined && name.startsWith('2.0.0.127.') && !broken.has(name.slice('2.0.0.127.'.length))) a = { a: ['127.0.0.2'], txt: 'canary' }
      if (a === 'timeout') return // no answer: the client times out
      if (a === 'servfail') {
        response.header.rcode = 2
        return send(response)
      }
      if (!a) {
        response.header.rcode = 3 // NXDOMAIN
        return send(response)
      }
      if (q.type === Packet.TYPE.A) {
        for (const address of a.a) response.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 1, address })
      } else if (q.type === Packet.TYPE.TXT && a.txt) {
        response.answers.push({ name: q.name, type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 1, data: a.txt })
      }
      send(response)
    },
  })
  await server.listen({ udp: { port: 0, address: '127.0.0.1' } })
  const port = (server.addresses().udp as AddressInfo).port
  t.port = port
  t.server = `127.0.0.1:${port}`
  t.set = (zone, ip, answer) => {
    const key = `${reverse(ip)}.${zone}`.toLowerCase()
    if (answer === undefined) answers.delete(key)
    else answers.set(key, answer)
  }
  t.setTxt = (name, records) => {
    const key = name.toLowerCase().replace(/\.$/, '')
    if (records === undefined) txts.delete(key)
    else txts.set(key, records)
  }
  t.breakCanary = (zone, b) => (b ? broken.add(zone) : broken.delete(zone))
  t.close = () => server.close()
  return t
}
