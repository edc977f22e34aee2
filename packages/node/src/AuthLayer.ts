/**
 * Everything an Effect app needs to authenticate against Flyte (or any OAuth2 API) on Node, in one layer:
 * the `Authenticator`, an authenticated `HttpClient`, and every Node service wired in (keyring, browser, loopback
 * server, command runner, HTTP transport with proxy and CA, the client configuration from the admin).
 *
 * @example
 * ```ts
 * import { Authenticator } from "@flyte-auth/core"
 * import { AuthLayer } from "@flyte-auth/node"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const auth = yield* Authenticator.Authenticator
 *   return yield* auth.accessToken
 * }).pipe(Effect.provide(AuthLayer.fromFlyteConfig()))
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as ApiKey from "@flyte-auth/connect/ApiKey"
import type * as Authenticator from "@flyte-auth/core/Authenticator"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as AuthHttpClient from "@flyte-auth/core/AuthHttpClient"
import * as AuthMode from "@flyte-auth/core/AuthMode"
import * as Browser from "@flyte-auth/core/Browser"
import * as ClientConfig from "@flyte-auth/core/ClientConfig"
import * as Credentials from "@flyte-auth/core/Credentials"
import * as DevicePrompt from "@flyte-auth/core/DevicePrompt"
import * as Flows from "@flyte-auth/core/Flows"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as Policies from "@flyte-auth/core/Policies"
import * as ProxyAuthorization from "@flyte-auth/core/ProxyAuthorization"
import * as Revocation from "@flyte-auth/core/Revocation"
import * as StoredCredentials from "@flyte-auth/core/StoredCredentials"
import type * as TokenSource from "@flyte-auth/core/TokenSource"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { Dispatcher } from "undici"
import * as FlyteConfig from "./FlyteConfig.js"
import * as NodeBrowser from "./NodeBrowser.js"
import * as NodeCallbackPaste from "./NodeCallbackPaste.js"
import * as NodeCommandRunner from "./NodeCommandRunner.js"
import * as NodeCredentialLock from "./NodeCredentialLock.js"
import * as NodeKeyring from "./NodeKeyring.js"
import * as NodeLoopbackServer from "./NodeLoopbackServer.js"
import * as NodeTransport from "./NodeTransport.js"

/**
 * How to authenticate. Every field is optional: what is not given comes from Flyte's config file
 * (`configFile`, else `FLYTECTL_CONFIG`, else `~/.flyte/config.yaml`) and `FLYTE_*` environment variables;
 * what is given here wins over both.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Flyte admin: `host:port` (`dns:///` accepted) or an `http(s)://` base URL. Which API it speaks is detected
   * (see `flyte`).
   */
  readonly endpoint?: string | undefined
  /**
   * Which Flyte the endpoint is: `2` (Flyte 2: `flyteidl2.auth.AuthMetadataService` over ConnectRPC), `1` (Flyte 1:
   * `AuthMetadataService` over gRPC for a `host:port` endpoint, its HTTP routes for an `http(s)://` one), or
   * `"auto"` (default): Flyte 2 is asked first and Flyte 1 when the endpoint does not answer as Flyte 2, once
   * per layer (the first metadata fetch). `2` also searches for the config file in Flyte 2's order (see
   * `FlyteConfig.configFiles`). An API key means `2` unless this says otherwise.
   */
  readonly flyte?: 1 | 2 | "auto" | undefined
  /**
   * A Flyte 2 API key (base64 of `endpoint:client_id:client_secret:org`): a client-credentials login against the
   * key's endpoint (`endpoint`, `clientId`, `clientSecret` and `authMode` given here still win). Default: the
   * first of `FLYTE_API_KEY`, `EAGER_API_KEY`, `_UNION_EAGER_API_KEY` that is set.
   */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  /** Plaintext gRPC / HTTP instead of TLS. */
  readonly insecure?: boolean | undefined
  /** `Pkce`, `DeviceFlow`, `ClientSecret`, `ExternalCommand`, or one of flytekit's aliases. Default `Pkce`. */
  readonly authMode?: string | undefined
  readonly clientId?: string | undefined
  readonly clientSecret?: string | Redacted.Redacted<string> | undefined
  /** The environment variable holding the client secret (wins over `clientSecretLocation`). */
  readonly clientSecretEnvVar?: string | undefined
  /** A file holding the client secret (trimmed). */
  readonly clientSecretLocation?: string | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly audience?: string | undefined
  /**
   * The PKCE redirect URI (a loopback URL; port 0 picks a free port), instead of the server's. When its port is
   * busy, a free loopback port is used instead (with a warning), unless `redirectPort` pins it.
   */
  readonly redirectUri?: string | undefined
  /** Pins the PKCE callback port (it replaces the redirect URI's port): a busy port is then an error. */
  readonly redirectPort?: number | undefined
  /** `ExternalCommand`: the program and its arguments (argv, or a string of whitespace-separated words). */
  readonly command?: ReadonlyArray<string> | string | undefined
  /** A command printing the token for `proxy-authorization`, sent on every OAuth, metadata and gRPC call. */
  readonly proxyCommand?: ReadonlyArray<string> | string | undefined
  /** Where credentials are kept: `auto` (default), `keytar`, `napi`, `file`, `memory`, `none`, or a layer. */
  readonly keyring?: NodeKeyring.BackendName | Layer.Layer<Keyring.Keyring> | undefined
  /** Run this command with the authorize URL as its last argument instead of opening a browser. */
  readonly browserCommand?: ReadonlyArray<string> | string | undefined
  /**
   * `false`: never open a browser, only print the URL (or hand it to `onUrl`); `true`: always try the system
   * browser. By default it is tried unless none can be opened here (`NodeBrowser.noBrowserReason`: SSH, a
   * container, no display, `BROWSER=none`).
   */
  readonly openBrowser?: boolean | undefined
  /**
   * What a login does when no browser is opened (none can be opened here, or `openBrowser: false`); Flyte 2's SDK
   * calls this `headless`. `auto` (default): when the identity provider publishes a device authorization endpoint
   * and the auth mode was not configured (no `authMode`, none in the config, no client secret), the login uses the
   * device flow and says so; otherwise it is a PKCE login that prints the URL and, when stdin is a terminal, also
   * accepts the redirected URL (or just the code) pasted there. `paste`: never switch, PKCE with the paste prompt.
   * `off`: neither: print the URL and wait for the loopback callback only.
   */
  readonly headless?: Headless | undefined
  /** Called with the authorize URL of a PKCE login (in addition to the browser). */
  readonly onUrl?: ((url: string) => void) | undefined
  /** Called with the device-flow instructions instead of printing them to stderr. */
  readonly onDeviceCode?: ((prompt: DevicePrompt.DeviceCodePrompt) => void) | undefined
  /**
   * The IdP's issuer URL: the OAuth endpoints come from its discovery document (`/.well-known/openid-configuration`)
   * instead of the admin's `AuthMetadataService`, for an admin that does not publish them or for any other
   * OAuth-protected API. Client id, scopes, audience and redirect URI then come from these options or the config,
   * not from the admin. Default: `admin.authorizationServerUrl` of the Flyte config.
   */
  readonly authorizationServerUrl?: string | undefined
  /** A fixed client configuration instead of fetching it from the admin. */
  readonly clientConfig?:
    | ClientConfig.ClientConfig
    | ConstructorParameters<typeof ClientConfig.ClientConfig>[0]
    | undefined
  /**
   * How long a login may take, in seconds: an interactive one (default: `admin.pkceConfig.timeout` for PKCE,
   * `admin.deviceFlowConfig.timeout` for the device flow, else 300), and each run of `command` and
   * `proxyCommand` (default 60), which is killed when it runs longer.
   */
  readonly timeoutSeconds?: number | undefined
  /**
   * The header (gRPC metadata key) that carries the token, instead of the one the admin publishes
   * (`authorization_metadata_key`). Default: `admin.authorizationHeader` of the Flyte config.
   */
  readonly authorizationHeader?: string | undefined
  readonly caCertFilePath?: string | undefined
  readonly insecureSkipVerify?: boolean | undefined
  readonly httpProxyUrl?: string | undefined
  /** Flyte's config file to read (instead of `FLYTECTL_CONFIG` / `~/.flyte/config.yaml`). */
  readonly configFile?: string | undefined
  /** Whether an interactive login (browser, device prompt) may start in this process (default `true`). */
  readonly allowInteractive?: boolean | undefined
  /** The environment to read `FLYTE_*` variables from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Replace the browser (e.g. a scripted user agent in tests). */
  readonly browser?: Layer.Layer<Browser.Browser> | undefined
}

