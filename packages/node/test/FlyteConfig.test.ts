import { afterAll, describe, expect, it } from "@effect/vitest"
import { FlyteConfig } from "@flyte-auth/node"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const fullYaml = `
admin:
  endpoint: dns:///flyte.example.com:443
  insecure: false
  insecureSkipVerify: true
  caCertFilePath: /etc/flyte/ca.pem
  httpProxyURL: http://proxy.example.com:3128
  authType: DeviceFlow
  clientId: flytectl
  scopes:
    - openid
    - offline
  audience: https://flyte.example.com
  command: ["gcloud", "auth", "print-identity-token"]
  proxyCommand:
    - iap-token
    - --audience=flyte
  authorizationHeader: flyte-authorization
  authorizationServerUrl: https://idp.example.com/oauth2/default
  pkceConfig:
    timeout: 2m30s
  deviceFlowConfig:
    timeout: 10m
    pollInterval: 5s
logger:
  level: 0
`

const resolve = (yaml: string | undefined, env: Record<string, string> = {}) =>
  FlyteConfig.fromSources(yaml, env, { configFile: "/etc/flyte/config.yaml" })

const failure = (yaml: string | undefined, env: Record<string, string> = {}) =>
  Effect.map(Effect.flip(resolve(yaml, env)), (error) => ({ reason: error.reason, message: error.message }))

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-config-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))
const tempDir = () => Fs.mkdtempSync(Path.join(root, "case-"))

