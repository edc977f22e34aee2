/**
 * The Node implementation of the core `CommandRunner`, on `@effect/platform`'s `Command` executor: the program
 * runs as argv (never through a shell) in its own process group, with stdin closed, stdout and stderr captured
 * apart, and a timeout after which the whole group is killed with `SIGKILL`. When the caller is interrupted
 * (Ctrl-C, an aborted call), the group gets `SIGTERM`, then `SIGKILL` after `Policies.commandTerminateGrace`:
 * nothing it started is left behind.
 *
 * @since 0.1.0
 */
import * as NodeCommandExecutor from "@effect/platform-node/NodeCommandExecutor"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as PlatformError from "@effect/platform/Error"
import { CommandError, CommandRunner } from "@flyte-auth/core/CommandRunner"
import type { CommandResult } from "@flyte-auth/core/CommandRunner"
import * as Policies from "@flyte-auth/core/Policies"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/**
 * The most output read from each of stdout and stderr. A command printing more on stdout fails (a token is never
 * that long); stderr is cut.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxOutputBytes = 1024 * 1024

/**
 * How long to wait for a killed process to be reaped before giving up on it.
 *
 * @since 0.1.0
 * @category constants
 */
export const killGrace: Duration.Duration = Duration.seconds(5)

/**
 * A `CommandRunner` on the `CommandExecutor` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<CommandRunner.Service, never, CommandExecutor.CommandExecutor> = Effect.map(
  CommandExecutor.CommandExecutor,
  (executor) => ({ run: (argv, options) => run(executor, argv, options.timeout) })
)

/**
 * The `CommandRunner` for Node, with its own command executor.
 *
 * @example
 * ```ts
 * import { ExternalCommand } from "@flyte-auth/core"
 * import { NodeCommandRunner } from "@flyte-auth/node"
 * import { Effect } from "effect"
 *
 * ExternalCommand.authenticate({ endpoint: "flyte.example.com", command: ["gcloud", "auth", "print-identity-token"] })
 *   .pipe(Effect.provide(NodeCommandRunner.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<CommandRunner> = Layer.effect(CommandRunner, make).pipe(
  Layer.provide(NodeCommandExecutor.layer),
  Layer.provide(NodeFileSystem.layer)
)

// --- internals -------------------------------------------------------------------------------------------------

const run = (
  executor: CommandExecutor.CommandExecutor,
  argv: ReadonlyArray<string>,
  timeout: Duration.DurationInput
): Effect.Effect<CommandResult, CommandError> => {
  const program = argv[0] ?? ""
  if (program === "") {
    return Effect.fail(new CommandError({ reason: "Failure", command: program, description: "The command is empty" }))
  }
  // stdin is an empty stream: the program reads end-of-file at once instead of waiting for input.
  const command = Command.make(program, ...argv.slice(1)).pipe(Command.stdin(Stream.empty))
  return Effect.scoped(
    Effect.gen(function*() {
      const child = yield* executor.start(command).pipe(Effect.mapError((error) => spawnError(program, error)))
      // The group, not only the program: a wrapper script's own children must not outlive an abandoned run.
      // It runs as a finalizer, uninterruptible: the waits are made interruptible so that their timeouts can end them.
      const terminate = Effect.interruptible(child.kill("SIGTERM")).pipe(
        Effect.timeout(Policies.commandTerminateGrace),
        Effect.catchAll(() => Effect.interruptible(child.kill("SIGKILL")).pipe(Effect.timeout(killGrace))),
        Effect.ignore
      )
      const outcome = yield* Effect.all(
        [collect(child.stdout), collect(child.stderr), child.exitCode],
        { concurrency: "unbounded" }
      ).pipe(
        Effect.mapError((error) =>
          new CommandError({
            reason: "Failure",
            command: program,
            description: error.method === "exitCode"
              ? "was terminated by a signal"
              : `failed while running (${reasonOf(error)})`
          })
        ),
        Effect.timeoutOption(timeout),
        Effect.onInterrupt(() => terminate)
      )
      if (Option.isNone(outcome)) {
        yield* child.kill("SIGKILL").pipe(Effect.timeout(killGrace), Effect.ignore)
        return yield* new CommandError({
          reason: "Timeout",
          command: program,
          description: `did not finish within ${Duration.format(Duration.decode(timeout))} and was killed`
        })
      }
      const [stdout, stderr, exitCode] = outcome.value
      if (stdout.truncated) {
        return yield* new CommandError({
          reason: "Failure",
          command: program,
          description: `printed more than ${maxOutputBytes} bytes on stdout`
        })
      }
      return { exitCode, stdout: stdout.text, stderr: stderr.text } satisfies CommandResult
    })
  )
}

/** The spawn error, without the arguments (the platform error quotes the whole command line). */
const spawnError = (program: string, error: PlatformError.PlatformError): CommandError =>
  new CommandError({
    reason: error._tag === "SystemError" && error.reason === "NotFound" ? "NotFound" : "Failure",
    command: program,
    description: error._tag === "SystemError" && error.reason === "NotFound"
      ? "command not found"
      : error._tag === "SystemError" && error.reason === "PermissionDenied"
      ? "permission denied (not executable?)"
      : `could not be started (${reasonOf(error)})`
  })

const reasonOf = (error: PlatformError.PlatformError): string =>
  error._tag === "SystemError" ? error.reason : error._tag

interface Collected {
  readonly text: string
  readonly truncated: boolean
}

/** Reads a stream up to `maxOutputBytes`, draining (and dropping) the rest so the child never blocks on a pipe. */
const collect = <E>(stream: Stream.Stream<Uint8Array, E>): Effect.Effect<Collected, E> =>
  Stream.runFold(stream, { chunks: [] as Array<Uint8Array>, size: 0, truncated: false }, (acc, chunk) => {
    if (acc.size >= maxOutputBytes) {
      acc.truncated = true
      return acc
    }
    const room = maxOutputBytes - acc.size
    if (chunk.length > room) acc.truncated = true
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk
    acc.chunks.push(kept)
    acc.size += kept.length
    return acc
  }).pipe(
    Effect.map((acc) => ({ text: Buffer.concat(acc.chunks).toString("utf8"), truncated: acc.truncated }))
  )