/**
 * The values of `Options.headless`.
 *
 * @since 0.2.0
 * @category models
 */
export type Headless = "auto" | "paste" | "off"

/**
 * @since 0.2.0
 * @category constants
 */
export const headlessModes: ReadonlyArray<Headless> = ["auto", "paste", "off"]

/**
 * What the layer resolved, for `status` and for building gRPC channels.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedSettings {
  readonly endpoint: string
  /** The configured client id (`undefined`: the admin's): with `endpoint`, whose keyring entry is used. */
  readonly clientId: string | undefined
  /**
   * Which Flyte the endpoint is (`Options.flyte`); detected by the first metadata fetch when not configured, so
   * this may fetch the client configuration.
   */
  readonly flyte: Effect.Effect<1 | 2, AuthenticationError>
  readonly authMode: AuthMode.AuthMode
  readonly insecure: boolean
  readonly keyringBackend: string
  readonly caCertFilePath: string | undefined
  readonly insecureSkipVerify: boolean
  /** The proxy token source of `proxyCommand`, for gRPC channels (`GrpcAuth.channelOptions`). */
  readonly proxyToken: TokenSource.TokenSource | undefined
  /** The program of `proxyCommand` (argv[0]; its arguments may hold secrets), for messages. */
  readonly proxyProgram: string | undefined
  /**
   * The undici dispatcher under the layer's `HttpClient` (proxy, CA, `insecureSkipVerify`), for plain `fetch`
   * calls that must go the same way: `fetch(url, { dispatcher })`. It is made (and undici loaded) on first use, by
   * this or by the first HTTP call of the layer, so an unreadable CA file or an invalid proxy URL fails here
   * (reason `Config`); it is closed with the layer.
   */
  readonly dispatcher: Effect.Effect<Dispatcher, AuthenticationError>
  /** The client configuration in use (fetched once). */
  readonly clientConfig: Effect.Effect<ClientConfig.ClientConfig, AuthenticationError>
  /** How long a login of the auth mode (PKCE, device flow, external command) may take. */
  readonly loginTimeout: Duration.Duration
  /** How long each run of the token command and the proxy command may take (`timeoutSeconds`, default 60 s). */
  readonly commandTimeout: Duration.Duration
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Settings extends Context.Tag("@flyte-auth/node/AuthLayer/Settings")<Settings, ResolvedSettings>() {}

