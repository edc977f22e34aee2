/**
 * The plain-file keyring: one JSON file per (service, account) in a private directory.
 *
 * - the directory is 0700 and the files 0600 (too-open modes are fixed, with a warning; a directory or file
 *   owned by another user is refused);
 * - a file is replaced atomically: written to a temporary file in the same directory, fsync'ed, then renamed
 *   over the old one, so a concurrent reader sees the old or the new content, never a part;
 * - a corrupt file is reported and read as "no entry" (the next write replaces it).
 */
import { KeyringError } from "@flyte-auth/core/Keyring"
import type { Keyring } from "@flyte-auth/core/Keyring"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { errorMessage } from "./optionalModule.js"

const backend = "file"
const posix = process.platform !== "win32"
const dirMode = 0o700
const fileMode = 0o600

/** @internal */
export const fileName = (service: string, account: string): string =>
  `${createHash("sha256").update(service).update("\u0000").update(account).digest("hex").slice(0, 40)}.json`

interface FileEntry {
  readonly service: string
  readonly account: string
  readonly value: string
}

const isErrno = (cause: unknown, code: string): boolean =>
  typeof cause === "object" && cause !== null && (cause as { code?: unknown }).code === code

const failure = (description: string, cause?: unknown) =>
  new KeyringError({
    reason: isErrno(cause, "EACCES") || isErrno(cause, "EPERM") || isErrno(cause, "EROFS") ? "Unavailable" : "Failure",
    backend,
    description: cause === undefined ? description : `${description}: ${errorMessage(cause)}`,
    cause
  })

const attempt = <A>(description: string, f: () => Promise<A>): Effect.Effect<A, KeyringError> =>
  Effect.tryPromise({ try: f, catch: (cause) => failure(description, cause) })

/** Refuses what another user owns, tightens what is too open (with a warning). */
const checkMode = Effect.fnUntraced(function*(path: string, stats: { mode: number; uid: number }, wanted: number) {
  if (!posix) return
  const uid = process.getuid?.()
  if (uid !== undefined && stats.uid !== uid) {
    return yield* Effect.fail(
      new KeyringError({
        reason: "Failure",
        backend,
        description: `${path} is owned by uid ${stats.uid}, not by this user (uid ${uid}); refusing to use it`
      })
    )
  }
  if ((stats.mode & 0o777) !== wanted) {
    yield* Effect.logWarning(
      `flyte-auth: ${path} had mode ${(stats.mode & 0o777).toString(8)}; setting it to ${wanted.toString(8)}`
    )
    yield* attempt(`cannot chmod ${path}`, () => Fs.chmod(path, wanted))
  }
})

