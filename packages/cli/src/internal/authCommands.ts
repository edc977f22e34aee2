/**
 * `login`, `token`, `status`, `logout` and `whoami`: the commands that work on the credentials of one endpoint,
 * through `AuthLayer` (explicit options over Flyte's config file and `FLYTE_*` variables).
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import { Authenticator } from "@flyte-auth/core/Authenticator"
import type { AuthenticationError, AuthError } from "@flyte-auth/core/AuthError"
import * as AuthMode from "@flyte-auth/core/AuthMode"
import * as Credentials from "@flyte-auth/core/Credentials"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as StoredCredentials from "@flyte-auth/core/StoredCredentials"
import * as AuthLayer from "@flyte-auth/node/AuthLayer"
import * as NodeKeyring from "@flyte-auth/node/NodeKeyring"
import * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { parseScopes } from "./argv.js"
import { CliError, exitCodes, noteCircumstances } from "./errors.js"
import type { GlobalArgs } from "./globalOptions.js"
import * as Jwt from "./jwt.js"

/**
 * Whether a command may start an interactive login: `login` always (unless `--no-interactive`); `token` and
 * `whoami` when stdin and stderr are terminals (someone can see the prompt), or with `--interactive`.
 *
 * @internal
 */
export const allowInteractive = (args: GlobalArgs, command: "login" | "token" | "whoami" | "none"): boolean => {
  if (Option.isSome(args.noInteractive)) return false
  if (command === "none") return false
  if (command === "login" || Option.isSome(args.interactive)) return true
  return process.stdin.isTTY === true && process.stderr.isTTY === true
}

/**
 * The `AuthLayer` options for the global options (only what was given: the config file fills the rest). Checks what
 * only the command line can tell (contradicting flags, a given but empty value, a timeout or port out of range);
 * `AuthLayer.resolve` checks the values themselves (see `resolveOptions`).
 *
 * @internal
 */
export const authOptions = (
  args: GlobalArgs,
  allow: boolean,
  keyring: Layer.Layer<Keyring.Keyring>
): Effect.Effect<AuthLayer.Options, CliError> =>
  Effect.gen(function*() {
    if (Option.isSome(args.interactive) && Option.isSome(args.noInteractive)) {
      return yield* usage("--interactive and --no-interactive cannot be used together")
    }
    if (Option.isSome(args.timeout) && args.timeout.value <= 0) {
      return yield* usage("--timeout must be a positive number of seconds")
    }
    if (Option.isSome(args.redirectPort) && (args.redirectPort.value < 1 || args.redirectPort.value > 65535)) {
      return yield* usage("--redirect-port must be a port between 1 and 65535")
    }
    const scopes = Option.map(args.scopes, parseScopes)
    if (Option.isSome(scopes) && scopes.value.length === 0) return yield* usage("--scopes is empty")
    for (
      const [name, value] of [["--command", args.command], ["--proxy-command", args.proxyCommand], [
        "--browser-command",
        args.browserCommand
      ]] as const
    ) {
      // A malformed command is `AuthLayer.resolve`'s to report (see `resolveOptions`); an empty one it takes for
      // "not given", so only the command line can say that it was given empty.
      if (
        Option.isSome(value) && Option.contains(yield* Effect.option(AuthLayer.parseArgv(value.value, name)), undefined)
      ) {
        return yield* usage(`${name} is empty`)
      }
    }
    const pick = <A>(o: Option.Option<A>): A | undefined => Option.getOrUndefined(o)
    const options: AuthLayer.Options = {
      endpoint: pick(args.endpoint),
      flyte: Option.match(args.flyte, {
        onNone: () => undefined,
        onSome: (flyte) => flyte === "auto" ? "auto" : flyte === "2" ? 2 : 1
      }),
      apiKey: pick(args.apiKey),
      insecure: pick(args.insecure),
      configFile: pick(args.config),
      authMode: pick(args.authMode),
      clientId: pick(args.clientId),
      clientSecretEnvVar: pick(args.clientSecretEnvVar),
      clientSecretLocation: pick(args.clientSecretLocation),
      scopes: pick(scopes),
      audience: pick(args.audience),
      authorizationServerUrl: pick(args.authorizationServerUrl),
      command: pick(args.command),
      proxyCommand: pick(args.proxyCommand),
      browserCommand: pick(args.browserCommand),
      redirectPort: pick(args.redirectPort),
      openBrowser: Option.isSome(args.noBrowser) ? false : undefined,
      headless: pick(args.headless),
      caCertFilePath: pick(args.caCertFilePath),
      insecureSkipVerify: pick(args.insecureSkipVerify),
      httpProxyUrl: pick(args.httpProxyUrl),
      timeoutSeconds: pick(args.timeout),
      allowInteractive: allow,
      keyring
    }
    return options
  })

