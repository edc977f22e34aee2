import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import type { AuthError } from "@flyte-auth/core"
import {
  Authenticator,
  AuthHeader,
  Browser,
  ClientConfig,
  CommandRunner,
  Credentials,
  DevicePrompt,
  Flows,
  Keyring,
  LoopbackServer
} from "@flyte-auth/core"
import {
  Cause,
  Clock,
  Context,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  Ref,
  TestClock
} from "effect"

// --- fixtures ------------------------------------------------------------------------------------------------------

const endpoint = "flyte.example.com:443"
const tokenEndpoint = "https://idp.example.com/oauth2/token"

const config = new ClientConfig.ClientConfig({
  tokenEndpoint,
  clientId: "flytectl",
  scopes: ["offline", "all"],
  headerKey: "flyte-authorization"
})

/** Credentials obtained at `obtainedAtSeconds` (TestClock time) that expire `lifetimeSeconds` later. */
const credentials = (
  accessToken: string,
  options: { refreshToken?: string; obtainedAtSeconds?: number; lifetimeSeconds?: number } = {}
) => {
  const obtainedAt = DateTime.unsafeMake((options.obtainedAtSeconds ?? 0) * 1000)
  return new Credentials.Credentials({
    accessToken: Redacted.make(accessToken),
    refreshToken: options.refreshToken !== undefined ? Redacted.make(options.refreshToken) : undefined,
    obtainedAt,
    expiresAt: DateTime.addDuration(obtainedAt, Duration.seconds(options.lifetimeSeconds ?? 3600)),
    endpoint
  })
}

/** Credentials that expired before the TestClock's start. */
const expired = (accessToken: string, refreshToken?: string) =>
  new Credentials.Credentials({
    accessToken: Redacted.make(accessToken),
    refreshToken: refreshToken !== undefined ? Redacted.make(refreshToken) : undefined,
    obtainedAt: DateTime.unsafeMake(-7_200_000),
    expiresAt: DateTime.unsafeMake(-3_600_000),
    endpoint
  })

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })

const tokenResponse = (accessToken: string, extra: Record<string, unknown> = {}) =>
  json({ access_token: accessToken, token_type: "Bearer", expires_in: 3600, ...extra })

interface Recorded {
  readonly url: string
  readonly form: URLSearchParams
  readonly headers: Readonly<Record<string, string>>
}

/** A token endpoint as an `HttpClient`; every request is recorded, then answered after `delay` of Clock time. */
const tokenServer = (
  answer: (
    form: URLSearchParams,
    index: number,
    url: string
  ) => Response | Effect.Effect<Response, HttpClientError.HttpClientError>,
  delay: Duration.DurationInput = Duration.millis(100)
) =>
  Effect.gen(function*() {
    const requests = yield* Ref.make<ReadonlyArray<Recorded>>([])
    const client = HttpClient.make((request) =>
      Effect.gen(function*() {
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        const form = new URLSearchParams(body)
        const index = yield* Ref.modify(
          requests,
          (all) => [all.length, [...all, { url: request.url, form, headers: request.headers }]]
        )
        yield* Effect.sleep(delay)
        const response = answer(form, index, request.url)
        return HttpClientResponse.fromWeb(request, response instanceof Response ? response : yield* response)
      })
    )
    return { client, requests: Ref.get(requests), count: Effect.map(Ref.get(requests), (all) => all.length) }
  })

/** A memory keyring whose contents the test can read and seed. */
const spyKeyring = Effect.gen(function*() {
  const keyring = yield* Keyring.makeMemory
  return {
    keyring,
    entry: keyring.get(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined)).pipe(Effect.orDie),
    seed: (value: Credentials.Credentials | string) =>
      (typeof value === "string" ? Effect.succeed(value) : Credentials.encodeKeyringEntry(value)).pipe(
        Effect.flatMap((entry) =>
          keyring.set(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined), entry)
        ),
        Effect.orDie
      ),
    stored: keyring.get(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined)).pipe(
      Effect.orDie,
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeed(Option.none<Credentials.Credentials>()),
        onSome: (entry) => Effect.asSome(Effect.orDie(Credentials.decodeKeyringEntry(entry)))
      }))
    )
  }
})

/** A login flow that counts its runs and takes `delay` of Clock time. */
const countingLogin = (tokens: (run: number) => Credentials.Credentials, delay = Duration.seconds(1)) =>
  Effect.gen(function*() {
    const runs = yield* Ref.make(0)
    const login = Effect.gen(function*() {
      const run = yield* Ref.getAndUpdate(runs, (n) => n + 1)
      yield* Effect.sleep(delay)
      return tokens(run)
    })
    return { login, runs: Ref.get(runs) }
  })

const environment = (keyring: Keyring.Keyring.Service | Layer.Layer<Keyring.Keyring>, client: HttpClient.HttpClient) =>
  Layer.mergeAll(
    "get" in keyring ? Layer.succeed(Keyring.Keyring, keyring) : keyring,
    ClientConfig.layerStatic(config),
    Layer.succeed(HttpClient.HttpClient, client)
  )

const tokenOf = (effect: Effect.Effect<Redacted.Redacted<string>, AuthError.AuthError>) =>
  Effect.map(effect, Redacted.value)

