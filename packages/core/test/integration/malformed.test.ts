/**
 * The OAuth client against a real loopback HTTP server that misbehaves: HTML and garbage answers, 503s, answers
 * that never come or never end, a 10 MB body, a connection cut mid-answer, a refused connection. Requests go
 * through the real fetch `HttpClient`; waiting is on `TestClock`, so the 30 s timeout costs nothing.
 */
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { AuthError, ClientConfig, Policies, TokenClient } from "@flyte-auth/core"
import { Deferred, Duration, Effect, Fiber, Option, Redacted, type Scope, TestClock, TestServices } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

type Route = (req: http.IncomingMessage, res: http.ServerResponse, server: TestServer) => void

interface TestServer {
  readonly url: string
  /** Requests seen, by path. */
  readonly hits: Map<string, number>
  /** Completed when a request for the path arrived. */
  readonly arrived: (path: string) => Promise<void>
  /** Completed when the client closed the connection of a request for the path. */
  readonly clientClosed: (path: string) => Promise<void>
  /** Bytes written to the client per path. */
  readonly written: Map<string, number>
}

const once = () => {
  let resolve!: () => void
  const promise = new Promise<void>((r) => resolve = r)
  return { promise, resolve }
}

/** A `node:http` server on 127.0.0.1, port 0, closed (with all its connections) when the scope ends. */
const serve = (routes: Record<string, Route>): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; state: TestServer }>((resume) => {
      const arrivals = new Map<string, ReturnType<typeof once>>()
      const closes = new Map<string, ReturnType<typeof once>>()
      const signal = (map: Map<string, ReturnType<typeof once>>, path: string) => {
        if (!map.has(path)) map.set(path, once())
        return map.get(path)!
      }
      const state: { -readonly [K in keyof TestServer]: TestServer[K] } = {
        url: "",
        hits: new Map(),
        written: new Map(),
        arrived: (path) => signal(arrivals, path).promise,
        clientClosed: (path) => signal(closes, path).promise
      }
      const server = http.createServer((req, res) => {
        const path = new URL(req.url ?? "/", "http://x").pathname
        state.hits.set(path, (state.hits.get(path) ?? 0) + 1)
        res.on("close", () => {
          if (!res.writableFinished) signal(closes, path).resolve()
        })
        req.resume()
        req.on("end", () => {
          signal(arrivals, path).resolve()
          const route = routes[path]
          if (route === undefined) {
            res.writeHead(404, { "content-type": "text/plain" }).end("no route")
          } else {
            route(req, res, state)
          }
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        state.url = `http://127.0.0.1:${port}`
        resume(Effect.succeed({ server, state }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ state }) => state))

/** A short wait in real time, for I/O to happen while the test holds the TestClock. */
const liveSleep = TestServices.provideLive(Effect.sleep("20 millis"))

const html = (status: number, body: string): Route => (_req, res) =>
  res.writeHead(status, { "content-type": "text/html; charset=utf-8" }).end(body)

const jsonRoute = (body: unknown, status = 200): Route => (_req, res) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))

const client: TokenClient.ClientAuthentication = {
  method: "client_secret_basic",
  clientId: "flytepropeller",
  clientSecret: Redacted.make("integration-secret")
}

const tokenAt = (url: string) =>
  TokenClient.clientCredentials({ tokenEndpoint: url, client }).pipe(
    Effect.provide(FetchHttpClient.layer)
  )

const expectAuthError = (error: unknown, reason: AuthError.AuthenticationErrorReason) => {
  expect(error).toBeInstanceOf(AuthError.AuthenticationError)
  expect((error as AuthError.AuthenticationError).reason, String(error)).toBe(reason)
  expect(String(error)).not.toContain("integration-secret")
  return error as AuthError.AuthenticationError
}

describe("TokenClient against a misbehaving server", () => {
  it.scoped("an HTML 500 page", () =>
    Effect.gen(function*() {
      const server = yield* serve({ "/token": html(500, "<!doctype html><h1>Internal Server Error</h1>") })
      const error = expectAuthError(yield* Effect.flip(tokenAt(`${server.url}/token`)), "InvalidResponse")
      expect(error.status).toBe(500)
      expect(error.message).toBe(`${server.url}/token answered HTTP 500 (text/html) without an OAuth error`)
    }))

  it.scoped("garbage with status 200", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        "/token": (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end("\u0000{oops")
      })
      expectAuthError(yield* Effect.flip(tokenAt(`${server.url}/token`)), "InvalidResponse")
    }))

  it.scoped("an RFC 6749 error with its description", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        "/token": jsonRoute({ error: "invalid_client", error_description: "unknown client" }, 401)
      })
      const error = expectAuthError(yield* Effect.flip(tokenAt(`${server.url}/token`)), "OAuthError")
      expect([error.error, error.errorDescription, error.status]).toEqual(["invalid_client", "unknown client", 401])
    }))

  it.scoped("a 503 without a body is transient", () =>
    Effect.gen(function*() {
      const server = yield* serve({ "/token": (_req, res) => res.writeHead(503).end() })
      const error = expectAuthError(yield* Effect.flip(tokenAt(`${server.url}/token`)), "InvalidResponse")
      expect(error.status).toBe(503)
      expect(Policies.isTransient(error)).toBe(true)
    }))

  it.scoped("a 10 MB body is refused after 1 MiB and the connection is closed", () =>
    Effect.gen(function*() {
      const chunk = Buffer.alloc(64 * 1024, "a")
      const server = yield* serve({
        "/token": (_req, res, state) => {
          res.writeHead(200, { "content-type": "application/json" })
          let sent = 0
          const pump = () => {
            while (sent < 10 * 1024 * 1024) {
              sent += chunk.length
              state.written.set("/token", sent)
              if (!res.write(chunk)) return void res.once("drain", pump)
            }
            res.end()
          }
          pump()
        }
      })
      const error = expectAuthError(yield* Effect.flip(tokenAt(`${server.url}/token`)), "InvalidResponse")
      expect(error.message).toBe(`The answer of ${server.url}/token is larger than 1048576 bytes`)
      yield* Effect.promise(() => server.clientClosed("/token"))
      // Socket buffers hold some more, but the server never got to send the whole 10 MB.
      expect(server.written.get("/token")!).toBeLessThan(10 * 1024 * 1024)
    }))

  it.scoped("a connection cut in the middle of the answer is a Transport error", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        "/token": (_req, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
          res.write("{\"access_token\":\"at")
          setTimeout(() => res.socket?.destroy(), 10)
        }
      })
      const error = expectAuthError(yield* Effect.flip(tokenAt(`${server.url}/token`)), "Transport")
      expect(error.message).toBe(`The answer of ${server.url}/token broke off`)
    }))

  it.scoped("a refused connection is a Transport error", () =>
    Effect.gen(function*() {
      // Take a free port, then close its server so that nothing listens there.
      const url = yield* Effect.scoped(Effect.map(serve({}), (server) => server.url))
      const error = expectAuthError(yield* Effect.flip(tokenAt(`${url}/token`)), "Transport")
      expect(error.message).toBe(`Could not reach ${url}/token: Transport error (ECONNREFUSED)`)
    }))

  it.scoped("an answer that never comes times out (TestClock) and the request is aborted", () =>
    Effect.gen(function*() {
      const server = yield* serve({ "/token": () => {} })
      const fiber = yield* Effect.fork(Effect.flip(tokenAt(`${server.url}/token`)))
      yield* Effect.promise(() => server.arrived("/token"))
      yield* TestClock.adjust(Duration.subtract(Policies.httpTimeout, Duration.millis(1)))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      const error = expectAuthError(yield* Fiber.join(fiber), "Transport")
      expect(error.message).toBe(`${server.url}/token did not answer in time (30s)`)
      yield* Effect.promise(() => server.clientClosed("/token"))
    }))

  it.scoped("an answer that never ends times out too", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        "/token": (_req, res) => {
          res.writeHead(200, { "content-type": "application/json" })
          res.write("{\"access_token\":")
        }
      })
      const fiber = yield* Effect.fork(Effect.flip(tokenAt(`${server.url}/token`)))
      yield* Effect.promise(() => server.arrived("/token"))
      // Let the headers reach the client before time moves.
      yield* liveSleep
      yield* TestClock.adjust(Policies.httpTimeout)
      expectAuthError(yield* Fiber.join(fiber), "Transport")
      yield* Effect.promise(() => server.clientClosed("/token"))
    }))
})

