import { describe, expect, it } from "@effect/vitest"
import { CommandRunner, ExternalCommand } from "@flyte-auth/core"
import { NodeCommandRunner } from "@flyte-auth/node"
import { Duration, Effect, Redacted } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const node = process.execPath

const run = (argv: ReadonlyArray<string>, timeout: Duration.DurationInput = "10 seconds") =>
  Effect.flatMap(CommandRunner.CommandRunner, (runner) => runner.run(argv, { timeout })).pipe(
    Effect.provide(NodeCommandRunner.layer)
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("NodeCommandRunner", () => {
  it.live("runs argv and keeps stdout, stderr and the exit code apart", () =>
    Effect.gen(function*() {
      const ok = yield* run([node, "-e", "process.stdout.write('tok-1\\n'); process.stderr.write('a warning')"])
      expect(ok).toEqual({ exitCode: 0, stdout: "tok-1\n", stderr: "a warning" })

      const failed = yield* run([node, "-e", "process.stdout.write('out'); console.error('bad'); process.exit(7)"])
      expect(failed).toEqual({ exitCode: 7, stdout: "out", stderr: "bad\n" })
    }))

  it.live("passes arguments verbatim, without a shell", () =>
    Effect.gen(function*() {
      const args = ["$(echo injected)", "a b", "; exit 3", "`id`", "*", "\"q\""]
      const result = yield* run([node, "-e", "process.stdout.write(JSON.stringify(process.argv.slice(1)))", ...args])
      expect(result.exitCode).toBe(0)
      expect(JSON.parse(result.stdout)).toEqual(args)
    }))

  it.live("closes stdin, so a program reading it does not wait", () =>
    Effect.gen(function*() {
      const result = yield* run(
        [node, "-e", "process.stdin.resume(); process.stdin.on('end', () => process.stdout.write('eof'))"],
        "5 seconds"
      )
      expect(result.stdout).toBe("eof")
    }))

  it.live("kills a command that outlives its timeout, even one that ignores SIGTERM", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "flyte-auth-runner-"))
      const pidFile = join(dir, "pid")
      const started = Date.now()
      const error = yield* run(
        [
          node,
          "-e",
          `require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));` +
          `process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)`
        ],
        "1 second"
      ).pipe(Effect.flip)
      const elapsed = Date.now() - started
      expect(error._tag).toBe("CommandError")
      expect(error.reason).toBe("Timeout")
      expect(error.command).toBe(node)
      expect(error.message).toContain("1s")
      expect(elapsed).toBeGreaterThanOrEqual(900)
      expect(elapsed).toBeLessThan(8_000)
      const pid = Number(readFileSync(pidFile, "utf8"))
      expect(pid).toBeGreaterThan(0)
      expect(isAlive(pid)).toBe(false)
      rmSync(dir, { recursive: true, force: true })
    }))

  it.live("reports a program that does not exist as NotFound, naming only the program", () =>
    Effect.gen(function*() {
      const error = yield* run(["flyte-auth-no-such-command-4711", "--secret-arg"]).pipe(Effect.flip)
      expect(error.reason).toBe("NotFound")
      expect(error.command).toBe("flyte-auth-no-such-command-4711")
      expect(error.message).not.toContain("--secret-arg")
      expect(JSON.stringify(error)).not.toContain("--secret-arg")
    }))

  it.live("reports a program killed by a signal as a failure", () =>
    Effect.gen(function*() {
      const error = yield* run([node, "-e", "process.kill(process.pid, 'SIGKILL')"]).pipe(Effect.flip)
      expect(error.reason).toBe("Failure")
      expect(error.message).toContain("terminated by a signal")
    }))

  it.live("refuses an empty argv and an endless stdout", () =>
    Effect.gen(function*() {
      expect((yield* run([]).pipe(Effect.flip)).reason).toBe("Failure")
      const flood = yield* run([
        node,
        "-e",
        `process.stdout.write("x".repeat(${NodeCommandRunner.maxOutputBytes + 10}))`
      ])
        .pipe(Effect.flip)
      expect(flood.reason).toBe("Failure")
      expect(flood.message).toContain("more than")
    }))

  it.live("serves the External Command flow end to end", () =>
    Effect.gen(function*() {
      const credentials = yield* ExternalCommand.authenticate({
        endpoint: "flyte.example:443",
        command: [node, "-e", "console.log(JSON.stringify({ access_token: 'real-process-token', expires_in: 60 }))"]
      }).pipe(Effect.provide(NodeCommandRunner.layer))
      expect(Redacted.value(credentials.accessToken)).toBe("real-process-token")
      expect(credentials.expiresAt).toBeDefined()

      const failure = yield* ExternalCommand.authenticate({
        endpoint: "flyte.example:443",
        command: [node, "-e", "process.stdout.write('LEAKED-STDOUT'); process.stderr.write('denied'); process.exit(4)"]
      }).pipe(Effect.provide(NodeCommandRunner.layer), Effect.flip)
      expect(failure.reason).toBe("CommandFailed")
      expect(failure.message).toContain("exited with code 4: denied")
      expect(failure.message).not.toContain("LEAKED-STDOUT")

      const timeout = yield* ExternalCommand.authenticate({
        endpoint: "flyte.example:443",
        command: [node, "-e", "setTimeout(() => {}, 60000)"],
        timeout: Duration.millis(500)
      }).pipe(Effect.provide(NodeCommandRunner.layer), Effect.flip)
      expect(timeout.reason).toBe("Timeout")
    }))
})
