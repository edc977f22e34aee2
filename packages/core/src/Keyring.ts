/**
 * Where credentials are kept between runs: the OS keyring in production, memory in tests.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"

/**
 * A keyring operation failed: no backend, a locked collection, a D-Bus error, an unwritable file.
 * The `Authenticator` catches it, warns once and carries on with an in-memory cache.
 *
 * @since 0.1.0
 * @category errors
 */
export class KeyringError extends Schema.TaggedError<KeyringError>("@flyte-auth/core/KeyringError")("KeyringError", {
  reason: Schema.Literal("Unavailable", "Locked", "Failure"),
  /** Which backend failed (`keytar`, `napi`, `file`, ...). */
  backend: Schema.String,
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `keyring (${this.backend}): ${this.description}`
  }
}

/**
 * A secret store addressed by service and account, as the OS keyrings are. Values are opaque strings
 * (flyte-auth stores one JSON entry per endpoint and client: `Credentials.keyringAccount`).
 *
 * @since 0.1.0
 * @category tags
 */
export class Keyring extends Context.Tag("@flyte-auth/core/Keyring")<Keyring, Keyring.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Keyring {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The backend's name, for `status` (`keytar`, `napi`, `file`, `memory`, `none`). */
    readonly backend: string
    readonly get: (service: string, account: string) => Effect.Effect<Option.Option<string>, KeyringError>
    readonly set: (service: string, account: string, value: string) => Effect.Effect<void, KeyringError>
    readonly delete: (service: string, account: string) => Effect.Effect<void, KeyringError>
    /** Every account that has an entry under `service` (in no particular order), for `status`. */
    readonly accounts: (service: string) => Effect.Effect<ReadonlyArray<string>, KeyringError>
  }
}

/**
 * The keyring service name under which flyte-auth stores its entries.
 *
 * @since 0.1.0
 * @category constants
 */
export const serviceName = "flyte-auth"

/**
 * The log annotation that names a keyring warning, so that a program can tell them apart without reading their
 * text (the CLI shows `Unencrypted` after a successful `login` only, and drops `MemoryOnly` from a `login`, which
 * reports the keyring as its error). Its value is a `Warning`.
 *
 * @since 0.3.0
 * @category log annotations
 */
export const warningAnnotation = "@flyte-auth/core/Keyring/warning"

/**
 * The keyring warnings, as the value of `warningAnnotation`: `Unencrypted` (the file keyring keeps the secrets in
 * plain files) and `MemoryOnly` (the keyring is not usable; credentials are kept in this process only).
 *
 * @since 0.3.0
 * @category log annotations
 */
export type Warning = "Unencrypted" | "MemoryOnly"

/**
 * Logs a keyring warning with its `warningAnnotation`.
 *
 * @since 0.3.0
 * @category log annotations
 */
export const logWarning = (warning: Warning, message: string): Effect.Effect<void> =>
  Effect.logWarning(message).pipe(Effect.annotateLogs(warningAnnotation, warning))

/**
 * A keyring in memory, for tests and for processes that should not persist anything.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Keyring.Service> = Effect.map(
  Ref.make(new Map<string, string>()),
  (ref): Keyring.Service => {
    const key = (service: string, account: string) => `${service}\u0000${account}`
    return {
      backend: "memory",
      get: (service, account) => Effect.map(Ref.get(ref), (map) => Option.fromNullable(map.get(key(service, account)))),
      set: (service, account, value) => Ref.update(ref, (map) => new Map(map).set(key(service, account), value)),
      delete: (service, account) =>
        Ref.update(ref, (map) => {
          const next = new Map(map)
          next.delete(key(service, account))
          return next
        }),
      accounts: (service) =>
        Effect.map(Ref.get(ref), (map) => {
          const prefix = `${service}\u0000`
          return [...map.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length))
        })
    }
  }
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Keyring> = Layer.effect(Keyring, makeMemory)

/**
 * A keyring that stores nothing: every run starts without credentials.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNone: Layer.Layer<Keyring> = Layer.succeed(Keyring, {
  backend: "none",
  get: () => Effect.succeedNone,
  set: () => Effect.void,
  delete: () => Effect.void,
  accounts: () => Effect.succeed([])
})

/**
 * A keyring whose every operation fails, to test degradation (and to stand for a locked or absent keyring).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFailing = (
  reason: KeyringError["reason"] = "Unavailable",
  description = "no keyring backend is available"
): Layer.Layer<Keyring> => {
  const fail = Effect.fail(new KeyringError({ reason, backend: "failing", description }))
  return Layer.succeed(Keyring, {
    backend: "failing",
    get: () => fail,
    set: () => fail,
    delete: () => fail,
    accounts: () => fail
  })
}
