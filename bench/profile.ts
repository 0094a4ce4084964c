// `node dist/bench/profile.js <dir> [messages]`: sums the V8 CPU profiles (`.cpuprofile`, from BENCH_PROFILE=<dir>
// npm run bench) found under <dir>, one group per sub-directory (one per configuration), and prints where the CPU went:
// self time per source file and per function, in ms and, given the number of messages each Haraka took (warm-up
// included: BENCH_N + BENCH_WARMUP), in µs per message. Self time only: a function's callees count where they run.
// Files are shortened: the project's own (plugins/, lib/), node_modules/<package>/..., node:internal (Node's own JS),
// and V8's pseudo-nodes ((garbage collector), (program): native work outside JS, (idle)).
import * as fs from 'node:fs'
import * as path from 'node:path'

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber?: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** A file's name as the tables show it. */
export function shortFile(url: string, name: string): string {
  if (!url) return `(${name.replace(/^\(|\)$/g, '') || 'native'})`
  const u = url.replace(/^file:\/\//, '')
  const nm = u.lastIndexOf('/node_modules/')
  if (nm >= 0) return u.slice(nm + '/node_modules/'.length)
  if (u.startsWith('node:')) return u
  const dist = u.indexOf('/dist/')
  if (dist >= 0) return u.slice(dist + '/dist/'.length)
  return path.basename(u)
}

/** Self time in µs per node id, from the samples and their time deltas. */
function selfTimes(p: Profile): Map<number, number> {
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt)
  }
  return self
}

export interface Summary {
  totalMs: number
  idleMs: number
  byFile: Map<string, number>
  byFunction: Map<string, number>
  /** Inclusive time of the project's own files (plugins/, lib/): every sample with one of their frames on its stack. */
  inclusive: Map<string, number>
  /**
   * Each sample charged to the innermost function of the project's own on its stack (what Posta code caused it,
   * Redis client and log calls included), or to "(no Posta frame)": Haraka, Node, GC and callbacks with no Posta
   * frame above them; under a pass-through (PASS_THROUGH) it is charged to Haraka/Node under that wrapper.
   */
  attributed: Map<string, number>
  /** The samples of "(no Posta frame)" by the file of their own function (ioredis replies, Haraka's hooks, GC ...). */
  unowned: Map<string, number>
}

const OWN = /^(plugins|lib|web|service)\//

/**
 * Posta functions that only pass control on to Haraka (guard's next-once, posta-log's log wrapper, the wrappers of
 * accumulate_data, add_data, config.get, Socket.connect, the Redis command timer): what runs under them, without a
 * Posta frame in between, is Haraka's or Node's work, not theirs.
 */
const PASS_THROUGH = new Set(['once', 'wrapped', 'conn.accumulate_data', 'tx.add_data', 'config.get', 'proto.connect', 'r.sendCommand', 'admit'])

export function summarise(profiles: Profile[]): Summary {
  const byFile = new Map<string, number>()
  const byFunction = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const attributed = new Map<string, number>()
  const unowned = new Map<string, number>()
  let total = 0
  let idle = 0
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]))
    const parent = new Map<number, number>()
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
    for (const [id, us] of selfTimes(p)) {
      const n = nodes.get(id)
      if (!n) continue
      const { functionName, url, lineNumber } = n.callFrame
      if (functionName === '(idle)') { idle += us; continue }
      total += us
      const file = shortFile(url, functionName)
      byFile.set(file, (byFile.get(file) ?? 0) + us)
      const fn = `${functionName || '(anonymous)'} ${file}${url ? `:${lineNumber + 1}` : ''}`
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
      const seen = new Set<string>()
      let innermost: string | null = null
      let reentered = false
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = nodes.get(at)!.callFrame
        const own = shortFile(f.url, f.functionName)
        // a plugin's next() runs Haraka's next hooks and replies beneath the plugin's frame: Haraka's work, not the plugin's
        if (!innermost && !reentered && own === 'Haraka/plugins.js' && (f.functionName === 'callback' || f.functionName === 'plugins.run_next_hook')) {
          reentered = true
          innermost = '(no Posta frame)'
        }
        if (!OWN.test(own)) continue
        seen.add(own)
        if (innermost) continue
        if (!f.functionName && f.lineNumber === 0 && !f.columnNumber) innermost = '(start-up: loading the project\'s modules)'
        else if (PASS_THROUGH.has(f.functionName)) innermost = `(Haraka/Node under ${own} ${f.functionName})`
        else innermost = `${own} ${f.functionName || '(anonymous)'}:${f.lineNumber + 1}`
      }
      for (const own of seen) inclusive.set(own, (inclusive.get(own) ?? 0) + us)
      const to = innermost ?? '(no Posta frame)'
      attributed.set(to, (attributed.get(to) ?? 0) + us)
      if (to === '(no Posta frame)') unowned.set(file, (unowned.get(file) ?? 0) + us)
    }
  }
  return { totalMs: total / 1000, idleMs: idle / 1000, byFile, byFunction, inclusive, attributed, unowned }
}

function findProfiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f))
}

function table(map: Map<string, number>, top: number, messages: number): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `  ${(us / 1000).toFixed(0).padStart(8)} ms ${messages > 0 ? `${(us / messages).toFixed(1).padStart(8)} µs/msg` : ''}  ${k}`)
}

function main(): void {
  const dir = process.argv[2]
  const messages = Number(process.argv[3] ?? 0)
  const top = Number(process.env.PROFILE_TOP ?? 30)
  if (!dir || !fs.existsSync(dir)) {
    console.error('usage: node dist/bench/profile.js <BENCH_PROFILE dir> [messages per Haraka run]')
    process.exit(2)
  }
  const groups = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)
  if (groups.length === 0) groups.push('.')
  const json: Record<string, unknown> = {}
  for (const g of groups) {
    const files = findProfiles(path.join(dir, g))
    if (files.length === 0) continue
    const profiles = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Profile)
    const s = summarise(profiles)
    const perRun = messages > 0 ? messages * files.length : 0
    console.log(`\n== ${g}: ${files.length} profile(s), ${s.totalMs.toFixed(0)} ms busy, ${s.idleMs.toFixed(0)} ms idle` +
      (perRun ? `, ${((s.totalMs * 1000) / perRun).toFixed(0)} µs busy per message` : ''))
    console.log(' self time by file:')
    for (const l of table(s.byFile, top, perRun)) console.log(l)
    console.log(' inclusive time of the project\'s files (synchronous stacks only: an awaited callback counts where it resumes):')
    for (const l of table(s.inclusive, top, perRun)) console.log(l)
    console.log(' charged to the innermost Posta function on the stack (its Redis and log calls included):')
    for (const l of table(s.attributed, top, perRun)) console.log(l)
    console.log(' of "(no Posta frame)", self time by file:')
    for (const l of table(s.unowned, top, perRun)) console.log(l)
    console.log(' self time by function:')
    for (const l of table(s.byFunction, top, perRun)) console.log(l)
    json[g] = {
      profiles: files.length,
      busy_ms: s.totalMs,
      attributed_us_per_msg: perRun ? Object.fromEntries([...s.attributed].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, v / perRun])) : undefined,
      inclusive_us_per_msg: perRun ? Object.fromEntries([...s.inclusive].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / perRun])) : undefined,
      by_file_us_per_msg: perRun ? Object.fromEntries([...s.byFile].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, v / perRun])) : undefined,
    }
  }
  console.log(JSON.stringify(json))
}

if (require.main === module) main()
