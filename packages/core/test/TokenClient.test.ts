import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { AuthError, Policies, TokenClient } from "@flyte-auth/core"
import { DateTime, Duration, Effect, Encoding, Fiber, Option, Redacted, TestClock } from "effect"
import { type Handler, json, makeMockHttp, refused, text } from "./helpers/mockHttp.js"

const tokenEndpoint = "https://idp.example/oauth2/token?tenant=t1"

const basic: TokenClient.ClientAuthentication = {
  method: "client_secret_basic",
  clientId: "client_id",
  clientSecret: Redacted.make("abc")
}
const post: TokenClient.ClientAuthentication = {
  method: "client_secret_post",
  clientId: "flytepropeller",
  clientSecret: Redacted.make("s3cr&t=")
}
const publicClient: TokenClient.ClientAuthentication = { method: "none", clientId: "flytectl" }

const tokenJson = { access_token: "at-123", token_type: "Bearer", expires_in: 3600 }

/** Runs `f` with a mock HttpClient answering `handler`; gives back the result and the mock. */
const withHttp = <A, E, R>(handler: Handler, f: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const http = yield* makeMockHttp(handler)
    const exit = yield* f.pipe(Effect.provideService(HttpClient.HttpClient, http.client), Effect.exit)
    return { exit, http }
  })

const failureOf = <A, E, R>(handler: Handler, f: Effect.Effect<A, E, R>) =>
  Effect.flatMap(
    makeMockHttp(handler),
    (http) => f.pipe(Effect.provideService(HttpClient.HttpClient, http.client), Effect.flip)
  )

const clientCredentials = (client: TokenClient.ClientAuthentication = basic, extra: {
  scopes?: ReadonlyArray<string>
  audience?: string
} = {}) => TokenClient.clientCredentials({ tokenEndpoint, client, ...extra })

const jwtWithExp = (exp: number) =>
  `${Encoding.encodeBase64Url(JSON.stringify({ alg: "none" }))}.${
    Encoding.encodeBase64Url(JSON.stringify({ sub: "x", exp }))
  }.sig`

const expectAuthError = (error: unknown, reason: AuthError.AuthenticationErrorReason) => {
  expect(error).toBeInstanceOf(AuthError.AuthenticationError)
  expect((error as AuthError.AuthenticationError).reason).toBe(reason)
  return error as AuthError.AuthenticationError
}

describe("TokenClient.basicAuthorization", () => {
  it("form-url-encodes both the client id and the secret (RFC 6749 §2.3.1)", () => {
    expect(Redacted.value(TokenClient.basicAuthorization("client_id", Redacted.make("abc")))).toBe(
      "Basic Y2xpZW50X2lkOmFiYw=="
    )
    const encoded = Redacted.value(TokenClient.basicAuthorization("a b:c", Redacted.make("s&=+")))
    expect(Buffer.from(encoded.slice("Basic ".length), "base64").toString()).toBe("a+b%3Ac:s%26%3D%2B")
  })
})

