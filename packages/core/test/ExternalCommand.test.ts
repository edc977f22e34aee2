import { describe, expect, it } from "@effect/vitest"
import { CommandRunner, ExternalCommand, Policies } from "@flyte-auth/core"
import { DateTime, Duration, Effect, Either, Layer, Redacted, TestClock } from "effect"

const result = (stdout: string, exitCode = 0, stderr = ""): CommandRunner.CommandResult => ({
  exitCode,
  stdout,
  stderr
})

/** A runner that answers `outcome` and records the argv and timeout it was given. */
const runner = (outcome: Effect.Effect<CommandRunner.CommandResult, CommandRunner.CommandError>) => {
  const calls: Array<{ argv: ReadonlyArray<string>; timeout: Duration.Duration }> = []
  const layer = Layer.succeed(CommandRunner.CommandRunner, {
    run: (argv, options) =>
      Effect.suspend(() => {
        calls.push({ argv, timeout: Duration.decode(options.timeout) })
        return outcome
      })
  })
  return { calls, layer }
}

const authenticate = (
  outcome: Effect.Effect<CommandRunner.CommandResult, CommandRunner.CommandError>,
  options: Partial<ExternalCommand.Options> = {}
) => {
  const fake = runner(outcome)
  return ExternalCommand.authenticate({ endpoint: "flyte.example:443", command: ["get-token", "--json"], ...options })
    .pipe(Effect.provide(fake.layer), Effect.either, Effect.map((either) => ({ either, calls: fake.calls })))
}

const jwt = (claims: object) =>
  `${Buffer.from("{\"alg\":\"none\"}").toString("base64url")}.${
    Buffer.from(JSON.stringify(claims)).toString("base64url")
  }.sig`

const expectLeft = <A, E>(either: Either.Either<A, E>): E => {
  if (Either.isRight(either)) throw new Error("expected a failure")
  return either.left
}

const expectRight = <A, E>(either: Either.Either<A, E>): A => {
  if (Either.isLeft(either)) throw new Error(`expected a success, got ${String(either.left)}`)
  return either.right
}

