import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Browser, ClientConfig, LoopbackServer, Pkce } from "@flyte-auth/core"
import { NodeLoopbackServer } from "@flyte-auth/node"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, Scope } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"

const server = NodeLoopbackServer.make

/** A plain node:http server on `host:port`; resolves its port, fails with the bind error code. */
const occupy = (host: string, port: number) =>
  Effect.acquireRelease(
    Effect.async<Http.Server, string>((resume) => {
      const s = Http.createServer((_, res) => res.end("someone else"))
      s.once("error", (error: NodeJS.ErrnoException) => resume(Effect.fail(error.code ?? "error")))
      s.listen(port, host, () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.close(() => resume(Effect.void))
        s.closeAllConnections()
      })
  ).pipe(Effect.map((s) => (s.address() as Net.AddressInfo).port))

/** Whether `port` can be bound on 127.0.0.1 right now (binds and releases it). */
const canBind = (port: number, host = "127.0.0.1") => Effect.scoped(occupy(host, port)).pipe(Effect.isSuccess)

/** A port that was free a moment ago. */
const freePort = Effect.scoped(occupy("127.0.0.1", 0))

const get = (url: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, { ...init, redirect: "manual" })
    return { status: response.status, body: await response.text() }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
  if (Option.isNone(error)) throw new Error(`expected a typed failure, got ${String(exit)}`)
  return error.value
}

