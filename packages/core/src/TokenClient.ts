/**
 * Calls to an OAuth2 token endpoint (RFC 6749) and device authorization endpoint (RFC 8628).
 * Every call has a timeout, parses RFC 6749 §5.2 errors, and turns anything else a server may answer
 * (HTML, garbage, missing fields) into a typed `AuthenticationError`.
 *
 * The calls go through the `HttpClient` in context: wrap that client to add headers to every OAuth call
 * (this is how `proxy-authorization` reaches the token endpoint).
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthenticationError, AuthenticationPending } from "./AuthError.js"
import type { Tokens } from "./Credentials.js"
import { jwtExpiry } from "./Credentials.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import { decodeBody, describeUrl, requestJson, scrubber } from "./internal/oauthHttp.js"
import * as Policies from "./Policies.js"

/**
 * How the client authenticates to the token endpoint: a public client sends only its id; a confidential
 * client sends its secret by HTTP Basic (RFC 6749 §2.3.1), in the form body, or `auto`: the way the server
 * accepts (see `clientAuthentication`).
 *
 * @since 0.1.0
 * @category models
 */
export type ClientAuthentication =
  | { readonly method: "none"; readonly clientId: string }
  | {
    readonly method: "client_secret_basic" | "client_secret_post" | "auto"
    readonly clientId: string
    readonly clientSecret: Redacted.Redacted<string>
    /**
     * `auto`: the server's `token_endpoint_auth_methods_supported`, when it published them
     * (`ClientConfig.tokenEndpointAuthMethods`).
     */
    readonly supported?: ReadonlyArray<string> | undefined
  }

/**
 * The client authentication for a client of `config`: `none` without a secret; with one, `basic` or `post` when
 * the caller pinned it, else `auto`, which honours the server's `token_endpoint_auth_methods_supported` and
 * otherwise does what golang.org/x/oauth2's `AuthStyleAutoDetect` does: HTTP Basic with RFC 6749 §2.3.1
 * form-url-encoded credentials first; when the server refuses that as an invalid client (`invalid_client`, 401 or
 * 403), the same request once more with the raw credentials (only when encoding changes them: some servers do not
 * decode Basic credentials), then with `client_secret_post`. What worked is remembered per token endpoint and
 * client id for the life of the process, so later requests go the right way at once.
 *
 * @since 0.2.0
 * @category constructors
 */
export const clientAuthentication = (options: {
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly authMethod?: "basic" | "post" | undefined
  readonly supported?: ReadonlyArray<string> | undefined
}): ClientAuthentication =>
  options.clientSecret === undefined
    ? { method: "none", clientId: options.clientId }
    : {
      method: options.authMethod === "basic"
        ? "client_secret_basic"
        : options.authMethod === "post"
        ? "client_secret_post"
        : "auto",
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      supported: options.supported
    }

/**
 * The `Authorization: Basic` value of RFC 6749 §2.3.1: client id and secret are each
 * `application/x-www-form-urlencoded` before they are joined by `:` and base64-encoded.
 *
 * @example
 * ```ts
 * import { TokenClient } from "@flyte-auth/core"
 * import { Redacted } from "effect"
 * Redacted.value(TokenClient.basicAuthorization("client_id", Redacted.make("abc")))
 * // "Basic Y2xpZW50X2lkOmFiYw=="
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const basicAuthorization = (
  clientId: string,
  clientSecret: Redacted.Redacted<string>
): Redacted.Redacted<string> =>
  Redacted.make(
    `Basic ${Encoding.encodeBase64(`${formEncode(clientId)}:${formEncode(Redacted.value(clientSecret))}`)}`
  )

/**
 * `application/x-www-form-urlencoded` encoding of one value (spaces as `+`).
 *
 * @since 0.1.0
 * @category utils
 */
export const formEncode = (value: string): string => new URLSearchParams([["", value]]).toString().slice(1)

/** Seconds, as a number or a numeric string; at most ~317 years so that an expiry is always a valid date. */
const Seconds = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0 && n <= 1e10, {
    message: () => "must be a non-negative number of seconds"
  })
)

