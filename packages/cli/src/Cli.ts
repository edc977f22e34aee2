/**
 * The `flyte-auth` command line: `login`, `token`, `status`, `logout`, `whoami`, `sandbox` and `demo`, built with
 * `@effect/cli`. Every command accepts the global options before or after its name.
 *
 * @since 0.1.0
 */
import * as BuiltInOptions from "@effect/cli/BuiltInOptions"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as Usage from "@effect/cli/Usage"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type { OptionNames } from "./internal/argv.js"
import type * as AuthCommandsModule from "./internal/authCommands.js"
import type { CommandLineOptions } from "./internal/commandLine.js"
import { commandIndex, hoistGlobalOptions, unknownOption } from "./internal/commandLine.js"
import type { Circumstances } from "./internal/errors.js"
import { CliError, exitCodes, FailureCircumstances, report } from "./internal/errors.js"
import type { GlobalArgs } from "./internal/globalOptions.js"
import { choices, globalOptions, optionNames } from "./internal/globalOptions.js"
import { helpPage, oneLine, render, typeParagraphs, withoutParagraphs } from "./internal/help.js"
import * as SandboxCommand from "./internal/sandboxCommand.js"

/**
 * The version printed by `--version`.
 *
 * @since 0.1.0
 * @category constants
 */
export const version = "0.1.0"

const root = Command.make("flyte-auth", globalOptions, () =>
  Effect.fail(
    new CliError({ message: "no command given; run `flyte-auth --help` to see the commands", exitCode: 2 })
  )).pipe(
    Command.withDescription(
      "Authenticate to a Flyte deployment (PKCE, device code, client credentials, external command), keep the " +
        "credentials in a keyring and hand out fresh access tokens."
    )
  )

/** The commands' implementations, loaded when one runs (so `--help` and `sandbox` do not load them). */
const AuthCommands = Effect.promise(() => import("./internal/authCommands.js"))

/** Runs one of the auth commands with the global options (the root command's). */
const runAuth = <E>(f: (commands: typeof AuthCommandsModule, args: GlobalArgs) => Effect.Effect<void, E>) =>
  Effect.flatten(Effect.zipWith(AuthCommands, root, f))

/**
 * A subcommand's description followed by the global options, which belong to the root command (so that
 * `@effect/cli` parses them once) but are accepted after every command too (see `hoistGlobalOptions`).
 */
const describe = (description: string) =>
  Command.withDescription(
    HelpDoc.sequence(
      HelpDoc.p(description),
      HelpDoc.sequence(HelpDoc.h1("GLOBAL OPTIONS"), Options.getHelp(Options.all(globalOptions)))
    )
  )

const login = Command.make(
  "login",
  {},
  () => runAuth((m, args) => m.login(args))
).pipe(
  describe(
    "Run the configured flow now and store the credentials; reports `Logged in to <endpoint> as <subject>` and " +
      "the expiry on stderr."
  )
)

const token = Command.make(
  "token",
  {},
  () => runAuth((m, args) => m.token(args))
).pipe(
  describe(
    "Print a valid access token on stdout (from the keyring, refreshed when needed). Logs in only when that " +
      "needs no user (ClientSecret, ExternalCommand), or when stdin and stderr are terminals, or with " +
      "--interactive; otherwise fails with AccessTokenNotFound (exit code 3). Usable as another tool's external command."
  )
)

const status = Command.make(
  "status",
  {
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object.")),
    all: Options.boolean("all").pipe(Options.withDescription("List the stored logins of every endpoint."))
  },
  ({ all, json }) => runAuth((m, args) => m.status(args, json, all))
).pipe(
  describe(
    "Show the endpoint, client id, auth mode, keyring backend and the selected login (subject, scopes, expiry), " +
      "then every stored login of the endpoint (--all: of every endpoint), the selected one marked *; offline: " +
      "nothing is contacted, nothing refreshed. \"logged in\" (loggedIn with --json) means `token` can hand out a " +
      "token without a new login: credentials are stored for this client and mode, and their access token is " +
      "still fresh, or a refresh token is stored, or the auth mode needs no user (ClientSecret, ExternalCommand). " +
      "Exits with 1 when not logged in, so that scripts can test it."
  )
)

const logout = Command.make(
  "logout",
  {},
  () => runAuth((m, args) => m.logout(args))
).pipe(
  describe(
    "Revoke and forget the stored credentials of the endpoint and the configured client (other clients' logins stay)."
  )
)

const whoami = Command.make(
  "whoami",
  {},
  () => runAuth((m, args) => m.whoami(args))
).pipe(
  describe(
    "Call flyteidl.service.IdentityService/UserInfo through the authenticated channel and print the response " +
      "as JSON."
  )
)