/**
 * A command given as argv or as one string (a JSON array, or whitespace-separated words); `undefined` when empty.
 * `where` names the command in the error's description, `setting` (when given) is the error's
 * `AuthenticationError.setting`.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseArgv = (
  command: ReadonlyArray<string> | string | undefined,
  where: string,
  setting?: string
): Effect.Effect<ReadonlyArray<string> | undefined, AuthenticationError> => {
  if (command === undefined) return Effect.succeed(undefined)
  const argv = typeof command === "string" ? FlyteConfig.splitCommand(command, where, setting) : Either.right(command)
  return Effect.map(argv, (argv) => argv.length === 0 ? undefined : argv)
}

/** The command options of `Options`, with the `flyte-auth` option each one is given by. */
const commandOptionFlags = {
  command: "--command",
  proxyCommand: "--proxy-command",
  browserCommand: "--browser-command"
} as const

/** A command option of `Options` parsed (see `parseArgv`); an error names the option and is about its setting. */
const commandOption = (
  command: ReadonlyArray<string> | string | undefined,
  setting: keyof typeof commandOptionFlags
) => parseArgv(command, `The ${setting} option (${commandOptionFlags[setting]})`, setting)

/**
 * Merges explicit options over Flyte's config file and `FLYTE_*` environment (explicit wins).
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = Effect.fn("AuthLayer.resolve")(function*(options: Options) {
  // The explicit options that must parse come first: a mistyped one is reported before any file or variable is read.
  const explicitAuthMode = options.authMode === undefined ? undefined : yield* AuthMode.parse(options.authMode)
  const command = yield* commandOption(options.command, "command")
  const proxyCommand = yield* commandOption(options.proxyCommand, "proxyCommand")
  const browserCommand = yield* commandOption(options.browserCommand, "browserCommand")
  const apiKey = options.apiKey !== undefined
    ? { key: yield* ApiKey.decode(options.apiKey, "The apiKey option (--api-key)"), from: "apiKey" }
    : yield* Effect.map(
      ApiKey.fromEnv(options.env ?? process.env),
      (found) => found === undefined ? undefined : { key: found.key, from: found.envVar }
    )
  const platform = options.flyte ?? (apiKey === undefined ? "auto" : 2)
  const flyte = yield* FlyteConfig.load({
    configFile: options.configFile,
    configSearch: platform === 2 ? "flyte2" : "flyte1",
    env: options.env,
    clientSecretEnvVar: options.clientSecretEnvVar,
    clientSecretLocation: options.clientSecretLocation
  })
  const configured = options.endpoint ?? apiKey?.key.endpoint ?? flyte.endpoint
  const endpoint = configured === undefined ? undefined : Credentials.normalizeEndpoint(configured)
  if (endpoint === undefined || endpoint === "") {
    return yield* new AuthenticationError({
      reason: "Config",
      setting: "endpoint",
      description:
        "No endpoint is configured: pass --endpoint, set FLYTE_PLATFORM_URL, or admin.endpoint in the Flyte config"
    })
  }
  const clientSecret = options.clientSecret === undefined
    ? apiKey?.key.clientSecret ?? flyte.clientSecret
    : Redacted.isRedacted(options.clientSecret)
    ? options.clientSecret
    : Redacted.make(options.clientSecret)
  // As in Flyte's config: an explicit mode is kept; without one, a client secret means ClientSecret (and an API key
  // is one, whatever the config file says).
  const authMode: AuthMode.AuthMode = explicitAuthMode !== undefined
    ? explicitAuthMode
    : apiKey === undefined && (flyte.authModeExplicit || clientSecret === undefined)
    ? flyte.authMode
    : "ClientSecret"
  const timeout = options.timeoutSeconds === undefined ? undefined : Duration.seconds(options.timeoutSeconds)
  return {
    endpoint,
    flyte: platform,
    apiKeyFrom: apiKey?.from,
    authMode,
    authModeConfigured: options.authMode !== undefined || flyte.authModeExplicit || clientSecret !== undefined,
    insecure: options.insecure ?? flyte.insecure ?? false,
    insecureSkipVerify: options.insecureSkipVerify ?? flyte.insecureSkipVerify ?? false,
    caCertFilePath: options.caCertFilePath ?? flyte.caCertFilePath,
    httpProxyUrl: options.httpProxyUrl ?? flyte.httpProxyUrl,
    clientId: options.clientId ?? apiKey?.key.clientId ?? flyte.clientId,
    clientSecret,
    scopes: options.scopes ?? flyte.scopes,
    audience: options.audience ?? flyte.audience,
    command: command ?? flyte.command,
    proxyCommand: proxyCommand ?? flyte.proxyCommand,
    browserCommand,
    authorizationHeader: options.authorizationHeader ?? flyte.authorizationHeader,
    authorizationServerUrl: options.authorizationServerUrl ?? flyte.authorizationServerUrl,
    pkceTimeout: timeout ?? flyte.pkceTimeout ?? Policies.interactiveTimeout,
    deviceFlowTimeout: timeout ?? flyte.deviceFlowTimeout ?? Policies.interactiveTimeout,
    commandTimeout: timeout ?? Policies.commandTimeout,
    devicePollInterval: flyte.devicePollInterval
  }
})

/**
 * The `Authenticator`, the `Settings` and an authenticated `HttpClient` (the auth header on every request,
 * refresh + resend once on 401), with every Node service wired in. Any one service can still be replaced, e.g.
 * `browser` for a scripted user agent, `keyring` for a test layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Authenticator.Authenticator | Settings | HttpClient.HttpClient, AuthenticationError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const { endpoint } = resolved
    const { commandRunner, configStore, detected, dispatcher, httpClient, proxyToken } = yield* oauthServices(
      options,
      resolved
    )

    const keyring = keyringLayer(options)
    const headless = options.headless ?? "auto"
    if (!headlessModes.includes(headless)) {
      return yield* new AuthenticationError({
        reason: "Config",
        setting: "headless",
        description: `The headless option is "${String(headless)}": use one of ${headlessModes.join(", ")}`
      })
    }
    const noBrowser = noBrowserReason(options, resolved.browserCommand)
    const browser = options.browser ?? browserLayer(noBrowser, resolved.browserCommand)
    const prompt = options.onDeviceCode === undefined
      ? Layer.succeed(DevicePrompt.DevicePrompt, { show: (prompt) => Console.error(DevicePrompt.format(prompt)) })
      : Layer.succeed(DevicePrompt.DevicePrompt, {
        show: (prompt) => Effect.sync(() => options.onDeviceCode!(prompt))
      })

    const services = Layer.mergeAll(
      keyring,
      // Processes sharing this keyring refresh one at a time (see NodeCredentialLock).
      NodeCredentialLock.layerForKeyring.pipe(Layer.provide(keyring)),
      browser,
      headless === "off" ? Layer.empty : NodeCallbackPaste.layerIfTerminal,
      prompt,
      NodeLoopbackServer.layer,
      commandRunner,
      httpClient,
      configStore
    )
    // Read once from the keyring of `services`, by the authenticator and the settings alike.
    const authMode = yield* Effect.cached(chosenAuthMode(resolved))
    const authenticator = Layer.unwrapEffect(Effect.map(authMode, (authMode) =>
      Flows.layerFromMode(authMode, {
        endpoint,
        clientId: resolved.clientId,
        clientSecret: resolved.clientSecret,
        scopes: resolved.scopes,
        audience: resolved.audience,
        command: resolved.command,
        commandTimeout: resolved.commandTimeout,
        allowInteractive: options.allowInteractive,
        deviceTimeout: resolved.deviceFlowTimeout,
        devicePollInterval: resolved.devicePollInterval,
        deviceFlowWithoutBrowser: headless === "auto" && noBrowser !== undefined && !resolved.authModeConfigured
          ? {
            because: noBrowser,
            hint: "to log in with PKCE instead (and paste the redirect), set headless to paste " +
              "(flyte-auth: --headless paste) or the auth mode to Pkce"
          }
          : undefined,
        pkce: {
          timeout: resolved.pkceTimeout,
          redirectPort: options.redirectPort,
          onUrl: options.onUrl === undefined ? undefined : (url) => Effect.sync(() => options.onUrl!(url))
        }
      }))).pipe(Layer.provide(services))

    const settings = Layer.effect(
      Settings,
      Effect.gen(function*() {
        const keyringService = yield* Keyring.Keyring
        const store = yield* ClientConfig.ClientConfigStore
        const mode = yield* authMode
        return {
          endpoint,
          clientId: resolved.clientId,
          // Configured, else known once the configuration was fetched (a fixed one: Flyte 1).
          flyte: Effect.flatMap(Ref.get(detected), (known) =>
            known !== undefined
              ? Effect.succeed(known)
              : Effect.zipRight(store.get, Effect.map(Ref.get(detected), (flyte) => flyte ?? 1))),
          authMode: mode,
          insecure: resolved.insecure,
          caCertFilePath: resolved.caCertFilePath,
          insecureSkipVerify: resolved.insecureSkipVerify,
          proxyToken,
          proxyProgram: resolved.proxyCommand?.[0],
          dispatcher,
          keyringBackend: keyringService.backend,
          clientConfig: store.get,
          loginTimeout: mode === "DeviceFlow"
            ? resolved.deviceFlowTimeout
            : mode === "ExternalCommand"
            ? resolved.commandTimeout
            : resolved.pkceTimeout,
          commandTimeout: resolved.commandTimeout
        }
      })
    ).pipe(Layer.provide(services))
    const authenticatedHttpClient = AuthHttpClient.layer.pipe(Layer.provide(Layer.merge(authenticator, httpClient)))
    return Layer.mergeAll(authenticator, settings, authenticatedHttpClient)
  }))

/**
 * What `logout` did: the endpoint, whether credentials were stored, and what the revocation came to.
 *
 * @since 0.2.0
 * @category models
 */