describe("TokenClient client authentication", () => {
  it.effect("client_secret_basic sends the exact Basic header and no credentials in the body", () =>
    Effect.gen(function*() {
      const { exit, http } = yield* withHttp(() => json(tokenJson), clientCredentials(basic))
      expect(exit._tag).toBe("Success")
      const request = yield* http.last
      expect(request.method).toBe("POST")
      expect(request.url.href).toBe(tokenEndpoint)
      expect(request.headers["authorization"]).toBe("Basic Y2xpZW50X2lkOmFiYw==")
      expect(request.headers["content-type"]).toBe("application/x-www-form-urlencoded")
      expect(request.headers["accept"]).toBe("application/json")
      expect([...request.form.entries()]).toEqual([["grant_type", "client_credentials"]])
    }))

  it.effect("client_secret_post sends id and secret in the form body, without a Basic header", () =>
    Effect.gen(function*() {
      const { http } = yield* withHttp(() => json(tokenJson), clientCredentials(post))
      const request = yield* http.last
      expect(request.headers["authorization"]).toBeUndefined()
      expect(request.form.get("client_id")).toBe("flytepropeller")
      expect(request.form.get("client_secret")).toBe("s3cr&t=")
      expect(request.body).toContain("client_secret=s3cr%26t%3D")
    }))

  it.effect("a public client sends only its client_id", () =>
    Effect.gen(function*() {
      const { http } = yield* withHttp(() => json(tokenJson), clientCredentials(publicClient))
      const request = yield* http.last
      expect(request.headers["authorization"]).toBeUndefined()
      expect(request.form.get("client_id")).toBe("flytectl")
      expect(request.form.has("client_secret")).toBe(false)
    }))

  it.effect("scope and audience are sent only when set", () =>
    Effect.gen(function*() {
      const without = yield* withHttp(() => json(tokenJson), clientCredentials(basic, { scopes: [] }))
      const bare = yield* without.http.last
      expect(bare.form.has("scope")).toBe(false)
      expect(bare.form.has("audience")).toBe(false)

      const withBoth = yield* withHttp(
        () => json(tokenJson),
        clientCredentials(basic, { scopes: ["all", "offline"], audience: "https://flyte.example" })
      )
      const full = yield* withBoth.http.last
      expect(full.form.get("scope")).toBe("all offline")
      expect(full.form.get("audience")).toBe("https://flyte.example")
    }))

  it.effect("authorizationCode sends code, verifier and redirect URI", () =>
    Effect.gen(function*() {
      const { http } = yield* withHttp(
        () => json(tokenJson),
        TokenClient.authorizationCode({
          tokenEndpoint,
          client: publicClient,
          code: Redacted.make("the-code"),
          codeVerifier: Redacted.make("v".repeat(43)),
          redirectUri: "http://localhost:53593/callback"
        })
      )
      const request = yield* http.last
      expect(Object.fromEntries(request.form)).toEqual({
        grant_type: "authorization_code",
        code: "the-code",
        code_verifier: "v".repeat(43),
        redirect_uri: "http://localhost:53593/callback",
        client_id: "flytectl"
      })
    }))
})

describe("TokenClient token responses", () => {
  it.effect("computes the expiry as an absolute instant from Clock", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000_000)
      const { exit } = yield* withHttp(
        () => json({ ...tokenJson, refresh_token: "rt", id_token: "idt", scope: "all  offline" }),
        clientCredentials()
      )
      if (exit._tag !== "Success") throw new Error("expected success")
      const credentials = exit.value
      expect(Redacted.value(credentials.accessToken)).toBe("at-123")
      expect(Redacted.value(credentials.refreshToken!)).toBe("rt")
      expect(Redacted.value(credentials.idToken!)).toBe("idt")
      expect(DateTime.toEpochMillis(credentials.obtainedAt!)).toBe(1_000_000)
      expect(DateTime.toEpochMillis(credentials.expiresAt!)).toBe(1_000_000 + 3_600_000)
      // Whose the tokens are is for the caller that keeps them (`Credentials.fromTokens`).
      expect("endpoint" in credentials).toBe(false)
      expect(credentials.scopes).toEqual(["all", "offline"])
    }))

  it.effect("accepts expires_in as a numeric string", () =>
    Effect.gen(function*() {
      const { exit } = yield* withHttp(() => json({ access_token: "at", expires_in: "120" }), clientCredentials())
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(DateTime.toEpochMillis(exit.value.expiresAt!)).toBe(120_000)
    }))

  it.effect("rejects an expires_in that is not a non-negative number", () =>
    Effect.gen(function*() {
      for (const expires_in of ["soon", -5, "1e400", true]) {
        const error = yield* failureOf(() => json({ access_token: "at", expires_in }), clientCredentials())
        expect(expectAuthError(error, "InvalidResponse").message).toContain("expires_in")
      }
    }))

  it.effect("without expires_in, takes the expiry from a JWT's exp claim", () =>
    Effect.gen(function*() {
      const { exit } = yield* withHttp(() => json({ access_token: jwtWithExp(7200) }), clientCredentials())
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(DateTime.toEpochMillis(exit.value.expiresAt!)).toBe(7_200_000)
    }))

  it.effect("without expires_in, an opaque token has no known expiry", () =>
    Effect.gen(function*() {
      const { exit } = yield* withHttp(() => json({ access_token: "opaque" }), clientCredentials())
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(exit.value.expiresAt).toBeUndefined()
    }))

  it.effect("treats optional fields sent as null as absent", () =>
    Effect.gen(function*() {
      const { exit } = yield* withHttp(
        () => json({ access_token: "at", refresh_token: null, expires_in: null, scope: null, token_type: null }),
        clientCredentials()
      )
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(exit.value.refreshToken).toBeUndefined()
      expect(exit.value.scopes).toBeUndefined()
    }))

  it.effect("accepts token_type in any case and refuses other token types", () =>
    Effect.gen(function*() {
      const ok = yield* withHttp(() => json({ access_token: "at", token_type: "bearer" }), clientCredentials())
      expect(ok.exit._tag).toBe("Success")
      const error = yield* failureOf(() => json({ access_token: "at", token_type: "mac" }), clientCredentials())
      expect(expectAuthError(error, "InvalidResponse").message).toContain("\"mac\"")
    }))

  it.effect("a missing access_token is an InvalidResponse naming the field", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => json({ token_type: "Bearer" }), clientCredentials())
      expect(expectAuthError(error, "InvalidResponse").message).toBe(
        "The token response is not valid: access_token: Missing"
      )
    }))

  it.effect("refuses an access token that cannot go into a header", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => json({ access_token: "at\r\nx-evil: 1" }), clientCredentials())
      expectAuthError(error, "InvalidResponse")
    }))

  it.effect("refresh sends the refresh token and keeps it when the response has none", () =>
    Effect.gen(function*() {
      const { exit, http } = yield* withHttp(
        () => json({ access_token: "at-2", expires_in: 60 }),
        TokenClient.refresh({
          tokenEndpoint,
          client: publicClient,
          refreshToken: Redacted.make("rt-old"),
          scopes: ["all"]
        })
      )
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(Redacted.value(exit.value.accessToken)).toBe("at-2")
      expect(Redacted.value(exit.value.refreshToken!)).toBe("rt-old")
      const request = yield* http.last
      expect(request.form.get("grant_type")).toBe("refresh_token")
      expect(request.form.get("refresh_token")).toBe("rt-old")
      expect(request.form.get("scope")).toBe("all")
    }))

  it.effect("refresh takes a rotated refresh token", () =>
    Effect.gen(function*() {
      const { exit } = yield* withHttp(
        () => json({ access_token: "at-2", refresh_token: "rt-new" }),
        TokenClient.refresh({ tokenEndpoint, client: publicClient, refreshToken: Redacted.make("rt-old") })
      )
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(Redacted.value(exit.value.refreshToken!)).toBe("rt-new")
    }))
})

