/**
 * A token source: something that hands out credentials and can be told that a server rejected them. The model
 * is golang.org/x/oauth2's `TokenSource` + `ReuseTokenSource`: an effect yielding `Credentials`, and one
 * combinator (`reuse`) that keeps its result, renews it near its expiry, runs it once for all concurrent callers,
 * and forgets it on `invalidate` only while it is still the rejected one.
 *
 * The proxy token (`ProxyAuthorization`, `GrpcAuth.proxyInterceptor`) is one, and so is the `Authenticator`. A
 * transport holding a token source sends `AuthHeader.make(key, credentials)` and, on a rejection, hands that same
 * header to `invalidate`.
 *
 * @example
 * ```ts
 * import { AuthHeader, ExternalCommand, TokenSource } from "@flyte-auth/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const source = yield* TokenSource.reuse(
 *     ExternalCommand.authenticate({ endpoint: "proxy", command: ["gcloud", "auth", "print-identity-token"] })
 *   )
 *   const header = AuthHeader.make("proxy-authorization", yield* source.get) // runs the command once
 *   yield* source.invalidate(header) // the proxy refused it: the next `get` runs the command again
 * })
 * ```
 *
 * @since 0.2.0
 */
import * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { AuthError } from "./AuthError.js"
import * as AuthHeader from "./AuthHeader.js"
import * as Credentials from "./Credentials.js"
import * as SingleFlight from "./internal/singleFlight.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface TokenSource<E = AuthError> {
  /** Usable credentials: the kept ones while fresh, else one run of the source for every concurrent caller. */
  readonly get: Effect.Effect<Credentials.Credentials, E>
  /**
   * A server rejected `header`: forget the kept credentials if `header` carries them (`AuthHeader.carries`).
   * Credentials that a concurrent caller already replaced are kept.
   */
  readonly invalidate: (header: AuthHeader.AuthHeader) => Effect.Effect<void>
}

/**
 * Keeps what `source` yields, and runs it again when the kept credentials near their `expiresAt` (by the rule of
 * `Credentials.isFresh` with `skew`; credentials without an expiry are kept until invalidated) or were
 * invalidated. One run serves every caller that arrives while it runs; a failure reaches those callers and is
 * then forgotten. The runs belong to the current scope: closing it interrupts a run under way.
 *
 * @since 0.2.0
 * @category constructors
 */
export const reuse = <E, R>(
  source: Effect.Effect<Credentials.Credentials, E, R>,
  options: { readonly skew?: Duration.DurationInput | undefined } = {}
): Effect.Effect<TokenSource<E>, never, R | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const flight = yield* SingleFlight.make(Effect.provide(source, context), {
      keep: (credentials) => Effect.map(DateTime.now, (now) => Credentials.isFresh(credentials, now, options.skew))
    })
    return {
      get: flight.get,
      invalidate: (header) => flight.forget((credentials) => AuthHeader.carries(header, credentials))
    }
  })
