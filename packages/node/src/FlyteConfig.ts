/**
 * Flyte's client configuration: the `admin.*` section of flytectl's YAML file and flytekit's `FLYTE_*`
 * environment variables, read through Effect's `Config` (one `ConfigProvider` per source), merged with the
 * environment winning.
 *
 * | option | file (`admin.`) | environment |
 * | --- | --- | --- |
 * | endpoint (`dns:///` stripped) | `endpoint` | `FLYTE_PLATFORM_URL` |
 * | insecure | `insecure` | `FLYTE_PLATFORM_INSECURE` |
 * | insecureSkipVerify | `insecureSkipVerify` | `FLYTE_PLATFORM_INSECURE_SKIP_VERIFY` |
 * | caCertFilePath | `caCertFilePath` | `FLYTE_PLATFORM_CA_CERT_FILE_PATH` |
 * | httpProxyUrl | `httpProxyURL` | `FLYTE_PLATFORM_HTTP_PROXY_URL` |
 * | authMode | `authType` | `FLYTE_CREDENTIALS_AUTH_MODE` |
 * | clientId | `clientId` | `FLYTE_CREDENTIALS_CLIENT_ID` |
 * | client secret file | `clientSecretLocation` | `FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION` |
 * | client secret variable | `clientSecretEnvVar` | `FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR` |
 * | inline client secret | – | `FLYTE_CREDENTIALS_CLIENT_SECRET` |
 * | scopes | `scopes` | `FLYTE_CREDENTIALS_SCOPES` |
 * | audience | `audience` | `FLYTE_CREDENTIALS_AUDIENCE` |
 * | command | `command` | `FLYTE_CREDENTIALS_COMMAND` |
 * | proxyCommand | `proxyCommand` | `FLYTE_CREDENTIALS_PROXY_COMMAND` |
 * | authorizationHeader | `authorizationHeader` | – |
 * | authorizationServerUrl | `authorizationServerUrl` | – |
 * | pkceTimeout | `pkceConfig.timeout` | – |
 * | deviceFlowTimeout, devicePollInterval | `deviceFlowConfig.timeout`, `deviceFlowConfig.pollInterval` | – |
 *
 * Booleans accept true/false, 1/0, on/off, yes/no (any case). Scopes are a YAML list or a comma/space separated
 * string. Commands are a YAML list, or a string holding a JSON array or words separated by white space. Auth modes
 * match case-insensitively, with flytekit's aliases. The client secret comes from the variable named by
 * `clientSecretEnvVar`, else the file at `clientSecretLocation` (trimmed), else `FLYTE_CREDENTIALS_CLIENT_SECRET`,
 * and is `Redacted` from the moment it is read. Without an explicit auth mode a client secret selects
 * `ClientSecret` (and nothing selects `Pkce`); an explicit mode is never overridden by a secret.
 *
 * @since 0.1.0
 */
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as AuthMode from "@flyte-auth/core/AuthMode"
import { normalizeEndpoint } from "@flyte-auth/core/Credentials"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as YamlModule from "yaml"
import { errorMessage } from "./internal/optionalModule.js"

