import { HttpClient, type HttpClientError } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ClientConfig, DeviceCode, DevicePrompt } from "@flyte-auth/core"
import { DateTime, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Ref, TestClock } from "effect"
import { json, makeMockHttp, oauthError, type RecordedRequest, refused, tokenJson } from "./helpers/mockHttp.js"

const config = new ClientConfig.ClientConfig({
  tokenEndpoint: "https://idp.example/oauth2/token",
  deviceAuthorizationEndpoint: "https://idp.example/oauth2/device",
  clientId: "flytectl",
  scopes: ["offline_access", "all"]
})

const deviceJson = (extra: Record<string, unknown> = {}) =>
  json({
    device_code: "device-secret-42",
    user_code: "WDJB-MJHT",
    verification_uri: "https://idp.example/device",
    expires_in: 600,
    interval: 5,
    ...extra
  })

/**
 * Runs the device flow against a scripted server: `device` answers the device authorization, `polls[i]` the i-th
 * token poll (the last one repeats). Time is advanced by `advance` with the TestClock.
 */
const runFlow = (setup: {
  readonly device?: Response
  readonly polls: ReadonlyArray<
    (request: RecordedRequest) => Response | Effect.Effect<Response, HttpClientError.HttpClientError>
  >
  readonly advance?: Duration.DurationInput
  readonly options?: Partial<DeviceCode.Options>
}) =>
  Effect.gen(function*() {
    const shown = yield* Ref.make<ReadonlyArray<DevicePrompt.DeviceCodePrompt>>([])
    let polls = 0
    const server = yield* makeMockHttp((request) => {
      if (request.path === "/oauth2/device") return setup.device ?? deviceJson()
      const answer = setup.polls[Math.min(polls, setup.polls.length - 1)]
      polls++
      return answer(request)
    })
    const fiber = yield* DeviceCode.authenticate({ endpoint: "flyte.example:443", config, ...setup.options }).pipe(
      Effect.provide(Layer.succeed(HttpClient.HttpClient, server.client)),
      Effect.provide(
        Layer.succeed(DevicePrompt.DevicePrompt, { show: (prompt) => Ref.update(shown, (all) => [...all, prompt]) })
      ),
      Effect.exit,
      Effect.fork
    )
    yield* TestClock.adjust(setup.advance ?? Duration.minutes(15))
    const exit = yield* Fiber.join(fiber)
    const requests = yield* server.requests
    return {
      exit,
      requests,
      polls: requests.filter((r) => r.path === "/oauth2/token"),
      shown: yield* Ref.get(shown)
    }
  })

const gaps = (polls: ReadonlyArray<RecordedRequest>) =>
  polls.map((poll, i) => poll.at - (i === 0 ? 0 : polls[i - 1].at))

/** Poll times in ms after the device authorization. */
const times = (
  flow: { readonly requests: ReadonlyArray<RecordedRequest>; readonly polls: ReadonlyArray<RecordedRequest> }
) => flow.polls.map((poll) => poll.at - flow.requests[0].at)

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (error === undefined) throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return error
}

