/**
 * Logging out at the identity provider: revoking the stored refresh token at the revocation endpoint (RFC 7009)
 * before the credentials are forgotten locally, so that a copy of the token (a backup, another machine's keyring)
 * is of no use either.
 *
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import { AuthenticationError } from "./AuthError.js"
import * as ClientConfig from "./ClientConfig.js"
import type { Credentials } from "./Credentials.js"
import * as TokenClient from "./TokenClient.js"

/**
 * What a revocation came to: the refresh token was `Revoked`; there was `NothingToRevoke` (no refresh token is
 * stored); the identity provider publishes no revocation endpoint (`Unsupported`); or the revocation `Failed`
 * (the credentials are still forgotten locally; the caller has been warned).
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome = "Revoked" | "NothingToRevoke" | "Unsupported" | "Failed"

/**
 * The revocation endpoint of a configuration: the one it names (the admin's OAuth metadata or the discovery
 * document it came from), else the one in the OpenID discovery document of its issuer (a Flyte admin's
 * `GetOAuth2Metadata` has no field for it). `undefined` when neither names one.
 *
 * @since 0.2.0
 * @category utils
 */
export const revocationEndpoint = (
  config: ClientConfig.ClientConfig
): Effect.Effect<string | undefined, AuthenticationError, HttpClient.HttpClient> => {
  if (config.revocationEndpoint !== undefined) return Effect.succeed(config.revocationEndpoint)
  if (config.issuer === undefined) return Effect.succeed(undefined)
  return Effect.scoped(
    Effect.flatMap(ClientConfig.makeOidcDiscovery(config.issuer), (store) => store.get)
  ).pipe(Effect.map((discovered) => discovered.revocationEndpoint))
}

/**
 * Revokes the refresh token of `credentials` (RFC 7009, `token_type_hint=refresh_token`), authenticating as the
 * client that obtained it. Never fails: a failure is logged as a warning (without any token) and reported as
 * `Failed`, since a logout must forget the local credentials whatever the identity provider says.
 *
 * @since 0.2.0
 * @category requests
 */
export const revokeCredentials = (options: {
  readonly credentials: Credentials
  /** The configuration, or the effect that reads it (e.g. `ClientConfigStore.get`; its failure is a `Failed`). */
  readonly config: ClientConfig.ClientConfig | Effect.Effect<ClientConfig.ClientConfig, AuthenticationError>
  /** The client the credentials were issued to (default: the configuration's). */
  readonly clientId?: string | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
}): Effect.Effect<Outcome, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const refreshToken = options.credentials.refreshToken
    if (refreshToken === undefined) return "NothingToRevoke" as const
    const config = Effect.isEffect(options.config) ? yield* options.config : options.config
    const endpoint = yield* revocationEndpoint(config)
    if (endpoint === undefined) return "Unsupported" as const
    const clientId = options.clientId ?? config.clientId
    if (clientId === undefined) {
      return yield* new AuthenticationError({
        reason: "Config",
        description: "the client configuration has no client id"
      })
    }
    yield* TokenClient.revoke({
      revocationEndpoint: endpoint,
      client: TokenClient.clientAuthentication({
        clientId,
        clientSecret: options.clientSecret,
        supported: config.tokenEndpointAuthMethods
      }),
      token: refreshToken,
      tokenTypeHint: "refresh_token"
    })
    return "Revoked" as const
  }).pipe(
    Effect.catchAll((error) =>
      Effect.as(
        Effect.logWarning(
          `Could not revoke the refresh token of ${options.credentials.endpoint} at the identity provider ` +
            `(${error.message}); the local credentials are deleted anyway`
        ),
        "Failed" as const
      )
    ),
    Effect.withSpan("Revocation.revokeCredentials", { attributes: { endpoint: options.credentials.endpoint } })
  )