describe("TokenClient error responses", () => {
  it.effect("parses an RFC 6749 §5.2 error", () =>
    Effect.gen(function*() {
      const error = expectAuthError(
        yield* failureOf(
          () =>
            json(
              { error: "invalid_client", error_description: "Client authentication failed", error_uri: "https://e" },
              401
            ),
          clientCredentials()
        ),
        "OAuthError"
      )
      expect(error.error).toBe("invalid_client")
      expect(error.errorDescription).toBe("Client authentication failed")
      expect(error.errorUri).toBe("https://e")
      expect(error.status).toBe(401)
      expect(error.message).toBe(
        "https://idp.example/oauth2/token refused the request (HTTP 401) (invalid_client: Client authentication failed)"
      )
      expect(Policies.isTransient(error)).toBe(false)
    }))

  it.effect("an error sent with status 200 is still an OAuth error", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => json({ error: "invalid_scope" }), clientCredentials())
      expect(expectAuthError(error, "OAuthError").error).toBe("invalid_scope")
    }))

  it.effect("an HTML 500 page is a transient InvalidResponse, not a crash", () =>
    Effect.gen(function*() {
      const error = expectAuthError(
        yield* failureOf(() => text("<html><body>Internal Server Error</body></html>", 500), clientCredentials()),
        "InvalidResponse"
      )
      expect(error.status).toBe(500)
      expect(error.message).toBe(
        "https://idp.example/oauth2/token answered HTTP 500 (text/html) without an OAuth error"
      )
      expect(Policies.isTransient(error)).toBe(true)
    }))

  it.effect("garbage with status 200 is an InvalidResponse", () =>
    Effect.gen(function*() {
      const error = expectAuthError(
        yield* failureOf(() => text("{not json", 200, "application/json"), clientCredentials()),
        "InvalidResponse"
      )
      expect(error.message).toContain("not JSON (application/json)")
    }))

  it.effect("an empty body, JSON null and a JSON array are InvalidResponses", () =>
    Effect.gen(function*() {
      const answers = [() => new Response(null, { status: 204 }), () => json(null), () => json([tokenJson])]
      for (const answer of answers) {
        expectAuthError(yield* failureOf(answer, clientCredentials()), "InvalidResponse")
      }
    }))

  it.effect("a connection failure is a transient Transport error with the socket code", () =>
    Effect.gen(function*() {
      const error = expectAuthError(yield* failureOf((request) => refused(request), clientCredentials()), "Transport")
      expect(error.message).toBe("Could not reach https://idp.example/oauth2/token: Transport error (ECONNREFUSED)")
      expect(Policies.isTransient(error)).toBe(true)
    }))

  it.effect("reads the error of a client wrapped with filterStatusOk", () =>
    Effect.gen(function*() {
      const http = yield* makeMockHttp(() => json({ error: "invalid_grant" }, 400))
      const error = yield* clientCredentials().pipe(
        Effect.provideService(HttpClient.HttpClient, HttpClient.filterStatusOk(http.client)),
        Effect.flip
      )
      expect(expectAuthError(error, "OAuthError").error).toBe("invalid_grant")
    }))

  it.effect("truncates a huge error_description", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(
        () => json({ error: "invalid_request", error_description: "x".repeat(100_000) }, 400),
        clientCredentials()
      )
      expect(expectAuthError(error, "OAuthError").message.length).toBeLessThan(1000)
    }))
})