describe("FlyteConfig: the config file", () => {
  it.effect("reads every admin.* key, stripping dns:///", () =>
    Effect.gen(function*() {
      const options = yield* resolve(fullYaml)
      expect({ ...options, pkceTimeout: undefined, deviceFlowTimeout: undefined, devicePollInterval: undefined })
        .toEqual({
          endpoint: "flyte.example.com:443",
          insecure: false,
          insecureSkipVerify: true,
          caCertFilePath: "/etc/flyte/ca.pem",
          httpProxyUrl: "http://proxy.example.com:3128",
          authMode: "DeviceFlow",
          authModeExplicit: true,
          clientId: "flytectl",
          clientSecret: undefined,
          clientSecretSource: undefined,
          scopes: ["openid", "offline"],
          audience: "https://flyte.example.com",
          command: ["gcloud", "auth", "print-identity-token"],
          proxyCommand: ["iap-token", "--audience=flyte"],
          authorizationHeader: "flyte-authorization",
          authorizationServerUrl: "https://idp.example.com/oauth2/default",
          pkceTimeout: undefined,
          deviceFlowTimeout: undefined,
          devicePollInterval: undefined,
          configFile: "/etc/flyte/config.yaml"
        })
      expect(Duration.toSeconds(options.pkceTimeout!)).toBe(150)
      expect(Duration.toMinutes(options.deviceFlowTimeout!)).toBe(10)
      expect(Duration.toSeconds(options.devicePollInterval!)).toBe(5)
    }))

  it.effect("without any source: Pkce (not explicit), booleans false, everything else absent", () =>
    Effect.gen(function*() {
      for (const yaml of [undefined, "", "admin:\n", "# nothing\nlogger:\n  level: 1\n"]) {
        const options = yield* resolve(yaml)
        expect(options.endpoint).toBeUndefined()
        expect(options.authMode).toBe("Pkce")
        expect(options.authModeExplicit).toBe(false)
        expect(options.insecure).toBe(false)
        expect(options.insecureSkipVerify).toBe(false)
        expect(options.scopes).toBeUndefined()
        expect(options.command).toBeUndefined()
        expect(options.clientSecret).toBeUndefined()
      }
    }))

  it.effect("accepts scopes and commands as a string too", () =>
    Effect.gen(function*() {
      const options = yield* resolve(`admin:
  scopes: "openid, offline all"
  command: '["my cmd", "--flag"]'
  proxyCommand: get-token --for proxy
`)
      expect(options.scopes).toEqual(["openid", "offline", "all"])
      expect(options.command).toEqual(["my cmd", "--flag"])
      expect(options.proxyCommand).toEqual(["get-token", "--for", "proxy"])
    }))

  it.effect("every key is type-checked the same way: a Config error naming the key and the expected type", () =>
    Effect.gen(function*() {
      const where = "in /etc/flyte/config.yaml must be"
      const cases: Array<[string, string]> = [
        [
          "scopes: 5",
          `admin.scopes ${where} a list of strings or one string, not a number (5; quote it if it is meant as text)`
        ],
        ["scopes: {a: 1}", `admin.scopes ${where} a list of strings or one string, not a mapping`],
        [
          "scopes: [all, 5]",
          `admin.scopes ${where} a list of strings or one string, not a list holding something other than strings`
        ],
        ["clientId: 12345", `admin.clientId ${where} a string, not a number (12345; quote it if it is meant as text)`],
        ["audience: {x: y}", `admin.audience ${where} a string, not a mapping`],
        ["command: {run: x}", `admin.command ${where} a list of strings or one string, not a mapping`],
        ["insecure: [true]", `admin.insecure ${where} a boolean (true/false, 1/0, on/off or yes/no), not a list`],
        ["authType: true", `admin.authType ${where} a string, not a boolean`],
        ["pkceConfig: 5", `admin.pkceConfig ${where} a mapping, not a number (5; quote it if it is meant as text)`],
        [
          "deviceFlowConfig:\n    pollInterval: 5",
          `admin.deviceFlowConfig.pollInterval ${where} a string, not a number (5; quote it if it is meant as text)`
        ]
      ]
      for (const [yaml, message] of cases) {
        expect(yield* failure(`admin:\n  endpoint: dns:///x:1\n  ${yaml}\n`), yaml).toEqual({
          reason: "Config",
          message
        })
      }
      // Keys flyte-auth does not read are not judged; a key without a value is absent.
      const options = yield* resolve("admin:\n  endpoint: x:1\n  maxRetries: 5\n  scopes:\n  clientId: '12345'\n")
      expect(options).toMatchObject({ endpoint: "x:1", scopes: undefined, clientId: "12345" })
    }))

  it.effect("malformed YAML, a non-mapping document or bad values are Config errors naming the file and key", () =>
    Effect.gen(function*() {
      const malformed = yield* failure("admin:\n  endpoint: [unclosed\n")
      expect(malformed.reason).toBe("Config")
      expect(malformed.message).toContain("malformed YAML in /etc/flyte/config.yaml")
      expect(yield* failure("- a\n- b\n")).toEqual({
        reason: "Config",
        message: "/etc/flyte/config.yaml is not a YAML mapping"
      })
      expect(yield* failure("admin: 3\n")).toEqual({
        reason: "Config",
        message: "admin in /etc/flyte/config.yaml is not a mapping"
      })
      expect(yield* failure("admin:\n  insecure: maybe\n")).toEqual({
        reason: "Config",
        message:
          "admin.insecure in /etc/flyte/config.yaml: \"maybe\" is not a boolean (use true/false, 1/0, on/off or yes/no)"
      })
      expect(yield* failure("admin:\n  pkceConfig:\n    timeout: soon\n")).toEqual({
        reason: "Config",
        message: "admin.pkceConfig.timeout in /etc/flyte/config.yaml: \"soon\" is not a duration (e.g. 90s, 5m, 1h30m)"
      })
      expect(yield* failure("admin:\n  endpoint: [a, b]\n")).toEqual({
        reason: "Config",
        message: "admin.endpoint in /etc/flyte/config.yaml must be a string, not a list"
      })
      expect(yield* failure("admin:\n  command: '[\"a\", 1]'\n")).toEqual({
        reason: "Config",
        message: "admin.command in /etc/flyte/config.yaml is not a JSON array of strings"
      })
    }))
})

