/**
 * Keyrings for Node: the OS keyring through keytar or `@napi-rs/keyring`, a plain-file store, and an automatic
 * choice between them that falls back to memory.
 *
 * The native modules are optional dependencies, loaded on first use: importing this module never fails
 * because one of them is missing; using that backend then fails with a `KeyringError` of reason `Unavailable`.
 *
 * @since 0.1.0
 */
import * as Keyring from "@flyte-auth/core/Keyring"
import { KeyringError } from "@flyte-auth/core/Keyring"
import * as Policies from "@flyte-auth/core/Policies"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { randomUUID } from "node:crypto"
import * as Os from "node:os"
import * as Path from "node:path"
import * as FileStore from "./internal/fileStore.js"
import { errorMessage, importOptional } from "./internal/optionalModule.js"

/**
 * The names of the keyring backends, as accepted by `layerFromName` (and the CLI's `--keyring`).
 *
 * @since 0.1.0
 * @category models
 */
export type BackendName = "auto" | "keytar" | "napi" | "file" | "memory" | "none"

/**
 * @since 0.1.0
 * @category constants
 */
export const backendNames: ReadonlyArray<BackendName> = ["auto", "keytar", "napi", "file", "memory", "none"]

/**
 * @since 0.1.0
 * @category guards
 */
export const isBackendName = (u: unknown): u is BackendName =>
  typeof u === "string" && (backendNames as ReadonlyArray<string>).includes(u)

/**
 * A keyring in memory (re-exported from `@flyte-auth/core/Keyring`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Keyring.Keyring> = Keyring.layerMemory

/**
 * A keyring that stores nothing (re-exported from `@flyte-auth/core/Keyring`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNone: Layer.Layer<Keyring.Keyring> = Keyring.layerNone

// ---------------------------------------------------------------------------------------------------------------------
// OS keyrings
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Sorts a native keyring error: no D-Bus / no Secret Service / no collection → `Unavailable`, a locked
 * collection → `Locked`, anything else → `Failure`.
 */
const classify = (backend: string, action: string, cause: unknown): KeyringError => {
  const message = errorMessage(cause)
  const reason: KeyringError["reason"] = /\block|unlock/i.test(message)
    ? "Locked"
    : /d-?bus|autolaunch|(could not|failed to) connect|connection refused|no such file|secret ?service|org\.freedesktop|no such (interface|object)|does not exist|no result found|not (available|supported)|unavailable|platform (failure|storage)|couldn't access/i
        .test(message)
    ? "Unavailable"
    : "Failure"
  return new KeyringError({ reason, backend, description: `${action} failed: ${message}`, cause })
}

