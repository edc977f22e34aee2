/**
 * The cross-process lock as the `Authenticator` uses it, deterministically: several authenticators stand for
 * several processes around one store (a shared memory keyring and the in-memory `CredentialLock`), against a
 * token endpoint that rotates its refresh tokens (a used refresh token is `invalid_grant` afterwards).
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import type { AuthError } from "@flyte-auth/core"
import { Authenticator, ClientConfig, CredentialLock, Credentials, Keyring } from "@flyte-auth/core"
import {
  Cause,
  DateTime,
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
import type { Scope } from "effect"

const endpoint = "flyte.example.com:443"

const config = new ClientConfig.ClientConfig({
  tokenEndpoint: "https://idp.example.com/oauth2/token",
  clientId: "flytectl",
  scopes: ["offline", "all"],
  headerKey: "flyte-authorization"
})

/** Credentials obtained at `obtainedAtSeconds` of TestClock time, living `lifetimeSeconds`. */
const credentials = (accessToken: string, refreshToken: string, obtainedAtSeconds = 0, lifetimeSeconds = 3600) => {
  const obtainedAt = DateTime.unsafeMake(obtainedAtSeconds * 1000)
  return new Credentials.Credentials({
    accessToken: Redacted.make(accessToken),
    refreshToken: Redacted.make(refreshToken),
    obtainedAt,
    expiresAt: DateTime.addDuration(obtainedAt, Duration.seconds(lifetimeSeconds)),
    endpoint
  })
}

const expired = (accessToken: string, refreshToken: string) => credentials(accessToken, refreshToken, -7200)

/**
 * An IdP token endpoint with rotating refresh tokens: each valid refresh token works once and yields
 * `access-<n>` / `refresh-<n>`; a used or unknown one is answered `invalid_grant`. Answers take 100 ms.
 */
const rotatingIdp = (firstRefreshToken: string) =>
  Effect.gen(function*() {
    const valid = yield* Ref.make(new Set([firstRefreshToken]))
    const grants = yield* Ref.make<ReadonlyArray<string>>([])
    const client = HttpClient.make((request) =>
      Effect.gen(function*() {
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        const used = new URLSearchParams(body).get("refresh_token") ?? ""
        const n = yield* Ref.modify(grants, (all) => [all.length + 1, [...all, used]])
        yield* Effect.sleep(Duration.millis(100))
        const accepted = yield* Ref.modify(valid, (set) => {
          if (!set.has(used)) return [false, set]
          const next = new Set(set)
          next.delete(used)
          next.add(`refresh-${n}`)
          return [true, next]
        })
        const response = accepted
          ? { access_token: `access-${n}`, refresh_token: `refresh-${n}`, token_type: "Bearer", expires_in: 3600 }
          : { error: "invalid_grant", error_description: "refresh token already used" }
        return HttpClientResponse.fromWeb(
          request,
          new Response(JSON.stringify(response), {
            status: accepted ? 200 : 400,
            headers: { "content-type": "application/json" }
          })
        )
      })
    )
    return { client, grants: Ref.get(grants) }
  })

const seed = (keyring: Keyring.Keyring.Service, value: Credentials.Credentials) =>
  Credentials.encodeKeyringEntry(value).pipe(
    Effect.flatMap((entry) => keyring.set(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined), entry)),
    Effect.orDie
  )

const storedToken = (keyring: Keyring.Keyring.Service) =>
  keyring.get(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined)).pipe(
    Effect.orDie,
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(Option.none<string>()),
      onSome: (entry) =>
        Effect.map(
          Effect.orDie(Credentials.decodeKeyringEntry(entry)),
          (c) => Option.some(Redacted.value(c.accessToken))
        )
    }))
  )

interface Process {
  readonly auth: Authenticator.Authenticator.Service
  readonly logins: Effect.Effect<number>
}