/** Captures the messages logged at `Warning`. */
const captureWarnings = Effect.gen(function*() {
  const warnings = yield* Ref.make<ReadonlyArray<string>>([])
  const logger = Logger.make(({ logLevel, message }) => {
    if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      Effect.runSync(Ref.update(warnings, (all) => [...all, text]))
    }
  })
  return { layer: Logger.add(logger), warnings: Ref.get(warnings) }
})

/**
 * The arrange block of the Authenticator tests: a spy keyring (seeded with `seed`), a token endpoint answering
 * `answer` after `delay`, a counting login producing `tokens` (default `login-access`), and the authenticator
 * made over them with `authenticator` (default interactive). `keyring` replaces the spy keyring the authenticator
 * sees (it gets the spy to wrap), `client` replaces the token endpoint's `HttpClient`.
 */
const arrange = (options: {
  readonly seed?: Credentials.Credentials | string
  readonly answer?: Parameters<typeof tokenServer>[0]
  readonly delay?: Duration.DurationInput
  readonly tokens?: (run: number) => Credentials.Credentials
  readonly authenticator?: Partial<Authenticator.Options>
  readonly keyring?: (
    spy: Keyring.Keyring.Service
  ) => Keyring.Keyring.Service | Layer.Layer<Keyring.Keyring>
  readonly client?: HttpClient.HttpClient
} = {}) =>
  Effect.gen(function*() {
    const store = yield* spyKeyring
    if (options.seed !== undefined) yield* store.seed(options.seed)
    const server = yield* tokenServer(options.answer ?? (() => tokenResponse("unexpected")), options.delay)
    const { login, runs } = yield* countingLogin(options.tokens ?? (() => credentials("login-access")))
    const auth = yield* Authenticator.make({ endpoint, login, interactive: true, ...options.authenticator }).pipe(
      Effect.provide(
        environment(options.keyring?.(store.keyring) ?? store.keyring, options.client ?? server.client)
      )
    )
    return { auth, store, server, runs }
  })

// --- tests ---------------------------------------------------------------------------------------------------------

describe("Authenticator single flight", () => {
  it.scoped("100 concurrent callers of an expired token cause exactly one refresh request and share its token", () =>
    Effect.gen(function*() {
      const { auth, runs, server, store } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        answer: () => tokenResponse("new-access")
      })
      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 100 }, () => tokenOf(auth.accessToken)), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(Duration.seconds(1))
      const tokens = yield* Fiber.join(fiber)

      expect(tokens).toHaveLength(100)
      expect(new Set(tokens)).toEqual(new Set(["new-access"]))
      expect(yield* server.count).toBe(1)
      const [request] = yield* server.requests
      expect(request.form.get("grant_type")).toBe("refresh_token")
      expect(request.form.get("refresh_token")).toBe("refresh-1")
      expect(request.form.get("client_id")).toBe("flytectl")
      // RFC 6749 §6: no scope means "as granted"; the configured (requested) scopes are never sent.
      expect(request.form.has("scope")).toBe(false)
      expect(yield* runs).toBe(0)

      // The refreshed credentials are stored, keeping the refresh token the response did not repeat.
      const stored = Option.getOrThrow(yield* store.stored)
      expect(Redacted.value(stored.accessToken)).toBe("new-access")
      expect(stored.refreshToken !== undefined && Redacted.value(stored.refreshToken)).toBe("refresh-1")
      // The token endpoint does not know whose the tokens are: the authenticator keeps them the endpoint's.
      expect(stored.endpoint).toBe(endpoint)
      // And served from memory afterwards.
      expect(yield* tokenOf(auth.accessToken)).toBe("new-access")
      expect(yield* server.count).toBe(1)
    }))

  it.scoped("a failing refresh reaches every waiter with the same typed error, and nothing hangs", () =>
    Effect.gen(function*() {
      const { auth, runs, server } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        answer: () => new Response("<html>down</html>", { status: 503 })
      })

      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 50 }, () => Effect.flip(auth.accessToken)), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(Duration.seconds(1))
      const errors = yield* Fiber.join(fiber)

      expect(errors).toHaveLength(50)
      expect(new Set(errors).size).toBe(1)
      const error = errors[0]
      expect(error._tag).toBe("AuthenticationError")
      expect(error._tag === "AuthenticationError" && error.status).toBe(503)
      expect(yield* server.count).toBe(1)
      expect(yield* runs).toBe(0)
    }))

  it.scoped("interrupting the caller that started a refresh does not break the others", () =>
    Effect.gen(function*() {
      const { auth, server } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        answer: () => tokenResponse("new-access"),
        delay: Duration.seconds(2)
      })

      const first = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.millis(500))
      expect(yield* server.count).toBe(1)
      const second = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.millis(500))
      yield* Fiber.interrupt(first)
      const third = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(2))

      expect(yield* Fiber.join(second)).toBe("new-access")
      expect(yield* Fiber.join(third)).toBe("new-access")
      expect(Exit.isInterrupted(yield* Fiber.await(first))).toBe(true)
      expect(yield* server.count).toBe(1)
    }))

  it.scoped("20 callers that need an interactive login at once get one login and the same credentials", () =>
    Effect.gen(function*() {
      const { auth, runs, server, store } = yield* arrange({
        tokens: (run) => credentials(`login-${run}`, { refreshToken: "r" })
      })

      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 20 }, () => auth.credentials), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(Duration.seconds(1))
      const all = yield* Fiber.join(fiber)

      expect(yield* runs).toBe(1)
      expect(new Set(all).size).toBe(1)
      expect(Redacted.value(all[0].accessToken)).toBe("login-0")
      expect(yield* server.count).toBe(0)
      const stored = Option.getOrThrow(yield* store.stored)
      expect(Redacted.value(stored.accessToken)).toBe("login-0")
    }))

  it.scoped("a forced refresh is single-flight too and happens even when the token is fresh", () =>
    Effect.gen(function*() {
      const { auth, server } = yield* arrange({
        seed: credentials("fresh-access", { refreshToken: "refresh-1" }),
        answer: (_, index) => tokenResponse(`refreshed-${index}`)
      })
      expect(yield* tokenOf(auth.accessToken)).toBe("fresh-access")

      const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 10 }, () => auth.refresh), {
        concurrency: "unbounded"
      }))
      yield* TestClock.adjust(Duration.seconds(1))
      const all = yield* Fiber.join(fiber)
      expect(new Set(all.map((c) => Redacted.value(c.accessToken)))).toEqual(new Set(["refreshed-0"]))
      expect(yield* server.count).toBe(1)
      expect(yield* tokenOf(auth.accessToken)).toBe("refreshed-0")
    }))
})