/** @internal */
export const make = (dir: string): Keyring.Service => {
  const pathOf = (service: string, account: string) => Path.join(dir, fileName(service, account))
  const reportedCorrupt = new Set<string>()

  const ensureDir = Effect.gen(function*() {
    yield* attempt(`cannot create ${dir}`, () => Fs.mkdir(dir, { recursive: true, mode: dirMode }))
    const stats = yield* attempt(`cannot stat ${dir}`, () => Fs.stat(dir))
    if (!stats.isDirectory()) {
      return yield* Effect.fail(
        new KeyringError({ reason: "Failure", backend, description: `${dir} is not a directory` })
      )
    }
    yield* checkMode(dir, stats, dirMode)
  })

  /** Checks the directory if it exists; `false` when it does not (nothing was ever stored). */
  const checkDir = Effect.gen(function*() {
    const stats = yield* Effect.tryPromise({
      try: () => Fs.stat(dir),
      catch: (cause) => cause
    }).pipe(
      Effect.map(Option.some),
      Effect.catchAll((cause) =>
        isErrno(cause, "ENOENT") ? Effect.succeedNone : Effect.fail(failure(`cannot stat ${dir}`, cause))
      )
    )
    if (Option.isNone(stats)) return false
    yield* checkMode(dir, stats.value, dirMode)
    return true
  })

  const get = (service: string, account: string) =>
    Effect.gen(function*() {
      if (!(yield* checkDir)) return Option.none<string>()
      const path = pathOf(service, account)
      const read = yield* Effect.tryPromise({
        try: async () => {
          const handle = await Fs.open(path, "r")
          try {
            const stats = await handle.stat()
            return { stats, text: await handle.readFile("utf8") }
          } finally {
            await handle.close()
          }
        },
        catch: (cause) => cause
      }).pipe(
        Effect.map(Option.some),
        Effect.catchAll((cause) =>
          isErrno(cause, "ENOENT") ? Effect.succeedNone : Effect.fail(failure(`cannot read ${path}`, cause))
        )
      )
      if (Option.isNone(read)) return Option.none<string>()
      yield* checkMode(path, read.value.stats, fileMode)
      const entry = parseEntry(read.value.text)
      if (entry === undefined || entry.service !== service || entry.account !== account) {
        // Once per file: a command reads an entry more than once (before and under the credential lock).
        if (!reportedCorrupt.has(path)) {
          reportedCorrupt.add(path)
          yield* Effect.logWarning(`flyte-auth: ignoring the corrupt credentials file ${path}`)
        }
        return Option.none<string>()
      }
      return Option.some(entry.value)
    }).pipe(Effect.withSpan("NodeKeyring.file.get"))

  const set = (service: string, account: string, value: string) =>
    Effect.gen(function*() {
      yield* ensureDir
      const path = pathOf(service, account)
      const body = JSON.stringify({ service, account, value } satisfies FileEntry)
      yield* attempt(`cannot write ${path}`, () => writeAtomically(dir, path, body)).pipe(Effect.uninterruptible)
    }).pipe(Effect.withSpan("NodeKeyring.file.set"))

  const remove = (service: string, account: string) =>
    Effect.gen(function*() {
      const path = pathOf(service, account)
      yield* Effect.tryPromise({ try: () => Fs.unlink(path), catch: (cause) => cause }).pipe(
        Effect.catchAll((cause) =>
          isErrno(cause, "ENOENT") ? Effect.void : Effect.fail(failure(`cannot delete ${path}`, cause))
        )
      )
    }).pipe(Effect.withSpan("NodeKeyring.file.delete"))

  // Every file names its service and account; a file that does not (a temporary one, a corrupt one) is skipped.
  const accounts = (service: string) =>
    Effect.gen(function*() {
      if (!(yield* checkDir)) return []
      const names = yield* attempt(`cannot list ${dir}`, () => Fs.readdir(dir))
      const found: Array<string> = []
      for (const name of names) {
        if (!name.endsWith(".json") || name.startsWith(".")) continue
        const text = yield* Effect.tryPromise(() => Fs.readFile(Path.join(dir, name), "utf8")).pipe(
          Effect.orElseSucceed(() => undefined)
        )
        const entry = text === undefined ? undefined : parseEntry(text)
        if (entry?.service === service && name === fileName(service, entry.account)) found.push(entry.account)
      }
      return found
    }).pipe(Effect.withSpan("NodeKeyring.file.accounts"))

  return { backend, get, set, delete: remove, accounts }
}

const parseEntry = (text: string): FileEntry | undefined => {
  try {
    const json = JSON.parse(text) as unknown
    if (typeof json !== "object" || json === null) return undefined
    const { account, service, value } = json as Record<string, unknown>
    return typeof service === "string" && typeof account === "string" && typeof value === "string"
      ? { service, account, value }
      : undefined
  } catch {
    return undefined
  }
}

const writeAtomically = async (dir: string, path: string, body: string): Promise<void> => {
  const temporary = Path.join(dir, `.${Path.basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`)
  try {
    const handle = await Fs.open(temporary, "wx", fileMode)
    try {
      await handle.writeFile(body, "utf8")
      await handle.sync()
    } finally {
      await handle.close()
    }
    await Fs.rename(temporary, path)
  } catch (error) {
    await Fs.rm(temporary, { force: true }).catch(() => undefined)
    throw error
  }
  if (posix) {
    // Makes the rename itself durable; best effort (not every file system lets a directory be fsync'ed).
    const handle = await Fs.open(dir, "r").catch(() => undefined)
    if (handle !== undefined) await handle.sync().catch(() => undefined).finally(() => handle.close())
  }
}