/**
 * The resolved Flyte client options. An option that neither source sets is absent (lists too), so a caller can
 * layer its own overrides on top with `??`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlyteOptions {
  /** The admin endpoint (`host:port` or a URL), with `dns:///` stripped. */
  readonly endpoint?: string | undefined
  /** Plain-text gRPC (no TLS) to the admin. */
  readonly insecure: boolean
  readonly insecureSkipVerify: boolean
  readonly caCertFilePath?: string | undefined
  readonly httpProxyUrl?: string | undefined
  /** The auth mode: explicit, else `ClientSecret` when a client secret is configured, else `Pkce`. */
  readonly authMode: AuthMode.AuthMode
  /** Whether `authMode` was configured explicitly (rather than inferred). */
  readonly authModeExplicit: boolean
  readonly clientId?: string | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Where the client secret came from (never the secret itself). */
  readonly clientSecretSource?: string | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly audience?: string | undefined
  /** The External Command flow's command (argv). */
  readonly command?: ReadonlyArray<string> | undefined
  /** The command that prints the `proxy-authorization` token (argv). */
  readonly proxyCommand?: ReadonlyArray<string> | undefined
  /** The gRPC metadata key for the token, when the config overrides the server's. */
  readonly authorizationHeader?: string | undefined
  /** The IdP's issuer URL, whose discovery document replaces the admin's OAuth metadata (flytectl's key). */
  readonly authorizationServerUrl?: string | undefined
  /** `admin.pkceConfig.timeout`: how long to wait for the browser login. */
  readonly pkceTimeout?: Duration.Duration | undefined
  /** `admin.deviceFlowConfig.timeout`: how long to wait for the device approval. */
  readonly deviceFlowTimeout?: Duration.Duration | undefined
  /** `admin.deviceFlowConfig.pollInterval`. */
  readonly devicePollInterval?: Duration.Duration | undefined
  /** The config file that was read, if any. */
  readonly configFile?: string | undefined
}

/**
 * Options of `load` and `fromSources`. `clientSecretEnvVar` and `clientSecretLocation` given here beat both
 * sources.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadOptions {
  /** The config file; else the first one of `configSearch`'s order. */
  readonly configFile?: string | undefined
  /**
   * Where to look for the config file when `configFile` is not given (see `configFiles`): `"flyte1"` (default,
   * flytectl's order) or `"flyte2"` (the order of Flyte 2's SDK).
   */
  readonly configSearch?: ConfigSearch | undefined
  /** The directory the `"flyte2"` search starts in (default `process.cwd()`). */
  readonly cwd?: string | undefined
  /** The home directory of the searches (default `os.homedir()`). */
  readonly home?: string | undefined
  /** The environment; else the current `ConfigProvider` (by default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  readonly clientSecretEnvVar?: string | undefined
  readonly clientSecretLocation?: string | undefined
}

/**
 * The default config file, `~/.flyte/config.yaml`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultConfigFile = (): string => Path.join(Os.homedir(), ".flyte", "config.yaml")

/**
 * The config-file search orders.
 *
 * @since 0.2.0
 * @category models
 */
export type ConfigSearch = "flyte1" | "flyte2"

/**
 * A place a config file may be: `required` when a variable named it (then a missing file is an error), else it is
 * skipped when it does not exist.
 *
 * @since 0.2.0
 * @category models
 */
export interface ConfigCandidate {
  readonly path: string
  readonly required: boolean
  /** Where the path came from, for messages: `"FLYTECTL_CONFIG"`, `"default"`, ... */
  readonly origin: string
}

/**
 * The config files searched, in order; the first one that exists is read.
 *
 * - `"flyte1"` (flytectl, flytekit): `$FLYTECTL_CONFIG`, else `~/.flyte/config.yaml`.
 * - `"flyte2"` (Flyte 2's `flyte` SDK): `./config.yaml`, `./.flyte/config.yaml`, `<git root>/.flyte/config.yaml`,
 *   `$UCTL_CONFIG`, `$FLYTECTL_CONFIG`, `~/.union/config.yaml`, `~/.flyte/config.yaml`.
 *
 * `gitRoot` is the nearest directory at or above `cwd` holding `.git`, if any.
 *
 * @since 0.2.0
 * @category utils
 */
