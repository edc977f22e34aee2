/**
 * The tokens obtained for one endpoint, with their absolute expiry.
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthMode } from "./AuthMode.js"

/**
 * Credentials for one endpoint. Every token is `Redacted`; `expiresAt` is an absolute instant computed from
 * `Clock` when the token was received (never a relative `expires_in`).
 *
 * @since 0.1.0
 * @category models
 */
export class Credentials extends Schema.Class<Credentials>("@flyte-auth/core/Credentials")({
  accessToken: Schema.Redacted(Schema.String),
  refreshToken: Schema.optional(Schema.Redacted(Schema.String)),
  idToken: Schema.optional(Schema.Redacted(Schema.String)),
  /** When the access token expires; absent when neither the server nor the token says. */
  expiresAt: Schema.optional(Schema.DateTimeUtc),
  /** When the access token was received (used to bound the refresh skew for short-lived tokens). */
  obtainedAt: Schema.optional(Schema.DateTimeUtc),
  /** The endpoint (Flyte admin host or API base) these credentials are for; the keyring key. */
  endpoint: Schema.String,
  /** The scopes the server granted, when it said. */
  scopes: Schema.optional(Schema.Array(Schema.String)),
  /**
   * The auth mode whose login produced these credentials (kept across refreshes), so that a later client without
   * a configured mode uses it; absent in entries written before it was recorded.
   */
  authMode: Schema.optional(AuthMode),
  /**
   * The configured client id whose login produced these credentials (kept across refreshes); absent for the
   * client the admin publishes (no client id configured) and in entries written before accounts were per client.
   */
  clientId: Schema.optional(Schema.String)
}) {}

/**
 * What a token endpoint grants: the tokens of `Credentials` with their expiry and scopes, without whose they are
 * (the endpoint, the auth mode, the client id), which the caller that keeps them adds (`fromTokens`).
 *
 * @since 0.3.0
 * @category models
 */
export type Tokens = Pick<
  Credentials,
  "accessToken" | "refreshToken" | "idToken" | "expiresAt" | "obtainedAt" | "scopes"
>

/**
 * The credentials for `endpoint` (the keyring key) made of the tokens a token endpoint granted.
 *
 * @since 0.3.0
 * @category constructors
 */
export const fromTokens = (tokens: Tokens, endpoint: string): Credentials =>
  new Credentials({
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    idToken: tokens.idToken,
    expiresAt: tokens.expiresAt,
    obtainedAt: tokens.obtainedAt,
    endpoint,
    scopes: tokens.scopes
  })

/**
 * The default window before expiry in which a token is refreshed proactively.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRefreshSkew: Duration.Duration = Duration.seconds(60)

/**
 * Whether the access token can still be used at `now`, leaving `skew` before its expiry. For short-lived
 * tokens the skew is capped at half the token's lifetime, so a 5-second token is not refreshed on every call.
 * A token without a known expiry is fresh until a server rejects it.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFresh = (
  credentials: Tokens,
  now: DateTime.Utc,
  skew: Duration.DurationInput = defaultRefreshSkew
): boolean => DateTime.toEpochMillis(now) < freshUntil(credentials, skew)

/**
 * Until when (epoch milliseconds, exclusive) the credentials are fresh by the rule of `isFresh`; `Infinity` for a
 * token without a known expiry. For hot paths that compare it with a clock reading.
 *
 * @since 0.1.0
 * @category utils
 */
export const freshUntil = (credentials: Tokens, skew: Duration.DurationInput = defaultRefreshSkew): number => {
  if (credentials.expiresAt === undefined) return Number.POSITIVE_INFINITY
  const expiresAtMillis = DateTime.toEpochMillis(credentials.expiresAt)
  let skewMillis = Duration.toMillis(skew)
  if (credentials.obtainedAt !== undefined) {
    const lifetime = expiresAtMillis - DateTime.toEpochMillis(credentials.obtainedAt)
    skewMillis = Math.min(skewMillis, Math.max(0, lifetime / 2))
  }
  return expiresAtMillis - skewMillis
}

/**
 * The expiry written in a JWT's `exp` claim, if the token is a JWT that has one. The token is not verified:
 * this only tells when to refresh an access token whose response carried no `expires_in`.
 *
 * @since 0.1.0
 * @category utils
 */
export const jwtExpiry = (token: Redacted.Redacted<string>): Option.Option<DateTime.Utc> => {
  const parts = Redacted.value(token).split(".")
  if (parts.length !== 3) return Option.none()
  return Encoding.decodeBase64UrlString(parts[1]).pipe(
    Either.flatMap((json) => Either.try(() => JSON.parse(json) as unknown)),
    Either.getRight,
    Option.flatMap((claims) =>
      typeof claims === "object" && claims !== null && typeof (claims as { exp?: unknown }).exp === "number"
        ? DateTime.make((claims as { exp: number }).exp * 1000)
        : Option.none()
    )
  )
}

