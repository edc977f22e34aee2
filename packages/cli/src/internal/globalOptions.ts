/**
 * The options every `flyte-auth` command accepts, before or after the command name, and their translation into
 * the options of `AuthLayer` (explicit options override Flyte's config file and `FLYTE_*` variables).
 *
 * @internal
 */
import * as Options from "@effect/cli/Options"
import type * as Usage from "@effect/cli/Usage"
import * as NodeKeyring from "@flyte-auth/node/NodeKeyring"
import * as Option from "effect/Option"
import type { OptionNames } from "./argv.js"

/** A flag that is `Some(true)` when given and `None` otherwise (so that the config file decides). */
const flag = (name: string, description: string) =>
  Options.boolean(name).pipe(
    Options.withDescription(description),
    Options.map((given) => given ? Option.some(true) : Option.none<boolean>())
  )

const text = (name: string, description: string, pseudoName?: string) =>
  Options.text(name).pipe(
    Options.withDescription(description),
    (o) => pseudoName === undefined ? o : Options.withPseudoName(o, pseudoName),
    Options.optional
  )

/**
 * The alternatives of the global options that are choices.
 *
 * @internal
 */
export const choices = {
  flyte: ["1", "2", "auto"],
  keyring: NodeKeyring.backendNames,
  headless: ["auto", "paste", "off"]
} as const

/**
 * The global options, as `@effect/cli` options.
 *
 * @internal
 */
export const globalOptions = {
  endpoint: text(
    "endpoint",
    "Flyte admin endpoint HOST:PORT (a dns:/// prefix is accepted). Config: admin.endpoint, FLYTE_PLATFORM_URL.",
    "HOST:PORT"
  ),
  flyte: Options.choice("flyte", choices.flyte).pipe(
    Options.withDescription(
      "Which Flyte the endpoint is: 2 (flyteidl2 over ConnectRPC), 1 (flyteidl over gRPC, or its HTTP routes for an " +
        "http(s):// endpoint), or auto: ask Flyte 2 first, then Flyte 1. 2 also looks for the config file in Flyte " +
        "2's order (./config.yaml, ./.flyte, ~/.union, ~/.flyte). Default: auto (2 with an API key)."
    ),
    Options.optional
  ),
  apiKey: text(
    "api-key",
    "A Flyte 2 API key (a client-credentials login against the endpoint it names). Prefer the environment: " +
      "FLYTE_API_KEY (also EAGER_API_KEY, _UNION_EAGER_API_KEY), which is not visible to other users of this machine.",
    "KEY"
  ),
  insecure: flag(
    "insecure",
    "Plaintext gRPC/HTTP to the admin (no TLS). Config: admin.insecure, FLYTE_PLATFORM_INSECURE."
  ),
  config: text(
    "config",
    "Flyte config file (YAML). Default: $FLYTECTL_CONFIG, else ~/.flyte/config.yaml when it exists.",
    "PATH"
  ),
  authMode: text(
    "auth-mode",
    "Pkce (standard), DeviceFlow, ClientSecret (basic, client_credentials) or ExternalCommand (external_process). " +
      "Config: admin.authType, FLYTE_CREDENTIALS_AUTH_MODE. Default: Pkce.",
    "MODE"
  ),
  clientId: text(
    "client-id",
    "OAuth client id (default: the one the admin publishes). Config: admin.clientId, FLYTE_CREDENTIALS_CLIENT_ID.",
    "ID"
  ),
  clientSecretEnvVar: text(
    "client-secret-env-var",
    "Name of the environment variable holding the client secret (ClientSecret mode). " +
      "Config: admin.clientSecretEnvVar, FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR.",
    "NAME"
  ),
  clientSecretLocation: text(
    "client-secret-location",
    "File holding the client secret (trimmed). Config: admin.clientSecretLocation, " +
      "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION.",
    "PATH"
  ),
  scopes: text(
    "scopes",
    "Scopes to request, comma-separated (default: the ones the admin publishes). Config: admin.scopes, " +
      "FLYTE_CREDENTIALS_SCOPES.",
    "a,b"
  ),
  audience: text(
    "audience",
    "Audience to request the token for. Config: admin.audience, FLYTE_CREDENTIALS_AUDIENCE.",
    "AUDIENCE"
  ),
  authorizationServerUrl: text(
    "authorization-server-url",
    "The IdP's issuer URL: take the OAuth endpoints from its OpenID discovery document instead of the admin " +
      "(then give --client-id and --scopes). Config: admin.authorizationServerUrl.",
    "URL"
  ),
  command: text(
    "command",
    "ExternalCommand mode: the command printing a token, as a JSON array or whitespace-separated words " +
      "(run without a shell). Config: admin.command, FLYTE_CREDENTIALS_COMMAND.",
    "ARGV"
  ),
  proxyCommand: text(
    "proxy-command",
    "Command printing a token for the proxy in front of the admin (sent as proxy-authorization), as a JSON array " +
      "or words. Config: admin.proxyCommand, FLYTE_CREDENTIALS_PROXY_COMMAND.",
    "ARGV"
  ),
  keyring: Options.choice("keyring", choices.keyring).pipe(
    Options.withDescription(
      "Where credentials are kept: auto (OS keyring via keytar or @napi-rs/keyring, else memory), keytar, napi, " +
        "file (0600 files in $FLYTE_AUTH_CREDENTIALS_DIR, default ~/.flyte/flyte-auth/credentials), memory, none. Default: auto."
    ),
    Options.optional
  ),
  browserCommand: text(
    "browser-command",
    "Open the login page with this command (JSON array or words; the URL is appended as last argument) " +
      "instead of the system browser.",
    "CMD"
  ),
  noBrowser: flag(
    "no-browser",
    "Do not open a browser for a PKCE login, only print its URL (also the default over SSH, in a container, without " +
      "a display, or with BROWSER=none)."
  ),
  headless: Options.choice("headless", choices.headless).pipe(
    Options.withDescription(
      "What a login does when no browser is opened (--no-browser, SSH, a container, no display, BROWSER=none). " +
        "auto: the device flow when the IdP offers it and no auth mode is configured (it says so), else PKCE with the " +
        "URL printed and the redirected URL (or code) accepted when pasted into the terminal; paste: always that PKCE " +
        "login; off: print the URL and wait for the callback only. Default: auto (Flyte 2's SDK: headless)."
    ),
    Options.optional
  ),
  redirectPort: Options.integer("redirect-port").pipe(
    Options.withDescription(
      "Pin the PKCE callback port (replaces the redirect URI's port): a busy port is then an error. Without it, a " +
        "busy port is replaced by a free loopback port, which the IdP must allow for this client (RFC 8252 §7.3)."
    ),
    Options.withPseudoName("PORT"),
    Options.optional
  ),
  caCertFilePath: text(
    "ca-cert-file-path",
    "Extra CA certificate (PEM) for TLS to the admin and the IdP. Config: admin.caCertFilePath.",
    "PATH"
  ),
  insecureSkipVerify: flag(
    "insecure-skip-verify",
    "Do not verify TLS certificates (dangerous; prints a warning). Config: admin.insecureSkipVerify."
  ),
  httpProxyUrl: text(
    "http-proxy-url",
    "HTTP(S) proxy for the OAuth requests. Config: admin.httpProxyURL.",
    "URL"
  ),
  timeout: Options.integer("timeout").pipe(
    Options.withDescription(
      "How long a login may take, in seconds: a browser or device login (default 300), and each run of " +
        "--command and --proxy-command (default 60), which is killed when it runs longer."
    ),
    Options.withPseudoName("SECONDS"),
    Options.optional
  ),
  interactive: flag(
    "interactive",
    "Allow `token` and `whoami` to start an interactive login (PKCE, DeviceFlow) even when stdin or stderr is not " +
      "a terminal."
  ),
  noInteractive: flag(
    "no-interactive",
    "Never start an interactive login: fail with AccessTokenNotFound when no token can be had without the user."
  ),
  verbose: flag("verbose", "On failure, also print the chain of causes.")
}