export const configFiles = (
  search: ConfigSearch,
  options: {
    readonly env: (name: string) => string | undefined
    readonly cwd: string
    readonly gitRoot: string | undefined
    readonly home: string
  }
): ReadonlyArray<ConfigCandidate> => {
  const fromEnv = (name: string): Array<ConfigCandidate> => {
    const value = options.env(name)?.trim()
    return value === undefined || value === "" ? [] : [{ path: value, required: true, origin: name }]
  }
  const home = (...parts: Array<string>): ConfigCandidate => ({
    path: Path.join(options.home, ...parts),
    required: false,
    origin: "default"
  })
  if (search === "flyte1") {
    const env = fromEnv("FLYTECTL_CONFIG")
    return env.length > 0 ? env : [home(".flyte", "config.yaml")]
  }
  const local = (dir: string, ...parts: Array<string>): ConfigCandidate => ({
    path: Path.join(dir, ...parts),
    required: false,
    origin: "search"
  })
  return [
    local(options.cwd, "config.yaml"),
    local(options.cwd, ".flyte", "config.yaml"),
    ...(options.gitRoot === undefined || options.gitRoot === options.cwd
      ? []
      : [local(options.gitRoot, ".flyte", "config.yaml")]),
    ...fromEnv("UCTL_CONFIG"),
    ...fromEnv("FLYTECTL_CONFIG"),
    home(".union", "config.yaml"),
    home(".flyte", "config.yaml")
  ]
}

/** The nearest directory at or above `dir` that holds `.git` (a directory, or a file in a worktree). */
const findGitRoot = async (dir: string): Promise<string | undefined> => {
  for (let current = Path.resolve(dir);;) {
    try {
      await Fs.stat(Path.join(current, ".git"))
      return current
    } catch {
      const parent = Path.dirname(current)
      if (parent === current) return undefined
      current = parent
    }
  }
}

const configError = (description: string, cause?: unknown, setting?: string) =>
  new AuthenticationError({ reason: "Config", description, cause, setting })

// ---------------------------------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------------------------------

/** A raw value: a scalar (as a string) or a YAML list (as strings). */
type Raw = { readonly _tag: "Scalar"; readonly value: string } | {
  readonly _tag: "List"
  readonly value: Array<string>
}

interface Source {
  /** How a key is named to the user, e.g. `admin.insecure in /etc/flyte/config.yaml`. */
  readonly describe: (key: string) => string
  readonly read: (key: string) => Effect.Effect<Option.Option<Raw>, AuthenticationError>
}

/** Reads a scalar, or (when the value is a list) the list, through the source's `ConfigProvider`. */
const makeSource = (provider: ConfigProvider.ConfigProvider, describe: (key: string) => string): Source => ({
  describe,
  read: (key) => {
    const path = key.split(".")
    const nest = <A>(config: Config.Config<A>) =>
      path.slice(0, -1).reduceRight((c, name) => Config.nested(c, name), config)
    const name = path[path.length - 1]
    const scalar = nest(Config.string(name)).pipe(Config.map((value): Raw => ({ _tag: "Scalar", value })))
    const list = nest(Config.array(Config.string(), name)).pipe(
      Config.map((value): Raw => ({ _tag: "List", value }))
    )
    return Effect.withConfigProvider(Config.option(Config.orElse(scalar, () => list)), provider).pipe(
      Effect.map(Option.filter((raw) => raw._tag === "List" ? raw.value.length > 0 : raw.value.trim() !== "")),
      Effect.mapError((error) => configError(`cannot read ${describe(key)}: ${String(error)}`, error))
    )
  }
})

const environmentSource = (provider: ConfigProvider.ConfigProvider): Source => makeSource(provider, (key) => key)

// The YAML parser (70-odd modules) is loaded only when there is a config file to read. `yaml` is CommonJS: a
// bundler's chunk of it may export only `default`.
const parseYaml = (text: string, file: string): Effect.Effect<Record<string, unknown>, AuthenticationError> =>
  Effect.flatMap(
    Effect.promise(() => import("yaml")),
    (Yaml) => parseYamlWith((Yaml as { default?: typeof YamlModule }).default ?? Yaml, text, file)
  )

