import { describe, expect, it } from "@effect/vitest"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import { GrpcAuth } from "@flyte-auth/grpc"
import * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Either, Ref } from "effect"
import { startEchoServer, tokenGate } from "./utils/echoServer.js"
import type { EchoResponse, TestAuth } from "./utils/grpcTest.js"
import { echoClient, makeTestAuth, noCredentials, readStream, unary } from "./utils/grpcTest.js"

const Status = grpc.status

/** An Echo client whose interceptor is `GrpcAuth.interceptor` over the given test authenticator. */
const authedClient = (address: string, auth: TestAuth) =>
  Effect.flatMap(
    Effect.provide(GrpcAuth.interceptor, auth.layer),
    (interceptor) => echoClient(address, { interceptors: [interceptor] })
  )

const codeOf = (result: Either.Either<unknown, grpc.ServiceError>) => Either.isLeft(result) ? result.left.code : 0

describe("GrpcAuth.interceptor", () => {
  it.scopedLive("adds `<headerKey>: Bearer <token>` from the Authenticator and keeps the caller's metadata", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ headerKey: "flyte-authorization" })
      const server = yield* startEchoServer({ gate: tokenGate("flyte-authorization", () => ["token-0"]) })
      const client = yield* authedClient(server.address, auth)
      const metadata = new grpc.Metadata()
      metadata.set("x-request-id", "abc-123")
      const response = yield* unary(client, "Unary", { text: "hi" }, metadata)
      expect(response.text).toBe("hi")
      expect(response.seen["flyte-authorization"]).toBe("Bearer token-0")
      expect(response.seen["x-request-id"]).toBe("abc-123")
      expect(response.seen["authorization"]).toBeUndefined()
      // The caller's metadata object is not modified.
      expect(metadata.get("flyte-authorization")).toEqual([])
      expect(yield* auth.refreshes).toBe(0)
    }))

  it.scopedLive("an expired token is invalidated, refreshed once, and the call retried and succeeds", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ headerKey: "flyte-authorization" })
      const server = yield* startEchoServer({ gate: tokenGate("flyte-authorization", () => ["token-1"]) })
      const client = yield* authedClient(server.address, auth)
      const response = yield* unary(client, "Unary", { text: "hi" })
      expect(response.seen["flyte-authorization"]).toBe("Bearer token-1")
      expect(yield* auth.refreshes).toBe(1)
      expect(yield* auth.invalidated).toEqual(["token-0"])
      expect(server.calls().map((call) => call.seen["flyte-authorization"])).toEqual([
        "Bearer token-0",
        "Bearer token-1"
      ])
    }))

  it.scopedLive("50 concurrent calls rejected with the same token cause one refresh, and all succeed", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ refreshDelay: "50 millis" })
      const server = yield* startEchoServer({ gate: tokenGate("authorization", () => ["token-1"]) })
      const client = yield* authedClient(server.address, auth)
      const responses = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => unary(client, "Unary", { text: `call-${i}` }),
        { concurrency: "unbounded" }
      )
      expect(responses.map((r) => r.text)).toEqual(Array.from({ length: 50 }, (_, i) => `call-${i}`))
      expect(responses.every((r) => r.seen["authorization"] === "Bearer token-1")).toBe(true)
      expect(yield* auth.refreshes).toBe(1)
      expect(server.calls()).toHaveLength(100)
    }))

  it.scopedLive("a second UNAUTHENTICATED surfaces after one refresh and one retry", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const server = yield* startEchoServer({ gate: tokenGate("authorization", () => []) })
      const client = yield* authedClient(server.address, auth)
      const error = yield* Effect.flip(unary(client, "Unary", { text: "hi" }))
      expect(error.code).toBe(Status.UNAUTHENTICATED)
      expect(error.details).toBe("the access token is invalid or expired")
      expect(server.calls().map((call) => call.seen["authorization"])).toEqual(["Bearer token-0", "Bearer token-1"])
      expect(yield* auth.refreshes).toBe(1)
    }))

  it.scopedLive("PERMISSION_DENIED, NOT_FOUND and INVALID_ARGUMENT never trigger a refresh", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const codes = [Status.PERMISSION_DENIED, Status.NOT_FOUND, Status.INVALID_ARGUMENT, Status.INTERNAL]
      const server = yield* startEchoServer({
        gate: (_metadata, _method, index) => ({ code: codes[index % codes.length], details: "no" })
      })
      const client = yield* authedClient(server.address, auth)
      for (const code of codes) {
        const error = yield* Effect.flip(unary(client, "Unary", { text: "hi" }))
        expect(error.code).toBe(code)
      }
      expect(server.calls()).toHaveLength(codes.length)
      expect(yield* auth.refreshes).toBe(0)
      expect(yield* auth.invalidated).toEqual([])
    }))

  it.scopedLive("an UNAUTHENTICATED that a proxy sent does not refresh the access token", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const server = yield* startEchoServer({
        gate: () => ({ code: Status.UNAUTHENTICATED, details: "proxy authentication required (407)" })
      })
      const client = yield* authedClient(server.address, auth)
      const error = yield* Effect.flip(unary(client, "Unary", { text: "hi" }))
      expect(error.code).toBe(Status.UNAUTHENTICATED)
      expect(server.calls()).toHaveLength(1)
      expect(yield* auth.refreshes).toBe(0)
    }))

  it.scopedLive("a server stream rejected before its first message is retried with the new token", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const server = yield* startEchoServer({ gate: tokenGate("authorization", () => ["token-1"]) })
      const client = yield* authedClient(server.address, auth)
      const { error, messages } = yield* readStream(client.ServerStream({ text: "x" }))
      expect(error).toBeUndefined()
      expect(messages.map((m) => m.text)).toEqual(["one", "two", "three"])
      expect(messages[0].seen["authorization"]).toBe("Bearer token-1")
      expect(server.calls()).toHaveLength(2)
      expect(yield* auth.refreshes).toBe(1)
    }))

  it.scopedLive("a server stream that delivered a message is not retried, and messages are not held back", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const firstReceived = yield* Deferred.make<void>()
      const server = yield* startEchoServer({
        serverStream: async (call) => {
          call.write({ text: "one", seen: {} })
          // The stream stays open until the client has the first message: a client that buffered until the end
          // would never get it, and this test would time out.
          await Effect.runPromise(Deferred.await(firstReceived))
          call.emit("error", { code: Status.UNAUTHENTICATED, details: "token expired mid-stream" })
        }
      })
      const client = yield* authedClient(server.address, auth)
      const { error, messages } = yield* readStream(
        client.ServerStream({ text: "x" }),
        () => Effect.runSync(Deferred.succeed(firstReceived, undefined))
      )
      expect(messages.map((m) => m.text)).toEqual(["one"])
      expect(error?.code).toBe(Status.UNAUTHENTICATED)
      expect(error?.details).toBe("token expired mid-stream")
      expect(server.calls()).toHaveLength(1)
      // Not replayed, but the rejected token is dropped so that the next call gets a new one.
      expect(yield* auth.invalidated).toEqual(["token-0"])
    }))

  it.scopedLive("client-streaming and bidi calls carry the header and surface UNAUTHENTICATED without replay", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth()
      const accepted = yield* Ref.make<ReadonlyArray<string>>(["token-0"])
      const server = yield* startEchoServer({
        gate: tokenGate("authorization", () => Effect.runSync(Ref.get(accepted)))
      })
      const client = yield* authedClient(server.address, auth)

      const collect = Effect.async<EchoResponse, grpc.ServiceError>((resume) => {
        const call = client.ClientStream((error: grpc.ServiceError | null, response: EchoResponse) =>
          resume(error === null ? Effect.succeed(response) : Effect.fail(error))
        )
        call.write({ text: "a" })
        call.write({ text: "b" })
        call.end()
      })
      const ok = yield* collect
      expect(ok.text).toBe("a,b")
      expect(ok.seen["authorization"]).toBe("Bearer token-0")

      const chat = Effect.async<ReadonlyArray<string>, grpc.ServiceError>((resume) => {
        const call = client.Bidi()
        const texts: Array<string> = []
        call.on("data", (m: EchoResponse) => texts.push(`${m.text}:${m.seen["authorization"]}`))
        call.on("error", (error: grpc.ServiceError) => resume(Effect.fail(error)))
        call.on("end", () => resume(Effect.succeed(texts)))
        call.write({ text: "a" })
        call.write({ text: "b" })
        call.end()
      })
      expect(yield* chat).toEqual(["a:Bearer token-0", "b:Bearer token-0"])

      yield* Ref.set(accepted, ["token-1"])
      const rejected = yield* Effect.flip(collect)
      expect(rejected.code).toBe(Status.UNAUTHENTICATED)
      expect(server.calls()).toHaveLength(3)
      // The next call uses a refreshed token.
      yield* Effect.yieldNow()
      const again = yield* chat
      expect(again).toEqual(["a:Bearer token-1", "b:Bearer token-1"])
      expect(yield* auth.refreshes).toBe(1)
      expect(server.calls()).toHaveLength(4)
    }))

  it.scopedLive("no token: the call fails with UNAUTHENTICATED saying why, and never reaches the server", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ header: noCredentials })
      const server = yield* startEchoServer()
      const client = yield* authedClient(server.address, auth)
      const error = yield* Effect.flip(unary(client, "Unary", { text: "hi" }))
      expect(error.code).toBe(Status.UNAUTHENTICATED)
      expect(error.details).toContain("could not obtain the access token for /flyteauth.test.Echo/Unary")
      expect(error.details).toContain("No credentials for the test endpoint")
      expect(server.calls()).toHaveLength(0)
    }))

  it.scopedLive("a failed refresh surfaces UNAUTHENTICATED naming the failure but never the token", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({
        refreshFails: new AuthenticationError({ reason: "Transport", description: "The IdP is unreachable" })
      })
      const server = yield* startEchoServer({ gate: tokenGate("authorization", () => []) })
      const client = yield* authedClient(server.address, auth)
      const error = yield* Effect.flip(unary(client, "Unary", { text: "hi" }))
      expect(error.code).toBe(Status.UNAUTHENTICATED)
      expect(error.details).toContain("The IdP is unreachable")
      expect(error.details).toContain("the access token is invalid or expired")
      expect(error.details).not.toContain("token-0")
      expect(server.calls()).toHaveLength(1)
    }))

  it.scopedLive("the deadline bounds the wait for a token, and cancelling a call stops the wait", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(0)
      const auth = yield* makeTestAuth({
        header: Effect.never.pipe(Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1)))
      })
      const server = yield* startEchoServer()
      const client = yield* authedClient(server.address, auth)
      const started = Date.now()
      const late = yield* Effect.flip(
        unary(client, "Unary", { text: "hi" }, new grpc.Metadata(), { deadline: Date.now() + 200 })
      )
      expect(late.code).toBe(Status.DEADLINE_EXCEEDED)
      expect(Date.now() - started).toBeLessThan(5_000)

      const cancelled = yield* Effect.async<grpc.ServiceError>((resume) => {
        const call = client.Unary({ text: "hi" }, (error: grpc.ServiceError) => resume(Effect.succeed(error)))
        setTimeout(() => call.cancel(), 50)
      })
      expect(cancelled.code).toBe(Status.CANCELLED)
      // Both waits for a token were interrupted (the interruption itself is asynchronous).
      const interruptions = yield* Ref.get(interrupted).pipe(
        Effect.delay("10 millis"),
        Effect.repeat({ until: (n) => n >= 2 }),
        Effect.timeout("2 seconds")
      )
      expect(interruptions).toBe(2)
      expect(server.calls()).toHaveLength(0)
    }))
})

