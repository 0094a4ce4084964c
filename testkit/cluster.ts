// Redis topologies for the tests, on loopback: a 3-master Redis Cluster and a Sentinel set (one master, one replica,
// three sentinels). Real redis-server processes in a temporary directory, stopped and removed by close().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { canConnect, REDIS_MISSING, redisServerInstalled, waitFor } from '../service/redis-server'

export interface RedisProcess {
  port: number
  process: ChildProcess
  /** Stops it (SIGTERM) and waits for the exit. */
  stop(): Promise<void>
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/**
 * A port free for a cluster node: it and its cluster bus port (+10000) both free, both below Linux's ephemeral
 * range (32768-60999), where an outgoing connection could take them before the node binds them.
 */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 2700)
    if (taken.has(port)) continue
    if ((await portFree(port)) && (await portFree(port + 10000))) {
      taken.add(port)
      return port
    }
  }
  throw new Error('no free TCP port pair (port and port+10000) found in 20000-22699')
}

async function spawnRedis(dir: string, port: number, args: string[], sentinel = false): Promise<RedisProcess> {
  if (!redisServerInstalled()) throw new Error(REDIS_MISSING)
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const log = path.join(dir, 'redis.log')
  const common = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--logfile', log]
  let argv: string[]
  if (sentinel) {
    // a sentinel needs a writable config file of its own
    const conf = path.join(dir, 'sentinel.conf')
    fs.writeFileSync(conf, '')
    argv = [conf, '--sentinel', ...common, ...args]
  } else {
    argv = [...common, '--appendonly', 'no', '--save', '', ...args]
  }
  const child = spawn('redis-server', argv, { stdio: 'ignore' })
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  try {
    await waitFor(async () => {
      if (exited) throw new Error('exited')
      return canConnect({ port, host: '127.0.0.1' })
    }, `redis-server on port ${port}`)
  } catch {
    child.kill('SIGKILL')
    const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-2000) : ''
    throw new Error(`redis-server on port ${port} did not start (see ${log}):\n${tail}`)
  }
  return {
    port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

function redisCli(args: string[], timeoutMs = 30000): string {
  const r = spawnSync('redis-cli', args, { encoding: 'utf8', timeout: timeoutMs })
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}`)
  return r.stdout
}

export interface TestCluster {
  /** redis+cluster://127.0.0.1:<port>,... */
  url: string
  nodes: RedisProcess[]
  /** Stops every node (an outage of the whole Cluster); restart() brings them back. */
  stop(): Promise<void>
  /** Starts the stopped nodes again on their ports (their nodes.conf keeps the slots) and waits for cluster_state:ok. */
  restart(): Promise<void>
  close(): Promise<void>
}

export interface TestClusterOptions {
  /** Keep the data across stop() and restart() (an append-only file per node). */
  persistent?: boolean
}

/** Starts a 3-master Redis Cluster on loopback (no replicas) and waits until every node says cluster_state:ok. */
export async function startTestCluster(masters = 3, opts: TestClusterOptions = {}): Promise<TestCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-cluster-'))
  const taken = new Set<number>()
  const nodes: RedisProcess[] = []
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', ...(opts.persistent ? ['--appendonly', 'yes'] : [])]
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  }
  const clusterOk = () => waitFor(async () => nodes.every((n) => /cluster_state:ok/.test(redisCli(['-p', String(n.port), 'cluster', 'info']))), 'the cluster to be ok', 30000)
  const close = async () => {
    await stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters; i++) {
      const port = await clusterPort(taken)
      nodes.push(await spawnRedis(path.join(dir, String(port)), port, args))
    }
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`)
    redisCli(['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'])
    await clusterOk()
    const restart = async () => {
      for (let i = 0; i < nodes.length; i++) {
        if (nodes[i].process.exitCode === null && nodes[i].process.signalCode === null) continue
        nodes[i] = await spawnRedis(path.join(dir, String(nodes[i].port)), nodes[i].port, args)
      }
      await clusterOk()
    }
    return { url: `redis+cluster://${addrs.join(',')}`, nodes, stop, restart, close }
  } catch (err) {
    await close()
    throw err
  }
}

export interface TestSentinel {
  /** redis+sentinel://127.0.0.1:<s1>,<s2>,<s3>/<master name> */
  url: string
  masterName: string
  /** The data nodes, the first started as master; after a failover the roles are swapped. */
  servers: RedisProcess[]
  sentinels: RedisProcess[]
  /** The port of the current master, as the first sentinel says. */
  masterPort(): number
  /** SENTINEL FAILOVER, then waits until every sentinel names the new master and it answers as master. */
  failover(timeoutMs?: number): Promise<{ from: number; to: number }>
  /**
   * Freezes the master (SIGSTOP: its connections stay open, its commands get no reply, as a hung host's) and lets
   * the sentinels find it down and promote the replica; waits until every sentinel names the new master and it
   * answers as master. `resume()` (SIGCONT) wakes the old one, and waits until it serves as the new one's replica.
   */
  /** Waits until every other server replicates the master (link up) and every sentinel sees it as a sound replica. */
  replicated(timeoutMs?: number): Promise<void>
  freezeMaster(timeoutMs?: number): Promise<{ from: number; to: number; frozenAt: number; switchedAt: number; resume(): Promise<void> }>
  close(): Promise<void>
}

