/**
 * The built `flyte-auth` binary against a sandbox run in this process, so that the test can count what the IdP
 * and the admin saw: `token` served from the file keyring without any request, the refresh once the token nears
 * its expiry, a transient IdP failure that leaves the keyring alone, and a dead refresh token in a
 * non-interactive run.
 */
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox } from "@flyte-auth/sandbox"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, jwtClaims, makeHome, requireBuild, runCli, sleep, userAgentBrowser } from "./helpers.js"

requireBuild()

const ttlSeconds = 8

describe("token cache and refresh (built CLI, in-process sandbox)", () => {
  let home: Home
  let sandbox: Sandbox.Service
  let common: Array<string>

  beforeAll(async () => {
    home = makeHome()
    sandbox = await startSandbox({ tokenTtlSeconds: ttlSeconds, redirectUri: "http://localhost:0/callback" })
    common = ["--endpoint", sandbox.adminGrpc, "--insecure", "--keyring", "file"]
  })
  afterAll(async () => {
    await sandbox?.close()
    home?.cleanup()
  })

  const token = () => runCli(home, ["token", ...common])
  const status = async () => JSON.parse((await runCli(home, ["status", "--json", ...common])).stdout)
  /** Sleeps until the stored token is inside its refresh window (half its lifetime before expiry, plus a margin). */
  const waitForRefreshWindow = async () => {
    const { expiresAt } = await status()
    const at = Date.parse(expiresAt) - (ttlSeconds * 1000) / 2 + 500
    await sleep(Math.max(0, at - Date.now()))
  }
  const requests = () => {
    const stats = sandbox.stats()
    return {
      ...stats.tokenRequests,
      authorize: stats.authorizationRequests,
      metadata: stats.admin.oauth2MetadataCalls + stats.admin.publicClientConfigCalls
    }
  }

  it("log in once; the next `token` calls are served from the keyring without any request", async () => {
    const login = await runCli(home, ["login", ...common, "--browser-command", userAgentBrowser])
    expect(login.code).toBe(0)
    expect(sandbox.stats().tokenRequests.authorization_code).toBe(1)

    sandbox.resetStats()
    const first = await token()
    const second = await token()
    expect(first.code).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(jwtClaims(first.stdout.trim()).sub).toBe(sandbox.user.subject)
    // Nothing reached the IdP or the admin: not even the client configuration was fetched.
    expect(requests()).toEqual({
      authorization_code: 0,
      refresh_token: 0,
      client_credentials: 0,
      device_code: 0,
      other: 0,
      authorize: 0,
      metadata: 0
    })
    // The fast path (no Effect, no warning of the file keyring on stderr) also when a config file names the
    // endpoint: it reads the YAML itself.
    const config = Path.join(home.dir, "fast-path.yaml")
    Fs.writeFileSync(config, `admin:\n  endpoint: dns:///${sandbox.adminGrpc}\n  insecure: true\n`)
    const fromConfig = await runCli(home, ["token", "--config", config, "--keyring", "file"])
    expect(fromConfig.stdout).toBe(first.stdout)
    expect(fromConfig.stderr).toBe("")
    expect(second.stderr).toBe("")
  })

  it("near expiry, `token` refreshes with the refresh token (one request) and stores the result", async () => {
    const before = (await token()).stdout
    await waitForRefreshWindow()
    sandbox.resetStats()
    const refreshed = await token()
    expect(refreshed.code).toBe(0)
    expect(refreshed.stdout).not.toBe(before)
    expect(sandbox.stats().tokenRequests).toMatchObject({ refresh_token: 1, authorization_code: 0 })
    // The refreshed token is the stored one now.
    const again = await token()
    expect(again.stdout).toBe(refreshed.stdout)
    expect(sandbox.stats().tokenRequests.refresh_token).toBe(1)
  })

  it("a transient IdP failure during the refresh is one clear error; the stored credentials survive", async () => {
    await waitForRefreshWindow()
    sandbox.failNextTokenRequests(1, { status: 503 })
    const failed = await token()
    expect(failed.code).toBe(1)
    expect(failed.stdout).toBe("")
    expect(failed.stderr.trim().split("\n")).toHaveLength(1)
    expect(failed.stderr).toMatch(/^flyte-auth token: .*temporarily_unavailable/)
    expect(sandbox.stats().injectedTokenFailures).toBe(1)
    expect(await status()).toMatchObject({ loggedIn: true, refreshToken: true })

    const verbose = await runCli(home, ["token", ...common, "--verbose"])
    // The next run refreshes normally (the failure was not sticky).
    expect(verbose.code).toBe(0)
    expect(jwtClaims(verbose.stdout.trim()).sub).toBe(sandbox.user.subject)
  })

  it("a dead refresh token in a non-interactive run: AccessTokenNotFound, nothing left behind", async () => {
    await waitForRefreshWindow()
    sandbox.revokeRefreshTokens()
    sandbox.resetStats()
    const failed = await token()
    expect(failed.code).toBe(3)
    expect(failed.stdout).toBe("")
    expect(failed.stderr).toMatch(/cannot be refreshed and an interactive login is not allowed here/)
    expect(sandbox.stats().tokenRequests).toMatchObject({ refresh_token: 1, authorization_code: 0 })
    expect(sandbox.stats().authorizationRequests).toBe(0)
    expect(await status()).toMatchObject({ loggedIn: false })
  })
})
