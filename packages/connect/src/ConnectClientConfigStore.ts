/**
 * A `ClientConfigStore` that asks a Flyte 2 endpoint over ConnectRPC: `flyteidl2.auth.AuthMetadataService`'s
 * `GetOAuth2Metadata` (the authorization server's endpoints) and `GetPublicClientConfig` (client id, redirect URI,
 * scopes, the header that carries the token, audience, `service_http_endpoint`, `dataplane_domain`).
 *
 * Both calls go out together on the first `get`, anonymous (give the store a transport without the auth
 * interceptor, whose `Authenticator` depends on this store; a proxy interceptor is fine), each with a timeout and
 * retried on transient failure (`Policies.transientRetry`); the result is cached for the life of the store, a
 * failure is not. Empty proto3 strings count as absent; `overrides` win over the published values. An answer that
 * is not ConnectRPC (an HTML page: a wrong URL, a proxy's login page) fails with reason `InvalidResponse` saying
 * so.
 *
 * @example
 * ```ts
 * import { createConnectTransport } from "@connectrpc/connect-node"
 * import { ConnectClientConfigStore } from "@flyte-auth/connect"
 *
 * const ConfigLive = ConnectClientConfigStore.layer({
 *   endpoint: "https://flyte.example.com",
 *   transport: createConnectTransport({ baseUrl: "https://flyte.example.com", httpVersion: "2" })
 * })
 * ```
 *
 * @since 0.2.0
 */
import type { Transport } from "@connectrpc/connect"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as ClientConfig from "@flyte-auth/core/ClientConfig"
import * as Policies from "@flyte-auth/core/Policies"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { AuthMetadataService } from "./gen/flyteidl2/auth/auth_service_pb.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Target {
  /** The Flyte 2 endpoint, for messages (the transport decides where the calls go). */
  readonly endpoint: string
  /** A ConnectRPC transport to it, without the auth interceptor. */
  readonly transport: Transport
  /** Values set by the user, which win over the published ones. */
  readonly overrides?: ClientConfig.Overrides | undefined
  /** The timeout of each call (default `Policies.httpTimeout`). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * The fully qualified name of the service this store calls.
 *
 * @since 0.2.0
 * @category constants
 */
export const serviceName = AuthMetadataService.typeName

/**
 * The metadata and published client of `target`, mapped to a `ClientConfig` (not cached: see `make`).
 *
 * @since 0.2.0
 * @category requests
 */
export const fetchConfig = (target: Target): Effect.Effect<ClientConfig.ClientConfig, AuthenticationError> => {
  const client = createClient(AuthMetadataService, target.transport)
  const timeoutMs = Duration.toMillis(Duration.decode(target.timeout ?? Policies.httpTimeout))
  const call = <A>(method: string, run: (signal: AbortSignal) => Promise<A>) =>
    Effect.tryPromise({
      try: (signal) => run(signal),
      catch: (error) => fromConnectError(ConnectError.from(error), method, target.endpoint)
    }).pipe(Effect.retry(Policies.transientRetry))
  return Effect.all([
    call("GetOAuth2Metadata", (signal) => client.getOAuth2Metadata({}, { signal, timeoutMs })),
    call("GetPublicClientConfig", (signal) => client.getPublicClientConfig({}, { signal, timeoutMs }))
  ], { concurrency: 2 }).pipe(
    Effect.flatMap(([metadata, published]) =>
      ClientConfig.fromServerMetadata(
        {
          issuer: metadata.issuer,
          token_endpoint: metadata.tokenEndpoint,
          authorization_endpoint: metadata.authorizationEndpoint,
          device_authorization_endpoint: metadata.deviceAuthorizationEndpoint,
          jwks_uri: metadata.jwksUri,
          token_endpoint_auth_methods_supported: metadata.tokenEndpointAuthMethodsSupported
        },
        { source: `The ${serviceName} of ${target.endpoint}`, overrides: target.overrides },
        {
          clientId: published.clientId,
          redirectUri: published.redirectUri,
          scopes: published.scopes,
          audience: published.audience,
          headerKey: published.authorizationMetadataKey,
          serviceHttpEndpoint: published.serviceHttpEndpoint,
          dataplaneDomain: published.dataplaneDomain
        }
      )
    ),
    Effect.withSpan("ConnectClientConfigStore.fetch", { attributes: { endpoint: target.endpoint } })
  )
}

/**
 * Builds the store (nothing is sent until the first `get`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (target: Target): Effect.Effect<ClientConfig.ClientConfigStore.Service, never, Scope.Scope> =>
  ClientConfig.makeCached(fetchConfig(target))

/**
 * The store as a layer (see `make`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (target: Target): Layer.Layer<ClientConfig.ClientConfigStore> =>
  Layer.scoped(ClientConfig.ClientConfigStore, make(target))

const fromConnectError = (error: ConnectError, method: string, endpoint: string): AuthenticationError => {
  const what = `${serviceName}/${method} at ${endpoint}`
  if (/content.type|invalid (?:message|frame)|protocol error|unexpected end/i.test(error.rawMessage)) {
    return new AuthenticationError({
      reason: "InvalidResponse",
      description: `${what} answered with something that is not ConnectRPC (${error.rawMessage}): is this the ` +
        "Flyte 2 endpoint, and not a web page or a proxy's login page?",
      cause: error
    })
  }
  switch (error.code) {
    case Code.Unimplemented:
      return new AuthenticationError({
        reason: "Config",
        description: `The server at ${endpoint} does not implement ${serviceName} (${method} answered ` +
          "UNIMPLEMENTED): is it a Flyte 2 endpoint? Configure the OAuth2 client explicitly otherwise",
        cause: error
      })
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return new AuthenticationError({
        reason: error.code === Code.DeadlineExceeded ? "Timeout" : "Transport",
        description: `Cannot reach ${what}: ${error.rawMessage}`,
        cause: error
      })
    default:
      return new AuthenticationError({
        reason: "InvalidResponse",
        description: `${what} failed: ${Code[error.code]}: ${error.rawMessage}`,
        cause: error
      })
  }
}
