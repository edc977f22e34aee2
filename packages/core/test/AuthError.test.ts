import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { AuthError, ClientConfig, Policies, TokenClient } from "@flyte-auth/core"
import { Cause, Effect, Fiber, Redacted, Schema, TestClock } from "effect"
import { inspect } from "node:util"
import { type Handler, json, makeMockHttp, type RecordedRequest, text } from "./helpers/mockHttp.js"

describe("AuthError messages", () => {
  it("AuthenticationError: description, then the OAuth code and description when present", () => {
    const plain = new AuthError.AuthenticationError({ reason: "Config", description: "No token endpoint configured" })
    expect(plain.message).toBe("No token endpoint configured")
    expect(String(plain)).toBe("AuthenticationError: No token endpoint configured")

    const withCode = new AuthError.AuthenticationError({
      reason: "OAuthError",
      description: "https://idp/token refused the request (HTTP 400)",
      error: "invalid_grant"
    })
    expect(withCode.message).toBe("https://idp/token refused the request (HTTP 400) (invalid_grant)")

    const full = new AuthError.AuthenticationError({
      reason: "OAuthError",
      description: "refused",
      error: "invalid_grant",
      errorDescription: "refresh token expired",
      status: 400
    })
    expect(full.message).toBe("refused (invalid_grant: refresh token expired)")
    expect(full._tag).toBe("AuthenticationError")
  })

  it("AccessTokenNotFound and AuthenticationPending", () => {
    const notFound = new AuthError.AccessTokenNotFound({
      reason: "RefreshImpossible",
      description: "The refresh token was rejected",
      error: "invalid_grant",
      errorDescription: "expired"
    })
    expect(notFound.message).toBe("The refresh token was rejected (invalid_grant: expired)")
    expect(new AuthError.AccessTokenNotFound({ reason: "LoggedOut", description: "Logged out" }).message).toBe(
      "Logged out"
    )
    const pending = new AuthError.AuthenticationPending({ reason: "SlowDown", description: "slow down" })
    expect(pending.message).toBe("slow down")
    expect(pending._tag).toBe("AuthenticationPending")
  })

  it("isAuthError recognises the family and nothing else", () => {
    expect(AuthError.isAuthError(new AuthError.AuthenticationError({ reason: "Browser", description: "x" }))).toBe(true)
    expect(AuthError.isAuthError(new AuthError.AccessTokenNotFound({ reason: "NoCredentials", description: "x" })))
      .toBe(true)
    expect(AuthError.isAuthError(new AuthError.AuthenticationPending({ reason: "SlowDown", description: "x" })))
      .toBe(true)
    expect(AuthError.isAuthError(new Error("x"))).toBe(false)
    expect(AuthError.isAuthError({ _tag: "Other" })).toBe(false)
    expect(AuthError.isAuthError(null)).toBe(false)
  })

  it("the AuthError schema round-trips every member across a process boundary", () => {
    const errors: Array<AuthError.AuthError> = [
      new AuthError.AuthenticationError({
        reason: "OAuthError",
        description: "d",
        error: "e",
        errorDescription: "ed",
        errorUri: "https://u",
        status: 400
      }),
      new AuthError.AccessTokenNotFound({ reason: "NoCredentials", description: "none" }),
      new AuthError.AuthenticationPending({ reason: "AuthorizationPending", description: "wait" })
    ]
    for (const error of errors) {
      const wire = JSON.parse(JSON.stringify(Schema.encodeSync(AuthError.AuthError)(error)))
      const decoded = Schema.decodeUnknownSync(AuthError.AuthError)(wire)
      expect(decoded).toBeInstanceOf(error.constructor)
      expect(decoded.message).toBe(error.message)
      expect(decoded._tag).toBe(error._tag)
    }
    expect(() => Schema.decodeUnknownSync(AuthError.AuthError)({ _tag: "AuthenticationError", reason: "Nope" }))
      .toThrow()
  })
})

// --- no secret in any error ----------------------------------------------------------------------------------

