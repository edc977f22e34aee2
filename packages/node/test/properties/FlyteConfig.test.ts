/**
 * Property: `FlyteConfig.fromSources(yaml, env)` of arbitrary YAML text (random text, YAML oddities, and
 * flytectl-shaped documents with arbitrary values under the known keys) and arbitrary `FLYTE_*` environments
 * yields a value or a typed `AuthenticationError` (reason `Config`), never a defect or a throw.
 */
import { describe, expect, it } from "@effect/vitest"
import { AuthError, AuthMode } from "@flyte-auth/core"
import { FlyteConfig } from "@flyte-auth/node"
import { Cause, Effect, Exit, FastCheck as fc, Runtime } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Yaml from "yaml"

/** The only paths a generated `clientSecretLocation` may name: nothing outside a temp dir is ever read. */
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-config-prop-"))
const secretFile = Path.join(dir, "secret")
Fs.writeFileSync(secretFile, "  file-secret\n", { mode: 0o600 })
const emptyFile = Path.join(dir, "empty")
Fs.writeFileSync(emptyFile, "")
const secretLocation = fc.constantFrom(secretFile, emptyFile, dir, Path.join(dir, "missing"), "", "   ")

const text = fc.oneof(fc.string(), fc.fullUnicodeString(), fc.string({ unit: "binary" }))

/** Values that look like what the keys expect, and values that do not. */
const scalar = fc.oneof(
  text,
  fc.constantFrom(
    "true",
    "False",
    "yes",
    "off",
    "1",
    "maybe",
    "dns:///flyte.example.com:443",
    "Pkce",
    "client_credentials",
    "DEVICEFLOW",
    "nope",
    "90s",
    "1h30m",
    "1.5s",
    "-5s",
    "5x",
    "[\"gcloud\", \"auth\"]",
    "[1, 2]",
    "[",
    "a b  c",
    "~",
    ".inf",
    ".nan",
    "0x1F",
    "2001-12-14t21:59:43.10-05:00"
  ),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null)
)

const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(text, fc.constantFrom("__proto__", "constructor", "timeout")), tie("value"), {
      maxKeys: 4
    })
  )
})).value

/** Mostly plausible values for a key, sometimes anything at all. */
const mostly = <A>(plausible: fc.Arbitrary<A>) =>
  fc.oneof({ weight: 10, arbitrary: plausible }, { weight: 1, arbitrary: value })

const booleanText = fc.constantFrom("true", "false", "1", "0", "on", "off", "yes", "no", " TRUE ", "Off")
const modeText = fc.constantFrom(
  "Pkce",
  "pkce",
  "standard",
  "ClientSecret",
  "basic",
  "client_credentials",
  "ExternalCommand",
  "external_process",
  "DeviceFlow",
  "DEVICEFLOW"
)
const durationText = fc.constantFrom("90s", "5m", "1h30m", "1.5s", "250ms", "30", "0s")
const words = fc.array(fc.stringMatching(/^[\x21-\x7e]{1,12}$/), { minLength: 1, maxLength: 4 })

const admin = fc.record(
  {
    endpoint: mostly(fc.oneof(text, fc.constantFrom("dns:///flyte.example.com:443", "localhost:30080"))),
    insecure: mostly(fc.oneof(booleanText, fc.boolean())),
    insecureSkipVerify: mostly(fc.oneof(booleanText, fc.boolean())),
    caCertFilePath: mostly(text),
    httpProxyURL: mostly(text),
    authType: mostly(modeText),
    clientId: mostly(text),
    clientSecretEnvVar: mostly(fc.constantFrom("MY_SECRET", "UNSET_VARIABLE")),
    scopes: mostly(fc.oneof(words, words.map((list) => list.join(" ")), words.map((list) => list.join(",")))),
    audience: mostly(text),
    command: mostly(fc.oneof(words, words.map((list) => list.join(" ")), words.map((list) => JSON.stringify(list)))),
    proxyCommand: mostly(words),
    authorizationHeader: mostly(text),
    pkceConfig: mostly(fc.record({ timeout: mostly(durationText) }, { requiredKeys: [] })),
    deviceFlowConfig: mostly(
      fc.record({ timeout: mostly(durationText), pollInterval: mostly(durationText) }, { requiredKeys: [] })
    ),
    clientSecretLocation: secretLocation
  },
  { requiredKeys: [] }
)

/** A flytectl-shaped document, sometimes with a shared or self reference (YAML anchors and aliases). */
const document = fc.tuple(
  admin,
  fc.dictionary(text, value, { maxKeys: 3 }),
  fc.constantFrom("plain", "shared", "cycle")
)
  .map(([adminSection, extra, shape]) => {
    const doc: Record<string, unknown> = { ...extra, admin: { ...adminSection } }
    const section = doc.admin as Record<string, unknown>
    if (shape === "shared") section.deviceFlowConfig = section.pkceConfig = { timeout: "30s" }
    if (shape === "cycle") section.pkceConfig = section
    return Yaml.stringify(doc)
  })

