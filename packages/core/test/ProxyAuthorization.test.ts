import { HttpClient, HttpClientRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import {
  AuthError,
  ClientConfig,
  CommandRunner,
  Credentials,
  DeviceCode,
  DevicePrompt,
  ProxyAuthorization,
  TokenClient,
  TokenSource
} from "@flyte-auth/core"
import { Chunk, Context, Duration, Effect, Fiber, Layer, Redacted, Stream, TestClock } from "effect"
import { json, makeMockHttp, type RecordedRequest, tokenJson } from "./helpers/mockHttp.js"

const config = new ClientConfig.ClientConfig({
  tokenEndpoint: "https://idp.example/oauth2/token",
  deviceAuthorizationEndpoint: "https://idp.example/oauth2/device",
  clientId: "flytectl"
})

/** A proxy command that prints `outputs[i]` on its i-th run (the last one repeats). */
const proxyCommand = (outputs: ReadonlyArray<string>) => {
  let runs = 0
  const layer = CommandRunner.layerTest(() =>
    Effect.sync(() => ({ exitCode: 0, stdout: outputs[Math.min(runs++, outputs.length - 1)], stderr: "" }))
  )
  return { layer, runs: () => runs }
}

/** The wrapped `HttpClient` (proxy command → header) over a scripted server. */
const setup = (
  outputs: ReadonlyArray<string>,
  answer: (request: RecordedRequest, index: number) => Response
) =>
  Effect.gen(function*() {
    const server = yield* makeMockHttp(answer)
    const command = proxyCommand(outputs)
    const layer = ProxyAuthorization.layerCommand({ command: ["proxy-token"] }).pipe(
      Layer.provide([Layer.succeed(HttpClient.HttpClient, server.client), command.layer])
    )
    // Built in the test's scope: the command's runs belong to it.
    const client = Context.get(yield* Layer.build(layer), HttpClient.HttpClient)
    return { server, command, layer, client }
  })

const refresh = TokenClient.refresh({
  tokenEndpoint: config.tokenEndpoint,
  client: { method: "none", clientId: "flytectl" },
  refreshToken: Redacted.make("rt-1")
})

const proxyHeaders = (requests: ReadonlyArray<RecordedRequest>) => requests.map((r) => r.headers["proxy-authorization"])

describe("ProxyAuthorization", () => {
  it.scoped("adds proxy-authorization to every request of a device flow, running the command once", () =>
    Effect.gen(function*() {
      let polls = 0
      const { command, layer, server } = yield* setup(["proxy-1\n"], (request) => {
        if (request.path === "/oauth2/device") {
          return json({
            device_code: "dc",
            user_code: "UC",
            verification_uri: "https://idp.example/device",
            expires_in: 600
          })
        }
        return polls++ < 2 ? json({ error: "authorization_pending" }, 400) : tokenJson("at-1")
      })
      const fiber = yield* DeviceCode.authenticate({ endpoint: "flyte.example:443", config }).pipe(
        Effect.provide([layer, DevicePrompt.layerLog]),
        Effect.fork
      )
      yield* TestClock.adjust(Duration.minutes(1))
      const credentials = yield* Fiber.join(fiber)
      expect(Redacted.value(credentials.accessToken)).toBe("at-1")

      const requests = yield* server.requests
      expect(requests.map((r) => r.path)).toEqual([
        "/oauth2/device",
        "/oauth2/token",
        "/oauth2/token",
        "/oauth2/token"
      ])
      expect(proxyHeaders(requests)).toEqual(Array(4).fill("Bearer proxy-1"))
      expect(command.runs()).toBe(1)
    }))

  it.scoped("adds proxy-authorization to a refresh and keeps the bearer authorization apart", () =>
    Effect.gen(function*() {
      const { command, layer, server } = yield* setup(["{\"access_token\":\"proxy-1\"}"], () => tokenJson("at-2"))
      const credentials = yield* refresh.pipe(Effect.provide(layer))
      expect(Redacted.value(credentials.accessToken)).toBe("at-2")
      const [request] = yield* server.requests
      expect(request.headers["proxy-authorization"]).toBe("Bearer proxy-1")
      expect(request.form.get("grant_type")).toBe("refresh_token")
      expect(command.runs()).toBe(1)
    }))

  it.scoped("re-runs the command once when the proxy answers 407, then keeps the new token", () =>
    Effect.gen(function*() {
      const { client, command, server } = yield* setup(
        ["proxy-1", "proxy-2"],
        (request) =>
          request.headers["proxy-authorization"] === "Bearer proxy-2"
            ? tokenJson("at-3")
            : new Response("proxy authentication required", { status: 407 })
      )
      const withClient = Effect.provideService(HttpClient.HttpClient, client)
      const first = yield* refresh.pipe(withClient)
      expect(Redacted.value(first.accessToken)).toBe("at-3")
      expect(proxyHeaders(yield* server.requests)).toEqual(["Bearer proxy-1", "Bearer proxy-2"])
      expect(command.runs()).toBe(2)

      yield* refresh.pipe(withClient)
      expect(proxyHeaders(yield* server.requests)).toEqual(["Bearer proxy-1", "Bearer proxy-2", "Bearer proxy-2"])
      expect(command.runs()).toBe(2)
    }))

  it.scoped("returns a second 407 to the caller instead of looping", () =>
    Effect.gen(function*() {
      const { command, layer, server } = yield* setup(
        ["proxy-1", "proxy-2", "proxy-3"],
        () => new Response("no", { status: 407 })
      )
      const error = yield* refresh.pipe(Effect.provide(layer), Effect.flip)
      expect(error._tag).toBe("AuthenticationError")
      if (error._tag === "AuthenticationError") expect(error.status).toBe(407)
      expect(proxyHeaders(yield* server.requests)).toEqual(["Bearer proxy-1", "Bearer proxy-2"])
      expect(command.runs()).toBe(2)
    }))

  it.scoped("does not resend a streamed body after a 407", () =>
    Effect.gen(function*() {
      const { client, command, server } = yield* setup(["proxy-1"], () => new Response("no", { status: 407 }))
      const response = yield* client.execute(
        HttpClientRequest.post("https://idp.example/upload").pipe(
          HttpClientRequest.bodyStream(Stream.fromChunk(Chunk.of(new TextEncoder().encode("data"))))
        )
      )
      expect(response.status).toBe(407)
      expect(yield* server.requests).toHaveLength(1)
      expect(command.runs()).toBe(1)
    }))

  it.scoped("runs the command once for concurrent requests", () =>
    Effect.gen(function*() {
      const { command, layer, server } = yield* setup(["proxy-1"], () => tokenJson())
      yield* Effect.all(Array.from({ length: 5 }, () => refresh), { concurrency: "unbounded" }).pipe(
        Effect.provide(layer)
      )
      expect(proxyHeaders(yield* server.requests)).toEqual(Array(5).fill("Bearer proxy-1"))
      expect(command.runs()).toBe(1)
    }))

  it.scoped("obtains a new token when the command's token nears its expiry", () =>
    Effect.gen(function*() {
      const { client, command, server } = yield* setup(
        ["{\"access_token\":\"proxy-1\",\"expires_in\":300}", "{\"access_token\":\"proxy-2\",\"expires_in\":300}"],
        () => tokenJson()
      )
      const withClient = Effect.provideService(HttpClient.HttpClient, client)
      yield* refresh.pipe(withClient)
      yield* TestClock.adjust(Duration.minutes(2))
      yield* refresh.pipe(withClient)
      yield* TestClock.adjust(Duration.minutes(3))
      yield* refresh.pipe(withClient)
      expect(proxyHeaders(yield* server.requests)).toEqual(["Bearer proxy-1", "Bearer proxy-1", "Bearer proxy-2"])
      expect(command.runs()).toBe(2)
    }))

  it.scoped("fails with the command's error, sending nothing, when the command fails", () =>
    Effect.gen(function*() {
      const server = yield* makeMockHttp(() => tokenJson())
      const layer = ProxyAuthorization.layerCommand({ command: ["proxy-token"] }).pipe(
        Layer.provide([
          Layer.succeed(HttpClient.HttpClient, server.client),
          CommandRunner.layerTest(() => Effect.succeed({ exitCode: 1, stdout: "STDOUT-SECRET", stderr: "expired" }))
        ])
      )
      const error = yield* refresh.pipe(Effect.provide(layer), Effect.flip)
      expect(error._tag).toBe("AuthenticationError")
      if (error._tag !== "AuthenticationError") return
      expect(error.reason).toBe("CommandFailed")
      expect(error.message).toContain("proxy authorization token")
      expect(error.message).toContain("exited with code 1")
      expect(error.message).not.toContain("STDOUT-SECRET")
      expect(yield* server.requests).toHaveLength(0)
    }))

  it.scoped("withProxyAuthorization takes any token source", () =>
    Effect.gen(function*() {
      const server = yield* makeMockHttp(() => tokenJson())
      const source = yield* TokenSource.reuse(
        Effect.succeed(new Credentials.Credentials({ accessToken: Redacted.make("static-token"), endpoint: "proxy" }))
      )
      const client = ProxyAuthorization.withProxyAuthorization(server.client, source)
      yield* refresh.pipe(Effect.provideService(HttpClient.HttpClient, client))
      expect(proxyHeaders(yield* server.requests)).toEqual(["Bearer static-token"])

      const failing = server.client.pipe(
        ProxyAuthorization.withProxyAuthorization(
          yield* TokenSource.reuse(
            Effect.fail(new AuthError.AuthenticationError({ reason: "Config", description: "no proxy token" }))
          )
        )
      )
      const error = yield* failing.get("https://idp.example/x").pipe(Effect.flip)
      expect(error._tag).toBe("RequestError")
      expect(error.message).toContain("no proxy token")
    }))
})
