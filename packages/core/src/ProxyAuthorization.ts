/**
 * `proxy-authorization: Bearer <token>` on every OAuth HTTP call, for identity-aware proxies in front of the
 * identity provider or Flyte admin (the token usually comes from `proxyCommand`).
 *
 * Every flow and the `TokenClient` send their requests through the `HttpClient` in context, so wrapping that
 * client (`layer`, `layerCommand`) with a `TokenSource` reaches every call: device authorization, device polls, refresh, code exchange,
 * client credentials and the configuration fetch.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { AuthenticationError } from "./AuthError.js"
import * as AuthHeader from "./AuthHeader.js"
import type { CommandRunner } from "./CommandRunner.js"
import * as ExternalCommand from "./ExternalCommand.js"
import * as Resend from "./internal/resend.js"
import * as TokenSource from "./TokenSource.js"

/**
 * The header this module sets.
 *
 * @since 0.1.0
 * @category constants
 */
export const headerName = "proxy-authorization"

/**
 * Wraps a client so that every request carries `proxy-authorization: Bearer <token>`, the access token of
 * `source` (see `TokenSource.reuse`: one run for concurrent requests, renewed near its expiry).
 *
 * When the proxy answers 407, the header that was sent is handed back to `source.invalidate` (which keeps a token
 * another request already replaced) and the request is sent once more with a new token; a second 407 is returned
 * to the caller. A request whose body is a stream cannot be replayed and is not resent (the next request gets a
 * new token). When the token cannot be obtained, the request fails with
 * a `RequestError` of reason `Transport` whose `cause` is an `AuthenticationError` saying why (the `TokenClient`
 * and the flows fail with that error itself, e.g. reason `CommandFailed` or `Timeout` for a proxy command).
 *
 * Give the same source to the other transports (`GrpcAuth.proxyInterceptor`) so that one token serves them all
 * and a rejection seen by any of them renews it for all.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withProxyAuthorization: {
  (source: TokenSource.TokenSource): (client: HttpClient.HttpClient) => HttpClient.HttpClient
  (client: HttpClient.HttpClient, source: TokenSource.TokenSource): HttpClient.HttpClient
} = dual(
  2,
  (client: HttpClient.HttpClient, source: TokenSource.TokenSource): HttpClient.HttpClient =>
    Resend.withHeader(client, {
      header: (request) =>
        source.get.pipe(
          Effect.map((credentials) => AuthHeader.make(headerName, credentials)),
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
        ),
      invalidate: source.invalidate,
      rejection: 407,
      what: "proxy token"
    })
)

/**
 * Replaces the `HttpClient` in context with one that adds the token of `source` (see `withProxyAuthorization`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  source: TokenSource.TokenSource
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient> =>
  Layer.effect(HttpClient.HttpClient, Effect.map(HttpClient.HttpClient, withProxyAuthorization(source)))

/**
 * The proxy token printed by `proxyCommand`, read by `ExternalCommand.proxyToken` (a JSON output with an
 * expiry is renewed before it expires), as a token source to share between transports (`layer`,
 * `GrpcAuth.proxyInterceptor`). A run of the command belongs to the current scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const commandSource = (
  options: ExternalCommand.ProxyOptions
): Effect.Effect<TokenSource.TokenSource<AuthenticationError>, never, CommandRunner | Scope.Scope> =>
  TokenSource.reuse(ExternalCommand.proxyToken(options))

/**
 * Replaces the `HttpClient` in context with one that adds the token printed by `proxyCommand` (see
 * `commandSource`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCommand = (
  options: ExternalCommand.ProxyOptions
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | CommandRunner> =>
  Layer.unwrapScoped(Effect.map(commandSource(options), layer))
