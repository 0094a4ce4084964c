// The module graph of lib/, plugins/, cli/, web/ and service/ has no import cycle (a cycle makes a module's exports
// undefined at load time depending on who is imported first: bans <-> tenants was one).
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { PROJECT_ROOT } from '../service/haraka-dir'

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return sources(p)
    return e.name.endsWith('.ts') || e.name.endsWith('.tsx') ? [p] : []
  })
}

/** Relative imports of a file that are values (an `import type` is erased and cannot cycle at run time). */
function imports(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of src.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gm)) {
    const base = path.resolve(path.dirname(file), m[1])
    const hit = [`${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f))
    if (hit) out.push(hit)
  }
  return out
}

describe('imports', () => {
  it('no import cycle among the project\'s modules', () => {
    const files = ['lib', 'plugins', 'cli', 'web', 'service'].flatMap((d) => sources(path.join(PROJECT_ROOT, d)))
    const graph = new Map(files.map((f) => [f, imports(f)]))
    const state = new Map<string, 'open' | 'done'>()
    const cycles: string[] = []
    const visit = (f: string, trail: string[]) => {
      if (state.get(f) === 'done') return
      if (state.get(f) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(f)), f].map((x) => path.relative(PROJECT_ROOT, x)).join(' -> '))
        return
      }
      state.set(f, 'open')
      for (const g of graph.get(f) ?? []) visit(g, [...trail, f])
      state.set(f, 'done')
    }
    for (const f of files) visit(f, [])
    assert.deepEqual(cycles, [])
  })

  it('the check sees a cycle when there is one', () => {
    // lib/bans.ts once imported lib/tenants.ts, which imports lib/bans.ts: the parser finds both edges
    assert.ok(imports(path.join(PROJECT_ROOT, 'lib', 'tenants.ts')).some((f) => f.endsWith(path.join('lib', 'bans.ts'))))
    assert.ok(!imports(path.join(PROJECT_ROOT, 'lib', 'bans.ts')).some((f) => f.endsWith(path.join('lib', 'tenants.ts'))))
  })
})
