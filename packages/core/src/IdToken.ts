/**
 * OpenID Connect id_tokens: the `nonce` a login sends, and the checks an id_token must pass before anything from
 * its login is stored (OpenID Connect Core §3.1.3.7): the signature against the issuer's JWK Set, `iss`, `aud`
 * (the client id), `exp` and `iat` with a small leeway, and the `nonce`. The checks are `jose`'s, a maintained
 * JOSE library, not hand-written.
 *
 * @since 0.2.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import { AuthenticationError } from "./AuthError.js"
import type { ClientConfig } from "./ClientConfig.js"
import { Credentials } from "./Credentials.js"
import { describeUrl, requestJson } from "./internal/oauthHttp.js"
import * as Policies from "./Policies.js"

/**
 * Whether a login asks for OpenID Connect (the `openid` scope), and so sends a `nonce`.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isOpenIdRequest = (scopes: ReadonlyArray<string>): boolean => scopes.includes("openid")

/**
 * A fresh `nonce`: 32 bytes from the CSPRNG, base64url. It binds the id_token to this one login attempt.
 *
 * @since 0.2.0
 * @category utils
 */
export const generateNonce: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(() =>
  Redacted.make(Encoding.encodeBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(32))))
)

/**
 * What an id_token is checked against.
 *
 * @since 0.2.0
 * @category models
 */
export interface Expectations {
  /** `issuer` (the expected `iss`), `jwksUri` (the keys) and `clientId` (the expected `aud`). */
  readonly config: ClientConfig
  /** The client the login ran as, when it is not the configuration's `clientId`. */
  readonly clientId?: string | undefined
  /** The nonce the login sent. */
  readonly nonce?: Redacted.Redacted<string> | undefined
  /**
   * Whether the id_token must carry that nonce (default `true` when a nonce is given). The device flow sends one
   * where the server takes it, but RFC 8628 does not require a server to: there a missing nonce is accepted and a
   * wrong one is not.
   */
  readonly requireNonce?: boolean | undefined
}

/**
 * Checks the id_token of `credentials`, if they carry one, and answers the credentials to store: unchanged when the
 * id_token is valid (or there is none), without the id_token when it cannot be checked at all (the configuration
 * names neither a JWK Set nor an issuer to discover one from; a warning says so, and an unchecked id_token is never
 * kept). An id_token that fails a check fails with an `AuthenticationError` of reason `InvalidIdToken`, so nothing
 * of its login is stored.
 *
 * @since 0.2.0
 * @category validation
 */
export const verifyCredentials = Effect.fn("IdToken.verify")(function*(
  credentials: Credentials,
  expectations: Expectations
) {
  if (credentials.idToken === undefined) return credentials
  const { config } = expectations
  const clientId = expectations.clientId ?? config.clientId
  const keys = yield* jwksUri(config)
  if (Option.isNone(keys) || clientId === undefined) {
    yield* Effect.logWarning(
      `The identity provider of ${credentials.endpoint} returned an id_token, but the client configuration names ` +
        `no ${clientId === undefined ? "client id" : "issuer or jwks_uri"} to check it against; it is not kept`
    )
    return new Credentials({ ...credentials, idToken: undefined })
  }
  yield* verify(credentials.idToken, {
    jwksUri: keys.value,
    issuer: config.issuer,
    clientId,
    nonce: expectations.nonce,
    requireNonce: expectations.requireNonce ?? expectations.nonce !== undefined
  })
  return credentials
})

// --- internals -------------------------------------------------------------------------------------------------

const invalid = (description: string, cause?: unknown) =>
  new AuthenticationError({ reason: "InvalidIdToken", description: `The id_token is not valid: ${description}`, cause })

/** The JWK Set of the configuration, else the one the issuer's discovery document names. */
const jwksUri = (
  config: ClientConfig
): Effect.Effect<Option.Option<string>, AuthenticationError, HttpClient.HttpClient> => {
  if (config.jwksUri !== undefined) return Effect.succeed(Option.some(config.jwksUri))
  if (config.issuer === undefined) return Effect.succeedNone
  const url = `${config.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`
  return getJson(url).pipe(
    Effect.flatMap((document) =>
      Predicate.isRecord(document) && typeof document.jwks_uri === "string" && document.jwks_uri !== ""
        ? Effect.succeed(Option.some(document.jwks_uri))
        : Effect.fail(invalid(`the discovery document at ${describeUrl(url)} names no jwks_uri to check it against`))
    )
  )
}

const getJson = (url: string) =>
  Effect.flatMap(
    HttpClient.HttpClient,
    (client) =>
      requestJson(client, HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson), describeUrl(url)).pipe(
        Effect.retry(Policies.transientRetry)
      )
  )

/** JWK Sets already fetched in this process, by URL; fetched again when a token names a key they lack. */
const keySets = new Map<string, unknown>()

