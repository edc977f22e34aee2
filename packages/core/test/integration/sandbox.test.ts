/**
 * TokenClient and the remote ClientConfig stores against the real sandbox: oidc-provider as the IdP and the
 * Flyte-like admin's HTTP metadata endpoints, over real HTTP with @effect/platform's fetch client.
 */
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { AuthError, ClientConfig, Credentials, Policies, TokenClient } from "@flyte-auth/core"
import { type Sandbox, startSandbox } from "@flyte-auth/sandbox"
import { DateTime, Duration, Effect, Redacted } from "effect"

// Characters that RFC 6749 §2.3.1 form-encoding changes, in both the id and the secret.
const confidential = { clientId: "flyte propeller+1", clientSecret: "s3cr3t:%&+/= integration" }

let sandbox: Sandbox.Service
beforeAll(async () => {
  sandbox = await startSandbox({ confidentialClient: confidential })
})
afterAll(() => sandbox?.close())

/** Calls the admin's protected `whoami` with the token, under the header the admin publishes. */
const whoami = (credentials: Credentials.Tokens) =>
  Effect.promise(async () => {
    const response = await fetch(`${sandbox.adminHttp}/api/v1/whoami`, {
      headers: { [sandbox.headerKey]: `Bearer ${Redacted.value(credentials.accessToken)}` }
    })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  })

const expectAuthError = (error: unknown, reason: AuthError.AuthenticationErrorReason) => {
  expect(error).toBeInstanceOf(AuthError.AuthenticationError)
  expect((error as AuthError.AuthenticationError).reason, String(error)).toBe(reason)
  for (const rendering of [String(error), JSON.stringify(error)]) {
    expect(rendering).not.toContain(confidential.clientSecret)
    expect(rendering).not.toContain(encodeURIComponent(confidential.clientSecret))
  }
  return error as AuthError.AuthenticationError
}

describe("TokenClient.clientCredentials against oidc-provider", () => {
  const run = (method: "client_secret_basic" | "client_secret_post", clientSecret = confidential.clientSecret) =>
    TokenClient.clientCredentials({
      tokenEndpoint: sandbox.endpoints.token,
      client: { method, clientId: confidential.clientId, clientSecret: Redacted.make(clientSecret) },
      scopes: ["all"]
    }).pipe(Effect.provide(FetchHttpClient.layer))

  for (const method of ["client_secret_basic", "client_secret_post"] as const) {
    it.live(`${method}: a token the admin accepts, expiring per expires_in by Clock`, () =>
      Effect.gen(function*() {
        const before = yield* DateTime.now
        const credentials = yield* run(method)
        const after = yield* DateTime.now
        expect(credentials.scopes).toEqual(["all"])
        expect(credentials.refreshToken).toBeUndefined()
        // The sandbox issues 600 s tokens.
        const expiresAt = DateTime.toEpochMillis(credentials.expiresAt!)
        expect(expiresAt).toBeGreaterThanOrEqual(DateTime.toEpochMillis(before) + 600_000)
        expect(expiresAt).toBeLessThanOrEqual(DateTime.toEpochMillis(after) + 600_000)
        expect(Credentials.isFresh(credentials, after)).toBe(true)
        const me = yield* whoami(credentials)
        expect(me).toEqual({
          status: 200,
          body: { subject: confidential.clientId, client_id: confidential.clientId, scope: "all" }
        })
      }))
  }

  it.live("a wrong secret is an OAuthError invalid_client that does not show the secret", () =>
    Effect.gen(function*() {
      const error = expectAuthError(yield* Effect.flip(run("client_secret_basic", "wrong")), "OAuthError")
      expect(error.error).toBe("invalid_client")
      expect(error.status).toBe(401)
      expect(Policies.isTransient(error)).toBe(false)
      // A secret the server rejects and that we sent must not come back through the error either.
      expectAuthError(yield* Effect.flip(run("client_secret_post", `${confidential.clientSecret}x`)), "OAuthError")
    }))

  it.live("a public client may not use the client credentials grant", () =>
    Effect.gen(function*() {
      const error = yield* TokenClient.clientCredentials({
        tokenEndpoint: sandbox.endpoints.token,
        client: { method: "none", clientId: sandbox.clients.public.clientId }
      }).pipe(Effect.provide(FetchHttpClient.layer), Effect.flip)
      const refused = expectAuthError(error, "OAuthError")
      expect(refused.status).toBe(400)
      expect(refused.message).toBe(
        `${sandbox.endpoints.token} refused the request (HTTP 400) (${refused.error}: ${refused.errorDescription})`
      )
      expect(refused.errorDescription).toContain("grant type is not allowed")
    }))

  it.live("injected 503 JSON and 502 HTML failures are typed and transient", () =>
    Effect.gen(function*() {
      sandbox.failNextTokenRequests(1)
      const unavailable = expectAuthError(yield* Effect.flip(run("client_secret_basic")), "OAuthError")
      expect([unavailable.error, unavailable.status]).toEqual(["temporarily_unavailable", 503])
      expect(Policies.isTransient(unavailable)).toBe(true)

      sandbox.failNextTokenRequests(1, { status: 502, body: "<html><body>Bad gateway</body></html>" })
      const badGateway = expectAuthError(yield* Effect.flip(run("client_secret_basic")), "InvalidResponse")
      expect(badGateway.status).toBe(502)
      expect(badGateway.message).toBe(`${sandbox.endpoints.token} answered HTTP 502 (text/html) without an OAuth error`)
      expect(Policies.isTransient(badGateway)).toBe(true)

      expect(Redacted.value((yield* run("client_secret_basic")).accessToken).length).toBeGreaterThan(20)
    }))
})