/** A native call, bounded by `Policies.keyringTimeout` (a Secret Service waiting on a prompt must not hang us). */
const native = <A>(
  backend: string,
  action: string,
  f: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, KeyringError> =>
  Effect.tryPromise({ try: f, catch: (cause) => classify(backend, action, cause) }).pipe(
    Effect.timeoutFail({
      duration: Policies.keyringTimeout,
      onTimeout: () =>
        new KeyringError({
          reason: "Unavailable",
          backend,
          description: `${action} did not answer within ${
            Duration.format(Policies.keyringTimeout)
          } (is the keyring waiting for an unlock prompt?)`
        })
    })
  )

const traced = (service: Keyring.Keyring.Service): Keyring.Keyring.Service => {
  const attributes = { backend: service.backend }
  return {
    backend: service.backend,
    get: (s, a) => Effect.withSpan(service.get(s, a), "NodeKeyring.get", { attributes }),
    set: (s, a, v) => Effect.withSpan(service.set(s, a, v), "NodeKeyring.set", { attributes }),
    delete: (s, a) => Effect.withSpan(service.delete(s, a), "NodeKeyring.delete", { attributes }),
    accounts: (s) => Effect.withSpan(service.accounts(s), "NodeKeyring.accounts", { attributes })
  }
}

interface KeytarModule {
  readonly getPassword: (service: string, account: string) => Promise<string | null>
  readonly setPassword: (service: string, account: string, password: string) => Promise<void>
  readonly deletePassword: (service: string, account: string) => Promise<boolean>
  readonly findCredentials: (service: string) => Promise<Array<{ account: string; password: string }>>
}

const loadKeytar: Effect.Effect<KeytarModule, KeyringError> = importOptional("keytar").pipe(
  Effect.flatMap((module) => {
    const candidate = (module as { default?: unknown }).default ?? module
    return typeof (candidate as Partial<KeytarModule>).getPassword === "function"
      ? Effect.succeed(candidate as KeytarModule)
      : Effect.fail(new Error("the module has no getPassword function"))
  }),
  Effect.mapError((cause) =>
    new KeyringError({
      reason: "Unavailable",
      backend: "keytar",
      description: `keytar cannot be loaded (install the optional dependency keytar): ${errorMessage(cause)}`,
      cause
    })
  )
)

/**
 * The OS keyring through keytar (libsecret's Secret Service on Linux, Keychain on macOS, Credential Vault on
 * Windows). keytar is loaded on first use. Every call is bounded by `Policies.keyringTimeout`.
 *
 * On Linux a locked collection fails writes with reason `Locked`, but keytar (libsecret) answers reads of a locked
 * collection with "no entry" rather than an error, so a read alone cannot tell locked from empty.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeKeytar: Effect.Effect<Keyring.Keyring.Service> = Effect.map(
  Effect.cached(loadKeytar),
  (load) =>
    traced({
      backend: "keytar",
      get: (service, account) =>
        load.pipe(
          Effect.flatMap((keytar) => native("keytar", "read", () => keytar.getPassword(service, account))),
          Effect.map(Option.fromNullable)
        ),
      set: (service, account, value) =>
        Effect.flatMap(load, (keytar) => native("keytar", "write", () => keytar.setPassword(service, account, value))),
      delete: (service, account) =>
        Effect.flatMap(
          load,
          (keytar) => Effect.asVoid(native("keytar", "delete", () => keytar.deletePassword(service, account)))
        ),
      accounts: (service) =>
        Effect.flatMap(load, (keytar) =>
          Effect.map(
            native("keytar", "list", () => keytar.findCredentials(service)),
            (found) => found.map((credential) => credential.account)
          ))
    })
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerKeytar: Layer.Layer<Keyring.Keyring> = Layer.effect(Keyring.Keyring, makeKeytar)

interface NapiEntry {
  getPassword(signal?: AbortSignal): Promise<string | null>
  setPassword(password: string, signal?: AbortSignal): Promise<void>
  deletePassword(signal?: AbortSignal): Promise<boolean>
}

interface NapiModule {
  readonly AsyncEntry: new(service: string, account: string, options?: unknown) => NapiEntry
  readonly findCredentialsAsync?: (
    service: string,
    target?: string | null,
    signal?: AbortSignal
  ) => Promise<Array<{ account: string; password: string }>>
}

const loadNapi: Effect.Effect<NapiModule, KeyringError> = importOptional("@napi-rs/keyring").pipe(
  Effect.mapError((cause) =>
    new KeyringError({
      reason: "Unavailable",
      backend: "napi",
      description: `@napi-rs/keyring cannot be loaded (install the optional dependency @napi-rs/keyring): ${
        errorMessage(cause)
      }`,
      cause
    })
  ),
  Effect.flatMap((module) => {
    const napi = module as Partial<NapiModule> & { readonly LinuxStore?: unknown }
    if (typeof napi.AsyncEntry !== "function") {
      return Effect.fail(
        new KeyringError({ reason: "Unavailable", backend: "napi", description: "@napi-rs/keyring has no AsyncEntry" })
      )
    }
    // Versions without store selection silently fall back to the kernel keyring on Linux, which does not
    // keep anything across processes reliably: refuse them rather than lose credentials.
    if (process.platform === "linux" && napi.LinuxStore === undefined) {
      return Effect.fail(
        new KeyringError({
          reason: "Unavailable",
          backend: "napi",
          description: "this @napi-rs/keyring cannot be pinned to the Secret Service (2.1 or later is needed)"
        })
      )
    }
    return Effect.succeed(napi as NapiModule)
  })
)

/** On Linux the entry is pinned to the Secret Service: no silent fallback to the kernel keyring. */
const napiEntryOptions = process.platform === "linux" ? { linux: { store: "secret-service" } } : undefined

/**
 * The OS keyring through `@napi-rs/keyring` (keyring-rs). On Linux every entry is pinned to the Secret Service
 * (`{ linux: { store: "secret-service" } }`): the library's default fallback, the kernel keyring, lives in
 * kernel memory and does not reliably outlive the session, so without a Secret Service this backend is
 * `Unavailable` instead.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeNapi: Effect.Effect<Keyring.Keyring.Service> = Effect.map(Effect.cached(loadNapi), (load) => {
  const entry = (service: string, account: string) =>
    Effect.flatMap(load, (napi) =>
      Effect.try({
        try: () => new napi.AsyncEntry(service, account, napiEntryOptions),
        catch: (cause) => classify("napi", "opening the entry", cause)
      }))
  return traced({
    backend: "napi",
    get: (service, account) =>
      entry(service, account).pipe(
        Effect.flatMap((e) => native("napi", "read", (signal) => e.getPassword(signal))),
        Effect.map(Option.fromNullable)
      ),
    set: (service, account, value) =>
      Effect.flatMap(entry(service, account), (e) => native("napi", "write", (signal) => e.setPassword(value, signal))),
    delete: (service, account) =>
      Effect.flatMap(
        entry(service, account),
        (e) => Effect.asVoid(native("napi", "delete", (signal) => e.deletePassword(signal)))
      ),
    accounts: (service) =>
      Effect.flatMap(load, (napi) => {
        const find = napi.findCredentialsAsync
        return find === undefined
          ? Effect.fail(
            new KeyringError({
              reason: "Unavailable",
              backend: "napi",
              description: "this @napi-rs/keyring cannot list credentials (findCredentialsAsync is missing)"
            })
          )
          : Effect.map(
            native("napi", "list", (signal) => find(service, null, signal)),
            (found) => found.map((credential) => credential.account)
          )
      })
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerNapi: Layer.Layer<Keyring.Keyring> = Layer.effect(Keyring.Keyring, makeNapi)

// ---------------------------------------------------------------------------------------------------------------------
// Plain files
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The environment variable that moves the file store's directory.
 *
 * @since 0.1.0
 * @category constants
 */
export const credentialsDirEnv = "FLYTE_AUTH_CREDENTIALS_DIR"

/**
 * The file store's directory when neither an argument nor `FLYTE_AUTH_CREDENTIALS_DIR` says otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCredentialsDir = (): string => Path.join(Os.homedir(), ".flyte", "flyte-auth", "credentials")

/**
 * The name of the file that holds an entry (a hash of service and account, so no endpoint shows in a
 * directory listing).
 *
 * @since 0.1.0
 * @category utils
 */
export const fileNameFor: (service: string, account: string) => string = FileStore.fileName

/**
 * A keyring in plain files, for machines without an OS keyring (CI, containers): one JSON file per entry in a
 * 0700 directory (`dir`, else `$FLYTE_AUTH_CREDENTIALS_DIR`, else `~/.flyte/flyte-auth/credentials`), each
 * file 0600 and replaced atomically. Too-open modes are tightened with a warning; anything owned by another
 * user is refused. The secrets are NOT encrypted: this is logged once, when the store is made.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFile = (dir?: string): Effect.Effect<Keyring.Keyring.Service> =>
  Effect.gen(function*() {
    const fromEnv = yield* Config.option(Config.nonEmptyString(credentialsDirEnv)).pipe(
      Effect.orElseSucceed(() => Option.none<string>())
    )
    const resolved = Path.resolve(dir ?? Option.getOrElse(fromEnv, defaultCredentialsDir))
    yield* Keyring.logWarning(
      "Unencrypted",
      `flyte-auth: credentials are stored unencrypted in plain files under ${resolved} (mode 0600)`
    )
    return traced(FileStore.make(resolved))
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (dir?: string): Layer.Layer<Keyring.Keyring> => Layer.effect(Keyring.Keyring, makeFile(dir))

// ---------------------------------------------------------------------------------------------------------------------
// Choosing
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Checks that a keyring really works: writes, reads back and deletes a throwaway entry.
 *
 * @since 0.1.0
 * @category utils
 */
export const probe = (keyring: Keyring.Keyring.Service): Effect.Effect<void, KeyringError> => {
  const account = `probe-${randomUUID()}`
  const value = randomUUID()
  return Effect.gen(function*() {
    yield* keyring.set(Keyring.serviceName, account, value)
    const read = yield* keyring.get(Keyring.serviceName, account)
    if (Option.getOrUndefined(read) !== value) {
      return yield* Effect.fail(
        new KeyringError({
          reason: "Failure",
          backend: keyring.backend,
          description: "an entry written to the keyring could not be read back"
        })
      )
    }
    yield* keyring.delete(Keyring.serviceName, account)
  }).pipe(
    Effect.onError(() => Effect.ignore(keyring.delete(Keyring.serviceName, account))),
    Effect.withSpan("NodeKeyring.probe", { attributes: { backend: keyring.backend } })
  )
}

/**
 * The first OS keyring that passes a `probe`: keytar, then `@napi-rs/keyring`. When neither works (no
 * D-Bus, no Secret Service, no native module) it warns once and keeps credentials in memory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAuto: Effect.Effect<Keyring.Keyring.Service> = Effect.gen(function*() {
  const problems: Array<string> = []
  for (const make of [makeKeytar, makeNapi]) {
    const keyring = yield* make
    const probed = yield* Effect.either(probe(keyring))
    if (probed._tag === "Right") {
      yield* Effect.logDebug(`flyte-auth: using the ${keyring.backend} keyring`)
      return keyring
    }
    problems.push(`${keyring.backend}: ${probed.left.description}`)
  }
  yield* Effect.logWarning(
    `flyte-auth: no OS keyring is usable, credentials are kept in memory for this process only (${problems.join("; ")})`
  )
  return yield* Keyring.makeMemory
}).pipe(Effect.withSpan("NodeKeyring.makeAuto"))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAuto: Layer.Layer<Keyring.Keyring> = Layer.effect(Keyring.Keyring, makeAuto)

/**
 * The keyring layer for a backend name (`auto`, `keytar`, `napi`, `file`, `memory`, `none`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromName = (
  name: BackendName,
  options?: { readonly fileDir?: string | undefined }
): Layer.Layer<Keyring.Keyring> => {
  switch (name) {
    case "auto":
      return layerAuto
    case "keytar":
      return layerKeytar
    case "napi":
      return layerNapi
    case "file":
      return layerFile(options?.fileDir)
    case "memory":
      return layerMemory
    case "none":
      return layerNone
  }
}