describe("FlyteConfig: the environment beats the file", () => {
  it.effect("for every key", () =>
    Effect.gen(function*() {
      const options = yield* resolve(fullYaml, {
        FLYTE_PLATFORM_URL: "dns:///env.example.com",
        FLYTE_PLATFORM_INSECURE: "yes",
        FLYTE_PLATFORM_INSECURE_SKIP_VERIFY: "off",
        FLYTE_PLATFORM_CA_CERT_FILE_PATH: "/env/ca.pem",
        FLYTE_PLATFORM_HTTP_PROXY_URL: "http://env-proxy:8080",
        FLYTE_CREDENTIALS_AUTH_MODE: "external_process",
        FLYTE_CREDENTIALS_CLIENT_ID: "env-client",
        FLYTE_CREDENTIALS_SCOPES: "a,b c",
        FLYTE_CREDENTIALS_AUDIENCE: "env-audience",
        FLYTE_CREDENTIALS_COMMAND: "[\"/bin/token tool\", \"--json\"]",
        FLYTE_CREDENTIALS_PROXY_COMMAND: "proxy-token  --quiet"
      })
      expect(options).toMatchObject({
        endpoint: "env.example.com",
        insecure: true,
        insecureSkipVerify: false,
        caCertFilePath: "/env/ca.pem",
        httpProxyUrl: "http://env-proxy:8080",
        authMode: "ExternalCommand",
        authModeExplicit: true,
        clientId: "env-client",
        scopes: ["a", "b", "c"],
        audience: "env-audience",
        command: ["/bin/token tool", "--json"],
        proxyCommand: ["proxy-token", "--quiet"],
        // keys without an environment variable still come from the file
        authorizationHeader: "flyte-authorization",
        authorizationServerUrl: "https://idp.example.com/oauth2/default"
      })
    }))

  it.effect("an empty variable counts as unset", () =>
    Effect.gen(function*() {
      const options = yield* resolve(fullYaml, { FLYTE_PLATFORM_URL: "", FLYTE_CREDENTIALS_SCOPES: " " })
      expect(options.endpoint).toBe("flyte.example.com:443")
      expect(options.scopes).toEqual(["openid", "offline"])
    }))

  it.effect("booleans: true/false, 1/0, on/off, yes/no in any case; anything else names the variable", () =>
    Effect.gen(function*() {
      const truthy = ["true", "TRUE", "True", "1", "on", "ON", "yes", "Yes"]
      const falsy = ["false", "FALSE", "0", "off", "Off", "no", "NO"]
      for (const value of truthy) {
        expect((yield* resolve("admin:\n  insecure: false\n", { FLYTE_PLATFORM_INSECURE: value })).insecure).toBe(true)
        expect((yield* resolve(`admin:\n  insecureSkipVerify: ${value}\n`)).insecureSkipVerify).toBe(true)
      }
      for (const value of falsy) {
        expect((yield* resolve("admin:\n  insecure: true\n", { FLYTE_PLATFORM_INSECURE: value })).insecure).toBe(false)
        expect((yield* resolve(`admin:\n  insecureSkipVerify: ${value}\n`)).insecureSkipVerify).toBe(false)
      }
      expect(yield* failure(undefined, { FLYTE_PLATFORM_INSECURE: "2" })).toEqual({
        reason: "Config",
        message: "FLYTE_PLATFORM_INSECURE: \"2\" is not a boolean (use true/false, 1/0, on/off or yes/no)"
      })
    }))
})

