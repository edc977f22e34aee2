/**
 * `HttpClient` middleware that authenticates every request with the `Authenticator`: the header is added on
 * every request, and a `401 Unauthorized` invalidates the token that was sent, refreshes it (single flight) and
 * resends the request once. A second 401 is returned to the caller as it is, and a request whose body cannot be
 * replayed (a stream) is never resent. `407 Proxy Authentication Required` is not a 401: the proxy
 * authenticator answers it.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { Authenticator, type AuthHeader } from "./Authenticator.js"
import type { AuthError } from "./AuthError.js"
import { bearerToken } from "./Credentials.js"
import * as Policies from "./Policies.js"

/**
 * Whether a request can be sent a second time: a stream body (or a raw body that is not plain bytes or text)
 * is consumed by the first attempt.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isReplayable = (request: HttpClientRequest.HttpClientRequest): boolean => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
    case "Uint8Array":
    case "FormData":
      return true
    case "Stream":
      return false
    case "Raw":
      return typeof body.body === "string" || body.body instanceof Uint8Array || body.body instanceof ArrayBuffer ||
        body.body instanceof URLSearchParams || (typeof Blob !== "undefined" && body.body instanceof Blob)
  }
}

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
  Effect.map(Authenticator, (auth) => {
    // One attempt: the current header, with the header name redacted in spans and logs whatever it is called
    // (`flyte-authorization`, ...). Answers the response and the header that was sent.
    const send = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.flatMap(auth.header, (header) => {
        const key = header.key.toLowerCase()
        return client.execute(HttpClientRequest.setHeader(request, key, Redacted.value(header.value))).pipe(
          Effect.locallyWith(Headers.currentRedactedNames, (names) => names.includes(key) ? names : [...names, key]),
          Effect.map((response) => [response, header] as const)
        )
      })

    // The first attempt is sent as it is; only a 401 of a replayable request builds the retry.
    const execute = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.flatMap(send(request), ([response, header]) => {
        if (response.status !== 401) return Effect.succeed(response)
        // Not resent (its body is gone), but the next request must not use the rejected token either.
        if (!isReplayable(request)) return Effect.as(auth.invalidate(bearerToken(header.value)), response)
        return resend(request, response, header)
      })

    // Resends as long as `Policies.retryOnceOnUnauthenticated` allows, each time after invalidating the token the
    // server rejected. The token of the last rejection is not invalidated, so a server that keeps answering 401
    // costs one refresh per request, not two; its response is returned.
    const resend = (
      request: HttpClientRequest.HttpClientRequest,
      rejection: HttpClientResponse.HttpClientResponse,
      rejected: AuthHeader
    ) =>
      Effect.flatMap(Schedule.driver(Policies.retryOnceOnUnauthenticated), (driver) => {
        const loop = (
          response: HttpClientResponse.HttpClientResponse,
          header: AuthHeader
        ): Effect.Effect<HttpClientResponse.HttpClientResponse, E | AuthError, R> =>
          Effect.matchEffect(driver.next(response), {
            onFailure: () => Effect.succeed(response),
            onSuccess: () =>
              auth.invalidate(bearerToken(header.value)).pipe(
                Effect.zipRight(send(request)),
                Effect.flatMap(([next, sent]) => next.status === 401 ? loop(next, sent) : Effect.succeed(next))
              )
          })
        return loop(rejection, rejected)
      })

    return HttpClient.makeWith(
      (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.flatMap(request, execute),
      Effect.succeed
    )
  })

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
