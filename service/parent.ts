// A child of `npm start` runs in its own process group (a Ctrl-C reaches only the launcher, which stops its
// children in order). So that a launcher killed with SIGKILL leaves no child serving without it, each child
// watches its parent: POSTA_SUPERVISOR_PID names the launcher, and when the child's parent is no longer that
// process, `stop` runs.
export const SUPERVISOR_PID_ENV = 'POSTA_SUPERVISOR_PID'

export function exitWithParent(stop: () => void, everyMs = 1000, env: NodeJS.ProcessEnv = process.env): NodeJS.Timeout | null {
  const supervisor = Number(env[SUPERVISOR_PID_ENV])
  if (!Number.isInteger(supervisor) || supervisor <= 0) return null
  const timer = setInterval(() => {
    if (process.ppid !== supervisor) {
      clearInterval(timer)
      stop()
    }
  }, everyMs)
  timer.unref()
  return timer
}
