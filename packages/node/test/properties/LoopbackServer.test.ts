/**
 * Properties of the loopback callback, on one real `NodeLoopbackServer` listener shared by every case: for
 * arbitrary paths, methods, query parameters and headers, a PKCE login
 * - completes only when the request is a GET on the redirect path whose `state` is this attempt's and whose `code`
 *   is the one the identity provider issued;
 * - sends a code to the token endpoint only when path, method and state are right (and no `error` came back);
 * - ends with a typed error otherwise, or keeps waiting (404 / 405) for a request that is not the callback;
 * and the server survives all of it: after every case (and after raw malformed requests) a right callback still
 * completes a login.
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { AuthError, Browser, ClientConfig, LoopbackServer, Pkce } from "@flyte-auth/core"
import { NodeLoopbackServer } from "@flyte-auth/node"
import { Cause, Deferred, Effect, Exit, FastCheck as fc, Fiber, Layer, Logger, LogLevel, Option, Runtime } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"

interface Probe {
  readonly method: string
  readonly path: string
  readonly state: { readonly kind: "right" | "absent" } | { readonly kind: "wrong"; readonly value: string }
  readonly code: { readonly kind: "issued" | "absent" } | { readonly kind: "other"; readonly value: string }
  readonly error: string | undefined
  readonly extra: ReadonlyArray<readonly [string, string]>
  readonly headers: Readonly<Record<string, string>>
}

const trickyPaths = [
  "/callback",
  "/callback/",
  "/callback//",
  "/callback/.",
  "/x/../callback",
  "/Callback",
  "/CALLBACK",
  "/callbackx",
  "/callback/x",
  "/%63allback",
  "/callback%2F",
  "/callback;x",
  "//callback",
  "/",
  "/favicon.ico",
  "/.well-known/x",
  "*"
]

/** Header names that would change how the request is framed or routed by Node itself. */
const framing = new Set(["content-length", "transfer-encoding", "host", "connection", "expect", "upgrade", "te"])

const probe: fc.Arbitrary<Probe> = fc.record({
  method: fc.oneof(
    { weight: 4, arbitrary: fc.constant("GET") },
    { weight: 2, arbitrary: fc.constantFrom("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE") }
  ),
  path: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom("/callback", "/callback/") },
    { weight: 3, arbitrary: fc.constantFrom(...trickyPaths) },
    { weight: 1, arbitrary: fc.webPath() }
  ),
  state: fc.oneof(
    { weight: 4, arbitrary: fc.constant({ kind: "right" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "absent" as const }) },
    { weight: 2, arbitrary: fc.fullUnicodeString().map((value) => ({ kind: "wrong" as const, value })) }
  ),
  code: fc.oneof(
    { weight: 2, arbitrary: fc.constant({ kind: "issued" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "absent" as const }) },
    { weight: 1, arbitrary: fc.fullUnicodeString().map((value) => ({ kind: "other" as const, value })) }
  ),
  error: fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.oneof(fc.constantFrom("access_denied", "server_error"), fc.string()) }
  ),
  extra: fc.array(fc.tuple(fc.fullUnicodeString({ maxLength: 10 }), fc.fullUnicodeString({ maxLength: 20 })), {
    maxLength: 4
  }),
  headers: fc.dictionary(
    fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((name) => !framing.has(name)),
    fc.stringMatching(/^[\x20-\x7e]{0,100}$/).map((value) => value.trim()),
    { maxKeys: 5 }
  )
})

interface Answer {
  readonly status: number
  readonly body: string
}

const request = (port: number, method: string, target: string, headers: Readonly<Record<string, string>>) =>
  Effect.async<Answer, Error>((resume) => {
    const req = Http.request(
      { host: "127.0.0.1", port, method, path: target, headers, agent: false },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => body += chunk)
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body })))
        res.on("error", (error) => resume(Effect.fail(error)))
      }
    )
    req.on("error", (error) => resume(Effect.fail(error)))
    req.end()
    return Effect.sync(() => req.destroy())
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`no answer to ${method} ${target}`) }))

