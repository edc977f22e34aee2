/**
 * End to end against the sandbox: the real `Authenticator` (client credentials against the sandbox IdP), its
 * configuration from the sandbox admin's `AuthMetadataService`, and the sandbox admin's protected
 * `IdentityService/UserInfo`, which validates the IdP's JWTs from the `flyte-authorization` metadata.
 */
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Authenticator, ClientConfig, Credentials, Keyring, TokenClient } from "@flyte-auth/core"
import { FlyteProtos, GrpcAuth, RemoteClientConfigStore } from "@flyte-auth/grpc"
import { startSandbox } from "@flyte-auth/sandbox"
import type { Sandbox } from "@flyte-auth/sandbox"
import * as grpc from "@grpc/grpc-js"
import { Effect, Layer, Redacted } from "effect"
import { unary } from "./utils/grpcTest.js"

const IdentityService = FlyteProtos.load("flyteidl/service/identity.proto").flyteidl.service.IdentityService

const sandboxResource = Effect.acquireRelease(
  Effect.promise(() => startSandbox()),
  (sandbox) => Effect.promise(() => sandbox.close())
)

/** The real Authenticator for the sandbox's confidential client, configured from the admin over gRPC. */
const authLayer = (sandbox: Sandbox.Service) => {
  const endpoint = sandbox.adminGrpc
  return Authenticator.layer({
    endpoint,
    interactive: false,
    login: Effect.flatMap(ClientConfig.ClientConfigStore, (store) => store.get).pipe(
      Effect.flatMap((config) =>
        TokenClient.clientCredentials({
          tokenEndpoint: config.tokenEndpoint,
          client: {
            method: "client_secret_basic",
            clientId: sandbox.clients.confidential.clientId,
            clientSecret: Redacted.make(sandbox.clients.confidential.clientSecret)
          },
          scopes: config.scopes,
          audience: config.audience
        }).pipe(Effect.map((tokens) => Credentials.fromTokens(tokens, endpoint)))
      )
    )
  }).pipe(
    Layer.provideMerge(RemoteClientConfigStore.layer({ endpoint, insecure: true })),
    Layer.provide([Keyring.layerMemory, FetchHttpClient.layer])
  )
}

const tokenRequests = (sandbox: Sandbox.Service) => sandbox.stats().tokenRequests.client_credentials

interface UserInfoResponse {
  readonly subject: string
}

describe("GrpcAuth.interceptor against the sandbox", () => {
  it.scopedLive("a rejected token is refreshed once and the call succeeds", () =>
    Effect.gen(function*() {
      const sandbox = yield* sandboxResource
      yield* Effect.gen(function*() {
        const identity = yield* GrpcAuth.makeClient(IdentityService, { endpoint: sandbox.adminGrpc, insecure: true })
        const first = yield* unary<UserInfoResponse>(identity, "UserInfo", {})
        expect(first.subject).toBe(sandbox.clients.confidential.clientId)
        expect(tokenRequests(sandbox)).toBe(1)
        expect(sandbox.adminStats().authFailures).toBe(0)

        sandbox.rejectTokensIssuedBefore()
        const second = yield* unary<UserInfoResponse>(identity, "UserInfo", {})
        expect(second.subject).toBe(sandbox.clients.confidential.clientId)
        expect(tokenRequests(sandbox)).toBe(2)
        expect(sandbox.adminStats().authFailures).toBe(1)
        expect(sandbox.adminStats().userInfoCalls).toBe(3)
        // The metadata was fetched once, without a token, for all of it.
        expect(sandbox.adminStats().oauth2MetadataCalls).toBe(1)
      }).pipe(Effect.provide(authLayer(sandbox)))
    }))

  it.scopedLive("50 concurrent calls on a rejected token cause exactly one token request, and all succeed", () =>
    Effect.gen(function*() {
      const sandbox = yield* sandboxResource
      yield* Effect.gen(function*() {
        const identity = yield* GrpcAuth.makeClient(IdentityService, { endpoint: sandbox.adminGrpc, insecure: true })
        yield* unary(identity, "UserInfo", {})
        expect(tokenRequests(sandbox)).toBe(1)

        sandbox.rejectTokensIssuedBefore()
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }),
          () => Effect.either(unary<UserInfoResponse>(identity, "UserInfo", {})),
          { concurrency: "unbounded" }
        )
        const failures = results.filter((r) => r._tag === "Left").map((r) => (r.left as grpc.ServiceError).details)
        expect(failures).toEqual([])
        expect(tokenRequests(sandbox)).toBe(2)
        expect(sandbox.adminStats().authFailures).toBe(50)
      }).pipe(Effect.provide(authLayer(sandbox)))
    }))

  it.scopedLive("without credentials the IdentityService rejects the call, and the interceptor's header is what fixes it", () =>
    Effect.gen(function*() {
      const sandbox = yield* sandboxResource
      const { credentials } = yield* Effect.provide(
        GrpcAuth.channelOptions({ endpoint: sandbox.adminGrpc, insecure: true }),
        authLayer(sandbox)
      )
      const bare = new IdentityService(sandbox.adminGrpc, credentials)
      const error = yield* Effect.flip(unary(bare, "UserInfo", {}))
      bare.close()
      expect(error.code).toBe(grpc.status.UNAUTHENTICATED)
      expect(tokenRequests(sandbox)).toBe(0)
    }))
})