describe("FlyteConfig: auth modes", () => {
  it.effect("match case-insensitively, with flytekit's aliases, from either source", () =>
    Effect.gen(function*() {
      const table: Record<string, string> = {
        Pkce: "Pkce",
        PKCE: "Pkce",
        standard: "Pkce",
        Standard: "Pkce",
        ClientSecret: "ClientSecret",
        clientsecret: "ClientSecret",
        basic: "ClientSecret",
        client_credentials: "ClientSecret",
        CLIENT_CREDENTIALS: "ClientSecret",
        ExternalCommand: "ExternalCommand",
        external_process: "ExternalCommand",
        DeviceFlow: "DeviceFlow",
        deviceflow: "DeviceFlow"
      }
      for (const [spelling, mode] of Object.entries(table)) {
        expect((yield* resolve(undefined, { FLYTE_CREDENTIALS_AUTH_MODE: spelling })).authMode).toBe(mode)
        expect((yield* resolve(`admin:\n  authType: ${spelling}\n`)).authMode).toBe(mode)
      }
    }))

  it.effect("an unknown mode is a Config error naming the key and listing the valid modes", () =>
    Effect.gen(function*() {
      const fromEnv = yield* failure(undefined, { FLYTE_CREDENTIALS_AUTH_MODE: "oauth" })
      expect(fromEnv.reason).toBe("Config")
      expect(fromEnv.message).toMatch(/^FLYTE_CREDENTIALS_AUTH_MODE: Unknown auth mode "oauth"/)
      for (const valid of ["Pkce", "standard", "ClientSecret", "basic", "client_credentials", "ExternalCommand"]) {
        expect(fromEnv.message).toContain(valid)
      }
      expect(fromEnv.message).toContain("external_process")
      expect(fromEnv.message).toContain("DeviceFlow")
      const fromFile = yield* failure("admin:\n  authType: saml\n")
      expect(fromFile.message).toMatch(
        /^admin\.authType in \/etc\/flyte\/config\.yaml: Unknown auth mode "saml"/
      )
    }))

  it.effect("a secret does not override an explicit mode; without one it selects ClientSecret", () =>
    Effect.gen(function*() {
      const secret = { FLYTE_CREDENTIALS_CLIENT_SECRET: "s3cret" }
      const explicitFile = yield* resolve("admin:\n  authType: Pkce\n", secret)
      expect([explicitFile.authMode, explicitFile.authModeExplicit]).toEqual(["Pkce", true])
      expect(explicitFile.clientSecret).toBeDefined()
      const explicitEnv = yield* resolve(undefined, { ...secret, FLYTE_CREDENTIALS_AUTH_MODE: "deviceflow" })
      expect(explicitEnv.authMode).toBe("DeviceFlow")
      const inferred = yield* resolve(undefined, secret)
      expect([inferred.authMode, inferred.authModeExplicit]).toEqual(["ClientSecret", false])
      const none = yield* resolve(undefined, {})
      expect([none.authMode, none.authModeExplicit]).toEqual(["Pkce", false])
    }))
})

describe("FlyteConfig: the client secret", () => {
  const secretFile = (content: string) => {
    const dir = tempDir()
    const file = Path.join(dir, "client_secret")
    Fs.writeFileSync(file, content, { mode: 0o600 })
    return file
  }

  it.effect("env var named by clientSecretEnvVar > file at clientSecretLocation (trimmed) > inline", () =>
    Effect.gen(function*() {
      const file = secretFile("  from-file\n")
      const yaml = `admin:\n  clientSecretEnvVar: MY_SECRET\n  clientSecretLocation: ${file}\n`
      const all = { MY_SECRET: "from-env-var", FLYTE_CREDENTIALS_CLIENT_SECRET: "inline" }

      const first = yield* resolve(yaml, all)
      expect(Redacted.value(first.clientSecret!)).toBe("from-env-var")
      expect(first.clientSecretSource).toBe("the environment variable MY_SECRET")

      const second = yield* resolve(yaml, { FLYTE_CREDENTIALS_CLIENT_SECRET: "inline" }) // MY_SECRET unset
      expect(Redacted.value(second.clientSecret!)).toBe("from-file")
      expect(second.clientSecretSource).toBe(`the file ${file}`)

      const third = yield* resolve(undefined, { FLYTE_CREDENTIALS_CLIENT_SECRET: "inline" })
      expect(Redacted.value(third.clientSecret!)).toBe("inline")

      // The environment names the variable and the file too, and beats the file's keys.
      const fourth = yield* resolve(yaml, {
        FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR: "OTHER",
        OTHER: "from-other",
        MY_SECRET: "from-env-var"
      })
      expect(Redacted.value(fourth.clientSecret!)).toBe("from-other")
      const other = secretFile("other-file")
      const fifth = yield* resolve(yaml, { FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION: other })
      expect(Redacted.value(fifth.clientSecret!)).toBe("other-file")
    }))

  it.effect("is Redacted: never in its string form, JSON or an error", () =>
    Effect.gen(function*() {
      const options = yield* resolve(undefined, { FLYTE_CREDENTIALS_CLIENT_SECRET: "hunter2-secret" })
      expect(Redacted.isRedacted(options.clientSecret)).toBe(true)
      expect(String(options.clientSecret)).not.toContain("hunter2")
      expect(JSON.stringify(options)).not.toContain("hunter2")
      const bad = yield* failure(undefined, {
        FLYTE_CREDENTIALS_CLIENT_SECRET: "hunter2-secret",
        FLYTE_PLATFORM_INSECURE: "x"
      })
      expect(bad.message).not.toContain("hunter2")
    }))

  it.effect("an unreadable or empty secret file is a Config error naming the file", () =>
    Effect.gen(function*() {
      const missing = yield* failure(undefined, { FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION: "/nonexistent/secret" })
      expect(missing.reason).toBe("Config")
      expect(missing.message).toMatch(/^cannot read the client secret file \/nonexistent\/secret: .*ENOENT/)
      const empty = secretFile(" \n")
      expect(yield* failure(`admin:\n  clientSecretLocation: ${empty}\n`)).toEqual({
        reason: "Config",
        message: `the client secret file ${empty} is empty`
      })
      // Not read at all when the environment variable already gave the secret.
      const options = yield* resolve(undefined, {
        FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR: "S",
        S: "x",
        FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION: "/nonexistent/secret"
      })
      expect(Redacted.value(options.clientSecret!)).toBe("x")
    }))
})