/** A token that can be sent in an HTTP header: printable ASCII, no whitespace or control characters. */
const HeaderSafeToken = Schema.String.pipe(
  Schema.pattern(/^[\x21-\x7e]+$/, { message: () => "must be printable ASCII without spaces" })
)

/** An optional field that a server may also send as `null`. */
const optionalNullable = <S extends Schema.Schema.All>(schema: S) =>
  Schema.optionalWith(schema, { nullable: true, exact: true })

/**
 * A successful token response (RFC 6749 §5.1). `expires_in` is optional and may be a number or a numeric string;
 * optional fields sent as `null` count as absent. The access token must be usable in an HTTP header.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenResponse = Schema.Struct({
  access_token: Schema.Redacted(HeaderSafeToken),
  token_type: optionalNullable(Schema.String),
  expires_in: optionalNullable(Seconds),
  refresh_token: optionalNullable(Schema.Redacted(Schema.NonEmptyString)),
  id_token: optionalNullable(Schema.Redacted(Schema.NonEmptyString)),
  scope: optionalNullable(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type TokenResponse = typeof TokenResponse.Type

/**
 * An error response (RFC 6749 §5.2).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorResponse = OAuthHttp.ErrorResponse

/**
 * A device authorization response (RFC 8628 §3.2). Some servers spell `verification_uri` as
 * `verification_url`; both are accepted.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeviceAuthorizationResponse = Schema.Struct({
  device_code: Schema.Redacted(Schema.NonEmptyString),
  user_code: Schema.NonEmptyString,
  verification_uri: optionalNullable(Schema.NonEmptyString),
  verification_url: optionalNullable(Schema.NonEmptyString),
  verification_uri_complete: optionalNullable(Schema.NonEmptyString),
  expires_in: Seconds,
  interval: optionalNullable(Seconds)
})

/**
 * The device authorization, with durations decoded.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceAuthorization {
  readonly deviceCode: Redacted.Redacted<string>
  readonly userCode: string
  readonly verificationUri: string
  readonly verificationUriComplete: string | undefined
  readonly expiresIn: Duration.Duration
  readonly interval: Duration.Duration
}

/**
 * Common inputs of a token request. The requests answer the `Credentials.Tokens` the server granted; whose they
 * are (the endpoint, the keyring account) is for the caller that stores them (`Credentials.fromTokens`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  readonly tokenEndpoint: string
  readonly client: ClientAuthentication
}

/**
 * Exchanges an authorization code (with its PKCE verifier) for tokens.
 *
 * @since 0.1.0
 * @category requests
 */
export const authorizationCode = Effect.fn("TokenClient.authorizationCode")(function*(
  options: RequestOptions & {
    readonly code: Redacted.Redacted<string>
    readonly codeVerifier: Redacted.Redacted<string>
    readonly redirectUri: string
  }
) {
  return yield* requestTokens(options, {
    grant_type: "authorization_code",
    code: options.code,
    code_verifier: options.codeVerifier,
    redirect_uri: options.redirectUri
  })
})

/**
 * Uses a refresh token. When the response carries no new refresh token, the previous one is kept; when it names
 * no scope, the granted scope stays what it was (RFC 6749 §5.1).
 *
 * `scopes` is sent only when given, and should then be the scope that was GRANTED (`Credentials.scopes`), never
 * the one requested at login: RFC 6749 §6 forbids a refresh to ask for more than was granted, and omitting it
 * means "as granted". Identity providers that granted fewer scopes than requested answer `invalid_scope` to a
 * refresh that names the requested ones.
 *
 * @since 0.1.0
 * @category requests
 */
