/**
 * The public error family of flyte-auth. Every flow, the `Authenticator` and the integrations fail with one of
 * these three tagged errors, so a caller can `Effect.catchTag` on them (or check `_tag` on a rejected promise).
 *
 * Messages are built only from non-secret fields: a token, secret, verifier or authorization code never
 * appears in a message (tests check this).
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * Why an authentication attempt failed.
 *
 * - `OAuthError`: the server answered with an RFC 6749 §5.2 error (`error` holds its code).
 * - `InvalidResponse`: the server answered something that is not a valid OAuth response (HTML, garbage, missing fields).
 * - `Transport`: the request did not complete (connection refused, reset, timeout, TLS).
 * - `Config`: the configuration cannot work (missing endpoint, unknown auth mode, no device endpoint, ...).
 * - `StateMismatch`: the browser callback carried a `state` that is not the one we sent.
 * - `CallbackError`: the identity provider redirected back with `?error=...`.
 * - `Timeout`: an interactive step (browser login, device approval, command) took too long.
 * - `PortInUse`: the loopback callback server could not bind its port.
 * - `AccessDenied` / `ExpiredToken`: the device flow was denied or its code expired.
 * - `CommandFailed`: the external token command failed or printed no usable token.
 * - `Browser`: the browser could not be opened.
 * - `InvalidIdToken`: an OpenID Connect id_token failed its checks (signature, issuer, audience, expiry, nonce);
 *   nothing of its login is stored.
 *
 * @since 0.1.0
 * @category models
 */
export const AuthenticationErrorReason = Schema.Literal(
  "OAuthError",
  "InvalidResponse",
  "Transport",
  "Config",
  "StateMismatch",
  "CallbackError",
  "Timeout",
  "PortInUse",
  "AccessDenied",
  "ExpiredToken",
  "CommandFailed",
  "Browser",
  "InvalidIdToken"
)

/**
 * @since 0.1.0
 * @category models
 */
export type AuthenticationErrorReason = typeof AuthenticationErrorReason.Type

/**
 * A failure in the authentication process.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationError extends Schema.TaggedError<AuthenticationError>(
  "@flyte-auth/core/AuthenticationError"
)("AuthenticationError", {
  reason: AuthenticationErrorReason,
  /** What went wrong, for a person; never contains a secret. */
  description: Schema.String,
  /** The OAuth `error` code (RFC 6749 §5.2, RFC 8628 §3.5), when a server sent one. */
  error: Schema.optional(Schema.String),
  /** The OAuth `error_description`, when a server sent one. */
  errorDescription: Schema.optional(Schema.String),
  /** The OAuth `error_uri`, when a server sent one. */
  errorUri: Schema.optional(Schema.String),
  /** The HTTP status of the response that failed, when there was one. */
  status: Schema.optional(Schema.Number),
  /** How long the server asked to wait before trying again (its `Retry-After`), in seconds, when it said. */
  retryAfterSeconds: Schema.optional(Schema.Number),
  /**
   * The setting the error is about, when it is about one: of a `Config` error (e.g. `"endpoint"`), and of a
   * token command's `CommandFailed` or `Timeout` (`"command"` or `"proxyCommand"`).
   */
  setting: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return formatMessage(this.description, this.error, this.errorDescription)
  }
}

/**
 * Why no access token could be produced without user interaction.
 *
 * @since 0.1.0
 * @category models
 */
export const AccessTokenNotFoundReason = Schema.Literal(
  /** Nothing is stored for the endpoint and the flow may not run interactively. */
  "NoCredentials",
  /** The stored refresh token was rejected (or there is none) and a new login is not allowed here. */
  "RefreshImpossible",
  /** The user logged out. */
  "LoggedOut"
)

/**
 * @since 0.1.0
 * @category models
 */
export type AccessTokenNotFoundReason = typeof AccessTokenNotFoundReason.Type

/**
 * An access token was not found and could not be refreshed.
 *
 * @since 0.1.0
 * @category errors
 */
export class AccessTokenNotFound extends Schema.TaggedError<AccessTokenNotFound>(
  "@flyte-auth/core/AccessTokenNotFound"
)("AccessTokenNotFound", {
  reason: AccessTokenNotFoundReason,
  description: Schema.String,
  error: Schema.optional(Schema.String),
  errorDescription: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return formatMessage(this.description, this.error, this.errorDescription)
  }
}

/**
 * The device flow is waiting for the user to approve the request on another device
 * (`authorization_pending`, or `slow_down` which also asks to poll less often).
 * The device-code poll retries on this error; it only escapes when a caller polls once by hand.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationPending extends Schema.TaggedError<AuthenticationPending>(
  "@flyte-auth/core/AuthenticationPending"
)("AuthenticationPending", {
  reason: Schema.Literal("AuthorizationPending", "SlowDown"),
  description: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.description
  }
}

/**
 * Any error of the public family.
 *
 * @since 0.1.0
 * @category errors
 */
export type AuthError = AuthenticationError | AccessTokenNotFound | AuthenticationPending

/**
 * The schema of any error of the public family (for decoding errors sent across a process boundary).
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthError: Schema.Union<[
  typeof AuthenticationError,
  typeof AccessTokenNotFound,
  typeof AuthenticationPending
]> = Schema.Union(AuthenticationError, AccessTokenNotFound, AuthenticationPending)

/**
 * Whether a value is one of the public errors.
 *
 * @since 0.1.0
 * @category guards
 */
export const isAuthError = (u: unknown): u is AuthError =>
  Predicate.isTagged(u, "AuthenticationError") || Predicate.isTagged(u, "AccessTokenNotFound") ||
  Predicate.isTagged(u, "AuthenticationPending")

const formatMessage = (description: string, error: string | undefined, errorDescription: string | undefined) => {
  if (error === undefined) return description
  return errorDescription === undefined ? `${description} (${error})` : `${description} (${error}: ${errorDescription})`
}
