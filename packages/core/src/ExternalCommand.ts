/**
 * The External Command flow: a program the user configures (`admin.command`, `FLYTE_CREDENTIALS_COMMAND`) prints
 * an access token. The same parsing serves `proxyCommand`, whose token goes into `proxy-authorization`.
 *
 * The program runs as argv through the `CommandRunner`, never through a shell, with a timeout. Its stdout may hold
 * the token, so it never appears in an error or a log; stderr does (trimmed and capped) when the program fails.
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { AuthenticationError } from "./AuthError.js"
import { CommandRunner } from "./CommandRunner.js"
import { Credentials, jwtExpiry } from "./Credentials.js"
import * as Policies from "./Policies.js"

/**
 * What the External Command flow needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The endpoint the credentials are for (the keyring key). */
  readonly endpoint: string
  /** The program and its arguments (argv; no shell). */
  readonly command: ReadonlyArray<string>
  /** How long the program may run; `Policies.commandTimeout` by default. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * What a proxy command needs (`ProxyAuthorization.commandSource`): the `proxyCommand` argv and its timeout (`Policies.commandTimeout` by default).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProxyOptions {
  readonly command: ReadonlyArray<string>
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * A token read from a command's output, with its expiry when the output (or the token, if a JWT) says.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandToken {
  readonly accessToken: Redacted.Redacted<string>
  readonly expiresAt: DateTime.Utc | undefined
}

/**
 * The setting a token command comes from, as its errors name it in `AuthenticationError.setting`: the External
 * Command flow's `command` or the `proxyCommand`.
 *
 * @since 0.3.0
 * @category models
 */
export type CommandSetting = "command" | "proxyCommand"

/**
 * The most stderr an error message quotes.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxStderrInMessage = 1000

/**
 * Runs the command and turns its output into credentials.
 *
 * The output, trimmed, is either the token itself, or a JSON object with `access_token` (or `token`) and,
 * optionally, `expires_in` (seconds) or `expires_at` / `expiry` (ISO 8601, or epoch seconds or milliseconds).
 * Without an explicit expiry, a JWT's `exp` claim is used. Empty output, a token with a line break, whitespace or
 * another control character, and a non-zero exit fail with reason `CommandFailed`; a command that runs longer than
 * its timeout is killed and fails with reason `Timeout`.
 *
 * @example
 * ```ts
 * import { ExternalCommand } from "@flyte-auth/core"
 * import { NodeCommandRunner } from "@flyte-auth/node"
 * import { Effect } from "effect"
 *
 * const credentials = ExternalCommand.authenticate({
 *   endpoint: "flyte.example.com",
 *   command: ["gcloud", "auth", "print-identity-token"]
 * }).pipe(Effect.provide(NodeCommandRunner.layer))
 * ```
 *
 * @since 0.1.0
 * @category flows
 */
export const authenticate: (
  options: Options
) => Effect.Effect<Credentials, AuthenticationError, CommandRunner> = Effect.fn("ExternalCommand.authenticate")(
  function*(options: Options) {
    const token = yield* runForToken(options.command, options.timeout)
    return new Credentials({
      accessToken: token.accessToken,
      expiresAt: token.expiresAt,
      obtainedAt: yield* DateTime.now,
      endpoint: options.endpoint
    })
  }
)

/**
 * The proxy token printed by `proxyCommand` (the output is read as by `authenticate`); its errors name it "the
 * proxy command", so that a failing or hanging proxy command is not taken for the token command or a login.
 *
 * @since 0.2.0
 * @category flows
 */
export const proxyToken: (
  options: ProxyOptions
) => Effect.Effect<Credentials, AuthenticationError, CommandRunner> = Effect.fn("ExternalCommand.proxyToken")(
  function*(options: ProxyOptions) {
    const token = yield* runForToken(options.command, options.timeout, "proxy command")
    return new Credentials({
      accessToken: token.accessToken,
      expiresAt: token.expiresAt,
      obtainedAt: yield* DateTime.now,
      endpoint: "proxy-authorization"
    })
  }
)