const port = (name: string, fallback: number, what: string) =>
  Options.integer(name).pipe(
    Options.withDescription(`Port of ${what} (default ${fallback}; 0 picks a free port).`),
    Options.withPseudoName("PORT"),
    Options.withDefault(fallback)
  )

const sandbox = Command.make(
  "sandbox",
  {
    adminPort: port("admin-port", SandboxCommand.defaultPorts.adminGrpc, "the admin's gRPC server"),
    adminHttpPort: port("admin-http-port", SandboxCommand.defaultPorts.adminHttp, "the admin's HTTP server"),
    idpPort: port("idp-port", SandboxCommand.defaultPorts.idp, "the IdP (the issuer)"),
    adminConnectPort: port(
      "admin-connect-port",
      SandboxCommand.defaultPorts.adminConnect,
      "the Flyte 2 admin, with --flyte 2"
    ),
    tokenTtl: Options.integer("token-ttl").pipe(
      Options.withDescription("Lifetime of access tokens in seconds (default 600)."),
      Options.withPseudoName("SECONDS"),
      Options.optional
    ),
    autoApprove: Options.boolean("auto-approve").pipe(
      Options.withDescription("Sign the demo user in and grant consent without showing the login pages.")
    ),
    approveDeviceCodes: Options.boolean("approve-device-codes").pipe(
      Options.withDescription(
        "Approve every device code as the demo user as soon as it is issued, as a second device would: a " +
          "`--auth-mode DeviceFlow` login completes on a machine without any browser."
      )
    ),
    headerKey: Options.text("header-key").pipe(
      Options.withDescription("Header / metadata key the admin reads the token from (default flyte-authorization)."),
      Options.withPseudoName("KEY"),
      Options.optional
    ),
    requireProxyToken: Options.text("require-proxy-token").pipe(
      Options.withDescription(
        "Put the admins behind an identity-aware proxy: every admin call (gRPC, HTTP, ConnectRPC) must carry " +
          "proxy-authorization: Bearer TOKEN, else HTTP 407 / gRPC UNAUTHENTICATED from the proxy."
      ),
      Options.withPseudoName("TOKEN"),
      Options.optional
    ),
    envFile: Options.text("write-env-file").pipe(
      Options.withDescription(
        "Write the FLYTE_* variables of the sandbox's service account to PATH (0600), for " +
          "`node --env-file=PATH examples/dist/<example>.js` and any program using createAuthClient()."
      ),
      Options.withPseudoName("PATH"),
      Options.optional
    ),
    redirectUri: Options.text("redirect-uri").pipe(
      Options.withDescription(
        "Redirect URI the admin publishes for PKCE (default http://localhost:53593/callback, as Flyte; port 0 lets " +
          "the client pick a free port)."
      ),
      Options.withPseudoName("URI"),
      Options.optional
    )
  },
  (args) =>
    // `--flyte` is a global option: it may come before `sandbox` too.
    Effect.flatMap(root, ({ flyte }) => {
      const invalid = [args.adminPort, args.adminHttpPort, args.idpPort, args.adminConnectPort].find((p) =>
        p < 0 || p > 65535
      )
      if (invalid !== undefined) {
        return Effect.fail(new CliError({ message: `port ${invalid} is not between 0 and 65535`, exitCode: 2 }))
      }
      if (Option.isSome(args.tokenTtl) && args.tokenTtl.value <= 0) {
        return Effect.fail(new CliError({ message: "--token-ttl must be a positive number of seconds", exitCode: 2 }))
      }
      return SandboxCommand.run({
        adminPort: args.adminPort,
        adminHttpPort: args.adminHttpPort,
        idpPort: args.idpPort,
        flyte2: Option.getOrUndefined(flyte) === "2",
        adminConnectPort: args.adminConnectPort,
        tokenTtl: Option.getOrUndefined(args.tokenTtl),
        autoApprove: args.autoApprove,
        approveDeviceCodes: args.approveDeviceCodes,
        headerKey: Option.getOrUndefined(args.headerKey),
        proxyToken: Option.getOrUndefined(args.requireProxyToken),
        redirectUri: Option.getOrUndefined(args.redirectUri),
        envFile: Option.getOrUndefined(args.envFile)
      })
    })
).pipe(
  describe(
    "Run a local Flyte-auth environment (an oidc-provider IdP and a Flyte-like admin on 127.0.0.1) until Ctrl-C; " +
      "with --flyte 2 also a Flyte-2-like admin (flyteidl2 over ConnectRPC: Connect, gRPC and gRPC-web on one " +
      "port), which the printed command and --write-env-file then point at. " +
      "The first stdout line is a JSON object with its addresses, clients and demo user."
  )
)

