import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { AuthError, ClientConfig } from "@flyte-auth/core"
import { Deferred, Duration, Effect, Fiber, Option, Ref, type Scope, TestClock } from "effect"
import { type Handler, json, makeMockHttp, refused, text } from "./helpers/mockHttp.js"

const base = "https://flyte.example"
const metadataPath = "/.well-known/oauth-authorization-server"
const clientPath = "/config/v1/flyte_client"

const metadata = {
  issuer: "https://idp.example",
  authorization_endpoint: "https://idp.example/oauth2/authorize",
  token_endpoint: "https://idp.example/oauth2/token",
  device_authorization_endpoint: "https://idp.example/oauth2/device",
  jwks_uri: "https://idp.example/jwks",
  revocation_endpoint: "https://idp.example/oauth2/revoke",
  token_endpoint_auth_methods_supported: ["client_secret_basic", "private_key_jwt"],
  response_types_supported: ["code"]
}

const flyteClient = {
  client_id: "flytectl",
  redirect_uri: "http://localhost:53593/callback",
  scopes: ["offline", "all"],
  authorization_metadata_key: "flyte-authorization",
  service_http_endpoint: "",
  audience: ""
}

/** Answers Flyte admin's two metadata paths; anything else is a 404. */
const flyteAdmin = (overrides: { metadata?: unknown; client?: unknown } = {}): Handler => (request) => {
  switch (request.url.pathname) {
    case metadataPath:
      return json(overrides.metadata ?? metadata)
    case clientPath:
      return json(overrides.client ?? flyteClient)
    default:
      return text("not found", 404, "text/plain")
  }
}

const storeWith = (
  handler: Handler,
  make: Effect.Effect<ClientConfig.ClientConfigStore.Service, never, HttpClient.HttpClient | Scope.Scope> = ClientConfig
    .makeFlyteHttp(base)
) =>
  Effect.gen(function*() {
    const http = yield* makeMockHttp(handler)
    const store = yield* Effect.provideService(make, HttpClient.HttpClient, http.client)
    return { http, store }
  })

const expectAuthError = (error: unknown, reason: AuthError.AuthenticationErrorReason) => {
  expect(error).toBeInstanceOf(AuthError.AuthenticationError)
  expect((error as AuthError.AuthenticationError).reason).toBe(reason)
  return error as AuthError.AuthenticationError
}

describe("ClientConfig.layerStatic", () => {
  it.scoped("answers the given configuration with defaults filled in", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatMap(ClientConfig.ClientConfigStore, (store) => store.get).pipe(
        Effect.provide(ClientConfig.layerStatic(new ClientConfig.ClientConfig({ tokenEndpoint: "https://t" })))
      )
      expect(config.headerKey).toBe("authorization")
      expect(config.scopes).toEqual([])
    }))
})

describe("ClientConfig.nonEmpty", () => {
  it("turns empty and blank strings, null and undefined into undefined", () => {
    expect(ClientConfig.nonEmpty("")).toBeUndefined()
    expect(ClientConfig.nonEmpty("  ")).toBeUndefined()
    expect(ClientConfig.nonEmpty(null)).toBeUndefined()
    expect(ClientConfig.nonEmpty(undefined)).toBeUndefined()
    expect(ClientConfig.nonEmpty("x")).toBe("x")
  })
})

