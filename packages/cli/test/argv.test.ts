import * as Options from "@effect/cli/Options"
import { AccessTokenNotFound, AuthenticationError } from "@flyte-auth/core/AuthError"
import * as AuthMode from "@flyte-auth/core/AuthMode"
import * as Cause from "effect/Cause"
import * as Either from "effect/Either"
import { describe, expect, it } from "vitest"
import { flagOptions, parseScopes, preParse, repeatedOptions, validValues, valueOptions } from "../src/internal/argv.js"
import { causeChain, CliError, exitCodes, hint, report } from "../src/internal/errors.js"
import { globalOptions, optionNames } from "../src/internal/globalOptions.js"

describe("command line pre-parse", () => {
  it("finds the command and the global options before or after it", () => {
    const parsed = preParse(["--endpoint", "a:1", "token", "--keyring=file", "--insecure"])
    expect(parsed.command).toBe("token")
    expect([...parsed.values]).toEqual([["endpoint", "a:1"], ["keyring", "file"]])
    expect([...parsed.flags]).toEqual(["insecure"])
    expect(parsed.other).toBe(false)
  })

  it("flags anything it does not understand", () => {
    expect(preParse(["token", "--help"]).other).toBe(true)
    expect(preParse(["token", "-h"]).other).toBe(true)
    expect(preParse(["token", "extra"]).other).toBe(true)
    expect(preParse(["token", "--endpoint"]).other).toBe(true)
    expect(preParse(["token", "--insecure=true"]).other).toBe(true)
    expect(preParse(["token", "--endpoint", "a", "--endpoint", "b"]).other).toBe(true)
  })

  it("reports repeated options, bad keyrings and numbers, naming the option", () => {
    expect(repeatedOptions(["--keyring", "file", "token", "--keyring=memory", "--command", "--keyring"])).toEqual([
      "--keyring"
    ])
    expect(repeatedOptions(["--command", "--verbose", "--verbose"])).toEqual([])
    expect(repeatedOptions(["--command", "x", "--verbose", "--verbose"])).toEqual(["--verbose"])
    expect(validValues(["token", "--keyring", "vault"])).toBe(
      "--keyring must be one of auto, keytar, napi, file, memory, none (got \"vault\")"
    )
    expect(validValues(["sandbox", "--idp-port=x"])).toBe("--idp-port must be a whole number (got \"x\")")
    expect(validValues(["token", "--timeout"])).toBe("--timeout needs a value")
    expect(validValues(["token", "--timeout", "30", "--keyring", "file"])).toBeUndefined()
  })

  it("without the real options (the fast path of bin.ts), checks only the global and number options' values", () => {
    expect(validValues(["--endpoint"])).toBe("--endpoint needs a value")
    expect(validValues(["status", "--endpoint", "--timeout"])).toBe("--endpoint needs a value")
    expect(validValues(["sandbox", "--admin-port", "x"])).toBe("--admin-port must be a whole number (got \"x\")")
    expect(validValues(["--bogus", "token"])).toBeUndefined()
    expect(validValues(["status", "--", "--endpoint"])).toBeUndefined()
  })

  it("the fast path's global options are the ones @effect/cli knows", () => {
    const names = optionNames(Options.getUsage(Options.all(globalOptions)))
    expect([...names.values].sort()).toEqual(valueOptions.map((name) => `--${name}`).sort())
    expect([...names.flags].sort()).toEqual(flagOptions.map((name) => `--${name}`).sort())
  })

  it("splits scopes on commas and spaces", () => {
    expect(parseScopes("all, offline_access  openid,")).toEqual(["all", "offline_access", "openid"])
  })
})