const usage = (message: string) => Effect.fail(new CliError({ message, exitCode: 2 }))

/**
 * The settings whose `Config` errors (from `AuthLayer.resolve`) are about the value as the user typed it, with the
 * global option that gives it. A setting that names a file or a variable (`clientSecretLocation`) is not here:
 * that the file cannot be read is not a usage error.
 */
const typedSettings: Readonly<Record<string, "authMode" | "command" | "proxyCommand" | "browserCommand">> = {
  authMode: "authMode",
  command: "command",
  proxyCommand: "proxyCommand",
  browserCommand: "browserCommand"
}

/**
 * A `Config` error of `AuthLayer.resolve` about a setting given on the command line (an unknown `--auth-mode`, a
 * `--command` that is not a JSON array) as the usage error it is (exit code 2), with `AuthLayer`'s message; any
 * other error as it is.
 */
const asUsageError = (args: GlobalArgs) => (error: AuthenticationError): AuthenticationError | CliError => {
  const option = error.reason === "Config" && error.setting !== undefined ? typedSettings[error.setting] : undefined
  return option !== undefined && Option.isSome(args[option])
    ? new CliError({ message: error.description, cause: error, exitCode: exitCodes.usage })
    : error
}

/** What the options resolve to (`AuthLayer.resolve`), noted for the hint of a failure (see `asUsageError`). */
const resolveOptions = (args: GlobalArgs, options: AuthLayer.Options) =>
  AuthLayer.resolve(options).pipe(Effect.mapError(asUsageError(args)), Effect.tap(noteResolved))

/**
 * The keyring of `--keyring` (default `auto`), shared by the `Authenticator` and `status`.
 *
 * @internal
 */
export const keyringLayer = (args: GlobalArgs): Layer.Layer<Keyring.Keyring> =>
  NodeKeyring.layerFromName(Option.getOrElse(args.keyring, () => "auto" as const))

type Services = Authenticator | AuthLayer.Settings | HttpClient.HttpClient | Keyring.Keyring

/**
 * Runs `f` with the `Authenticator`, the `Settings`, the authenticated `HttpClient` and the keyring.
 *
 * @internal
 */
export const withAuth = <A, E>(
  args: GlobalArgs,
  command: "login" | "token" | "whoami" | "none",
  f: Effect.Effect<A, E, Services | Scope.Scope>
): Effect.Effect<A, E | AuthError | CliError> =>
  Effect.gen(function*() {
    const keyring = keyringLayer(args)
    const options = yield* authOptions(args, allowInteractive(args, command), keyring)
    yield* noteArgs(args)
    // The layer resolves the options once; its errors in doing so are reported as `resolveOptions` reports them.
    const layer = AuthLayer.layer(options).pipe(Layer.mapError(asUsageError(args)))
    return yield* Effect.flatMap(AuthLayer.Settings, noteResolved).pipe(
      Effect.zipRight(Effect.scoped(f)),
      Effect.provide(Layer.merge(layer, keyring))
    )
  })

/** Notes the options the hint of a failure depends on (see `errors.hint`). */
const noteArgs = (args: GlobalArgs) =>
  noteCircumstances({
    clientSecretEnvVar: Option.getOrUndefined(args.clientSecretEnvVar),
    noInteractive: Option.isSome(args.noInteractive)
  })

const noteResolved = (resolved: { readonly endpoint: string; readonly insecure: boolean }) =>
  noteCircumstances({ endpoint: resolved.endpoint, insecure: resolved.insecure })

/**
 * How often a long interactive wait (browser login, device approval) reports on stderr that it is still waiting.
 *
 * @internal
 */
export const progressInterval = Duration.seconds(15)

/**
 * Runs `self`, printing a line on stderr every `progressInterval` while it has not finished, naming what it
 * waits for: first the proxy command (when one is configured: its token comes before anything else), then the
 * login, or the token command of the ExternalCommand mode.
 */
