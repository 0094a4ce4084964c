// docker/: no Docker engine runs here, so the files are checked for what can be checked without one (README
// "Docker"): compose.yaml parses (the `yaml` parser, pinned) into Redis with AOF, two relay nodes and the panel;
// the Dockerfile is multi-stage on the Node.js LTS the CI tests, runs as a non-root user with the data dir on a
// volume and has a health check; what it runs exists. docker/check-outside.sh (run by .ci/run) runs its build
// steps, its start and its health check outside Docker.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parse } from 'yaml'
import { PROJECT_ROOT } from '../service/haraka-dir'

const DOCKER = path.join(PROJECT_ROOT, 'docker')

/** Dockerfile instructions, continuation lines joined, comments dropped: [stage index, INSTRUCTION, rest]. */
function instructions(text: string): [number, string, string][] {
  const out: [number, string, string][] = []
  let stage = -1
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const t = line.trim()
    if (!t || t.startsWith('#')) continue
    const [, word, rest] = /^(\S+)\s*(.*)$/.exec(t)!
    if (word.toUpperCase() === 'FROM') stage++
    out.push([stage, word.toUpperCase(), rest])
  }
  return out
}

function seconds(d: string): number {
  const m = /^(\d+)(s|m)$/.exec(d)
  assert.ok(m, `a duration like 40s: ${d}`)
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1)
}

describe('docker/ (checked without a Docker engine)', () => {
  const dockerfile = instructions(fs.readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8'))
  const last = Math.max(...dockerfile.map(([s]) => s))
  const finalStage = dockerfile.filter(([s]) => s === last)
  const get = (word: string) => finalStage.filter(([, w]) => w === word).map(([, , rest]) => rest)

  it('Dockerfile: multi-stage, every stage on the same Node.js LTS image that engines and .ci/run name', () => {
    const froms = dockerfile.filter(([, w]) => w === 'FROM').map(([, , r]) => r)
    assert.ok(froms.length >= 2, 'multi-stage')
    const majors = froms.map((f) => /^node:(\d+)-[a-z]+-slim\b/.exec(f)?.[1])
    assert.ok(majors.every((m) => m && m === majors[0]), `one node image: ${froms.join(', ')}`)
    assert.equal(Number(majors[0]) % 2, 0, 'an LTS line (even major)')
    const engines = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).engines.node as string
    assert.ok(Number(majors[0]) >= Number(/>=(\d+)/.exec(engines)![1]), `node ${majors[0]} satisfies engines ${engines}`)
    const ci = fs.readFileSync(path.join(PROJECT_ROOT, '.ci', 'run'), 'utf8')
    assert.match(ci, new RegExp(`NODE_VERSIONS=.*\\b${majors[0]}\\b`), '.ci/run tests the image\'s Node.js line')
    assert.match(froms[0], / AS build$/i)
    assert.ok(finalStage.some(([, w, r]) => w === 'COPY' && /^--from=build /.test(r)), 'the run stage takes the build from the build stage')
  })

  it('Dockerfile: runs as a non-root user, the data dir (queue included) on a volume, a health check, SIGTERM', () => {
    const users = get('USER')
    assert.equal(users.length, 1)
    assert.notEqual(users[0], 'root')
    assert.notEqual(users[0], '0')
    assert.deepEqual(get('VOLUME'), ['/data'])
    assert.match(get('ENV').join(' '), /\bPOSTA_DATA_DIR=\/data\b/)
    const health = get('HEALTHCHECK')
    assert.equal(health.length, 1)
    assert.match(health[0], /CMD .*\/healthz/)
    assert.deepEqual(get('STOPSIGNAL'), ['SIGTERM'])
    // what the image runs exists in the build
    const cmd = JSON.parse(get('CMD')[0]) as string[]
    assert.equal(cmd[0], 'node')
    assert.ok(fs.existsSync(path.join(PROJECT_ROOT, 'service', `${path.basename(cmd[1], '.js')}.ts`)), `${cmd[1]} is built from service/`)
  })

  it('Dockerfile: every COPY source is in the build context, and the context leaves out node_modules and dist', () => {
    const ignore = fs.readFileSync(path.join(DOCKER, 'Dockerfile.dockerignore'), 'utf8').split('\n').map((l) => l.trim())
    for (const p of ['node_modules', 'dist', 'var', '.git']) assert.ok(ignore.includes(p), `${p} is left out of the context`)
    for (const [, w, r] of dockerfile) {
      if (w !== 'COPY' || r.startsWith('--from=')) continue
      const srcs = r.split(/\s+/).slice(0, -1)
      for (const s of srcs) assert.ok(s === '.' || fs.existsSync(path.join(PROJECT_ROOT, s)), `COPY ${s} exists`)
    }
  })

  it('compose.yaml parses: Redis with AOF, two relay nodes on it with their own data volumes, the panel', () => {
    assert.equal(fs.existsSync(path.join(DOCKER, 'compose.yml')), false, 'one compose file')
    const compose = parse(fs.readFileSync(path.join(DOCKER, 'compose.yaml'), 'utf8'), { merge: true }) as {
      services: Record<string, Record<string, any>>
      volumes: Record<string, unknown>
    }
    const { services } = compose
    assert.deepEqual(Object.keys(services).sort(), ['panel', 'redis', 'relay1', 'relay2'])
    const redisCmd = (services.redis.command as string[]).join(' ')
    assert.match(redisCmd, /--appendonly yes/)
    assert.match(services.redis.volumes[0], /^redis:\/data$/)
    const dataVolumes = new Set<string>()
    for (const name of ['relay1', 'relay2', 'panel']) {
      const s = services[name]
      assert.equal(s.build.dockerfile, 'docker/Dockerfile', name)
      assert.equal(s.build.context, '..', name)
      assert.equal(s.environment.REDIS_URL, 'redis://redis:6379', name)
      assert.equal(s.depends_on.redis.condition, 'service_healthy', name)
      assert.equal(s.init, true, `${name}: an init as pid 1 forwards the stop signal and reaps`)
      const [vol, at] = (s.volumes[0] as string).split(':')
      assert.equal(at, '/data')
      dataVolumes.add(vol)
    }
    assert.equal(dataVolumes.size, 3, 'each node its own data dir: its own queue and lock')
    for (const name of ['relay1', 'relay2']) {
      assert.equal(services[name].command, undefined, `${name} runs the image's launcher`)
      // the drain takes up to force_shutdown_timeout - 2 s (config/smtp.ini): the stop grace must cover it
      const force = Number(/^force_shutdown_timeout=(\d+)/m.exec(fs.readFileSync(path.join(PROJECT_ROOT, 'config', 'smtp.ini'), 'utf8'))![1])
      assert.ok(seconds(services[name].stop_grace_period) > force, `${name} stop_grace_period`)
      assert.ok((services[name].ports as string[]).some((p) => p.endsWith(':2587')))
    }
    assert.deepEqual(services.panel.command, ['node', 'dist/service/panel.js'])
    assert.ok(fs.existsSync(path.join(PROJECT_ROOT, 'service', 'panel.ts')))
    for (const v of [...dataVolumes, 'redis']) assert.ok(v in compose.volumes, `volume ${v} declared`)
  })
})
