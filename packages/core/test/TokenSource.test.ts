import { describe, expect, it } from "@effect/vitest"
import { AuthError, AuthHeader, Credentials, TokenSource } from "@flyte-auth/core"
import { DateTime, Deferred, Duration, Effect, Exit, Fiber, Redacted, Ref, Scope, TestClock } from "effect"

/** A source that counts its runs, takes `delay` of Clock time, and yields `token-<run>` (or fails on `failRuns`). */
const countingSource = (
  options: { readonly delay?: Duration.DurationInput; readonly failRuns?: ReadonlySet<number> }
) =>
  Effect.gen(function*() {
    const runs = yield* Ref.make(0)
    const source = Effect.gen(function*() {
      const run = yield* Ref.getAndUpdate(runs, (n) => n + 1)
      yield* Effect.sleep(options.delay ?? Duration.seconds(1))
      if (options.failRuns?.has(run)) {
        return yield* new AuthError.AuthenticationError({ reason: "CommandFailed", description: `run ${run} failed` })
      }
      return bare(`token-${run}`)
    })
    return { source, runs: Ref.get(runs) }
  })

/** Credentials holding only `token` (no expiry: kept until invalidated). */
const bare = (token: string) => new Credentials.Credentials({ accessToken: Redacted.make(token), endpoint: "proxy" })

const value = <E>(effect: Effect.Effect<Credentials.Credentials, E>) =>
  Effect.map(effect, (credentials) => Redacted.value(credentials.accessToken))

describe("TokenSource.reuse", () => {
  it.scoped("concurrent callers share one run of the source; later callers get the cached token", () =>
    Effect.gen(function*() {
      const { runs, source } = yield* countingSource({})
      const cache = yield* TokenSource.reuse(source)
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(value(cache.get)))
      yield* TestClock.adjust(Duration.seconds(1))
      const tokens = yield* Effect.forEach(fibers, Fiber.join)
      expect(new Set(tokens)).toEqual(new Set(["token-0"]))
      expect(yield* value(cache.get)).toBe("token-0")
      expect(yield* runs).toBe(1)
    }))

  it.scoped("a failure reaches the callers that waited for it and is then forgotten", () =>
    Effect.gen(function*() {
      const { runs, source } = yield* countingSource({ failRuns: new Set([0]) })
      const cache = yield* TokenSource.reuse(source)
      const waiting = yield* Effect.forEach(Array.from({ length: 3 }), () => Effect.fork(Effect.exit(cache.get)))
      yield* TestClock.adjust(Duration.seconds(1))
      for (const fiber of waiting) {
        const exit = yield* Fiber.join(fiber)
        expect(Exit.isFailure(exit)).toBe(true)
      }
      const next = yield* Effect.fork(value(cache.get))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(next)).toBe("token-1")
      expect(yield* runs).toBe(2)
    }))

  it.scoped("invalidate drops the token only while it is still the cached one", () =>
    Effect.gen(function*() {
      const { runs, source } = yield* countingSource({ delay: Duration.zero })
      const cache = yield* TokenSource.reuse(source)
      expect(yield* value(cache.get)).toBe("token-0")
      yield* cache.invalidate(AuthHeader.make("authorization", Redacted.make("some-other-token")))
      expect(yield* value(cache.get)).toBe("token-0")
      yield* cache.invalidate(AuthHeader.make("authorization", Redacted.make("token-0")))
      expect(yield* value(cache.get)).toBe("token-1")
      // A late report about the old token does not throw away the new one.
      yield* cache.invalidate(AuthHeader.make("authorization", Redacted.make("token-0")))
      expect(yield* value(cache.get)).toBe("token-1")
      expect(yield* runs).toBe(2)
    }))

  it.scoped("credentials with an expiry are renewed when they near it, by the Clock", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const source = Effect.gen(function*() {
        const run = yield* Ref.getAndUpdate(runs, (n) => n + 1)
        const now = yield* DateTime.now
        return new Credentials.Credentials({
          accessToken: Redacted.make(`token-${run}`),
          endpoint: "proxy",
          obtainedAt: now,
          expiresAt: DateTime.addDuration(now, Duration.minutes(10))
        })
      })
      const cache = yield* TokenSource.reuse(source)
      expect(yield* value(cache.get)).toBe("token-0")
      // Fresh until one minute (the default skew) before the expiry.
      yield* TestClock.adjust(Duration.minutes(8).pipe(Duration.sum(Duration.seconds(59))))
      expect(yield* value(cache.get)).toBe("token-0")
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* value(cache.get)).toBe("token-1")
    }))

  it.scoped("an interrupted caller does not interrupt the run others wait for", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const runs = yield* Ref.make(0)
      const source = Ref.update(runs, (n) => n + 1).pipe(
        Effect.zipRight(Deferred.succeed(started, undefined)),
        Effect.zipRight(Effect.sleep(Duration.seconds(1))),
        Effect.as(bare("the-token"))
      )
      const cache = yield* TokenSource.reuse(source)
      const first = yield* Effect.fork(cache.get)
      yield* Deferred.await(started)
      const second = yield* Effect.fork(value(cache.get))
      yield* Fiber.interrupt(first)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(second)).toBe("the-token")
      expect(yield* Ref.get(runs)).toBe(1)
    }))

  it.effect("closing the scope that made the source interrupts a run under way", () =>
    Effect.gen(function*() {
      const interrupted = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const source = Deferred.succeed(started, undefined).pipe(
        Effect.zipRight(Effect.never),
        Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)),
        Effect.as(bare("never"))
      )
      const scope = yield* Scope.make()
      const cache = yield* TokenSource.reuse(source).pipe(Scope.extend(scope))
      const waiting = yield* Effect.fork(Effect.exit(cache.get))
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(interrupted)
      const exit = yield* Fiber.join(waiting)
      expect(Exit.isInterrupted(exit)).toBe(true)
    }))

  it.scoped("invalidate compares the header that was handed out, whatever its key, and nothing else", () =>
    Effect.gen(function*() {
      const { runs, source } = yield* countingSource({ delay: Duration.zero })
      const cache = yield* TokenSource.reuse(source)
      const sent = AuthHeader.make("Proxy-Authorization", yield* cache.get)
      expect(sent.key).toBe("proxy-authorization")
      // Not the header of the kept token: a bare token, another scheme, a longer value.
      for (const value of ["token-0", "Basic token-0", "Bearer token-00", "Bearer xtoken-0"]) {
        yield* cache.invalidate({ key: sent.key, value: Redacted.make(value) })
      }
      expect(yield* runs).toBe(1)
      yield* cache.invalidate(sent)
      expect(yield* value(cache.get)).toBe("token-1")
      expect(yield* runs).toBe(2)
    }))
})
