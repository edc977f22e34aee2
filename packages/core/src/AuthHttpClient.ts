/**
 * `HttpClient` middleware that authenticates every request with the `Authenticator`: the header is added on
 * every request, and a `401 Unauthorized` invalidates the token that was sent, refreshes it (single flight) and
 * resends the request once. A second 401 is returned to the caller as it is, and a request whose body cannot be
 * replayed (a stream) is never resent. `407 Proxy Authentication Required` is not a 401: the proxy
 * authenticator answers it.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Authenticator } from "./Authenticator.js"
import type { AuthError } from "./AuthError.js"
import * as Resend from "./internal/resend.js"

/**
 * Whether a request can be sent a second time: a stream body (or a raw body that is not plain bytes or text)
 * is consumed by the first attempt.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isReplayable: (request: HttpClientRequest.HttpClientRequest) => boolean = Resend.isReplayable

/**
 * Wraps a client so that every request carries the authenticator's header. A failure to obtain a token
 * surfaces as the `AuthError` itself.
 *
 * @example
 * ```ts
 * import { AuthHttpClient } from "@flyte-auth/core"
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* AuthHttpClient.make(yield* HttpClient.HttpClient)
 *   return yield* client.get("https://flyte.example.com/api/v1/projects")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R>(
  client: HttpClient.HttpClient.With<E, R>
): Effect.Effect<HttpClient.HttpClient.With<E | AuthError, R>, never, Authenticator> =>
  Effect.map(Authenticator, (auth) =>
    Resend.withHeader(client, {
      header: () => auth.header,
      invalidate: auth.invalidate,
      rejection: 401,
      what: "access token"
    }))

/**
 * Replaces the `HttpClient` in context with its authenticated version. A failure to obtain a token becomes a
 * `RequestError` (reason `Transport`) whose `cause` is the `AuthError` and whose description is its message.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | Authenticator> = Layer.effect(
  HttpClient.HttpClient,
  Effect.gen(function*() {
    const client = yield* make(yield* HttpClient.HttpClient)
    return HttpClient.makeWith(
      (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) =>
        Effect.flatMap(request, (request) =>
          Effect.catchIf(
            client.execute(request),
            (error): error is AuthError => !HttpClientError.isHttpClientError(error),
            (error) =>
              Effect.fail(
                new HttpClientError.RequestError({
                  request,
                  reason: "Transport",
                  description: error.message,
                  cause: error
                })
              )
          )),
      Effect.succeed
    )
  })
)
