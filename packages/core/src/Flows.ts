/**
 * Flow selection: the `Authenticator` for an auth mode (`Pkce`, `DeviceFlow`, `ClientSecret`, `ExternalCommand`),
 * each flow wired to the refresh rule it needs. The one module that knows all four flows; the `Authenticator`
 * itself knows none.
 *
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { Authenticator, make } from "./Authenticator.js"
import { AuthenticationError } from "./AuthError.js"
import type { AuthMode } from "./AuthMode.js"
import type { Browser } from "./Browser.js"
import { ClientConfig, ClientConfigStore } from "./ClientConfig.js"
import * as ClientCredentials from "./ClientCredentials.js"
import type { CommandRunner } from "./CommandRunner.js"
import * as Credentials from "./Credentials.js"
import * as DeviceCode from "./DeviceCode.js"
import { DevicePrompt } from "./DevicePrompt.js"
import * as ExternalCommand from "./ExternalCommand.js"
import type * as Keyring from "./Keyring.js"
import type { LoopbackServer } from "./LoopbackServer.js"
import * as Pkce from "./Pkce.js"
import * as Policies from "./Policies.js"

/**
 * The settings of `layerFromMode`: what the flows need beyond the `ClientConfigStore` configuration. `clientId`,
 * `scopes` and `audience` override the configuration's values for the flow; a refresh asks for what was granted.
 *
 * @since 0.2.0
 * @category models
 */
export interface FlowOptions {
  /** The endpoint the credentials are for (the keyring key). */
  readonly endpoint: string
  readonly clientId?: string | undefined
  /** Required by `ClientSecret`; optional for a confidential `Pkce` or `DeviceFlow` client. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly audience?: string | undefined
  /** What a refresh sends as `scope` (see `Options.refreshScope`; by default nothing). */
  readonly refreshScope?: "omit" | "granted" | undefined
  /** `ExternalCommand`: the program and its arguments (argv, no shell). */
  readonly command?: ReadonlyArray<string> | undefined
  /** `ExternalCommand`: how long the program may run. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** `ClientSecret`: how the secret is sent (HTTP Basic by default). */
  readonly authMethod?: ClientCredentials.AuthMethod | undefined
  /** `Pkce`: browser pages, timeout, extra authorize parameters, URL callback. */
  readonly pkce?: Omit<Pkce.Options, "endpoint" | "config" | "clientSecret"> | undefined
  /**
   * `Pkce`: set when no browser can be opened here and the login may then switch to the device flow (what Flyte 2's
   * SDK calls `headless`). When the identity provider publishes a device authorization endpoint and a
   * `DevicePrompt` is provided, the login runs the device flow instead, says so (`because`: why no browser, `hint`:
   * how to keep PKCE), and its credentials are recorded as `DeviceFlow`; otherwise it is a PKCE login.
   */
  readonly deviceFlowWithoutBrowser?: { readonly because: string; readonly hint: string } | undefined
  /**
   * `DeviceFlow`: gives up earlier than the device code's expiry. With a `CredentialLock` it also bounds how long
   * the lock is held (`Policies.credentialLockHold`, 5 minutes plus a margin when not given).
   */
  readonly deviceTimeout?: Duration.DurationInput | undefined
  /** The device flow's polling interval when the server sends none (default 5 s). */
  readonly devicePollInterval?: Duration.DurationInput | undefined
  /** Whether an interactive flow (`Pkce`, `DeviceFlow`) may run in this process (default `true`). */
  readonly allowInteractive?: boolean | undefined
  /** How long before expiry a token is refreshed (default 60 s). */
  readonly skew?: Duration.DurationInput | undefined
}

/**
 * The services a mode's flow needs beyond `Keyring`, `ClientConfigStore` and `HttpClient`.
 *
 * @since 0.2.0
 * @category models
 */
export type FlowRequirements<M extends AuthMode> = M extends "Pkce" ? Browser | LoopbackServer
  : M extends "DeviceFlow" ? DevicePrompt
  : M extends "ExternalCommand" ? CommandRunner
  : never

