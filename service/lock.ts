// The data-dir lock of `npm start`: one running service per POSTA_DATA_DIR (its Redis socket, its Haraka queue).
// The lock file holds the pid of the launcher; a lock whose pid is no longer alive is stale and taken over.
import * as fs from 'node:fs'

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: a process of another user has that pid, so it is alive
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface DataDirLock {
  file: string
  /** The pid of a dead launcher whose lock was taken over, if any. */
  staleFrom: number | null
  release(): void
}

function readPid(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

/** Takes the lock for this process, or throws saying which pid holds it. */
export function acquireLock(file: string, pid = process.pid): DataDirLock {
  let staleFrom: number | null = null
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644)
      fs.writeSync(fd, `${pid}\n`)
      fs.closeSync(fd)
      return {
        file,
        staleFrom,
        release: () => {
          if (readPid(file) === pid) fs.rmSync(file, { force: true })
        },
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = readPid(file)
    if (holder !== null && holder !== pid && pidAlive(holder)) {
      throw new Error(`another Posta service (pid ${holder}) runs on this data dir (lock ${file}): stop it, or set POSTA_DATA_DIR to another directory`)
    }
    // a dead pid (or an empty, unreadable file): stale, taken over
    staleFrom = holder ?? staleFrom ?? 0
    fs.rmSync(file, { force: true })
  }
  throw new Error(`cannot take the lock ${file}: it keeps coming back (two launchers starting at once?)`)
}