const withProgress = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | AuthError, R | AuthLayer.Settings> =>
  Effect.flatMap(AuthLayer.Settings, (settings) => {
    const proxyFirst: Effect.Effect<void, AuthError> = settings.proxyToken === undefined
      ? Effect.void
      : Effect.asVoid(
        ticking(settings.proxyToken.get, `the proxy command ${settings.proxyProgram}`, settings.commandTimeout)
      )
    const what = settings.authMode === "ExternalCommand" ? "the token command" : "the login to complete"
    return Effect.zipRight(proxyFirst, ticking(self, what, settings.loginTimeout))
  })

const ticking = <A, E, R>(self: Effect.Effect<A, E, R>, what: string, bound: Duration.Duration) => {
  const limit = Math.round(Duration.toSeconds(bound))
  return Effect.suspend(() => {
    const started = Date.now()
    const tick = Effect.suspend(() =>
      Console.error(
        `… still waiting for ${what} (${Math.round((Date.now() - started) / 1000)} s of at most ${limit} s)`
      )
    )
    return Effect.raceFirst(self, tick.pipe(Effect.delay(progressInterval), Effect.forever))
  })
}

/**
 * Runs `f` with what the options resolve to (endpoint, auth mode, ...) and the keyring, without building the
 * `Authenticator`: `status` and `logout` work offline (a DeviceFlow authenticator, say, asks the server for its
 * endpoints when it is built). The stored credentials are those of the endpoint and configured client
 * (`StoredCredentials.find`), the ones the `Authenticator` reads and writes.
 *
 * @internal
 */
export const withResolved = <A, E>(
  args: GlobalArgs,
  f: (
    resolved: Effect.Effect.Success<ReturnType<typeof AuthLayer.resolve>>
  ) => Effect.Effect<A, E, Keyring.Keyring>
): Effect.Effect<A, E | AuthError | CliError> =>
  Effect.gen(function*() {
    const keyring = keyringLayer(args)
    const options = yield* authOptions(args, false, keyring)
    yield* noteArgs(args)
    const resolved = yield* resolveOptions(args, options)
    return yield* f(resolved).pipe(Effect.provide(keyring))
  })

// --- login -------------------------------------------------------------------------------------------------------

/** @internal */
export const login = (args: GlobalArgs) =>
  withAuth(
    args,
    "login",
    Effect.gen(function*() {
      const auth = yield* Authenticator
      const settings = yield* AuthLayer.Settings
      const keyring = yield* Keyring.Keyring
      const persistent = keyring.backend !== "memory" && keyring.backend !== "none"
      // Storing is the point of `login`: a store that cannot write fails it before a browser opens.
      if (persistent) {
        yield* NodeKeyring.probe(keyring).pipe(
          Effect.catchAll((error) =>
            Effect.fail(
              new CliError({
                message: `cannot store credentials in the ${keyring.backend} keyring (${error.description}) — ${
                  otherStore(keyring.backend)
                }`,
                cause: error
              })
            )
          )
        )
      }
      const credentials = yield* withProgress(auth.login)
      if (persistent) yield* checkStored(keyring, settings, credentials)
      const now = yield* DateTime.now
      const subject = subjectOf(credentials, yield* serviceClientId(settings))
      yield* Console.error(
        `Logged in to ${settings.endpoint} as ${subject ?? "an unknown subject (opaque token)"}` +
          `; ${describeExpiry(credentials, now)}${notStored(keyring.backend, args)}`
      )
    })
  )

/** What `login` adds when its keyring keeps nothing for the next command. */
const notStored = (backend: string, args: GlobalArgs): string =>
  backend === "none"
    ? " (not stored: --keyring none)"
    : backend === "memory" && Option.getOrElse(args.keyring, () => "auto") === "auto"
    ? " (NOT stored: no OS keyring is usable, so nothing outlives this command; use --keyring file to keep it)"
    : backend === "memory"
    ? " (not stored: the memory keyring keeps it for this command only)"
    : ""

/** What to choose instead of a keyring that cannot store. */
const otherStore = (backend: string): string =>
  backend === "file"
    ? `set ${NodeKeyring.credentialsDirEnv} to a writable directory, or choose --keyring keytar or napi`
    : "choose --keyring file (plain files, 0600) or make the OS keyring (Secret Service) available"

