import { describe, expect, it } from "@effect/vitest"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import { Credentials } from "@flyte-auth/core/Credentials"
import * as TokenSource from "@flyte-auth/core/TokenSource"
import { GrpcAuth } from "@flyte-auth/grpc"
import * as grpc from "@grpc/grpc-js"
import { DateTime, Effect, Redacted, Ref } from "effect"
import * as http2 from "node:http2"
import type { Gate } from "./utils/echoServer.js"
import { startEchoServer } from "./utils/echoServer.js"
import { echoClient, makeTestAuth, unary } from "./utils/grpcTest.js"

const Status = grpc.status

/** Rejects a call like an identity-aware proxy unless `proxy-authorization` holds one of `accepted()`. */
const proxyGate =
  (accepted: () => ReadonlyArray<string>, next: Gate = () => undefined): Gate => (metadata, method, index) => {
    const sent = metadata.get("proxy-authorization")[0]
    if (typeof sent !== "string" || !accepted().some((token) => sent === `Bearer ${token}`)) {
      return { code: Status.UNAUTHENTICATED, details: "proxy authentication required (407)" }
    }
    return next(metadata, method, index)
  }

/** A `proxyCommand` stand-in: every run prints `proxy-<n>`. */
const makeCommand = () => {
  let runs = 0
  return {
    run: async () => {
      runs += 1
      await new Promise((resolve) => setTimeout(resolve, 20))
      return `proxy-${runs}\n`
    },
    runs: () => runs
  }
}

