/**
 * End to end against the sandbox's Flyte 2 admin (`flyte2: true`, connect-node): the configuration from its
 * `AuthMetadataService` through `ConnectClientConfigStore`, the real `Authenticator` logging in with client
 * credentials at the sandbox IdP, and `ConnectAuth`'s interceptors on `IdentityService/UserInfo` and the
 * server-streaming `StateService/Watch`, over the Connect, gRPC and gRPC-web protocols; the sandbox's revocation
 * cutoff and proxy as the client sees them.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import type { Interceptor, Transport } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { ConnectAuth, ConnectClientConfigStore } from "@flyte-auth/connect"
import * as Authenticator from "@flyte-auth/core/Authenticator"
import * as ClientConfig from "@flyte-auth/core/ClientConfig"
import { Credentials, fromTokens } from "@flyte-auth/core/Credentials"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as TokenClient from "@flyte-auth/core/TokenClient"
import * as TokenSource from "@flyte-auth/core/TokenSource"
import { startSandbox } from "@flyte-auth/sandbox"
import type { Sandbox } from "@flyte-auth/sandbox"
import { StateService } from "@flyte-auth/sandbox/gen/flyteidl2/workflow/state_service_pb"
import { Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { IdentityService } from "../src/gen/flyteidl2/auth/identity_pb.js"

type Protocol = "connect" | "grpc" | "grpc-web"
const protocols: ReadonlyArray<Protocol> = ["connect", "grpc", "grpc-web"]

const transport = (protocol: Protocol, baseUrl: string, interceptors: Array<Interceptor> = []): Transport => {
  const options = { baseUrl, httpVersion: "2" as const, interceptors }
  switch (protocol) {
    case "connect":
      return createConnectTransport(options)
    case "grpc":
      return createGrpcTransport(options)
    case "grpc-web":
      return createGrpcWebTransport(options)
  }
}

/**
 * The real Authenticator for the sandbox's confidential client, configured from the Flyte 2 admin over
 * `protocol` (anonymous, with `configInterceptors` only: e.g. the proxy's).
 */
const authRuntime = (sandbox: Sandbox.Service, protocol: Protocol, configInterceptors: Array<Interceptor> = []) => {
  const endpoint = sandbox.adminConnect!
  const layer = Authenticator.layer({
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
        }).pipe(Effect.map((tokens) => fromTokens(tokens, endpoint)))
      )
    )
  }).pipe(
    Layer.provideMerge(
      ConnectClientConfigStore.layer({ endpoint, transport: transport(protocol, endpoint, configInterceptors) })
    ),
    Layer.provide([Keyring.layerMemory, FetchHttpClient.layer])
  )
  return ManagedRuntime.make(layer)
}

const tokenRequests = (sandbox: Sandbox.Service) => sandbox.stats().tokenRequests.client_credentials

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** An authenticated client of `service` over `protocol`, and its Authenticator's runtime. */
const authenticated = async <S extends typeof IdentityService | typeof StateService>(
  sandbox: Sandbox.Service,
  protocol: Protocol,
  service: S
) => {
  const runtime = authRuntime(sandbox, protocol)
  cleanups.push(() => runtime.dispose())
  const interceptor = await runtime.runPromise(ConnectAuth.interceptor)
  return createClient(service, transport(protocol, sandbox.adminConnect!, [interceptor]))
}

const rejection = (promise: Promise<unknown>): Promise<ConnectError> =>
  promise.then(
    () => {
      throw new Error("expected the call to fail")
    },
    (error: unknown) => ConnectError.from(error)
  )