describe("error report", () => {
  it("is one line with what to do; --verbose adds the causes; the exit code says what kind", () => {
    const error = new AuthenticationError({
      reason: "Transport",
      description: "Cannot reach x:1",
      cause: new Error("connect ECONNREFUSED", { cause: new Error("socket closed") })
    })
    const quiet = report("login", Cause.fail(error), false)
    expect(quiet).toEqual({
      lines: [
        "flyte-auth login: Cannot reach x:1 — check --endpoint (admin.endpoint) and that the server is up; use " +
        "--insecure for a plaintext server"
      ],
      exitCode: exitCodes.failure
    })
    const verbose = report("login", Cause.fail(error), true)
    expect(verbose.lines.slice(1)).toEqual([
      "  caused by Error: connect ECONNREFUSED",
      "  caused by Error: socket closed"
    ])

    const notFound = new AccessTokenNotFound({ reason: "LoggedOut", description: "Logged out of x:1" })
    expect(report("token", Cause.fail(notFound), false).exitCode).toBe(exitCodes.accessTokenNotFound)
    expect(report("token", Cause.fail(new CliError({ message: "bad", exitCode: 2 })), false)).toEqual({
      lines: ["flyte-auth token: bad"],
      exitCode: 2
    })
    const defect = report("token", Cause.die(new TypeError("boom")), false)
    expect(defect.exitCode).toBe(exitCodes.internal)
    expect(defect.lines).toEqual(["flyte-auth token: unexpected error: boom (please report this)"])
    // A multi-line message (e.g. a YAML parser's) stays on one line.
    const yaml = new AuthenticationError({ reason: "Config", description: "malformed YAML in f:\n  a: [\n^" })
    expect(report("status", Cause.fail(yaml), false).lines).toEqual(["flyte-auth status: malformed YAML in f: a: [ ^"])
  })

  it("hints only what the user has not done already", () => {
    const transport = new AuthenticationError({ reason: "Transport", description: "Cannot reach x" })
    expect(hint(transport, "login", { endpoint: "https://flyte.example.com" })).toBe(
      "check --endpoint (admin.endpoint) and that the server is up; use an http:// URL for a plaintext server"
    )
    expect(hint(transport, "login", { endpoint: "http://localhost:8088" })).toBe(
      "check --endpoint (admin.endpoint) and that the server is up"
    )
    expect(hint(transport, "login", { endpoint: "localhost:8089", insecure: true })).toBe(
      "check --endpoint (admin.endpoint) and that the server is up"
    )
    expect(hint(transport, "login", { endpoint: "flyte.example.com:443" })).toMatch(/use --insecure/)

    // The hint follows the error's setting (as the flows and AuthLayer.resolve set it), not its wording.
    const mode = new AuthenticationError({
      reason: "Config",
      setting: "authMode",
      description: "Unknown auth mode \"Foo\"; valid modes are Pkce, ExternalCommand (or external_process)"
    })
    expect(hint(mode)).toBeUndefined()
    expect(AuthMode.parseEither("Foo").pipe(Either.flip, Either.getOrThrow).setting).toBe("authMode")
    const noCommand = new AuthenticationError({
      reason: "Config",
      setting: "command",
      description: "The ExternalCommand auth mode for x needs a command"
    })
    expect(hint(noCommand)).toBe("pass --command (admin.command)")
    const noProxyCommand = new AuthenticationError({
      reason: "Config",
      setting: "proxyCommand",
      description: "No proxy command is configured"
    })
    expect(hint(noProxyCommand)).toBe("pass --proxy-command (admin.proxyCommand)")
    const noClientId = new AuthenticationError({ reason: "Config", setting: "clientId", description: "No client id" })
    expect(hint(noClientId)).toBe("pass --client-id (admin.clientId)")
    // Without a setting, no hint is guessed from the words.
    expect(hint(new AuthenticationError({ reason: "Config", description: "needs a command" }))).toBeUndefined()

    const noSecret = new AuthenticationError({
      reason: "Config",
      setting: "clientSecret",
      description: "The ClientSecret auth mode for x needs a client secret"
    })
    expect(hint(noSecret, "login", { clientSecretEnvVar: "MY_SECRET" })).toBe(
      "the environment variable MY_SECRET (--client-secret-env-var) is not set or empty"
    )
    expect(hint(noSecret)).toMatch(/^pass --client-secret-env-var NAME or --client-secret-location PATH/)
    const noFile = new AuthenticationError({
      reason: "Config",
      setting: "clientSecretLocation",
      description: "cannot read the client secret file /s: ENOENT"
    })
    expect(hint(noFile)).toBeUndefined()

    // A token command's failure and timeout: the hint follows the command's setting, not the description's words.
    const failed = (setting: string | undefined) =>
      new AuthenticationError({ reason: "CommandFailed", setting, description: "The command x exited with code 3" })
    expect(hint(failed("proxyCommand"))).toBe("check --proxy-command (admin.proxyCommand)")
    expect(hint(failed("command"))).toBe("check --command (admin.command)")
    const timedOut = (setting: string | undefined, description: string) =>
      new AuthenticationError({ reason: "Timeout", setting, description })
    expect(hint(timedOut("proxyCommand", "The proxy command x did not finish within 1m"))).toBe(
      "check why it hangs, or allow it more time with --timeout SECONDS"
    )
    expect(hint(timedOut("command", "x did not finish"))).toMatch(/^check why it hangs/)
    expect(hint(timedOut(undefined, "No login callback arrived (command pending)"))).toBe(
      "finish the login sooner, or allow more time with --timeout SECONDS"
    )

    const notFound = new AccessTokenNotFound({ reason: "NoCredentials", description: "No credentials" })
    expect(hint(notFound, "token")).toMatch(/or pass --interactive/)
    expect(hint(notFound, "token", { noInteractive: true })).toBe("run `flyte-auth login` first")
  })

  it("drops grpc-js's empty resolution note", () => {
    const error = new AuthenticationError({
      reason: "Transport",
      description: "Cannot reach s at h:1: No connection established. Last error: Error: connect ECONNREFUSED h:1. " +
        "Resolution note: "
    })
    expect(report("login", Cause.fail(error), false, { insecure: true }).lines).toEqual([
      "flyte-auth login: Cannot reach s at h:1: No connection established. Last error: Error: connect ECONNREFUSED " +
      "h:1 — check --endpoint (admin.endpoint) and that the server is up"
    ])
  })

  it("follows causes without looping", () => {
    const a: { message: string; cause?: unknown } = { message: "a" }
    const b = { message: "b", cause: a }
    a.cause = b
    expect(causeChain({ cause: a })).toEqual(["object: a", "object: b"])
  })
})
