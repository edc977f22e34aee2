import { Headers, HttpBody, HttpClient, HttpClientError, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Authenticator, AuthHttpClient, ClientConfig, Credentials, Keyring, Policies } from "@flyte-auth/core"
import { DateTime, Effect, FiberRef, Layer, Redacted, Ref, Stream } from "effect"

const endpoint = "flyte.example.com:443"
const api = "https://flyte.example.com/api/v1/projects"

const config = new ClientConfig.ClientConfig({
  tokenEndpoint: "https://idp.example.com/token",
  clientId: "flytectl",
  headerKey: "flyte-authorization"
})

const stored = (accessToken: string) =>
  new Credentials.Credentials({
    accessToken: Redacted.make(accessToken),
    refreshToken: Redacted.make("refresh-1"),
    obtainedAt: DateTime.unsafeMake(0),
    expiresAt: DateTime.unsafeMake(3_600_000),
    endpoint
  })

interface Seen {
  readonly method: string
  readonly headers: Headers.Headers
  readonly redactedNames: ReadonlyArray<string | RegExp>
}

/** A recording `HttpClient` answered by `answer(request, index)`. */
const recordingClient = (
  answer: (seen: Seen, index: number) => Response | Effect.Effect<never, HttpClientError.HttpClientError>
) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<Seen>>([])
    const client = HttpClient.make((request) =>
      Effect.gen(function*() {
        const redactedNames = yield* FiberRef.get(Headers.currentRedactedNames)
        const entry: Seen = { method: request.method, headers: request.headers, redactedNames }
        const index = yield* Ref.modify(seen, (all) => [all.length, [...all, entry]])
        const response = answer(entry, index)
        return HttpClientResponse.fromWeb(request, response instanceof Response ? response : yield* response)
      })
    )
    return { client, seen: Ref.get(seen), count: Effect.map(Ref.get(seen), (all) => all.length) }
  })

/**
 * An `Authenticator` over a memory keyring holding `initialToken`, whose token endpoint answers `refreshed-<n>`,
 * and an authenticated client in front of `api` (a function of the bearer token it received).
 */
const setup = (options: {
  readonly initialToken: string
  readonly api: (
    token: string | undefined,
    index: number
  ) => Response | Effect.Effect<never, HttpClientError.HttpClientError>
}) =>
  Effect.gen(function*() {
    const keyring = yield* Keyring.makeMemory
    yield* Effect.orDie(
      Effect.flatMap(
        Credentials.encodeKeyringEntry(stored(options.initialToken)),
        (entry) => keyring.set(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined), entry)
      )
    )
    const idp = yield* recordingClient((_, index) =>
      new Response(JSON.stringify({ access_token: `refreshed-${index}`, token_type: "Bearer", expires_in: 3600 }), {
        headers: { "content-type": "application/json" }
      })
    )
    const logins = yield* Ref.make(0)
    const auth = yield* Authenticator.make({
      endpoint,
      interactive: true,
      login: Effect.zipRight(Ref.update(logins, (n) => n + 1), Effect.succeed(stored("login")))
    }).pipe(
      Effect.provide(Layer.mergeAll(
        Layer.succeed(Keyring.Keyring, keyring),
        ClientConfig.layerStatic(config),
        Layer.succeed(HttpClient.HttpClient, idp.client)
      ))
    )
    const server = yield* recordingClient((seen, index) =>
      options.api(seen.headers["flyte-authorization"]?.replace(/^Bearer /, ""), index)
    )
    const client = yield* AuthHttpClient.make(server.client).pipe(
      Effect.provideService(Authenticator.Authenticator, auth)
    )
    return { auth, client, server, refreshes: idp.count, logins: Ref.get(logins) }
  })

const ok = () => new Response("{}", { status: 200 })
const status = (code: number) => () => new Response("no", { status: code })
const acceptOnly = (valid: (token: string | undefined) => boolean) => (token: string | undefined) =>
  valid(token) ? ok() : new Response("unauthorized", { status: 401 })

