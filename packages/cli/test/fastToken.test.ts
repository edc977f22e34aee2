/**
 * The fast `token` path mirrors a few rules of the real modules without loading them (to start in about the time
 * of a bare `node`). These tests hold it to those modules: same constants, same freshness rule on entries written
 * by the real codec, same endpoint resolution as `AuthLayer.resolve`, and it bails out on everything else.
 */
import { describe, expect, it } from "@effect/vitest"
import { ApiKey } from "@flyte-auth/connect"
import { AuthMode, Credentials, Keyring } from "@flyte-auth/core"
import { AuthLayer, NodeKeyring } from "@flyte-auth/node"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { keyringBackends } from "../src/internal/argv.js"
import * as FastToken from "../src/internal/fastToken.js"

const endpoint = "flyte.example.com:443"
const user: FastToken.Caller = { endpoint, clientId: undefined, authMode: undefined, insecure: false }
const now = Date.UTC(2030, 0, 1, 12, 0, 0)

const credentials = (fields: {
  readonly expiresIn?: number
  readonly lifetime?: number
  readonly endpoint?: string
}) =>
  new Credentials.Credentials({
    accessToken: Redacted.make("access-token-value"),
    refreshToken: Redacted.make("refresh-token-value"),
    idToken: Redacted.make("id-token-value"),
    endpoint: fields.endpoint ?? endpoint,
    scopes: ["all", "offline_access"],
    authMode: "Pkce",
    ...(fields.expiresIn === undefined ? {} : { expiresAt: DateTime.unsafeMake(now + fields.expiresIn * 1000) }),
    ...(fields.expiresIn === undefined || fields.lifetime === undefined
      ? {}
      : { obtainedAt: DateTime.unsafeMake(now + (fields.expiresIn - fields.lifetime) * 1000) })
  })

const encode = (c: Credentials.Credentials) => Effect.runSync(Credentials.encodeKeyringEntry(c))

const tempDir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-fast-"))

