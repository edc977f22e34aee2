import { describe, expect, it } from "@effect/vitest"
import type { AuthError } from "@flyte-auth/core"
import { Credentials } from "@flyte-auth/core"
import * as State from "@flyte-auth/core/internal/authenticatorState"
import { Deferred, Effect, Option, Redacted } from "effect"

// The decision of the Authenticator, by itself: the same function answers `join` and the synchronous cache read.
const held = new Credentials.Credentials({ accessToken: Redacted.make("t"), endpoint: "e" })
const freshUntil = () => 1_000
const loaded: State.State = { ...State.initial, loaded: true, credentials: Option.some(held) }

describe("Authenticator state: decide", () => {
  it("hands out loaded, fresh, not rejected credentials to a caller that wants valid ones", () => {
    expect(State.decide(loaded, "valid", 999, freshUntil)).toEqual({ _tag: "Cached", credentials: held })
  })

  it("leads when nothing is loaded, the credentials are rejected or no longer fresh, or a refresh/login is asked", () => {
    expect(State.decide(State.initial, "valid", 0, freshUntil)._tag).toBe("Lead")
    expect(State.decide({ ...loaded, credentials: Option.none() }, "valid", 0, freshUntil)._tag).toBe("Lead")
    expect(State.decide({ ...loaded, stale: true }, "valid", 0, freshUntil)._tag).toBe("Lead")
    expect(State.decide(loaded, "valid", 1_000, freshUntil)._tag).toBe("Lead")
    expect(State.decide(loaded, "refresh", 0, freshUntil)._tag).toBe("Lead")
    expect(State.decide(loaded, "login", 0, freshUntil)._tag).toBe("Lead")
  })

  it.effect("joins the flight under way; an explicit login waits for a refresh, then decides again", () =>
    Effect.gen(function*() {
      const deferred = yield* Deferred.make<Credentials.Credentials, AuthError.AuthError>()
      const refreshing = { ...loaded, inFlight: Option.some({ want: "refresh" as const, deferred }) }
      const loggingIn = { ...loaded, inFlight: Option.some({ want: "login" as const, deferred }) }
      // Even fresh credentials are not handed out while a flight is under way.
      expect(State.decide(refreshing, "valid", 0, freshUntil)).toEqual({ _tag: "Await", deferred })
      expect(State.decide(refreshing, "refresh", 0, freshUntil)).toEqual({ _tag: "Await", deferred })
      expect(State.decide(refreshing, "login", 0, freshUntil)).toEqual({ _tag: "AwaitThenRetry", deferred })
      expect(State.decide(loggingIn, "login", 0, freshUntil)).toEqual({ _tag: "Await", deferred })
      expect(State.decide(loggingIn, "refresh", 0, freshUntil)).toEqual({ _tag: "Await", deferred })
    }))
})
