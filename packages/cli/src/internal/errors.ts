/**
 * How the CLI reports a failure: one line on stderr saying what failed and what to do; with `--verbose` the
 * chain of causes below it. Only messages are printed (never whole objects), and the messages of flyte-auth's
 * errors never contain a secret.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { exitCodes } from "./errorCodes.js"

/**
 * A failure of the CLI itself (bad option, unusable config, failed call) with a message written for the user.
 *
 * @internal
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly message: string
  readonly cause?: unknown
  /** The exit code; 1 unless said otherwise (2 for usage errors). */
  readonly exitCode?: number
  /** The command line itself is wrong: reported as the program's (`flyte-auth: ...`), not as the command's. */
  readonly ofCommandLine?: boolean
}> {}

export { exitCodes }

/**
 * What the CLI knows about a run beyond its error, for a hint that fits: the endpoint in use and a few options
 * as the user gave them.
 *
 * @internal
 */
export interface Circumstances {
  /** The endpoint the command used, once resolved (options, config file, environment). */
  readonly endpoint?: string | undefined
  /** Whether the connection to the endpoint is plaintext (`--insecure`, `admin.insecure`). */
  readonly insecure?: boolean | undefined
  /** `--client-secret-env-var`, when given on the command line. */
  readonly clientSecretEnvVar?: string | undefined
  /** Whether `--no-interactive` was given. */
  readonly noInteractive?: boolean | undefined
}

/**
 * Where a command notes its `Circumstances` for the report of its failure (absent outside `main`).
 *
 * @internal
 */
export class FailureCircumstances
  extends Context.Tag("@flyte-auth/cli/FailureCircumstances")<FailureCircumstances, Ref.Ref<Circumstances>>()
{}

/**
 * Adds to the `Circumstances` of this run (nothing when no `FailureCircumstances` is provided).
 *
 * @internal
 */
export const noteCircumstances = (more: Circumstances): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.serviceOption(FailureCircumstances),
    (ref) => Option.isSome(ref) ? Ref.update(ref.value, (known) => ({ ...known, ...more })) : Effect.void
  )

interface Tagged {
  readonly _tag: string
  readonly reason?: string
  readonly message?: string
  readonly error?: string
  readonly setting?: string
  readonly cause?: unknown
}

const isTagged = (u: unknown): u is Tagged =>
  typeof u === "object" && u !== null && typeof (u as { _tag?: unknown })._tag === "string"

/**
 * What to do about an error of the flyte-auth family, by its reason (and the command and `Circumstances` of the
 * run, so that the hint does not repeat what the user already did).
 *
 * @internal
 */
export const hint = (error: unknown, command = "", circumstances: Circumstances = {}): string | undefined => {
  if (!isTagged(error)) return undefined
  if (error._tag === "AccessTokenNotFound") {
    if (circumstances.noInteractive !== true) {
      return "run `flyte-auth login` first, or pass --interactive to let this command log in"
    }
    return command === "login" ? "run `flyte-auth login` without --no-interactive" : "run `flyte-auth login` first"
  }
  if (error._tag === "KeyringError") {
    return "choose another keyring with --keyring (auto, keytar, napi, file, memory, none)"
  }
  if (error._tag !== "AuthenticationError") return undefined
  switch (error.reason) {
    case "Transport":
      return transportHint(circumstances, error.message ?? "")
    case "Config":
      return configHint(error.setting, circumstances)
    case "Timeout":
      // A token command (`setting`: "command" or "proxyCommand") hangs; anything else is a login taking too long.
      return error.setting === "command" || error.setting === "proxyCommand"
        ? "check why it hangs, or allow it more time with --timeout SECONDS"
        : "finish the login sooner, or allow more time with --timeout SECONDS"
    case "PortInUse":
      return "stop the program that holds the port and log in again, or drop --redirect-port to let the login use a free port"
    case "OAuthError":
      return error.error === "invalid_client" || error.error === "unauthorized_client"
        ? "check --client-id and the client secret (--client-secret-env-var, --client-secret-location)"
        : error.error === "invalid_scope"
        ? "check --scopes (admin.scopes)"
        : undefined
    case "CommandFailed":
      return error.setting === "proxyCommand"
        ? "check --proxy-command (admin.proxyCommand)"
        : "check --command (admin.command)"
    case "Browser":
      return "open the URL printed above yourself, or set --browser-command"
    case "AccessDenied":
    case "CallbackError":
      return "the login was refused; run `flyte-auth login` to try again"
    case "ExpiredToken":
      return "the device code expired before it was approved; run `flyte-auth login` again"
    default:
      return undefined
  }
}

/**
 * The server could not be reached: check the endpoint, and for a TLS server that may be plaintext say how to reach
 * it without TLS: an `http://` URL for a URL endpoint (`--insecure` applies to HOST:PORT endpoints only).
 */