describe("authInterceptor (Promise facade)", () => {
  // Like the facade: `rejected(sent)` refreshes (one flight) only while `sent` still holds the current token.
  const makeFacade = () => {
    let version = 0
    let refreshes = 0
    let inFlight: Promise<void> | undefined
    const rejections: Array<Readonly<Record<string, string>>> = []
    const refresh = () => {
      inFlight ??= (async () => {
        refreshes += 1
        await new Promise((resolve) => setTimeout(resolve, 30))
        version += 1
        inFlight = undefined
      })()
      return inFlight
    }
    return {
      auth: {
        headers: async () => ({ "Flyte-Authorization": `Bearer token-${version}` }),
        rejected: async (sent: Readonly<Record<string, string>>) => {
          rejections.push(sent)
          if (sent["flyte-authorization"] === `Bearer token-${version}`) await refresh()
          else await inFlight
        },
        refresh
      },
      refreshes: () => refreshes,
      rejections: () => rejections
    }
  }

  it.scopedLive("adds the facade's headers; 50 concurrent rejected calls share one refresh", () =>
    Effect.gen(function*() {
      const facade = makeFacade()
      const server = yield* startEchoServer({ gate: tokenGate("flyte-authorization", () => ["token-1"]) })
      const client = yield* echoClient(server.address, { interceptors: [GrpcAuth.authInterceptor(facade.auth)] })
      const responses = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        () => unary(client, "Unary", { text: "x" }),
        { concurrency: "unbounded" }
      )
      expect(responses.every((r) => r.seen["flyte-authorization"] === "Bearer token-1")).toBe(true)
      expect(facade.refreshes()).toBe(1)
      // Each rejected call handed back exactly the headers it sent.
      expect(facade.rejections()).toHaveLength(50)
      expect(new Set(facade.rejections().map((sent) => JSON.stringify(sent)))).toEqual(
        new Set([JSON.stringify({ "flyte-authorization": "Bearer token-0" })])
      )
      // Later calls use the new headers without refreshing again.
      const later = yield* Effect.either(unary(client, "Unary", { text: "x" }))
      expect(codeOf(later)).toBe(0)
      expect(facade.refreshes()).toBe(1)
    }))

  it.scopedLive("cachedHeaders answers without headers(); a rejection still refreshes once and retries", () =>
    Effect.gen(function*() {
      // Like the facade: `headers()` loads and caches; `refresh()` drops the cache until the next `headers()`.
      let version = 0
      let asked = 0
      let refreshes = 0
      let cache: Record<string, string> | undefined = { authorization: "Bearer token-0" }
      const auth = {
        headers: async () => {
          asked += 1
          cache = { authorization: `Bearer token-${version}` }
          return { ...cache }
        },
        cachedHeaders: () => cache,
        rejected: async (sent: Readonly<Record<string, string>>) => {
          if (sent.authorization !== `Bearer token-${version}`) return
          refreshes += 1
          version += 1
          cache = undefined
        },
        refresh: async () => undefined
      }
      const server = yield* startEchoServer({ gate: tokenGate("authorization", () => ["token-1"]) })
      const client = yield* echoClient(server.address, { interceptors: [GrpcAuth.authInterceptor(auth)] })
      const first = yield* unary(client, "Unary", { text: "x" })
      expect(first.seen.authorization).toBe("Bearer token-1")
      // The first attempt took the cached token-0 (rejected); the retry asked headers() once.
      expect(refreshes).toBe(1)
      expect(asked).toBe(1)
      yield* Effect.forEach(Array.from({ length: 20 }), () => unary(client, "Unary", { text: "x" }), {
        concurrency: 5
      })
      expect(asked).toBe(1)
      expect(refreshes).toBe(1)
    }))

  it.scopedLive("a rejected headers() fails the call with UNAUTHENTICATED", () =>
    Effect.gen(function*() {
      const server = yield* startEchoServer()
      const interceptor = GrpcAuth.authInterceptor({
        headers: () => Promise.reject(noCredentials),
        rejected: () => Promise.resolve(),
        refresh: () => Promise.resolve()
      })
      const client = yield* echoClient(server.address, { interceptors: [interceptor] })
      const error = yield* Effect.flip(unary(client, "Unary", { text: "x" }))
      expect(error.code).toBe(Status.UNAUTHENTICATED)
      expect(error.details).toContain("No credentials for the test endpoint")
      expect(server.calls()).toHaveLength(0)
    }))
})
