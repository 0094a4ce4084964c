// The one ini reader (lib/config.ts) and the schemas of the shipped inis (lib/inis.ts): every bad value of every key
// is refused with a sentence naming file, section, key, value and what is allowed; the shipped files hold every key
// with its default and a comment; values as Haraka's loader hands them (numbers) are read the same; the plugins'
// reload keeps the previous values when an edit is refused.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { boolean, defaults, integer, list, readSettings, SettingsError, type IniSchema } from '../lib/config'
import { readIni } from '../lib/ini'
import { checkConfigDir, readConfigFile, SHIPPED_INIS } from '../lib/inis'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { loadIni } from '../plugins/shared/settings'
import type { Plugin } from '../plugins/shared/haraka'

const CONFIG = path.join(PROJECT_ROOT, 'config')

function refusal(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof SettingsError) return err.problems
    throw err
  }
  return []
}

describe('config: the schemas of the shipped inis', () => {
  for (const schema of SHIPPED_INIS) {
    const file = path.join(CONFIG, schema.file)

    it(`${schema.file}: the shipped file holds every key, with its default and a comment`, () => {
      const text = fs.readFileSync(file, 'utf8')
      const ini = readIni(file)
      for (const [section, keys] of Object.entries(schema.sections)) {
        for (const [key, setting] of Object.entries(keys)) {
          const raw = ini[section]?.[key]
          assert.notEqual(raw, undefined, `${schema.file} [${section}] has no ${key}= line`)
          assert.deepEqual(setting.parse(raw), setting.default, `${schema.file} [${section}] ${key}=${raw} is not the default ${JSON.stringify(setting.default)}`)
        }
      }
      // a comment in the block (since the last blank line or section header) of every key line; the sections of
      // data (the monitor's [zone <name>]) are explained once at their head
      let commented = false
      let section = 'main'
      for (const line of text.split('\n')) {
        const l = line.trim()
        const head = /^\[\s*(.+?)\s*\]$/.exec(l)
        if (head) section = head[1]
        if (l === '' || head) commented = false
        else if (l.startsWith(';') || l.startsWith('#')) commented = true
        else if (section in schema.sections) assert.ok(commented, `${schema.file}: "${l}" has no comment above it`)
      }
    })

    it(`${schema.file}: the shipped file is read without a refusal, as all defaults`, () => {
      const r = readConfigFile(CONFIG, schema as IniSchema)
      assert.deepEqual(r.values, defaults(schema))
    })

    for (const [section, keys] of Object.entries(schema.sections)) {
      for (const [key, setting] of Object.entries(keys)) {
        it(`${schema.file} [${section}] ${key}: refuses ${setting.bad.map((b) => JSON.stringify(b)).join(' ')}`, () => {
          assert.ok(setting.bad.length >= 2, 'at least two bad values to try')
          for (const bad of setting.bad) {
            const problems = refusal(() => readSettings(schema, { [section]: { [key]: bad } }))
            const shown = bad === '' ? '(empty)' : bad
            assert.deepEqual(problems, [`${schema.file} [${section}] ${key}=${shown} is refused: allowed is ${setting.allowed}`], `${key}=${bad}`)
          }
          // the default, written out, is accepted
          const written = Array.isArray(setting.default) ? setting.default.join(',') : String(setting.default)
          assert.deepEqual(readSettings(schema, { [section]: { [key]: written } }).values[section][key], setting.default)
        })
      }
    }
  }

  it('the examples of the issue are refused, each naming file, key, value and range', () => {
    const cases: [string, string, string, string][] = [
      ['posta-outbound.ini', 'rotation', 'sticky_days', '0'],
      ['posta-quota.ini', 'main', 'reservation_seconds', '0'],
      ['posta-outbound.ini', 'ledger', 'hourly_days', '0'],
      ['posta-outbound.ini', 'rotation', 'slot_minutes', '0'],
      ['posta-outbound.ini', 'rotation', 'active', '0'],
      ['posta-quota.ini', 'warnings', 'thresholds', 'abc'],
    ]
    for (const [file, section, key, value] of cases) {
      const schema = SHIPPED_INIS.find((s) => s.file === file)!
      const [p] = refusal(() => readSettings(schema, { [section]: { [key]: value } }))
      assert.match(p, new RegExp(`^${file.replace('.', '\\.')} \\[${section}\\] ${key}=${value} is refused: allowed is .*\\d`), p)
    }
  })

  it('values as Haraka hands them (numbers, booleans) are read like the text', () => {
    const outbound = SHIPPED_INIS.find((s) => s.file === 'posta-outbound.ini')!
    assert.equal((readSettings(outbound, { rotation: { active: 0.25, sticky_days: 3 } }).values.rotation as Record<string, unknown>).active, 0.25)
    assert.deepEqual(refusal(() => readSettings(outbound, { rotation: { sticky_days: 0 } })), ['posta-outbound.ini [rotation] sticky_days=0 is refused: allowed is an integer from 1 to 365 days'])
    const trap = SHIPPED_INIS.find((s) => s.file === 'posta-trap.ini')!
    assert.equal((readSettings(trap, { bans: { sender_domains: true } }).values.bans as Record<string, unknown>).sender_domains, true)
    assert.equal((readSettings(trap, { bans: { sender_domains: 'off' } }).values.bans as Record<string, unknown>).sender_domains, false)
  })

  it('a key or a section the schema does not know is refused (a typo would leave the default in force silently)', () => {
    const outbound = SHIPPED_INIS.find((s) => s.file === 'posta-outbound.ini')!
    const p = refusal(() => readSettings(outbound, { main: {}, rotation: { stiky_days: '3' }, ledgers: { raw_days: '3' } }))
    assert.deepEqual(p, [
      'posta-outbound.ini [rotation] stiky_days is not a setting of this file (known: slot_minutes, active, wait_seconds, sticky_days)',
      'posta-outbound.ini [ledgers] is not a section of this file (known: [rotation], [ledger])',
    ])
    // zone sections of the monitor are known by their prefix, and their keys are checked
    const monitor = SHIPPED_INIS.find((s) => s.file === 'posta-monitor.ini')!
    const z = readSettings(monitor, { 'zone a.test': { listed: '127.0.0.2:A', ipv6: 'true' } })
    assert.deepEqual(z.prefixed['a.test'], { listed: ['127.0.0.2:A'], errors: [], informational: [], informational_zone: false, ipv6: true })
    assert.deepEqual(refusal(() => readSettings(monitor, { 'zone a.test': { ipv6: 'maybe' } })), ['posta-monitor.ini [zone a.test] ipv6=maybe is refused: allowed is true or false'])
  })

  it('every refused value of a file is named at once, and nothing is half-applied', () => {
    const quota = SHIPPED_INIS.find((s) => s.file === 'posta-quota.ini')!
    const p = refusal(() => readSettings(quota, { main: { reservation_seconds: '0', retention_days: '-3' }, warnings: { enabled: 'yes', thresholds: '80,abc' } }))
    assert.equal(p.length, 3, p.join('\n'))
    assert.match(p[2], /thresholds=80,abc is refused/)
  })

  it('checkConfigDir (what npm start runs) lists every refusal of a config directory, and none for the shipped one', () => {
    assert.deepEqual(checkConfigDir(CONFIG), [])
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'posta-config-'))
    try {
      fs.cpSync(CONFIG, dir, { recursive: true })
      const f = path.join(dir, 'posta-outbound.ini')
      fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(/^sticky_days=.*$/m, 'sticky_days=0'))
      const q = path.join(dir, 'posta-auth.ini')
      fs.writeFileSync(q, fs.readFileSync(q, 'utf8').replace(/^ip_max=.*$/m, 'ip_max=ten'))
      assert.deepEqual(checkConfigDir(dir), [
        'posta-auth.ini [main] ip_max=ten is refused: allowed is an integer from 1 to 1000000',
        'posta-outbound.ini [rotation] sticky_days=0 is refused: allowed is an integer from 1 to 365 days',
      ])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('config: kinds', () => {
  it('integer, boolean and list say what they allow', () => {
    assert.equal(integer(1, 1, 10, 'days').allowed, 'an integer from 1 to 10 days')
    assert.equal(integer(1, 0, Infinity).allowed, 'an integer from 0 up')
    assert.equal(list([1], integer(1, 1, 5), { min: 1, what: 'counts' }).allowed, 'a comma-separated list of at least 1 counts, each an integer from 1 to 5')
    assert.equal(boolean(true).parse('Yes'), true)
    assert.equal(integer(1, 1, 10).parse(' 7 '), 7)
    assert.equal(integer(1, 1, 10).parse('07'), 7)
    assert.equal(integer(1, 1, Infinity).parse('99999999999999999999'), undefined, 'past the safe integers')
  })
})

describe('config: a plugin\'s reload (plugins/shared/settings.ts loadIni)', () => {
  /** A plugin object as Haraka makes it: config.get returns the parsed file and remembers the watch callback. */
  function fakePlugin(ini: Record<string, Record<string, unknown>>) {
    const logs: [string, string][] = []
    let onChange: (() => void) | null = null
    const log = (level: string) => (_p: unknown, m: string, f?: Record<string, unknown>) => logs.push([level, f ? `${m} ${JSON.stringify(f)}` : m])
    const plugin = {
      name: 'posta-outbound',
      config: { get: (_name: string, _type: string, cb: () => void) => ((onChange = cb), structuredClone(ini)) },
      logcrit: log('crit'), logerror: log('error'), lognotice: log('notice'), logwarn: log('warn'), loginfo: log('info'), logdebug: log('debug'),
    } as unknown as Plugin
    return { plugin, logs, set: (next: Record<string, Record<string, unknown>>) => ((ini = next), onChange!()) }
  }
  const outbound = SHIPPED_INIS.find((s) => s.file === 'posta-outbound.ini')!

  it('at start a refused value is logged CRIT and thrown (Haraka does not start)', () => {
    const f = fakePlugin({ rotation: { sticky_days: 0 } })
    let applied = 0
    assert.throws(() => loadIni(f.plugin, outbound, () => applied++), /bad settings in config\/posta-outbound\.ini: posta-outbound\.ini \[rotation\] sticky_days=0 is refused: allowed is an integer from 1 to 365 days/)
    assert.equal(applied, 0)
    assert.deepEqual(f.logs, [['crit', 'bad setting, not starting {"file":"posta-outbound.ini","section":"rotation","key":"sticky_days","value":"0","allowed":"an integer from 1 to 365 days"}']])
  })

  it('on a reload a refused edit keeps the previous values and logs an error; a good edit applies', () => {
    const f = fakePlugin({ rotation: { sticky_days: 3 } })
    let current: unknown = null
    loadIni(f.plugin, outbound, (r) => (current = r.values.rotation.sticky_days))
    assert.equal(current, 3)
    f.set({ rotation: { sticky_days: 0, wait_seconds: 5 } })
    assert.equal(current, 3, 'the previous value stays')
    assert.deepEqual(f.logs.at(-1), ['error', 'bad setting after an edit, the previous settings stay in force {"file":"posta-outbound.ini","section":"rotation","key":"sticky_days","value":"0","allowed":"an integer from 1 to 365 days"}'])
    f.set({ rotation: { sticky_days: 9 } })
    assert.equal(current, 9)
    assert.deepEqual(f.logs.at(-1), ['notice', 'posta-outbound.ini reloaded'])
  })
})