export const refresh = Effect.fn("TokenClient.refresh")(function*(
  options: RequestOptions & {
    readonly refreshToken: Redacted.Redacted<string>
    readonly scopes?: ReadonlyArray<string> | undefined
    /** The scopes granted so far, kept when the response does not name any. */
    readonly grantedScopes?: ReadonlyArray<string> | undefined
  }
) {
  const tokens = yield* requestTokens(options, {
    grant_type: "refresh_token",
    refresh_token: options.refreshToken,
    scope: joinScopes(options.scopes)
  })
  const kept: Tokens = {
    ...tokens,
    refreshToken: tokens.refreshToken ?? options.refreshToken,
    scopes: tokens.scopes ?? options.grantedScopes
  }
  return kept
})

/**
 * The client credentials grant; scope and audience are sent only when set.
 *
 * @since 0.1.0
 * @category requests
 */
export const clientCredentials = Effect.fn("TokenClient.clientCredentials")(function*(
  options: RequestOptions & {
    readonly scopes?: ReadonlyArray<string> | undefined
    readonly audience?: string | undefined
  }
) {
  return yield* requestTokens(options, {
    grant_type: "client_credentials",
    scope: joinScopes(options.scopes),
    audience: options.audience
  })
})

/**
 * Starts a device authorization (RFC 8628 §3.1). The polling interval is the server's, else `defaultInterval`
 * (default `Policies.defaultDevicePollInterval`, 5 s).
 *
 * @since 0.1.0
 * @category requests
 */
export const deviceAuthorization = Effect.fn("TokenClient.deviceAuthorization")(function*(options: {
  readonly deviceAuthorizationEndpoint: string
  readonly client: ClientAuthentication
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly audience?: string | undefined
  /** OpenID Connect: the login's nonce, sent when given. */
  readonly nonce?: Redacted.Redacted<string> | undefined
  readonly defaultInterval?: Duration.DurationInput | undefined
}) {
  const { body } = yield* send(options.deviceAuthorizationEndpoint, options.client, {
    scope: joinScopes(options.scopes),
    audience: options.audience,
    nonce: options.nonce
  })
  const response = yield* decodeBody(DeviceAuthorizationResponse, body, "device authorization")
  const verificationUri = response.verification_uri ?? response.verification_url
  if (verificationUri === undefined) {
    return yield* new AuthenticationError({
      reason: "InvalidResponse",
      description: "The device authorization response has no verification_uri"
    })
  }
  return {
    deviceCode: response.device_code,
    userCode: response.user_code,
    verificationUri,
    verificationUriComplete: response.verification_uri_complete,
    expiresIn: Duration.seconds(response.expires_in),
    interval: response.interval !== undefined && response.interval > 0
      ? Duration.seconds(response.interval)
      : Duration.decode(options.defaultInterval ?? Policies.defaultDevicePollInterval)
  } satisfies DeviceAuthorization
})

/**
 * Polls the token endpoint once for a device code. `authorization_pending` and `slow_down` fail with
 * `AuthenticationPending`; `access_denied` and `expired_token` with an `AuthenticationError` of that reason.
 *
 * @since 0.1.0
 * @category requests
 */
export const deviceToken = Effect.fn("TokenClient.deviceToken")(function*(
  options: RequestOptions & { readonly deviceCode: Redacted.Redacted<string> }
) {
  return yield* requestTokens(options, {
    grant_type: "urn:ietf:params:oauth:grant-type:device_code",
    device_code: options.deviceCode
  }).pipe(
    Effect.catchTag(
      "AuthenticationError",
      (error): Effect.Effect<never, AuthenticationError | AuthenticationPending> => {
        switch (error.error) {
          case "authorization_pending":
            return Effect.fail(
              new AuthenticationPending({
                reason: "AuthorizationPending",
                description: "Waiting for the user to approve"
              })
            )
          case "slow_down":
            return Effect.fail(
              new AuthenticationPending({ reason: "SlowDown", description: "The server asked to poll less often" })
            )
          case "access_denied":
            return Effect.fail(withReason(error, "AccessDenied", "The user denied the login"))
          case "expired_token":
            return Effect.fail(withReason(error, "ExpiredToken", "The device code expired before the user approved it"))
          default:
            return Effect.fail(error)
        }
      }
    )
  )
})