describe("TokenClient limits", () => {
  it.effect("a request that never answers fails with Transport after Policies.httpTimeout", () =>
    Effect.gen(function*() {
      const http = yield* makeMockHttp(() => Effect.never)
      const fiber = yield* clientCredentials().pipe(
        Effect.provideService(HttpClient.HttpClient, http.client),
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust(Duration.subtract(Policies.httpTimeout, Duration.millis(1)))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      const error = expectAuthError(yield* Fiber.join(fiber), "Transport")
      expect(error.message).toBe("https://idp.example/oauth2/token did not answer in time (30s)")
    }))

  it.effect("a body that never ends fails with Transport after the same timeout", () =>
    Effect.gen(function*() {
      let cancelled = false
      const http = yield* makeMockHttp(() =>
        new Response(
          new ReadableStream<Uint8Array>({
            start: (controller) => controller.enqueue(new TextEncoder().encode("{\"access_token\":")),
            cancel: () => {
              cancelled = true
            }
          }),
          { status: 200, headers: { "content-type": "application/json" } }
        )
      )
      const fiber = yield* clientCredentials().pipe(
        Effect.provideService(HttpClient.HttpClient, http.client),
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust(Policies.httpTimeout)
      expectAuthError(yield* Fiber.join(fiber), "Transport")
      expect(cancelled).toBe(true)
    }))

  it.effect("stops reading a body past 1 MiB without buffering the rest", () =>
    Effect.gen(function*() {
      const chunk = new Uint8Array(64 * 1024).fill(0x61)
      let produced = 0
      let cancelled = false
      const http = yield* makeMockHttp(() =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull: (controller) => {
              if (produced >= 10 * 1024 * 1024) return controller.close()
              produced += chunk.byteLength
              controller.enqueue(chunk)
            },
            cancel: () => {
              cancelled = true
            }
          }),
          { status: 200 }
        )
      )
      const error = yield* clientCredentials().pipe(
        Effect.provideService(HttpClient.HttpClient, http.client),
        Effect.flip
      )
      expect(expectAuthError(error, "InvalidResponse").message).toBe(
        "The answer of https://idp.example/oauth2/token is larger than 1048576 bytes"
      )
      expect(produced).toBeLessThan(2 * 1024 * 1024)
      expect(cancelled).toBe(true)
    }))

  it.effect("reads a body of exactly 1 MiB", () =>
    Effect.gen(function*() {
      const padding = " ".repeat(1024 * 1024 - JSON.stringify(tokenJson).length)
      const { exit } = yield* withHttp(
        () => new Response(JSON.stringify(tokenJson) + padding, { status: 200 }),
        clientCredentials()
      )
      expect(exit._tag).toBe("Success")
    }))
})

