// Keeps one child process running for `npm start`: restarts it when it dies (with a growing delay), gives up after
// too many crashes within a window, and stops it on request. Each exit is logged with its reason.
import { type ChildProcess } from 'node:child_process'

export interface SupervisorOptions {
  /** The name in log lines: "haraka", "panel". */
  name: string
  /** Starts the process (again). */
  start: () => ChildProcess
  log: (msg: string) => void
  /** Called once when the process crashed too often: the service cannot run. */
  giveUp: (reason: string) => void
  /** Delay before the first restart (doubles on each crash in the window, up to maxDelayMs). */
  firstDelayMs?: number
  maxDelayMs?: number
  /** Give up after this many crashes within windowMs. */
  maxCrashes?: number
  windowMs?: number
}

export function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by signal ${signal}` : `exit code ${code}`
}

export class Supervisor {
  private child: ChildProcess | null = null
  private crashes: number[] = []
  private timer: NodeJS.Timeout | null = null
  private stopping = false
  private readonly opts: Required<SupervisorOptions>

  constructor(opts: SupervisorOptions) {
    this.opts = { firstDelayMs: 1000, maxDelayMs: 30000, maxCrashes: 5, windowMs: 60000, ...opts }
  }

  /** The pid of the running process (undefined between a crash and its restart). */
  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined
  }

  run(): void {
    if (this.stopping) return
    const child = this.opts.start()
    this.child = child
    this.opts.log(`${this.opts.name} running (pid ${child.pid})`)
    child.once('exit', (code, signal) => this.onExit(child, code, signal))
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (this.child !== child || this.stopping) return
    this.child = null
    const now = Date.now()
    this.crashes = this.crashes.filter((t) => now - t < this.opts.windowMs)
    this.crashes.push(now)
    const { name, maxCrashes, windowMs } = this.opts
    const why = exitReason(code, signal)
    if (this.crashes.length >= maxCrashes) {
      this.opts.log(`${name} died (${why}): ${this.crashes.length} crashes within ${windowMs / 1000}s, giving up`)
      this.opts.giveUp(`${name} crashed ${this.crashes.length} times within ${windowMs / 1000}s (last: ${why})`)
      return
    }
    const delay = Math.min(this.opts.maxDelayMs, this.opts.firstDelayMs * 2 ** (this.crashes.length - 1))
    this.opts.log(`${name} died (${why}); restarting in ${delay / 1000}s (crash ${this.crashes.length} of ${maxCrashes} allowed within ${windowMs / 1000}s)`)
    this.timer = setTimeout(() => {
      this.timer = null
      this.run()
    }, delay)
  }

  /** Stops the process with `signal`, then SIGKILL after killAfterMs; resolves when it has exited. */
  async stop(signal: NodeJS.Signals, killAfterMs: number): Promise<void> {
    this.stopping = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const killer = setTimeout(() => {
      this.opts.log(`${this.opts.name} still running ${killAfterMs / 1000}s after ${signal}: killing it`)
      child.kill('SIGKILL')
    }, killAfterMs)
    await exited
    clearTimeout(killer)
  }
}
