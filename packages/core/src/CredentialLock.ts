/**
 * A lock shared by every process that keeps credentials in the same store, so that only one of them refreshes
 * (or logs in) at a time. With a rotating refresh token this matters: two processes that refresh with the same
 * token get one new token and one `invalid_grant`.
 *
 * The `Authenticator` takes the lock of its endpoint around every refresh and login, re-reads the store under it
 * (another process may have refreshed already) and releases it when done. On Node, `NodeCredentialLock` keeps
 * a lock file next to the store; this module holds the tag, a no-op lock and an in-memory lock for tests.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Policies from "./Policies.js"

/**
 * The lock could not be taken: another process held it for longer than the wait allows (`Timeout`), or the lock
 * cannot work here at all (`Unavailable`, e.g. an unwritable lock directory). The `Authenticator` turns a
 * `Timeout` into an `AuthenticationError` of reason `Timeout` and carries on without the lock when it is
 * `Unavailable` (warning once).
 *
 * @since 0.1.0
 * @category errors
 */
export class CredentialLockError extends Schema.TaggedError<CredentialLockError>(
  "@flyte-auth/core/CredentialLockError"
)("CredentialLockError", {
  reason: Schema.Literal("Timeout", "Unavailable"),
  /** Which lock failed (`file`, `memory`, ...). */
  backend: Schema.String,
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `credential lock (${this.backend}): ${this.description}`
  }
}

/**
 * How long `acquire` may wait for another holder.
 *
 * @since 0.1.0
 * @category models
 */
export interface AcquireOptions {
  /** Default `Policies.credentialLockTimeout`. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CredentialLock extends Context.Tag("@flyte-auth/core/CredentialLock")<
  CredentialLock,
  CredentialLock.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace CredentialLock {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The lock's kind, for diagnostics (`file`, `memory`, `none`). `none` means no cross-process lock at all. */
    readonly backend: string
    /**
     * Takes the lock named `key` (an endpoint), waiting while another holder has it, and holds it until the scope
     * closes (whatever way it closes). Fails with reason `Timeout` after `options.timeout`.
     */
    readonly acquire: (key: string, options?: AcquireOptions) => Effect.Effect<void, CredentialLockError, Scope.Scope>
  }
}

/**
 * Runs `self` while holding the lock `key`, releasing it on any exit.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLock: {
  (
    key: string,
    options?: AcquireOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CredentialLockError, R | CredentialLock>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    key: string,
    options?: AcquireOptions
  ): Effect.Effect<A, E | CredentialLockError, R | CredentialLock>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(self: Effect.Effect<A, E, R>, key: string, options?: AcquireOptions) =>
    Effect.flatMap(CredentialLock, (lock) => Effect.scoped(Effect.zipRight(lock.acquire(key, options), self)))
)

/**
 * No cross-process lock: for stores that only this process sees (memory, none). The `Authenticator` then relies
 * on its in-process single flight alone.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: CredentialLock.Service = {
  backend: "none",
  acquire: () => Effect.void
}

/**
 * `none` as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNone: Layer.Layer<CredentialLock> = Layer.succeed(CredentialLock, none)

/**
 * An in-memory lock (one semaphore per key), shared by everything that uses the same service value: several
 * `Authenticator`s in one test standing for several processes around one store. Waits by `Clock`, so it works
 * under `TestClock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<CredentialLock.Service> = Effect.map(
  Ref.make(new Map<string, Effect.Semaphore>()),
  (semaphores): CredentialLock.Service => {
    const semaphoreFor = (key: string) =>
      Ref.modify(semaphores, (map): [Effect.Semaphore, Map<string, Effect.Semaphore>] => {
        const existing = map.get(key)
        if (existing !== undefined) return [existing, map]
        const semaphore = Effect.unsafeMakeSemaphore(1)
        return [semaphore, new Map(map).set(key, semaphore)]
      })
    return {
      backend: "memory",
      acquire: (key, options) => {
        const timeout = Duration.decode(options?.timeout ?? Policies.credentialLockTimeout)
        return Effect.flatMap(semaphoreFor(key), (semaphore) =>
          // The permit is awaited interruptibly (a waiter that times out never holds it); once it is taken, the
          // release is registered before anything can interrupt.
          Effect.uninterruptibleMask((restore) =>
            Effect.zipRight(restore(semaphore.take(1)), Effect.addFinalizer(() => semaphore.release(1)))
          ).pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () =>
                new CredentialLockError({
                  reason: "Timeout",
                  backend: "memory",
                  description: `the lock for ${key} was not free within ${Duration.format(timeout)}`
                })
            }),
            Effect.asVoid
          ))
      }
    }
  }
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<CredentialLock> = Layer.effect(CredentialLock, makeMemory)