describe("NodeLoopbackServer", () => {
  it.scopedLive("hands GETs on the redirect path to the flow; stray paths get 404 and the server keeps waiting", () =>
    Effect.gen(function*() {
      const listener = yield* server.listen("http://127.0.0.1:0/callback")
      const port = Number(new URL(listener.redirectUri).port)
      expect(port).toBeGreaterThan(0)
      expect(listener.redirectUri).toBe(`http://127.0.0.1:${port}/callback`)

      expect((yield* get(`http://127.0.0.1:${port}/favicon.ico`)).status).toBe(404)
      expect((yield* get(`http://127.0.0.1:${port}/callbackx?code=x`)).status).toBe(404)
      expect((yield* get(`http://127.0.0.1:${port}/callback?code=x`, { method: "POST" })).status).toBe(405)

      const browser = yield* Effect.fork(get(`${listener.redirectUri}?code=secret-code&state=s1&iss=http%3A%2F%2Fidp`))
      const callback = yield* listener.next
      expect(callback.state).toBe("s1")
      expect(Redacted.value(callback.code!)).toBe("secret-code")
      expect(String(callback.code)).not.toContain("secret-code")
      expect(callback.params).toEqual({ state: "s1", iss: "http://idp" })
      yield* callback.respond({ status: 200, html: "<p>done</p>" })
      yield* callback.respond({ status: 500, html: "ignored" })
      expect(yield* Fiber.join(browser)).toEqual({ status: 200, body: "<p>done</p>" })
    }))

  it.scopedLive("accepts a trailing-slash difference in the path, both ways", () =>
    Effect.gen(function*() {
      const a = yield* server.listen("http://127.0.0.1:0/callback")
      const slash = yield* Effect.fork(get(`${a.redirectUri}/?state=1`))
      const first = yield* a.next
      expect(first.state).toBe("1")
      yield* first.respond({ status: 200, html: "ok" })
      expect((yield* Fiber.join(slash)).status).toBe(200)

      const b = yield* server.listen("http://127.0.0.1:0/callback/")
      const noSlash = yield* Effect.fork(get(`${b.redirectUri.replace(/\/$/, "")}?state=2`))
      const second = yield* b.next
      expect(second.state).toBe("2")
      yield* second.respond({ status: 200, html: "ok" })
      expect((yield* Fiber.join(noSlash)).status).toBe(200)
    }))

  it.scopedLive("reports a busy port as PortInUse naming the port and the redirect URI", () =>
    Effect.gen(function*() {
      const port = yield* occupy("127.0.0.1", 0)
      for (const host of ["127.0.0.1", "localhost"]) {
        const redirectUri = `http://${host}:${port}/callback`
        const error = failureOf(yield* Effect.exit(Effect.scoped(server.listen(redirectUri))))
        expect(error._tag).toBe("AuthenticationError")
        expect(error.reason).toBe("PortInUse")
        expect(error.message).toContain(String(port))
        expect(error.message).toContain(redirectUri)
        expect(error.message).toContain("already in use")
      }
      // The other server was not disturbed.
      expect((yield* get(`http://127.0.0.1:${port}/`)).body).toBe("someone else")
    }))

  it.scopedLive("localhost listens on 127.0.0.1 and [::1] on the same port; a busy [::1] is reported too", () =>
    Effect.gen(function*() {
      const listener = yield* server.listen("http://localhost:0/cb")
      const port = new URL(listener.redirectUri).port
      expect(listener.redirectUri).toBe(`http://localhost:${port}/cb`)
      for (const host of ["127.0.0.1", "[::1]"]) {
        const browser = yield* Effect.fork(get(`http://${host}:${port}/cb?state=${host}`))
        const callback = yield* listener.next
        expect(callback.state).toBe(host)
        yield* callback.respond({ status: 200, html: host })
        expect((yield* Fiber.join(browser)).body).toBe(host)
      }

      const v6 = yield* occupy("::1", 0)
      const error = failureOf(yield* Effect.exit(Effect.scoped(server.listen(`http://localhost:${v6}/cb`))))
      expect(error.reason).toBe("PortInUse")
      expect(error.message).toContain("::1")
      // Nothing is left bound on 127.0.0.1 after the failed attempt.
      expect(yield* canBind(v6)).toBe(true)
    }))

  it.effect("binds only loopback redirect URIs", () =>
    Effect.gen(function*() {
      for (const uri of ["http://0.0.0.0:0/cb", "http://example.com:0/cb", "http://192.168.1.2:0/cb", "nonsense"]) {
        const error = failureOf(yield* Effect.exit(Effect.scoped(server.listen(uri))))
        expect(error.reason).toBe("Config")
        expect(error.message).toContain(uri)
      }
    }))

  it.live("frees the port when the scope closes, even with open connections, and answers pending callbacks", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const redirectUri = `http://127.0.0.1:${port}/callback`
      const scope = yield* Scope.make()
      const listener = yield* server.listen(redirectUri).pipe(Scope.extend(scope))
      // A browser's idle pre-connection and a callback the flow never answered.
      const idle = Net.connect(port, "127.0.0.1")
      const idleClosed = yield* Deferred.make<void>()
      idle.on("close", () => Deferred.unsafeDone(idleClosed, Exit.void))
      yield* Effect.async<void>((resume) => void idle.once("connect", () => resume(Effect.void)))
      const pending = yield* Effect.fork(get(`${redirectUri}?code=c&state=s`))
      yield* listener.next

      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      // Not held up by the idle connection: the grace period is only for answers still being sent.
      expect(Date.now() - started).toBeLessThan(800)
      expect(yield* canBind(port)).toBe(true)
      expect(yield* Fiber.join(pending)).toEqual({ status: 503, body: LoopbackServer.endedPage.html })
      yield* Deferred.await(idleClosed).pipe(Effect.timeout("2 seconds"))
    }))

  describe("with Pkce.authenticate", () => {
    const config = (redirectUri: string) =>
      new ClientConfig.ClientConfig({
        tokenEndpoint: "http://127.0.0.1:9/token",
        authorizationEndpoint: "http://127.0.0.1:9/authorize",
        clientId: "flytectl",
        redirectUri
      })
    const layers = (opened: Deferred.Deferred<string>) =>
      Layer.mergeAll(
        NodeLoopbackServer.layer,
        Layer.succeed(Browser.Browser, { open: (url) => Deferred.succeed(opened, url) }),
        Layer.succeed(HttpClient.HttpClient, HttpClient.make(() => Effect.die("no token request expected")))
      )

    it.live("frees the port after a timeout", () =>
      Effect.gen(function*() {
        const port = yield* freePort
        const opened = yield* Deferred.make<string>()
        const exit = yield* Pkce.authenticate({
          endpoint: "e",
          config: config(`http://localhost:${port}/callback`),
          timeout: "300 millis"
        }).pipe(Effect.provide(layers(opened)), Effect.exit)
        expect(failureOf(exit).reason).toBe("Timeout")
        expect(yield* canBind(port)).toBe(true)
        expect(yield* canBind(port, "::1")).toBe(true)
      }))

    it.live("frees the port after an interruption, and after a rejected callback", () =>
      Effect.gen(function*() {
        const port = yield* freePort
        const redirectUri = `http://127.0.0.1:${port}/callback`
        const opened = yield* Deferred.make<string>()
        const fiber = yield* Pkce.authenticate({ endpoint: "e", config: config(redirectUri) }).pipe(
          Effect.provide(layers(opened)),
          Effect.fork
        )
        yield* Deferred.await(opened)
        expect(yield* canBind(port)).toBe(false)
        yield* Fiber.interrupt(fiber)
        expect(yield* canBind(port)).toBe(true)

        const again = yield* Pkce.authenticate({ endpoint: "e", config: config(redirectUri) }).pipe(
          Effect.provide(layers(opened)),
          Effect.fork
        )
        let page = { status: 0, body: "" }
        while (page.status === 0) {
          // Retry until the listener is up (the first attempt's URL is already in `opened`).
          page = yield* get(`${redirectUri}?code=c&state=forged`).pipe(
            Effect.catchAllDefect(() => Effect.succeed({ status: 0, body: "" })),
            Effect.zipLeft(Effect.sleep("20 millis"))
          )
        }
        expect(page.status).toBe(400)
        expect(page.body).toContain("Login failed")
        expect(failureOf(yield* Fiber.await(again)).reason).toBe("StateMismatch")
        expect(yield* canBind(port)).toBe(true)
      }))
  })
})