const parseYamlWith = (
  Yaml: typeof YamlModule,
  text: string,
  file: string
): Either.Either<Record<string, unknown>, AuthenticationError> => {
  let document: unknown
  try {
    // Warnings (e.g. an unknown tag) would go to stderr with an excerpt of the file: errors only.
    document = Yaml.parse(text, { logLevel: "error" })
  } catch (cause) {
    return Either.left(configError(`malformed YAML in ${file}: ${errorMessage(cause)}`, cause))
  }
  if (document === null || document === undefined) return Either.right({})
  if (typeof document !== "object" || Array.isArray(document)) {
    return Either.left(configError(`${file} is not a YAML mapping`))
  }
  const admin = (document as Record<string, unknown>).admin
  if (admin === undefined || admin === null) return Either.right({})
  if (typeof admin !== "object" || Array.isArray(admin)) {
    return Either.left(configError(`admin in ${file} is not a mapping`))
  }
  const problem = checkShape(admin)
  if (problem !== undefined) return Either.left(configError(`admin${problem.path} in ${file} ${problem.why}`))
  const mistyped = checkTypes(admin as Record<string, unknown>)
  if (mistyped !== undefined) return Either.left(configError(`admin.${mistyped.key} in ${file} ${mistyped.why}`))
  // Only the admin section is read: the rest of a flytectl config (storage, logger, ...) is none of our business.
  return Either.right({ admin })
}

/** What each key of the admin section that flyte-auth reads must hold (other keys are not ours to judge). */
type Expected = "string" | "boolean" | "list" | "mapping"

const expectedTypes: Record<string, Expected> = {
  endpoint: "string",
  insecure: "boolean",
  insecureSkipVerify: "boolean",
  caCertFilePath: "string",
  httpProxyURL: "string",
  authType: "string",
  clientId: "string",
  clientSecretLocation: "string",
  clientSecretEnvVar: "string",
  scopes: "list",
  audience: "string",
  command: "list",
  proxyCommand: "list",
  authorizationHeader: "string",
  authorizationServerUrl: "string",
  pkceConfig: "mapping",
  "pkceConfig.timeout": "string",
  deviceFlowConfig: "mapping",
  "deviceFlowConfig.timeout": "string",
  "deviceFlowConfig.pollInterval": "string"
}

const expectedText: Record<Expected, string> = {
  string: "a string",
  boolean: "a boolean (true/false, 1/0, on/off or yes/no)",
  list: "a list of strings or one string",
  mapping: "a mapping"
}

const typeOf = (value: unknown): string =>
  Array.isArray(value) ? "a list" : typeof value === "object" ? "a mapping" : `a ${typeof value}`

/**
 * The first key of the admin section whose YAML value has the wrong type, and why. Every key is judged the same
 * way: a YAML number or mapping where a string or list belongs is refused, never turned into a string or dropped
 * (`scopes: 5`, `scopes: {a: 1}`). A key without a value (YAML null) counts as absent.
 */
const checkTypes = (
  admin: Record<string, unknown>
): { readonly key: string; readonly why: string } | undefined => {
  for (const [key, expected] of Object.entries(expectedTypes)) {
    const path = key.split(".")
    const parent = path.length === 1 ? admin : admin[path[0]]
    if (typeof parent !== "object" || parent === null || Array.isArray(parent)) continue
    const value = (parent as Record<string, unknown>)[path[path.length - 1]]
    if (value === undefined || value === null) continue
    const ok = expected === "string"
      ? typeof value === "string"
      : expected === "boolean"
      ? typeof value === "boolean" || typeof value === "string" || typeof value === "number"
      : expected === "list"
      ? typeof value === "string" || (Array.isArray(value) && value.every((item) => typeof item === "string"))
      : typeof value === "object" && !Array.isArray(value)
    if (ok) continue
    const got = Array.isArray(value) && expected === "list"
      ? "a list holding something other than strings"
      : `${typeOf(value)}${typeof value === "number" ? ` (${value}; quote it if it is meant as text)` : ""}`
    return { key, why: `must be ${expectedText[expected]}, not ${got}` }
  }
  return undefined
}

/** How deep the admin section may nest: flytectl's is two levels deep. */
const maxDepth = 32