/** One "process": its own authenticator over the shared keyring, lock and IdP; logins are counted, never run. */
const startProcess = (
  keyring: Keyring.Keyring.Service,
  lock: CredentialLock.CredentialLock.Service | undefined,
  client: HttpClient.HttpClient,
  options: Partial<Authenticator.Options> = {}
): Effect.Effect<Process, never, Scope.Scope> =>
  Effect.gen(function*() {
    const logins = yield* Ref.make(0)
    const login = Effect.zipRight(
      Ref.update(logins, (n) => n + 1),
      Effect.fail(new Error("login must not run")).pipe(Effect.orDie)
    )
    const auth = yield* Authenticator.make({ endpoint, login, interactive: true, ...options }).pipe(
      Effect.provide(Layer.mergeAll(
        Layer.succeed(Keyring.Keyring, keyring),
        ClientConfig.layerStatic(config),
        Layer.succeed(HttpClient.HttpClient, client),
        lock === undefined ? Layer.empty : Layer.succeed(CredentialLock.CredentialLock, lock)
      ))
    )
    return { auth, logins: Ref.get(logins) }
  })

/**
 * A shared store (memory keyring seeded with `stored`), the in-memory lock and the rotating IdP, and a way to start
 * "processes" on them (`lock: null` starts one without the lock, another lock service replaces it).
 */
const world = (stored: Credentials.Credentials = expired("old-access", "refresh-0")) =>
  Effect.gen(function*() {
    const keyring = yield* Keyring.makeMemory
    const lock = yield* CredentialLock.makeMemory
    yield* seed(keyring, stored)
    const idp = yield* rotatingIdp("refresh-0")
    const start = (
      options: Partial<Authenticator.Options> = {},
      which: CredentialLock.CredentialLock.Service | null = lock
    ) => startProcess(keyring, which ?? undefined, idp.client, options)
    return { keyring, lock, idp, start }
  })

const tokenOf = (effect: Effect.Effect<Redacted.Redacted<string>, AuthError.AuthError>) =>
  Effect.map(effect, Redacted.value)

describe("CredentialLock.makeMemory", () => {
  it.scoped("a second holder waits until the first releases; a waiter that times out never holds it", () =>
    Effect.gen(function*() {
      const lock = yield* CredentialLock.makeMemory
      const events = yield* Ref.make<ReadonlyArray<string>>([])
      const log = (event: string) => Ref.update(events, (all) => [...all, event])
      const hold = (name: string, duration: Duration.DurationInput, timeout?: Duration.DurationInput, key = "k") =>
        Effect.scoped(
          lock.acquire(key, { timeout }).pipe(
            Effect.zipRight(log(`${name} in`)),
            Effect.zipRight(Effect.sleep(duration)),
            Effect.zipRight(log(`${name} out`))
          )
        )

      const a = yield* Effect.fork(hold("a", Duration.seconds(5)))
      yield* TestClock.adjust(Duration.millis(1))
      const b = yield* Effect.fork(hold("b", Duration.seconds(1)))
      const impatient = yield* Effect.fork(Effect.flip(hold("c", Duration.seconds(1), Duration.seconds(2))))
      // Another key is independent.
      const other = yield* Effect.fork(hold("other", Duration.seconds(1), undefined, "other-key"))
      yield* TestClock.adjust(Duration.seconds(3))
      const error = yield* Fiber.join(impatient)
      expect(error).toMatchObject({ _tag: "CredentialLockError", reason: "Timeout", backend: "memory" })
      yield* Fiber.join(other)
      expect(yield* Ref.get(events)).toEqual(["a in", "other in", "other out"])
      yield* TestClock.adjust(Duration.seconds(3))
      yield* Fiber.join(a)
      yield* Fiber.join(b)
      expect(yield* Ref.get(events)).toEqual(["a in", "other in", "other out", "a out", "b in", "b out"])
    }))

  it.scoped("withLock releases the lock when its effect fails or is interrupted", () =>
    Effect.gen(function*() {
      const lock = yield* CredentialLock.makeMemory
      const withLock = <A, E>(self: Effect.Effect<A, E>) =>
        CredentialLock.withLock(self, "k", { timeout: Duration.seconds(1) }).pipe(
          Effect.provideService(CredentialLock.CredentialLock, lock)
        )
      expect(Exit.isFailure(yield* Effect.exit(withLock(Effect.fail("boom"))))).toBe(true)
      const stuck = yield* Effect.fork(withLock(Effect.never))
      yield* TestClock.adjust(Duration.millis(10))
      yield* Fiber.interrupt(stuck)
      const after = yield* Effect.fork(withLock(Effect.succeed("free")))
      yield* TestClock.adjust(Duration.millis(10))
      expect(yield* Fiber.join(after)).toBe("free")
    }))

  it.scoped("layerNone never waits", () =>
    Effect.gen(function*() {
      const both = CredentialLock.withLock(Effect.sleep(Duration.seconds(1)), "k").pipe(
        Effect.provide(CredentialLock.layerNone)
      )
      const fiber = yield* Effect.fork(Effect.all([both, both], { concurrency: "unbounded" }))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(fiber)
    }))
})