describe("@flyte-auth/connect against the sandbox's Flyte 2 admin", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({ flyte2: true })
  })
  afterAll(() => sandbox.close())
  afterEach(() => {
    sandbox.acceptAllTokens()
  })

  it.each(protocols)("ConnectClientConfigStore reads the published configuration over %s", async (protocol) => {
    const endpoint = sandbox.adminConnect!
    const before = sandbox.connectAdminStats()
    const config = await Effect.runPromise(
      ConnectClientConfigStore.fetchConfig({ endpoint, transport: transport(protocol, endpoint) })
    )
    expect(config).toMatchObject({
      tokenEndpoint: sandbox.endpoints.token,
      authorizationEndpoint: sandbox.endpoints.authorization,
      deviceAuthorizationEndpoint: sandbox.endpoints.deviceAuthorization,
      clientId: sandbox.clients.public.clientId,
      redirectUri: sandbox.redirectUri,
      scopes: [...sandbox.scopes],
      audience: sandbox.audience,
      headerKey: sandbox.headerKey,
      serviceHttpEndpoint: endpoint,
      dataplaneDomain: new URL(endpoint).host
    })
    const after = sandbox.connectAdminStats()
    expect(after.oauth2MetadataCalls - before.oauth2MetadataCalls).toBe(1)
    expect(after.publicClientConfigCalls - before.publicClientConfigCalls).toBe(1)
  })

  it.each(protocols)(
    "UserInfo: Unauthenticated without a token, answered through the interceptor over %s",
    async (protocol) => {
      const bare = createClient(IdentityService, transport(protocol, sandbox.adminConnect!))
      expect((await rejection(bare.userInfo({}))).code).toBe(Code.Unauthenticated)
      const requestsBefore = tokenRequests(sandbox)
      const identity = await authenticated(sandbox, protocol, IdentityService)
      expect((await identity.userInfo({})).subject).toBe(sandbox.clients.confidential.clientId)
      expect((await identity.userInfo({})).subject).toBe(sandbox.clients.confidential.clientId)
      expect(tokenRequests(sandbox) - requestsBefore).toBe(1)
    }
  )

  it.each(protocols)(
    "a token the admin cut off is refreshed once for 20 concurrent calls over %s",
    async (protocol) => {
      const identity = await authenticated(sandbox, protocol, IdentityService)
      await identity.userInfo({})
      const requestsBefore = tokenRequests(sandbox)
      const failuresBefore = sandbox.connectAdminStats().authFailures
      sandbox.rejectTokensIssuedBefore()
      const answers = await Promise.all(Array.from({ length: 20 }, () => identity.userInfo({})))
      expect(answers.every((a) => a.subject === sandbox.clients.confidential.clientId)).toBe(true)
      expect(tokenRequests(sandbox) - requestsBefore).toBe(1)
      expect(sandbox.connectAdminStats().authFailures - failuresBefore).toBe(20)
      expect(sandbox.connectAdminStats().lastAuthFailure).toBe("token was issued before the revocation cutoff")
    }
  )

  it.each(protocols)(
    "Watch streams several messages; a cut-off token is replaced before the first one over %s",
    async (protocol) => {
      const state = await authenticated(sandbox, protocol, StateService)
      const collect = async () => {
        const cases: Array<string | undefined> = []
        for await (const message of state.watch({})) cases.push(message.message.case)
        return cases
      }
      const expected = [...Array(3).fill("actionUpdate"), "controlMessage", ...Array(3).fill("actionUpdate")]
      expect(await collect()).toEqual(expected)
      const requestsBefore = tokenRequests(sandbox)
      sandbox.rejectTokensIssuedBefore()
      // Rejected before its first message: sent again with a new token, and nothing is repeated.
      expect(await collect()).toEqual(expected)
      expect(tokenRequests(sandbox) - requestsBefore).toBe(1)
    }
  )

  it("a stream under way outlives a cutoff (the token is checked when it starts); the next one gets a new token", async () => {
    const state = await authenticated(sandbox, "connect", StateService)
    const requestsBefore = tokenRequests(sandbox)
    const watch = async (onMessage: (kind: string | undefined) => void = () => {}) => {
      let received = 0
      for await (const message of state.watch({})) {
        received++
        onMessage(message.message.case)
      }
      return received
    }
    // After the sentinel the live updates come 20 ms apart: cut off mid-stream.
    expect(await watch((kind) => kind === "controlMessage" && sandbox.rejectTokensIssuedBefore())).toBe(7)
    expect(tokenRequests(sandbox) - requestsBefore).toBe(1)
    const failuresBefore = sandbox.connectAdminStats().authFailures
    expect(await watch()).toBe(7)
    expect(tokenRequests(sandbox) - requestsBefore).toBe(2)
    expect(sandbox.connectAdminStats().authFailures - failuresBefore).toBe(1)
  })
})

describe("@flyte-auth/connect against the sandbox's Flyte 2 admin behind the proxy", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({ flyte2: true, proxyToken: "proxy-2" })
  })
  afterAll(() => sandbox.close())

  it.each(protocols)(
    "proxyInterceptor: a refused proxy token is replaced and the call sent again over %s",
    async (protocol) => {
      const scope = Effect.runSync(Scope.make())
      cleanups.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
      let runs = 0
      // The first proxy token is stale: the proxy answers 407 and the interceptor asks for the next one.
      const source = await Effect.runPromise(
        TokenSource.reuse(
          Effect.sync(() => new Credentials({ accessToken: Redacted.make(`proxy-${++runs}`), endpoint: "proxy" }))
        ).pipe(Scope.extend(scope))
      )
      const proxy = await Effect.runPromise(ConnectAuth.proxyInterceptor(source))
      const rejectionsBefore = sandbox.connectAdminStats().proxyRejections

      const runtime = authRuntime(sandbox, protocol, [proxy])
      cleanups.push(() => runtime.dispose())
      const auth = await runtime.runPromise(ConnectAuth.interceptor)
      const endpoint = sandbox.adminConnect!
      const identity = createClient(IdentityService, transport(protocol, endpoint, [auth, proxy]))
      expect((await identity.userInfo({})).subject).toBe(sandbox.clients.confidential.clientId)
      // The configuration's two concurrent calls were refused with proxy-1; one new proxy token served them both and
      // every call after them.
      expect(runs).toBe(2)
      expect(sandbox.connectAdminStats().proxyRejections - rejectionsBefore).toBe(2)

      const bare = createClient(IdentityService, transport(protocol, endpoint, [auth]))
      const refused = await rejection(bare.userInfo({}))
      expect(ConnectAuth.isProxyRejection(refused)).toBe(true)
    }
  )
})
