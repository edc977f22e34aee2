/**
 * Running an external command (for the External Command flow and `proxyCommand`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

/**
 * The outcome of a command that ran to completion (whatever its exit code).
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * The command could not be run to completion: not found, not executable, killed after its timeout.
 * It never carries the command's stdout (which may hold a token).
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandError extends Schema.TaggedError<CommandError>("@flyte-auth/core/CommandError")("CommandError", {
  reason: Schema.Literal("NotFound", "Timeout", "Failure"),
  /** The program (argv[0]); its arguments are not kept, they may hold secrets. */
  command: Schema.String,
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.command}: ${this.description}`
  }
}

/**
 * Runs argv directly (never through a shell) with a timeout, keeping stdout and stderr apart.
 *
 * @since 0.1.0
 * @category tags
 */
export class CommandRunner extends Context.Tag("@flyte-auth/core/CommandRunner")<
  CommandRunner,
  CommandRunner.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace CommandRunner {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly run: (
      argv: ReadonlyArray<string>,
      options: { readonly timeout: Duration.DurationInput }
    ) => Effect.Effect<CommandResult, CommandError>
  }
}

/**
 * A runner answered by a function, for deterministic tests.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (
  run: (argv: ReadonlyArray<string>) => Effect.Effect<CommandResult, CommandError>
): Layer.Layer<CommandRunner> => Layer.succeed(CommandRunner, { run: (argv) => Effect.suspend(() => run(argv)) })
