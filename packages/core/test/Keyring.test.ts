import { describe, expect, it } from "@effect/vitest"
import { Keyring } from "@flyte-auth/core"
import { Effect, Option } from "effect"

const withKeyring = <A, E>(f: (keyring: Keyring.Keyring.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(Keyring.Keyring, f)

describe("Keyring.layerMemory", () => {
  it.effect("stores, reads, overwrites and deletes entries by service and account", () =>
    withKeyring((keyring) =>
      Effect.gen(function*() {
        expect(keyring.backend).toBe("memory")
        expect(yield* keyring.get(Keyring.serviceName, "a")).toEqual(Option.none())
        yield* keyring.set(Keyring.serviceName, "a", "one")
        yield* keyring.set(Keyring.serviceName, "b", "two")
        yield* keyring.set("other-service", "a", "three")
        expect(yield* keyring.get(Keyring.serviceName, "a")).toEqual(Option.some("one"))
        expect(yield* keyring.get("other-service", "a")).toEqual(Option.some("three"))
        yield* keyring.set(Keyring.serviceName, "a", "uno")
        expect(yield* keyring.get(Keyring.serviceName, "a")).toEqual(Option.some("uno"))
        yield* keyring.delete(Keyring.serviceName, "a")
        expect(yield* keyring.get(Keyring.serviceName, "a")).toEqual(Option.none())
        expect(yield* keyring.get(Keyring.serviceName, "b")).toEqual(Option.some("two"))
        yield* keyring.delete(Keyring.serviceName, "missing")
      })
    ).pipe(Effect.provide(Keyring.layerMemory)))

  it.effect("does not confuse keys that only differ in where service ends", () =>
    withKeyring((keyring) =>
      Effect.gen(function*() {
        yield* keyring.set("ab", "c", "first")
        yield* keyring.set("a", "bc", "second")
        expect(yield* keyring.get("ab", "c")).toEqual(Option.some("first"))
        expect(yield* keyring.get("a", "bc")).toEqual(Option.some("second"))
      })
    ).pipe(Effect.provide(Keyring.layerMemory)))

  it.effect("each layer build is a separate keyring", () =>
    Effect.gen(function*() {
      yield* withKeyring((keyring) => keyring.set("s", "a", "x")).pipe(Effect.provide(Keyring.layerMemory))
      const value = yield* withKeyring((keyring) => keyring.get("s", "a")).pipe(Effect.provide(Keyring.layerMemory))
      expect(value).toEqual(Option.none())
    }))
})

describe("Keyring.layerNone", () => {
  it.effect("forgets everything", () =>
    withKeyring((keyring) =>
      Effect.gen(function*() {
        yield* keyring.set("s", "a", "x")
        expect(yield* keyring.get("s", "a")).toEqual(Option.none())
        yield* keyring.delete("s", "a")
        expect(keyring.backend).toBe("none")
      })
    ).pipe(Effect.provide(Keyring.layerNone)))
})

describe("Keyring.layerFailing", () => {
  it.effect("fails every operation with a KeyringError naming backend and reason", () =>
    withKeyring((keyring) =>
      Effect.gen(function*() {
        for (const operation of [keyring.get("s", "a"), keyring.set("s", "a", "v"), keyring.delete("s", "a")]) {
          const error = yield* Effect.flip(operation)
          expect(error._tag).toBe("KeyringError")
          expect(error.reason).toBe("Locked")
          expect(error.message).toBe("keyring (failing): the collection is locked")
        }
      })
    ).pipe(Effect.provide(Keyring.layerFailing("Locked", "the collection is locked"))))

  it.effect("defaults to an unavailable keyring", () =>
    withKeyring((keyring) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(keyring.get("s", "a"))
        expect(error.reason).toBe("Unavailable")
        expect(error.message).toBe("keyring (failing): no keyring backend is available")
      })
    ).pipe(Effect.provide(Keyring.layerFailing())))
})
