/**
 * The OAuth 2.0 Client Credentials Grant (RFC 6749 §4.4): a service authenticates as itself with a client id and
 * secret, without a user.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { AuthenticationError } from "./AuthError.js"
import { type ClientConfig, nonEmpty } from "./ClientConfig.js"
import type { Credentials } from "./Credentials.js"
import { fromTokens } from "./Credentials.js"
import * as Policies from "./Policies.js"
import * as TokenClient from "./TokenClient.js"

/**
 * How the client secret reaches the token endpoint when the caller pins it: `basic` (HTTP Basic, RFC 6749 §2.3.1)
 * or `post` (in the form body). Unpinned, the way the server accepts is found (`TokenClient.clientAuthentication`).
 *
 * @since 0.1.0
 * @category models
 */
export type AuthMethod = "basic" | "post"

/**
 * What the client credentials flow needs. `scopes` and `audience` default to the values of `config`; each is
 * sent only when set.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The endpoint the credentials are for (the keyring key). */
  readonly endpoint: string
  readonly config: ClientConfig
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly authMethod?: AuthMethod | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly audience?: string | undefined
}

/**
 * Obtains credentials with the client credentials grant. Transient failures (network, 5xx, 429) are retried with
 * `Policies.transientRetry`: the request is idempotent. The credentials carry `expiresAt`, so the
 * `Authenticator` reuses them until they near expiry.
 *
 * @example
 * ```ts
 * import { ClientConfig, ClientCredentials } from "@flyte-auth/core"
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect, Redacted } from "effect"
 *
 * const credentials = ClientCredentials.authenticate({
 *   endpoint: "flyte.example.com",
 *   config: new ClientConfig.ClientConfig({ tokenEndpoint: "https://idp.example.com/token" }),
 *   clientId: "my-service",
 *   clientSecret: Redacted.make(process.env.CLIENT_SECRET!),
 *   scopes: ["all"]
 * }).pipe(Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 * @category flows
 */
export const authenticate: (
  options: Options
) => Effect.Effect<Credentials, AuthenticationError, HttpClient.HttpClient> = Effect.fn(
  "ClientCredentials.authenticate"
)(function*(options: Options) {
  return yield* TokenClient.clientCredentials({
    tokenEndpoint: options.config.tokenEndpoint,
    client: TokenClient.clientAuthentication({
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      authMethod: options.authMethod,
      supported: options.config.tokenEndpointAuthMethods
    }),
    scopes: options.scopes ?? options.config.scopes,
    audience: nonEmpty(options.audience ?? options.config.audience)
  }).pipe(
    Effect.retry(Policies.transientRetry),
    Effect.map((tokens) => fromTokens(tokens, options.endpoint))
  )
})