/**
 * Revokes a token at the authorization server's revocation endpoint (RFC 7009 §2.1), authenticating the client as
 * a token request does. The server answers 200 with any body (usually none) when the token is revoked or was
 * already invalid (§2.2); an OAuth error (e.g. `unsupported_token_type`) or any other answer is an
 * `AuthenticationError`.
 *
 * @since 0.2.0
 * @category requests
 */
export const revoke = Effect.fn("TokenClient.revoke")(function*(options: {
  readonly revocationEndpoint: string
  readonly client: ClientAuthentication
  readonly token: Redacted.Redacted<string>
  readonly tokenTypeHint?: "refresh_token" | "access_token" | undefined
}) {
  yield* send(options.revocationEndpoint, options.client, {
    token: options.token,
    token_type_hint: options.tokenTypeHint
  }).pipe(
    // §2.2: "The content of the response body is ignored by the client".
    Effect.catchIf(
      (error) =>
        error.reason === "InvalidResponse" && error.status !== undefined && error.status >= 200 && error.status < 300,
      () => Effect.void
    )
  )
})

// --- internals -------------------------------------------------------------------------------------------------

type FormValue = string | Redacted.Redacted<string> | undefined

const withReason = (
  error: AuthenticationError,
  reason: AuthenticationError["reason"],
  description: string
): AuthenticationError =>
  new AuthenticationError({
    reason,
    description,
    error: error.error,
    errorDescription: error.errorDescription,
    errorUri: error.errorUri,
    status: error.status
  })

const joinScopes = (scopes: ReadonlyArray<string> | undefined): string | undefined =>
  scopes === undefined || scopes.length === 0 ? undefined : scopes.join(" ")

const requestTokens = Effect.fnUntraced(function*(
  options: RequestOptions,
  params: Record<string, FormValue>
) {
  const { body, secrets } = yield* send(options.tokenEndpoint, options.client, params)
  const response = yield* decodeBody(TokenResponse, body, "token")
  if (response.token_type !== undefined && response.token_type.toLowerCase() !== "bearer") {
    return yield* new AuthenticationError({
      reason: "InvalidResponse",
      description: `The token endpoint issued an unsupported token type "${
        scrubber([
          ...secrets,
          ...[response.access_token, response.refresh_token, response.id_token].flatMap((token) =>
            token === undefined ? [] : [Redacted.value(token)]
          )
        ])(response.token_type)
      }"`
    })
  }
  const now = yield* DateTime.now
  const expiresAt = response.expires_in !== undefined
    ? DateTime.addDuration(now, Duration.seconds(response.expires_in))
    : Option.getOrUndefined(jwtExpiry(response.access_token))
  const tokens: Tokens = {
    accessToken: response.access_token,
    refreshToken: response.refresh_token,
    idToken: response.id_token,
    expiresAt,
    obtainedAt: now,
    scopes: response.scope !== undefined ? response.scope.split(" ").filter((s) => s !== "") : undefined
  }
  return tokens
})

/**
 * Posts a form to an OAuth endpoint and answers the parsed JSON body of a 2xx response, with the secret values
 * the request carried (to keep them out of any error built from the answer). A confidential client's credentials
 * go the way the server accepts (see `clientAuthentication`).
 */
