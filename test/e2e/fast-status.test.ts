/**
 * `flyte-auth status` has a fast path (packages/cli/src/internal/fastStatus.ts) that mirrors the full command for
 * plain stored logins. Here both run on the same keyrings, through the built CLI: the default run and one with
 * `FLYTE_AUTH_NO_FAST_PATH=1` must print the same (seconds that tick between the two runs aside) and exit alike,
 * and the default run must really have taken the fast path (the full CLI's chunk is never loaded) — or, for what
 * it does not handle, must not have.
 */
import { Credentials, Keyring } from "@flyte-auth/core"
import { NodeKeyring } from "@flyte-auth/node"
import { type Sandbox, startSandbox } from "@flyte-auth/sandbox"
import { DateTime, Effect, Logger, LogLevel, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, makeHome, moduleLoadLog, requireBuild, runCli } from "./helpers.js"

requireBuild()

const jwt = (claims: Record<string, unknown>) => `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2ln`

describe("flyte-auth status: fast path = full path (built CLI)", () => {
  let home: Home
  let sandbox: Sandbox.Service
  let loads: ReturnType<typeof moduleLoadLog>

  beforeAll(async () => {
    home = makeHome()
    sandbox = await startSandbox()
    loads = moduleLoadLog(home)
  })
  afterAll(async () => {
    await sandbox?.close()
    home?.cleanup()
  })

  const store = (account: string, credentials: Credentials.Credentials) =>
    Effect.runPromise(
      Effect.gen(function*() {
        const keyring = yield* NodeKeyring.makeFile(home.credentials)
        yield* keyring.set(Keyring.serviceName, account, yield* Credentials.encodeKeyringEntry(credentials))
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None))
    )

  /** What may differ between two runs a moment apart: the seconds left. */
  const normalized = (text: string) =>
    text.replace(/\((in|[^()]*ago)[^)]*\)/g, "(…)").replace(/"expiresInSeconds":-?\d+/g, "\"expiresInSeconds\":0")

  /** Runs `status args` both ways; answers whether the default run took the fast path. */
  const compare = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    loads.reset()
    const fast = await runCli(home, ["status", ...args], {
      env: { ...env, NODE_OPTIONS: `--import ${loads.register}` }
    })
    const full = await runCli(home, ["status", ...args], { env: { ...env, FLYTE_AUTH_NO_FAST_PATH: "1" } })
    expect(normalized(fast.stdout), args.join(" ")).toBe(normalized(full.stdout))
    expect(fast.stderr, args.join(" ")).toBe(full.stderr)
    expect(fast.code, args.join(" ")).toBe(full.code)
    return {
      fastPath: !loads.loaded().some((url) => /\/dist\/chunks\/Cli-/.test(url)),
      code: fast.code,
      stdout: fast.stdout
    }
  }

  it("nothing stored, logins of two service accounts, the admin's client: same output, same exit code", async () => {
    const endpoint = ["--endpoint", sandbox.adminGrpc, "--insecure", "--keyring", "file"]
    for (const json of [[], ["--json"]]) {
      expect(await compare([...endpoint, ...json])).toMatchObject({ fastPath: true, code: 1 })
    }
    const { ci, confidential } = sandbox.clients
    for (const client of [confidential, ci]) {
      const login = await runCli(home, [
        "login",
        ...endpoint,
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        client.clientId,
        "--client-secret-env-var",
        "SECRET"
      ], { env: { SECRET: client.clientSecret } })
      expect(login.code, login.stderr).toBe(0)
    }
    for (const json of [[], ["--json"]]) {
      const selected = [...endpoint, "--auth-mode", "ClientSecret", "--client-id", ci.clientId, ...json]
      expect(await compare(selected)).toMatchObject({ fastPath: true, code: 0 })
      // The admin's client (no --client-id): not logged in, both service accounts listed.
      expect(await compare([...endpoint, ...json])).toMatchObject({ fastPath: true, code: 1 })
    }
  })

  it("user logins: fresh, expired with and without a refresh token, no expiry; the config file's endpoint", async () => {
    const endpoint = "fast-status.example.com:443"
    const now = Date.now()
    const at = (ms: number) => DateTime.unsafeMake(now + ms)
    const cases: ReadonlyArray<[string | undefined, Credentials.Credentials]> = [
      [
        undefined,
        new Credentials.Credentials({
          accessToken: Redacted.make(jwt({ sub: "user-1", scope: "all offline_access" })),
          idToken: Redacted.make(jwt({ sub: "user-1" })),
          refreshToken: Redacted.make("refresh"),
          expiresAt: at(3_600_000),
          obtainedAt: at(0),
          endpoint,
          authMode: "Pkce"
        })
      ],
      [
        "expired-no-refresh",
        new Credentials.Credentials({
          accessToken: Redacted.make("opaque"),
          expiresAt: at(-90_000),
          endpoint,
          authMode: "DeviceFlow",
          clientId: "expired-no-refresh",
          scopes: ["a", "b"]
        })
      ],
      [
        "expired-refresh",
        new Credentials.Credentials({
          accessToken: Redacted.make(jwt({ client_id: "svc" })),
          refreshToken: Redacted.make("refresh"),
          expiresAt: at(-5_000),
          endpoint,
          authMode: "Pkce",
          clientId: "expired-refresh"
        })
      ],
      [
        "no expiry",
        new Credentials.Credentials({
          accessToken: Redacted.make("opaque-2"),
          endpoint,
          authMode: "ExternalCommand",
          clientId: "no expiry"
        })
      ]
    ]
    for (const [clientId, credentials] of cases) {
      await store(Credentials.keyringAccount(endpoint, clientId), credentials)
    }
    const base = ["--endpoint", `dns:///${endpoint}`, "--keyring", "file"]
    for (const json of [[], ["--json"]]) {
      for (const [clientId] of cases) {
        const selected = clientId === undefined ? base : [...base, "--client-id", clientId]
        expect((await compare([...selected, ...json])).fastPath).toBe(true)
        expect((await compare([...selected, "--auth-mode", "DeviceFlow", ...json])).fastPath).toBe(true)
      }
    }
    const config = Path.join(home.dir, "fast-status.yaml")
    Fs.writeFileSync(config, `admin:\n  endpoint: dns:///${endpoint}\n  insecure: true\n`)
    expect(await compare(["--config", config, "--keyring", "file"])).toMatchObject({ fastPath: true, code: 0 })
    // What it does not handle goes to the full path: --all, --verbose, an old bare-endpoint entry.
    expect((await compare([...base, "--all"])).fastPath).toBe(false)
    expect((await compare([...base, "--verbose"])).fastPath).toBe(false)
    await store(Credentials.legacyKeyringAccount(endpoint), cases[0][1])
    expect((await compare(base)).fastPath).toBe(false)
  })
})