describe("Authenticator refresh failure policy", () => {
  it.scoped("invalid_grant purges the stored credentials and runs the full flow once", () =>
    Effect.gen(function*() {
      const { auth, runs, server, store } = yield* arrange({
        seed: expired("old-access", "dead-refresh"),
        answer: () => json({ error: "invalid_grant", error_description: "refresh token revoked" }, 400),
        tokens: (run) => credentials(`login-${run}`, { refreshToken: "r2" })
      })

      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 10 }, () => tokenOf(auth.accessToken)), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(Duration.seconds(2))
      expect(new Set(yield* Fiber.join(fiber))).toEqual(new Set(["login-0"]))
      expect(yield* server.count).toBe(1)
      expect(yield* runs).toBe(1)
      const stored = Option.getOrThrow(yield* store.stored)
      expect(Redacted.value(stored.accessToken)).toBe("login-0")
      expect(stored.refreshToken !== undefined && Redacted.value(stored.refreshToken)).toBe("r2")
    }))

  it.scoped("a 401 from the refresh (without an OAuth error body) also purges and logs in again", () =>
    Effect.gen(function*() {
      const { auth, runs } = yield* arrange({
        seed: expired("old-access", "dead-refresh"),
        answer: () => new Response("unauthorized", { status: 401 })
      })
      const fiber = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(2))
      expect(yield* Fiber.join(fiber)).toBe("login-access")
      expect(yield* runs).toBe(1)
    }))

  it.scoped("a rejected refresh without interactive login allowed purges and fails with RefreshImpossible", () =>
    Effect.gen(function*() {
      const { auth, runs, store } = yield* arrange({
        seed: expired("old-access", "dead-refresh"),
        answer: () => json({ error: "invalid_grant" }, 400),
        authenticator: { allowInteractive: false }
      })
      const fiber = yield* Effect.fork(Effect.flip(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("AccessTokenNotFound")
      expect(error.reason).toBe("RefreshImpossible")
      expect(error._tag === "AccessTokenNotFound" && error.error).toBe("invalid_grant")
      expect(yield* runs).toBe(0)
      expect(yield* store.entry).toEqual(Option.none())
    }))

  it.scoped("503 on refresh is a typed error: the keyring entry is unchanged and login never runs", () =>
    Effect.gen(function*() {
      const { auth, runs, server, store } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        answer: () => json({ error: "temporarily_unavailable" }, 503)
      })
      const before = yield* store.entry
      expect(Option.isSome(before)).toBe(true)

      const fiber = yield* Effect.fork(Effect.flip(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("AuthenticationError")
      expect(error._tag === "AuthenticationError" && error.status).toBe(503)
      expect(yield* store.entry).toEqual(before)
      expect(yield* runs).toBe(0)

      // A later call tries the refresh again (the failure is not cached).
      const retry = yield* Effect.fork(Effect.flip(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(retry)
      expect(yield* server.count).toBe(2)
      expect(yield* runs).toBe(0)
    }))

  it.scoped("a network failure on refresh is a typed Transport error and leaves the keyring alone", () =>
    Effect.gen(function*() {
      const { auth, runs, store } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        client: HttpClient.make((request) =>
          Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "ECONNREFUSED" }))
        )
      })
      const before = yield* store.entry
      expect(Option.isSome(before)).toBe(true)
      const error = yield* Effect.flip(auth.accessToken)
      expect(error._tag === "AuthenticationError" && error.reason).toBe("Transport")
      expect(yield* store.entry).toEqual(before)
      expect(yield* runs).toBe(0)
    }))

  it.scoped("a confidential client sends its secret with the refresh (HTTP Basic)", () =>
    Effect.gen(function*() {
      const { auth, server, store } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        answer: () => tokenResponse("new-access", { refresh_token: "refresh-2" }),
        authenticator: { interactive: false, clientSecret: Redacted.make("s3cret") }
      })
      const fiber = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(fiber)).toBe("new-access")
      const [request] = yield* server.requests
      expect(request.headers.authorization).toBe(`Basic ${btoa("flytectl:s3cret")}`)
      expect(request.form.get("client_secret")).toBeNull()
      const stored = Option.getOrThrow(yield* store.stored)
      expect(stored.refreshToken !== undefined && Redacted.value(stored.refreshToken)).toBe("refresh-2")
    }))

  it.scoped("credentials without a refresh token (client credentials, command) run the flow again", () =>
    Effect.gen(function*() {
      const { auth, runs, server } = yield* arrange({
        seed: expired("old-access"),
        tokens: (run) => credentials(`cc-${run}`),
        authenticator: { interactive: false }
      })
      const fiber = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(fiber)).toBe("cc-0")
      expect(yield* runs).toBe(1)
      expect(yield* server.count).toBe(0)
    }))

  it.scoped("refresh: \"login\" runs the flow again even when a refresh token is stored", () =>
    Effect.gen(function*() {
      const { auth, runs, server } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        tokens: (run) => credentials(`cmd-${run}`),
        authenticator: { interactive: false, refresh: "login" }
      })
      const fiber = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(fiber)).toBe("cmd-0")
      expect(yield* runs).toBe(1)
      expect(yield* server.count).toBe(0)
    }))

  it.scoped("no stored credentials and no interactive login allowed: AccessTokenNotFound, the flow never runs", () =>
    Effect.gen(function*() {
      const { auth, runs } = yield* arrange({ authenticator: { allowInteractive: false } })
      const error = yield* Effect.flip(auth.accessToken)
      expect(error._tag).toBe("AccessTokenNotFound")
      expect(error.reason).toBe("NoCredentials")
      expect(yield* runs).toBe(0)
    }))
})