describe("fast token path", () => {
  it("uses the constants of the real modules", () => {
    expect(FastToken.serviceName).toBe(Keyring.serviceName)
    expect(FastToken.credentialsDirEnv).toBe(NodeKeyring.credentialsDirEnv)
    expect(FastToken.defaultCredentialsDir()).toBe(NodeKeyring.defaultCredentialsDir())
    expect(FastToken.fileName("flyte-auth", endpoint)).toBe(NodeKeyring.fileNameFor("flyte-auth", endpoint))
    expect(FastToken.fileName("a", "b\u0000c")).toBe(NodeKeyring.fileNameFor("a", "b\u0000c"))
    expect(FastToken.defaultSkewMillis).toBe(Duration.toMillis(Credentials.defaultRefreshSkew))
    expect([...keyringBackends]).toEqual([...NodeKeyring.backendNames])
    expect([...FastToken.entryKeys].sort()).toEqual(Object.keys(Credentials.Credentials.fields).sort())
    expect(FastToken.authModeAliases).toEqual(AuthMode.aliases)
    expect(FastToken.apiKeyEnvVars).toEqual(ApiKey.envVars)
  })

  it("decides freshness exactly as Credentials.isFresh, on entries written by the real codec", () => {
    const cases = [
      { expiresIn: 3600, lifetime: 3600 },
      { expiresIn: 61, lifetime: 3600 },
      { expiresIn: 60, lifetime: 3600 },
      { expiresIn: 59, lifetime: 3600 },
      { expiresIn: 0, lifetime: 3600 },
      { expiresIn: -10, lifetime: 3600 },
      { expiresIn: 3, lifetime: 5 },
      { expiresIn: 2.4, lifetime: 5 },
      { expiresIn: 2.6, lifetime: 5 },
      { expiresIn: 30 },
      { expiresIn: 61 },
      {}
    ]
    for (const c of cases) {
      const creds = credentials(c)
      const fresh = Credentials.isFresh(creds, DateTime.unsafeMake(now))
      const token = FastToken.freshToken(encode(creds), user, now)
      expect({ case: c, fresh: token !== undefined }).toEqual({ case: c, fresh })
      if (fresh) expect(token).toBe("access-token-value")
    }
  })

  it("refuses an entry for another endpoint, a token with a line break, unknown fields or bad dates", () => {
    const entry = JSON.parse(encode(credentials({ expiresIn: 3600, lifetime: 3600 })))
    expect(FastToken.freshToken(JSON.stringify(entry), user, now)).toBe("access-token-value")
    expect(FastToken.freshToken(JSON.stringify(entry), { ...user, endpoint: "other:443" }, now)).toBeUndefined()
    expect(FastToken.freshToken(JSON.stringify({ ...entry, accessToken: "a\nb" }), user, now)).toBeUndefined()
    expect(FastToken.freshToken(JSON.stringify({ ...entry, surprise: 1 }), user, now)).toBeUndefined()
    expect(FastToken.freshToken(JSON.stringify({ ...entry, expiresAt: "soon" }), user, now)).toBeUndefined()
    expect(FastToken.freshToken("not json", user, now)).toBeUndefined()
  })

  it("hands an entry only to its own client and mode, as Credentials.isFor", () => {
    const entry = (
      fields: { readonly clientId?: string; readonly authMode?: "Pkce" | "ClientSecret" | "DeviceFlow" }
    ) =>
      encode(
        new Credentials.Credentials({
          ...credentials({ expiresIn: 3600, lifetime: 3600 }),
          authMode: fields.authMode,
          clientId: fields.clientId
        })
      )
    const serviceA: FastToken.Caller = { endpoint, clientId: "a", authMode: "ClientSecret", insecure: false }
    expect(FastToken.freshToken(entry({ clientId: "a", authMode: "ClientSecret" }), serviceA, now)).toBe(
      "access-token-value"
    )
    expect(FastToken.freshToken(entry({ clientId: "b", authMode: "ClientSecret" }), serviceA, now)).toBeUndefined()
    expect(FastToken.freshToken(entry({ authMode: "ClientSecret" }), serviceA, now)).toBeUndefined()
    expect(FastToken.freshToken(entry({ clientId: "a", authMode: "Pkce" }), serviceA, now)).toBeUndefined()
    expect(FastToken.freshToken(entry({ clientId: "a" }), serviceA, now)).toBeUndefined()
    // Without a configured mode: a user's login only (AuthLayer.authModeFor adopts Pkce and DeviceFlow).
    expect(FastToken.freshToken(entry({ authMode: "DeviceFlow" }), user, now)).toBe("access-token-value")
    expect(FastToken.freshToken(entry({ authMode: "ClientSecret" }), user, now)).toBeUndefined()
    expect(FastToken.freshToken(entry({ clientId: "a", authMode: "Pkce" }), user, now)).toBeUndefined()
    expect(FastToken.keyringAccount(endpoint, "a b#c")).toBe(Credentials.keyringAccount(endpoint, "a b#c"))
    expect(FastToken.keyringAccount(endpoint, undefined)).toBe(Credentials.keyringAccount(endpoint, undefined))
  })

  it.effect("answers `token` from a file keyring written by NodeKeyring, and bails out on anything else", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const store = Path.join(dir, "credentials")
      const env = { [NodeKeyring.credentialsDirEnv]: store, FLYTECTL_CONFIG: Path.join(dir, "absent.yaml") }
      // FLYTECTL_CONFIG names a missing file: that is an error in the full path, so the fast path bails too.
      const noConfig = { [NodeKeyring.credentialsDirEnv]: store }
      const write = (c: Credentials.Credentials) =>
        Effect.gen(function*() {
          const keyring = yield* Keyring.Keyring
          yield* keyring.set(Keyring.serviceName, Credentials.keyringAccount(c.endpoint, undefined), encode(c))
        }).pipe(Effect.provide(NodeKeyring.layerFile(store)), Logger.withMinimumLogLevel(LogLevel.None))
      yield* write(credentials({ expiresIn: 3600, lifetime: 3600 }))
      yield* write(credentials({ expiresIn: 10, lifetime: 3600, endpoint: "stale.example.com:443" }))
      const fast = (args: ReadonlyArray<string>, e: Record<string, string> = noConfig) =>
        Effect.promise(() => FastToken.tryFastToken(args, { ...e, HOME: dir }, () => now))

      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file"])).toBe("access-token-value")
      expect(yield* fast(["--keyring=file", "token", "--endpoint", `dns:///${endpoint}`, "--insecure"])).toBe(
        "access-token-value"
      )
      expect(yield* fast(["token", "--keyring", "file"], { ...noConfig, FLYTE_PLATFORM_URL: endpoint })).toBe(
        "access-token-value"
      )
      // Not fresh, not stored, not this command, not understood: the full CLI decides.
      expect(yield* fast(["token", "--endpoint", "stale.example.com:443", "--keyring", "file"])).toBeUndefined()
      expect(yield* fast(["token", "--endpoint", "unknown:1", "--keyring", "file"])).toBeUndefined()
      expect(yield* fast(["status", "--endpoint", endpoint, "--keyring", "file"])).toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "--help"])).toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "--auth-mode", "x"])).toBeUndefined()
      // Another client's account, another mode: not this token.
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "--client-id", "a"])).toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "--auth-mode", "basic"]))
        .toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "--auth-mode", "standard"])).toBe(
        "access-token-value"
      )
      expect(
        yield* fast(["token", "--endpoint", endpoint, "--keyring", "file"], {
          ...noConfig,
          FLYTE_CREDENTIALS_CLIENT_ID: "a"
        })
      ).toBeUndefined()
      expect(
        yield* fast(["token", "--endpoint", endpoint, "--keyring", "file"], {
          ...noConfig,
          FLYTE_CREDENTIALS_CLIENT_SECRET: "s"
        })
      ).toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "memory"])).toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "extra"])).toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file"], env)).toBeUndefined()
      // An API key names its own endpoint and client: the full path decodes it.
      for (const name of ApiKey.envVars) {
        expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file"], { ...noConfig, [name]: "a2V5" }))
          .toBeUndefined()
      }
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "--api-key", "a2V5"]))
        .toBeUndefined()
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file", "--flyte", "2"])).toBeUndefined()
      // A credentials file that is not private is left to the full path (which tightens it, with a warning).
      const file = Path.join(
        store,
        NodeKeyring.fileNameFor(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined))
      )
      Fs.chmodSync(file, 0o644)
      expect(yield* fast(["token", "--endpoint", endpoint, "--keyring", "file"])).toBeUndefined()
      Fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("resolves the endpoint as AuthLayer.resolve does", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const config = (name: string, text: string) => {
        const path = Path.join(dir, name)
        Fs.writeFileSync(path, text)
        return path
      }
      const withEndpoint = config("a.yaml", "admin:\n  endpoint: dns:///from-file:443\n  insecure: true\n")
      const withoutEndpoint = config("b.yaml", "admin:\n  insecure: true\n")
      const empty = config("c.yaml", "")
      const malformed = config("d.yaml", "admin: [\n")
      const notMapping = config("e.yaml", "- a\n- b\n")
      const cases: Array<{ endpoint?: string; configFile?: string; env: Record<string, string> }> = [
        { endpoint: "dns:///explicit:1", configFile: withEndpoint, env: {} },
        { endpoint: "  spaced:2 ", configFile: withEndpoint, env: {} },
        { configFile: withEndpoint, env: { FLYTE_PLATFORM_URL: " dns:///from-env:3 " } },
        { configFile: withEndpoint, env: { FLYTE_PLATFORM_URL: "   " } },
        { configFile: withEndpoint, env: {} },
        { env: { FLYTECTL_CONFIG: withEndpoint } },
        { configFile: withoutEndpoint, env: {} },
        { configFile: empty, env: { FLYTE_PLATFORM_URL: "https://flyte.example.com" } },
        { configFile: malformed, env: { FLYTE_PLATFORM_URL: "x:1" } },
        { configFile: notMapping, env: {} },
        { configFile: Path.join(dir, "missing.yaml"), env: { FLYTE_PLATFORM_URL: "x:1" } },
        { endpoint: "", configFile: empty, env: {} }
      ]
      for (const c of cases) {
        const real = yield* AuthLayer.resolve({ endpoint: c.endpoint, configFile: c.configFile, env: c.env }).pipe(
          Effect.map((resolved) => resolved.endpoint),
          Effect.orElseSucceed(() => undefined)
        )
        const fast = yield* Effect.promise(() =>
          FastToken.resolveEndpoint({ endpoint: c.endpoint, config: c.configFile }, c.env)
        )
        expect({ case: c, endpoint: fast }).toEqual({ case: c, endpoint: real })
      }
      Fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("resolves the client id and auth mode as AuthLayer.resolve does, or leaves the case to it", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const config = (name: string, text: string) => {
        const path = Path.join(dir, name)
        Fs.writeFileSync(path, text)
        return path
      }
      const service = config("s.yaml", "admin:\n  endpoint: dns:///e:1\n  clientId: from-file\n  authType: basic\n")
      const plain = config("p.yaml", "admin:\n  endpoint: dns:///e:1\n")
      const cases: Array<{ clientId?: string; authMode?: string; configFile: string; env: Record<string, string> }> = [
        { configFile: service, env: {} },
        { configFile: service, env: { FLYTE_CREDENTIALS_CLIENT_ID: "from-env" } },
        { clientId: "explicit", configFile: service, env: { FLYTE_CREDENTIALS_CLIENT_ID: "from-env" } },
        { configFile: service, env: { FLYTE_CREDENTIALS_AUTH_MODE: "DeviceFlow" } },
        { authMode: "client_credentials", configFile: plain, env: {} },
        { authMode: "PKCE", configFile: plain, env: {} },
        { configFile: plain, env: {} },
        { clientId: "a", configFile: plain, env: {} }
      ]
      for (const c of cases) {
        const real = yield* AuthLayer.resolve({ ...c, env: c.env }).pipe(
          Effect.map((r) => ({
            endpoint: r.endpoint,
            clientId: r.clientId,
            authMode: r.authModeConfigured ? r.authMode : undefined,
            insecure: r.insecure
          })),
          Effect.orElseSucceed(() => undefined)
        )
        const fast = yield* Effect.promise(() =>
          FastToken.resolveCaller({ clientId: c.clientId, authMode: c.authMode, config: c.configFile }, c.env)
        )
        expect({ case: c, caller: fast }).toEqual({ case: c, caller: real })
      }
      // A secret or a command without a mode chooses the mode: the full path decides.
      expect(
        yield* Effect.promise(() =>
          FastToken.resolveCaller({ config: plain }, { FLYTE_CREDENTIALS_CLIENT_SECRET: "x" })
        )
      )
        .toBeUndefined()
      expect(
        yield* Effect.promise(() => FastToken.resolveCaller({ config: plain }, { FLYTE_CREDENTIALS_COMMAND: "x" }))
      )
        .toBeUndefined()
      Fs.rmSync(dir, { recursive: true, force: true })
    }))
})
