/**
 * Properties of the token endpoint client, with effect's FastCheck:
 * - whatever a server answers (any status, content type and body: arbitrary JSON, token-shaped objects with
 *   arbitrary field values, arbitrary text), every TokenClient call ends in success or a typed error, never a
 *   defect; a success carries exactly the access token that was sent; no error quotes a secret of the request,
 *   even when the server echoes it;
 * - `client_secret_basic` round-trips for arbitrary Unicode ids and secrets (RFC 6749 §2.3.1).
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { AuthError, type Credentials, TokenClient } from "@flyte-auth/core"
import { Cause, Effect, Either, Encoding, Exit, FastCheck as fc, Redacted, Runtime } from "effect"

/** Secrets with a marker that no message would contain by chance. */
const secret = fc.string({ minLength: 1, maxLength: 24 }).map((s) => `Zq9${s}`)

const arbitraryValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string(),
  fc.fullUnicodeString(),
  fc.integer(),
  fc.double(),
  fc.constantFrom("3600", "-1", "1e400", "NaN", "Bearer", "bearer", "DPoP", "", " ", "\r\n")
)

/** Objects that look like token, device or error responses, with arbitrary values in the known fields. */
const tokenShaped = (echo: ReadonlyArray<string>) =>
  fc.record(
    {
      access_token: fc.oneof(fc.stringMatching(/^[\x21-\x7e]{1,40}$/), arbitraryValue),
      token_type: fc.oneof(fc.constant("Bearer"), arbitraryValue),
      expires_in: fc.oneof(fc.nat(), fc.constant(null), arbitraryValue),
      refresh_token: fc.oneof(fc.string({ minLength: 1 }), fc.constant(null), arbitraryValue),
      id_token: arbitraryValue,
      scope: fc.oneof(fc.string(), arbitraryValue),
      error: fc.oneof(
        fc.constantFrom("invalid_grant", "authorization_pending", "slow_down", "access_denied", "expired_token"),
        fc.constantFrom(...echo),
        arbitraryValue
      ),
      error_description: fc.oneof(fc.constantFrom(...echo).map((s) => `echo: ${s}!`), arbitraryValue),
      error_uri: arbitraryValue,
      device_code: fc.oneof(fc.string({ minLength: 1 }), arbitraryValue),
      user_code: fc.oneof(fc.string({ minLength: 1 }), arbitraryValue),
      verification_uri: fc.oneof(fc.webUrl(), arbitraryValue),
      verification_url: arbitraryValue,
      verification_uri_complete: arbitraryValue,
      interval: fc.oneof(fc.nat(), arbitraryValue)
    },
    { requiredKeys: [] }
  )

/** Well-formed token and device responses (so that the success path is exercised too). */
const validToken = fc.record(
  {
    access_token: fc.stringMatching(/^[\x21-\x7e]{1,60}$/),
    token_type: fc.constantFrom("Bearer", "bearer", "BEARER"),
    expires_in: fc.oneof(fc.nat({ max: 1e9 }), fc.nat({ max: 1e9 }).map(String), fc.constant(null)),
    refresh_token: fc.string({ minLength: 1 }),
    id_token: fc.string({ minLength: 1 }),
    scope: fc.string(),
    device_code: fc.string({ minLength: 1 }),
    user_code: fc.string({ minLength: 1 }),
    verification_uri: fc.webUrl(),
    interval: fc.nat({ max: 60 })
  },
  { requiredKeys: ["access_token", "device_code", "user_code", "verification_uri"] }
).map((o) => ({ ...o, expires_in: o.expires_in ?? 3600 }))

interface Answer {
  readonly status: number
  readonly contentType: string | undefined
  readonly body: string
}

const anyAnswer = (echo: ReadonlyArray<string>): fc.Arbitrary<Answer> =>
  fc.record({
    status: fc.oneof(fc.constantFrom(200, 201, 400, 401, 403, 429, 500, 502, 503), fc.integer({ min: 200, max: 599 })),
    contentType: fc.option(
      fc.constantFrom("application/json", "application/json; charset=utf-8", "text/html", "text/plain", "", "x/y"),
      { nil: undefined }
    ),
    body: fc.oneof(
      validToken.map((o) => JSON.stringify(o)),
      tokenShaped(echo).map((o) => JSON.stringify(o)),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string(),
      fc.fullUnicodeString(),
      fc.constantFrom("", "null", "[]", "{", "<html><body>Error</body></html>", "\u0000\u0001", "{\"access_token\":")
    )
  })

/** Any answer, and often a well-formed one (so that both outcomes are frequent). */
const answer = (echo: ReadonlyArray<string>): fc.Arbitrary<Answer> =>
  fc.oneof(
    { weight: 3, arbitrary: anyAnswer(echo) },
    {
      weight: 1,
      arbitrary: fc.record({
        status: fc.constantFrom(200, 201),
        contentType: fc.constantFrom("application/json", undefined),
        body: validToken.map((o) => JSON.stringify(o))
      })
    }
  )

const mockClient = (reply: Answer) =>
  HttpClient.make((request) =>
    Effect.succeed(HttpClientResponse.fromWeb(
      request,
      // 204, 205 and 304 cannot have a body
      new Response([204, 205, 304].includes(reply.status) ? null : reply.body, {
        status: reply.status,
        headers: reply.contentType === undefined ? {} : { "content-type": reply.contentType }
      })
    ))
  )

interface Secrets {
  readonly clientSecret: string
  readonly refreshToken: string
  readonly code: string
  readonly verifier: string
  readonly deviceCode: string
}

const secrets: fc.Arbitrary<Secrets> = fc.record({
  clientSecret: secret,
  refreshToken: secret,
  code: secret,
  verifier: secret,
  deviceCode: secret
})