/** A plaintext HTTP/2 server that answers every request with 407, as a proxy that refuses the token does. */
const start407Proxy = Effect.acquireRelease(
  Effect.async<{ readonly server: http2.Http2Server; readonly address: string; readonly seen: Array<string> }>(
    (resume) => {
      const seen: Array<string> = []
      const server = http2.createServer((request, response) => {
        seen.push(String(request.headers["proxy-authorization"]))
        response.writeHead(407, { "content-type": "text/plain" })
        response.end("proxy authentication required")
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port
        resume(Effect.succeed({ server, address: `127.0.0.1:${port}`, seen }))
      })
    }
  ),
  ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

describe("GrpcAuth.proxyAuthorizationInterceptor", () => {
  it.scopedLive("adds `proxy-authorization: Bearer <token>` to every call, running the command once", () =>
    Effect.gen(function*() {
      const command = makeCommand()
      const server = yield* startEchoServer({ gate: proxyGate(() => ["proxy-1"]) })
      const client = yield* echoClient(server.address, {
        interceptors: [GrpcAuth.proxyAuthorizationInterceptor(command.run)]
      })
      yield* Effect.forEach(Array.from({ length: 10 }), () => unary(client, "Unary", { text: "x" }), {
        concurrency: 5
      })
      expect(server.calls().map((call) => call.seen["proxy-authorization"])).toEqual(
        Array.from({ length: 10 }, () => "Bearer proxy-1")
      )
      expect(command.runs()).toBe(1)
    }))

  it.scopedLive("a call the proxy rejects re-runs the command once (for all concurrent calls) and retries", () =>
    Effect.gen(function*() {
      const command = makeCommand()
      const accepted = yield* Ref.make<ReadonlyArray<string>>(["proxy-1"])
      const server = yield* startEchoServer({ gate: proxyGate(() => Effect.runSync(Ref.get(accepted))) })
      const client = yield* echoClient(server.address, {
        interceptors: [GrpcAuth.proxyAuthorizationInterceptor(command.run)]
      })
      yield* unary(client, "Unary", { text: "x" })
      yield* Ref.set(accepted, ["proxy-2"])
      const responses = yield* Effect.forEach(Array.from({ length: 20 }), () => unary(client, "Unary", { text: "x" }), {
        concurrency: "unbounded"
      })
      expect(responses.every((r) => r.seen["proxy-authorization"] === "Bearer proxy-2")).toBe(true)
      expect(command.runs()).toBe(2)
    }))

  it.scopedLive("an HTTP 407 from a real HTTP/2 proxy re-runs the command once, then surfaces", () =>
    Effect.gen(function*() {
      const command = makeCommand()
      const proxy = yield* start407Proxy
      const client = yield* echoClient(proxy.address, {
        interceptors: [GrpcAuth.proxyAuthorizationInterceptor(command.run)]
      })
      const error = yield* Effect.flip(unary(client, "Unary", { text: "x" }))
      expect(error.code).toBe(Status.UNKNOWN)
      expect(error.details).toContain("407")
      expect(GrpcAuth.isProxyRejection(error)).toBe(true)
      expect(proxy.seen).toEqual(["Bearer proxy-1", "Bearer proxy-2"])
      expect(command.runs()).toBe(2)
    }))

  it.scopedLive("a failing command fails the call with UNAUTHENTICATED, quoting no foreign error message", () =>
    Effect.gen(function*() {
      const server = yield* startEchoServer()
      const client = yield* echoClient(server.address, {
        interceptors: [GrpcAuth.proxyAuthorizationInterceptor(() => Promise.reject(new Error("stdout: s3cr3t")))]
      })
      const error = yield* Effect.flip(unary(client, "Unary", { text: "x" }))
      expect(error.code).toBe(Status.UNAUTHENTICATED)
      expect(error.details).toContain("could not obtain the proxy token")
      expect(error.details).not.toContain("s3cr3t")
      expect(server.calls()).toHaveLength(0)
    }))

  it.scopedLive("other codes never re-run the command", () =>
    Effect.gen(function*() {
      const command = makeCommand()
      const server = yield* startEchoServer({
        gate: proxyGate(() => ["proxy-1"], () => ({ code: Status.UNAUTHENTICATED, details: "bad bearer token" }))
      })
      const client = yield* echoClient(server.address, {
        interceptors: [GrpcAuth.proxyAuthorizationInterceptor(command.run)]
      })
      const error = yield* Effect.flip(unary(client, "Unary", { text: "x" }))
      expect(error.details).toBe("bad bearer token")
      expect(command.runs()).toBe(1)
      expect(server.calls()).toHaveLength(1)
    }))
})

describe("GrpcAuth.proxyInterceptor (Effect)", () => {
  it.scopedLive("renews a token from credentials when it nears its expiry", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const source = Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(runs, (x) => x + 1)
        const now = yield* DateTime.now
        return new Credentials({
          accessToken: Redacted.make(`proxy-${n}`),
          endpoint: "proxy",
          obtainedAt: now,
          expiresAt: DateTime.add(now, { millis: 300 })
        })
      })
      const server = yield* startEchoServer({ gate: proxyGate(() => ["proxy-1", "proxy-2"]) })
      const interceptor = yield* GrpcAuth.proxyInterceptor(yield* TokenSource.reuse(source))
      const client = yield* echoClient(server.address, { interceptors: [interceptor] })
      yield* unary(client, "Unary", { text: "x" })
      yield* unary(client, "Unary", { text: "x" })
      yield* Effect.sleep("200 millis")
      yield* unary(client, "Unary", { text: "x" })
      expect(server.calls().map((call) => call.seen["proxy-authorization"])).toEqual([
        "Bearer proxy-1",
        "Bearer proxy-1",
        "Bearer proxy-2"
      ])
      expect(yield* Ref.get(runs)).toBe(2)
    }))

  it.scopedLive("a failing token source fails the call with its AuthError message", () =>
    Effect.gen(function*() {
      const server = yield* startEchoServer()
      const interceptor = yield* GrpcAuth.proxyInterceptor(
        yield* TokenSource.reuse(
          new AuthenticationError({ reason: "CommandFailed", description: "proxyCommand exited with 3" })
        )
      )
      const client = yield* echoClient(server.address, { interceptors: [interceptor] })
      const error = yield* Effect.flip(unary(client, "Unary", { text: "x" }))
      expect(error.code).toBe(Status.UNAUTHENTICATED)
      expect(error.details).toContain("proxyCommand exited with 3")
    }))

  it.scopedLive("in channelOptions the proxy is renewed inside one auth attempt, and a token rejection still refreshes", () =>
    Effect.gen(function*() {
      const auth = yield* makeTestAuth({ headerKey: "flyte-authorization" })
      const proxyRuns = yield* Ref.make(0)
      const acceptedProxy = yield* Ref.make<ReadonlyArray<string>>(["proxy-1"])
      const acceptedBearer = yield* Ref.make<ReadonlyArray<string>>(["Bearer token-0"])
      const server = yield* startEchoServer({
        gate: proxyGate(
          () => Effect.runSync(Ref.get(acceptedProxy)),
          (metadata) =>
            Effect.runSync(Ref.get(acceptedBearer)).includes(String(metadata.get("flyte-authorization")[0]))
              ? undefined
              : { code: Status.UNAUTHENTICATED, details: "the access token is invalid" }
        )
      })
      const channel = yield* GrpcAuth.channelOptions({
        endpoint: server.address,
        insecure: true,
        proxyToken: yield* TokenSource.reuse(
          Effect.map(
            Ref.updateAndGet(proxyRuns, (n) => n + 1),
            (n) => new Credentials({ accessToken: Redacted.make(`proxy-${n}`), endpoint: "proxy" })
          )
        )
      }).pipe(Effect.provide(auth.layer))
      expect(channel.interceptors).toHaveLength(2)
      const client = yield* echoClient(channel.address, { interceptors: channel.interceptors }, channel.credentials)

      const first = yield* unary(client, "Unary", { text: "x" })
      expect(first.seen["proxy-authorization"]).toBe("Bearer proxy-1")
      expect(first.seen["flyte-authorization"]).toBe("Bearer token-0")

      // The proxy token is rotated: renewed once, without touching the access token.
      yield* Ref.set(acceptedProxy, ["proxy-2"])
      yield* unary(client, "Unary", { text: "x" })
      expect(yield* Ref.get(proxyRuns)).toBe(2)
      expect(yield* auth.refreshes).toBe(0)

      // The access token is rejected: refreshed once, without re-running the proxy command.
      yield* Ref.set(acceptedBearer, ["Bearer token-1"])
      const last = yield* unary(client, "Unary", { text: "x" })
      expect(last.seen["flyte-authorization"]).toBe("Bearer token-1")
      expect(yield* auth.refreshes).toBe(1)
      expect(yield* Ref.get(proxyRuns)).toBe(2)
      client.close()
    }))
})