const secrets = {
  clientSecret: "SECRET-client-7Hq2 &=+/%",
  refreshToken: "SECRET-refresh-9Lp4",
  accessToken: "SECRET-access-3Wm8",
  idToken: "SECRET-idtoken-5Zr1",
  deviceCode: "SECRET-device-2Kx6",
  code: "SECRET-code-8Tn3",
  verifier: "SECRET-verifier-1Bv7-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
}
const allSecrets = Object.values(secrets)
const basicValue = Redacted.value(TokenClient.basicAuthorization("cid", Redacted.make(secrets.clientSecret)))

const tokenEndpoint = "https://idp.example/token"
const basic: TokenClient.ClientAuthentication = {
  method: "client_secret_basic",
  clientId: "cid",
  clientSecret: Redacted.make(secrets.clientSecret)
}
const post: TokenClient.ClientAuthentication = { ...basic, method: "client_secret_post" }

/** Every request we can make, each carrying secrets. */
const calls: ReadonlyArray<[string, Effect.Effect<unknown, AuthError.AuthError, HttpClient.HttpClient>]> = [
  ["clientCredentials basic", TokenClient.clientCredentials({ tokenEndpoint, client: basic })],
  ["clientCredentials post", TokenClient.clientCredentials({ tokenEndpoint, client: post })],
  [
    "refresh",
    TokenClient.refresh({ tokenEndpoint, client: post, refreshToken: Redacted.make(secrets.refreshToken) })
  ],
  [
    "authorizationCode",
    TokenClient.authorizationCode({
      tokenEndpoint,
      client: post,
      code: Redacted.make(secrets.code),
      codeVerifier: Redacted.make(secrets.verifier),
      redirectUri: "http://localhost:53593/callback"
    })
  ],
  [
    "deviceToken",
    TokenClient.deviceToken({ tokenEndpoint, client: post, deviceCode: Redacted.make(secrets.deviceCode) })
  ],
  ["deviceAuthorization", TokenClient.deviceAuthorization({ deviceAuthorizationEndpoint: tokenEndpoint, client: post })]
]

/** Everything a request carried, as a server that echoes its input would send it back. */
const echoOf = (request: RecordedRequest): string => {
  const authorization = request.headers["authorization"] ?? ""
  const basic = authorization.startsWith("Basic ")
    ? Buffer.from(authorization.slice("Basic ".length), "base64").toString()
    : ""
  return [request.body, authorization, basic, ...request.form.values()].join(" ")
}

/** Server answers that make a call fail, most of them carrying tokens or echoing the request's secrets. */
const answers: ReadonlyArray<[string, Handler]> = [
  ["OAuth error echoing the request", (request) => {
    const echo = echoOf(request)
    return json({ error: `bad ${echo}`, error_description: echo, error_uri: echo }, 400)
  }],
  ["access_denied echoing the request", (r) => json({ error: "access_denied", error_description: echoOf(r) }, 400)],
  ["expired_token echoing the request", (r) => json({ error: "expired_token", error_description: echoOf(r) }, 400)],
  ["error with status 200", (r) => json({ error: "invalid_grant", error_description: echoOf(r) })],
  ["HTML 500 echoing the request", (r) => text(`<html>${echoOf(r)}</html>`, 500)],
  ["garbage 200 echoing the request", (r) => text(`{${echoOf(r)}`, 200, "application/json")],
  ["content type echoing the request", (r) => text("x", 502, `text/plain; x=${echoOf(r)}`)],
  [
    "token with an unsupported type",
    () =>
      json({
        access_token: secrets.accessToken,
        refresh_token: secrets.refreshToken,
        id_token: secrets.idToken,
        token_type: "mac",
        device_code: secrets.deviceCode
      })
  ],
  ["token type echoing the token", () => json({ access_token: secrets.accessToken, token_type: secrets.accessToken })],
  ["token with a bad expires_in", () => json({ access_token: secrets.accessToken, expires_in: secrets.refreshToken })],
  ["access token with CR/LF", () => json({ access_token: `${secrets.accessToken}\r\nx: y` })],
  ["token fields of the wrong type", () => json({ access_token: [secrets.accessToken], refresh_token: 5 })],
  ["device code without verification URI", () => json({ device_code: secrets.deviceCode, user_code: "U" })],
  ["body too large", (r) => {
    const echo = echoOf(r)
    return text(echo.repeat(Math.ceil(1.1 * 1024 * 1024 / echo.length)), 200, "application/json")
  }]
]

