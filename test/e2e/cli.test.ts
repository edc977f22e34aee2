/**
 * The built `flyte-auth` binary against `flyte-auth sandbox`, both as subprocesses: every command and every flow,
 * as a user runs them (non-interactive runs: stdin is not a terminal).
 */
import * as Credentials from "@flyte-auth/core/Credentials"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as NodeKeyring from "@flyte-auth/node/NodeKeyring"
import { UserAgent } from "@flyte-auth/sandbox"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import {
  bin,
  fixtures,
  type Home,
  jwtClaims,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  startSandboxProcess,
  userAgentBrowser
} from "./helpers.js"

requireBuild()

describe.shuffle("flyte-auth sandbox + every command (subprocesses; in random order)", () => {
  let sandboxHome: Home
  let sandbox: SandboxProcess
  let common: Array<string>
  let memory: Array<string>
  /** Each test's own HOME and credentials directory: no test sees what another stored. */
  let home: Home
  const run = async (args: ReadonlyArray<string>, options?: Parameters<typeof runCli>[2]) => {
    const result = await runCli(home, args, options)
    // No secret ever appears in the output of any run (the tokens `token` prints are what it is for).
    expect(result.stdout + result.stderr).not.toContain(sandbox.info.confidentialClientSecret)
    expect(result.stdout + result.stderr).not.toMatch(/refresh_token|code_verifier|"access_token"/)
    return result
  }
  /** A PKCE login through the scripted browser into this test's file keyring. */
  const logIn = async () => {
    const result = await run(["login", ...common, "--browser-command", userAgentBrowser, "--timeout", "30"])
    expect(result.code).toBe(0)
    return result
  }

  beforeAll(async () => {
    sandboxHome = makeHome()
    sandbox = await startSandboxProcess(sandboxHome, [
      "--admin-port",
      "0",
      "--admin-http-port",
      "0",
      "--idp-port",
      "0",
      "--redirect-uri",
      "http://localhost:0/callback",
      "--token-ttl",
      "900",
      "--header-key",
      "X-Flyte-E2E"
    ])
    common = ["--endpoint", `dns:///${sandbox.info.adminGrpc}`, "--insecure", "--keyring", "file"]
    // The flows that must not touch a stored entry keep nothing.
    memory = ["--endpoint", sandbox.info.adminGrpc, "--insecure", "--keyring", "memory"]
  })
  beforeEach(() => {
    home = makeHome()
  })
  afterEach(() => home.cleanup())

  afterAll(async () => {
    const code = await sandbox?.stop()
    sandboxHome?.cleanup()
    // SIGTERM is the normal way to stop the sandbox: exit code 0.
    expect(code).toBe(0)
  })

  it("sandbox: the first stdout line is the JSON object of the issue", () => {
    const { info, firstLine } = sandbox
    expect(Object.keys(JSON.parse(firstLine))).toEqual([
      "adminGrpc",
      "adminHttp",
      "issuer",
      "publicClientId",
      "confidentialClientId",
      "confidentialClientSecret",
      "ciClientId",
      "ciClientSecret",
      "username",
      "password"
    ])
    expect(info.adminGrpc).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(info.adminHttp).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(info.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(info.publicClientId).toBe("flytectl")
    expect(info.confidentialClientId).toBe("flytepropeller")
    expect(info.confidentialClientSecret.length).toBeGreaterThan(16)
    expect(info.ciClientId).toBe("flyte-ci")
    expect(info.ciClientSecret.length).toBeGreaterThan(16)
    expect(info.ciClientSecret).not.toBe(info.confidentialClientSecret)
    expect(info.username).toBe("demo")
    expect(info.password).toBe("demo-password")
  })

  it("sandbox: --header-key and --token-ttl are applied", async () => {
    const config = await (await fetch(`${sandbox.info.adminHttp}/config/v1/flyte_client`)).json()
    expect(config).toMatchObject({ authorization_metadata_key: "x-flyte-e2e", client_id: "flytectl" })
  })

  it("--help works for the program and every command, on stdout, exit 0", async () => {
    const commands = ["login", "token", "status", "logout", "whoami", "sandbox", "demo"]
    const results = await Promise.all([run(["--help"]), ...commands.map((c) => run([c, "--help"]))])
    for (const result of results) {
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("--endpoint")
      expect(result.stdout).toContain("--keyring")
    }
    expect(results[0].stdout).toContain("COMMANDS")
    for (const command of commands) expect(results[0].stdout).toContain(command)
    expect(results[commands.indexOf("sandbox") + 1].stdout).toContain("--admin-port")
    expect(results[commands.indexOf("status") + 1].stdout).toContain("--json")
  })

  it("login (PKCE): a scripted browser signs in on the IdP's real pages; the result goes to stderr", async () => {
    const result = await run(["login", ...common, "--browser-command", userAgentBrowser, "--timeout", "30"])
    expect(result.stderr).toContain(`Logged in to ${sandbox.info.adminGrpc} as sandbox|demo`)
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("")
    // The URL is printed even though a browser command is used (opening a browser can fail silently).
    expect(result.stderr).toContain(`${sandbox.info.issuer}/auth?`)
    expect((await home.awaitBrowserRuns(1)).at(-1)).toMatchObject({ browser: "user-agent", ok: true, status: 200 })
  })

  it("global options stand before the command, after it, or between its own options: one parse", async () => {
    await logIn()
    // `--verbose` (global) before `--json` (status's own): @effect/cli alone would call --json unknown here.
    const orders = [["status", "--verbose", "--json", ...common], [...common, "status", "--json"], [
      "status",
      ...common.slice(0, 2),
      "--json",
      ...common.slice(2)
    ]]
    for (const args of orders) {
      const result = await run(args)
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0)
      expect(JSON.parse(result.stdout.trim())).toMatchObject({ endpoint: sandbox.info.adminGrpc, loggedIn: true })
    }
  })

  it("status and status --json show the stored credentials, never a token", async () => {
    await logIn()
    const [text, json] = await Promise.all([run(["status", ...common]), run(["status", "--json", ...common])])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/logged in\s+yes/)
    expect(text.stdout).toMatch(/subject\s+sandbox\|demo/)
    expect(text.stdout).toMatch(/auth mode\s+Pkce/)
    expect(text.stdout).toMatch(/keyring\s+file/)
    expect(json.code).toBe(0)
    const lines = json.stdout.trim().split("\n")
    expect(lines).toHaveLength(1)
    const report = JSON.parse(lines[0])
    expect(report).toMatchObject({
      endpoint: sandbox.info.adminGrpc,
      authMode: "Pkce",
      keyringBackend: "file",
      insecure: true,
      loggedIn: true,
      subject: "sandbox|demo",
      expired: false,
      refreshToken: true
    })
    // --token-ttl 900 (the default is 600)
    expect(report.expiresInSeconds).toBeGreaterThan(800)
    expect(json.stdout + text.stdout).not.toMatch(/eyJ/)
  })

  it("token prints only the access token (the same one twice); whoami prints UserInfo as JSON", async () => {
    await logIn()
    const first = await run(["token", ...common])
    const second = await run(["token", ...common])
    expect(first.code).toBe(0)
    expect(first.stderr).toBe("")
    expect(first.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
    expect(second.stdout).toBe(first.stdout)
    expect(jwtClaims(first.stdout.trim()).sub).toBe("sandbox|demo")

    const whoami = await run(["whoami", ...common])
    expect(whoami.code).toBe(0)
    expect(JSON.parse(whoami.stdout)).toMatchObject({ subject: "sandbox|demo", preferred_username: "demo" })
  })

  it("options go before or after the command", async () => {
    await logIn()
    const before = await run([...common, "token"])
    const after = await run(["token", ...common])
    expect(before.code).toBe(0)
    expect(before.stdout).toBe(after.stdout)
  })

  it("logout, then token in a non-interactive run fails cleanly with AccessTokenNotFound (exit 3)", async () => {
    await logIn()
    const logout = await run(["logout", ...common])
    expect(logout.code).toBe(0)
    expect(logout.stderr).toBe(
      `Logged out of ${sandbox.info.adminGrpc}: the refresh token is revoked at the identity provider and the ` +
        `stored credentials are deleted\n`
    )
    // Nothing is left to delete the second time, and logout says so.
    const again = await run(["logout", ...common])
    expect(again.code).toBe(0)
    expect(again.stderr).toBe(`Logged out of ${sandbox.info.adminGrpc} (nothing was stored)\n`)

    const token = await run(["token", ...common])
    expect(token.code).toBe(3)
    expect(token.stdout).toBe("")
    const lines = token.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^flyte-auth token: No credentials are stored for .* run `flyte-auth login`/)
    // No browser was started.
    expect(home.browserRuns()).toHaveLength(1)

    const status = await run(["status", "--json", ...common])
    expect(JSON.parse(status.stdout)).toMatchObject({ loggedIn: false, subject: null })
  })

  it("token --interactive may log in (here through the scripted browser)", async () => {
    const token = await run(["token", ...common, "--interactive", "--browser-command", userAgentBrowser])
    expect(token.code).toBe(0)
    expect(jwtClaims(token.stdout.trim()).sub).toBe("sandbox|demo")
  })

  it("device flow: URL and code on stderr, approved from a second device", async () => {
    let approval: Promise<unknown> | undefined
    const result = await run(["login", ...common, "--auth-mode", "device_flow"], {
      timeoutMs: 40_000,
      onStderrLine: (line) => {
        const url = /(https?:\/\/\S+)/.exec(line)?.[1]
        if (approval === undefined && url !== undefined && line.includes("code")) {
          approval = UserAgent.make().approveDevice(
            { verificationUriComplete: url },
            { username: sandbox.info.username, password: sandbox.info.password }
          )
        }
      }
    })
    expect(approval).toBeDefined()
    await expect(approval).resolves.toMatchObject({ outcome: "approved" })
    expect(result.stderr).toMatch(/To log in, open http:\/\/127\.0\.0\.1:\d+\/device\S* \(code [A-Z-]+\)/)
    expect(result.stderr).toContain("as sandbox|demo")
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("")
    // The stored credentials remember the flow: without --auth-mode, status and token use it.
    const status = await run(["status", "--json", ...common])
    expect(JSON.parse(status.stdout)).toMatchObject({ authMode: "DeviceFlow", loggedIn: true })
    const statusText = await run(["status", ...common])
    expect(statusText.stdout).toMatch(/auth mode\s+DeviceFlow/)
    const explicit = await run(["status", "--json", ...common, "--auth-mode", "Pkce"])
    expect(JSON.parse(explicit.stdout)).toMatchObject({ authMode: "Pkce" })
  })

  it("client credentials: the secret from an environment variable or a file, never printed", async () => {
    const viaEnv = await run(
      [
        "token",
        ...memory,
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        "flytepropeller",
        "--client-secret-env-var",
        "MY_SECRET"
      ],
      { env: { MY_SECRET: sandbox.info.confidentialClientSecret } }
    )
    expect(viaEnv.code).toBe(0)
    expect(jwtClaims(viaEnv.stdout.trim())).toMatchObject({ client_id: "flytepropeller" })

    const secretFile = Path.join(home.dir, "client-secret")
    Fs.writeFileSync(secretFile, `  ${sandbox.info.confidentialClientSecret}\n`, { mode: 0o600 })
    const viaFile = await run([
      "whoami",
      ...memory,
      "--auth-mode",
      "basic",
      "--client-id",
      "flytepropeller",
      "--client-secret-location",
      secretFile
    ])
    expect(viaFile.code).toBe(0)
    expect(JSON.parse(viaFile.stdout)).toMatchObject({ subject: "flytepropeller" })

    // An http(s):// endpoint: metadata from /.well-known/oauth-authorization-server, whoami from GET /me.
    const overHttp = await run(
      ["whoami", "--endpoint", sandbox.info.adminHttp, "--keyring", "memory", "--auth-mode", "ClientSecret"].concat(
        ["--client-id", "flytepropeller", "--client-secret-env-var", "MY_SECRET"]
      ),
      { env: { MY_SECRET: sandbox.info.confidentialClientSecret } }
    )
    expect(overHttp.code).toBe(0)
    expect(JSON.parse(overHttp.stdout)).toMatchObject({ subject: "flytepropeller" })

    const wrong = await run(
      [
        "token",
        ...memory,
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        "flytepropeller",
        "--client-secret-env-var",
        "MY_SECRET"
      ],
      { env: { MY_SECRET: "not-the-secret" } }
    )
    expect(wrong.code).toBe(1)
    expect(wrong.stdout).toBe("")
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1)
    expect(wrong.stderr).toMatch(/invalid_client.*check --client-id and the client secret/)
  })

  it("external command: `flyte-auth token` of another configuration as the command; a proxy command", async () => {
    const inner = [
      process.execPath,
      bin,
      "token",
      "--endpoint",
      sandbox.info.adminGrpc,
      "--insecure",
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      "flytepropeller",
      "--client-secret-env-var",
      "MY_SECRET",
      "--keyring",
      "memory"
    ]
    const proxyLog = Path.join(home.dir, "proxy.log")
    const proxy = [process.execPath, Path.join(fixtures, "proxy-token.mjs"), proxyLog]
    const env = { MY_SECRET: sandbox.info.confidentialClientSecret }
    const args = [
      ...memory,
      "--auth-mode",
      "ExternalCommand",
      "--command",
      JSON.stringify(inner),
      "--proxy-command",
      proxy.join(" ")
    ]
    const token = await run(["token", ...args], { env })
    expect(token.code).toBe(0)
    expect(jwtClaims(token.stdout.trim())).toMatchObject({ client_id: "flytepropeller" })

    const whoami = await run(["whoami", ...args], { env })
    expect(whoami.code).toBe(0)
    expect(JSON.parse(whoami.stdout)).toMatchObject({ subject: "flytepropeller" })
    // The proxy command ran (its token goes to every metadata and gRPC call as proxy-authorization).
    expect(Fs.readFileSync(proxyLog, "utf8").trim().split("\n").length).toBeGreaterThanOrEqual(1)
  })

  it("login with a keyring that keeps nothing says so", async () => {
    const args = ["--endpoint", sandbox.info.adminGrpc, "--insecure", "--auth-mode", "ClientSecret"].concat(
      ["--client-id", "flytepropeller", "--client-secret-env-var", "MY_SECRET"]
    )
    const env = { env: { MY_SECRET: sandbox.info.confidentialClientSecret } }
    const [none, memoryOnly] = await Promise.all([
      run(["login", ...args, "--keyring", "none"], env),
      run(["login", ...args, "--keyring", "memory"], env)
    ])
    expect(none.code).toBe(0)
    expect(none.stderr).toMatch(/^Logged in to .* as flytepropeller; expires .*\(not stored: --keyring none\)\n$/)
    expect(memoryOnly.code).toBe(0)
    expect(memoryOnly.stderr).toMatch(
      /; expires .*\(not stored: the memory keyring keeps it for this command only\)\n$/
    )
  })

  it("status: expired credentials without a refresh token are not logged in, unless the mode renews them", async () => {
    const endpoint = "expired.example.com:443"
    const expired = (refreshToken: boolean, authMode: "Pkce" | "ClientSecret" = "Pkce", clientId?: string) =>
      new Credentials.Credentials({
        accessToken: Redacted.make("expired-access-token"),
        ...(refreshToken ? { refreshToken: Redacted.make("a-refresh-token") } : {}),
        expiresAt: DateTime.unsafeMake(Date.now() - 60_000),
        endpoint,
        authMode,
        ...(clientId === undefined ? {} : { clientId })
      })
    const store = (credentials: Credentials.Credentials) =>
      Effect.runPromise(
        Effect.gen(function*() {
          const keyring = yield* NodeKeyring.makeFile(home.credentials)
          const entry = yield* Credentials.encodeKeyringEntry(credentials)
          yield* keyring.set(Keyring.serviceName, Credentials.keyringAccount(endpoint, credentials.clientId), entry)
        }).pipe(Logger.withMinimumLogLevel(LogLevel.Error))
      )
    const status = (...more: Array<string>) => run(["status", "--endpoint", endpoint, "--keyring", "file", ...more])

    await store(expired(false))
    await store(expired(false, "ClientSecret", "svc"))
    const [text, json, clientSecret] = await Promise.all([
      status(),
      status("--json"),
      status("--json", "--auth-mode", "ClientSecret", "--client-id", "svc")
    ])
    expect(text.stdout).toMatch(/logged in\s+no \(expired, no refresh token: run flyte-auth login\)\n/)
    expect(text.stdout).toMatch(/refresh token\s+no/)
    expect(JSON.parse(json.stdout)).toMatchObject({ loggedIn: false, expired: true, refreshToken: false })
    // Not logged in: exit code 1, as `gh auth status`, so that scripts can test it.
    expect([text.code, json.code]).toEqual([1, 1])
    // ClientSecret gets a new token without a user.
    expect(JSON.parse(clientSecret.stdout)).toMatchObject({ loggedIn: true, expired: true })
    expect(clientSecret.code).toBe(0)

    await store(expired(true))
    const refreshable = await status("--json")
    expect(JSON.parse(refreshable.stdout)).toMatchObject({ loggedIn: true, expired: true, refreshToken: true })
  })
})
