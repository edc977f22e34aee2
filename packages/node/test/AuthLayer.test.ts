/**
 * AuthLayer's merge of explicit options over Flyte's config file, and the configuration it hands the flows.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Authenticator, type AuthMode, ClientConfig, Credentials, Keyring } from "@flyte-auth/core"
import { AuthLayer } from "@flyte-auth/node"
import { Duration, Effect, Layer, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-layer-"))
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

let files = 0
const configFile = (yaml: string) => {
  const file = Path.join(dir, `config-${files++}.yaml`)
  Fs.writeFileSync(file, yaml)
  return file
}

const yaml = `
admin:
  endpoint: dns:///flyte.example.com:443
  clientId: from-file
  authorizationHeader: Flyte-Authorization
  pkceConfig:
    timeout: 2m
  deviceFlowConfig:
    timeout: 10m
    pollInterval: 3s
`

const staticConfig = new ClientConfig.ClientConfig({
  tokenEndpoint: "https://idp.example.com/token",
  authorizationEndpoint: "https://idp.example.com/authorize",
  clientId: "published",
  redirectUri: "http://localhost:53593/callback",
  scopes: ["all"],
  audience: "published-audience"
})

/** The configuration the flows of `AuthLayer.layer(options)` see. */
const clientConfigOf = (options: AuthLayer.Options) =>
  Effect.flatMap(AuthLayer.Settings, (settings) => settings.clientConfig).pipe(
    Effect.provide(AuthLayer.layer({ authMode: "Pkce", keyring: "memory", env: {}, ...options }))
  )

describe("AuthLayer.resolve", () => {
  it.effect("takes authorizationHeader, the login timeouts and the device poll interval from the Flyte config", () =>
    Effect.gen(function*() {
      const resolved = yield* AuthLayer.resolve({ configFile: configFile(yaml), env: {} })
      expect(resolved.authorizationHeader).toBe("Flyte-Authorization")
      expect(Duration.toMinutes(resolved.pkceTimeout)).toBe(2)
      expect(Duration.toMinutes(resolved.deviceFlowTimeout)).toBe(10)
      expect(resolved.devicePollInterval && Duration.toSeconds(resolved.devicePollInterval)).toBe(3)
    }))

  it.effect("explicit options win over the Flyte config", () =>
    Effect.gen(function*() {
      const resolved = yield* AuthLayer.resolve({
        configFile: configFile(yaml),
        env: {},
        authorizationHeader: "x-token",
        timeoutSeconds: 30
      })
      expect(resolved.authorizationHeader).toBe("x-token")
      expect(Duration.toSeconds(resolved.pkceTimeout)).toBe(30)
      expect(Duration.toSeconds(resolved.deviceFlowTimeout)).toBe(30)
    }))

  it.effect("without either, the logins wait 5 minutes and the server's header applies", () =>
    Effect.gen(function*() {
      const resolved = yield* AuthLayer.resolve({
        endpoint: "flyte.example.com:443",
        env: {},
        configFile: configFile("")
      })
      expect(resolved.authorizationHeader).toBeUndefined()
      expect(Duration.toMinutes(resolved.pkceTimeout)).toBe(5)
      expect(Duration.toMinutes(resolved.deviceFlowTimeout)).toBe(5)
    }))

  it.effect("reports a malformed explicit option by its setting, before it looks for an endpoint", () =>
    Effect.gen(function*() {
      const resolve = (options: AuthLayer.Options) =>
        Effect.flip(AuthLayer.resolve({ env: {}, configFile: configFile(""), ...options }))
      const mode = yield* resolve({ authMode: "kerberos" })
      expect([mode.reason, mode.setting]).toEqual(["Config", "authMode"])
      expect(mode.description).toMatch(/^Unknown auth mode "kerberos"/)
      for (const setting of ["command", "proxyCommand", "browserCommand"] as const) {
        const error = yield* resolve({ [setting]: "[\"unclosed\"" })
        expect([error.reason, error.setting]).toEqual(["Config", setting])
        expect(error.description).toMatch(/^The \w+ option \(--[a-z-]+\) is not a JSON array of strings$/)
      }
      // Nothing wrong with the options: the missing endpoint.
      expect((yield* resolve({ command: "get-token --json" })).setting).toBe("endpoint")
    }))
})

