/**
 * The refresh-token grant of stored credentials (RFC 6749 §6), as the `Authenticator` runs it by default: the
 * client of the configuration (or the configured one), never more scope than was granted, the refreshed tokens
 * kept for the same endpoint, a new ID token verified.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { AuthError } from "../AuthError.js"
import { AuthenticationError } from "../AuthError.js"
import type { ClientConfigStore } from "../ClientConfig.js"
import * as Credentials from "../Credentials.js"
import * as IdToken from "../IdToken.js"
import * as TokenClient from "../TokenClient.js"

/** @internal */
export interface Options {
  readonly clientId?: string | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** `"granted"`: send the scope that was granted; else none ("as granted"). */
  readonly refreshScope?: "omit" | "granted" | undefined
}

/** @internal */
export const refresh = (
  configStore: ClientConfigStore.Service,
  credentials: Credentials.Credentials,
  refreshToken: Redacted.Redacted<string>,
  options: Options
): Effect.Effect<Credentials.Credentials, AuthError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const config = yield* configStore.get
    const clientId = options.clientId ?? config.clientId
    if (clientId === undefined) {
      return yield* new AuthenticationError({
        reason: "Config",
        description: `Cannot refresh the credentials for ${credentials.endpoint}: the client configuration has no ` +
          `client id`
      })
    }
    return yield* TokenClient.refresh({
      tokenEndpoint: config.tokenEndpoint,
      client: TokenClient.clientAuthentication({
        clientId,
        clientSecret: options.clientSecret,
        supported: config.tokenEndpointAuthMethods
      }),
      refreshToken,
      // RFC 6749 §6: never more than was granted; by default nothing, which means "as granted".
      scopes: options.refreshScope === "granted" ? credentials.scopes : undefined,
      grantedScopes: credentials.scopes
    }).pipe(
      // The refreshed tokens stay the credentials of the endpoint they were refreshed for.
      Effect.map((tokens) => Credentials.fromTokens(tokens, credentials.endpoint)),
      Effect.flatMap((refreshed) => IdToken.verifyCredentials(refreshed, { config, clientId }))
    )
  })
