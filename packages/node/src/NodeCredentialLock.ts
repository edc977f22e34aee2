/**
 * The cross-process `CredentialLock` on Node: one lock file per endpoint, next to the credentials.
 *
 * - The lock is taken by creating `<hash of the endpoint>.lock` with `O_EXCL` (`open(path, "wx")`, 0600); it holds
 *   the holder's pid, host name, a random nonce and when it was taken. Releasing it deletes the file (only if it
 *   still holds our nonce). A process that finds the file waits and tries again on `Policies.credentialLockRetry`,
 *   for at most the given timeout (`Policies.credentialLockTimeout` by default), then fails with reason `Timeout`.
 * - The holder touches the file every `Policies.credentialLockHeartbeat`, so a long hold (a login in a browser)
 *   is never mistaken for a dead one.
 * - A lock is stale when its holder ran on this host and its process is gone (`process.kill(pid, 0)` says
 *   `ESRCH`, or it is a zombie), or when nobody touched the file for `Policies.credentialLockStaleAfter` (a holder
 *   on another host sharing the directory, a frozen process). A stale lock is broken under a guard file
 *   (`<lock>.break`, also created with `O_EXCL`): the breaker reads the lock again under the guard and deletes it
 *   only if it is still the very file it judged stale (same inode, content and modification time). So two
 *   processes that both see a stale lock never both break it, and a fresh lock taken meanwhile is never deleted.
 * - Where: for the `file` keyring, in its credentials directory (`$FLYTE_AUTH_CREDENTIALS_DIR`, else
 *   `~/.flyte/flyte-auth/credentials`); for the OS keyrings, in `~/.flyte/flyte-auth/locks`;
 *   `$FLYTE_AUTH_LOCK_DIR` overrides both. Memory and `none` keyrings are private to the process: no lock.
 *
 * @since 0.1.0
 */
import * as CredentialLock from "@flyte-auth/core/CredentialLock"
import { CredentialLockError } from "@flyte-auth/core/CredentialLock"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as Policies from "@flyte-auth/core/Policies"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Schedule from "effect/Schedule"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as LockFile from "./internal/lockFile.js"
import { errorMessage } from "./internal/optionalModule.js"
import * as NodeKeyring from "./NodeKeyring.js"

/**
 * The environment variable that moves the lock files (for every keyring backend).
 *
 * @since 0.1.0
 * @category constants
 */
export const lockDirEnv = "FLYTE_AUTH_LOCK_DIR"

/**
 * Where the locks of the OS keyrings live when `$FLYTE_AUTH_LOCK_DIR` is not set.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLockDir = (): string => Path.join(Os.homedir(), ".flyte", "flyte-auth", "locks")

/**
 * The lock file's name for a key (endpoint): a hash, so that no endpoint shows in a directory listing; the same
 * hash as the file keyring's entry, with `.lock` instead of `.json`.
 *
 * @since 0.1.0
 * @category utils
 */
export const lockFileName = (key: string): string =>
  NodeKeyring.fileNameFor(Keyring.serviceName, key).replace(/\.json$/, ".lock")

/**
 * What a lock file holds: `pid`, `host`, a random `nonce` telling this holding apart from any other one (pids and
 * files are reused), and `acquiredAt` (ISO 8601).
 *
 * @since 0.1.0
 * @category models
 */
export type Holder = LockFile.Holder

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The directory of the lock files (created 0700 when missing). */
  readonly dir: string
  /** A lock nobody touched for this long is stale (default `Policies.credentialLockStaleAfter`). */
  readonly staleAfter?: Duration.DurationInput | undefined
  /** How often the holder touches its lock file (default `Policies.credentialLockHeartbeat`). */
  readonly heartbeat?: Schedule.Schedule<unknown> | undefined
  /** How often a waiting process tries again (default `Policies.credentialLockRetry`). */
  readonly retry?: Schedule.Schedule<unknown> | undefined
}

const backend = "file"

/** The lock is held by someone else (internal: retried until the timeout). */
class Busy extends Data.TaggedError("Busy")<{ readonly holder: string }> {}

