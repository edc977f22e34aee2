/**
 * AuthLayer's merge of explicit options over Flyte's config file, and the configuration it hands the flows.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ClientConfig } from "@flyte-auth/core"
import { AuthLayer } from "@flyte-auth/node"
import { Duration, Effect } from "effect"
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
