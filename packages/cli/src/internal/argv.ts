/**
 * Small, dependency-free helpers shared by the fast `token` path and the full CLI: the comma list of `--scopes`
 * and a pre-parse of the command line that recognises the global options without loading `@effect/cli`.
 *
 * @internal
 */

/**
 * Splits `--scopes a,b` (commas and/or spaces) into the scope list.
 *
 * @internal
 */
export const parseScopes = (input: string): Array<string> => input.split(/[\s,]+/).filter((scope) => scope.length > 0)

/**
 * The global options that take a value, by long name (`--endpoint x` or `--endpoint=x`).
 *
 * @internal
 */
export const valueOptions: ReadonlyArray<string> = [
  "endpoint",
  "flyte",
  "api-key",
  "config",
  "auth-mode",
  "client-id",
  "client-secret-env-var",
  "client-secret-location",
  "scopes",
  "audience",
  "authorization-server-url",
  "command",
  "proxy-command",
  "keyring",
  "browser-command",
  "redirect-port",
  "headless",
  "ca-cert-file-path",
  "http-proxy-url",
  "timeout"
]

/**
 * The global flags (no value).
 *
 * @internal
 */
export const flagOptions: ReadonlyArray<string> = [
  "insecure",
  "insecure-skip-verify",
  "verbose",
  "interactive",
  "no-interactive",
  "no-browser"
]

/**
 * A command line split into its command, its global options, and whether anything else was on it.
 *
 * @internal
 */
export interface PreParsed {
  readonly command: string | undefined
  readonly values: ReadonlyMap<string, string>
  readonly flags: ReadonlySet<string>
  /** Something this pre-parse does not understand (another option, a second positional, `--help`...). */
  readonly other: boolean
}

/**
 * Pre-parses a command line (without `node` and the script): global options may come before or after the
 * command. Anything unexpected sets `other`, and the caller then leaves the command line to `@effect/cli`.
 *
 * @internal
 */
export const preParse = (args: ReadonlyArray<string>): PreParsed => {
  const values = new Map<string, string>()
  const flags = new Set<string>()
  let command: string | undefined
  let other = false
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=")
      const name = arg.slice(2, eq === -1 ? undefined : eq)
      if (valueOptions.includes(name)) {
        if (values.has(name)) other = true
        if (eq !== -1) values.set(name, arg.slice(eq + 1))
        else if (i + 1 < args.length) values.set(name, args[++i])
        else other = true
      } else if (flagOptions.includes(name) && eq === -1) {
        flags.add(name)
      } else {
        other = true
      }
    } else if (arg.startsWith("-")) {
      other = true
    } else if (command === undefined) {
      command = arg
    } else {
      other = true
    }
  }
  return { command, values, flags, other }
}

/**
 * The global options given more than once (`@effect/cli` would silently keep one of them).
 *
 * @internal
 */
export const repeatedOptions = (args: ReadonlyArray<string>): Array<string> => {
  const seen = new Set<string>()
  const repeated = new Set<string>()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (!arg.startsWith("--")) continue
    const eq = arg.indexOf("=")
    const name = arg.slice(2, eq === -1 ? undefined : eq)
    const takesValue = valueOptions.includes(name)
    if (!takesValue && !flagOptions.includes(name)) continue
    if (seen.has(name)) repeated.add(`--${name}`)
    seen.add(name)
    if (takesValue && eq === -1) i++ // skip the value
  }
  return [...repeated]
}

/**
 * The usage message for global options given more than once (`repeatedOptions`), or `undefined`.
 *
 * @internal
 */
export const repeatedProblem = (args: ReadonlyArray<string>): string | undefined => {
  const repeated = repeatedOptions(args)
  return repeated.length > 0 ? `${repeated.join(", ")} given more than once; give each option once` : undefined
}

/**
 * `NodeKeyring.backendNames` (this module stays free of dependencies for the fast `token` path).
 *
 * @internal
 */
export const keyringBackends: ReadonlyArray<string> = ["auto", "keytar", "napi", "file", "memory", "none"]

/**
 * The options one place of the command line accepts, by full name (`--endpoint`, `-h`): those that take a value
 * and the flags.
 *
 * @internal
 */
export interface OptionNames {
  readonly values: ReadonlyArray<string>
  readonly flags: ReadonlyArray<string>
}

/** The options whose value must be a whole number. */
const numericOptions: ReadonlyArray<string> = [
  "--timeout",
  "--redirect-port",
  "--admin-port",
  "--admin-http-port",
  "--idp-port",
  "--token-ttl"
]

/** The global options and the number options, wherever they stand. */
const globalNames: OptionNames = {
  values: [...valueOptions.map((name) => `--${name}`), ...numericOptions],
  flags: flagOptions.map((name) => `--${name}`)
}

/**
 * The cheap check of `bin.ts` in front of its fast paths, for what `@effect/cli` would report without naming the
 * option, or would report wrongly: a repeated global option (it would keep one silently), an option that takes a
 * value given without one, a `--keyring` that is not a backend, a number option that is not a number. Returns the
 * message of the first problem, or `undefined`; anything else (an unknown option, say) is left to the full CLI.
 *
 * @internal
 */
export const validValues = (args: ReadonlyArray<string>): string | undefined => {
  const repeated = repeatedProblem(args)
  if (repeated !== undefined) return repeated
  const isOption = (arg: string) => globalNames.values.includes(arg) || globalNames.flags.includes(arg)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === "--") break
    if (!arg.startsWith("-") || arg === "-") continue
    const eq = arg.indexOf("=")
    const name = (eq === -1 ? arg : arg.slice(0, eq)).toLowerCase()
    if (!globalNames.values.includes(name)) continue
    const value = eq === -1 ? args[i + 1] : arg.slice(eq + 1)
    if (value === undefined || (eq === -1 && isOption(value.toLowerCase()))) return `${name} needs a value`
    if (eq === -1) i++
    if (name === "--keyring" && !keyringBackends.includes(value)) {
      return `--keyring must be one of ${keyringBackends.join(", ")} (got "${value}")`
    }
    if (numericOptions.includes(name) && !/^\d+$/.test(value)) {
      return `${name} must be a whole number (got "${value}")`
    }
  }
  return undefined
}