/** Every TokenClient call, with the secrets it sends. */
interface Call {
  readonly name: string
  /** The secret values this call sends. */
  readonly sent: ReadonlyArray<string>
  readonly call: Effect.Effect<
    Credentials.Tokens | TokenClient.DeviceAuthorization,
    AuthError.AuthError,
    HttpClient.HttpClient
  >
}

const calls = (s: Secrets): ReadonlyArray<Call> => {
  const common = {
    tokenEndpoint: "https://idp.example/oauth2/token",
    client: {
      method: "client_secret_basic" as const,
      clientId: "flyte-client",
      clientSecret: Redacted.make(s.clientSecret)
    }
  }
  return [
    {
      name: "clientCredentials",
      sent: [s.clientSecret],
      call: TokenClient.clientCredentials({ ...common, scopes: ["all"] })
    },
    {
      name: "clientCredentials (post)",
      sent: [s.clientSecret],
      call: TokenClient.clientCredentials({ ...common, client: { ...common.client, method: "client_secret_post" } })
    },
    {
      name: "refresh",
      sent: [s.clientSecret, s.refreshToken],
      call: TokenClient.refresh({ ...common, refreshToken: Redacted.make(s.refreshToken) })
    },
    {
      name: "authorizationCode",
      sent: [s.code, s.verifier],
      call: TokenClient.authorizationCode({
        ...common,
        client: { method: "none", clientId: "flytectl" },
        code: Redacted.make(s.code),
        codeVerifier: Redacted.make(s.verifier),
        redirectUri: "http://localhost:53593/callback"
      })
    },
    {
      name: "deviceToken",
      sent: [s.clientSecret, s.deviceCode],
      call: TokenClient.deviceToken({ ...common, deviceCode: Redacted.make(s.deviceCode) })
    },
    {
      name: "deviceAuthorization",
      sent: [s.clientSecret],
      call: TokenClient.deviceAuthorization({
        deviceAuthorizationEndpoint: "https://idp.example/oauth2/device",
        client: common.client,
        scopes: ["all"]
      })
    }
  ]
}

/** A secret as it went out: raw, form-encoded, URI-encoded. */
const secretForms = (sent: ReadonlyArray<string>) =>
  sent.flatMap((value) => [value, TokenClient.formEncode(value), encodeURIComponent(value)])

describe("TokenClient properties", () => {
  const outcomes = { success: 0, failure: 0 }
  const check = (s: Secrets, reply: Answer, which: number) =>
    Effect.gen(function*() {
      const { call, name, sent } = calls(s)[which]
      const exit = yield* Effect.exit(Effect.provideService(call, HttpClient.HttpClient, mockClient(reply)))
      if (Exit.isSuccess(exit)) {
        // a success hands out exactly the token (or device code) of a 2xx JSON body
        expect(reply.status).toBeGreaterThanOrEqual(200)
        expect(reply.status).toBeLessThan(300)
        const body = JSON.parse(reply.body) as { access_token: string; device_code: string }
        const value = exit.value
        if ("accessToken" in value) expect(Redacted.value(value.accessToken)).toBe(body.access_token)
        else expect(Redacted.value(value.deviceCode)).toBe(body.device_code)
        outcomes.success++
        return
      }
      // only typed failures: no defect, no interruption, exactly one error of the public family
      expect(Cause.isDie(exit.cause), `${name}: ${Cause.pretty(exit.cause)}`).toBe(false)
      outcomes.failure++
      const failures = [...Cause.failures(exit.cause)]
      expect(failures, name).toHaveLength(1)
      const error = failures[0]
      expect(AuthError.isAuthError(error), name).toBe(true)
      if (name !== "deviceToken") expect(error._tag, name).toBe("AuthenticationError")
      const texts = [String(error), error.message, JSON.stringify(error), Cause.pretty(exit.cause)]
      for (const text of texts) {
        for (const form of secretForms(sent)) {
          expect(text.includes(form), `${name} leaked a secret in: ${text}`).toBe(false)
        }
      }
    })

  // One runtime for all runs (a property per `it.effect.prop` run would build the test services every time).
  it.live("any answer ends in success or a typed error that quotes no secret", () =>
    Effect.flatMap(Effect.runtime<never>(), (runtime) =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            secrets.chain((s) => fc.tuple(fc.constant(s), answer(Object.values(s)), fc.nat({ max: 5 }))),
            ([s, reply, which]) => Runtime.runPromise(runtime, check(s, reply, which))
          ),
          { numRuns: 250 }
        )
      ).pipe(Effect.andThen(() => {
        // both paths were exercised
        expect(outcomes.success).toBeGreaterThan(25)
        expect(outcomes.failure).toBeGreaterThan(25)
      }))))

  it.prop(
    "client_secret_basic round-trips arbitrary Unicode ids and secrets",
    [fc.fullUnicodeString(), fc.fullUnicodeString()],
    ([clientId, clientSecret]) => {
      const header = Redacted.value(TokenClient.basicAuthorization(clientId, Redacted.make(clientSecret)))
      expect(header.startsWith("Basic ")).toBe(true)
      const decoded = Either.getOrThrow(Encoding.decodeBase64String(header.slice("Basic ".length)))
      const colon = decoded.indexOf(":")
      expect(colon).toBeGreaterThanOrEqual(0)
      const formDecode = (part: string) => {
        // application/x-www-form-urlencoded only ever emits these characters
        expect(part).toMatch(/^[A-Za-z0-9*\-._+%]*$/)
        return decodeURIComponent(part.replace(/\+/g, " "))
      }
      expect(formDecode(decoded.slice(0, colon))).toBe(clientId)
      expect(formDecode(decoded.slice(colon + 1))).toBe(clientSecret)
    },
    { fastCheck: { numRuns: 500 } }
  )
})
