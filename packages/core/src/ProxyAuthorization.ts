/**
 * `proxy-authorization: Bearer <token>` on every OAuth HTTP call, for identity-aware proxies in front of the
 * identity provider or Flyte admin (the token usually comes from `proxyCommand`).
 *
 * Every flow and the `TokenClient` send their requests through the `HttpClient` in context, so wrapping that
 * client (`layer`, `layerCommand`) reaches every call: device authorization, device polls, refresh, code exchange,
 * client credentials and the configuration fetch.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { AuthenticationError, type AuthError } from "./AuthError.js"
import type { CommandRunner } from "./CommandRunner.js"
import { bearer, bearerToken, type Credentials } from "./Credentials.js"
import * as ExternalCommand from "./ExternalCommand.js"
import * as TokenCache from "./TokenCache.js"

/**
 * The header this module sets.
 *
 * @since 0.1.0
 * @category constants
 */
export const headerName = "proxy-authorization"

/**
 * Where the proxy token comes from: a bare token (used until the proxy rejects it) or credentials (also renewed
 * when they near their `expiresAt`).
 *
 * @since 0.1.0
 * @category models
 */
export type TokenSource<R = never> = Effect.Effect<Redacted.Redacted<string> | Credentials, AuthError, R>

/**
 * Wraps a client so that every request carries `proxy-authorization: Bearer <token>`.
 *
 * The token is obtained on the first request and cached (one run of `token` for concurrent requests). When the
 * proxy answers 407, the cached token is dropped (unless another request already replaced it) and the request is
 * sent once more with a new token; a second 407 is returned to the caller. A request whose body is a stream cannot
 * be replayed and is not resent. When the token cannot be obtained, the request fails with a `RequestError` of
 * reason `Transport` whose `cause` is an `AuthenticationError` saying why (the `TokenClient` and the flows fail
 * with that error itself, e.g. reason `CommandFailed` or `Timeout` for a proxy command).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withProxyAuthorization: {
  (token: TokenSource): (client: HttpClient.HttpClient) => Effect.Effect<HttpClient.HttpClient>
  (client: HttpClient.HttpClient, token: TokenSource): Effect.Effect<HttpClient.HttpClient>
} = dual(
  2,
  (client: HttpClient.HttpClient, token: TokenSource): Effect.Effect<HttpClient.HttpClient> =>
    Effect.sync(() => wrap(client, TokenCache.make(token)))
)

/**
 * Replaces the `HttpClient` in context with one that adds `proxy-authorization` (see `withProxyAuthorization`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R>(
  token: TokenSource<R>
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | R> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.gen(function*() {
      const context = yield* Effect.context<R>()
      const client = yield* HttpClient.HttpClient
      return yield* withProxyAuthorization(client, Effect.provide(token, context))
    })
  )

/**
 * Replaces the `HttpClient` in context with one that adds the token of `cache`: the way to share one proxy token
 * (one run of the proxy command, one renewal on rejection) with other transports, e.g. the gRPC
 * `GrpcAuth.proxyInterceptor` given the same cache.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerCache = (
  cache: TokenCache.TokenCache<AuthError>
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient> =>
  Layer.effect(HttpClient.HttpClient, Effect.map(HttpClient.HttpClient, (client) => wrap(client, cache)))

/**
 * The proxy token printed by `proxyCommand`, read as by `ExternalCommand.authenticate` (a JSON output with an
 * expiry is renewed before it expires), as a cache to share between transports (`layerCache`,
 * `GrpcAuth.proxyInterceptor`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const commandCache = (
  options: ExternalCommand.ProxyOptions
): Effect.Effect<TokenCache.TokenCache<AuthError>, never, CommandRunner> =>
  Effect.map(Effect.context<CommandRunner>(), (context) =>
    TokenCache.make(
      ExternalCommand.authenticate({ endpoint: headerName, command: options.command, timeout: options.timeout }).pipe(
        Effect.provide(context)
      )
    ))

/**
 * Replaces the `HttpClient` in context with one that adds the token printed by `proxyCommand` (read as by
 * `ExternalCommand.authenticate`, so a JSON output with an expiry is renewed before it expires).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCommand = (
  options: ExternalCommand.ProxyOptions
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | CommandRunner> =>
  Layer.unwrapEffect(Effect.map(commandCache(options), layerCache))

// --- internals -------------------------------------------------------------------------------------------------

const wrap = (client: HttpClient.HttpClient, cache: TokenCache.TokenCache<AuthError>): HttpClient.HttpClient =>
  client.pipe(
    HttpClient.mapRequestEffect((request) =>
      cache.get.pipe(
        Effect.map((token) => HttpClientRequest.setHeader(request, headerName, Redacted.value(bearer(token)))),
        Effect.mapError((error) => {
          const description = `No proxy authorization token: ${
            error._tag === "AuthenticationError" ? error.description : error.message
          }`
          return new HttpClientError.RequestError({
            request,
            reason: "Transport",
            description,
            cause: error._tag === "AuthenticationError"
              ? new AuthenticationError({ ...error, description })
              : new AuthenticationError({ reason: "Transport", description, cause: error })
          })
        })
      )
    ),
    HttpClient.transformResponse((send) =>
      Effect.flatMap(send, (response) => {
        if (response.status !== 407 || response.request.body._tag === "Stream") return Effect.succeed(response)
        const sent = response.request.headers[headerName]
        return (sent === undefined ? Effect.void : cache.invalidate(bearerToken(Redacted.make(sent)))).pipe(
          Effect.zipRight(Effect.logDebug("The proxy answered 407: obtaining a new proxy token and resending once")),
          Effect.zipRight(send)
        )
      })
    )
  )