describe("AuthHttpClient", () => {
  it.scoped("adds the authenticator's header to every request, keeping the others", () =>
    Effect.gen(function*() {
      const { client, refreshes, server } = yield* setup({ initialToken: "token-1", api: ok })
      const response = yield* client.execute(
        HttpClientRequest.get(api).pipe(HttpClientRequest.setHeader("x-request-id", "abc"))
      )
      yield* client.get(api)
      expect(response.status).toBe(200)
      const [first, second] = yield* server.seen
      expect(first.headers["flyte-authorization"]).toBe("Bearer token-1")
      expect(first.headers["x-request-id"]).toBe("abc")
      expect(second.headers["flyte-authorization"]).toBe("Bearer token-1")
      // The custom header name is redacted in spans and logs while the request runs.
      expect(first.redactedNames).toContain("flyte-authorization")
      expect(yield* refreshes).toBe(0)
    }))

  it.scoped("on 401: invalidates the sent token, refreshes once and resends once", () =>
    Effect.gen(function*() {
      const { client, refreshes, server } = yield* setup({
        initialToken: "revoked",
        api: acceptOnly((token) => token === "refreshed-0")
      })
      const response = yield* client.post(api, { body: HttpBody.text("{\"name\":\"p\"}", "application/json") })
      expect(response.status).toBe(200)
      expect(yield* refreshes).toBe(1)
      const seen = yield* server.seen
      expect(seen.map((s) => s.headers["flyte-authorization"])).toEqual(["Bearer revoked", "Bearer refreshed-0"])
      expect(seen.map((s) => s.method)).toEqual(["POST", "POST"])
    }))

  it.scoped("a second 401 is returned to the caller as it is", () =>
    Effect.gen(function*() {
      const { auth, client, logins, refreshes, server } = yield* setup({
        initialToken: "t",
        api: acceptOnly(() => false)
      })
      const response = yield* client.get(api)
      expect(response.status).toBe(401)
      expect(yield* response.text).toBe("unauthorized")
      expect(yield* server.count).toBe(2)
      expect(yield* refreshes).toBe(1)
      expect(yield* logins).toBe(0)
      // The refreshed token is not thrown away after the last attempt (no refresh storm).
      expect(Redacted.value(yield* auth.accessToken)).toBe("refreshed-0")
      expect(yield* refreshes).toBe(1)
    }))

  it.scoped("concurrent requests rejected with 401 share one refresh", () =>
    Effect.gen(function*() {
      const { client, refreshes, server } = yield* setup({
        initialToken: "revoked",
        api: acceptOnly((token) => token === "refreshed-0")
      })
      const responses = yield* Effect.all(Array.from({ length: 10 }, () => client.get(api)), {
        concurrency: "unbounded"
      })
      expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200))
      expect(yield* refreshes).toBe(1)
      expect(yield* server.count).toBe(20)
    }))

  it.scoped("a request whose body is a stream is not resent, but the next request uses a new token", () =>
    Effect.gen(function*() {
      const { client, refreshes, server } = yield* setup({
        initialToken: "revoked",
        api: acceptOnly((token) => token === "refreshed-0")
      })
      const upload = HttpClientRequest.post(api).pipe(
        HttpClientRequest.setBody(HttpBody.stream(Stream.make(new TextEncoder().encode("chunk")), "text/plain"))
      )
      const response = yield* client.execute(upload)
      expect(response.status).toBe(401)
      expect(yield* server.count).toBe(1)
      expect(yield* refreshes).toBe(0)

      const next = yield* client.get(api)
      expect(next.status).toBe(200)
      expect(yield* refreshes).toBe(1)
      expect(yield* server.count).toBe(2)
    }))

  it.scoped("other statuses (403, 407, 500) are returned untouched without a refresh", () =>
    Effect.gen(function*() {
      for (const code of [403, 407, 500]) {
        const { client, refreshes, server } = yield* setup({ initialToken: "t", api: status(code) })
        const response = yield* client.get(api)
        expect(response.status).toBe(code)
        expect(yield* server.count).toBe(1)
        expect(yield* refreshes).toBe(0)
      }
    }))

  it.scoped("a transport error is passed through as it is", () =>
    Effect.gen(function*() {
      const { client, refreshes } = yield* setup({
        initialToken: "t",
        api: () =>
          Effect.fail(
            new HttpClientError.RequestError({
              request: HttpClientRequest.get(api),
              reason: "Transport",
              description: "ECONNRESET"
            })
          )
      })
      const error = yield* Effect.flip(client.get(api))
      expect(error._tag).toBe("RequestError")
      expect(error._tag === "RequestError" && error.description).toBe("ECONNRESET")
      expect(yield* refreshes).toBe(0)
    }))

  it.scoped("make: a token that cannot be obtained fails with the AuthError; layer: a RequestError carrying it", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      const server = yield* recordingClient(ok)
      const authLayer = Authenticator.layer({
        endpoint,
        interactive: true,
        allowInteractive: false,
        login: Effect.die("not allowed")
      }).pipe(
        Layer.provide(Layer.mergeAll(
          Layer.succeed(Keyring.Keyring, keyring),
          ClientConfig.layerStatic(config),
          Layer.succeed(HttpClient.HttpClient, server.client)
        ))
      )

      const direct = yield* Effect.flip(
        Effect.flatMap(AuthHttpClient.make(server.client), (client) => client.get(api))
      ).pipe(Effect.provide(authLayer))
      expect(direct._tag).toBe("AccessTokenNotFound")

      const viaLayer = yield* Effect.flip(
        Effect.flatMap(HttpClient.HttpClient, (client) => client.get(api))
      ).pipe(
        Effect.provide(
          AuthHttpClient.layer.pipe(
            Layer.provide(Layer.merge(authLayer, Layer.succeed(HttpClient.HttpClient, server.client)))
          )
        )
      )
      expect(viaLayer._tag).toBe("RequestError")
      expect(viaLayer._tag === "RequestError" && viaLayer.reason).toBe("Transport")
      expect(viaLayer.cause).toMatchObject({ _tag: "AccessTokenNotFound", reason: "NoCredentials" })
      expect(yield* server.count).toBe(0)
    }))

  it("isReplayable: streams are not, bytes, text and forms are", () => {
    expect(AuthHttpClient.isReplayable(HttpClientRequest.get(api))).toBe(true)
    expect(AuthHttpClient.isReplayable(HttpClientRequest.post(api).pipe(HttpClientRequest.bodyText("x")))).toBe(true)
    expect(AuthHttpClient.isReplayable(HttpClientRequest.post(api).pipe(HttpClientRequest.bodyUrlParams({ a: "1" }))))
      .toBe(true)
    expect(
      AuthHttpClient.isReplayable(
        HttpClientRequest.post(api).pipe(HttpClientRequest.bodyStream(Stream.make(new Uint8Array([1]))))
      )
    ).toBe(false)
    expect(
      AuthHttpClient.isReplayable(
        HttpClientRequest.post(api).pipe(HttpClientRequest.setBody(HttpBody.raw(new ReadableStream())))
      )
    ).toBe(false)
  })

  it("Policies.isReplayableBody, the rule of isReplayable's raw bodies and of the facade's fetch", () => {
    const replayable = [undefined, null, "x", new URLSearchParams("a=1"), new ArrayBuffer(1), new Uint16Array(1)]
    for (const body of [...replayable, new Blob(["x"]), new FormData()]) {
      expect(Policies.isReplayableBody(body)).toBe(true)
      expect(
        AuthHttpClient.isReplayable(HttpClientRequest.post(api).pipe(HttpClientRequest.setBody(HttpBody.raw(body))))
      )
        .toBe(true)
    }
    for (const body of [new ReadableStream(), { not: "a body" }]) expect(Policies.isReplayableBody(body)).toBe(false)
  })
})