export interface LogoutResult {
  readonly endpoint: string
  readonly stored: boolean
  readonly revocation: Revocation.Outcome
}

/**
 * Logs out of the endpoint without building the `Authenticator`, so for any auth mode and without starting or
 * checking a flow: the stored refresh token is revoked at the identity provider (RFC 7009, see
 * `Revocation.revokeCredentials`), then the stored credentials of the configured client are deleted (the other
 * clients' logins on the endpoint stay). A failed revocation (the IdP or the admin cannot be reached, it refuses) is
 * a warning and the local delete still happens; a keyring that cannot read or delete fails with its `KeyringError`.
 * `flyte-auth logout` is this.
 *
 * @since 0.2.0
 * @category constructors
 */
export const logout = Effect.fn("AuthLayer.logout")(
  function*(options: Options) {
    const resolved = yield* resolve(options)
    const { configStore, httpClient } = yield* oauthServices(options, resolved)
    const keyring = yield* Keyring.Keyring
    // The selected client's credentials only: the other clients' logins on the endpoint stay.
    const found = yield* StoredCredentials.find(keyring, resolved.endpoint, { clientId: resolved.clientId })
    const revocation: Revocation.Outcome = Option.isNone(found)
      ? "NothingToRevoke"
      : yield* Effect.flatMap(ClientConfig.ClientConfigStore, (store) =>
        Revocation.revokeCredentials({
          credentials: found.value.credentials,
          config: store.get,
          clientId: resolved.clientId,
          clientSecret: resolved.clientSecret
        })).pipe(Effect.provide(Layer.merge(configStore, httpClient)))
    yield* keyring.delete(Keyring.serviceName, Credentials.keyringAccount(resolved.endpoint, resolved.clientId))
    if (Option.isSome(found) && found.value.legacy) {
      yield* keyring.delete(Keyring.serviceName, Credentials.legacyKeyringAccount(resolved.endpoint))
    }
    return { endpoint: resolved.endpoint, stored: Option.isSome(found), revocation } satisfies LogoutResult
  },
  (effect, options) => Effect.scoped(Effect.provide(effect, keyringLayer(options)))
)