/** The credentials the login wrote, read back: a login whose final write failed has stored nothing. */
const checkStored = (
  keyring: Keyring.Keyring.Service,
  settings: AuthLayer.ResolvedSettings,
  credentials: Credentials.Credentials
) =>
  keyring.get(Keyring.serviceName, Credentials.keyringAccount(settings.endpoint, settings.clientId)).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(false),
      onSome: (entry) =>
        Credentials.decodeKeyringEntry(entry).pipe(
          Effect.map((stored) => Redacted.value(stored.accessToken) === Redacted.value(credentials.accessToken)),
          Effect.orElseSucceed(() => false)
        )
    })),
    Effect.orElseSucceed(() => false),
    Effect.flatMap((stored) =>
      stored ? Effect.void : Effect.fail(
        new CliError({
          message: `logged in, but the credentials could not be stored in the ${keyring.backend} keyring, so the ` +
            `next command will not find them — ${otherStore(keyring.backend)}`
        })
      )
    )
  )

// --- token -------------------------------------------------------------------------------------------------------

/** @internal */
export const token = (args: GlobalArgs) =>
  withAuth(
    args,
    "token",
    Effect.gen(function*() {
      const auth = yield* Authenticator
      const accessToken = yield* (allowInteractive(args, "token") ? withProgress(auth.accessToken) : auth.accessToken)
      // The one place where a secret is printed: the caller asked for it.
      yield* Effect.sync(() => process.stdout.write(`${Redacted.value(accessToken)}\n`))
    })
  )

// --- status ------------------------------------------------------------------------------------------------------

/**
 * One stored login in `status`: `StatusReport.logins`.
 *
 * @internal
 */
export interface LoginReport {
  readonly endpoint: string
  /** The configured client id of the login; `null` for the admin's client (and for a `legacy` entry). */
  readonly clientId: string | null
  readonly authMode: AuthMode.AuthMode | null
  /** The keyring account (`Credentials.keyringAccount`; the bare endpoint for a `legacy` entry). */
  readonly account: string
  /** An entry written before accounts were per client: moved by its owner on first use, never used by another. */
  readonly legacy: boolean
  /** The login `token` would use with these options. */
  readonly selected: boolean
  /** Whether it hands out a token without a user (see `StatusReport.loggedIn`); `false` for a legacy entry. */
  readonly loggedIn: boolean
  readonly subject: string | null
  readonly expiresAt: string | null
  readonly expired: boolean | null
  readonly refreshToken: boolean
}

/**
 * What `status --json` prints: the selected login (the endpoint and client of the options) and every stored
 * login of the endpoint (`--all`: of every endpoint).
 *
 * @internal
 */
export interface StatusReport {
  readonly endpoint: string
  /** The configured client id; `null` for the admin's client. */
  readonly clientId: string | null
  readonly authMode: AuthMode.AuthMode
  readonly keyringBackend: string
  readonly insecure: boolean
  /**
   * Whether `token` can hand out a token without a new login: credentials are stored for this client and mode,
   * and their access token is still fresh, or a refresh token is stored, or the auth mode renews without a user
   * (ClientSecret, ExternalCommand). When it is `false`, `status` exits with code 1.
   */
  readonly loggedIn: boolean
  readonly subject: string | null
  readonly scopes: ReadonlyArray<string> | null
  readonly expiresAt: string | null
  readonly expiresInSeconds: number | null
  readonly expired: boolean | null
  readonly refreshToken: boolean
  readonly logins: ReadonlyArray<LoginReport>
}

/** The Authenticator's rule: a token no longer fresh is renewed with a refresh token, or by a mode without a user. */
const renewable = (credentials: Credentials.Credentials, authMode: AuthMode.AuthMode, now: DateTime.Utc) =>
  Credentials.isFresh(credentials, now) || credentials.refreshToken !== undefined || !AuthMode.isInteractive(authMode)

const isoOrNull = (instant: DateTime.Utc | undefined) => instant === undefined ? null : DateTime.formatIso(instant)

const expiredAt = (instant: DateTime.Utc | undefined, now: DateTime.Utc) =>
  instant === undefined ? null : DateTime.toEpochMillis(instant) <= DateTime.toEpochMillis(now)

