/**
 * A renewal under the endpoint's `CredentialLock`, so that processes sharing a store renew once between them:
 * waiting for the lock is bounded (`timeout`), and so is holding it (`hold`). A lock that cannot be used at all
 * lets the renewal run uncoordinated, with one warning.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { AuthenticationError } from "../AuthError.js"
import type * as CredentialLock from "../CredentialLock.js"

/** @internal */
export interface Bounds {
  /** How long to wait for another process's lock. */
  readonly timeout: Duration.Duration
  /** How long one renewal may hold the lock. */
  readonly hold: Duration.Duration
}

/** @internal */
export type Guard = <A, E, R>(renewal: Effect.Effect<A, E, R>) => Effect.Effect<A, E | AuthenticationError, R>

/** @internal */
export const make = (
  lock: CredentialLock.CredentialLock.Service,
  endpoint: string,
  { hold, timeout }: Bounds
): Effect.Effect<Guard> =>
  Effect.map(Ref.make(false), (warned): Guard => {
    const warnOnce = (error: CredentialLock.CredentialLockError) =>
      Effect.flatMap(Ref.getAndSet(warned, true), (already) =>
        already ? Effect.void : Effect.logWarning(
          `The credential lock is not usable (${error.message}); ${endpoint} is refreshed without coordinating ` +
            `with other processes`
        ))
    return (renewal) =>
      Effect.scoped(Effect.gen(function*() {
        yield* lock.acquire(endpoint, { timeout }).pipe(
          Effect.catchTag("CredentialLockError", (error) =>
            error.reason === "Timeout"
              ? Effect.fail(
                new AuthenticationError({
                  reason: "Timeout",
                  description: `Another process kept the credential lock of ${endpoint} for longer than ${
                    Duration.format(timeout)
                  } (it may be waiting for a login)`,
                  cause: error
                })
              )
              : warnOnce(error))
        )
        return yield* renewal.pipe(
          Effect.timeoutFail({
            duration: hold,
            onTimeout: () =>
              new AuthenticationError({
                reason: "Timeout",
                description: `Renewing the credentials for ${endpoint} took longer than ${
                  Duration.format(hold)
                }; the credential lock is released`
              })
          })
        )
      }))
  })