/**
 * The `Authenticator` for an auth mode: `Pkce` and `DeviceFlow` are interactive and refresh with their refresh
 * token; `ClientSecret` and `ExternalCommand` obtain a new token by running the flow again. The flow reads the
 * `ClientConfigStore` configuration when it runs.
 *
 * Fails at construction with an `AuthenticationError` of reason `Config` when the mode cannot work: `ClientSecret`
 * without a client secret, `ExternalCommand` without a command, `DeviceFlow` against an identity provider
 * without a device authorization endpoint (the only mode whose check reads the configuration up front).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFromMode = <M extends AuthMode>(
  mode: M,
  options: FlowOptions
): Layer.Layer<
  Authenticator,
  AuthenticationError,
  Keyring.Keyring | ClientConfigStore | HttpClient.HttpClient | FlowRequirements<M>
> =>
  Layer.scoped(
    Authenticator,
    Effect.gen(function*() {
      const store = yield* ClientConfigStore
      const { endpoint } = options
      const common = {
        endpoint,
        clientId: options.clientId,
        refreshScope: options.refreshScope,
        clientSecret: options.clientSecret,
        allowInteractive: options.allowInteractive,
        skew: options.skew,
        authMode: mode
      }
      // The cross-process lock is held (and waited for) as long as the mode's login may take, plus a margin.
      const lockBound = (loginTimeout: Duration.DurationInput | undefined) => {
        const bound = Policies.credentialLockHold(loginTimeout)
        return { lockHold: bound, lockTimeout: bound }
      }
      const config = Effect.map(store.get, (config) =>
        new ClientConfig({
          ...config,
          clientId: options.clientId ?? config.clientId,
          scopes: options.scopes ?? config.scopes,
          audience: options.audience ?? config.audience
        }))
      const configError = (setting: string, description: string) =>
        new AuthenticationError({ reason: "Config", setting, description })
      const m: AuthMode = mode
      switch (m) {
        case "Pkce": {
          const headless = options.deviceFlowWithoutBrowser
          const prompt = yield* Effect.serviceOption(DevicePrompt)
          return yield* make({
            ...common,
            ...lockBound(options.pkce?.timeout),
            interactive: true,
            login: Effect.flatMap(config, (config) =>
              headless !== undefined && Option.isSome(prompt) && config.deviceAuthorizationEndpoint !== undefined
                ? Effect.logWarning(
                  `No browser can be opened here (${headless.because}), so this login uses the device flow, which ` +
                    `the identity provider offers; ${headless.hint}`
                ).pipe(
                  Effect.zipRight(DeviceCode.authenticate({
                    endpoint,
                    config,
                    clientSecret: options.clientSecret,
                    timeout: options.deviceTimeout,
                    pollInterval: options.devicePollInterval
                  })),
                  Effect.map((credentials) =>
                    new Credentials.Credentials({ ...credentials, authMode: "DeviceFlow" })
                  ),
                  Effect.provideService(DevicePrompt, prompt.value)
                )
                : Pkce.authenticate({ ...options.pkce, endpoint, config, clientSecret: options.clientSecret }))
          })
        }
        case "DeviceFlow": {
          const resolved = yield* config
          if (resolved.deviceAuthorizationEndpoint === undefined) {
            return yield* configError(
              "authMode",
              `The identity provider of ${endpoint} offers no device authorization endpoint, so the DeviceFlow ` +
                `auth mode cannot work there: choose another auth mode (e.g. Pkce)`
            )
          }
          return yield* make({
            ...common,
            ...lockBound(options.deviceTimeout),
            interactive: true,
            login: Effect.flatMap(config, (config) =>
              DeviceCode.authenticate({
                endpoint,
                config,
                clientSecret: options.clientSecret,
                timeout: options.deviceTimeout,
                pollInterval: options.devicePollInterval
              }))
          })
        }
        case "ClientSecret": {
          const clientSecret = options.clientSecret
          if (clientSecret === undefined) {
            return yield* configError(
              "clientSecret",
              `The ClientSecret auth mode for ${endpoint} needs a client secret`
            )
          }
          return yield* make({
            ...common,
            interactive: false,
            refresh: "login",
            login: Effect.flatMap(config, (config) =>
              config.clientId === undefined
                ? Effect.fail(configError("clientId", `The ClientSecret auth mode for ${endpoint} needs a client id`))
                : ClientCredentials.authenticate({
                  endpoint,
                  config,
                  clientId: config.clientId,
                  clientSecret,
                  authMethod: options.authMethod,
                  scopes: config.scopes,
                  audience: config.audience
                }))
          })
        }
        case "ExternalCommand": {
          const command = options.command
          if (command === undefined || command.length === 0) {
            return yield* configError("command", `The ExternalCommand auth mode for ${endpoint} needs a command`)
          }
          return yield* make({
            ...common,
            ...lockBound(options.commandTimeout ?? Policies.commandTimeout),
            interactive: false,
            refresh: "login",
            login: ExternalCommand.authenticate({ endpoint, command, timeout: options.commandTimeout })
          })
        }
      }
    })
  ) as Layer.Layer<
    Authenticator,
    AuthenticationError,
    Keyring.Keyring | ClientConfigStore | HttpClient.HttpClient | FlowRequirements<M>
  >
