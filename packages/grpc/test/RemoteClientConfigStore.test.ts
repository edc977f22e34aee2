import { describe, expect, it } from "@effect/vitest"
import { ClientConfigStore } from "@flyte-auth/core/ClientConfig"
import { FlyteProtos, GrpcAuth, RemoteClientConfigStore } from "@flyte-auth/grpc"
import { startSandbox } from "@flyte-auth/sandbox"
import * as grpc from "@grpc/grpc-js"
import { Effect, Layer } from "effect"
import { startEchoServer } from "./utils/echoServer.js"
import { startServer } from "./utils/grpcTest.js"

const Status = grpc.status

const AuthMetadataService = FlyteProtos.service("flyteidl/service/auth.proto", "flyteidl.service.AuthMetadataService")

interface Answers {
  readonly metadata?: Record<string, unknown>
  readonly publicClient?: Record<string, unknown>
  /** Fails the first `n` calls of each method with this status. */
  readonly failFirst?: { readonly n: number; readonly code: grpc.status; readonly details: string }
}

/** An AuthMetadataService of our own, counting calls and recording their metadata. */
const startMetadataServer = (answers: Answers = {}) =>
  Effect.gen(function*() {
    const seen: Array<{ readonly method: string; readonly metadata: grpc.Metadata }> = []
    const count = (method: string) => seen.filter((call) => call.method === method).length
    const handler =
      (method: string, answer: Record<string, unknown>) =>
      (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        seen.push({ method, metadata: call.metadata })
        const failFirst = answers.failFirst
        if (failFirst !== undefined && count(method) <= failFirst.n) {
          callback({ code: failFirst.code, details: failFirst.details })
        } else {
          callback(null, answer)
        }
      }
    const address = yield* startServer((server) =>
      server.addService(AuthMetadataService.service, {
        GetOAuth2Metadata: handler("GetOAuth2Metadata", {
          issuer: "https://idp.example.com",
          authorization_endpoint: "https://idp.example.com/authorize",
          token_endpoint: "https://idp.example.com/token",
          device_authorization_endpoint: "",
          ...answers.metadata
        }),
        GetPublicClientConfig: handler("GetPublicClientConfig", {
          client_id: "flytectl",
          redirect_uri: "http://localhost:53593/callback",
          scopes: ["all", ""],
          authorization_metadata_key: "Flyte-Authorization",
          service_http_endpoint: "",
          audience: "",
          ...answers.publicClient
        })
      })
    )
    return { address, seen, count }
  })

const getConfig = (target: RemoteClientConfigStore.Target) =>
  Effect.flatMap(ClientConfigStore, (store) => store.get).pipe(
    Effect.provide(RemoteClientConfigStore.layer(target))
  )