const verify = Effect.fnUntraced(function*(
  idToken: Redacted.Redacted<string>,
  expected: {
    readonly jwksUri: string
    readonly issuer: string | undefined
    readonly clientId: string
    readonly nonce: Redacted.Redacted<string> | undefined
    readonly requireNonce: boolean
  }
) {
  // Loaded on first use: only OpenID logins pay for it.
  const [{ jwtVerify }, { createLocalJWKSet }] = yield* Effect.promise(() =>
    Promise.all([import("jose/jwt/verify"), import("jose/jwks/local")])
  )
  const now = yield* DateTime.now
  const attempt = (jwks: unknown) =>
    Effect.tryPromise({
      try: () =>
        jwtVerify(Redacted.value(idToken), createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]), {
          ...(expected.issuer === undefined ? {} : { issuer: expected.issuer }),
          audience: expected.clientId,
          algorithms: asymmetricAlgorithms,
          clockTolerance: Duration.toSeconds(Policies.idTokenClockTolerance),
          currentDate: DateTime.toDate(now),
          requiredClaims: ["iss", "sub", "aud", "exp", "iat"]
        }),
      catch: (error) => error
    })
  const fetchKeys = Effect.flatMap(
    getJson(expected.jwksUri),
    (jwks) =>
      Predicate.isRecord(jwks) && Array.isArray(jwks.keys)
        ? Effect.sync(() => {
          keySets.set(expected.jwksUri, jwks)
          return jwks as unknown
        })
        : Effect.fail(invalid(`${describeUrl(expected.jwksUri)} is not a JWK Set`))
  )

  const cached = keySets.get(expected.jwksUri)
  let result = yield* Effect.either(attempt(cached ?? (yield* fetchKeys)))
  // The issuer may have rotated its keys since they were fetched.
  if (result._tag === "Left" && cached !== undefined && errorCode(result.left) === "ERR_JWKS_NO_MATCHING_KEY") {
    result = yield* Effect.either(attempt(yield* fetchKeys))
  }
  // jose's errors carry the token's claims (`payload`): only the code and the failed claim go into the cause.
  if (result._tag === "Left") return yield* invalid(describeJoseError(result.left), joseErrorSummary(result.left))

  const claims = result.right.payload
  // jose checks `iat` only against a maximum age: an id_token "issued" in the future is refused here.
  if (
    typeof claims.iat === "number" &&
    claims.iat * 1000 > DateTime.toEpochMillis(now) + Duration.toMillis(Policies.idTokenClockTolerance)
  ) {
    return yield* invalid("it was issued in the future (iat), beyond the clock tolerance")
  }
  // With several audiences, `azp` names the client the token was issued to (OpenID Connect Core §3.1.3.7).
  if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp !== expected.clientId) {
    return yield* invalid("it names several audiences but not this client as its authorized party (azp)")
  }
  if (expected.nonce !== undefined) {
    if (claims.nonce === undefined) {
      if (expected.requireNonce) return yield* invalid("it carries no nonce, although the login sent one")
    } else if (claims.nonce !== Redacted.value(expected.nonce)) {
      return yield* invalid("its nonce is not the one this login sent (a replayed or foreign id_token)")
    }
  }
  return claims
})

/** Algorithms whose keys a JWK Set publishes; `none` and shared-secret (HS*) tokens are refused. */
const asymmetricAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

/** What of a jose error may be kept: its code and the claim that failed, never its payload. */
const joseErrorSummary = (error: unknown): { readonly code?: string; readonly claim?: string } => ({
  ...(errorCode(error) === undefined ? {} : { code: errorCode(error)! }),
  ...(Predicate.hasProperty(error, "claim") && typeof error.claim === "string" ? { claim: error.claim } : {})
})

const errorCode = (error: unknown): string | undefined =>
  Predicate.hasProperty(error, "code") && typeof error.code === "string" ? error.code : undefined

/** A description of jose's error naming the failed check, never the token. */
const describeJoseError = (error: unknown): string => {
  const claim = Predicate.hasProperty(error, "claim") && typeof error.claim === "string" ? error.claim : undefined
  switch (errorCode(error)) {
    case "ERR_JWT_EXPIRED":
      return "it has expired (exp)"
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return claim === "iss"
        ? "it was issued by another issuer (iss)"
        : claim === "aud"
        ? "it was issued for another client (aud)"
        : claim === "iat" || claim === "nbf"
        ? `it is dated in the future (${claim})`
        : `its ${claim ?? "claims"} claim is missing or wrong`
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "its signature does not verify against the issuer's keys"
    case "ERR_JWKS_NO_MATCHING_KEY":
      return "it is signed with a key the issuer does not publish"
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "it is signed with an algorithm that is not accepted (none, or a shared secret)"
    case "ERR_JWT_INVALID":
    case "ERR_JWS_INVALID":
      return "it is not a well-formed signed JWT"
    default:
      return `it failed verification (${errorCode(error) ?? "unknown error"})`
  }
}
