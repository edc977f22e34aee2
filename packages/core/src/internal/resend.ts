/**
 * An `HttpClient` that sends a header from a token source on every request and, when the server rejects that
 * header (401 for the access token, 407 for the proxy token), hands the same header back to the source and resends
 * the request with a new one, as often as `Policies.retryOnceOnUnauthenticated` allows. The one place of this rule
 * for HTTP: `AuthHttpClient` and `ProxyAuthorization` are built on it.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as AuthHeader from "../AuthHeader.js"
import * as Policies from "../Policies.js"

/** @internal */
export interface Options<E> {
  /** The header for one attempt of `request`. */
  readonly header: (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<AuthHeader.AuthHeader, E>
  /** The server rejected `header`: the source must not hand it out again. */
  readonly invalidate: (header: AuthHeader.AuthHeader) => Effect.Effect<void>
  /** The status that rejects the header: 401, 407. */
  readonly rejection: number
  /** What the header is, for the debug log line of a resend: `"access token"`, `"proxy token"`. */
  readonly what: string
}

/**
 * Whether a request can be sent a second time: a stream body (or a raw body that is not plain bytes or text)
 * is consumed by the first attempt.
 *
 * @internal
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
      return Policies.isReplayableBody(body.body)
  }
}

/**
 * `client` with the header of `options` on every request. The header's name is redacted in spans and logs,
 * whatever it is called. A request that cannot be replayed is not resent, but its rejected header is invalidated
 * so that the next request does not send it. The header of the last rejection is not invalidated (a server that
 * keeps rejecting costs one renewal per request, not two); its response is returned.
 *
 * @internal
 */
export const withHeader = <E, R, E2>(
  client: HttpClient.HttpClient.With<E, R>,
  options: Options<E2>
): HttpClient.HttpClient.With<E | E2, R> => {
  const send = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.flatMap(
      options.header(request),
      (header) =>
        client.execute(HttpClientRequest.setHeader(request, header.key, Redacted.value(header.value))).pipe(
          Effect.locallyWith(
            Headers.currentRedactedNames,
            (names) => names.includes(header.key) ? names : [...names, header.key]
          ),
          Effect.map((response) => [response, header] as const)
        )
    )

  const resend = (
    request: HttpClientRequest.HttpClientRequest,
    rejection: HttpClientResponse.HttpClientResponse,
    rejected: AuthHeader.AuthHeader
  ) =>
    Effect.flatMap(Schedule.driver(Policies.retryOnceOnUnauthenticated), (driver) => {
      const loop = (
        response: HttpClientResponse.HttpClientResponse,
        header: AuthHeader.AuthHeader
      ): Effect.Effect<HttpClientResponse.HttpClientResponse, E | E2, R> =>
        Effect.matchEffect(driver.next(response), {
          onFailure: () => Effect.succeed(response),
          onSuccess: () =>
            options.invalidate(header).pipe(
              Effect.zipRight(Effect.logDebug(
                `The server answered ${options.rejection}: obtaining a new ${options.what} and resending`
              )),
              Effect.zipRight(send(request)),
              Effect.flatMap(([next, sent]) =>
                next.status === options.rejection ? loop(next, sent) : Effect.succeed(next)
              )
            )
        })
      return loop(rejection, rejected)
    })

  const execute = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.flatMap(send(request), ([response, header]) => {
      if (response.status !== options.rejection) return Effect.succeed(response)
      if (!isReplayable(request)) return Effect.as(options.invalidate(header), response)
      return resend(request, response, header)
    })

  return HttpClient.makeWith(
    (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.flatMap(request, execute),
    Effect.succeed
  )
}