describe("Authenticator with a CredentialLock (several processes, one store)", () => {
  it.scoped("5 processes with an expired token and a rotating refresh token: one refresh, all get its token", () =>
    Effect.gen(function*() {
      const { keyring, idp, start } = yield* world()
      const processes = yield* Effect.all(Array.from({ length: 5 }, () => start()))

      const fiber = yield* Effect.fork(Effect.all(
        processes.flatMap((p) => Array.from({ length: 10 }, () => tokenOf(p.auth.accessToken))),
        { concurrency: "unbounded" }
      ))
      yield* TestClock.adjust(Duration.seconds(1))
      const tokens = yield* Fiber.join(fiber)

      expect(new Set(tokens)).toEqual(new Set(["access-1"]))
      expect(yield* idp.grants).toEqual(["refresh-0"])
      expect(yield* storedToken(keyring)).toEqual(Option.some("access-1"))
      for (const p of processes) expect(yield* p.logins).toBe(0)
    }))

  it.scoped("without the lock the same processes refresh twice and one of them hits invalid_grant", () =>
    Effect.gen(function*() {
      const { idp, start } = yield* world()
      const [a, b] = yield* Effect.all([
        start({}, null),
        start({}, null)
      ])
      const fiber = yield* Effect.fork(Effect.all([a.auth.accessToken, b.auth.accessToken].map(Effect.exit), {
        concurrency: "unbounded"
      }))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(fiber)
      expect(yield* idp.grants).toEqual(["refresh-0", "refresh-0"])
      // The loser's refresh token was rejected, so it fell back to the full flow.
      expect((yield* a.logins) + (yield* b.logins)).toBe(1)
    }))

  it.scoped("an expired token another process replaced is refreshed with the newest (rotated) refresh token", () =>
    Effect.gen(function*() {
      const { idp, start } = yield* world(credentials("shared-access", "refresh-0"))
      const a = yield* start()
      const b = yield* start()
      // Both load the same fresh credentials.
      expect(yield* tokenOf(a.auth.accessToken)).toBe("shared-access")
      expect(yield* tokenOf(b.auth.accessToken)).toBe("shared-access")

      // Two hours later a refreshes, rotating refresh-0 into refresh-1; b is not asked.
      yield* TestClock.adjust(Duration.hours(2))
      const first = yield* Effect.fork(tokenOf(a.auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(first)).toBe("access-1")

      // Two more hours: access-1 has expired too. b still holds refresh-0 in memory (now invalid_grant); it must
      // refresh with the stored refresh-1 instead of falling back to a login.
      yield* TestClock.adjust(Duration.hours(2))
      const second = yield* Effect.fork(tokenOf(b.auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(second)).toBe("access-2")
      expect(yield* idp.grants).toEqual(["refresh-0", "refresh-1"])
      expect(yield* b.logins).toBe(0)
      // And a, holding access-1, takes access-2 from the store.
      expect(yield* tokenOf(a.auth.accessToken)).toBe("access-2")
      expect(yield* idp.grants).toHaveLength(2)
    }))

  it.scoped("two processes that both need a refresh at once: one refreshes, the other takes its token", () =>
    Effect.gen(function*() {
      const { idp, start } = yield* world()
      const a = yield* start()
      const b = yield* start()
      const both = yield* Effect.fork(Effect.all([tokenOf(a.auth.accessToken), tokenOf(b.auth.accessToken)], {
        concurrency: "unbounded"
      }))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(both)).toEqual(["access-1", "access-1"])
      expect(yield* idp.grants).toEqual(["refresh-0"])
    }))

  it.scoped("a forced refresh after another process refreshed uses that token; login always runs the flow", () =>
    Effect.gen(function*() {
      const { idp, start } = yield* world(credentials("shared-access", "refresh-0"))
      const a = yield* start()
      const b = yield* start()
      expect(yield* tokenOf(a.auth.accessToken)).toBe("shared-access")
      expect(yield* tokenOf(b.auth.accessToken)).toBe("shared-access")

      // Both are told that shared-access was rejected (e.g. a 401), one after the other.
      const first = yield* Effect.fork(a.auth.refresh)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(Redacted.value((yield* Fiber.join(first)).accessToken)).toBe("access-1")
      const second = yield* Effect.fork(b.auth.refresh)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(Redacted.value((yield* Fiber.join(second)).accessToken)).toBe("access-1")
      expect(yield* idp.grants).toEqual(["refresh-0"])

      // An explicit login is never satisfied from the store.
      const login = yield* Effect.fork(Effect.exit(b.auth.login))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(Exit.isFailure(yield* Fiber.join(login))).toBe(true)
      expect(yield* b.logins).toBe(1)
    }))

  it.scoped("a lock held elsewhere for too long: a typed Timeout, and the store is untouched", () =>
    Effect.gen(function*() {
      const { keyring, lock, idp, start } = yield* world()
      const a = yield* start({ lockTimeout: Duration.seconds(10) })

      const holder = yield* Effect.fork(Effect.scoped(Effect.zipRight(lock.acquire(endpoint), Effect.never)))
      yield* TestClock.adjust(Duration.millis(1))
      const waiting = yield* Effect.fork(Effect.flip(a.auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(10))
      const error = yield* Fiber.join(waiting)
      expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "Timeout" })
      expect(error.message).toContain("credential lock")
      expect(yield* idp.grants).toEqual([])
      expect(yield* storedToken(keyring)).toEqual(Option.some("old-access"))

      // Once the holder is gone, the next call refreshes.
      yield* Fiber.interrupt(holder)
      const next = yield* Effect.fork(tokenOf(a.auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(next)).toBe("access-1")
    }))

  it.scoped("a refresh that outlasts lockHold fails with Timeout and releases the lock", () =>
    Effect.gen(function*() {
      const { start } = yield* world()
      const slow = yield* start({
        lockHold: Duration.seconds(30),
        refresh: () => Effect.never
      })
      const fiber = yield* Effect.fork(Effect.flip(slow.auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(30))
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "AuthenticationError", reason: "Timeout" })

      const other = yield* start({ lockTimeout: Duration.seconds(1) })
      const next = yield* Effect.fork(tokenOf(other.auth.accessToken))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(next)).toBe("access-1")
    }))

  it.scoped("an unusable lock is skipped with a single warning", () =>
    Effect.gen(function*() {
      const { idp, start } = yield* world()
      const broken: CredentialLock.CredentialLock.Service = {
        backend: "file",
        acquire: () =>
          Effect.fail(
            new CredentialLock.CredentialLockError({
              reason: "Unavailable",
              backend: "file",
              description: "cannot create /read-only/locks"
            })
          )
      }
      const warnings = yield* Ref.make<ReadonlyArray<string>>([])
      const logger = Logger.make(({ logLevel, message }) => {
        if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
          Effect.runSync(Ref.update(warnings, (all) => [...all, String(message)]))
        }
      })
      const a = yield* start({}, broken)
      const run = (effect: Effect.Effect<unknown, AuthError.AuthError>) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.provide(effect, Logger.add(logger)))
          yield* TestClock.adjust(Duration.seconds(1))
          return yield* Fiber.join(fiber)
        })
      yield* run(a.auth.accessToken)
      yield* run(a.auth.refresh)
      expect(yield* idp.grants).toEqual(["refresh-0", "refresh-1"])
      const lockWarnings = (yield* Ref.get(warnings)).filter((w) => w.includes("credential lock"))
      expect(lockWarnings).toHaveLength(1)
      expect(lockWarnings[0]).toContain("/read-only/locks")
    }))

  it.scoped("interrupting the process that waits for the lock leaves the lock usable by the others", () =>
    Effect.gen(function*() {
      const { idp, start } = yield* world()
      const a = yield* start()
      const doomed = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const b = yield* start()
        return yield* b.auth.accessToken
      })))
      const first = yield* Effect.fork(tokenOf(a.auth.accessToken))
      yield* TestClock.adjust(Duration.millis(50))
      yield* Fiber.interrupt(doomed)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(first)).toBe("access-1")
      const exit = yield* Fiber.await(doomed)
      expect(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)).toBe(true)
      const c = yield* start()
      expect(yield* tokenOf(c.auth.accessToken)).toBe("access-1")
      expect(yield* idp.grants).toEqual(["refresh-0"])
    }))
})