/** @internal */
export const status = (args: GlobalArgs, json: boolean, all = false) =>
  all
    ? Effect.catchIf(
      selectedStatus(args, json, all),
      (error) => error._tag === "AuthenticationError" && error.setting === "endpoint",
      // `--all` without an endpoint: every stored login, none selected.
      () => allLogins(args, json)
    )
    : selectedStatus(args, json, all)

/** `status --all` when no endpoint is configured: the stored logins of every endpoint; exit 0. */
const allLogins = (args: GlobalArgs, json: boolean) =>
  Effect.gen(function*() {
    const keyring = yield* Keyring.Keyring
    const now = yield* DateTime.now
    const logins = loginReports(yield* listLogins(keyring, undefined), now, () => false)
    if (json) return yield* Console.log(JSON.stringify({ endpoint: null, keyringBackend: keyring.backend, logins }))
    const lines = ["stored logins (every endpoint):", ...(logins.length === 0 ? ["  none"] : loginTable(logins, true))]
    yield* Console.log(lines.join("\n"))
  }).pipe(Effect.provide(keyringLayer(args)))

const listLogins = (keyring: Keyring.Keyring.Service, endpoint: string | undefined) =>
  StoredCredentials.list(keyring, endpoint).pipe(
    Effect.catchTag("KeyringError", (error) =>
      Effect.as(
        Effect.logWarning(`flyte-auth: the ${keyring.backend} keyring cannot list its entries (${error.message})`),
        []
      ))
  )

const loginReports = (
  stored: Effect.Effect.Success<ReturnType<typeof listLogins>>,
  now: DateTime.Utc,
  isSelected: (account: string) => boolean
): Array<LoginReport> =>
  stored.flatMap((entry): Array<LoginReport> => {
    if (Option.isNone(entry.credentials)) return []
    const c = entry.credentials.value
    const mode = c.authMode ?? null
    return [{
      endpoint: entry.endpoint,
      clientId: entry.legacy ? null : entry.clientId ?? null,
      authMode: mode,
      account: entry.account,
      legacy: entry.legacy,
      selected: isSelected(entry.account),
      loggedIn: mode !== null && !entry.legacy && renewable(c, mode, now),
      subject: subjectOf(c, mode === "ClientSecret" ? c.clientId : undefined) ?? null,
      expiresAt: isoOrNull(c.expiresAt),
      expired: expiredAt(c.expiresAt, now),
      refreshToken: c.refreshToken !== undefined
    }]
  })

const selectedStatus = (args: GlobalArgs, json: boolean, all: boolean) =>
  withResolved(args, (settings) =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.Keyring
      const found = yield* StoredCredentials.find(keyring, settings.endpoint, { clientId: settings.clientId })
      const authMode = AuthLayer.authModeFor(settings, Option.map(found, (f) => f.credentials))
      // What the Authenticator of this mode takes (an entry of another mode is not its own).
      const selected = Option.filter(found, ({ credentials, legacy }) =>
        legacy
          ? Credentials.isLegacyFor(credentials, { authMode })
          : Credentials.isFor(credentials, { clientId: settings.clientId, authMode }))
      const selectedAccount = Option.map(selected, ({ legacy }) =>
        legacy
          ? Credentials.legacyKeyringAccount(settings.endpoint)
          : Credentials.keyringAccount(settings.endpoint, settings.clientId))
      const now = yield* DateTime.now
      const credentials = Option.getOrUndefined(Option.map(selected, (s) => s.credentials))
      const expiresAt = credentials?.expiresAt
      const logins = loginReports(
        yield* listLogins(keyring, all ? undefined : settings.endpoint),
        now,
        (account) => Option.contains(selectedAccount, account)
      )
      const report: StatusReport = {
        endpoint: settings.endpoint,
        clientId: settings.clientId ?? null,
        authMode,
        keyringBackend: keyring.backend,
        insecure: settings.insecure,
        loggedIn: credentials !== undefined && renewable(credentials, authMode, now),
        subject: credentials === undefined
          ? null
          : subjectOf(credentials, authMode === "ClientSecret" ? settings.clientId : undefined) ?? null,
        scopes: credentials === undefined ? null : scopesOf(credentials) ?? null,
        expiresAt: isoOrNull(expiresAt),
        expiresInSeconds: expiresAt === undefined
          ? null
          : Math.round((DateTime.toEpochMillis(expiresAt) - DateTime.toEpochMillis(now)) / 1000),
        expired: credentials === undefined ? null : expiredAt(expiresAt, now),
        refreshToken: credentials?.refreshToken !== undefined,
        logins
      }
      yield* Console.log(json ? JSON.stringify(report) : describeStatus(report, credentials, now, all))
      // As `gh auth status`: a script can test it.
      if (!report.loggedIn) {
        return yield* new CliError({
          message: `not logged in to ${report.endpoint}${
            report.clientId === null ? "" : ` as client ${report.clientId}`
          } (${report.authMode}) — run \`flyte-auth login\``
        })
      }
    }))

