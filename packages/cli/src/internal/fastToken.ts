/**
 * The fast path of `flyte-auth token`: answer from a valid cached token without loading Effect, `@effect/cli`,
 * grpc-js or the flows, so that `flyte-auth token` used as another tool's credential command starts about as fast
 * as `node` itself.
 *
 * It is a read-only peek at what the `Authenticator` would find in the keyring, and it bails out (returns
 * `undefined`, and the full CLI runs) whenever anything is not the plain case: another command or option, `--help`,
 * an endpoint it cannot determine, a keyring other than `file`, `keytar` or `auto`, a missing, unexpected or
 * not-fresh entry, an unreadable or malformed config file, a credentials file with the wrong owner or mode. So
 * the full path still does everything that needs doing (refresh, login, errors, warnings). The constants and
 * rules it mirrors (keyring service name, file names, the entry's JSON, the refresh skew, how the endpoint is
 * resolved) are checked against the real modules by `test/fastToken.test.ts`.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { preParse } from "./argv.js"

/** `Keyring.serviceName` of `@flyte-auth/core`. @internal */
export const serviceName = "flyte-auth"
/** `NodeKeyring.credentialsDirEnv`. @internal */
export const credentialsDirEnv = "FLYTE_AUTH_CREDENTIALS_DIR"
/** `NodeKeyring.defaultCredentialsDir()`. @internal */
export const defaultCredentialsDir = (): string => Path.join(Os.homedir(), ".flyte", "flyte-auth", "credentials")
/** `NodeKeyring.fileNameFor`. @internal */
export const fileName = (service: string, account: string): string =>
  `${createHash("sha256").update(service).update("\u0000").update(account).digest("hex").slice(0, 40)}.json`
/** `Credentials.defaultRefreshSkew`, in milliseconds. @internal */
export const defaultSkewMillis = 60_000

/** `Credentials.keyringAccount`. @internal */
export const keyringAccount = (endpoint: string, clientId: string | undefined): string =>
  `${endpoint}#${clientId === undefined ? "" : encodeURIComponent(clientId)}`
/** `AuthMode.aliases`. @internal */
export const authModeAliases: Readonly<Record<string, string>> = {
  pkce: "Pkce",
  standard: "Pkce",
  clientsecret: "ClientSecret",
  client_secret: "ClientSecret",
  basic: "ClientSecret",
  client_credentials: "ClientSecret",
  externalcommand: "ExternalCommand",
  external_command: "ExternalCommand",
  external_process: "ExternalCommand",
  deviceflow: "DeviceFlow",
  device_flow: "DeviceFlow"
}

/** The options the fast path understands (the others make the full CLI run). */
const acceptedValues = new Set(["endpoint", "config", "keyring", "client-id", "auth-mode"])
const acceptedFlags = new Set(["insecure", "verbose", "interactive", "no-interactive"])

type Env = Readonly<Record<string, string | undefined>>

/**
 * The variables of a Flyte 2 API key (`ApiKey.envVars`): with one set, the endpoint and client come from the key,
 * which this path does not decode.
 *
 * @internal
 */
export const apiKeyEnvVars: ReadonlyArray<string> = ["FLYTE_API_KEY", "EAGER_API_KEY", "_UNION_EAGER_API_KEY"]

const nonBlank = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === "" ? undefined : value.trim()

const expandHome = (path: string) =>
  path === "~" || path.startsWith("~/") ? Path.join(Os.homedir(), path.slice(1)) : path

