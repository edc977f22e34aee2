/**
 * Logins where the user is (issue 15), through the built `flyte-auth` against `flyte-auth sandbox`, both as
 * subprocesses: a callback port that another program really holds; a logout that revokes the refresh token at the
 * IdP.
 */
import * as Credentials from "@flyte-auth/core/Credentials"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as NodeKeyring from "@flyte-auth/node/NodeKeyring"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type Home,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  startSandboxProcess,
  userAgentBrowser
} from "./helpers.js"

requireBuild()

describe("logins that work wherever the user is (built CLI against the sandbox)", () => {
  let home: Home
  let sandbox: SandboxProcess
  /** Holds the port of the redirect URI the admin publishes, as another login or tool would. */
  let holder: Net.Server
  let busyPort: number
  /** The admin, and the admin with the file keyring. */
  let admin: Array<string>
  let common: Array<string>

  beforeAll(async () => {
    home = makeHome()
    holder = Net.createServer()
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve))
    busyPort = (holder.address() as Net.AddressInfo).port
    sandbox = await startSandboxProcess(home, [
      "--admin-port",
      "0",
      "--admin-http-port",
      "0",
      "--idp-port",
      "0",
      "--redirect-uri",
      `http://localhost:${busyPort}/callback`
    ])
    admin = ["--endpoint", sandbox.info.adminGrpc, "--insecure"]
    common = [...admin, "--keyring", "file"]
  })

  /** The file keyring of the runs, read and written as the CLI does. */
  const fileKeyring = <A>(f: (keyring: Keyring.Keyring.Service) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(
      Effect.flatMap(NodeKeyring.makeFile(home.credentials), f).pipe(Logger.withMinimumLogLevel(LogLevel.Error))
    )
  const stored = (endpoint: string) =>
    fileKeyring((keyring) =>
      keyring.get(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined)).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(undefined),
          onSome: (entry) => Credentials.decodeKeyringEntry(entry)
        }))
      )
    )
  /** A refresh-token grant sent straight to the IdP, as anyone holding a copy of the token could. */
  const refreshAtIdp = async (refreshToken: string) => {
    const discovery = await (await fetch(`${sandbox.info.issuer}/.well-known/openid-configuration`)).json() as {
      readonly token_endpoint: string
    }
    return fetch(discovery.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: refreshToken,
        client_id: sandbox.info.publicClientId
      })
    })
  }

  afterAll(async () => {
    await sandbox?.stop()
    await new Promise((resolve) => holder?.close(resolve))
    home?.cleanup()
  })

  it("a busy callback port: the login listens on a free loopback port, says so, and the IdP accepts it", async () => {
    const runsBefore = home.browserRuns().length
    const result = await runCli(home, ["login", ...common, "--browser-command", userAgentBrowser, "--timeout", "30"])
    expect(result.stderr).toContain(`Logged in to ${sandbox.info.adminGrpc} as sandbox|demo`)
    expect(result.code).toBe(0)
    const note = result.stderr.split("\n").find((line) => line.startsWith("warning: ") && line.includes("instead"))
    expect(note).toContain(`port ${busyPort}`)
    expect(note).toContain("must allow any loopback port")
    const moved = /listening on (http:\/\/localhost:(\d+)\/callback) instead/.exec(note ?? "")
    expect(moved).not.toBeNull()
    expect(Number(moved![2])).not.toBe(busyPort)
    // The authorize URL carried the new redirect URI, and the browser was sent back to it.
    expect(result.stderr).toContain(`redirect_uri=${encodeURIComponent(moved![1])}`)
    const runs = await home.awaitBrowserRuns(runsBefore + 1)
    expect(runs.at(-1)).toMatchObject({ ok: true, status: 200, callbackUrl: moved![1] })
    expect(Fs.readdirSync(home.credentials).length).toBe(1)
  })

  it("a pinned busy port (--redirect-port) is the typed PortInUse error, and nothing is opened", async () => {
    const runsBefore = home.browserRuns().length
    const result = await runCli(home, [
      "login",
      ...admin,
      "--keyring",
      "memory",
      "--browser-command",
      userAgentBrowser,
      "--redirect-port",
      String(busyPort)
    ])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toMatch(
      new RegExp(`^flyte-auth login: Cannot listen for the login callback on localhost port ${busyPort} .*in use`)
    )
    expect(home.browserRuns().length).toBe(runsBefore)
  })

  it("logout revokes the refresh token at the IdP before deleting it: a copy of it no longer refreshes", async () => {
    const before = await stored(sandbox.info.adminGrpc)
    expect(before?.refreshToken).toBeDefined()
    const refreshToken = Redacted.value(before!.refreshToken!)
    const result = await runCli(home, ["logout", ...common])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("")
    expect(result.stderr).toBe(
      `Logged out of ${sandbox.info.adminGrpc}: the refresh token is revoked at the identity provider and the ` +
        `stored credentials are deleted\n`
    )
    expect(await stored(sandbox.info.adminGrpc)).toBeUndefined()
    const answer = await refreshAtIdp(refreshToken)
    expect(answer.status).toBe(400)
    expect(await answer.json()).toMatchObject({ error: "invalid_grant" })
  })

  it("a revocation that fails is a warning; the stored credentials are deleted all the same", async () => {
    // Nothing answers on port 1: neither the admin's metadata nor any revocation endpoint can be had.
    const endpoint = "127.0.0.1:1"
    const entry = new Credentials.Credentials({
      accessToken: Redacted.make("access-token-of-a-dead-admin"),
      refreshToken: Redacted.make("refresh-token-of-a-dead-admin"),
      expiresAt: DateTime.unsafeMake(Date.now() + 600_000),
      endpoint,
      authMode: "Pkce"
    })
    await fileKeyring((keyring) =>
      Effect.flatMap(
        Credentials.encodeKeyringEntry(entry),
        (json) => keyring.set(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined), json)
      )
    )
    const result = await runCli(home, ["logout", "--endpoint", endpoint, "--insecure", "--keyring", "file"], {
      timeoutMs: 60_000
    })
    expect(result.code).toBe(0)
    const lines = result.stderr.trim().split("\n")
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^warning: Could not revoke the refresh token of 127\.0\.0\.1:1 at the identity provider /)
    expect(lines[1]).toBe(
      `Logged out of ${endpoint}: its stored credentials are deleted (the refresh token could not be revoked, see ` +
        `the warning above)`
    )
    expect(result.stderr).not.toContain("refresh-token-of-a-dead-admin")
    expect(await stored(endpoint)).toBeUndefined()
  }, 90_000)
})