describe("ClientConfig stores against a misbehaving server", () => {
  const metadata = (url: string) => ({ issuer: url, token_endpoint: `${url}/token` })

  it.scoped("retries 503s and then caches the answer", () =>
    Effect.gen(function*() {
      let failures = 2
      const server: TestServer = yield* serve({
        "/.well-known/oauth-authorization-server": (req, res, state) =>
          failures-- > 0
            ? html(503, "<h1>Service Unavailable</h1>")(req, res, state)
            : jsonRoute(metadata(state.url))(req, res, state),
        "/config/v1/flyte_client": jsonRoute({ client_id: "flytectl", authorization_metadata_key: "" })
      })
      const store = yield* ClientConfig.makeFlyteHttp(server.url).pipe(Effect.provide(FetchHttpClient.layer))
      const fiber = yield* Effect.fork(store.get)
      // Each retry waits on TestClock; move time until the fiber is done (with real time for the I/O in between).
      while (Option.isNone(yield* Fiber.poll(fiber))) {
        yield* TestClock.adjust("1 second")
        yield* liveSleep
      }
      const config = yield* Fiber.join(fiber)
      expect(config.tokenEndpoint).toBe(`${server.url}/token`)
      expect(config.headerKey).toBe("authorization")
      yield* store.get
      expect(server.hits.get("/.well-known/oauth-authorization-server")).toBe(3)
      expect(server.hits.get("/config/v1/flyte_client")).toBe(1)
    }))

  it.scoped("an HTML discovery document is an InvalidResponse naming the URL, and is not cached", () =>
    Effect.gen(function*() {
      let healthy = false
      const server = yield* serve({
        "/realm/.well-known/openid-configuration": (req, res, state) =>
          healthy
            ? jsonRoute(metadata(`${state.url}/realm`))(req, res, state)
            : html(200, "<html>login page</html>")(req, res, state)
      })
      const store = yield* ClientConfig.makeOidcDiscovery(`${server.url}/realm`, { clientId: "c" }).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
      const error = expectAuthError(yield* Effect.flip(store.get), "InvalidResponse")
      expect(error.message).toBe(
        `${server.url}/realm/.well-known/openid-configuration answered HTTP 200 with a body that is not JSON (text/html)`
      )
      healthy = true
      expect((yield* store.get).tokenEndpoint).toBe(`${server.url}/realm/token`)
    }))

  it.scoped("a slow metadata endpoint times out and is retried", () =>
    Effect.gen(function*() {
      const first = yield* Deferred.make<void>()
      let calls = 0
      const server = yield* serve({
        "/.well-known/oauth-authorization-server": (req, res, state) => {
          if (calls++ === 0) return Deferred.unsafeDone(first, Effect.void)
          jsonRoute(metadata(state.url))(req, res, state)
        },
        "/config/v1/flyte_client": jsonRoute({ client_id: "flytectl" })
      })
      const store = yield* ClientConfig.makeFlyteHttp(server.url).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
      const fiber = yield* Effect.fork(store.get)
      yield* Deferred.await(first)
      yield* TestClock.adjust(Policies.httpTimeout)
      while (Option.isNone(yield* Fiber.poll(fiber))) {
        yield* TestClock.adjust("1 second")
        yield* liveSleep
      }
      expect((yield* Fiber.join(fiber)).clientId).toBe("flytectl")
      expect(server.hits.get("/.well-known/oauth-authorization-server")).toBe(2)
    }))
})
