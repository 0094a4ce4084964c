// Bad settings stop the service before it serves: Haraka exits when a plugin ini holds a refused value (or the
// environment a bad one), `npm start` exits before starting anything, each naming file, key, value and range;
// an edit refused under a running Haraka keeps the previous settings.
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { PROJECT_ROOT } from '../service/haraka-dir'
import { harakaRefuses, startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, type TestRedis } from '../testkit/redis'
import { SmtpClient } from '../testkit/smtp-client'

const shipped = (file: string) => fs.readFileSync(path.join(PROJECT_ROOT, 'config', file), 'utf8')
const withValue = (file: string, key: string, value: string) => {
  const text = shipped(file)
  const re = new RegExp(`^${key}=.*$`, 'm')
  assert.match(text, re, `config/${file} has a ${key}= line`)
  return text.replace(re, `${key}=${value}`)
}

describe('bad settings: no start', function () {
  this.timeout(120000)

  it('Haraka exits at start on posta-outbound.ini sticky_days=0, naming file, key, value and range', async () => {
    const r = await harakaRefuses({ redisUrl: 'redis://127.0.0.1:1', overrides: { 'posta-outbound.ini': withValue('posta-outbound.ini', 'sticky_days', '0') } })
    assert.notEqual(r.code, 0)
    assert.match(r.log, /\[CRIT\] \[-\] \[posta-outbound\] bad setting, not starting file=posta-outbound\.ini section=rotation key=sticky_days value=0 allowed="an integer from 1 to 365 days"/)
  })

  it('Haraka exits at start on posta-quota.ini thresholds=abc and on a bad POSTA_TIMEZONE', async () => {
    const q = await harakaRefuses({ redisUrl: 'redis://127.0.0.1:1', overrides: { 'posta-quota.ini': withValue('posta-quota.ini', 'thresholds', 'abc') } })
    assert.notEqual(q.code, 0)
    assert.match(q.log, /\[CRIT\] .*bad setting, not starting file=posta-quota\.ini section=warnings key=thresholds value=abc allowed="a comma-separated list of at least 1 percentages, each an integer from 1 to 1000 percent"/)
    const tz = await harakaRefuses({ redisUrl: 'redis://127.0.0.1:1', env: { POSTA_TIMEZONE: 'Mars/Olympus' } })
    assert.notEqual(tz.code, 0)
    // Haraka's own CRIT line; posta-log writes = in free text as \u003d (lib/logs.ts)
    assert.match(tz.log, /\[CRIT\] \[-\] \[core\] Caught exception: Error: POSTA_TIMEZONE\\u003dMars\/Olympus is not an IANA time zone/)
  })

  function npmStart(env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
    const e: NodeJS.ProcessEnv = { ...process.env, POSTA_RESOLVERS: '127.0.0.1:9', ...env }
    delete e.REDIS_URL
    delete e.NODE_OPTIONS
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'service', 'start.js')], { env: e, cwd: PROJECT_ROOT })
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000)
    return new Promise((resolve) => child.once('exit', (code) => (clearTimeout(timer), resolve({ code, out }))))
  }

  it('npm start checks every ini before it starts anything: exit 1, one line per refused value', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-badcfg-'))
    const configDir = path.join(dataDir, 'config')
    try {
      fs.cpSync(path.join(PROJECT_ROOT, 'config'), configDir, { recursive: true })
      fs.writeFileSync(path.join(configDir, 'posta-outbound.ini'), withValue('posta-outbound.ini', 'sticky_days', '0'))
      fs.writeFileSync(path.join(configDir, 'posta-trap.ini'), withValue('posta-trap.ini', 'sender_domains', 'maybe'))
      const r = await npmStart({ POSTA_DATA_DIR: dataDir, POSTA_CONFIG_DIR: configDir })
      assert.equal(r.code, 1, r.out)
      assert.match(r.out, /posta: not starting, bad settings in .*\n  posta-outbound\.ini \[rotation\] sticky_days=0 is refused: allowed is an integer from 1 to 365 days\n  posta-trap\.ini \[bans\] sender_domains=maybe is refused: allowed is true or false\n$/)
      assert.equal(fs.existsSync(path.join(dataDir, 'redis')), false, 'no Redis was started')
      assert.equal(fs.existsSync(path.join(dataDir, 'haraka')), false, 'no Haraka was started')
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('npm start refuses a bad environment setting, naming the variable, the value and what is allowed', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-badenv-'))
    try {
      for (const [name, value, said] of [
        ['POSTA_SMTP_PORT', '0', 'POSTA_SMTP_PORT=0 is not a TCP port (allowed: an integer from 1 to 65535)'],
        ['POSTA_LISTEN', 'everywhere', 'POSTA_LISTEN=everywhere is refused: allowed is an IP address'],
        ['POSTA_CLOCK_OFFSET_MS', 'soon', 'POSTA_CLOCK_OFFSET_MS=soon is refused: allowed is an integer'],
      ]) {
        const r = await npmStart({ POSTA_DATA_DIR: dataDir, [name]: value })
        assert.equal(r.code, 1, r.out)
        assert.ok(r.out.startsWith(`posta: ${said}`), r.out)
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  })

  describe('an edit under a running Haraka', () => {
    let redis: TestRedis
    let node: HarakaNode
    before(async () => {
      redis = await testRedis()
      node = await startHaraka({ redisUrl: redis.url })
    })
    after(async () => {
      await node?.stop()
      await redis?.close()
    })

    it('a refused value keeps the previous settings (logged), Haraka keeps serving; a good edit is applied', async () => {
      const file = path.join(node.dir, 'config', 'posta-outbound.ini')
      fs.writeFileSync(file, withValue('posta-outbound.ini', 'slot_minutes', '0'))
      await node.waitForLog(/\[ERROR\] .*bad setting after an edit, the previous settings stay in force file=posta-outbound\.ini section=rotation key=slot_minutes value=0 allowed="an integer from 1 to 1440 minutes"/, 90000)
      assert.equal(node.process.exitCode, null, 'Haraka still runs')
      const c = await SmtpClient.connect({ port: node.smtpPort })
      assert.equal(c.greeting.code, 220)
      assert.equal((await c.ehlo()).code, 250)
      await c.close()
      fs.writeFileSync(file, withValue('posta-outbound.ini', 'slot_minutes', '120'))
      await node.waitForLog(/\[NOTICE\].*posta-outbound\.ini reloaded/, 90000)
    })
  })
})