describe("TokenClient device flow", () => {
  const deviceEndpoint = "https://idp.example/oauth2/device"
  const authorize = (client: TokenClient.ClientAuthentication = publicClient) =>
    TokenClient.deviceAuthorization({
      deviceAuthorizationEndpoint: deviceEndpoint,
      client,
      scopes: ["all"],
      audience: "aud"
    })

  it.effect("decodes a device authorization with interval and complete URI", () =>
    Effect.gen(function*() {
      const { exit, http } = yield* withHttp(
        () =>
          json({
            device_code: "dc",
            user_code: "ABCD-EFGH",
            verification_uri: "https://idp.example/device",
            verification_uri_complete: "https://idp.example/device?user_code=ABCD-EFGH",
            expires_in: 600,
            interval: 7
          }),
        authorize()
      )
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(Redacted.value(exit.value.deviceCode)).toBe("dc")
      expect(exit.value.userCode).toBe("ABCD-EFGH")
      expect(exit.value.verificationUri).toBe("https://idp.example/device")
      expect(exit.value.verificationUriComplete).toBe("https://idp.example/device?user_code=ABCD-EFGH")
      expect(Duration.toSeconds(exit.value.expiresIn)).toBe(600)
      expect(Duration.toSeconds(exit.value.interval)).toBe(7)
      const request = yield* http.last
      expect(request.url.href).toBe(deviceEndpoint)
      expect(Object.fromEntries(request.form)).toEqual({ scope: "all", audience: "aud", client_id: "flytectl" })
    }))

  it.effect("defaults the interval to 5 s and accepts verification_url", () =>
    Effect.gen(function*() {
      const { exit } = yield* withHttp(
        () =>
          json({
            device_code: "dc",
            user_code: "U",
            verification_url: "https://google.example/device",
            expires_in: "1800"
          }),
        authorize()
      )
      if (exit._tag !== "Success") throw new Error("expected success")
      expect(exit.value.verificationUri).toBe("https://google.example/device")
      expect(exit.value.verificationUriComplete).toBeUndefined()
      expect(Duration.toSeconds(exit.value.interval)).toBe(5)
      expect(Duration.toSeconds(exit.value.expiresIn)).toBe(1800)
    }))

  it.effect("a device authorization without a verification URI is an InvalidResponse", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => json({ device_code: "dc", user_code: "U", expires_in: 600 }), authorize())
      expect(expectAuthError(error, "InvalidResponse").message).toContain("verification_uri")
    }))

  it.effect("a device authorization error is an OAuthError", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => json({ error: "unauthorized_client" }, 400), authorize(basic))
      expect(expectAuthError(error, "OAuthError").error).toBe("unauthorized_client")
    }))

  const poll = TokenClient.deviceToken({
    tokenEndpoint,
    client: publicClient,
    deviceCode: Redacted.make("dc-1")
  })

  it.effect("a poll sends the device code grant and answers credentials", () =>
    Effect.gen(function*() {
      const { exit, http } = yield* withHttp(() => json(tokenJson), poll)
      expect(exit._tag).toBe("Success")
      const request = yield* http.last
      expect(request.form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:device_code")
      expect(request.form.get("device_code")).toBe("dc-1")
    }))

  it.effect("maps pending, slow_down, access_denied and expired_token", () =>
    Effect.gen(function*() {
      const pending = yield* failureOf(() => json({ error: "authorization_pending" }, 400), poll)
      expect(pending).toBeInstanceOf(AuthError.AuthenticationPending)
      expect((pending as AuthError.AuthenticationPending).reason).toBe("AuthorizationPending")

      // GitHub answers a pending poll with status 200.
      const pending200 = yield* failureOf(() => json({ error: "authorization_pending" }), poll)
      expect(pending200).toBeInstanceOf(AuthError.AuthenticationPending)

      const slow = yield* failureOf(() => json({ error: "slow_down" }, 400), poll)
      expect((slow as AuthError.AuthenticationPending).reason).toBe("SlowDown")

      const denied = expectAuthError(
        yield* failureOf(() => json({ error: "access_denied", error_description: "nope" }, 400), poll),
        "AccessDenied"
      )
      expect(denied.error).toBe("access_denied")
      expect(denied.errorDescription).toBe("nope")
      expect(denied.status).toBe(400)

      expectAuthError(yield* failureOf(() => json({ error: "expired_token" }, 400), poll), "ExpiredToken")
      const other = expectAuthError(yield* failureOf(() => json({ error: "invalid_grant" }, 400), poll), "OAuthError")
      expect(other.error).toBe("invalid_grant")
    }))

  it.effect("a non-JSON poll response is an InvalidResponse", () =>
    Effect.gen(function*() {
      expectAuthError(yield* failureOf(() => text("<h1>Bad Gateway</h1>", 502), poll), "InvalidResponse")
      expectAuthError(yield* failureOf(() => text("pending...", 200, "text/plain"), poll), "InvalidResponse")
    }))
})

describe("TokenClient configuration errors", () => {
  it.effect("a token endpoint that is not a URL is a Config error", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(
        () => json(tokenJson),
        TokenClient.clientCredentials({ tokenEndpoint: "not a url", client: basic })
      )
      expect(expectAuthError(error, "Config").message).toBe(
        "Cannot send a request to (invalid URL): the URL is not valid"
      )
      expect(Policies.isTransient(error as AuthError.AuthenticationError)).toBe(false)
    }))
})