/**
 * Whose credentials a caller may be handed: the client id it is configured with (`undefined` for the client the
 * admin publishes) and the auth mode it logs in with (`undefined`: any).
 *
 * @since 0.3.0
 * @category models
 */
export interface Owner {
  readonly clientId?: string | undefined
  readonly authMode?: AuthMode | undefined
}

/**
 * An endpoint as configured (`host:port`, a URL, or gRPC's `dns:///host:port`) in the one form every part uses
 * (the keyring key, the connection target, the TLS server name): trimmed, without the `dns:///` scheme.
 *
 * @example
 * ```ts
 * import { Credentials } from "@flyte-auth/core"
 * Credentials.normalizeEndpoint(" dns:///flyte.example.com:443") // "flyte.example.com:443"
 * ```
 *
 * @since 0.3.0
 * @category utils
 */
export const normalizeEndpoint = (endpoint: string): string => endpoint.trim().replace(/^dns:\/\/\//i, "")

/**
 * The keyring account of the credentials of `clientId` on `endpoint`: `<endpoint>#<clientId>`, the client id
 * percent-encoded (`encodeURIComponent`, so the last `#` is always the separator), and `<endpoint>#` for the
 * client the admin publishes. Two clients on one endpoint never share an account. Entries written before accounts
 * were per client are under the bare endpoint (`legacyKeyringAccount`).
 *
 * @since 0.3.0
 * @category keys
 */
export const keyringAccount = (endpoint: string, clientId: string | undefined): string =>
  `${endpoint}#${clientId === undefined ? "" : encodeURIComponent(clientId)}`

/**
 * The keyring account of entries written before accounts were per client: the bare endpoint.
 *
 * @since 0.3.0
 * @category keys
 */
export const legacyKeyringAccount = (endpoint: string): string => endpoint

/**
 * What a keyring account names: the endpoint and the client (`clientId` `undefined` for the admin's), or
 * `legacy: true` for a bare endpoint (an entry written before accounts were per client).
 *
 * @since 0.3.0
 * @category keys
 */
export const parseKeyringAccount = (
  account: string
): { readonly endpoint: string; readonly clientId: string | undefined; readonly legacy: boolean } => {
  const hash = account.lastIndexOf("#")
  if (hash < 0) return { endpoint: account, clientId: undefined, legacy: true }
  const encoded = account.slice(hash + 1)
  let clientId: string | undefined
  try {
    clientId = encoded === "" ? undefined : decodeURIComponent(encoded)
  } catch {
    return { endpoint: account, clientId: undefined, legacy: true }
  }
  return { endpoint: account.slice(0, hash), clientId, legacy: false }
}

/**
 * Whether stored credentials may be handed to `owner`: the same client id (both absent for the admin's client),
 * and the same auth mode when both are known. Anything else is another identity's token, and counts as absent.
 *
 * @since 0.3.0
 * @category predicates
 */
export const isFor = (credentials: Credentials, owner: Owner): boolean =>
  credentials.clientId === owner.clientId &&
  (owner.authMode === undefined || credentials.authMode === undefined || credentials.authMode === owner.authMode)

/**
 * Whether an entry written before accounts were per client (`legacyKeyringAccount`, no client id recorded) may be
 * taken over by `owner`: only a user's login (`Pkce` or `DeviceFlow`, recorded in the entry) for a caller of that
 * same mode. A `ClientSecret` or `ExternalCommand` entry, or one that does not say its mode, may be another client's
 * identity: it is never handed out (those modes log in again without a user).
 *
 * @since 0.3.0
 * @category predicates
 */
export const isLegacyFor = (credentials: Credentials, owner: Owner): boolean =>
  credentials.clientId === undefined &&
  (credentials.authMode === "Pkce" || credentials.authMode === "DeviceFlow") &&
  (owner.authMode === undefined || owner.authMode === credentials.authMode)

/**
 * The keyring entry for one endpoint and client: the whole `Credentials` as one JSON string, written in one call, so an
 * entry is never half-updated and stale fields cannot survive a rewrite.
 *
 * @since 0.1.0
 * @category codecs
 */
export const KeyringEntry: Schema.Schema<Credentials, string> = Schema.parseJson(Credentials)

/**
 * Encodes credentials as their keyring entry.
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeKeyringEntry = Schema.encode(KeyringEntry)

/**
 * Decodes a keyring entry; a corrupt entry fails with a `ParseError` (the caller reports and ignores it).
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeKeyringEntry = Schema.decode(KeyringEntry)
