/**
 * The command line around the one `@effect/cli` parse of the full CLI: the global options moved ahead of the
 * command (so that they are parsed once, as the root command's), and a failed parse explained with the option it
 * is about. The options come from the `@effect/cli` commands themselves (`Cli.ts`); this module does not load them.
 *
 * @internal
 */
import * as Either from "effect/Either"
import type { OptionNames } from "./argv.js"
import { repeatedProblem } from "./argv.js"

/**
 * The options each place of the command line accepts, by full name (`--endpoint`, `-h`).
 *
 * @internal
 */
export interface CommandLineOptions {
  /** The root command's own options (the global options), accepted before the command and after it. */
  readonly global: OptionNames
  /** Everything accepted before the command: the global options and `@effect/cli`'s built-in ones. */
  readonly root: OptionNames
  /** Everything accepted after each command, by each of its names: its own, the global and the built-in options. */
  readonly commands: Readonly<Record<string, OptionNames>>
}

const isCommand = (options: CommandLineOptions, arg: string): boolean =>
  Object.prototype.hasOwnProperty.call(options.commands, arg)

/** An option's name as `@effect/cli` matches it (the part before `=`, case-insensitive). */
const nameOf = (arg: string): string => {
  const eq = arg.indexOf("=")
  return (eq === -1 ? arg : arg.slice(0, eq)).toLowerCase()
}

const accepts = (names: OptionNames, name: string): boolean => names.values.includes(name) || names.flags.includes(name)

/**
 * Where the command stands among `args` (-1: nowhere); a value of a global option before it is not the command.
 *
 * @internal
 */
export const commandIndex = (args: ReadonlyArray<string>, options: CommandLineOptions): number => {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === "--") return -1
    if (options.global.values.includes(arg)) i++
    else if (isCommand(options, arg)) return i
  }
  return -1
}

/**
 * Moves the global options given after the command ahead of it (`status --json --endpoint e` becomes
 * `--endpoint=e status --json`), so that `@effect/cli` parses them once, as the root's: a subcommand hands
 * everything after an option it does not know to its parent, which does not know the subcommand's options. Their
 * values are joined with `=`, so that a value that is a command's name (`--command token`) is not taken for the
 * command.
 *
 * Fails with the usage message when an option that takes a value has none: it is the last argument, or an option
 * of the same place follows it (`@effect/cli` would take `--json` for the value of `--endpoint --json`, or a
 * hoisted `--endpoint` the command's name for its value); and when a global option is given twice
 * (`argv.repeatedProblem`, the check `bin.ts` makes too).
 *
 * @internal
 */
export const hoistGlobalOptions = (
  args: ReadonlyArray<string>,
  options: CommandLineOptions
): Either.Either<Array<string>, string> => {
  // Given twice (before and after the command, say), `@effect/cli` would keep one of them silently.
  const repeated = repeatedProblem(args)
  if (repeated !== undefined) return Either.left(repeated)
  const at = commandIndex(args, options)
  const command = at === -1 ? undefined : options.commands[args[at]]
  const hoisted: Array<string> = []
  const rest: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === "--") {
      rest.push(...args.slice(i))
      break
    }
    if (i === at) continue
    const place = command !== undefined && i > at ? command : options.root
    const name = nameOf(arg)
    if (arg.startsWith("-") && !arg.includes("=") && place.values.includes(name)) {
      const value = args[i + 1]
      if (value === undefined || i + 1 === at || accepts(place, value.toLowerCase())) {
        return Either.left(`${name} needs a value`)
      }
    }
    const isGlobal = options.global.flags.includes(arg) || options.global.values.includes(arg.split("=")[0])
    const out = isGlobal || i < at || at === -1 ? hoisted : rest
    if (options.global.values.includes(arg)) out.push(`${arg}=${args[++i]}`)
    else out.push(arg)
  }
  return Either.right(at === -1 ? [...hoisted, ...rest] : [...hoisted, args[at], ...rest])
}

/**
 * The first option of `args` that its place does not accept, as the usage message that names it (`unknown option
 * --bogus (see flyte-auth token --help)`), or `undefined`. Explains a failed parse: `@effect/cli` calls an unknown
 * option before the command an invalid subcommand, and leaves one after the command over.
 *
 * @internal
 */
export const unknownOption = (args: ReadonlyArray<string>, options: CommandLineOptions): string | undefined => {
  let place = options.root
  let where = "flyte-auth"
  let inCommand = false
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === "--") break
    if (!arg.startsWith("-") || arg === "-") {
      if (inCommand) continue
      // Not a command: `@effect/cli`'s message says so, with the list of commands.
      if (!isCommand(options, arg)) return undefined
      place = options.commands[arg]
      where = `flyte-auth ${arg}`
      inCommand = true
      continue
    }
    const name = nameOf(arg)
    if (!accepts(place, name)) return `unknown option ${name} (see ${where} --help)`
    if (place.values.includes(name) && !arg.includes("=")) i++
  }
  return undefined
}
