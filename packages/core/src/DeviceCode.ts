/**
 * The OAuth 2.0 Device Authorization Grant (RFC 8628): for machines without a browser. The user approves the
 * login on another device while this one polls the token endpoint.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import { AuthenticationError } from "./AuthError.js"
import type { AuthenticationPending } from "./AuthError.js"
import { type ClientConfig, nonEmpty } from "./ClientConfig.js"
import type { Credentials } from "./Credentials.js"
import { fromTokens } from "./Credentials.js"
import { DevicePrompt } from "./DevicePrompt.js"
import * as IdToken from "./IdToken.js"
import * as Policies from "./Policies.js"
import * as TokenClient from "./TokenClient.js"

/**
 * What the device flow needs. `clientId`, `scopes` and `audience` default to the values of `config`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The endpoint the credentials are for (the keyring key). */
  readonly endpoint: string
  readonly config: ClientConfig
  readonly clientId?: string | undefined
  /** Only for a confidential device client; it is then sent by HTTP Basic. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly audience?: string | undefined
  /**
   * Gives up earlier than the device code's own `expires_in` (failing with reason `Timeout`).
   * Without it, polling ends when the device code expires.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** The polling interval when the server sends none (default 5 s; Flyte's `deviceFlowConfig.pollInterval`). */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * Runs the device flow: asks for a device code, shows the user where to approve it (`DevicePrompt`), then polls
 * the token endpoint every `interval` (5 s when the server sends none, 5 s more after each `slow_down`) until the
 * user approves (credentials), denies (`AccessDenied`), or the code expires by `Clock` (`ExpiredToken`).
 * A configuration without a device authorization endpoint fails at once with reason `Config`. A transient failure
 * (network, 5xx, 429) of the device authorization request is retried with `Policies.transientRetry`; polling
 * lives through a few server failures (5xx, 429) in a row (`Policies.devicePolling`); any other failed poll
 * (including a transport failure: its answer may have been lost after the IdP spent the code) ends the flow with
 * its typed error.
 *
 * @example
 * ```ts
 * import { ClientConfig, DeviceCode, DevicePrompt } from "@flyte-auth/core"
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const config = new ClientConfig.ClientConfig({
 *   tokenEndpoint: "https://idp.example.com/token",
 *   deviceAuthorizationEndpoint: "https://idp.example.com/device/auth",
 *   clientId: "flytectl",
 *   scopes: ["offline_access", "all"]
 * })
 * const credentials = DeviceCode.authenticate({ endpoint: "flyte.example.com", config }).pipe(
 *   Effect.provide([FetchHttpClient.layer, DevicePrompt.layerLog])
 * )
 * ```
 *
 * @since 0.1.0
 * @category flows
 */
export const authenticate: (
  options: Options
) => Effect.Effect<
  Credentials,
  AuthenticationError,
  HttpClient.HttpClient | DevicePrompt
> = Effect.fn("DeviceCode.authenticate")(function*(options: Options) {
  const { config, endpoint } = options
  const deviceAuthorizationEndpoint = config.deviceAuthorizationEndpoint
  if (deviceAuthorizationEndpoint === undefined) {
    return yield* new AuthenticationError({
      reason: "Config",
      setting: "authMode",
      description: `The identity provider of ${endpoint} offers no device authorization endpoint, ` +
        `so the DeviceFlow auth mode cannot work there: choose another auth mode (e.g. Pkce)`
    })
  }
  const clientId = options.clientId ?? config.clientId
  if (clientId === undefined) {
    return yield* new AuthenticationError({
      reason: "Config",
      setting: "clientId",
      description: `No client id is configured for the device flow of ${endpoint}`
    })
  }
  const client = TokenClient.clientAuthentication({
    clientId,
    clientSecret: options.clientSecret,
    supported: config.tokenEndpointAuthMethods
  })

  const scopes = options.scopes ?? config.scopes
  // RFC 8628 defines no nonce, but OpenID providers that offer the device flow take one (oidc-provider, Glewlwyd):
  // sent with `openid`, and checked when the id_token carries it.
  const nonce = IdToken.isOpenIdRequest(scopes) ? yield* IdToken.generateNonce : undefined
  // Asking for a device code is idempotent (nobody has seen the code yet): transient failures are retried.
  const authorization = yield* TokenClient.deviceAuthorization({
    deviceAuthorizationEndpoint,
    client,
    scopes,
    nonce,
    audience: nonEmpty(options.audience ?? config.audience),
    defaultInterval: options.pollInterval
  }).pipe(Effect.retry(Policies.transientRetry))
  const issuedAt = yield* DateTime.now
  const timeout = options.timeout === undefined ? undefined : Duration.decode(options.timeout)
  const timedOut = timeout !== undefined && Duration.lessThan(timeout, authorization.expiresIn)
  const deadline = DateTime.addDuration(issuedAt, timedOut ? timeout : authorization.expiresIn)
  const gaveUp = new AuthenticationError(
    timedOut
      ? { reason: "Timeout", description: `The device login for ${endpoint} was not approved in time` }
      : { reason: "ExpiredToken", description: `The device code for ${endpoint} expired before it was approved` }
  )

  const prompt = yield* DevicePrompt
  yield* prompt.show({
    verificationUri: authorization.verificationUri,
    verificationUriComplete: authorization.verificationUriComplete,
    userCode: authorization.userCode,
    expiresIn: authorization.expiresIn
  })

  yield* Effect.sleep(authorization.interval)
  if (DateTime.greaterThanOrEqualTo(yield* DateTime.now, deadline)) return yield* gaveUp

  const poll: Effect.Effect<Credentials, AuthenticationError | AuthenticationPending, HttpClient.HttpClient> =
    TokenClient.deviceToken({
      tokenEndpoint: config.tokenEndpoint,
      client,
      deviceCode: authorization.deviceCode
    }).pipe(Effect.map((tokens) => fromTokens(tokens, endpoint)))
  return yield* poll.pipe(
    Effect.tapErrorTag("AuthenticationPending", (pending) => Effect.logDebug(`Device flow: ${pending.description}`)),
    Effect.tapErrorTag("AuthenticationError", (error) =>
      Policies.isServerBusy(error)
        ? Effect.logWarning(`Device flow: a poll of the token endpoint failed (${error.message}); polling on`)
        : Effect.void),
    Effect.retry(Policies.devicePolling(authorization.interval, deadline)),
    Effect.catchTag("AuthenticationPending", () => Effect.fail(gaveUp)),
    Effect.flatMap((credentials) =>
      IdToken.verifyCredentials(credentials, { config, clientId, nonce, requireNonce: false })
    )
  )
})
