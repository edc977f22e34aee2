// A file of its own, so it runs in a process of its own: libdbus reads DBUS_SESSION_BUS_ADDRESS once per process,
// so the bus must point nowhere before any keyring is touched here, and must not leak into the other keyring tests.
import { describe, expect, it } from "@effect/vitest"
import { Keyring } from "@flyte-auth/core"
import { NodeKeyring } from "@flyte-auth/node"
import { Effect, Logger, Option } from "effect"

/** The fields to compare (a failed match on the whole error would print its native cause). */
const describeError = (error: { _tag: string; reason: string; backend: string }) => ({
  _tag: error._tag,
  reason: error.reason,
  backend: error.backend
})

describe.skipIf(process.platform !== "linux")("NodeKeyring.layerAuto without D-Bus", () => {
  it.live("falls back to memory with exactly one warning, promptly", () => {
    process.env.DBUS_SESSION_BUS_ADDRESS = "unix:path=/nonexistent/flyte-auth-test-bus"
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push((Array.isArray(message) ? message : [message]).join(" "))
    })
    return Effect.gen(function*() {
      const keyring = yield* Keyring.Keyring
      expect(keyring.backend).toBe("memory")
      yield* keyring.set(Keyring.serviceName, "https://e", "v")
      expect(yield* keyring.get(Keyring.serviceName, "https://e")).toEqual(Option.some("v"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("no OS keyring is usable")
      expect(warnings[0]).toContain("keytar:")
      expect(warnings[0]).toContain("napi:")

      // The OS backends on their own fail with a typed, classified error instead of hanging.
      const keytar = yield* Effect.flip(
        Effect.flatMap(Keyring.Keyring, (k) => k.get("flyte-auth", "x")).pipe(Effect.provide(NodeKeyring.layerKeytar))
      )
      expect(describeError(keytar)).toEqual({ _tag: "KeyringError", reason: "Unavailable", backend: "keytar" })
      const napi = yield* Effect.flip(
        Effect.flatMap(Keyring.Keyring, (k) => k.set("flyte-auth", "x", "v")).pipe(
          Effect.provide(NodeKeyring.layerNapi)
        )
      )
      expect(describeError(napi)).toEqual({ _tag: "KeyringError", reason: "Unavailable", backend: "napi" })
    }).pipe(
      Effect.provide(NodeKeyring.layerAuto),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Effect.timeoutFail({ duration: "8 seconds", onTimeout: () => new Error("the keyring probe hung") })
    )
  })
})
