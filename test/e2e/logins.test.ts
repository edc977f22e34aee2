/**
 * Logins where the user is (issue 15), through the built `flyte-auth` against `flyte-auth sandbox`, both as
 * subprocesses: a callback port that another program really holds.
 */
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
})