describe("TokenClient device authorization against oidc-provider", () => {
  it.live("starts a device authorization and maps a pending poll", () =>
    Effect.gen(function*() {
      const client = { method: "none", clientId: sandbox.clients.public.clientId } as const
      const authorization = yield* TokenClient.deviceAuthorization({
        deviceAuthorizationEndpoint: sandbox.endpoints.deviceAuthorization!,
        client,
        scopes: ["openid", "all", "offline_access"]
      }).pipe(Effect.provide(FetchHttpClient.layer))
      expect(authorization.userCode.length).toBeGreaterThan(0)
      expect(authorization.verificationUri.startsWith(sandbox.issuer)).toBe(true)
      expect(authorization.verificationUriComplete).toContain("user_code=")
      expect(Duration.toSeconds(authorization.expiresIn)).toBe(600)
      expect(Duration.toSeconds(authorization.interval)).toBe(5)

      const pending = yield* TokenClient.deviceToken({
        tokenEndpoint: sandbox.endpoints.token,
        client,
        deviceCode: authorization.deviceCode
      }).pipe(Effect.provide(FetchHttpClient.layer), Effect.flip)
      expect(pending).toBeInstanceOf(AuthError.AuthenticationPending)
      expect((pending as AuthError.AuthenticationPending).reason).toBe("AuthorizationPending")

      const unknown = yield* TokenClient.deviceToken({
        tokenEndpoint: sandbox.endpoints.token,
        client,
        deviceCode: Redacted.make("not-a-device-code")
      }).pipe(Effect.provide(FetchHttpClient.layer), Effect.flip)
      expect(expectAuthError(unknown, "OAuthError").error).toBe("invalid_grant")
    }))
})

describe("ClientConfig stores against the sandbox", () => {
  it.scopedLive("OIDC discovery of the real issuer", () =>
    Effect.gen(function*() {
      const store = yield* ClientConfig.makeOidcDiscovery(sandbox.issuer, {
        clientId: sandbox.clients.public.clientId,
        scopes: ["openid", "offline_access"],
        redirectUri: "http://localhost:53593/callback"
      }).pipe(Effect.provide(FetchHttpClient.layer))
      const config = yield* store.get
      expect(config).toEqual(
        new ClientConfig.ClientConfig({
          tokenEndpoint: sandbox.endpoints.token,
          authorizationEndpoint: sandbox.endpoints.authorization,
          deviceAuthorizationEndpoint: sandbox.endpoints.deviceAuthorization,
          clientId: sandbox.clients.public.clientId,
          scopes: ["openid", "offline_access"],
          redirectUri: "http://localhost:53593/callback",
          headerKey: "authorization",
          issuer: sandbox.issuer,
          jwksUri: sandbox.endpoints.jwks,
          revocationEndpoint: sandbox.endpoints.revocation,
          tokenEndpointAuthMethods: [
            "client_secret_basic",
            "client_secret_jwt",
            "client_secret_post",
            "private_key_jwt",
            "none"
          ]
        })
      )
    }))

  it.scopedLive("Flyte admin's HTTP metadata, fetched once for any number of callers", () =>
    Effect.gen(function*() {
      sandbox.resetStats()
      const store = yield* ClientConfig.makeFlyteHttp(sandbox.adminHttp).pipe(Effect.provide(FetchHttpClient.layer))
      const configs = yield* Effect.all(Array.from({ length: 10 }, () => store.get), { concurrency: "unbounded" })
      yield* store.get
      const config = configs[0]
      expect(configs.every((c) => c === config)).toBe(true)
      expect(config).toEqual(
        new ClientConfig.ClientConfig({
          tokenEndpoint: sandbox.endpoints.token,
          authorizationEndpoint: sandbox.endpoints.authorization,
          deviceAuthorizationEndpoint: sandbox.endpoints.deviceAuthorization,
          redirectUri: sandbox.redirectUri,
          clientId: sandbox.clients.public.clientId,
          scopes: [...sandbox.scopes],
          headerKey: sandbox.headerKey,
          audience: sandbox.audience,
          issuer: sandbox.issuer,
          jwksUri: sandbox.endpoints.jwks,
          revocationEndpoint: sandbox.endpoints.revocation,
          tokenEndpointAuthMethods: [
            "client_secret_basic",
            "client_secret_jwt",
            "client_secret_post",
            "private_key_jwt",
            "none"
          ],
          serviceHttpEndpoint: sandbox.adminHttp
        })
      )
      expect(sandbox.adminStats()).toMatchObject({ oauth2MetadataCalls: 1, publicClientConfigCalls: 1 })
    }))

  it.live("the discovered configuration drives a real token request", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatMap(ClientConfig.ClientConfigStore, (store) => store.get).pipe(
        Effect.provide(ClientConfig.layerFlyteHttp(sandbox.adminHttp, { scopes: ["all"] })),
        Effect.provide(FetchHttpClient.layer)
      )
      const credentials = yield* TokenClient.clientCredentials({
        tokenEndpoint: config.tokenEndpoint,
        client: {
          method: "client_secret_basic",
          clientId: confidential.clientId,
          clientSecret: Redacted.make(confidential.clientSecret)
        },
        scopes: config.scopes
      }).pipe(Effect.provide(FetchHttpClient.layer))
      expect((yield* whoami(credentials)).status).toBe(200)
    }))
})