describe("Authenticator keyring", () => {
  it.scoped("loads stored credentials lazily, keyed by endpoint, without running the flow", () =>
    Effect.gen(function*() {
      const reads = yield* Ref.make<ReadonlyArray<string>>([])
      const { auth, runs, server } = yield* arrange({
        seed: credentials("stored-access", { refreshToken: "r" }),
        keyring: (spy) => ({
          ...spy,
          get: (service, account) =>
            Effect.zipRight(Ref.update(reads, (all) => [...all, `${service}/${account}`]), spy.get(service, account))
        })
      })
      expect(yield* Ref.get(reads)).toEqual([])
      expect(yield* tokenOf(auth.accessToken)).toBe("stored-access")
      expect(yield* tokenOf(auth.accessToken)).toBe("stored-access")
      expect(yield* Ref.get(reads)).toEqual([
        `${Keyring.serviceName}/${Credentials.keyringAccount(endpoint, undefined)}`
      ])
      expect(yield* runs).toBe(0)
      expect(yield* server.count).toBe(0)
    }))

  it.scoped("a failing keyring: warns exactly once and keeps the credentials in memory", () =>
    Effect.gen(function*() {
      const logs = yield* captureWarnings
      const { auth, runs, server } = yield* arrange({
        answer: () => tokenResponse("refreshed", { refresh_token: "r2" }),
        tokens: (run) => credentials(`login-${run}`, { refreshToken: "r1", lifetimeSeconds: 600 }),
        keyring: () => Keyring.layerFailing("Locked", "the collection is locked")
      })

      yield* Effect.gen(function*() {
        const first = yield* Effect.fork(tokenOf(auth.accessToken))
        yield* TestClock.adjust(Duration.seconds(1))
        expect(yield* Fiber.join(first)).toBe("login-0")
        expect(yield* tokenOf(auth.accessToken)).toBe("login-0")
        // Expire it: the refresh works from memory, and its result is kept in memory.
        yield* TestClock.adjust(Duration.minutes(10))
        const refreshed = yield* Effect.fork(tokenOf(auth.accessToken))
        yield* TestClock.adjust(Duration.seconds(1))
        expect(yield* Fiber.join(refreshed)).toBe("refreshed")
        yield* auth.logout
      }).pipe(Effect.provide(logs.layer))

      expect(yield* runs).toBe(1)
      expect(yield* server.count).toBe(1)
      const warnings = yield* logs.warnings
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("the collection is locked")
      expect(warnings[0]).not.toContain("login-0")
    }))

  it.scoped("a corrupt keyring entry is reported, ignored and replaced", () =>
    Effect.gen(function*() {
      const logs = yield* captureWarnings
      const { auth, runs, store } = yield* arrange({ seed: "{\"accessToken\": 42, not json" })
      const fiber = yield* Effect.fork(tokenOf(auth.accessToken).pipe(Effect.provide(logs.layer)))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(fiber)).toBe("login-access")
      expect(yield* runs).toBe(1)
      const warnings = yield* logs.warnings
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("not valid")
      expect(Redacted.value(Option.getOrThrow(yield* store.stored).accessToken)).toBe("login-access")
    }))

  it.scoped("logout forgets the credentials in memory and in the keyring", () =>
    Effect.gen(function*() {
      const { auth, runs, store } = yield* arrange({
        seed: credentials("stored-access", { refreshToken: "r" }),
        tokens: (run) => credentials(`login-${run}`)
      })
      expect(yield* tokenOf(auth.accessToken)).toBe("stored-access")
      yield* auth.logout
      expect(yield* store.entry).toEqual(Option.none())

      const fiber = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(fiber)).toBe("login-0")
      expect(yield* runs).toBe(1)
    }))

  it.scoped("after logout, a non-interactive run reports LoggedOut", () =>
    Effect.gen(function*() {
      const { auth } = yield* arrange({
        seed: credentials("stored-access"),
        authenticator: { allowInteractive: false }
      })
      expect(yield* tokenOf(auth.accessToken)).toBe("stored-access")
      yield* auth.logout
      const error = yield* Effect.flip(auth.accessToken)
      expect(error._tag === "AccessTokenNotFound" && error.reason).toBe("LoggedOut")
    }))

  it.scoped("a login that finishes after logout does not write its credentials back", () =>
    Effect.gen(function*() {
      const { auth, store } = yield* arrange({ tokens: () => credentials("late-login") })
      const fiber = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.millis(500))
      yield* auth.logout
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(fiber)).toBe("late-login")
      expect(yield* store.entry).toEqual(Option.none())
    }))
})