/** The text of `status`: the selected login, then the table of stored logins (`*` marks the selected one). */
const describeStatus = (
  report: StatusReport,
  credentials: Credentials.Credentials | undefined,
  now: DateTime.Utc,
  all: boolean
): string => {
  const loggedIn = report.loggedIn
    ? "yes"
    : credentials === undefined
    ? "no"
    : `no (${report.expired === true ? "expired" : "about to expire"}, no refresh token: run flyte-auth login)`
  const rows: Array<[string, string]> = [
    ["endpoint", `${report.endpoint}${report.insecure ? " (insecure)" : ""}`],
    ["client id", report.clientId ?? "the admin's"],
    ["auth mode", report.authMode],
    ["keyring", report.keyringBackend],
    ["logged in", loggedIn]
  ]
  if (credentials !== undefined) {
    rows.push(
      ["subject", report.subject ?? "unknown (opaque token)"],
      ["scopes", report.scopes === null ? "unknown" : report.scopes.join(" ")],
      ["expiry", describeExpiry(credentials, now)],
      ["refresh token", report.refreshToken ? "yes" : "no"]
    )
  }
  const width = Math.max(...rows.map(([key]) => key.length)) + 2
  const lines = rows.map(([key, value]) => `${key.padEnd(width)}${value}`)
  lines.push("", all ? "stored logins (every endpoint):" : `stored logins on ${report.endpoint}:`)
  if (report.logins.length === 0) lines.push("  none")
  lines.push(...loginTable(report.logins, all))
  return lines.join("\n")
}

/** The table of stored logins (`*` marks the selected one), one line each. */
const loginTable = (logins: ReadonlyArray<LoginReport>, all: boolean): Array<string> => {
  const table = logins.map((login) => [
    login.selected ? "*" : " ",
    ...(all ? [login.endpoint] : []),
    login.legacy ? "(old entry)" : login.clientId ?? "(admin's client)",
    login.authMode ?? "(mode unknown)",
    login.subject ?? "(opaque token)",
    login.expiresAt === null ? "no expiry" : `${login.expired === true ? "expired" : "expires"} ${login.expiresAt}`,
    login.legacy ? "moved on first use by its owner" : login.loggedIn ? "logged in" : "needs a login"
  ])
  const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => row[i].length))) ?? []
  return table.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd())
}

// --- logout ------------------------------------------------------------------------------------------------------

/**
 * Revokes the stored refresh token at the identity provider (RFC 7009) when it publishes a revocation endpoint,
 * then deletes the stored credentials; a failed revocation is a warning, and the delete still happens.
 *
 * @internal
 */
export const logout = (args: GlobalArgs) =>
  Effect.gen(function*() {
    const options = yield* authOptions(args, false, keyringLayer(args))
    yield* noteArgs(args)
    yield* resolveOptions(args, options)
    const result = yield* AuthLayer.logout(options)
    yield* Console.error(describeLogout(result))
  })

/**
 * The line `logout` prints on stderr.
 *
 * @internal
 */
export const describeLogout = (result: AuthLayer.LogoutResult): string => {
  if (!result.stored) return `Logged out of ${result.endpoint} (nothing was stored)`
  switch (result.revocation) {
    case "Revoked":
      return `Logged out of ${result.endpoint}: the refresh token is revoked at the identity provider and the ` +
        `stored credentials are deleted`
    case "Unsupported":
      return `Logged out of ${result.endpoint}: its stored credentials are deleted (the identity provider ` +
        `publishes no revocation endpoint, so the refresh token was not revoked)`
    case "Failed":
      return `Logged out of ${result.endpoint}: its stored credentials are deleted (the refresh token could not be ` +
        `revoked, see the warning above)`
    case "NothingToRevoke":
      return `Logged out of ${result.endpoint}: its stored credentials are deleted`
  }
}