/**
 * What the OAuth and metadata calls go through, built once per layer: the HTTP client (proxy, CA, proxy token) and
 * the client configuration store.
 */
const oauthServices = Effect.fnUntraced(function*(
  options: Options,
  resolved: Effect.Effect.Success<ReturnType<typeof resolve>>
) {
  const { endpoint } = resolved
  const commandRunner = NodeCommandRunner.layer
  // undici (and @effect/platform-node's HTTP client) is loaded on the first HTTP call, grpc-js only for a gRPC
  // endpoint, so that a process answered from a stored token (or one that needs only `resolve`) pays for neither.
  // One dispatcher, closed with this layer: under the HttpClient here and under the facade's `fetch`.
  const scope = yield* Effect.scope
  const transportOnce = yield* Effect.cached(
    NodeTransport.makeDispatcher({
      httpProxyUrl: resolved.httpProxyUrl,
      caCertFilePath: resolved.caCertFilePath,
      insecureSkipVerify: resolved.insecureSkipVerify
    }).pipe(
      Scope.extend(scope),
      Effect.map((dispatcher) => ({ dispatcher, client: NodeTransport.fromDispatcher(dispatcher) })),
      // Made once: a caller interrupted meanwhile (an aborted signal) must not leave it interrupted for all.
      Effect.uninterruptible
    )
  )
  const dispatcher = Effect.map(transportOnce, (transport) => transport.dispatcher)
  const transport = Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.flatMap(
        Effect.mapError(transportOnce, (error) =>
          new HttpClientError.RequestError({
            request,
            reason: "Transport",
            description: error.description,
            cause: error
          })),
        (transport) => transport.client.execute(request)
      )
    )
  )
  // One proxy token for the whole layer: the OAuth and metadata HTTP calls, the metadata gRPC calls and the
  // gRPC channels of `Settings.proxyToken` share it, and a rejection seen by any of them renews it for all.
  const proxyToken = resolved.proxyCommand === undefined
    ? undefined
    : yield* ProxyAuthorization.commandSource({ command: resolved.proxyCommand, timeout: resolved.commandTimeout })
      .pipe(Effect.provide(commandRunner))
  // Every OAuth and metadata call goes through this client; with a proxy command it carries the proxy token.
  const httpClient = proxyToken === undefined
    ? transport
    : ProxyAuthorization.layer(proxyToken).pipe(Layer.provide(transport))
  const overrides: ClientConfig.Overrides = {
    clientId: resolved.clientId,
    scopes: resolved.scopes,
    audience: resolved.audience,
    redirectUri: options.redirectUri,
    headerKey: resolved.authorizationHeader
  }
  const flyte1Store = /^https?:\/\//i.test(endpoint)
    ? ClientConfig.layerFlyteHttp(endpoint, overrides).pipe(Layer.provide(httpClient))
    : Layer.unwrapEffect(Effect.gen(function*() {
      const [GrpcAuth, RemoteClientConfigStore] = yield* Effect.promise(() =>
        Promise.all([import("@flyte-auth/grpc/GrpcAuth"), import("@flyte-auth/grpc/RemoteClientConfigStore")])
      )
      const channelCredentials = yield* GrpcAuth.channelCredentials({
        endpoint,
        insecure: resolved.insecure,
        caCertFilePath: resolved.caCertFilePath,
        insecureSkipVerify: resolved.insecureSkipVerify
      })
      const interceptors = proxyToken === undefined ? [] : [yield* GrpcAuth.proxyInterceptor(proxyToken)]
      return RemoteClientConfigStore.layer({
        endpoint,
        insecure: resolved.insecure,
        channelCredentials,
        interceptors,
        overrides
      })
    }))
  // connect-node is loaded only for an endpoint that may be Flyte 2.
  const flyte2Fetch = Effect.gen(function*() {
    const [ConnectAuth, ConnectClientConfigStore, NodeConnectTransport] = yield* Effect.promise(() =>
      Promise.all([
        import("@flyte-auth/connect/ConnectAuth"),
        import("@flyte-auth/connect/ConnectClientConfigStore"),
        import("./NodeConnectTransport.js")
      ])
    )
    const transport = yield* NodeConnectTransport.make({
      endpoint,
      insecure: resolved.insecure,
      caCertFilePath: resolved.caCertFilePath,
      insecureSkipVerify: resolved.insecureSkipVerify,
      interceptors: proxyToken === undefined ? [] : [yield* ConnectAuth.proxyInterceptor(proxyToken)]
    })
    return yield* ConnectClientConfigStore.fetchConfig({ endpoint, transport, overrides })
  })
  const detected = yield* Ref.make<1 | 2 | undefined>(resolved.flyte === "auto" ? undefined : resolved.flyte)
  const metadataStore = options.clientConfig !== undefined
    ? ClientConfig.layerStatic(ClientConfig.withOverrides(
      options.clientConfig instanceof ClientConfig.ClientConfig
        ? options.clientConfig
        : new ClientConfig.ClientConfig(options.clientConfig),
      overrides
    ))
    : resolved.authorizationServerUrl !== undefined
    ? ClientConfig.layerOidcDiscovery(resolved.authorizationServerUrl, overrides).pipe(Layer.provide(httpClient))
    : resolved.flyte === 1
    ? flyte1Store
    : resolved.flyte === 2
    ? Layer.scoped(ClientConfig.ClientConfigStore, ClientConfig.makeCached(flyte2Fetch))
    : Layer.scoped(
      ClientConfig.ClientConfigStore,
      Effect.gen(function*() {
        // Flyte 2 first; Flyte 1 (built only then) when the endpoint does not answer as Flyte 2. When neither
        // answers, Flyte 1's error is the one reported (a Flyte 1 user sees what they always saw).
        const scope = yield* Effect.scope
        const flyte1 = yield* Effect.cached(
          Effect.map(Layer.buildWithScope(flyte1Store, scope), Context.get(ClientConfig.ClientConfigStore))
        )
        return yield* ClientConfig.makeCached(
          flyte2Fetch.pipe(
            Effect.tap(() => Ref.set(detected, 2)),
            Effect.catchAll((notFlyte2) =>
              Effect.flatMap(flyte1, (store) => store.get).pipe(
                Effect.tap(() => Ref.set(detected, 1)),
                Effect.tapError(() =>
                  Effect.logDebug(`${endpoint} does not answer as Flyte 2 either: ${notFlyte2.description}`)
                )
              )
            )
          )
        )
      })
    )
  // The proxy token before the metadata: a failing or hanging proxy command is reported as itself (reason
  // `CommandFailed` or `Timeout`, naming the proxy command), not as the metadata call it would fail inside.
  const configStore = proxyToken === undefined ? metadataStore : Layer.effect(
    ClientConfig.ClientConfigStore,
    Effect.map(ClientConfig.ClientConfigStore, (store) => ({ get: Effect.zipRight(proxyToken.get, store.get) }))
  ).pipe(Layer.provide(metadataStore))

  return { commandRunner, configStore, detected, dispatcher, httpClient, proxyToken }
})

