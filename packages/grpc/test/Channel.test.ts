import { afterAll, describe, expect, it } from "@effect/vitest"
import { GrpcAuth } from "@flyte-auth/grpc"
import * as grpc from "@grpc/grpc-js"
import { Effect, Exit, Logger, Scope } from "effect"
import { startEchoServer, tokenGate } from "./utils/echoServer.js"
import { EchoClient, echoClient, makeTestAuth, noCredentials, unary } from "./utils/grpcTest.js"
import { makeCertificate } from "./utils/tls.js"

const certificate = makeCertificate()
afterAll(() => certificate.remove())

const tlsServer = (gate = tokenGate("flyte-authorization", () => ["token-0"])) =>
  startEchoServer({
    gate,
    credentials: grpc.ServerCredentials.createSsl(null, [{
      private_key: certificate.key,
      cert_chain: certificate.cert
    }])
  })

describe("GrpcAuth.callCredentials", () => {
  it.scopedLive("adds the Authenticator's header on a TLS channel", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ headerKey: "flyte-authorization" })
      const server = yield* tlsServer()
      const callCredentials = yield* Effect.provide(GrpcAuth.callCredentials, auth.layer)
      const channel = yield* GrpcAuth.channelCredentials({
        endpoint: server.address,
        caCertFilePath: certificate.certPath
      })
      const client = yield* echoClient(
        server.address,
        {},
        grpc.credentials.combineChannelCredentials(channel, callCredentials)
      )
      const response = yield* unary(client, "Unary", { text: "tls" })
      expect(response.seen["flyte-authorization"]).toBe("Bearer token-0")
    }))

  it.scopedLive("fails the call with UNAUTHENTICATED when no token can be obtained", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ header: noCredentials })
      const server = yield* tlsServer()
      const callCredentials = yield* Effect.provide(GrpcAuth.callCredentials, auth.layer)
      const client = yield* echoClient(
        server.address,
        {},
        grpc.credentials.combineChannelCredentials(grpc.credentials.createSsl(certificate.cert), callCredentials)
      )
      const error = yield* Effect.flip(unary(client, "Unary", { text: "tls" }))
      expect(error.code).toBe(grpc.status.UNAUTHENTICATED)
      expect(error.details).toContain("No credentials for the test endpoint")
      expect(server.calls()).toHaveLength(0)
    }))

  it.scopedLive("authCallCredentials adds the facade's headers", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer()
      const callCredentials = GrpcAuth.authCallCredentials({
        headers: async () => ({ "flyte-authorization": "Bearer token-0" }),
        rejected: async () => undefined,
        refresh: async () => undefined
      })
      const client = yield* echoClient(
        server.address,
        {},
        grpc.credentials.combineChannelCredentials(grpc.credentials.createSsl(certificate.cert), callCredentials)
      )
      const response = yield* unary(client, "Unary", { text: "tls" })
      expect(response.seen["flyte-authorization"]).toBe("Bearer token-0")
    }))
})

describe("GrpcAuth.channelOptions", () => {
  it.scopedLive("gives an authenticated client over TLS with a custom CA in two lines", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ headerKey: "flyte-authorization" })
      const server = yield* tlsServer(tokenGate("flyte-authorization", () => ["token-1"]))
      const client = yield* Effect.provide(
        Effect.gen(function*() {
          const { address, credentials, interceptors } = yield* GrpcAuth.channelOptions({
            endpoint: server.address,
            caCertFilePath: certificate.certPath
          })
          return new EchoClient(address, credentials, { interceptors }) as grpc.Client & Record<string, any>
        }),
        auth.layer
      )
      const response = yield* unary(client, "Unary", { text: "hi" })
      client.close()
      expect(response.seen["flyte-authorization"]).toBe("Bearer token-1")
      expect(yield* auth.refreshes).toBe(1)
    }))

  it.scopedLive("verifies the server certificate unless insecureSkipVerify is set", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ headerKey: "flyte-authorization" })
      const server = yield* tlsServer()
      const call = (options: { readonly insecureSkipVerify?: boolean }) =>
        Effect.scoped(Effect.gen(function*() {
          const client = yield* GrpcAuth.makeClient(EchoClient, { endpoint: server.address, ...options })
          return yield* unary(client, "Unary", { text: "hi" }, new grpc.Metadata(), { deadline: Date.now() + 5_000 })
        })).pipe(Effect.provide(auth.layer))
      const warnings: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(String(message))
        })
      )
      const unverified = yield* Effect.flip(call({})).pipe(Effect.provide(capture))
      expect((unverified as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE)
      expect(warnings).toEqual([])
      const skipped = yield* call({ insecureSkipVerify: true }).pipe(Effect.provide(capture))
      expect(skipped.seen["flyte-authorization"]).toBe("Bearer token-0")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("TLS certificate verification is disabled")
    }))

  it.scopedLive("plaintext when insecure; a missing CA file is a Config error", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const server = yield* startEchoServer({ gate: tokenGate("authorization", () => ["token-0"]) })
      const response = yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* GrpcAuth.makeClient(EchoClient, { endpoint: server.address, insecure: true })
        return yield* unary(client, "Unary", { text: "hi" })
      })).pipe(Effect.provide(auth.layer))
      expect(response.seen["authorization"]).toBe("Bearer token-0")

      const missing = yield* Effect.flip(GrpcAuth.channelCredentials({
        endpoint: server.address,
        caCertFilePath: `${certificate.dir}/missing.pem`
      }))
      expect(missing.reason).toBe("Config")
      expect(missing.message).toContain("missing.pem")
    }))

  it.live("makeClient closes the client when the scope closes", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const scope = yield* Scope.make()
      const client = yield* GrpcAuth.makeClient(EchoClient, { endpoint: "127.0.0.1:1", insecure: true }).pipe(
        Effect.provide(auth.layer),
        Scope.extend(scope)
      )
      expect(client.getChannel().getConnectivityState(false)).not.toBe(grpc.connectivityState.SHUTDOWN)
      yield* Scope.close(scope, Exit.void)
      expect(client.getChannel().getConnectivityState(false)).toBe(grpc.connectivityState.SHUTDOWN)
    }))
})