describe("AuthLayer.layer with a static clientConfig", () => {
  it.effect("applies the overrides a fetched configuration gets: options, then the Flyte config", () =>
    Effect.gen(function*() {
      const fromOptions = yield* clientConfigOf({
        endpoint: "flyte.example.com:443",
        configFile: configFile(""),
        clientConfig: staticConfig,
        redirectUri: "http://127.0.0.1:0/callback",
        clientId: "mine",
        scopes: ["openid", "offline_access"],
        audience: "my-audience",
        authorizationHeader: "X-Token"
      })
      expect(fromOptions).toMatchObject({
        tokenEndpoint: "https://idp.example.com/token",
        redirectUri: "http://127.0.0.1:0/callback",
        clientId: "mine",
        scopes: ["openid", "offline_access"],
        audience: "my-audience",
        headerKey: "x-token"
      })

      const fromFile = yield* clientConfigOf({ configFile: configFile(yaml), clientConfig: staticConfig })
      expect(fromFile).toMatchObject({ clientId: "from-file", headerKey: "flyte-authorization" })

      // Nothing set: the static configuration as it is (a plain object is accepted too).
      const untouched = yield* clientConfigOf({
        endpoint: "flyte.example.com:443",
        configFile: configFile(""),
        clientConfig: { ...staticConfig }
      })
      expect(untouched).toMatchObject({
        redirectUri: "http://localhost:53593/callback",
        clientId: "published",
        scopes: ["all"],
        audience: "published-audience",
        headerKey: "authorization"
      })
    }))
})

describe("AuthLayer.layer: the auth mode of the stored credentials", () => {
  /** The settings' auth mode with a keyring holding a login of `storedMode` for the endpoint. */
  const modeWith = (
    storedMode: AuthMode.AuthMode | undefined,
    options: AuthLayer.Options,
    account = Credentials.keyringAccount("flyte.example.com:443", options.clientId)
  ) =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      const entry = yield* Credentials.encodeKeyringEntry(
        new Credentials.Credentials({
          accessToken: Redacted.make("stored-access-token"),
          endpoint: "flyte.example.com:443",
          ...(storedMode === undefined ? {} : { authMode: storedMode })
        })
      )
      yield* keyring.set(Keyring.serviceName, account, entry)
      return yield* Effect.map(AuthLayer.Settings, (settings) => settings.authMode).pipe(
        Effect.provide(AuthLayer.layer({
          endpoint: "flyte.example.com:443",
          configFile: configFile(""),
          env: {},
          clientConfig: { ...staticConfig, deviceAuthorizationEndpoint: "https://idp.example.com/device" },
          keyring: Layer.succeed(Keyring.Keyring, keyring),
          ...options
        }))
      )
    })

  it.effect("a login's mode is used when none is configured; a configured one wins", () =>
    Effect.gen(function*() {
      expect(yield* modeWith("DeviceFlow", {})).toBe("DeviceFlow")
      expect(yield* modeWith("DeviceFlow", { authMode: "Pkce" })).toBe("Pkce")
      expect(yield* modeWith("DeviceFlow", { configFile: configFile("admin:\n  authType: Pkce\n") })).toBe("Pkce")
      expect(yield* modeWith("DeviceFlow", { env: { FLYTE_CREDENTIALS_AUTH_MODE: "Pkce" } })).toBe("Pkce")
      expect(yield* modeWith("DeviceFlow", { clientId: "svc", clientSecret: "s3cret" })).toBe("ClientSecret")
      // An entry written before the mode was recorded: the default.
      expect(yield* modeWith(undefined, {})).toBe("Pkce")
      // A mode that needs what this run lacks is not taken over: the default serves the stored token.
      expect(yield* modeWith("ExternalCommand", {})).toBe("Pkce")
      expect(yield* modeWith("ExternalCommand", { command: ["get-token"] })).toBe("ExternalCommand")
      expect(yield* modeWith("ClientSecret", {})).toBe("Pkce")
      // Another client's login says nothing about this one's mode.
      expect(yield* modeWith("DeviceFlow", {}, Credentials.keyringAccount("flyte.example.com:443", "other"))).toBe(
        "Pkce"
      )
      // An entry of the time before accounts were per client (the bare endpoint): only a user's login is taken.
      expect(yield* modeWith("DeviceFlow", {}, "flyte.example.com:443")).toBe("DeviceFlow")
      expect(yield* modeWith("ExternalCommand", { command: ["get-token"] }, "flyte.example.com:443")).toBe("Pkce")
    }))

  it.effect("a login records its mode in the keyring entry", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      yield* Effect.flatMap(Authenticator.Authenticator, (auth) => auth.login).pipe(
        Effect.provide(AuthLayer.layer({
          endpoint: "flyte.example.com:443",
          configFile: configFile(""),
          env: {},
          clientConfig: staticConfig,
          authMode: "ExternalCommand",
          command: [process.execPath, "-e", "process.stdout.write('from-command')"],
          keyring: Layer.succeed(Keyring.Keyring, keyring)
        }))
      )
      const entry = yield* Effect.flatten(
        keyring.get(Keyring.serviceName, Credentials.keyringAccount("flyte.example.com:443", undefined))
      )
      expect((yield* Credentials.decodeKeyringEntry(entry)).authMode).toBe("ExternalCommand")
    }))
})