const demo = Command.make(
  "demo",
  {
    tokenTtl: Options.integer("token-ttl").pipe(
      Options.withDescription("Lifetime of the sandbox's access tokens in seconds (default 20)."),
      Options.withPseudoName("SECONDS"),
      Options.withDefault(20)
    )
  },
  ({ tokenTtl }) =>
    Effect.flatMap(root, (merged) =>
      Effect.flatMap(
        Effect.promise(() => import("./internal/demo.js")),
        (Demo) => Demo.run({ verbose: Option.isSome(merged.verbose), tokenTtlSeconds: tokenTtl })
      ))
).pipe(
  describe(
    "Start the sandbox in-process and run all four flows end to end in a fresh temporary keyring (PKCE through a " +
      "headless user agent, device code approved by a simulated second device, client credentials, external " +
      "command), call whoami over gRPC and HTTP with each, force an expiry and show the refresh, print a summary. " +
      "Exits 0 only if everything passed."
  )
)

const subcommands = [login, token, status, logout, whoami, sandbox, demo] as const

const command = root.pipe(Command.withSubcommands(subcommands))

const cliConfig = CliConfig.make({ showBuiltIns: false })

const union = (a: OptionNames, b: OptionNames): OptionNames => ({
  values: [...a.values, ...b.values],
  flags: [...a.flags, ...b.flags]
})

/**
 * The real options of each place of the command line, from the commands themselves (and `@effect/cli`'s built-in
 * `--help`, `--version`, `--wizard`, `--completions`, `--log-level`); the root's options are accepted after a
 * command too.
 */
const commandLine: CommandLineOptions = (() => {
  const global = optionNames(Descriptor.getUsage(root.descriptor))
  const builtIns = optionNames(
    Options.getUsage(BuiltInOptions.builtInOptions(command.descriptor, Usage.empty, HelpDoc.empty))
  )
  const commands: Record<string, OptionNames> = {}
  for (const subcommand of subcommands) {
    const names = union(union(optionNames(Descriptor.getUsage(subcommand.descriptor)), global), builtIns)
    for (const name of HashSet.values(Descriptor.getNames(subcommand.descriptor))) commands[name] = names
  }
  return { global, root: union(global, builtIns), commands }
})()

/** A usage error found on the command line, before any command ran. */
const usage = (message: string) => new CliError({ message, exitCode: exitCodes.usage, ofCommandLine: true })

const seeHelp = "run `flyte-auth --help` for the commands and options"

/**
 * Parses the command line once and runs what it asks for: a command's handler, or the help or version. A usage
 * error is reported like every other error (one line, saying what to do), never by `@effect/cli`.
 */
const runCommandLine = (
  args: ReadonlyArray<string>
): Effect.Effect<void, unknown, NodeContext.NodeContext | FailureCircumstances> =>
  Effect.suspend(() => {
    const hoisted = hoistGlobalOptions(args, commandLine)
    if (Either.isLeft(hoisted)) return Effect.fail(usage(hoisted.left))
    /** A failed parse: named by the option it is about when it is about one, else as the command's failure. */
    const invalid = (what: string) => {
      const unknown = unknownOption(args, commandLine)
      return unknown !== undefined ? usage(unknown) : new CliError({ message: what, exitCode: exitCodes.usage })
    }
    return Descriptor.parse(command.descriptor, ["flyte-auth", ...hoisted.right], cliConfig).pipe(
      Effect.catchIf(
        (error) => ValidationError.isValidationError(error) && !ValidationError.isHelpRequested(error),
        (error) => Effect.fail(invalid(`${oneLine(error.error)} — ${seeHelp}`))
      ),
      Effect.flatMap((directive): Effect.Effect<void, unknown, NodeContext.NodeContext | FailureCircumstances> => {
        if (directive._tag === "UserDefined") {
          if (directive.leftover.length > 0) {
            return Effect.fail(invalid(`unknown argument "${directive.leftover[0]}" — ${seeHelp}`))
          }
          // As `Command.run` does: the handler with the parsed values of the command and its parents provided.
          return command.transform(command.handler(directive.value), directive.value)
        }
        switch (directive.option._tag) {
          case "ShowHelp":
            return showHelp(directive.option.usage, directive.option.helpDoc)
          case "ShowVersion":
            return Console.log(render(HelpDoc.p(version), colors))
          default:
            // --completions, --wizard, --log-level: rare, left to `@effect/cli` (which parses again).
            return Command.run(command, { name: "flyte-auth", version })(["node", "flyte-auth", ...hoisted.right])
        }
      }),
      // Help a command asks for (`ValidationError.helpRequested`), as `Command.run` shows it. (`Command.run` also
      // registers the descriptors, for the help of a command made without a handler; every command here has one.)
      Effect.catchIf(
        (error) => ValidationError.isValidationError(error) && ValidationError.isHelpRequested(error),
        (error) => showHelp(Descriptor.getUsage(error.command), Descriptor.getHelp(error.command, cliConfig))
      )
    )
  })