/**
 * Why the admin section cannot be read, if it cannot, and where. Effect's `ConfigProvider.fromJson` never returns
 * for a list directly inside a list (`command: [[a]]`) and overflows the stack on a section that refers to itself
 * through YAML anchors and aliases (`admin: &a {pkceConfig: *a}`); neither is a valid setting anyway.
 */
const checkShape = (root: object): { readonly path: string; readonly why: string } | undefined => {
  const ancestors = new Set<object>()
  const visit = (
    value: unknown,
    path: string,
    inList: boolean
  ): { readonly path: string; readonly why: string } | undefined => {
    if (typeof value !== "object" || value === null) return undefined
    if (ancestors.has(value)) return { path, why: "refers to itself (a YAML alias inside its own anchor)" }
    if (ancestors.size > maxDepth) return { path, why: `nests deeper than ${maxDepth} levels` }
    const list = Array.isArray(value)
    if (list && inList) return { path, why: "holds a list inside a list" }
    ancestors.add(value)
    for (const [key, child] of Object.entries(value)) {
      const problem = visit(child, list ? `${path}[${key}]` : `${path}.${key}`, list)
      if (problem !== undefined) return problem
    }
    ancestors.delete(value)
    return undefined
  }
  return visit(root, "", false)
}

// ---------------------------------------------------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------------------------------------------------

const parseBoolean = (text: string): Option.Option<boolean> => {
  const value = text.trim().toLowerCase()
  if (["true", "1", "on", "yes"].includes(value)) return Option.some(true)
  if (["false", "0", "off", "no"].includes(value)) return Option.some(false)
  return Option.none()
}

const splitScopes = (values: ReadonlyArray<string>): Array<string> =>
  values.flatMap((value) => value.split(/[\s,]+/)).filter((scope) => scope !== "")

const parseCommand = (raw: Raw, where: string): Either.Either<Array<string>, AuthenticationError> =>
  raw._tag === "List" ? Either.right([...raw.value]) : splitCommand(raw.value, where)