const stripDns = (endpoint: string) => endpoint.trim().replace(/^dns:\/\/\//i, "")

/**
 * Whose token the caller wants: the endpoint, the configured client id (`undefined`: the admin's) and the auth mode
 * (`undefined` when none is configured: then only a user's login, Pkce or DeviceFlow, is handed out, as
 * `AuthLayer.authModeFor` adopts those).
 *
 * @internal
 */
export interface Caller {
  readonly endpoint: string
  readonly clientId: string | undefined
  readonly authMode: string | undefined
  /**
   * Whether the config makes it plaintext (`admin.insecure`; the `--insecure` flag is the caller's to add);
   * `undefined` when it cannot tell for sure (`FLYTE_PLATFORM_INSECURE` set, a value that is not a boolean).
   */
  readonly insecure: boolean | undefined
}

/**
 * What `AuthLayer.resolve` and `AuthLayer.chosenAuthMode` would decide: the endpoint (`--endpoint`, else
 * `FLYTE_PLATFORM_URL`, else `admin.endpoint` of the config file: `--config`, else `$FLYTECTL_CONFIG`, else
 * `~/.flyte/config.yaml` when it exists, `dns:///` stripped), the client id (`--client-id`, else
 * `FLYTE_CREDENTIALS_CLIENT_ID`, else `admin.clientId`) and the auth mode (`--auth-mode`, else
 * `FLYTE_CREDENTIALS_AUTH_MODE`, else `admin.authType`). `undefined` when it cannot tell for sure (no endpoint,
 * an unreadable or malformed file, a value that is not a string, an unknown mode, a blank variable, a client
 * secret or token command configured without a mode).
 *
 * @internal
 */
export const resolveCaller = async (
  explicit: {
    readonly endpoint?: string | undefined
    readonly config?: string | undefined
    readonly clientId?: string | undefined
    readonly authMode?: string | undefined
  },
  env: Env
): Promise<Caller | undefined> => {
  // The config file is read even when the endpoint is given: a malformed file is an error in the full path.
  const configured = explicit.config ?? (env.FLYTECTL_CONFIG !== "" ? env.FLYTECTL_CONFIG : undefined)
  const file = expandHome(configured ?? Path.join(Os.homedir(), ".flyte", "config.yaml"))
  let admin: Record<string, unknown> = {}
  let text: string | undefined
  try {
    text = Fs.readFileSync(file, "utf8")
  } catch (error) {
    if (configured !== undefined || (error as { code?: unknown }).code !== "ENOENT") return undefined
  }
  if (text !== undefined) {
    let document: unknown
    try {
      // `yaml` is CommonJS: the bundle's chunk of it exports only `default`.
      const imported = await import("yaml")
      const Yaml = (imported as { default?: typeof imported }).default ?? imported
      document = Yaml.parse(text)
    } catch {
      return undefined
    }
    if (document !== null && document !== undefined) {
      if (typeof document !== "object" || Array.isArray(document)) return undefined
      const value = (document as Record<string, unknown>).admin
      if (value !== undefined && value !== null) {
        if (typeof value !== "object" || Array.isArray(value)) return undefined
        admin = value as Record<string, unknown>
      }
    }
  }
  const fromFile = (key: string): string | undefined | null => {
    const value = admin[key]
    if (value === undefined || value === null) return undefined
    return typeof value === "string" ? value.trim() : null
  }
  const fileEndpoint = fromFile("endpoint")
  if (fileEndpoint === null) return undefined
  const chosen = explicit.endpoint ?? nonBlank(env.FLYTE_PLATFORM_URL) ?? nonBlank(fileEndpoint)
  if (chosen === undefined) return undefined
  const endpoint = stripDns(chosen)
  if (endpoint === "") return undefined

  /** An option, else a variable, else the file; `null` when it is not the plain case. */
  const setting = (option: string | undefined, variable: string, key: string): string | undefined | null => {
    if (option !== undefined) return option.trim() === "" ? null : option.trim()
    const fromEnv = env[variable]
    if (fromEnv !== undefined) return fromEnv.trim() === "" ? null : fromEnv.trim()
    const value = fromFile(key)
    return value === "" ? null : value
  }
  const clientId = setting(explicit.clientId, "FLYTE_CREDENTIALS_CLIENT_ID", "clientId")
  const modeText = setting(explicit.authMode, "FLYTE_CREDENTIALS_AUTH_MODE", "authType")
  if (clientId === null || modeText === null) return undefined
  const fileInsecure = admin.insecure
  const insecure = env.FLYTE_PLATFORM_INSECURE !== undefined
    ? undefined
    : fileInsecure === undefined || fileInsecure === null
    ? false
    : typeof fileInsecure === "boolean"
    ? fileInsecure
    : undefined
  if (modeText !== undefined) {
    const key = modeText.toLowerCase()
    const authMode = Object.prototype.hasOwnProperty.call(authModeAliases, key) ? authModeAliases[key] : undefined
    return authMode === undefined ? undefined : { endpoint, clientId, authMode, insecure }
  }
  // Without a mode, a client secret or a token command chooses it: the full path decides.
  const choosesMode = [
    "FLYTE_CREDENTIALS_CLIENT_SECRET",
    "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION",
    "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR",
    "FLYTE_CREDENTIALS_COMMAND"
  ].some((name) => env[name] !== undefined) ||
    ["clientSecretLocation", "clientSecretEnvVar", "command"].some((key) => admin[key] !== undefined)
  return choosesMode ? undefined : { endpoint, clientId, authMode: undefined, insecure }
}

/**
 * The endpoint of `resolveCaller`.
 *
 * @internal
 */
export const resolveEndpoint = async (
  explicit: { readonly endpoint?: string | undefined; readonly config?: string | undefined },
  env: Env
): Promise<string | undefined> => {
  const caller = await resolveCaller(explicit, env)
  return caller?.endpoint
}

/** The stored entry of a file keyring, if it is there, ours, and private. */
const readFileEntry = (account: string, env: Env): string | undefined => {
  const dir = Path.resolve(nonBlank(env[credentialsDirEnv]) ?? defaultCredentialsDir())
  const file = Path.join(dir, fileName(serviceName, account))
  try {
    const uid = process.getuid?.()
    const dirStat = Fs.statSync(dir)
    const fileStat = Fs.statSync(file)
    if (process.platform !== "win32") {
      if (uid !== undefined && (dirStat.uid !== uid || fileStat.uid !== uid)) return undefined
      if ((dirStat.mode & 0o777) !== 0o700 || (fileStat.mode & 0o777) !== 0o600) return undefined
    }
    const parsed = JSON.parse(Fs.readFileSync(file, "utf8")) as unknown
    if (typeof parsed !== "object" || parsed === null) return undefined
    const { account: a, service: s, value } = parsed as Record<string, unknown>
    return s === serviceName && a === account && typeof value === "string" ? value : undefined
  } catch {
    return undefined
  }
}

/** The entry in the OS keyring through keytar (what `auto` uses first), bounded in time. */
const readKeytarEntry = async (account: string): Promise<string | undefined> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const keytar = createRequire(import.meta.url)("keytar") as {
      readonly getPassword: (service: string, account: string) => Promise<string | null>
    }
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 2_000)
    })
    const value = await Promise.race([keytar.getPassword(serviceName, account), timeout])
    return typeof value === "string" ? value : undefined
  } catch {
    return undefined
  } finally {
    clearTimeout(timer)
  }
}