describe("RemoteClientConfigStore", () => {
  it.scopedLive("maps both responses to a ClientConfig, empty proto3 strings as absent, without a bearer token", () =>
    Effect.gen(function*() {
      const server = yield* startMetadataServer()
      const config = yield* getConfig({ endpoint: server.address, insecure: true })
      expect(config.tokenEndpoint).toBe("https://idp.example.com/token")
      expect(config.authorizationEndpoint).toBe("https://idp.example.com/authorize")
      expect(config.deviceAuthorizationEndpoint).toBeUndefined()
      expect(config.issuer).toBe("https://idp.example.com")
      expect(config.clientId).toBe("flytectl")
      expect(config.redirectUri).toBe("http://localhost:53593/callback")
      expect(config.scopes).toEqual(["all"])
      expect(config.headerKey).toBe("flyte-authorization")
      expect(config.audience).toBeUndefined()
      expect(server.seen.map((call) => call.method).sort()).toEqual(["GetOAuth2Metadata", "GetPublicClientConfig"])
      for (const call of server.seen) {
        expect(call.metadata.get("authorization")).toEqual([])
        expect(call.metadata.get("flyte-authorization")).toEqual([])
      }
    }))

  it.scopedLive("falls back to `authorization` and lets overrides win", () =>
    Effect.gen(function*() {
      const server = yield* startMetadataServer({
        publicClient: { authorization_metadata_key: "", audience: "https://flyte.example.com" }
      })
      const fallback = yield* getConfig({ endpoint: server.address, insecure: true })
      expect(fallback.headerKey).toBe("authorization")
      expect(fallback.audience).toBe("https://flyte.example.com")
      const overridden = yield* getConfig({
        endpoint: server.address,
        insecure: true,
        overrides: { clientId: "mine", scopes: ["offline_access"], headerKey: "x-auth" }
      })
      expect(overridden.clientId).toBe("mine")
      expect(overridden.scopes).toEqual(["offline_access"])
      expect(overridden.headerKey).toBe("x-auth")
    }))

  it.scopedLive("fetches once for many users of the store", () =>
    Effect.gen(function*() {
      const server = yield* startMetadataServer()
      const configs = yield* Effect.gen(function*() {
        const store = yield* ClientConfigStore
        const concurrent = yield* Effect.forEach(Array.from({ length: 20 }), () => store.get, {
          concurrency: "unbounded"
        })
        const later = yield* Effect.forEach(Array.from({ length: 5 }), () => store.get)
        return [...concurrent, ...later]
      }).pipe(Effect.provide(RemoteClientConfigStore.layer({ endpoint: server.address, insecure: true })))
      expect(configs).toHaveLength(25)
      expect(new Set(configs.map((c) => c.tokenEndpoint))).toEqual(new Set(["https://idp.example.com/token"]))
      expect(server.count("GetOAuth2Metadata")).toBe(1)
      expect(server.count("GetPublicClientConfig")).toBe(1)
    }))

  it.scopedLive("retries UNAVAILABLE, and does not cache a failure", () =>
    Effect.gen(function*() {
      const flaky = yield* startMetadataServer({ failFirst: { n: 1, code: Status.UNAVAILABLE, details: "warming up" } })
      const config = yield* getConfig({ endpoint: flaky.address, insecure: true })
      expect(config.clientId).toBe("flytectl")
      expect(flaky.count("GetOAuth2Metadata")).toBe(2)
      expect(flaky.count("GetPublicClientConfig")).toBe(2)

      const broken = yield* startMetadataServer({ failFirst: { n: 1, code: Status.INTERNAL, details: "boom" } })
      const [first, second] = yield* Effect.gen(function*() {
        const store = yield* ClientConfigStore
        return [yield* Effect.flip(store.get), yield* store.get] as const
      }).pipe(Effect.provide(RemoteClientConfigStore.layer({ endpoint: broken.address, insecure: true })))
      expect(first.reason).toBe("InvalidResponse")
      expect(first.message).toContain("INTERNAL")
      expect(second.clientId).toBe("flytectl")
      // INTERNAL is not transient: no retry, one call per `get`.
      expect(broken.count("GetOAuth2Metadata")).toBe(2)
    }))

  it.scopedLive("a server without AuthMetadataService is a clear Config error", () =>
    Effect.gen(function*() {
      const server = yield* startEchoServer()
      const error = yield* Effect.flip(getConfig({ endpoint: server.address, insecure: true }))
      expect(error._tag).toBe("AuthenticationError")
      expect(error.reason).toBe("Config")
      expect(error.message).toContain(`does not implement flyteidl.service.AuthMetadataService`)
      expect(error.message).toContain(server.address)
    }))

  it.scopedLive("no server: a Transport error after the retries, within the deadline", () =>
    Effect.gen(function*() {
      const unreachable = yield* startServer(() => {}).pipe(Effect.scoped) // bound, then closed again
      const error = yield* Effect.flip(getConfig({ endpoint: unreachable, insecure: true, timeout: "2 seconds" }))
      expect(error.reason).toBe("Transport")
      expect(error.message).toContain(unreachable)
    }))

  it.scopedLive("a missing token_endpoint is an InvalidResponse error", () =>
    Effect.gen(function*() {
      const server = yield* startMetadataServer({ metadata: { token_endpoint: "" } })
      const error = yield* Effect.flip(getConfig({ endpoint: server.address, insecure: true }))
      expect(error.reason).toBe("InvalidResponse")
      expect(error.message).toContain("no token_endpoint")
    }))

  it.scopedLive("the proxy interceptor adds proxy-authorization to the metadata calls", () =>
    Effect.gen(function*() {
      const server = yield* startMetadataServer()
      let runs = 0
      const proxy = GrpcAuth.proxyAuthorizationInterceptor(async () => `proxy-${++runs}`)
      yield* getConfig({ endpoint: server.address, insecure: true, interceptors: [proxy] })
      expect(server.seen).toHaveLength(2)
      for (const call of server.seen) {
        expect(call.metadata.get("proxy-authorization")).toEqual(["Bearer proxy-1"])
        expect(call.metadata.get("authorization")).toEqual([])
      }
      expect(runs).toBe(1)
    }))

  it.scopedLive("reads the sandbox admin's published configuration", () =>
    Effect.gen(function*() {
      const sandbox = yield* Effect.acquireRelease(
        Effect.promise(() => startSandbox()),
        (s) => Effect.promise(() => s.close())
      )
      const config = yield* Effect.gen(function*() {
        const store = yield* ClientConfigStore
        yield* Effect.forEach(Array.from({ length: 10 }), () => store.get, { concurrency: "unbounded" })
        return yield* store.get
      }).pipe(
        Effect.provide(Layer.fresh(RemoteClientConfigStore.layer({ endpoint: sandbox.adminGrpc, insecure: true })))
      )
      expect(config.tokenEndpoint).toBe(sandbox.endpoints.token)
      expect(config.authorizationEndpoint).toBe(sandbox.endpoints.authorization)
      expect(config.deviceAuthorizationEndpoint).toBe(sandbox.endpoints.deviceAuthorization)
      expect(config.issuer).toBe(sandbox.issuer)
      expect(config.clientId).toBe(sandbox.clients.public.clientId)
      expect(config.redirectUri).toBe(sandbox.redirectUri)
      expect(config.scopes).toEqual(sandbox.scopes)
      expect(config.headerKey).toBe("flyte-authorization")
      expect(config.audience).toBe(sandbox.audience)
      expect(sandbox.adminStats().oauth2MetadataCalls).toBe(1)
      expect(sandbox.adminStats().publicClientConfigCalls).toBe(1)
    }))
})