const transportHint = ({ endpoint, insecure }: Circumstances, message: string): string => {
  // grpc-js's HTTP/2 session fails with "Protocol error" against a server that is up but answers HTTP/1 (a web
  // server, the admin's HTTP port): saying "check that the server is up" would send the user the wrong way.
  if (endpoint !== undefined && !/^https?:\/\//i.test(endpoint) && /\bProtocol error\b/.test(message)) {
    return `the server at ${endpoint} is up but does not speak gRPC (wrong port or scheme?): give its gRPC port, ` +
      `or its HTTP address as a URL (${insecure === true ? "http" : "https"}://${endpoint})`
  }
  const check = "check --endpoint (admin.endpoint) and that the server is up"
  if (endpoint !== undefined && /^https?:\/\//i.test(endpoint)) {
    return /^https:/i.test(endpoint) ? `${check}; use an http:// URL for a plaintext server` : check
  }
  return insecure === true ? check : `${check}; use --insecure for a plaintext server`
}

/**
 * A configuration error names the setting it is about (`AuthenticationError.setting`); say where to set it, for the
 * settings whose messages do not already say so (the endpoint's names its option, the auth mode's lists the modes,
 * the client secret file's names the file and why it cannot be used).
 */
const configHint = (setting: string | undefined, { clientSecretEnvVar }: Circumstances): string | undefined => {
  switch (setting) {
    case "clientSecret":
      return clientSecretEnvVar !== undefined
        ? `the environment variable ${clientSecretEnvVar} (--client-secret-env-var) is not set or empty`
        : "pass --client-secret-env-var NAME or --client-secret-location PATH (admin.clientSecretEnvVar, " +
          "admin.clientSecretLocation)"
    case "clientId":
      return "pass --client-id (admin.clientId)"
    case "command":
      return "pass --command (admin.command)"
    case "proxyCommand":
      return "pass --proxy-command (admin.proxyCommand)"
    default:
      return undefined
  }
}

/** grpc-js ends its details with `. Resolution note: ` followed by nothing when the name resolved fine. */
const withoutEmptyResolutionNote = (message: string): string =>
  message.replace(/\.?\s*Resolution note:\s*(?=$|[;)\]]|\n)/g, "")

const messageOf = (u: unknown): string => {
  if (u instanceof Error || (typeof u === "object" && u !== null && typeof (u as Error).message === "string")) {
    const message = withoutEmptyResolutionNote((u as Error).message)
    if (message.length > 0) return message
  }
  if (isTagged(u)) return u._tag
  if (typeof u === "string") return u
  return String(u)
}

const label = (u: unknown): string => {
  if (isTagged(u)) return u.reason !== undefined ? `${u._tag}(${u.reason})` : u._tag
  if (u instanceof Error) return u.name
  return typeof u
}

/**
 * The causes below an error, outermost first (bounded, so a cycle cannot loop).
 *
 * @internal
 */
export const causeChain = (error: unknown): Array<string> => {
  const lines: Array<string> = []
  const seen = new Set<unknown>()
  let current = typeof error === "object" && error !== null ? (error as { cause?: unknown }).cause : undefined
  while (current !== undefined && current !== null && !seen.has(current) && lines.length < 10) {
    seen.add(current)
    lines.push(`${label(current)}: ${messageOf(current)}`)
    current = typeof current === "object" ? (current as { cause?: unknown }).cause : undefined
  }
  return lines
}

/**
 * The lines to print for a failed command (the first one always, the others with `--verbose`).
 *
 * @internal
 */
export const report = (
  command: string,
  cause: Cause.Cause<unknown>,
  verbose: boolean,
  circumstances: Circumstances = {}
): { readonly lines: Array<string>; readonly exitCode: number } => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    const what = messageOf(error).replace(/\s*\n\s*/g, " ").trim()
    const todo = hint(error, command, circumstances)
    const exitCode = error instanceof CliError && error.exitCode !== undefined
      ? error.exitCode
      : isTagged(error) && error._tag === "AccessTokenNotFound"
      ? exitCodes.accessTokenNotFound
      : 1
    const who = command === "" || (error instanceof CliError && error.ofCommandLine === true) ? "" : ` ${command}`
    const first = `flyte-auth${who}: ${what}${todo !== undefined ? ` — ${todo}` : ""}`
    const lines = [first]
    if (verbose) lines.push(...causeChain(error).map((line) => `  caused by ${line}`))
    return { lines, exitCode }
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    const lines = [`flyte-auth ${command}: unexpected error: ${messageOf(defect.value)} (please report this)`]
    if (verbose) {
      const stack = defect.value instanceof Error ? defect.value.stack : undefined
      if (stack !== undefined) lines.push(...stack.split("\n").slice(1))
      lines.push(...causeChain(defect.value).map((line) => `  caused by ${line}`))
    }
    return { lines, exitCode: 70 }
  }
  return { lines: [`flyte-auth ${command}: interrupted`], exitCode: 130 }
}