describe("FlyteConfig.load", () => {
  const withHome = <A, E, R>(home: string, effect: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const previous = process.env.HOME
        process.env.HOME = home
        return previous
      }),
      () => effect,
      (previous) => Effect.sync(() => void (process.env.HOME = previous))
    )

  it.effect("finds the file: explicit path > FLYTECTL_CONFIG > ~/.flyte/config.yaml", () =>
    Effect.gen(function*() {
      const home = tempDir()
      Fs.mkdirSync(Path.join(home, ".flyte"))
      Fs.writeFileSync(Path.join(home, ".flyte", "config.yaml"), "admin:\n  endpoint: home.example.com\n")
      const flytectl = Path.join(home, "flytectl.yaml")
      Fs.writeFileSync(flytectl, "admin:\n  endpoint: flytectl.example.com\n")
      const explicit = Path.join(home, "explicit.yaml")
      Fs.writeFileSync(explicit, "admin:\n  endpoint: explicit.example.com\n")

      yield* withHome(
        home,
        Effect.gen(function*() {
          const byDefault = yield* FlyteConfig.load({ env: {} })
          expect([byDefault.endpoint, byDefault.configFile]).toEqual([
            "home.example.com",
            Path.join(home, ".flyte", "config.yaml")
          ])
          const byEnv = yield* FlyteConfig.load({ env: { FLYTECTL_CONFIG: flytectl } })
          expect([byEnv.endpoint, byEnv.configFile]).toEqual(["flytectl.example.com", flytectl])
          const byPath = yield* FlyteConfig.load({ configFile: explicit, env: { FLYTECTL_CONFIG: flytectl } })
          expect([byPath.endpoint, byPath.configFile]).toEqual(["explicit.example.com", explicit])
          // The environment still beats whichever file was found.
          const envWins = yield* FlyteConfig.load({
            configFile: explicit,
            env: { FLYTE_PLATFORM_URL: "env.example.com" }
          })
          expect(envWins.endpoint).toBe("env.example.com")
        })
      )
    }))

  it.effect("no default file is fine; a missing explicit or FLYTECTL_CONFIG file is an error naming it", () =>
    Effect.gen(function*() {
      const home = tempDir()
      yield* withHome(
        home,
        Effect.gen(function*() {
          const options = yield* FlyteConfig.load({ env: {} })
          expect([options.endpoint, options.configFile]).toEqual([undefined, undefined])
          const missing = yield* Effect.flip(FlyteConfig.load({ configFile: Path.join(home, "nope.yaml"), env: {} }))
          expect(missing.reason).toBe("Config")
          expect(missing.message).toContain(`cannot read the Flyte config ${Path.join(home, "nope.yaml")}`)
          const missingEnv = yield* Effect.flip(FlyteConfig.load({ env: { FLYTECTL_CONFIG: "/nonexistent/c.yaml" } }))
          expect(missingEnv.message).toContain("/nonexistent/c.yaml")
        })
      )
    }))

  it.effect("configSearch flyte2: ./config.yaml, ./.flyte, <git root>/.flyte, UCTL_CONFIG, FLYTECTL_CONFIG, ~/.union, ~/.flyte", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const write = (relative: string) => {
        const path = Path.join(root, relative)
        Fs.mkdirSync(Path.dirname(path), { recursive: true })
        Fs.writeFileSync(path, `admin:\n  endpoint: ${relative.replace(/[^a-z0-9]+/gi, "-")}.example.com\n`)
        return path
      }
      const home = Path.join(root, "home")
      const cwd = Path.join(root, "repo", "sub")
      Fs.mkdirSync(Path.join(root, "repo", ".git"), { recursive: true })
      const order = [
        write("repo/sub/config.yaml"),
        write("repo/sub/.flyte/config.yaml"),
        write("repo/.flyte/config.yaml"),
        write("uctl.yaml"),
        write("flytectl.yaml"),
        write("home/.union/config.yaml"),
        write("home/.flyte/config.yaml")
      ]
      const [local, localFlyte, gitRoot, uctl, flytectl, union, flyte] = order
      const found = (env: Record<string, string>) =>
        Effect.map(FlyteConfig.load({ env, cwd, home, configSearch: "flyte2" }), (o) => o.configFile)
      const vars = { UCTL_CONFIG: uctl, FLYTECTL_CONFIG: flytectl }
      // Each found file is removed (or its variable unset) to reveal the next one.
      expect(yield* found(vars)).toBe(local)
      Fs.rmSync(local)
      expect(yield* found(vars)).toBe(localFlyte)
      Fs.rmSync(localFlyte)
      expect(yield* found(vars)).toBe(gitRoot)
      Fs.rmSync(gitRoot)
      expect(yield* found(vars)).toBe(uctl)
      expect(yield* found({ FLYTECTL_CONFIG: flytectl })).toBe(flytectl)
      expect(yield* found({})).toBe(union)
      Fs.rmSync(union)
      expect(yield* found({})).toBe(flyte)
      Fs.rmSync(flyte)
      expect(yield* found({})).toBeUndefined()
      // flytectl's order (the default) never looks at the working directory or the git root.
      write("repo/sub/config.yaml")
      expect(yield* Effect.map(FlyteConfig.load({ env: {}, cwd, home }), (o) => o.configFile)).toBeUndefined()
      // A variable naming a missing file is an error naming the variable, not a silent fall-through.
      Fs.rmSync(Path.join(cwd, "config.yaml"))
      const missing = yield* Effect.flip(found({ UCTL_CONFIG: Path.join(root, "nope.yaml") }))
      expect(missing.message).toContain(
        `cannot read the Flyte config ${Path.join(root, "nope.yaml")} (named by UCTL_CONFIG)`
      )
    }))

  it.effect("without `env` it reads the current ConfigProvider, and explicit secret options beat both sources", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const secret = Path.join(dir, "secret")
      Fs.writeFileSync(secret, "explicit-file\n")
      const options = yield* FlyteConfig.load({ clientSecretLocation: secret }).pipe(
        Effect.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
          new Map([
            ["FLYTECTL_CONFIG", ""],
            ["FLYTE_PLATFORM_URL", "provider.example.com"],
            ["FLYTE_CREDENTIALS_CLIENT_SECRET", "inline"]
          ])
        ))),
        (effect) => withHome(dir, effect)
      )
      expect(options.endpoint).toBe("provider.example.com")
      expect(Redacted.value(options.clientSecret!)).toBe("explicit-file")
    }))
})