/** An ISO date of an entry in epoch milliseconds; `undefined` when absent, `null` when not a date. @internal */
export const isoMillis = (value: unknown): number | undefined | null => {
  if (value === undefined) return undefined
  if (typeof value !== "string") return null
  const millis = Date.parse(value)
  return Number.isNaN(millis) ? null : millis
}

/** The fields of `Credentials` (an entry with any other field is not the plain case). @internal */
export const entryKeys: ReadonlySet<string> = new Set([
  "accessToken",
  "refreshToken",
  "idToken",
  "expiresAt",
  "obtainedAt",
  "endpoint",
  "scopes",
  "authMode",
  "clientId"
])

/**
 * The access token of a keyring entry (the JSON of `Credentials.KeyringEntry`) if the entry is the caller's (its
 * endpoint, its client id, its auth mode: `Credentials.isFor`; without a configured mode only a Pkce or DeviceFlow
 * login) and its token is fresh at `now` by the rule of `Credentials.isFresh` (expiry minus a 60 s skew, capped at
 * half the token's lifetime; no expiry means fresh). `undefined` for anything else.
 *
 * @internal
 */
export const freshToken = (entry: string, caller: Caller, now: number): string | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(entry)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const record = parsed as Record<string, unknown>
  if (!Object.keys(record).every((key) => entryKeys.has(key))) return undefined
  if (record.endpoint !== caller.endpoint || record.clientId !== caller.clientId) return undefined
  const mode = record.authMode
  if (caller.authMode === undefined ? mode !== "Pkce" && mode !== "DeviceFlow" : mode !== caller.authMode) {
    return undefined
  }
  const token = record.accessToken
  if (typeof token !== "string" || token === "" || /[\r\n]/.test(token)) return undefined
  const expiresAt = isoMillis(record.expiresAt)
  const obtainedAt = isoMillis(record.obtainedAt)
  if (expiresAt === null || obtainedAt === null) return undefined
  return now < freshUntil(expiresAt, obtainedAt) ? token : undefined
}

/**
 * `Credentials.freshUntil` of an entry's dates: expiry minus a 60 s skew, capped at half the token's lifetime;
 * `Infinity` without an expiry.
 *
 * @internal
 */
export const freshUntil = (expiresAt: number | undefined, obtainedAt: number | undefined): number => {
  if (expiresAt === undefined) return Number.POSITIVE_INFINITY
  let skew = defaultSkewMillis
  if (obtainedAt !== undefined) skew = Math.min(skew, Math.max(0, (expiresAt - obtainedAt) / 2))
  return expiresAt - skew
}

/**
 * The token to print for `args` (the command line without `node` and the script), or `undefined` when the full
 * CLI must run.
 *
 * @internal
 */
export const tryFastToken = async (
  args: ReadonlyArray<string>,
  env: Env = process.env,
  now: () => number = Date.now
): Promise<string | undefined> => {
  const parsed = preParse(args)
  if (parsed.other || parsed.command !== "token") return undefined
  if (![...parsed.values.keys()].every((name) => acceptedValues.has(name))) return undefined
  if (![...parsed.flags].every((name) => acceptedFlags.has(name))) return undefined
  if (parsed.flags.has("interactive") && parsed.flags.has("no-interactive")) return undefined
  const backend = parsed.values.get("keyring") ?? "auto"
  if (backend !== "file" && backend !== "keytar" && backend !== "auto") return undefined
  if (apiKeyEnvVars.some((name) => nonBlank(env[name]) !== undefined)) return undefined
  const caller = await resolveCaller({
    endpoint: parsed.values.get("endpoint"),
    config: parsed.values.get("config"),
    clientId: parsed.values.get("client-id"),
    authMode: parsed.values.get("auth-mode")
  }, env)
  if (caller === undefined) return undefined
  // Only the caller's own account; an entry of the time before accounts were per client is the full path's.
  const account = keyringAccount(caller.endpoint, caller.clientId)
  const entry = backend === "file" ? readFileEntry(account, env) : await readKeytarEntry(account)
  return entry === undefined ? undefined : freshToken(entry, caller, now())
}
