/**
 * The lock-file primitives of `NodeCredentialLock`: create with O_EXCL, read what is there, judge whether it is
 * stale, and break a stale lock under a guard file without ever deleting a lock taken after it was judged.
 */
import * as Fs from "node:fs/promises"
import * as Os from "node:os"

/** @internal */
export interface Holder {
  readonly pid: number
  readonly host: string
  readonly nonce: string
  readonly acquiredAt: string
}

/** This machine's name, as written into lock files. @internal */
export const host: string = Os.hostname()

/** What was seen of a lock file, to break exactly that file and nothing taken after it. @internal */
export interface Observed {
  readonly ino: number
  readonly mtimeMs: number
  readonly text: string
  readonly holder: Holder | undefined
}

/** @internal */
export const isErrno = (cause: unknown, code: string): boolean =>
  typeof cause === "object" && cause !== null && (cause as { code?: unknown }).code === code

/** @internal */
export const parseHolder = (text: string): Holder | undefined => {
  try {
    const json = JSON.parse(text) as Record<string, unknown>
    return typeof json.pid === "number" && typeof json.host === "string" && typeof json.nonce === "string" &&
        typeof json.acquiredAt === "string"
      ? { pid: json.pid, host: json.host, nonce: json.nonce, acquiredAt: json.acquiredAt }
      : undefined
  } catch {
    return undefined
  }
}

/** @internal */
export const observe = async (path: string): Promise<Observed | undefined> => {
  try {
    const handle = await Fs.open(path, "r")
    try {
      const stats = await handle.stat()
      const text = await handle.readFile("utf8")
      return { ino: stats.ino, mtimeMs: stats.mtimeMs, text, holder: parseHolder(text) }
    } finally {
      await handle.close()
    }
  } catch (cause) {
    if (isErrno(cause, "ENOENT")) return undefined
    throw cause
  }
}

/** Whether a process of this host is still there (a zombie is not). @internal */
export const isAlive = async (pid: number): Promise<boolean> => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
  } catch (cause) {
    // EPERM: it exists but belongs to someone else.
    return !isErrno(cause, "ESRCH")
  }
  if (process.platform !== "linux") return true
  try {
    const stat = await Fs.readFile(`/proc/${pid}/stat`, "utf8")
    // "pid (comm) state ...": comm may contain anything, so the state is the first field after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return true
  }
}

/** @internal */
export const describeHolder = (observed: Observed | undefined): string =>
  observed?.holder === undefined
    ? "another process"
    : `process ${observed.holder.pid} on ${observed.holder.host} (since ${observed.holder.acquiredAt})`

/** Why `observed` is stale, or `undefined` while its holder may still be working. @internal */
export const staleness = async (observed: Observed, staleAfterMillis: number): Promise<string | undefined> => {
  const holder = observed.holder
  if (holder !== undefined && holder.host === host && !(await isAlive(holder.pid))) {
    return `its holder, process ${holder.pid}, is gone`
  }
  const idle = Date.now() - observed.mtimeMs
  return idle > staleAfterMillis ? `nobody touched it for ${Math.round(idle / 1000)} s` : undefined
}

/** Creates the lock file with O_EXCL; `false` when it exists. The file never stays behind half-written. @internal */
export const createExclusive = async (path: string, body: string): Promise<boolean> => {
  let handle: Fs.FileHandle
  try {
    handle = await Fs.open(path, "wx", 0o600)
  } catch (cause) {
    if (isErrno(cause, "EEXIST")) return false
    throw cause
  }
  try {
    await handle.writeFile(body, "utf8")
  } catch (cause) {
    await handle.close().catch(() => undefined)
    await Fs.unlink(path).catch(() => undefined)
    throw cause
  }
  await handle.close()
  return true
}

/**
 * Deletes the stale lock `observed`, unless another breaker is at it or the file changed since it was seen.
 * `true` when it was deleted.
 */
export const breakStale = async (path: string, observed: Observed, staleAfterMillis: number): Promise<boolean> => {
  const guard = `${path}.break`
  if (!(await createExclusive(guard, String(process.pid)))) {
    // A breaker that died while breaking (a few milliseconds) leaves its guard: clear it once it is old.
    const stats = await Fs.stat(guard).catch(() => undefined)
    if (stats !== undefined && Date.now() - stats.mtimeMs > staleAfterMillis) await Fs.unlink(guard).catch(() => {})
    return false
  }
  try {
    const again = await observe(path)
    if (
      again === undefined || again.ino !== observed.ino || again.mtimeMs !== observed.mtimeMs ||
      again.text !== observed.text
    ) return false
    await Fs.unlink(path)
    return true
  } finally {
    await Fs.unlink(guard).catch(() => undefined)
  }
}