/** Raw bytes to the server; resolves with what came back before the server closed the connection. */
const raw = (port: number, bytes: string) =>
  Effect.async<string>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    let answer = ""
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => answer += chunk)
    socket.on("close", () => resume(Effect.succeed(answer)))
    socket.on("error", () => {})
    socket.write(bytes, "latin1")
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("5 seconds"), Effect.orDie)

/**
 * The path the server routes: the URL's pathname without trailing slashes (as a browser would resolve it);
 * `undefined` for a target that is no URL at all (`//?x`: an empty authority).
 */
const routedPath = (target: string) => {
  try {
    return new URL(target, "http://127.0.0.1").pathname.replace(/\/+$/, "") || "/"
  } catch {
    return undefined
  }
}

describe("loopback callback properties (one real NodeLoopbackServer)", () => {
  it.scopedLive(
    "for arbitrary requests, only the right callback completes a login, and the server survives",
    () =>
      Effect.gen(function*() {
        const listener = yield* NodeLoopbackServer.make.listen("http://127.0.0.1:0/callback")
        const port = Number(new URL(listener.redirectUri).port)
        // Every login attempt gets the same, already bound, listener.
        const shared = Layer.succeed(LoopbackServer.LoopbackServer, { listen: () => Effect.succeed(listener) })
        const config = new ClientConfig.ClientConfig({
          tokenEndpoint: "https://idp.example/oauth2/token",
          authorizationEndpoint: "https://idp.example/oauth2/authorize",
          clientId: "flytectl",
          redirectUri: listener.redirectUri
        })
        let attempt = 0
        const stats = { completed: 0, waited: 0, refused: 0, exchanged: 0 }

        /** Starts a login; answers its state, the code the IdP will accept, the codes exchanged and the fiber. */
        const startLogin = Effect.gen(function*() {
          const issued = `issued-code-${attempt++}`
          const exchanged: Array<string> = []
          const opened = yield* Deferred.make<string>()
          const idp = HttpClient.make((req) =>
            Effect.sync(() => {
              const body = req.body._tag === "Uint8Array" ? new TextDecoder().decode(req.body.body) : ""
              const code = new URLSearchParams(body).get("code") ?? ""
              exchanged.push(code)
              return HttpClientResponse.fromWeb(
                req,
                code === issued
                  ? Response.json({ access_token: `token-for-${issued}`, token_type: "Bearer", expires_in: 60 })
                  : Response.json({ error: "invalid_grant" }, { status: 400 })
              )
            })
          )
          const fiber = yield* Pkce.authenticate({ endpoint: "flyte.example", config, timeout: "20 seconds" }).pipe(
            Effect.provide(Layer.mergeAll(
              shared,
              Layer.succeed(Browser.Browser, { open: (url) => Effect.asVoid(Deferred.succeed(opened, url)) }),
              Layer.succeed(HttpClient.HttpClient, idp)
            )),
            Logger.withMinimumLogLevel(LogLevel.None),
            Effect.fork
          )
          const state = new URL(yield* Deferred.await(opened)).searchParams.get("state")!
          return { issued, exchanged, fiber, state }
        })

        const rightCallback = (login: { readonly state: string; readonly issued: string }) =>
          `/callback?${new URLSearchParams({ code: login.issued, state: login.state })}`

        const check = (p: Probe) =>
          Effect.gen(function*() {
            const login = yield* startLogin
            const query = new URLSearchParams()
            for (const [key, value] of p.extra) {
              if (!["code", "state", "error"].includes(key)) query.append(key, value)
            }
            if (p.state.kind === "right") query.append("state", login.state)
            if (p.state.kind === "wrong") query.append("state", p.state.value)
            if (p.code.kind === "issued") query.append("code", login.issued)
            if (p.code.kind === "other") query.append("code", p.code.value)
            if (p.error !== undefined) query.append("error", p.error)
            const target = p.path === "*" ? "*" : `${p.path}?${query}`

            const answer = yield* request(port, p.method, target, p.headers)

            const routed = p.path !== "*" && routedPath(target) === "/callback"
            if (!routed || p.method !== "GET") {
              // not the callback: answered at once, the login keeps waiting, nothing was exchanged
              expect([400, 404, 405]).toContain(answer.status)
              expect(Option.isNone(yield* Fiber.poll(login.fiber))).toBe(true)
              expect(login.exchanged).toEqual([])
              // the server still takes the right callback
              const final = yield* request(port, "GET", rightCallback(login), {})
              expect(final.status).toBe(200)
              const credentials = yield* Fiber.join(login.fiber)
              expect(login.exchanged).toEqual([login.issued])
              expect(credentials.accessToken).toBeDefined()
              stats.waited++
              return
            }

            const exit = yield* Fiber.await(login.fiber)
            const stateRight = p.state.kind === "right" ||
              (p.state.kind === "wrong" && p.state.value === login.state)
            const codeSent = stateRight && p.error === undefined && p.code.kind !== "absent"
            const codeRight = p.code.kind === "issued" || (p.code.kind === "other" && p.code.value === login.issued)
            // a code reaches the token endpoint only from a GET on the redirect path with this attempt's state
            expect(login.exchanged).toHaveLength(codeSent ? 1 : 0)
            if (codeSent && codeRight) {
              expect(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toBe(true)
              expect(answer.status).toBe(200)
              stats.completed++
              return
            }
            expect(Exit.isFailure(exit)).toBe(true)
            const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
            expect(Option.isSome(error), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toBe(true)
            const failure = Option.getOrThrow(error)
            expect(failure).toBeInstanceOf(AuthError.AuthenticationError)
            expect(["StateMismatch", "CallbackError", "InvalidResponse", "OAuthError"]).toContain(failure.reason)
            expect([400, 502]).toContain(answer.status)
            expect(answer.body).not.toContain(login.issued)
            if (codeSent) stats.exchanged++
            stats.refused++
          })

        const runtime = yield* Effect.runtime<never>()
        yield* Effect.promise(() =>
          fc.assert(fc.asyncProperty(probe, (p) => Runtime.runPromise(runtime, check(p))), { numRuns: 200 })
        )
        // every branch was exercised
        expect(stats.completed).toBeGreaterThan(4)
        expect(stats.waited).toBeGreaterThan(20)
        expect(stats.refused).toBeGreaterThan(20)

        // Malformed requests at the socket level: the server answers or drops them, and keeps working.
        const malformed = [
          "GARBAGE\r\n\r\n",
          // an empty authority: `new URL` throws on it (this used to crash the process)
          "GET //?state=x&code=y HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
          "GET /callback?state=x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + "a".repeat(70_000) + "\r\n\r\n",
          "GET /callback?code=c\u0000&state=s HTTP/1.1\r\nHost: x\r\n\r\n",
          "GET /callback HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
          "GET /callback HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
          "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003" // a TLS ClientHello
        ]
        for (const bytes of malformed) {
          const login = yield* startLogin
          const reply = yield* raw(port, bytes)
          if (reply !== "") expect(reply).toMatch(/^HTTP\/1\.1 (400|404|405|431|503)/)
          // Headers that parse are a request: a GET on the redirect path without state ends the attempt, typed.
          const ended = yield* Fiber.await(login.fiber).pipe(Effect.timeout("200 millis"), Effect.option)
          if (Option.isSome(ended)) {
            expect(Exit.isFailure(ended.value) && Cause.failureOption(ended.value.cause)).toMatchObject({
              value: { reason: "StateMismatch" }
            })
            expect(login.exchanged).toEqual([])
            continue
          }
          expect((yield* request(port, "GET", rightCallback(login), {})).status).toBe(200)
          yield* Fiber.join(login.fiber)
          expect(login.exchanged).toEqual([login.issued])
        }
      }),
    { timeout: 60_000 }
  )
})