/**
 * A lock in `options.dir`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): CredentialLock.CredentialLock.Service => {
  const dir = Path.resolve(options.dir)
  const staleAfterMillis = Duration.toMillis(Duration.decode(options.staleAfter ?? Policies.credentialLockStaleAfter))
  const heartbeat = options.heartbeat ?? Policies.credentialLockHeartbeat
  const retry = options.retry ?? Policies.credentialLockRetry

  const unavailable = (description: string, cause: unknown) =>
    new CredentialLockError({
      reason: "Unavailable",
      backend,
      description: `${description}: ${errorMessage(cause)}`,
      cause
    })

  const ensureDir = Effect.tryPromise({
    try: () => Fs.mkdir(dir, { recursive: true, mode: 0o700 }),
    catch: (cause) => unavailable(`cannot create the lock directory ${dir}`, cause)
  })

  /** One try: take the lock, or find out who has it (breaking it when stale) and fail with `Busy`. */
  const attempt = (path: string, held: Ref.Ref<Option.Option<Holder>>, seen: Ref.Ref<LockFile.Observed | undefined>) =>
    Effect.gen(function*() {
      const holder: Holder = {
        pid: process.pid,
        host: LockFile.host,
        nonce: randomUUID(),
        acquiredAt: new Date().toISOString()
      }
      // Creating the file and recording it are one step: an interruption never leaves a lock we do not release.
      const created = yield* Effect.uninterruptible(
        Effect.tryPromise({
          try: () => LockFile.createExclusive(path, JSON.stringify(holder)),
          catch: (cause) => unavailable(`cannot create the lock file ${path}`, cause)
        }).pipe(Effect.tap((created) => created ? Ref.set(held, Option.some(holder)) : Effect.void))
      )
      if (created) return
      const observed = yield* Effect.tryPromise({
        try: () => LockFile.observe(path),
        catch: (cause) => unavailable(`cannot read the lock file ${path}`, cause)
      })
      yield* Ref.set(seen, observed)
      if (observed === undefined) return yield* new Busy({ holder: "nobody (released just now)" })
      const stale = yield* Effect.promise(() => LockFile.staleness(observed, staleAfterMillis))
      if (stale !== undefined) {
        const broken = yield* Effect.tryPromise({
          try: () => LockFile.breakStale(path, observed, staleAfterMillis),
          catch: (cause) => unavailable(`cannot remove the stale lock file ${path}`, cause)
        })
        if (broken) {
          yield* Effect.logInfo(`flyte-auth: removed a stale credential lock ${path} (${stale})`)
        }
      }
      return yield* new Busy({ holder: LockFile.describeHolder(observed) })
    })

  /** Deletes the lock file if it is still ours. */
  const release = (path: string, held: Ref.Ref<Option.Option<Holder>>) =>
    Effect.flatMap(Ref.get(held), (mine) =>
      Option.isNone(mine) ? Effect.void : Effect.tryPromise(async () => {
        const observed = await LockFile.observe(path)
        if (observed?.holder?.nonce === mine.value.nonce) await Fs.unlink(path)
        return observed?.holder?.nonce === mine.value.nonce
      }).pipe(
        Effect.flatMap((ours) =>
          ours ? Effect.void : Effect.logWarning(
            `flyte-auth: the credential lock ${path} was taken over by another process while this one held it`
          )
        ),
        Effect.catchAll((error) => Effect.logWarning(`flyte-auth: cannot release the credential lock ${path}`, error))
      ))

  /** Touches the lock file while it is ours; stops (with a warning) when it no longer is. */
  const keepAlive = (path: string, nonce: string) =>
    Effect.tryPromise(async () => {
      const observed = await LockFile.observe(path)
      if (observed?.holder?.nonce !== nonce) return false
      const now = new Date()
      await Fs.utimes(path, now, now)
      return true
    }).pipe(
      Effect.catchAll(() => Effect.succeed(true)),
      Effect.repeat({ schedule: heartbeat, while: (ours) => ours }),
      Effect.flatMap((ours) =>
        ours ? Effect.void : Effect.logWarning(`flyte-auth: the credential lock ${path} was broken by another process`)
      )
    )

  return {
    backend,
    acquire: (key, acquireOptions) =>
      Effect.gen(function*() {
        const timeout = Duration.decode(acquireOptions?.timeout ?? Policies.credentialLockTimeout)
        const path = Path.join(dir, lockFileName(key))
        const held = yield* Ref.make(Option.none<Holder>())
        const seen = yield* Ref.make<LockFile.Observed | undefined>(undefined)
        // Registered first: whatever happens from here on (timeout, interruption), a lock we created is released.
        yield* Effect.addFinalizer(() => release(path, held))
        yield* ensureDir
        const timedOut = Effect.map(Ref.get(seen), (observed) =>
          new CredentialLockError({
            reason: "Timeout",
            backend,
            description: `${path} was held by ${LockFile.describeHolder(observed)} for longer than ${
              Duration.format(timeout)
            }`
          }))
        yield* attempt(path, held, seen).pipe(
          Effect.retry({ schedule: retry, while: (error) => error._tag === "Busy" }),
          Effect.timeout(timeout),
          Effect.catchTags({
            TimeoutException: () => Effect.flip(timedOut),
            Busy: () => Effect.flip(timedOut)
          })
        )
        const mine = yield* Ref.get(held)
        if (Option.isSome(mine)) yield* Effect.forkScoped(keepAlive(path, mine.value.nonce))
      }).pipe(Effect.withSpan("NodeCredentialLock.acquire"))
  }
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<CredentialLock.CredentialLock> =>
  Layer.succeed(CredentialLock.CredentialLock, make(options))

/**
 * The lock for a keyring backend: `none` for the process-private ones (`memory`, `none`), else lock files in
 * `$FLYTE_AUTH_LOCK_DIR`, or the file keyring's credentials directory, or `~/.flyte/flyte-auth/locks`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeForBackend = (keyringBackend: string): Effect.Effect<CredentialLock.CredentialLock.Service> =>
  Effect.gen(function*() {
    if (keyringBackend === "memory" || keyringBackend === "none") {
      return CredentialLock.none
    }
    const fromEnv = (name: string) =>
      Config.option(Config.nonEmptyString(name)).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    const lockDir = yield* fromEnv(lockDirEnv)
    if (Option.isSome(lockDir)) return make({ dir: lockDir.value })
    if (keyringBackend === "file") {
      const credentialsDir = yield* fromEnv(NodeKeyring.credentialsDirEnv)
      return make({ dir: Option.getOrElse(credentialsDir, NodeKeyring.defaultCredentialsDir) })
    }
    return make({ dir: defaultLockDir() })
  })

/**
 * The lock that goes with the `Keyring` in context (see `makeForBackend`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerForKeyring: Layer.Layer<CredentialLock.CredentialLock, never, Keyring.Keyring> = Layer.effect(
  CredentialLock.CredentialLock,
  Effect.flatMap(Keyring.Keyring, (keyring) => makeForBackend(keyring.backend))
)