/**
 * Splits a command written as one string, as Flyte's config and the CLI accept it: a JSON array of strings, or
 * whitespace-separated words (no shell quoting). `where` names the setting in the error's description, `setting`
 * (when given) is the error's `AuthenticationError.setting`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const splitCommand = (
  text: string,
  where: string,
  setting?: string
): Either.Either<Array<string>, AuthenticationError> => {
  const trimmed = text.trim()
  if (trimmed.startsWith("[")) {
    try {
      const parsed = JSON.parse(trimmed) as unknown
      if (Array.isArray(parsed) && parsed.every((item) => typeof item === "string")) return Either.right(parsed)
    } catch {
      // reported below
    }
    return Either.left(configError(`${where} is not a JSON array of strings`, undefined, setting))
  }
  return Either.right(trimmed === "" ? [] : trimmed.split(/\s+/))
}

const goDurationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }

/** A Go duration (`90s`, `5m`, `1h30m`, `1.5s`), as flytectl writes them; a bare number is seconds. */
const parseGoDuration = (text: string): Option.Option<Duration.Duration> => {
  const value = text.trim()
  if (/^\d+(\.\d+)?$/.test(value)) return Option.some(Duration.seconds(Number(value)))
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(value)) return Option.none()
  let millis = 0
  for (const [, amount, , unit] of value.matchAll(/(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    millis += Number(amount) * goDurationUnits[unit]
  }
  return Option.some(Duration.millis(millis))
}

// ---------------------------------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------------------------------

interface Key {
  readonly file?: string
  readonly env?: string
}

const resolve = Effect.fnUntraced(function*(
  file: Source | undefined,
  provider: ConfigProvider.ConfigProvider,
  options:
    & { readonly configFile?: string | undefined }
    & Pick<LoadOptions, "clientSecretEnvVar" | "clientSecretLocation">
) {
  const env = environmentSource(provider)
  /** The environment's value, else the file's, with a description of where it came from. */
  const lookup = (key: Key) =>
    Effect.gen(function*() {
      if (key.env !== undefined) {
        const value = yield* env.read(key.env)
        if (Option.isSome(value)) return Option.some({ raw: value.value, where: env.describe(key.env) })
      }
      if (key.file !== undefined && file !== undefined) {
        const value = yield* file.read(`admin.${key.file}`)
        if (Option.isSome(value)) return Option.some({ raw: value.value, where: file.describe(`admin.${key.file}`) })
      }
      return Option.none<{ raw: Raw; where: string }>()
    })

  const scalar = (raw: Raw, where: string) =>
    raw._tag === "Scalar"
      ? Effect.succeed(raw.value.trim())
      : Effect.fail(configError(`${where} must be a single value`))

  const string = (key: Key) =>
    Effect.flatMap(lookup(key), (found) =>
      Option.isNone(found)
        ? Effect.succeed(undefined)
        : scalar(found.value.raw, found.value.where))

  const boolean = (key: Key) =>
    Effect.flatMap(lookup(key), (found) => {
      if (Option.isNone(found)) return Effect.succeed(false)
      const { raw, where } = found.value
      return Effect.flatMap(scalar(raw, where), (text) =>
        Option.match(parseBoolean(text), {
          onNone: () =>
            Effect.fail(configError(`${where}: "${text}" is not a boolean (use true/false, 1/0, on/off or yes/no)`)),
          onSome: Effect.succeed
        }))
    })

  const list = (key: Key, parse: (raw: Raw, where: string) => Either.Either<Array<string>, AuthenticationError>) =>
    Effect.flatMap(lookup(key), (found) =>
      Option.isNone(found)
        ? Effect.succeed(undefined)
        : Effect.map(parse(found.value.raw, found.value.where), (values) => values.length === 0 ? undefined : values))

  const duration = (key: Key) =>
    Effect.flatMap(lookup(key), (found) => {
      if (Option.isNone(found)) return Effect.succeed(undefined)
      const { raw, where } = found.value
      return Effect.flatMap(scalar(raw, where), (text) =>
        Option.match(parseGoDuration(text), {
          onNone: () => Effect.fail(configError(`${where}: "${text}" is not a duration (e.g. 90s, 5m, 1h30m)`)),
          onSome: Effect.succeed
        }))
    })

  const endpoint = yield* string({ file: "endpoint", env: "FLYTE_PLATFORM_URL" })
  const insecure = yield* boolean({ file: "insecure", env: "FLYTE_PLATFORM_INSECURE" })
  const insecureSkipVerify = yield* boolean({ file: "insecureSkipVerify", env: "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY" })
  const caCertFilePath = yield* string({ file: "caCertFilePath", env: "FLYTE_PLATFORM_CA_CERT_FILE_PATH" })
  const httpProxyUrl = yield* string({ file: "httpProxyURL", env: "FLYTE_PLATFORM_HTTP_PROXY_URL" })
  const clientId = yield* string({ file: "clientId", env: "FLYTE_CREDENTIALS_CLIENT_ID" })
  const scopes = yield* list(
    { file: "scopes", env: "FLYTE_CREDENTIALS_SCOPES" },
    (raw) => Either.right(splitScopes(raw._tag === "List" ? raw.value : [raw.value]))
  )
  const audience = yield* string({ file: "audience", env: "FLYTE_CREDENTIALS_AUDIENCE" })
  const command = yield* list({ file: "command", env: "FLYTE_CREDENTIALS_COMMAND" }, parseCommand)
  const proxyCommand = yield* list({ file: "proxyCommand", env: "FLYTE_CREDENTIALS_PROXY_COMMAND" }, parseCommand)
  const authorizationHeader = yield* string({ file: "authorizationHeader" })
  const authorizationServerUrl = yield* string({ file: "authorizationServerUrl" })
  const pkceTimeout = yield* duration({ file: "pkceConfig.timeout" })
  const deviceFlowTimeout = yield* duration({ file: "deviceFlowConfig.timeout" })
  const devicePollInterval = yield* duration({ file: "deviceFlowConfig.pollInterval" })

  // The client secret: the variable named by clientSecretEnvVar > the file at clientSecretLocation > inline.
  let clientSecret: Redacted.Redacted<string> | undefined
  let clientSecretSource: string | undefined
  const secretEnvVar = options.clientSecretEnvVar ??
    (yield* string({ file: "clientSecretEnvVar", env: "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR" }))
  if (secretEnvVar !== undefined) {
    const value = yield* readSecretVariable(provider, secretEnvVar)
    if (value !== undefined) {
      clientSecret = value
      clientSecretSource = `the environment variable ${secretEnvVar}`
    }
  }
  const secretLocation = options.clientSecretLocation ??
    (yield* string({ file: "clientSecretLocation", env: "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION" }))
  if (clientSecret === undefined && secretLocation !== undefined) {
    clientSecret = yield* readSecretFile(secretLocation)
    clientSecretSource = `the file ${secretLocation}`
  }
  if (clientSecret === undefined) {
    const inline = yield* readSecretVariable(provider, "FLYTE_CREDENTIALS_CLIENT_SECRET")
    if (inline !== undefined) {
      clientSecret = inline
      clientSecretSource = "FLYTE_CREDENTIALS_CLIENT_SECRET"
    }
  }

  // An explicit mode wins, whatever secret is configured; a secret only chooses the mode when none is given.
  const modeFound = yield* lookup({ file: "authType", env: "FLYTE_CREDENTIALS_AUTH_MODE" })
  let authMode: AuthMode.AuthMode
  if (Option.isSome(modeFound)) {
    const text = yield* scalar(modeFound.value.raw, modeFound.value.where)
    authMode = yield* Either.mapLeft(
      AuthMode.parseEither(text),
      (error) => configError(`${modeFound.value.where}: ${error.description}`)
    )
  } else {
    authMode = clientSecret !== undefined ? "ClientSecret" : "Pkce"
  }

  const result: FlyteOptions = {
    endpoint: endpoint === undefined ? undefined : normalizeEndpoint(endpoint),
    insecure,
    insecureSkipVerify,
    caCertFilePath,
    httpProxyUrl,
    authMode,
    authModeExplicit: Option.isSome(modeFound),
    clientId,
    clientSecret,
    clientSecretSource,
    scopes,
    audience,
    command,
    proxyCommand,
    authorizationHeader,
    authorizationServerUrl,
    pkceTimeout,
    deviceFlowTimeout,
    devicePollInterval,
    configFile: options.configFile
  }
  return result
})

/** Reads a secret from the environment straight into a `Redacted`. */
const readSecretVariable = (provider: ConfigProvider.ConfigProvider, name: string) =>
  Effect.withConfigProvider(Config.option(Config.redacted(name)), provider).pipe(
    Effect.map((value) => Option.isSome(value) && Redacted.value(value.value).trim() !== "" ? value.value : undefined),
    Effect.mapError((error) => configError(`cannot read the environment variable ${name}`, error, "clientSecretEnvVar"))
  )

const readSecretFile = (location: string) =>
  Effect.tryPromise({
    try: async () => Redacted.make((await Fs.readFile(expandHome(location), "utf8")).trim()),
    catch: (cause) =>
      configError(
        `cannot read the client secret file ${location}: ${errorMessage(cause)}`,
        cause,
        "clientSecretLocation"
      )
  }).pipe(
    Effect.filterOrFail(
      (secret) => Redacted.value(secret) !== "",
      () => configError(`the client secret file ${location} is empty`, undefined, "clientSecretLocation")
    )
  )

const expandHome = (path: string) =>
  path === "~" || path.startsWith("~/") ? Path.join(Os.homedir(), path.slice(1)) : path

const envProvider = (env: LoadOptions["env"]): Effect.Effect<ConfigProvider.ConfigProvider> =>
  env === undefined
    ? Effect.configProviderWith(Effect.succeed)
    : Effect.succeed(
      ConfigProvider.fromMap(
        new Map(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined))
      )
    )