/**
 * The parsed global options.
 *
 * @internal
 */
export interface GlobalArgs {
  readonly endpoint: Option.Option<string>
  readonly flyte: Option.Option<"1" | "2" | "auto">
  readonly apiKey: Option.Option<string>
  readonly insecure: Option.Option<boolean>
  readonly config: Option.Option<string>
  readonly authMode: Option.Option<string>
  readonly clientId: Option.Option<string>
  readonly clientSecretEnvVar: Option.Option<string>
  readonly clientSecretLocation: Option.Option<string>
  readonly scopes: Option.Option<string>
  readonly audience: Option.Option<string>
  readonly authorizationServerUrl: Option.Option<string>
  readonly command: Option.Option<string>
  readonly proxyCommand: Option.Option<string>
  readonly keyring: Option.Option<NodeKeyring.BackendName>
  readonly browserCommand: Option.Option<string>
  readonly redirectPort: Option.Option<number>
  readonly noBrowser: Option.Option<boolean>
  readonly headless: Option.Option<"auto" | "paste" | "off">
  readonly caCertFilePath: Option.Option<string>
  readonly insecureSkipVerify: Option.Option<boolean>
  readonly httpProxyUrl: Option.Option<string>
  readonly timeout: Option.Option<number>
  readonly interactive: Option.Option<boolean>
  readonly noInteractive: Option.Option<boolean>
  readonly verbose: Option.Option<boolean>
}

/**
 * The option names in a usage (of an option or a command, as `@effect/cli` builds it): the ones that take a value
 * and the flags, so that the hoisting of the global options and the explanation of a failed parse
 * (`commandLine.ts`) know the real options.
 *
 * @internal
 */
export const optionNames = (usage: Usage.Usage): OptionNames => {
  const values: Array<string> = []
  const flags: Array<string> = []
  const walk = (usage: Usage.Usage): void => {
    switch (usage._tag) {
      case "Named":
        for (const name of usage.names) {
          if (name.startsWith("-")) (Option.isSome(usage.acceptedValues) ? values : flags).push(name)
        }
        return
      case "Optional":
      case "Repeated":
        return walk(usage.usage)
      case "Alternation":
      case "Concat":
        walk(usage.left)
        return walk(usage.right)
      default:
        return
    }
  }
  walk(usage)
  return { values, flags }
}