/**
 * `layer` with everything from Flyte's configuration (`configFile`, else `FLYTECTL_CONFIG`, else
 * `~/.flyte/config.yaml`, and `FLYTE_*` variables).
 *
 * @since 0.1.0
 * @category layers
 */
export const fromFlyteConfig = (
  options: Pick<Options, "configFile" | "keyring" | "allowInteractive" | "env"> = {}
): Layer.Layer<Authenticator.Authenticator | Settings | HttpClient.HttpClient, AuthenticationError> => layer(options)

/**
 * The auth mode to use: the configured one (an option, the config file, `FLYTE_CREDENTIALS_AUTH_MODE`, a client
 * secret), else the one whose login produced the stored credentials (`Credentials.authMode`: a device login is
 * renewed as one; ExternalCommand only when a command is configured, ClientSecret only with a secret, which
 * configures it anyway), else the default.
 *
 * @since 0.2.0
 * @category utils
 */
export const authModeFor = (
  resolved: {
    readonly authMode: AuthMode.AuthMode
    readonly authModeConfigured: boolean
    readonly command?: ReadonlyArray<string> | undefined
  },
  stored: Option.Option<Credentials.Credentials>
): AuthMode.AuthMode => {
  if (resolved.authModeConfigured || Option.isNone(stored)) return resolved.authMode
  const mode = stored.value.authMode
  // A mode that needs what this run lacks (a client secret, a token command) is not taken over.
  return mode === undefined || mode === "ClientSecret" || (mode === "ExternalCommand" && resolved.command === undefined)
    ? resolved.authMode
    : mode
}