const send = Effect.fnUntraced(function*(
  url: string,
  client: ClientAuthentication,
  params: Record<string, FormValue>
) {
  const httpClient = yield* HttpClient.HttpClient
  const form: Array<[string, string]> = []
  const secrets: Array<string> = []
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue
    if (Redacted.isRedacted(value)) secrets.push(Redacted.value(value))
    form.push([key, Redacted.isRedacted(value) ? Redacted.value(value) : value])
  }
  if (client.method !== "none") {
    const secret = Redacted.value(client.clientSecret)
    secrets.push(secret, Encoding.encodeBase64(`${client.clientId}:${secret}`))
    secrets.push(Redacted.value(basicAuthorization(client.clientId, client.clientSecret)).slice("Basic ".length))
  }
  // A server that echoes its input may send a secret back as it went out: form-encoded too.
  const variants = secrets.flatMap((secret) => [secret, formEncode(secret), encodeURIComponent(secret)])
  const target = describeUrl(url)
  const styles = stylesFor(url, client)

  const attempt = (style: Style) => {
    let request = HttpClientRequest.post(url).pipe(
      HttpClientRequest.acceptJson,
      HttpClientRequest.bodyUrlParams(
        client.method === "none" ? [...form, ["client_id", client.clientId]] : [
          ...form,
          ...(style === "post"
            ? [["client_id", client.clientId], ["client_secret", Redacted.value(client.clientSecret)]] as const
            : [])
        ]
      )
    )
    if (client.method !== "none" && style !== "post") {
      request = HttpClientRequest.setHeader(
        request,
        "authorization",
        style === "basic"
          ? Redacted.value(basicAuthorization(client.clientId, client.clientSecret))
          : `Basic ${Encoding.encodeBase64(`${client.clientId}:${Redacted.value(client.clientSecret)}`)}`
      )
    }
    return requestJson(httpClient, request, target, variants)
  }

  let index = 0
  while (true) {
    const style = styles[index]!
    const result = yield* Effect.either(attempt(style))
    // An answer that is not a refusal of the client (a token, or an OAuth error about the grant such as
    // `authorization_pending`) shows that the server read the credentials this way.
    const accepted = Either.isRight(result) || (result.left.reason === "OAuthError" && !isClientRefusal(result.left))
    if (accepted && client.method === "auto") rememberStyle(url, client.clientId, style)
    if (Either.isRight(result)) return { body: result.right, secrets: variants }
    const error = result.left
    if (index === styles.length - 1 || !isClientRefusal(error)) return yield* error
    index++
    yield* Effect.logDebug(
      `${target} refused ${describeStyle(style)} as an invalid client; trying ${describeStyle(styles[index]!)}`
    )
  }
})

/** The ways to send a confidential client's credentials: encoded Basic, raw Basic, or in the form body. */
type Style = "basic" | "basic-raw" | "post" | "none"

const describeStyle = (style: Style): string =>
  style === "basic"
    ? "HTTP Basic with form-encoded credentials"
    : style === "basic-raw"
    ? "HTTP Basic with raw credentials"
    : style === "post"
    ? "client_secret_post"
    : "a public client"

/**
 * What worked per token endpoint and client id (golang.org/x/oauth2 keeps the same per-process memory): a
 * server's way of reading client credentials does not change while a process runs.
 */
const workingStyles = new Map<string, Style>()
const styleKey = (url: string, clientId: string) => `${url}\n${clientId}`
const rememberStyle = (url: string, clientId: string, style: Style) => {
  workingStyles.set(styleKey(url, clientId), style)
}

/** The styles to try, in order: what worked before first, then what the server says it supports. */
const stylesFor = (url: string, client: ClientAuthentication): ReadonlyArray<Style> => {
  if (client.method === "none") return ["none"]
  const secret = Redacted.value(client.clientSecret)
  const encodingChanges = formEncode(client.clientId) !== client.clientId || formEncode(secret) !== secret
  const basic: Array<Style> = encodingChanges ? ["basic", "basic-raw"] : ["basic"]
  if (client.method === "client_secret_basic") return basic
  if (client.method === "client_secret_post") return ["post"]
  const supported = client.supported
  const basicOk = supported === undefined || supported.includes("client_secret_basic")
  const postOk = supported === undefined || supported.includes("client_secret_post")
  const styles: Array<Style> = basicOk || !postOk ? [...basic, "post"] : ["post"]
  const worked = workingStyles.get(styleKey(url, client.clientId))
  return worked !== undefined && styles.includes(worked) ? [worked, ...styles.filter((s) => s !== worked)] : styles
}

/** A server's "who are you?": the client credentials were not accepted (RFC 6749 §5.2 `invalid_client`). */
const isClientRefusal = (error: AuthenticationError): boolean =>
  error.error === "invalid_client" ||
  (error.error === undefined && (error.status === 401 || error.status === 403))