// --- whoami ------------------------------------------------------------------------------------------------------

/** @internal */
export const whoami = (args: GlobalArgs) =>
  withAuth(
    args,
    "whoami",
    Effect.gen(function*() {
      const auth = yield* Authenticator
      const settings = yield* AuthLayer.Settings
      // Obtain the token first, so that "not logged in" is reported as such and not as a failed call.
      yield* (allowInteractive(args, "whoami") ? withProgress(auth.accessToken) : auth.accessToken)
      const timeout = Duration.seconds(30)
      if ((yield* settings.flyte) === 2) {
        const Connect = yield* Effect.promise(() => import("./connectUserInfo.js"))
        return yield* Console.log(JSON.stringify(yield* Connect.userInfo(settings, timeout), null, 2))
      }
      if (/^https?:\/\//i.test(settings.endpoint)) {
        const client = yield* HttpClient.HttpClient
        const url = `${settings.endpoint.replace(/\/+$/, "")}/me`
        const response = yield* client.get(url).pipe(
          Effect.filterOrFail(
            (r) => r.status >= 200 && r.status < 300,
            (r) => new CliError({ message: `GET ${url} answered HTTP ${r.status}` })
          ),
          Effect.flatMap((r) => r.json),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new CliError({ message: `GET ${url} did not answer within 30s` })
          }),
          Effect.catchTags({
            RequestError: (error) => Effect.fail(new CliError({ message: `GET ${url} failed`, cause: error })),
            ResponseError: (error) =>
              Effect.fail(new CliError({ message: `GET ${url} did not return JSON`, cause: error }))
          })
        )
        return yield* Console.log(JSON.stringify(response, null, 2))
      }
      const Grpc = yield* Effect.promise(() => import("./grpcUserInfo.js"))
      const response = yield* Grpc.userInfo(settings, timeout)
      yield* Console.log(JSON.stringify(response, null, 2))
    })
  )

// --- helpers -----------------------------------------------------------------------------------------------------

/**
 * Who the credentials belong to: `sub` of the ID token, else of the access token (when they are JWTs), else the
 * access token's `client_id`, else `clientId`: a client-credentials token is the client's own (RFC 9068 §2.2),
 * so callers pass the client id for that mode.
 *
 * @internal
 */
export const subjectOf = (credentials: Credentials.Credentials, clientId?: string): string | undefined => {
  for (const token of [credentials.idToken, credentials.accessToken]) {
    if (token === undefined) continue
    const sub = Jwt.claims(Redacted.value(token))?.sub
    if (typeof sub === "string" && sub !== "") return sub
  }
  const claimed = Jwt.claims(Redacted.value(credentials.accessToken))?.client_id
  if (typeof claimed === "string" && claimed !== "") return claimed
  return clientId === "" ? undefined : clientId
}

/** The client id a client-credentials token stands for (the mode's own client), else `undefined`. */
const serviceClientId = (settings: AuthLayer.ResolvedSettings) =>
  settings.authMode === "ClientSecret"
    ? Effect.map(Effect.option(settings.clientConfig), (config) => Option.getOrUndefined(config)?.clientId)
    : Effect.succeed(undefined)

const scopesOf = (credentials: Credentials.Credentials): ReadonlyArray<string> | undefined => {
  if (credentials.scopes !== undefined) return credentials.scopes
  const scope = Jwt.claims(Redacted.value(credentials.accessToken))?.scope
  return typeof scope === "string" ? scope.split(" ").filter((s) => s !== "") : undefined
}

/**
 * `expires 2025-01-01T00:00:00.000Z (in 9m 58s)`, or how long ago it expired.
 *
 * @internal
 */
export const describeExpiry = (credentials: Credentials.Credentials, now: DateTime.Utc): string => {
  if (credentials.expiresAt === undefined) return "no expiry known (used until the server rejects it)"
  const left = DateTime.toEpochMillis(credentials.expiresAt) - DateTime.toEpochMillis(now)
  const when = DateTime.formatIso(credentials.expiresAt)
  const span = Duration.format(Duration.seconds(Math.round(Math.abs(left) / 1000)))
  if (left > 0) return `expires ${when} (in ${span})`
  return `expired ${when} (${span} ago${credentials.refreshToken !== undefined ? "; refreshed on next use" : ""})`
}