/**
 * `authModeFor` with the keyring entry of the endpoint and the configured client (`StoredCredentials.find`); an
 * unreadable or corrupt entry counts as none.
 *
 * @since 0.2.0
 * @category constructors
 */
export const chosenAuthMode = (
  resolved: Parameters<typeof authModeFor>[0] & {
    readonly endpoint: string
    readonly clientId?: string | undefined
  }
): Effect.Effect<AuthMode.AuthMode, never, Keyring.Keyring> =>
  resolved.authModeConfigured
    ? Effect.succeed(resolved.authMode)
    : Effect.flatMap(
      Keyring.Keyring,
      (keyring) => StoredCredentials.find(keyring, resolved.endpoint, { clientId: resolved.clientId })
    ).pipe(
      Effect.map(Option.map((found) => found.credentials)),
      Effect.orElseSucceed(() => Option.none<Credentials.Credentials>()),
      Effect.map((stored) => authModeFor(resolved, stored))
    )

const keyringLayer = (options: Options): Layer.Layer<Keyring.Keyring> =>
  options.keyring === undefined || typeof options.keyring === "string"
    ? NodeKeyring.layerFromName(options.keyring ?? "auto")
    : options.keyring

/** Why no browser is opened for a login, or `undefined` when one is (a given browser or command, or the system's). */
const noBrowserReason = (options: Options, command: ReadonlyArray<string> | undefined): string | undefined =>
  options.browser !== undefined || command !== undefined || options.openBrowser === true
    ? undefined
    : options.openBrowser === false
    ? "it is turned off (--no-browser, openBrowser: false)"
    : NodeBrowser.noBrowserHere()

const browserLayer = (
  noBrowser: string | undefined,
  command: ReadonlyArray<string> | undefined
): Layer.Layer<Browser.Browser> => {
  if (command !== undefined) return NodeBrowser.layerCommand(command)
  return noBrowser === undefined
    ? NodeBrowser.layerSystem
    : Layer.succeed(Browser.Browser, NodeBrowser.makeNone(noBrowser))
}