describe("ClientConfig.makeFlyteHttp", () => {
  it.scoped("combines the authorization server metadata and the public client config", () =>
    Effect.gen(function*() {
      const { http, store } = yield* storeWith(flyteAdmin())
      const config = yield* store.get
      expect(config).toEqual(
        new ClientConfig.ClientConfig({
          tokenEndpoint: "https://idp.example/oauth2/token",
          authorizationEndpoint: "https://idp.example/oauth2/authorize",
          deviceAuthorizationEndpoint: "https://idp.example/oauth2/device",
          redirectUri: "http://localhost:53593/callback",
          clientId: "flytectl",
          scopes: ["offline", "all"],
          headerKey: "flyte-authorization",
          issuer: "https://idp.example",
          jwksUri: "https://idp.example/jwks",
          revocationEndpoint: "https://idp.example/oauth2/revoke",
          tokenEndpointAuthMethods: ["client_secret_basic", "private_key_jwt"]
        })
      )
      const requests = yield* http.requests
      expect(requests.map((r) => `${r.method} ${r.url.href}`).sort()).toEqual([
        "GET https://flyte.example/.well-known/oauth-authorization-server",
        "GET https://flyte.example/config/v1/flyte_client"
      ])
      expect(requests.every((r) => r.headers["authorization"] === undefined)).toBe(true)
    }))

  it.scoped("normalises empty strings (as proto JSON sends them) to absent", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWith(
        flyteAdmin({
          metadata: { ...metadata, device_authorization_endpoint: "", authorization_endpoint: "", issuer: "" },
          client: {
            client_id: "",
            redirect_uri: "",
            scopes: ["", " "],
            authorization_metadata_key: "",
            service_http_endpoint: "",
            audience: ""
          }
        })
      )
      const config = yield* store.get
      expect(config.deviceAuthorizationEndpoint).toBeUndefined()
      expect(config.authorizationEndpoint).toBeUndefined()
      expect(config.issuer).toBeUndefined()
      expect(config.clientId).toBeUndefined()
      expect(config.redirectUri).toBeUndefined()
      expect(config.audience).toBeUndefined()
      expect(config.serviceHttpEndpoint).toBeUndefined()
      expect(config.scopes).toEqual([])
      expect(config.headerKey).toBe("authorization")
    }))

  it.scoped("accepts camelCase client config, relative endpoints and a base URL with a path", () =>
    Effect.gen(function*() {
      const { http, store } = yield* storeWith(
        (request) =>
          request.url.pathname.endsWith(metadataPath)
            ? json({ token_endpoint: "/oauth2/token", authorization_endpoint: "oauth2/authorize" })
            : json({ clientId: "c", authorizationMetadataKey: "Flyte-Authorization", serviceHttpEndpoint: "http://h" }),
        ClientConfig.makeFlyteHttp("https://flyte.example/api/")
      )
      const config = yield* store.get
      expect(config.tokenEndpoint).toBe("https://flyte.example/oauth2/token")
      expect(config.authorizationEndpoint).toBe("https://flyte.example/api/oauth2/authorize")
      expect(config.clientId).toBe("c")
      expect(config.headerKey).toBe("flyte-authorization")
      expect(config.serviceHttpEndpoint).toBe("http://h")
      const paths = (yield* http.requests).map((r) => r.url.pathname).sort()
      expect(paths).toEqual(["/api/.well-known/oauth-authorization-server", "/api/config/v1/flyte_client"])
    }))

  it.scoped("user overrides win over published values", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWith(
        flyteAdmin({ client: { ...flyteClient, audience: "published-aud" } }),
        ClientConfig.makeFlyteHttp(base, {
          clientId: "mine",
          scopes: ["custom"],
          audience: "my-aud",
          redirectUri: "http://localhost:1234/cb",
          headerKey: "authorization"
        })
      )
      const config = yield* store.get
      expect(config.clientId).toBe("mine")
      expect(config.scopes).toEqual(["custom"])
      expect(config.audience).toBe("my-aud")
      expect(config.redirectUri).toBe("http://localhost:1234/cb")
      expect(config.headerKey).toBe("authorization")
    }))

  it.scoped("empty overrides do not hide published values", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWith(
        flyteAdmin(),
        ClientConfig.makeFlyteHttp(base, { clientId: "", scopes: [], headerKey: " " })
      )
      const config = yield* store.get
      expect(config.clientId).toBe("flytectl")
      expect(config.scopes).toEqual(["offline", "all"])
      expect(config.headerKey).toBe("flyte-authorization")
    }))

  it.scoped("fetches once and caches the result", () =>
    Effect.gen(function*() {
      const { http, store } = yield* storeWith(flyteAdmin())
      expect(yield* http.count()).toBe(0)
      const first = yield* store.get
      const second = yield* store.get
      expect(second).toBe(first)
      expect(yield* http.count(metadataPath)).toBe(1)
      expect(yield* http.count(clientPath)).toBe(1)
    }))

  it.scoped("concurrent first callers share one fetch", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const admin = flyteAdmin()
      const { http, store } = yield* storeWith((request, call) =>
        Effect.as(Deferred.await(gate), admin(request, call) as Response)
      )
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(store.get))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      const configs = yield* Fiber.joinAll(fibers)
      expect(new Set(configs).size).toBe(1)
      expect(yield* http.count(metadataPath)).toBe(1)
      expect(yield* http.count(clientPath)).toBe(1)
    }))

  it.scoped("concurrent callers share a failure, and the failure is not cached", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const healthy = yield* Ref.make(false)
      const admin = flyteAdmin()
      const { http, store } = yield* storeWith((request, call) =>
        Effect.gen(function*() {
          yield* Deferred.await(gate)
          if (!(yield* Ref.get(healthy)) && request.url.pathname === clientPath) return text("missing", 404)
          return admin(request, call) as Response
        })
      )
      const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () => Effect.fork(Effect.flip(store.get)))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      const errors = yield* Fiber.joinAll(fibers)
      expect(new Set(errors).size).toBe(1)
      const error = expectAuthError(errors[0], "InvalidResponse")
      expect(error.status).toBe(404)
      expect(error.message).toContain("https://flyte.example/config/v1/flyte_client")
      expect(yield* http.count(clientPath)).toBe(1)

      yield* Ref.set(healthy, true)
      const config = yield* store.get
      expect(config.clientId).toBe("flytectl")
      expect(yield* http.count(clientPath)).toBe(2)
      yield* store.get
      expect(yield* http.count(clientPath)).toBe(2)
    }))

  it.scoped("an interrupted first caller does not break the fetch for the others", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const admin = flyteAdmin()
      const { http, store } = yield* storeWith((request, call) =>
        Effect.as(Deferred.await(gate), admin(request, call) as Response)
      )
      const first = yield* Effect.fork(store.get)
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(store.get)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      yield* Deferred.succeed(gate, undefined)
      const config = yield* Fiber.join(second)
      expect(config.clientId).toBe("flytectl")
      expect(yield* http.count(clientPath)).toBe(1)
    }))

  it.scoped("retries transient failures (5xx, connection refused) with Policies.transientRetry", () =>
    Effect.gen(function*() {
      const admin = flyteAdmin()
      let metadataCalls = 0
      let clientCalls = 0
      const { http, store } = yield* storeWith((request, call) => {
        if (request.url.pathname === metadataPath && metadataCalls++ < 2) return text("<h1>503</h1>", 503)
        if (request.url.pathname === clientPath && clientCalls++ < 1) return refused(request)
        return admin(request, call)
      })
      const fiber = yield* Effect.fork(store.get)
      yield* TestClock.adjust(Duration.seconds(5))
      const config = yield* Fiber.join(fiber)
      expect(config.tokenEndpoint).toBe(metadata.token_endpoint)
      expect(yield* http.count(metadataPath)).toBe(3)
      expect(yield* http.count(clientPath)).toBe(2)
    }))

  it.scoped("gives up after 3 retries with the last transient error", () =>
    Effect.gen(function*() {
      const { http, store } = yield* storeWith((request) =>
        request.url.pathname === metadataPath ? text("unavailable", 503, "text/plain") : json(flyteClient)
      )
      const fiber = yield* Effect.fork(Effect.flip(store.get))
      yield* TestClock.adjust(Duration.seconds(10))
      const error = expectAuthError(yield* Fiber.join(fiber), "InvalidResponse")
      expect(error.status).toBe(503)
      expect(error.message).toBe(
        "https://flyte.example/.well-known/oauth-authorization-server answered HTTP 503 (text/plain) without an OAuth error"
      )
      expect(yield* http.count(metadataPath)).toBe(4)
    }))

  it.scoped("does not retry a non-transient failure", () =>
    Effect.gen(function*() {
      const { http, store } = yield* storeWith((request) =>
        request.url.pathname === metadataPath ? json({ issuer: "x" }) : json(flyteClient)
      )
      const error = expectAuthError(yield* Effect.flip(store.get), "InvalidResponse")
      expect(error.message).toBe(
        "The metadata at https://flyte.example/.well-known/oauth-authorization-server has no token_endpoint"
      )
      expect(yield* http.count(metadataPath)).toBe(1)
    }))

  it.scoped("a malformed metadata body names the URL and the field", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWith(flyteAdmin({ metadata: { token_endpoint: 42 } }))
      const error = expectAuthError(yield* Effect.flip(store.get), "InvalidResponse")
      expect(error.message).toBe(
        "The https://flyte.example/.well-known/oauth-authorization-server response is not valid: token_endpoint: Type"
      )
    }))

  it.scoped("refuses an endpoint that is not an http(s) URL", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWith(
        flyteAdmin({ metadata: { ...metadata, token_endpoint: "javascript:alert(1)" } })
      )
      expectAuthError(yield* Effect.flip(store.get), "InvalidResponse")
    }))

  it.scoped("an invalid base URL is a Config error, without any request", () =>
    Effect.gen(function*() {
      for (const url of ["flyte.example:443", "dns:///flyte.example", "https://flyte.example/?x=1", ""]) {
        const { http, store } = yield* storeWith(flyteAdmin(), ClientConfig.makeFlyteHttp(url))
        expectAuthError(yield* Effect.flip(store.get), "Config")
        expect(yield* http.count()).toBe(0)
      }
    }))

  it.scoped("a request that hangs times out and is retried", () =>
    Effect.gen(function*() {
      const admin = flyteAdmin()
      let hung = false
      const { http, store } = yield* storeWith((request, call) => {
        if (request.url.pathname === metadataPath && !hung) {
          hung = true
          return Effect.never
        }
        return admin(request, call)
      })
      const fiber = yield* Effect.fork(store.get)
      yield* TestClock.adjust(Duration.seconds(29))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.seconds(5))
      expect((yield* Fiber.join(fiber)).clientId).toBe("flytectl")
      expect(yield* http.count(metadataPath)).toBe(2)
    }))

  it.scoped("layerFlyteHttp provides the store", () =>
    Effect.gen(function*() {
      const http = yield* makeMockHttp(flyteAdmin())
      const config = yield* Effect.flatMap(ClientConfig.ClientConfigStore, (store) => store.get).pipe(
        Effect.provide(ClientConfig.layerFlyteHttp(base)),
        Effect.provideService(HttpClient.HttpClient, http.client)
      )
      expect(config.headerKey).toBe("flyte-authorization")
    }))
})