/**
 * Reads a token from a command's stdout (see `authenticate` for the accepted forms). `now` dates a relative
 * `expires_in`; `program` starts the error's description and `setting` names the setting the command comes from
 * (`AuthenticationError.setting`: `"command"` or `"proxyCommand"`). The error never quotes the output.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseOutput = (
  stdout: string,
  now: DateTime.Utc,
  program = "The token command",
  setting: CommandSetting = "command"
): Either.Either<CommandToken, AuthenticationError> => {
  const fail = (problem: string) =>
    Either.left(new AuthenticationError({ reason: "CommandFailed", setting, description: `${program} ${problem}` }))
  const text = stdout.trim()
  if (text === "") return fail("printed no token")
  if (!text.startsWith("{")) {
    return isHeaderSafe(text)
      ? Either.right({
        accessToken: Redacted.make(text),
        expiresAt: Option.getOrUndefined(jwtExpiry(Redacted.make(text)))
      })
      : fail(unsafeTokenProblem)
  }

  const json = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isLeft(json) || typeof json.right !== "object" || json.right === null || Array.isArray(json.right)) {
    return fail("printed output that starts like a JSON object but is not one")
  }
  const object = json.right as Record<string, unknown>
  const raw = object.access_token ?? object.token
  if (typeof raw !== "string" || raw.trim() === "") {
    return fail("printed a JSON object without a non-empty \"access_token\" or \"token\"")
  }
  const token = raw.trim()
  if (!isHeaderSafe(token)) return fail(unsafeTokenProblem)
  const accessToken = Redacted.make(token)

  const expiresIn = object.expires_in
  if (expiresIn !== undefined && expiresIn !== null) {
    const seconds = typeof expiresIn === "string" && expiresIn.trim() !== "" ? Number(expiresIn) : expiresIn
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 || seconds > maxSeconds) {
      return fail("printed an \"expires_in\" that is not a number of seconds")
    }
    return Either.right({ accessToken, expiresAt: DateTime.addDuration(now, Duration.seconds(seconds)) })
  }
  const key = object.expires_at !== undefined && object.expires_at !== null ? "expires_at" : "expiry"
  const instant = object[key]
  if (instant !== undefined && instant !== null) {
    const expiresAt = parseInstant(instant)
    return Option.isSome(expiresAt)
      ? Either.right({ accessToken, expiresAt: expiresAt.value })
      : fail(`printed an "${key}" that is neither an ISO 8601 date nor an epoch time`)
  }
  return Either.right({ accessToken, expiresAt: Option.getOrUndefined(jwtExpiry(accessToken)) })
}

// --- internals -------------------------------------------------------------------------------------------------

const unsafeTokenProblem = "printed a token containing a line break, whitespace or another control character; " +
  "it is refused so that it cannot inject request headers"

/** About 317 years: any longer lifetime would not be a valid date. */
const maxSeconds = 1e10

/** Printable ASCII without space: anything else has no place in a bearer token or a header value. */
const isHeaderSafe = (token: string): boolean => /^[\x21-\x7e]+$/.test(token)

/** ISO 8601, or epoch seconds (below 1e11) or milliseconds, as a number or a numeric string. */
const parseInstant = (value: unknown): Option.Option<DateTime.Utc> => {
  const numeric = typeof value === "number"
    ? value
    : typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim())
    ? Number(value)
    : undefined
  if (numeric !== undefined) {
    return Number.isFinite(numeric) && numeric >= 0 && numeric <= maxSeconds * 1000
      ? DateTime.make(numeric < 1e11 ? numeric * 1000 : numeric)
      : Option.none()
  }
  // Only strings that look like a date: `Date` parses many odd things.
  return typeof value === "string" && /^\d{4}-\d{2}-\d{2}/.test(value.trim())
    ? DateTime.make(value.trim())
    : Option.none()
}

/**
 * Runs a token command; every error it fails with names the command's setting (`AuthenticationError.setting`), so
 * that a report can say which option to check without reading the description.
 */
const runForToken = Effect.fnUntraced(function*(
  argv: ReadonlyArray<string>,
  timeout: Duration.DurationInput | undefined,
  what: "token command" | "proxy command" = "token command"
) {
  const setting: CommandSetting = what === "proxy command" ? "proxyCommand" : "command"
  if (argv.length === 0 || argv[0].trim() === "") {
    return yield* new AuthenticationError({
      reason: "Config",
      setting,
      description: `No ${what} is configured`
    })
  }
  const program = argv[0]
  const limit = timeout ?? Policies.commandTimeout
  const runner = yield* CommandRunner
  const result = yield* runner.run(argv, { timeout: limit }).pipe(
    Effect.catchTag("CommandError", (error) =>
      Effect.fail(
        new AuthenticationError({
          reason: error.reason === "Timeout" ? "Timeout" : "CommandFailed",
          setting,
          description: error.reason === "Timeout"
            ? `The ${what} ${program} did not finish within ${Duration.format(Duration.decode(limit))}`
            : error.reason === "NotFound"
            ? `The ${what} ${program} was not found`
            : `The ${what} ${program} could not run: ${error.description}`,
          cause: error
        })
      ))
  )
  if (result.exitCode !== 0) {
    const stderr = capStderr(result.stderr)
    return yield* new AuthenticationError({
      reason: "CommandFailed",
      setting,
      description: `The ${what} ${program} exited with code ${result.exitCode}` +
        (stderr === "" ? " and printed nothing on stderr" : `: ${stderr}`)
    })
  }
  const now = yield* DateTime.now
  return yield* parseOutput(result.stdout, now, `The ${what} ${program}`, setting)
})

const capStderr = (stderr: string): string => {
  const trimmed = stderr.trim()
  return trimmed.length > maxStderrInMessage ? `${trimmed.slice(0, maxStderrInMessage)}…` : trimmed
}