const colors = process.stdout.isTTY === true && process.env.NO_COLOR === undefined

/** The paragraphs of the help that only name an option's type (see `help.typeParagraphs`). */
const typeOnly = typeParagraphs([choices.flyte, choices.keyring, choices.headless])

/** Prints the help of a command on stdout: without the paragraphs on the options' types, coloured on a terminal. */
const showHelp = (usage: Usage.Usage, help: HelpDoc.HelpDoc) =>
  Console.log(
    render(
      helpPage({ name: "flyte-auth", version, usage, help: withoutParagraphs(help, typeOnly), config: cliConfig }),
      colors
    )
  )

/**
 * The command that failed, for the error line (`flyte-auth <command>: ...`).
 */
const commandName = (args: ReadonlyArray<string>): string => {
  const at = commandIndex(args.slice(2), commandLine)
  return at === -1 ? "" : args[at + 2]
}

/**
 * Runs the CLI on `process.argv`-shaped arguments and exits the process with the command's exit code.
 *
 * @since 0.1.0
 * @category running
 */
export const main = (argv: ReadonlyArray<string>): void => {
  const verbose = argv.includes("--verbose")
  const circumstances = Ref.unsafeMake<Circumstances>({})
  const { afterSuccess, logger } = stderrLogger(commandName(argv), verbose)
  const program = runCommandLine(argv.slice(2)).pipe(
    // A failure is reported once, by `exitCodeOf`; not also as the runtime's "Fiber terminated" debug line (of
    // the forked fibers here, of the root fiber by ending it with the exit as its value).
    Effect.withUnhandledErrorLogLevel(Option.none()),
    Effect.provide(
      Layer.mergeAll(
        NodeContext.layer,
        Layer.succeed(CliConfig.CliConfig, cliConfig),
        Layer.succeed(FailureCircumstances, circumstances),
        Logger.replace(Logger.defaultLogger, logger),
        Logger.minimumLogLevel(verbose ? LogLevel.Debug : LogLevel.Warning)
      )
    )
  )
  const controller = new AbortController()
  const onSignal = () => controller.abort()
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  Effect.runPromiseExit(Effect.exit(program), { signal: controller.signal }).then((outer) => {
    const exit = Exit.isSuccess(outer) ? outer.value : outer
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    if (Exit.isSuccess(exit)) afterSuccess()
    process.exitCode = exitCodeOf(exit, commandName(argv), verbose, Effect.runSync(Ref.get(circumstances)))
  })
}

const exitCodeOf = (
  exit: Exit.Exit<void, unknown>,
  command: string,
  verbose: boolean,
  circumstances: Circumstances
): number => {
  if (Exit.isSuccess(exit)) return 0
  // Ctrl-C / SIGTERM: the normal way to stop `sandbox`; for any other command the work was abandoned.
  if (Cause.isInterruptedOnly(exit.cause)) return command === "sandbox" ? 0 : 130
  const failure = Cause.failureOption(exit.cause)
  // Only from the built-in options left to `@effect/cli` (see `runCommandLine`), which has printed them.
  if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
    return ValidationError.isHelpRequested(failure.value) ? 0 : exitCodes.usage
  }
  const { exitCode, lines } = report(command, exit.cause, verbose, circumstances)
  for (const line of lines) process.stderr.write(`${line}\n`)
  return exitCode
}

/**
 * Log lines go to stderr, so that stdout carries only what was asked for. Without `--verbose` only warnings and
 * errors are shown, and the file keyring's reminder that it does not encrypt is shown by a successful `login` only
 * (the user chose `--keyring file`; repeating it on every `token` would drown the output of scripts, and a failed
 * login stored nothing). A failed `login` reports a keyring that could not store as its error, not also as the
 * Authenticator's warning.
 */
const stderrLogger = (command: string, verbose: boolean) => {
  const deferred: Array<string> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map((m) => typeof m === "string" ? m : String(m))
      .join(" ")
    const prefix = logLevel._tag === "Warning" ? "warning: " : logLevel._tag === "Error" ? "error: " : ""
    const warning = HashMap.get(annotations, Keyring.warningAnnotation)
    if (!verbose && Option.contains(warning, "Unencrypted")) {
      if (command === "login") deferred.push(`${prefix}${text}`)
      return
    }
    if (!verbose && command === "login" && Option.contains(warning, "MemoryOnly")) return
    process.stderr.write(`${prefix}${text}\n`)
  })
  const afterSuccess = () => {
    for (const line of deferred.splice(0)) process.stderr.write(`${line}\n`)
  }
  return { logger, afterSuccess }
}
