/**
 * A single-flight cache of a token from a source that may be slow or fail (a proxy command): the proxy token of
 * `ProxyAuthorization` (HTTP) and of `GrpcAuth.proxyInterceptor` (gRPC).
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Credentials from "./Credentials.js"
import { isFresh } from "./Credentials.js"

/** A cached token and, when the source said, the credentials it came from (to renew it before it expires). */
interface Entry {
  readonly token: Redacted.Redacted<string>
  readonly credentials: Credentials.Credentials | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenCache<E> {
  /** The cached token, or a new one from the source (one run for all concurrent callers). */
  readonly get: Effect.Effect<Redacted.Redacted<string>, E>
  /** Forgets the token if it is still `failed` (a concurrent caller may already have replaced it). */
  readonly invalidate: (failed: Redacted.Redacted<string>) => Effect.Effect<void>
}

/**
 * Caches what `source` yields. A success is kept until `invalidate`d (or, for credentials with an expiry, until it
 * nears that expiry); a failure is handed to the callers that waited for it and then forgotten. Interrupting a
 * caller does not interrupt the run others wait for.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E>(
  source: Effect.Effect<Redacted.Redacted<string> | Credentials.Credentials, E>
): TokenCache<E> => {
  const state = Ref.unsafeMake<Option.Option<Deferred.Deferred<Entry, E>>>(Option.none())
  const run = Effect.map(source, (obtained): Entry =>
    Redacted.isRedacted(obtained)
      ? { token: obtained, credentials: undefined }
      : { token: obtained.accessToken, credentials: obtained })

  const forget = (deferred: Deferred.Deferred<Entry, E>) =>
    Ref.update(state, (current) => Option.isSome(current) && current.value === deferred ? Option.none() : current)

  const usable = (deferred: Deferred.Deferred<Entry, E>) =>
    Effect.flatMap(Deferred.poll(deferred), (polled) => {
      if (Option.isNone(polled)) return Effect.succeed(true)
      return Effect.flatMap(Effect.exit(polled.value), (exit) => {
        if (Exit.isFailure(exit)) return Effect.succeed(false)
        const credentials = exit.value.credentials
        if (credentials === undefined) return Effect.succeed(true)
        return Effect.map(DateTime.now, (now) => isFresh(credentials, now))
      })
    })

  const get: Effect.Effect<Redacted.Redacted<string>, E> = Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const current = yield* Ref.get(state)
      if (Option.isSome(current)) {
        if (yield* usable(current.value)) {
          return (yield* restore(Deferred.await(current.value))).token
        }
        yield* forget(current.value)
      }
      const candidate = yield* Deferred.make<Entry, E>()
      const leader = yield* Ref.modify(
        state,
        (latest) =>
          Option.isSome(latest) ? [latest.value, latest] as const : [candidate, Option.some(candidate)] as const
      )
      if (leader === candidate) {
        yield* Effect.interruptible(run).pipe(
          Effect.onExit((exit) => Exit.isFailure(exit) ? forget(candidate) : Effect.void),
          Effect.intoDeferred(candidate),
          Effect.forkDaemon
        )
      }
      return (yield* restore(Deferred.await(leader))).token
    })
  )

  const invalidate = (failed: Redacted.Redacted<string>) =>
    Effect.flatMap(Ref.get(state), (current) => {
      if (Option.isNone(current)) return Effect.void
      const deferred = current.value
      return Effect.flatMap(Deferred.poll(deferred), (polled) =>
        Option.isNone(polled) ?
          Effect.void :
          Effect.flatMap(Effect.exit(polled.value), (exit) =>
            Exit.isSuccess(exit) && Redacted.value(exit.value.token) === Redacted.value(failed)
              ? forget(deferred)
              : Effect.void))
    })

  return { get, invalidate }
}
