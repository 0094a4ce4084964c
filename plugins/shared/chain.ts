// One Haraka hook call for a run of Posta's hooks. Haraka runs each plugin's hook as a call of its own: its
// dispatch, a plugin-timeout timer, debug log lines built and dropped, results bookkeeping. At MAIL FROM, RCPT TO,
// DATA, end of DATA, queue_ok and each delivery Posta has two to four plugins in a row, so a message paid for about
// twenty such calls where stock Haraka pays three or four (docs/benchmarks.md, "Where Posta's CPU goes").
//
// A hook wrapped in `chained()` runs as before when Haraka calls it. When it calls next() with CONT (or nothing),
// it looks at what Haraka would run next on that object (`hooks_to_run`): while that is a chained hook too, it takes
// it off Haraka's list and calls it itself, with Haraka's own checks (the client gone, `skip_plugins`, a hook that
// throws). The first non-CONT answer, or the first hook that is not chained, hands back to Haraka. So the order of
// every hook, Posta's or not, is Haraka's (priorities, config/plugins), and a plugin between two of Posta's breaks
// the run there. A refusal is Haraka's as before: its log line and its deny hook name the plugin that refused (the
// run's Haraka item is pointed at it), so posta-metrics counts the right reason.
//
// What differs: Haraka's plugin timeout is the first hook's, for the whole run, and once Haraka has ended the hook
// (a timeout, a cancel by reset_transaction or disconnect) no later hook of the run starts. Haraka's debug lines
// "running X hook in Y plugin" are written only for the run's first hook. Haraka 3.3.4's internals (hooks_to_run,
// current_hook) are relied on; Haraka is pinned to that version (test/chain.test.ts runs Haraka's own dispatch).
import { constants, type Next, type Plugin } from './haraka'

const CHAINED = Symbol.for('posta.chained')

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type HookFn = (this: Plugin, next: Next, object: any, params?: any) => void
type HookItem = [Plugin & Record<string, unknown>, string, ...unknown[]]

interface HookTarget {
  hooks_to_run?: HookItem[]
  current_hook?: HookItem | null
  hook?: string
  state?: number
  constructor: { name: string }
  transaction?: { notes?: { skip_plugins?: string[] } } | null
  logcrit(...args: unknown[]): void
}

function gone(target: HookTarget, hook: string | undefined): boolean {
  if (hook === 'reset_transaction' || hook === 'disconnect' || hook === 'log') return false
  return target.constructor.name === 'Connection' && (target.state ?? 0) >= constants.connection.state.DISCONNECTING
}

/** The chained hook of a Haraka item, if it is one. */
function chainedOf(item: HookItem | undefined): HookFn | undefined {
  const fn = item?.[0]?.[item[1]] as (HookFn & { [CHAINED]?: HookFn }) | undefined
  return typeof fn === 'function' ? fn[CHAINED] : undefined
}

/** POSTA_HOOK_CHAIN=0 turns chaining off (each hook a Haraka hook call of its own): to measure it (bench posta-unchained). */
const CHAIN_ON = process.env.POSTA_HOOK_CHAIN !== '0'

/** `fn` as a hook that runs the chained hooks right after it without going back to Haraka. */
export function chained<F extends HookFn>(fn: F): F {
  if (!CHAIN_ON) return fn
  const hook = function (this: Plugin, done: Next, target: HookTarget, params?: unknown) {
    run(this, fn, done, target, params)
  }
  Object.defineProperty(hook, CHAINED, { value: fn })
  return hook as unknown as F
}

function run(plugin: Plugin, fn: HookFn, done: Next, target: HookTarget, params: unknown): void {
  // Haraka's item for this call: [plugin, method, cancel]. Its callback (`done`) logs and denies with item[0].
  const item = target.current_hook ?? undefined
  const hook = target.hook

  const step = (p: Plugin, f: HookFn, method: string | undefined): void => {
    let called = false
    const next: Next = (code, msg) => {
      if (called) {
        target.logcrit(`${p.name} plugin ran callback multiple times - ignoring subsequent calls`)
        return
      }
      called = true
      if (code && code !== constants.cont) {
        if (item && item[0] !== p) {
          item[0] = p as HookItem[0]
          if (method) item[1] = method
        }
        done(code, msg)
        return
      }
      advance()
    }
    try {
      f.call(p, next, target, params)
    } catch (err) {
      target.logcrit(`Plugin ${p.name} failed:`, err)
      if (!called) {
        called = true
        advance()
      }
    }
  }

  const advance = (): void => {
    // Haraka ended this hook already (its timeout, or a cancel by reset_transaction or disconnect): start nothing.
    if (item && target.current_hook !== item) return
    const list = target.hooks_to_run
    while (list && list.length) {
      const f = chainedOf(list[0])
      if (!f) break
      if (gone(target, hook)) return // as Haraka's run_next_hook: a gone client's hook just stops
      const [p, method] = list.shift()!
      if (target.transaction?.notes?.skip_plugins?.includes(p.name)) continue
      step(p, f, method)
      return
    }
    done()
  }

  step(plugin, fn, undefined)
}