const oddities = fc.constantFrom(
  "",
  "---",
  "admin:",
  "admin: [",
  "admin: 1",
  "admin: [a, b]",
  "- a\n- b",
  "&a [*a]",
  "admin: &a {pkceConfig: *a}",
  "admin:\n  endpoint: *undefinedAlias",
  "a: !!binary aGVsbG8=",
  "admin:\n  endpoint: !!js/function 'function () {}'",
  "%YAML 1.1\n---\nadmin: {insecure: yes}",
  "--- a\n--- b",
  "\t- tab",
  "? [complex, key]\n: value",
  "admin:\n  insecure: *a\n  x: &a yes",
  "admin: {scopes: {a: 1}}",
  "admin:\n  command: [[nested]]",
  `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n` +
    `c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nadmin: {scopes: *d}`
)

const yamlText = fc.option(fc.oneof(document, oddities, text), { nil: undefined, freq: 10 })

const envText = (plausible: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 10, arbitrary: plausible }, { weight: 1, arbitrary: fc.oneof(scalar.map(String), text) })

const env = fc.record(
  {
    FLYTE_PLATFORM_URL: envText(text),
    FLYTE_PLATFORM_INSECURE: envText(booleanText),
    FLYTE_PLATFORM_INSECURE_SKIP_VERIFY: envText(booleanText),
    FLYTE_PLATFORM_CA_CERT_FILE_PATH: envText(text),
    FLYTE_PLATFORM_HTTP_PROXY_URL: envText(text),
    FLYTE_CREDENTIALS_CLIENT_ID: envText(text),
    FLYTE_CREDENTIALS_CLIENT_SECRET: envText(text),
    FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR: envText(fc.constantFrom("MY_SECRET", "UNSET_VARIABLE")),
    FLYTE_CREDENTIALS_SCOPES: envText(words.map((list) => list.join(" "))),
    FLYTE_CREDENTIALS_AUTH_MODE: envText(modeText),
    FLYTE_CREDENTIALS_AUDIENCE: envText(text),
    FLYTE_CREDENTIALS_COMMAND: envText(
      fc.oneof(words.map((list) => list.join(" ")), words.map((l) => JSON.stringify(l)))
    ),
    FLYTE_CREDENTIALS_PROXY_COMMAND: envText(words.map((list) => list.join(" "))),
    FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION: secretLocation,
    MY_SECRET: text
  },
  { requiredKeys: [] }
) as fc.Arbitrary<Record<string, string>>

describe("FlyteConfig properties", () => {
  it.live("arbitrary YAML and FLYTE_* values give options or a typed Config error, never a defect", () =>
    Effect.gen(function*() {
      const outcomes = { value: 0, error: 0 }
      const check = (yaml: string | undefined, variables: Record<string, string>) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(FlyteConfig.fromSources(yaml, variables, { configFile: "config.yaml" }))
          if (Exit.isSuccess(exit)) {
            expect(AuthMode.AuthMode.literals).toContain(exit.value.authMode)
            expect(typeof exit.value.insecure).toBe("boolean")
            outcomes.value++
            return
          }
          expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause)).toBe(false)
          const failures = [...Cause.failures(exit.cause)]
          expect(failures).toHaveLength(1)
          expect(failures[0]).toBeInstanceOf(AuthError.AuthenticationError)
          expect(failures[0].reason).toBe("Config")
          outcomes.error++
        })
      const runtime = yield* Effect.runtime<never>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(yamlText, env, (yaml, variables) => Runtime.runPromise(runtime, check(yaml, variables))),
          { numRuns: 300 }
        )
      )
      expect(outcomes.value).toBeGreaterThan(20)
      expect(outcomes.error).toBeGreaterThan(20)
    }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))))
})

describe("FlyteConfig: hostile documents found by the property", () => {
  const deep = `admin:\n  pkceConfig: ${"{a: ".repeat(40)}1${"}".repeat(40)}\n`
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    // Effect's ConfigProvider.fromJson never returns on these; they used to hang the process
    ["a list inside a list", "admin:\n  command: [[gcloud, auth]]\n", "admin.command[0] in config.yaml holds a list"],
    ["a list inside a list, deeper", "admin:\n  x: [{y: [[1]]}]\n", "admin.x[0].y[0] in config.yaml holds a list"],
    // ... and overflows the stack (a defect) on this one
    ["a self-referencing alias", "admin: &a\n  pkceConfig: *a\n", "refers to itself"],
    // guards: nothing a config needs, refused before any reader walks it
    ["nesting 40 levels deep", deep, "nests deeper than 32 levels"],
    [
      "billion laughs",
      "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n" +
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nadmin: {scopes: *d}\n",
      "alias"
    ],
    ["not a mapping", "- a\n- b\n", "not a YAML mapping"],
    ["admin not a mapping", "admin: [a]\n", "admin in config.yaml is not a mapping"],
    ["malformed YAML", "admin: [\n", "malformed YAML"]
  ]
  for (const [name, yaml, message] of cases) {
    it.effect(`${name} → typed Config error`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(FlyteConfig.fromSources(yaml, {}, { configFile: "config.yaml" }))
        expect(error.reason).toBe("Config")
        expect(error.message).toContain(message)
      }).pipe(Effect.timeout("5 seconds")))
  }

  it.effect("a list inside a list outside the admin section is none of our business", () =>
    Effect.gen(function*() {
      const options = yield* FlyteConfig.fromSources("storage:\n  x: [[1]]\nadmin:\n  endpoint: dns:///flyte:443\n", {})
      expect(options.endpoint).toBe("flyte:443")
    }))
})