// ---------------------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Resolves the options from a config file's text (or none) and an environment: the pure core of `load`, for
 * tests and for callers that found the file themselves. Only a client secret file is read from disk.
 *
 * @example
 * ```ts
 * import { FlyteConfig } from "@flyte-auth/node"
 * FlyteConfig.fromSources("admin:\n  endpoint: dns:///flyte.example.com\n  authType: Pkce\n", {
 *   FLYTE_CREDENTIALS_CLIENT_ID: "my-app"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSources = (
  yamlText: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  options: Omit<LoadOptions, "env"> = {}
): Effect.Effect<FlyteOptions, AuthenticationError> =>
  Effect.gen(function*() {
    const fileName = options.configFile ?? "the Flyte config"
    const file = yamlText === undefined ? undefined : yield* Effect.map(
      parseYaml(yamlText, fileName),
      (document) => makeSource(ConfigProvider.fromJson(document), (key) => `${key} in ${fileName}`)
    )
    return yield* resolve(file, yield* envProvider(env), options)
  })

/**
 * Loads the Flyte configuration: the config file (`configFile`, else the first file of `configFiles` that exists,
 * in the order of `configSearch`) and the environment (`env`, else the current `ConfigProvider`).
 * A missing explicit file, malformed YAML, a bad value or an unreadable secret file is an
 * `AuthenticationError` with reason `Config` that names the file or key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load: (options?: LoadOptions) => Effect.Effect<FlyteOptions, AuthenticationError> = Effect.fn(
  "FlyteConfig.load"
)(function*(options: LoadOptions = {}) {
  const provider = yield* envProvider(options.env)
  const variable = (name: string) =>
    Effect.withConfigProvider(Config.option(Config.nonEmptyString(name)), provider).pipe(
      Effect.map(Option.getOrUndefined),
      Effect.orElseSucceed(() => undefined)
    )
  const vars = { UCTL_CONFIG: yield* variable("UCTL_CONFIG"), FLYTECTL_CONFIG: yield* variable("FLYTECTL_CONFIG") }
  const search = options.configSearch ?? "flyte1"
  const cwd = options.cwd ?? process.cwd()
  const candidates: ReadonlyArray<ConfigCandidate> = options.configFile !== undefined
    ? [{ path: options.configFile, required: true, origin: "configFile" }]
    : configFiles(search, {
      env: (name) => vars[name as keyof typeof vars],
      cwd,
      gitRoot: search === "flyte2" ? yield* Effect.promise(() => findGitRoot(cwd)) : undefined,
      home: options.home ?? Os.homedir()
    })
  let path = defaultConfigFile()
  let text: string | undefined
  for (const candidate of candidates) {
    path = expandHome(candidate.path)
    text = yield* Effect.tryPromise({ try: () => Fs.readFile(path, "utf8"), catch: (cause) => cause }).pipe(
      Effect.catchAll((cause) =>
        !candidate.required && (cause as { code?: unknown }).code === "ENOENT"
          ? Effect.succeed(undefined)
          : Effect.fail(
            configError(
              `cannot read the Flyte config ${path}${
                candidate.origin.endsWith("_CONFIG") ? ` (named by ${candidate.origin})` : ""
              }: ${errorMessage(cause)}`,
              cause
            )
          )
      )
    )
    if (text !== undefined) break
  }
  const file = text === undefined ? undefined : yield* Effect.map(
    parseYaml(text, path),
    (document) => makeSource(ConfigProvider.fromJson(document), (key) => `${key} in ${path}`)
  )
  return yield* resolve(file, provider, {
    configFile: text === undefined ? undefined : path,
    clientSecretEnvVar: options.clientSecretEnvVar,
    clientSecretLocation: options.clientSecretLocation
  })
})