describe("ClientConfig.makeOidcDiscovery", () => {
  const issuer = "https://idp.example/realms/flyte"
  const discovery = {
    issuer,
    authorization_endpoint: `${issuer}/auth`,
    token_endpoint: `${issuer}/token`,
    device_authorization_endpoint: `${issuer}/device`,
    jwks_uri: `${issuer}/certs`
  }
  const overrides = { clientId: "cli", scopes: ["openid", "offline_access"], redirectUri: "http://localhost:8080/cb" }

  it.scoped("reads the issuer's discovery document, with client values from overrides", () =>
    Effect.gen(function*() {
      const { http, store } = yield* storeWith(
        (request) =>
          request.url.pathname === "/realms/flyte/.well-known/openid-configuration"
            ? json(discovery)
            : text("no", 404),
        ClientConfig.makeOidcDiscovery(`${issuer}/`, overrides)
      )
      const config = yield* store.get
      expect(config).toEqual(
        new ClientConfig.ClientConfig({
          tokenEndpoint: discovery.token_endpoint,
          authorizationEndpoint: discovery.authorization_endpoint,
          deviceAuthorizationEndpoint: discovery.device_authorization_endpoint,
          clientId: "cli",
          scopes: ["openid", "offline_access"],
          redirectUri: "http://localhost:8080/cb",
          headerKey: "authorization",
          issuer,
          jwksUri: discovery.jwks_uri
        })
      )
      yield* store.get
      expect(yield* http.count()).toBe(1)
    }))

  it.scoped("refuses a document for another issuer", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWith(
        () => json({ ...discovery, issuer: "https://evil.example" }),
        ClientConfig.makeOidcDiscovery(issuer, overrides)
      )
      const error = expectAuthError(yield* Effect.flip(store.get), "InvalidResponse")
      expect(error.message).toContain("names issuer https://evil.example/")
    }))

  it.scoped("a failed discovery is not cached", () =>
    Effect.gen(function*() {
      let calls = 0
      const { http, store } = yield* storeWith(
        () => calls++ === 0 ? json({ error: "server_error" }, 400) : json(discovery),
        ClientConfig.makeOidcDiscovery(issuer, overrides)
      )
      expectAuthError(yield* Effect.flip(store.get), "OAuthError")
      expect((yield* store.get).tokenEndpoint).toBe(discovery.token_endpoint)
      expect(yield* http.count()).toBe(2)
    }))

  it.scoped("layerOidcDiscovery provides the store", () =>
    Effect.gen(function*() {
      const http = yield* makeMockHttp(() => json(discovery))
      const config = yield* Effect.flatMap(ClientConfig.ClientConfigStore, (store) => store.get).pipe(
        Effect.provide(ClientConfig.layerOidcDiscovery(issuer, { clientId: "x" })),
        Effect.provideService(HttpClient.HttpClient, http.client)
      )
      expect(config.clientId).toBe("x")
    }))
})

describe("ClientConfig.makeCached", () => {
  it.scoped("runs the fetch once per success and again after a failure", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const store = yield* ClientConfig.makeCached(
        Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (n) =>
          n === 1
            ? Effect.fail(new AuthError.AuthenticationError({ reason: "Transport", description: "down" }))
            : Effect.succeed(new ClientConfig.ClientConfig({ tokenEndpoint: `https://t/${n}` })))
      )
      expectAuthError(yield* Effect.flip(store.get), "Transport")
      expect((yield* store.get).tokenEndpoint).toBe("https://t/2")
      expect((yield* store.get).tokenEndpoint).toBe("https://t/2")
      expect(yield* Ref.get(calls)).toBe(2)
    }))
})