/** Starts one master, one replica and three sentinels (quorum 2) on loopback. */
export async function startTestSentinel(masterName = 'posta'): Promise<TestSentinel> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posta-sentinel-'))
  const taken = new Set<number>()
  const servers: RedisProcess[] = []
  const sentinels: RedisProcess[] = []
  const close = async () => {
    for (const n of servers) n.process.kill('SIGCONT') // a frozen server takes its SIGTERM only once woken
    await Promise.all([...sentinels, ...servers].map((n) => n.stop()))
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const sentinelAsk = (port: number, ...args: string[]) => redisCli(['-p', String(port), 'sentinel', ...args]).trim().split('\n')
  const masterPort = () => Number(sentinelAsk(sentinels[0].port, 'get-master-addr-by-name', masterName)[1])
  const role = (port: number) => redisCli(['-p', String(port), 'role']).split('\n')[0].trim()
  try {
    const master = await spawnRedis(path.join(dir, 'master'), await clusterPort(taken), [])
    servers.push(master)
    servers.push(await spawnRedis(path.join(dir, 'replica'), await clusterPort(taken), ['--replicaof', '127.0.0.1', String(master.port)]))
    await waitFor(async () => /master_link_status:up/.test(redisCli(['-p', String(servers[1].port), 'info', 'replication'])), 'the replica to sync', 20000)
    for (let i = 0; i < 3; i++) {
      const port = await clusterPort(taken)
      sentinels.push(await spawnRedis(path.join(dir, `sentinel-${port}`), port, [
        '--sentinel', 'monitor', masterName, '127.0.0.1', String(master.port), '2',
        '--sentinel', 'down-after-milliseconds', masterName, '2000',
        '--sentinel', 'failover-timeout', masterName, '10000',
      ], true))
    }
    // every sentinel knows the replica and the other sentinels before a failover is asked for
    await waitFor(async () => sentinels.every((s) => {
      const m = sentinelAsk(s.port, 'master', masterName)
      const field = (name: string) => Number(m[m.indexOf(name) + 1])
      return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2
    }), 'the sentinels to discover each other and the replica', 30000)
    const t: TestSentinel = {
      url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`,
      masterName,
      servers,
      sentinels,
      masterPort,
      async failover(timeoutMs = 30000) {
        const from = masterPort()
        redisCli(['-p', String(sentinels[0].port), 'sentinel', 'failover', masterName])
        let to = from
        await waitFor(async () => {
          to = masterPort()
          return to !== from && sentinels.every((s) => Number(sentinelAsk(s.port, 'get-master-addr-by-name', masterName)[1]) === to) && role(to) === 'master'
        }, 'the failover to finish', timeoutMs)
        return { from, to }
      },
      async replicated(timeoutMs = 40000) {
        await waitFor(async () => {
          const m = masterPort()
          return servers.filter((n) => n.port !== m).every((n) => {
            const r = redisCli(['-p', String(n.port), 'role']).split('\n').map((l) => l.trim())
            if (!(r[0] === 'slave' && r[2] === String(m) && r[3] === 'connected')) return false
            return sentinels.every((st) => {
              const lines = sentinelAsk(st.port, 'replicas', masterName)
              const at = lines.indexOf(`127.0.0.1:${n.port}`)
              if (at < 0) return false
              const flags = lines[lines.indexOf('flags', at) + 1] ?? ''
              return flags === 'slave'
            })
          })
        }, 'the replica to follow the master, as every sentinel sees it', timeoutMs)
      },
      async freezeMaster(timeoutMs = 40000) {
        const from = masterPort()
        const frozen = servers.find((n) => n.port === from)!
        frozen.process.kill('SIGSTOP')
        const frozenAt = Date.now()
        let to = from
        await waitFor(async () => {
          to = masterPort()
          return to !== from && sentinels.every((s) => Number(sentinelAsk(s.port, 'get-master-addr-by-name', masterName)[1]) === to) && role(to) === 'master'
        }, 'the sentinels to promote the replica', timeoutMs)
        return {
          from, to, frozenAt, switchedAt: Date.now(),
          async resume() {
            frozen.process.kill('SIGCONT')
            await waitFor(async () => {
              const r = redisCli(['-p', String(from), 'role']).split('\n').map((l) => l.trim())
              return r[0] === 'slave' && r[2] === String(to) && r[3] === 'connected'
            }, 'the old master to serve as a replica of the new one', timeoutMs)
          },
        }
      },
      close,
    }
    return t
  } catch (err) {
    await close()
    throw err
  }
}