describe("Authenticator expiry and invalidation", () => {
  it.scoped("refreshes proactively inside the skew window, not before", () =>
    Effect.gen(function*() {
      const { auth, server } = yield* arrange({
        seed: credentials("first", { refreshToken: "r", lifetimeSeconds: 3600 }),
        answer: () => tokenResponse("second"),
        delay: Duration.zero
      })
      yield* TestClock.adjust(Duration.seconds(3600 - 60 - 1))
      expect(yield* tokenOf(auth.accessToken)).toBe("first")
      expect(yield* server.count).toBe(0)
      yield* TestClock.adjust(Duration.seconds(2))
      expect(yield* tokenOf(auth.accessToken)).toBe("second")
      expect(yield* server.count).toBe(1)
    }))

  it.scoped("a custom skew moves the window", () =>
    Effect.gen(function*() {
      const { auth } = yield* arrange({
        seed: credentials("first", { refreshToken: "r", lifetimeSeconds: 3600 }),
        answer: () => tokenResponse("second"),
        delay: Duration.zero,
        authenticator: { skew: Duration.minutes(10) }
      })
      yield* TestClock.adjust(Duration.seconds(3000 - 1))
      expect(yield* tokenOf(auth.accessToken)).toBe("first")
      yield* TestClock.adjust(Duration.seconds(2))
      expect(yield* tokenOf(auth.accessToken)).toBe("second")
    }))

  it.scoped("invalidate drops the cache only while it still holds the rejected token", () =>
    Effect.gen(function*() {
      const { auth, server } = yield* arrange({
        seed: credentials("current", { refreshToken: "r" }),
        answer: (_, index) => tokenResponse(`refreshed-${index}`),
        delay: Duration.zero
      })
      expect(yield* tokenOf(auth.accessToken)).toBe("current")

      yield* auth.invalidate(AuthHeader.make("authorization", Redacted.make("some-older-token")))
      expect(yield* tokenOf(auth.accessToken)).toBe("current")
      expect(yield* server.count).toBe(0)

      yield* auth.invalidate(AuthHeader.make("authorization", Redacted.make("current")))
      expect(yield* tokenOf(auth.accessToken)).toBe("refreshed-0")
      // A late report about the old token does not throw away the new one.
      yield* auth.invalidate(AuthHeader.make("authorization", Redacted.make("current")))
      expect(yield* tokenOf(auth.accessToken)).toBe("refreshed-0")
      expect(yield* server.count).toBe(1)
    }))

  it.scoped("header uses the configured header key and a Bearer value", () =>
    Effect.gen(function*() {
      const { auth } = yield* arrange({ seed: credentials("the-token") })
      const header = yield* auth.header
      expect(header.key).toBe("flyte-authorization")
      expect(Redacted.isRedacted(header.value)).toBe(true)
      expect(Redacted.value(header.value)).toBe("Bearer the-token")
      expect(String(header.value)).not.toContain("the-token")
    }))

  it.scoped("the Effect API judges freshness by the caller's Clock (Effect.withClock), not the one it was made with", () =>
    Effect.gen(function*() {
      const { auth, server } = yield* arrange({
        seed: credentials("first", { refreshToken: "r", lifetimeSeconds: 3600 }),
        answer: () => tokenResponse("second"),
        delay: Duration.zero
      })
      expect(yield* tokenOf(auth.accessToken)).toBe("first")
      // A clock two hours ahead of the TestClock the authenticator was made with.
      const later = yield* Effect.clockWith((clock) => {
        const ahead = 7_200_000
        return Effect.succeed<Clock.Clock>({
          [Clock.ClockTypeId]: Clock.ClockTypeId,
          unsafeCurrentTimeMillis: () => clock.unsafeCurrentTimeMillis() + ahead,
          currentTimeMillis: Effect.sync(() => clock.unsafeCurrentTimeMillis() + ahead),
          unsafeCurrentTimeNanos: () => clock.unsafeCurrentTimeNanos() + BigInt(ahead) * 1_000_000n,
          currentTimeNanos: Effect.sync(() => clock.unsafeCurrentTimeNanos() + BigInt(ahead) * 1_000_000n),
          sleep: (duration) => clock.sleep(duration)
        })
      })
      expect(yield* tokenOf(auth.accessToken).pipe(Effect.withClock(later))).toBe("second")
      expect(yield* server.count).toBe(1)
    }))

  it.scoped("cachedHeader answers synchronously only what header would answer without work", () =>
    Effect.gen(function*() {
      const { auth, server } = yield* arrange({
        seed: credentials("first", { refreshToken: "r", lifetimeSeconds: 3600 }),
        answer: (_, index) => tokenResponse(`refreshed-${index}`),
        delay: Duration.zero
      })
      const cached = () => {
        const header = auth.cachedHeader()
        return header === undefined ? undefined : `${header.key}: ${Redacted.value(header.value)}`
      }
      // Nothing read from the keyring yet, and the header key is not known before the configuration is.
      expect(cached()).toBeUndefined()
      yield* auth.header
      expect(cached()).toBe("flyte-authorization: Bearer first")
      // The same object while the token is unchanged.
      expect(auth.cachedHeader()).toBe(auth.cachedHeader())

      // A rejected token: `header` has a refresh to do, so there is no synchronous answer.
      const sent = auth.cachedHeader()!
      yield* auth.invalidate(sent)
      expect(cached()).toBeUndefined()
      expect(Redacted.value((yield* auth.header).value)).toBe("Bearer refreshed-0")
      expect(cached()).toBe("flyte-authorization: Bearer refreshed-0")

      // By the Clock: fresh one millisecond before the skew window, not inside it.
      yield* TestClock.adjust(Duration.seconds(3600 - 60).pipe(Duration.subtract(Duration.millis(1))))
      expect(cached()).toBe("flyte-authorization: Bearer refreshed-0")
      yield* TestClock.adjust(Duration.millis(1))
      expect(cached()).toBeUndefined()
      expect(yield* server.count).toBe(1)
      expect(Redacted.value((yield* auth.header).value)).toBe("Bearer refreshed-1")

      // A refresh under way: no synchronous answer until it is done.
      const refreshing = yield* Effect.fork(auth.refresh)
      yield* Effect.yieldNow()
      expect(cached()).toBeUndefined()
      yield* Fiber.join(refreshing)
      expect(cached()).toBe("flyte-authorization: Bearer refreshed-2")

      yield* auth.logout
      expect(cached()).toBeUndefined()
    }))

  it.scoped("closing the authenticator's scope interrupts a login under way; its waiters do not hang", () =>
    Effect.gen(function*() {
      const store = yield* spyKeyring
      const server = yield* tokenServer(() => tokenResponse("unexpected"))
      const started = yield* Deferred.make<void>()
      const login = Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
      const fiber = yield* Effect.scoped(
        Effect.gen(function*() {
          const auth = yield* Authenticator.make({ endpoint, login, interactive: true })
          const waiter = yield* Effect.fork(auth.accessToken)
          yield* Deferred.await(started)
          return waiter
        })
      ).pipe(Effect.provide(environment(store.keyring, server.client)))
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)).toBe(true)
    }))
  it.scoped("login runs the full flow even over fresh credentials, once for concurrent callers, and stores it", () =>
    Effect.gen(function*() {
      const { auth, runs, server, store } = yield* arrange({
        seed: expired("old-access", "refresh-1"),
        answer: () => tokenResponse("refreshed"),
        delay: Duration.seconds(1),
        tokens: (run) => credentials(`login-${run}`)
      })
      // A refresh is under way when the logins are asked for: they wait for it, then log in once.
      const refreshing = yield* Effect.fork(tokenOf(auth.accessToken))
      yield* TestClock.adjust(Duration.millis(10))
      const logins = yield* Effect.fork(
        Effect.all(Array.from({ length: 5 }, () => auth.login), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(Duration.seconds(3))
      expect(yield* Fiber.join(refreshing)).toBe("refreshed")
      const all = yield* Fiber.join(logins)
      expect(new Set(all.map((c) => Redacted.value(c.accessToken)))).toEqual(new Set(["login-0"]))
      expect(yield* runs).toBe(1)
      expect(yield* server.count).toBe(1)
      expect(yield* tokenOf(auth.accessToken)).toBe("login-0")
      expect(Redacted.value(Option.getOrThrow(yield* store.stored).accessToken)).toBe("login-0")

      // Again, although the cached token is fresh.
      const second = yield* Effect.fork(auth.login)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(Redacted.value((yield* Fiber.join(second)).accessToken)).toBe("login-1")
    }))

  it.scoped("login of an interactive flow in a non-interactive run is AccessTokenNotFound", () =>
    Effect.gen(function*() {
      const { auth, runs } = yield* arrange({
        seed: credentials("fresh"),
        tokens: () => credentials("login"),
        authenticator: { allowInteractive: false }
      })
      const error = yield* Effect.flip(auth.login)
      expect(error._tag).toBe("AccessTokenNotFound")
      expect(yield* runs).toBe(0)
      expect(yield* tokenOf(auth.accessToken)).toBe("fresh")
    }))

  it.effect("an authenticator used after its scope closed fails at once instead of hanging", () =>
    Effect.gen(function*() {
      const store = yield* spyKeyring
      const server = yield* tokenServer(() => tokenResponse("unexpected"))
      const { login, runs } = yield* countingLogin(() => credentials("login"))
      const auth = yield* Effect.scoped(Authenticator.make({ endpoint, login, interactive: true })).pipe(
        Effect.provide(environment(store.keyring, server.client))
      )
      const exit = yield* Effect.exit(auth.accessToken)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(yield* runs).toBe(0)
    }))
})