const assertNoSecret = (label: string, error: unknown) => {
  const renderings = [
    (error as Error).message,
    String(error),
    JSON.stringify(error),
    inspect(error, { depth: 10 }),
    Cause.pretty(Cause.fail(error))
  ]
  for (const rendering of renderings) {
    const variants = allSecrets.flatMap((
      secret
    ) => [secret, encodeURIComponent(secret), TokenClient.formEncode(secret)])
    for (const secret of [...variants, basicValue, basicValue.slice("Basic ".length)]) {
      expect(rendering, `${label}: ${rendering}`).not.toContain(secret)
    }
  }
}

describe("errors never carry a secret", () => {
  it.effect("across every token endpoint request and every failing answer", () =>
    Effect.gen(function*() {
      let checked = 0
      for (const [answerName, handler] of answers) {
        for (const [callName, call] of calls) {
          const http = yield* makeMockHttp(handler)
          const result = yield* call.pipe(Effect.provideService(HttpClient.HttpClient, http.client), Effect.either)
          // Some answers are valid for some calls (a device authorization reply is not a token, and so on);
          // every one that failed is checked.
          if (result._tag === "Left") {
            assertNoSecret(`${callName} / ${answerName}`, result.left)
            checked++
          }
        }
      }
      expect(checked).toBe(answers.length * calls.length)
    }))

  it.effect("in a timeout", () =>
    Effect.gen(function*() {
      const http = yield* makeMockHttp(() => Effect.never)
      const fiber = yield* TokenClient.refresh({
        tokenEndpoint: `${tokenEndpoint}?access_token=${secrets.accessToken}`,
        client: post,
        refreshToken: Redacted.make(secrets.refreshToken)
      }).pipe(Effect.provideService(HttpClient.HttpClient, http.client), Effect.flip, Effect.fork)
      yield* TestClock.adjust(Policies.httpTimeout)
      assertNoSecret("timeout", yield* Fiber.join(fiber))
    }))

  it.scoped("in a discovery failure", () =>
    Effect.gen(function*() {
      const http = yield* makeMockHttp(() => json({ token_endpoint: 5, access_token: secrets.accessToken }))
      const store = yield* ClientConfig.makeOidcDiscovery(`https://idp.example/?k=${secrets.clientSecret}`, {}).pipe(
        Effect.provideService(HttpClient.HttpClient, http.client)
      )
      assertNoSecret("discovery config", yield* Effect.flip(store.get))
      const flyte = yield* ClientConfig.makeFlyteHttp("https://flyte.example").pipe(
        Effect.provideService(HttpClient.HttpClient, http.client)
      )
      assertNoSecret("flyte metadata", yield* Effect.flip(flyte.get))
    }))

  it("the check itself sees a secret when one is there", () => {
    const leaky = new AuthError.AuthenticationError({ reason: "Config", description: `x ${secrets.code}` })
    expect(() => assertNoSecret("leaky", leaky)).toThrow()
    const leakyBasic = new AuthError.AuthenticationError({
      reason: "Config",
      description: `header ${basicValue.slice("Basic ".length)}`
    })
    expect(() => assertNoSecret("leaky basic", leakyBasic)).toThrow()
    const leakyEncoded = new AuthError.AuthenticationError({
      reason: "Config",
      description: `body client_secret=${TokenClient.formEncode(secrets.clientSecret)}`
    })
    expect(() => assertNoSecret("leaky form-encoded", leakyEncoded)).toThrow()
  })
})