describe("DeviceCode.authenticate", () => {
  it.effect("polls after 5, 10, 15 s when the server says slow_down twice, then returns the credentials", () =>
    Effect.gen(function*() {
      const { exit, polls, requests } = yield* runFlow({
        polls: [() => oauthError("slow_down"), () => oauthError("slow_down"), () => tokenJson("at-device")]
      })
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isFailure(exit)) return
      expect(Redacted.value(exit.value.accessToken)).toBe("at-device")
      expect(exit.value.endpoint).toBe("flyte.example:443")
      expect(polls.map((p) => p.at)).toEqual([5_000, 15_000, 30_000])
      expect(gaps(polls)).toEqual([5_000, 10_000, 15_000])
      // expiry is absolute, from the Clock at the time of the answer (t = 30 s)
      expect(DateTime.toEpochMillis(exit.value.expiresAt!)).toBe(30_000 + 3_600_000)

      const [authorization] = requests
      expect(authorization.at).toBe(0)
      expect(authorization.form.get("client_id")).toBe("flytectl")
      expect(authorization.form.get("scope")).toBe("offline_access all")
      expect(authorization.form.has("audience")).toBe(false)
      for (const poll of polls) {
        expect(poll.form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:device_code")
        expect(poll.form.get("device_code")).toBe("device-secret-42")
        expect(poll.form.get("client_id")).toBe("flytectl")
      }
    }))

  it.effect("uses the server's interval, else the configured one, else 5 s", () =>
    Effect.gen(function*() {
      const pending = () => oauthError("authorization_pending")
      const absent = yield* runFlow({
        device: deviceJson({ interval: undefined }),
        polls: [pending, pending, () => tokenJson()]
      })
      expect(Exit.isSuccess(absent.exit)).toBe(true)
      expect(times(absent)).toEqual([5_000, 10_000, 15_000])

      const seven = yield* runFlow({ device: deviceJson({ interval: 7 }), polls: [pending, () => tokenJson()] })
      expect(Exit.isSuccess(seven.exit)).toBe(true)
      expect(times(seven)).toEqual([7_000, 14_000])

      // A configured interval (Flyte's deviceFlowConfig.pollInterval) applies only when the server sends none.
      const configured = yield* runFlow({
        device: deviceJson({ interval: undefined }),
        polls: [pending, () => tokenJson()],
        options: { pollInterval: Duration.seconds(2) }
      })
      expect(times(configured)).toEqual([2_000, 4_000])
      const server = yield* runFlow({ polls: [() => tokenJson()], options: { pollInterval: Duration.seconds(2) } })
      expect(times(server)).toEqual([5_000])
    }))

  it.effect("stops when expires_in has elapsed by the Clock", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* runFlow({
        device: deviceJson({ expires_in: 22 }),
        polls: [() => oauthError("authorization_pending")],
        advance: Duration.minutes(5)
      })
      const error = failure(exit)
      expect(error._tag).toBe("AuthenticationError")
      expect(error.reason).toBe("ExpiredToken")
      // polls at 5, 10, 15, 20; the next one (25 s) would be after the expiry (22 s)
      expect(polls.map((p) => p.at)).toEqual([5_000, 10_000, 15_000, 20_000])
      expect(error.message).not.toContain("device-secret-42")
    }))

  it.effect("keeps polling until the device code expires, not longer", () =>
    Effect.gen(function*() {
      const server = yield* makeMockHttp((request) =>
        request.path === "/oauth2/device" ? deviceJson({ expires_in: 60 }) : oauthError("authorization_pending")
      )
      const fiber = yield* DeviceCode.authenticate({ endpoint: "e", config }).pipe(
        Effect.provide(Layer.succeed(HttpClient.HttpClient, server.client)),
        Effect.provide(DevicePrompt.layerLog),
        Effect.fork
      )
      yield* TestClock.adjust(Duration.seconds(50))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.seconds(10))
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      expect(error.reason).toBe("ExpiredToken")
      expect((yield* server.requests).filter((r) => r.path === "/oauth2/token").map((r) => r.at / 1000))
        .toEqual([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55])
    }))

  it.effect("fails with AccessDenied when the user denies", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* runFlow({
        polls: [() => oauthError("authorization_pending"), () => oauthError("access_denied")]
      })
      const error = failure(exit)
      expect(error.reason).toBe("AccessDenied")
      expect(error.error).toBe("access_denied")
      expect(polls).toHaveLength(2)
    }))

  it.effect("fails with ExpiredToken when the server says expired_token", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* runFlow({ polls: [() => oauthError("expired_token")] })
      expect(failure(exit).reason).toBe("ExpiredToken")
      expect(polls).toHaveLength(1)
    }))

  it.effect("fails with a typed error when a poll answers something that is not JSON", () =>
    Effect.gen(function*() {
      const html = yield* runFlow({
        polls: [
          () => oauthError("authorization_pending"),
          () => new Response("<html>Bad gateway</html>", { status: 502, headers: { "content-type": "text/html" } })
        ]
      })
      const error = failure(html.exit)
      expect(error._tag).toBe("AuthenticationError")
      expect(error.reason).toBe("InvalidResponse")
      expect(error.status).toBe(502)
      // A 502 is transient: polled again at the interval, three times, then it surfaces.
      expect(times(html)).toEqual([5_000, 10_000, 15_000, 20_000, 25_000])

      const garbage = yield* runFlow({ polls: [() => new Response("garbage", { status: 200 })] })
      expect(failure(garbage.exit).reason).toBe("InvalidResponse")
    }))

  it.effect("lives through server failures of a poll (5xx, 429) and goes on at the interval after slow_down", () =>
    Effect.gen(function*() {
      const unavailable = () => new Response("", { status: 503 })
      const flow = yield* runFlow({
        polls: [
          () => oauthError("slow_down"),
          unavailable,
          () => json({ error: "too_many_requests" }, 429),
          unavailable,
          () => oauthError("authorization_pending"),
          unavailable,
          () => tokenJson("after-the-storm")
        ]
      })
      expect(Exit.isSuccess(flow.exit)).toBe(true)
      if (Exit.isSuccess(flow.exit)) expect(Redacted.value(flow.exit.value.accessToken)).toBe("after-the-storm")
      // 5 s, then 10 s after slow_down; the failures keep the interval; the count of failures in a row restarts.
      expect(gaps(flow.polls)).toEqual([5_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000])

      // A Retry-After longer than the interval is waited for.
      const later = yield* runFlow({
        polls: [() => json({ error: "temporarily_unavailable" }, 503, { "retry-after": "8" }), () => tokenJson()]
      })
      expect(Exit.isSuccess(later.exit)).toBe(true)
      expect(times(later)).toEqual([5_000, 13_000])

      // A Retry-After beyond Policies.maxRetryAfter (10 s) is not waited for: the error surfaces.
      const tooLong = yield* runFlow({
        polls: [() => json({ error: "temporarily_unavailable" }, 503, { "retry-after": "60" })]
      })
      expect(failure(tooLong.exit).retryAfterSeconds).toBe(60)
      expect(tooLong.polls).toHaveLength(1)

      // A poll whose answer was lost is not repeated (the IdP may have spent the device code on it).
      const lost = yield* runFlow({ polls: [() => oauthError("authorization_pending"), refused] })
      expect(failure(lost.exit).reason).toBe("Transport")
      expect(lost.polls).toHaveLength(2)

      // Four in a row is one too many.
      const down = yield* runFlow({ polls: [() => oauthError("authorization_pending"), unavailable] })
      expect(failure(down.exit).status).toBe(503)
      expect(down.polls).toHaveLength(5)
    }))

  it.effect("fails on an unknown OAuth error without polling again", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* runFlow({ polls: [() => oauthError("invalid_client", 401)] })
      const error = failure(exit)
      expect(error.reason).toBe("OAuthError")
      expect(error.error).toBe("invalid_client")
      expect(polls).toHaveLength(1)
    }))

  it.effect("shows verification_uri_complete when present, else the URI and the user code", () =>
    Effect.gen(function*() {
      const complete = yield* runFlow({
        device: deviceJson({ verification_uri_complete: "https://idp.example/device?user_code=WDJB-MJHT" }),
        polls: [() => tokenJson()]
      })
      expect(complete.shown).toHaveLength(1)
      expect(complete.shown[0].verificationUriComplete).toBe("https://idp.example/device?user_code=WDJB-MJHT")
      expect(DevicePrompt.format(complete.shown[0])).toContain("https://idp.example/device?user_code=WDJB-MJHT")

      const plain = yield* runFlow({ polls: [() => tokenJson()] })
      expect(plain.shown).toHaveLength(1)
      const [prompt] = plain.shown
      expect(prompt.verificationUriComplete).toBeUndefined()
      expect(prompt.verificationUri).toBe("https://idp.example/device")
      expect(prompt.userCode).toBe("WDJB-MJHT")
      expect(Duration.toSeconds(prompt.expiresIn)).toBe(600)
      const text = DevicePrompt.format(prompt)
      expect(text).toContain("https://idp.example/device")
      expect(text).toContain("WDJB-MJHT")
      expect(text).not.toContain("device-secret-42")
    }))

  it.effect("shows the prompt before the first poll", () =>
    Effect.gen(function*() {
      const order: Array<string> = []
      const server = yield* makeMockHttp((request) => {
        order.push(request.path)
        return request.path === "/oauth2/device" ? deviceJson() : tokenJson()
      })
      const fiber = yield* DeviceCode.authenticate({ endpoint: "e", config }).pipe(
        Effect.provide(Layer.succeed(HttpClient.HttpClient, server.client)),
        Effect.provide(DevicePrompt.layerScripted(() => Effect.sync(() => order.push("prompt")))),
        Effect.fork
      )
      yield* TestClock.adjust(Duration.seconds(5))
      yield* Fiber.join(fiber)
      expect(order).toEqual(["/oauth2/device", "prompt", "/oauth2/token"])
    }))

  it.effect("sends audience and custom scopes only when set", () =>
    Effect.gen(function*() {
      const { requests } = yield* runFlow({
        polls: [() => tokenJson()],
        options: { scopes: ["a", "b"], audience: "api://flyte" }
      })
      expect(requests[0].form.get("scope")).toBe("a b")
      expect(requests[0].form.get("audience")).toBe("api://flyte")

      const none = yield* runFlow({ polls: [() => tokenJson()], options: { scopes: [] } })
      expect(none.requests[0].form.has("scope")).toBe(false)
      expect(none.requests[0].form.has("audience")).toBe(false)
    }))

  it.effect("gives up with Timeout when the optional timeout is shorter than the code's lifetime", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* runFlow({
        polls: [() => oauthError("authorization_pending")],
        options: { timeout: Duration.seconds(12) }
      })
      expect(failure(exit).reason).toBe("Timeout")
      expect(polls.map((p) => p.at)).toEqual([5_000, 10_000])
    }))

  it.effect("fails at once with a Config error when the server has no device authorization endpoint", () =>
    Effect.gen(function*() {
      const server = yield* makeMockHttp(() => tokenJson())
      const error = yield* DeviceCode.authenticate({
        endpoint: "flyte.example:443",
        config: new ClientConfig.ClientConfig({ tokenEndpoint: "https://idp.example/token", clientId: "flytectl" })
      }).pipe(
        Effect.provide(Layer.succeed(HttpClient.HttpClient, server.client)),
        Effect.provide(DevicePrompt.layerLog),
        Effect.flip
      )
      expect(error.reason).toBe("Config")
      expect(error.message).toContain("device authorization endpoint")
      expect(error.message).toContain("flyte.example:443")
      expect(yield* server.requests).toHaveLength(0)
    }))

  it.effect("fails with a Config error when no client id is known", () =>
    Effect.gen(function*() {
      const server = yield* makeMockHttp(() => tokenJson())
      const error = yield* DeviceCode.authenticate({
        endpoint: "e",
        config: new ClientConfig.ClientConfig({
          tokenEndpoint: "https://idp.example/token",
          deviceAuthorizationEndpoint: "https://idp.example/device"
        })
      }).pipe(
        Effect.provide(Layer.succeed(HttpClient.HttpClient, server.client)),
        Effect.provide(DevicePrompt.layerLog),
        Effect.flip
      )
      expect(error.reason).toBe("Config")
      expect(yield* server.requests).toHaveLength(0)
    }))
})