describe("ExternalCommand.authenticate", () => {
  it.effect("runs the argv with the default timeout and uses trimmed stdout as the token", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000)
      const { calls, either } = yield* authenticate(Effect.succeed(result("  tok-123\n")))
      const credentials = expectRight(either)
      expect(Redacted.value(credentials.accessToken)).toBe("tok-123")
      expect(credentials.endpoint).toBe("flyte.example:443")
      expect(credentials.expiresAt).toBeUndefined()
      expect(DateTime.toEpochMillis(credentials.obtainedAt!)).toBe(1_000)
      expect(calls).toEqual([{ argv: ["get-token", "--json"], timeout: Policies.commandTimeout }])
    }))

  it.effect("passes a custom timeout", () =>
    Effect.gen(function*() {
      const { calls } = yield* authenticate(Effect.succeed(result("t")), { timeout: "3 seconds" })
      expect(Duration.toMillis(calls[0].timeout)).toBe(3_000)
    }))

  it.effect("takes the expiry of a JWT printed as the token", () =>
    Effect.gen(function*() {
      const { either } = yield* authenticate(Effect.succeed(result(jwt({ exp: 2_000_000_000 }))))
      expect(DateTime.toEpochMillis(expectRight(either).expiresAt!)).toBe(2_000_000_000_000)
    }))

  it.effect("accepts a JSON object with access_token or token and an expiry", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(10_000)
      const cases: Array<[string, string, number | undefined]> = [
        [JSON.stringify({ access_token: "a1", expires_in: 300 }), "a1", 310_000],
        [JSON.stringify({ access_token: "a2", expires_in: "120" }), "a2", 130_000],
        [JSON.stringify({ token: "a3", expiry: "2033-05-18T03:33:20Z" }), "a3", 2_000_000_000_000],
        [JSON.stringify({ token: "a4", expires_at: 2_000_000_000 }), "a4", 2_000_000_000_000],
        [JSON.stringify({ token: "a5", expires_at: 2_000_000_000_123 }), "a5", 2_000_000_000_123],
        [JSON.stringify({ token: "a6", expires_at: "2000000000" }), "a6", 2_000_000_000_000],
        [`\n  ${JSON.stringify({ access_token: "a7", token_type: "Bearer" })}\n`, "a7", undefined],
        [JSON.stringify({ access_token: jwt({ exp: 1_900_000_000 }) }), jwt({ exp: 1_900_000_000 }), 1_900_000_000_000]
      ]
      for (const [stdout, token, expiresAt] of cases) {
        const credentials = expectRight((yield* authenticate(Effect.succeed(result(stdout)))).either)
        expect(Redacted.value(credentials.accessToken)).toBe(token)
        expect(credentials.expiresAt === undefined ? undefined : DateTime.toEpochMillis(credentials.expiresAt))
          .toBe(expiresAt)
      }
    }))

  it.effect("refuses JSON without a token, with a bad expiry, or broken JSON, without quoting the output", () =>
    Effect.gen(function*() {
      const outputs = [
        JSON.stringify({ id_token: "SECRET-a" }),
        JSON.stringify({ access_token: "" }),
        JSON.stringify({ access_token: 42, note: "SECRET-b" }),
        JSON.stringify({ access_token: "SECRET-c", expires_in: "soon" }),
        JSON.stringify({ access_token: "SECRET-d", expires_in: -5 }),
        JSON.stringify({ access_token: "SECRET-e", expiry: "tomorrow" }),
        JSON.stringify({ access_token: "SECRET-g", expires_in: 1e300 }),
        JSON.stringify({ access_token: "SECRET-h", expires_at: 1e300 }),
        JSON.stringify({ access_token: "SECRET-i", expiry: "2033-99-99T00:00:00Z" }),
        "{ \"access_token\": \"SECRET-f\""
      ]
      for (const stdout of outputs) {
        const error = expectLeft((yield* authenticate(Effect.succeed(result(stdout)))).either)
        expect(error.reason).toBe("CommandFailed")
        expect(error.message).toContain("get-token")
        expect(error.message).not.toContain("SECRET")
      }
    }))

  it.effect("fails when the command prints nothing", () =>
    Effect.gen(function*() {
      for (const stdout of ["", "  \n\t\n"]) {
        const error = expectLeft((yield* authenticate(Effect.succeed(result(stdout)))).either)
        expect(error.reason).toBe("CommandFailed")
        expect(error.message).toContain("printed no token")
      }
    }))

  it.effect("refuses a token containing CR, LF or other control characters, without quoting it", () =>
    Effect.gen(function*() {
      const outputs = [
        "SECRET-1\r\nX-Injected: yes",
        "SECRET-2\nsecond line",
        "SECRET-3\u0000",
        "SECRET 4",
        JSON.stringify({ access_token: "SECRET-5\r\nX-Injected: yes" }),
        JSON.stringify({ token: "SECRET-6\u0007" })
      ]
      for (const stdout of outputs) {
        const error = expectLeft((yield* authenticate(Effect.succeed(result(stdout)))).either)
        expect(error.reason).toBe("CommandFailed")
        expect(error.message).toContain("line break")
        expect(error.message).not.toContain("SECRET")
        expect(error.message).not.toContain("Injected")
      }
    }))

  it.effect("reports a failing command with its exit code and stderr, never its stdout", () =>
    Effect.gen(function*() {
      const { either } = yield* authenticate(
        Effect.succeed(result("STDOUT-SECRET-TOKEN\n", 3, "  error: login required\n"))
      )
      const error = expectLeft(either)
      expect(error.reason).toBe("CommandFailed")
      expect(error.message).toContain("get-token")
      expect(error.message).toContain("exited with code 3")
      expect(error.message).toContain("error: login required")
      for (const rendering of [error.message, String(error), JSON.stringify(error), error.stack ?? ""]) {
        expect(rendering).not.toContain("STDOUT-SECRET-TOKEN")
      }
      // the argv's arguments (which may hold secrets) are not quoted either
      expect(error.message).not.toContain("--json")
    }))

  it.effect("caps a long stderr in the message", () =>
    Effect.gen(function*() {
      const error = expectLeft((yield* authenticate(Effect.succeed(result("", 1, "x".repeat(50_000))))).either)
      expect(error.message.length).toBeLessThan(ExternalCommand.maxStderrInMessage + 200)
      expect(error.message).toContain("…")

      const silent = expectLeft((yield* authenticate(Effect.succeed(result("STDOUT-ONLY-SECRET", 2, "")))).either)
      expect(silent.message).toContain("exited with code 2")
      expect(silent.message).not.toContain("STDOUT-ONLY-SECRET")
    }))

  it.effect("maps runner errors: not found, timeout, other failures", () =>
    Effect.gen(function*() {
      const runnerFails = (reason: CommandRunner.CommandError["reason"], description: string) =>
        authenticate(Effect.fail(new CommandRunner.CommandError({ reason, command: "get-token", description })), {
          timeout: "2 seconds"
        }).pipe(Effect.map(({ either }) => expectLeft(either)))

      const notFound = yield* runnerFails("NotFound", "spawn ENOENT")
      expect(notFound.reason).toBe("CommandFailed")
      expect(notFound.message).toContain("was not found")

      const timeout = yield* runnerFails("Timeout", "killed")
      expect(timeout.reason).toBe("Timeout")
      expect(timeout.message).toContain("2s")

      const other = yield* runnerFails("Failure", "not executable")
      expect(other.reason).toBe("CommandFailed")
      expect(other.message).toContain("not executable")
    }))

  it.effect("names the command's setting in every failure: command, or proxyCommand for the proxy token", () =>
    Effect.gen(function*() {
      const outcomes = [
        Effect.succeed(result("", 1, "")),
        Effect.succeed(result("")),
        Effect.fail(new CommandRunner.CommandError({ reason: "Timeout", command: "get-token", description: "killed" }))
      ]
      for (const outcome of outcomes) {
        const token = expectLeft((yield* authenticate(outcome)).either)
        expect([token.reason, token.setting]).toEqual([
          token.reason === "Timeout" ? "Timeout" : "CommandFailed",
          "command"
        ])
        const proxy = yield* ExternalCommand.proxyToken({ command: ["get-proxy-token"] }).pipe(
          Effect.provide(runner(outcome).layer),
          Effect.flip
        )
        expect([proxy.reason, proxy.setting]).toEqual([token.reason, "proxyCommand"])
      }
    }))

  it.effect("fails with a Config error when no command is configured, without running anything", () =>
    Effect.gen(function*() {
      for (const command of [[], [""]]) {
        const { calls, either } = yield* authenticate(Effect.succeed(result("t")), { command })
        expect(expectLeft(either).reason).toBe("Config")
        expect(calls).toHaveLength(0)
      }
    }))
})

describe("ExternalCommand.parseOutput", () => {
  it("reads a token without running anything", () => {
    const now = DateTime.unsafeMake(0)
    const parsed = ExternalCommand.parseOutput("{\"token\":\"t\",\"expires_in\":5}", now)
    expect(Either.isRight(parsed) && DateTime.toEpochMillis(parsed.right.expiresAt!)).toBe(5_000)
    const refused = ExternalCommand.parseOutput("", now, "my-cmd")
    expect(Either.isLeft(refused) && refused.left.message).toBe("my-cmd printed no token")
  })
})
