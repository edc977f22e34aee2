import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ClientConfig, ClientCredentials, TokenClient } from "@flyte-auth/core"
import { DateTime, Duration, Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { json, makeMockHttp, oauthError, tokenJson } from "./helpers/mockHttp.js"

const config = new ClientConfig.ClientConfig({ tokenEndpoint: "https://idp.example/oauth2/token" })
const secret = Redacted.make("s3cr3t-value")

const run = (
  answer: (index: number) => Response,
  options: Partial<ClientCredentials.Options> = {},
  advance: Duration.DurationInput = Duration.seconds(30)
) =>
  Effect.gen(function*() {
    const server = yield* makeMockHttp((_, index) => answer(index))
    const fiber = yield* ClientCredentials.authenticate({
      endpoint: "flyte.example:443",
      config,
      clientId: "my-service",
      clientSecret: secret,
      ...options
    }).pipe(Effect.provide(Layer.succeed(HttpClient.HttpClient, server.client)), Effect.either, Effect.fork)
    yield* TestClock.adjust(advance)
    const result = yield* Fiber.join(fiber)
    return { result, requests: yield* server.requests }
  })

describe("ClientCredentials.authenticate", () => {
  it.effect("sends the grant with HTTP Basic and neither scope nor audience when none is set", () =>
    Effect.gen(function*() {
      const { requests, result } = yield* run(() => tokenJson("at-cc", { expires_in: 600 }))
      expect(result._tag).toBe("Right")
      if (result._tag === "Left") return
      expect(Redacted.value(result.right.accessToken)).toBe("at-cc")
      expect(result.right.endpoint).toBe("flyte.example:443")
      expect(DateTime.toEpochMillis(result.right.expiresAt!)).toBe(600_000)
      expect(DateTime.toEpochMillis(result.right.obtainedAt!)).toBe(0)

      expect(requests).toHaveLength(1)
      const [request] = requests
      expect(request.url.href).toBe("https://idp.example/oauth2/token")
      expect([...request.form.keys()]).toEqual(["grant_type"])
      expect(request.form.get("grant_type")).toBe("client_credentials")
      expect(request.headers["authorization"]).toBe(
        Redacted.value(TokenClient.basicAuthorization("my-service", secret))
      )
    }))

  it.effect("sends scope and audience when set, from the options or the config", () =>
    Effect.gen(function*() {
      const explicit = yield* run(() => tokenJson(), { scopes: ["all", "admin"], audience: "api://flyte" })
      expect(explicit.requests[0].form.get("scope")).toBe("all admin")
      expect(explicit.requests[0].form.get("audience")).toBe("api://flyte")

      const fromConfig = yield* run(() => tokenJson(), {
        config: new ClientConfig.ClientConfig({
          tokenEndpoint: "https://idp.example/oauth2/token",
          scopes: ["all"],
          audience: "https://flyte.example"
        })
      })
      expect(fromConfig.requests[0].form.get("scope")).toBe("all")
      expect(fromConfig.requests[0].form.get("audience")).toBe("https://flyte.example")

      const emptyAudience = yield* run(() => tokenJson(), { audience: "", scopes: [] })
      expect([...emptyAudience.requests[0].form.keys()]).toEqual(["grant_type"])
    }))

  it.effect("sends the secret in the form body with authMethod post", () =>
    Effect.gen(function*() {
      const { requests, result } = yield* run(() => tokenJson(), { authMethod: "post" })
      expect(result._tag).toBe("Right")
      const [request] = requests
      expect(request.headers["authorization"]).toBeUndefined()
      expect(request.form.get("client_id")).toBe("my-service")
      expect(request.form.get("client_secret")).toBe("s3cr3t-value")
    }))

  it.effect("retries transient failures (5xx, 429) and succeeds", () =>
    Effect.gen(function*() {
      const { requests, result } = yield* run((index) =>
        index === 0
          ? new Response("<html>unavailable</html>", { status: 503 })
          : index === 1
          ? oauthError("temporarily_unavailable", 429)
          : tokenJson("at-after-retry")
      )
      expect(result._tag).toBe("Right")
      if (result._tag === "Right") expect(Redacted.value(result.right.accessToken)).toBe("at-after-retry")
      expect(requests).toHaveLength(3)
      // exponential backoff: the retries are spaced in time
      expect(requests[1].at).toBeGreaterThan(requests[0].at)
      expect(requests[2].at).toBeGreaterThan(requests[1].at)
    }))

  it.effect("waits for the server's Retry-After (seconds or an HTTP date); one longer than 10 s is not waited for", () =>
    Effect.gen(function*() {
      const asked = yield* run((index) =>
        index === 0
          ? json({ error: "temporarily_unavailable" }, 503, { "retry-after": "3" })
          : index === 1
          ? new Response("slow down", { status: 429, headers: { "retry-after": new Date(5_000).toUTCString() } })
          : tokenJson("at-patient")
      )
      expect(asked.result._tag).toBe("Right")
      // At 0 s; then 3 s later; then at the date the server named (5 s into the TestClock's epoch).
      expect(asked.requests.map((r) => r.at)).toEqual([0, 3_000, 5_000])

      const tooLong = yield* run(() => new Response("", { status: 503, headers: { "retry-after": "120" } }))
      expect(tooLong.requests).toHaveLength(1)
      expect(tooLong.result._tag).toBe("Left")
      if (tooLong.result._tag === "Left") {
        expect(tooLong.result.left.status).toBe(503)
        expect(tooLong.result.left.retryAfterSeconds).toBe(120)
      }
    }))

  it.effect("gives up after a bounded number of transient failures", () =>
    Effect.gen(function*() {
      const { requests, result } = yield* run(() => json({ error: "server_error" }, 500))
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") expect(result.left.status).toBe(500)
      expect(requests).toHaveLength(4)
    }))

  it.effect("does not retry a refusal beyond the other way to send the secret, and never puts it in the error", () =>
    Effect.gen(function*() {
      // Pinned to HTTP Basic (and a secret that encoding does not change): one request.
      const pinned = yield* run(() => oauthError("invalid_client", 401), { authMethod: "basic" })
      expect(pinned.requests).toHaveLength(1)
      // Unpinned: HTTP Basic, then client_secret_post once (golang.org/x/oauth2's auto-detect); then it surfaces.
      const auto = yield* run(() => oauthError("invalid_client", 401))
      expect(auto.requests.map((r) => r.headers["authorization"] === undefined ? "post" : "basic")).toEqual([
        "basic",
        "post"
      ])
      for (const { result } of [pinned, auto]) {
        expect(result._tag).toBe("Left")
        if (result._tag === "Right") return
        expect(result.left.reason).toBe("OAuthError")
        expect(result.left.error).toBe("invalid_client")
        expect(result.left.message).not.toContain("s3cr3t-value")
        expect(JSON.stringify(result.left)).not.toContain("s3cr3t-value")
        expect(String(result.left)).not.toContain("s3cr3t-value")
      }
    }))
})