describe("Flows.layerFromMode", () => {
  /** Builds the layer in the test's scope, so the authenticator lives as long as the test. */
  const build = <E, R>(layer: Layer.Layer<Authenticator.Authenticator, E, R>) =>
    Effect.map(Layer.build(layer), Context.get(Authenticator.Authenticator))

  const modeEnvironment = (client: HttpClient.HttpClient, clientConfig: ClientConfig.ClientConfig = config) =>
    Effect.map(spyKeyring, (store) => ({
      store,
      layer: Layer.mergeAll(
        Layer.succeed(Keyring.Keyring, store.keyring),
        ClientConfig.layerStatic(clientConfig),
        Layer.succeed(HttpClient.HttpClient, client)
      )
    }))

  it.scoped("ClientSecret: the client credentials grant, run again when the token nears expiry", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer((_, index) => tokenResponse(`cc-${index}`), Duration.zero)
      const { layer } = yield* modeEnvironment(server.client)
      const auth = yield* build(
        Flows.layerFromMode("ClientSecret", {
          endpoint,
          clientId: "svc",
          clientSecret: Redacted.make("s3cret"),
          audience: "flyte"
        }).pipe(Layer.provide(layer))
      )
      expect(yield* tokenOf(auth.accessToken)).toBe("cc-0")
      expect(yield* tokenOf(auth.accessToken)).toBe("cc-0")
      yield* TestClock.adjust(Duration.seconds(3600 - 30))
      expect(yield* tokenOf(auth.accessToken)).toBe("cc-1")

      const requests = yield* server.requests
      expect(requests.map((r) => r.form.get("grant_type"))).toEqual(["client_credentials", "client_credentials"])
      expect(requests[0].headers.authorization).toBe(`Basic ${btoa("svc:s3cret")}`)
      expect(requests[0].form.get("audience")).toBe("flyte")
      expect(requests[0].form.get("scope")).toBe("offline all")
    }))

  it.effect("ClientSecret without a secret, ExternalCommand without a command: Config errors at construction", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => tokenResponse("unexpected"))
      const { layer } = yield* modeEnvironment(server.client)
      const noSecret = yield* Effect.flip(
        Layer.build(Flows.layerFromMode("ClientSecret", { endpoint }).pipe(Layer.provide(layer))).pipe(
          Effect.scoped
        )
      )
      expect(noSecret.reason).toBe("Config")
      expect(noSecret.message).toContain("client secret")
      const noCommand = yield* Effect.flip(
        Layer.build(
          Flows.layerFromMode("ExternalCommand", { endpoint, command: [] }).pipe(
            Layer.provide(Layer.merge(layer, CommandRunner.layerTest(() => Effect.die("not run"))))
          )
        ).pipe(Effect.scoped)
      )
      expect(noCommand.reason).toBe("Config")
      expect(noCommand.message).toContain("command")
    }))

  it.scoped("ExternalCommand: the command's token, and the command again when it expires", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => tokenResponse("unexpected"))
      const { layer } = yield* modeEnvironment(server.client)
      const runs = yield* Ref.make<ReadonlyArray<ReadonlyArray<string>>>([])
      const runner = CommandRunner.layerTest((argv) =>
        Effect.map(
          Ref.modify(runs, (all) => [all.length, [...all, argv]]),
          (index) => ({
            exitCode: 0,
            stdout: JSON.stringify({ access_token: `cmd-${index}`, expires_in: 600 }) + "\n",
            stderr: ""
          })
        )
      )
      const auth = yield* build(
        Flows.layerFromMode("ExternalCommand", { endpoint, command: ["get-token", "--json"] }).pipe(
          Layer.provide(Layer.merge(layer, runner))
        )
      )
      expect(yield* tokenOf(auth.accessToken)).toBe("cmd-0")
      expect(yield* tokenOf(auth.accessToken)).toBe("cmd-0")
      yield* TestClock.adjust(Duration.seconds(600))
      expect(yield* tokenOf(auth.accessToken)).toBe("cmd-1")
      expect(yield* Ref.get(runs)).toEqual([["get-token", "--json"], ["get-token", "--json"]])
      expect(yield* server.count).toBe(0)
    }))

  it.effect("DeviceFlow against an identity provider without a device endpoint fails at construction", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => tokenResponse("unexpected"))
      const { layer } = yield* modeEnvironment(server.client)
      const error = yield* Effect.flip(
        Layer.build(
          Flows.layerFromMode("DeviceFlow", { endpoint }).pipe(
            Layer.provide(Layer.merge(layer, DevicePrompt.layerLog))
          )
        ).pipe(Effect.scoped)
      )
      expect(error._tag).toBe("AuthenticationError")
      expect(error.reason).toBe("Config")
      expect(error.message).toContain("device authorization endpoint")
    }))

  it.scoped("DeviceFlow: one device login, then refreshes with its refresh token", () =>
    Effect.gen(function*() {
      const deviceConfig = new ClientConfig.ClientConfig({
        ...config,
        deviceAuthorizationEndpoint: "https://idp.example.com/oauth2/device"
      })
      const server = yield* tokenServer((form, _, url) => {
        if (url.endsWith("/device")) {
          return json({
            device_code: "dc",
            user_code: "ABCD-EFGH",
            verification_uri: "https://idp.example.com/activate",
            expires_in: 600,
            interval: 5
          })
        }
        if (form.get("grant_type") === "urn:ietf:params:oauth:grant-type:device_code") {
          return tokenResponse("device-access", { refresh_token: "device-refresh" })
        }
        return tokenResponse("refreshed-access")
      }, Duration.zero)
      const { layer, store } = yield* modeEnvironment(server.client, deviceConfig)
      const prompts = yield* Ref.make(0)
      const prompt = Layer.succeed(DevicePrompt.DevicePrompt, { show: () => Ref.update(prompts, (n) => n + 1) })
      const auth = yield* build(
        Flows.layerFromMode("DeviceFlow", { endpoint }).pipe(Layer.provide(Layer.merge(layer, prompt)))
      )
      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 5 }, () => tokenOf(auth.accessToken)), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(Duration.seconds(5))
      expect(yield* Fiber.join(fiber)).toEqual(Array.from({ length: 5 }, () => "device-access"))
      expect(yield* Ref.get(prompts)).toBe(1)

      yield* TestClock.adjust(Duration.seconds(3600))
      expect(yield* tokenOf(auth.accessToken)).toBe("refreshed-access")
      const last = (yield* server.requests).at(-1)!
      expect(last.form.get("grant_type")).toBe("refresh_token")
      expect(last.form.get("refresh_token")).toBe("device-refresh")
      expect(Redacted.value(Option.getOrThrow(yield* store.stored).accessToken)).toBe("refreshed-access")
    }))

  it.scoped("Pkce: the browser login runs once, its tokens are stored, and an expired token is refreshed", () =>
    Effect.gen(function*() {
      const pkceConfig = new ClientConfig.ClientConfig({
        ...config,
        authorizationEndpoint: "https://idp.example.com/oauth2/authorize",
        redirectUri: "http://localhost:53682/callback"
      })
      const server = yield* tokenServer((form) =>
        form.get("grant_type") === "authorization_code"
          ? tokenResponse("pkce-access", { refresh_token: "pkce-refresh" })
          : tokenResponse("refreshed-access"), Duration.zero)
      const { layer, store } = yield* modeEnvironment(server.client, pkceConfig)
      const loopback = yield* LoopbackServer.makeTest()
      const visits = yield* Ref.make(0)
      // The "user": follows the authorization URL and is redirected back with a code and the same state.
      const browser = Browser.layerScripted((url) =>
        Effect.gen(function*() {
          yield* Ref.update(visits, (n) => n + 1)
          const params = new URL(url).searchParams
          const redirect = new URL(params.get("redirect_uri")!)
          redirect.searchParams.set("code", "the-code")
          redirect.searchParams.set("state", params.get("state")!)
          return yield* loopback.request(redirect.toString())
        })
      )
      const auth = yield* build(
        Flows.layerFromMode("Pkce", { endpoint }).pipe(
          Layer.provide(
            Layer.mergeAll(layer, browser, Layer.succeed(LoopbackServer.LoopbackServer, loopback.service))
          )
        )
      )
      const tokens = yield* Effect.all(Array.from({ length: 5 }, () => tokenOf(auth.accessToken)), {
        concurrency: "unbounded"
      })
      expect(tokens).toEqual(Array.from({ length: 5 }, () => "pkce-access"))
      expect(yield* Ref.get(visits)).toBe(1)
      const [exchange] = yield* server.requests
      expect(exchange.form.get("code")).toBe("the-code")
      expect(Redacted.value(Option.getOrThrow(yield* store.stored).accessToken)).toBe("pkce-access")

      yield* TestClock.adjust(Duration.seconds(3600))
      expect(yield* tokenOf(auth.accessToken)).toBe("refreshed-access")
      expect(yield* Ref.get(visits)).toBe(1)
    }))

  it.scoped("Pkce in a non-interactive run: AccessTokenNotFound, no browser", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => tokenResponse("unexpected"))
      const { layer } = yield* modeEnvironment(server.client)
      const loopback = yield* LoopbackServer.makeTest()
      const visits = yield* Ref.make(0)
      const auth = yield* build(
        Flows.layerFromMode("Pkce", { endpoint, allowInteractive: false }).pipe(
          Layer.provide(
            Layer.mergeAll(
              layer,
              Browser.layerScripted(() => Ref.update(visits, (n) => n + 1)),
              Layer.succeed(LoopbackServer.LoopbackServer, loopback.service)
            )
          )
        )
      )
      const error = yield* Effect.flip(auth.accessToken)
      expect(error._tag === "AccessTokenNotFound" && error.reason).toBe("NoCredentials")
      expect(yield* Ref.get(visits)).toBe(0)
      expect(yield* server.count).toBe(0)
    }))
})
