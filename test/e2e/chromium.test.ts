/**
 * `flyte-auth login` with a real browser: headless Chromium (playwright-core, `--browser-command`) signs the demo
 * user in on the sandbox IdP's login and consent pages and lands on the CLI's loopback callback.
 * Runs when FLYTE_AUTH_TEST_CHROMIUM names a Chromium binary (`npm test` sets it when /usr/bin/chromium exists).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  chromiumBrowser,
  type Home,
  jwtClaims,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  startSandboxProcess
} from "./helpers.js"

requireBuild()

describe.skipIf(!process.env.FLYTE_AUTH_TEST_CHROMIUM)("flyte-auth login with headless Chromium", () => {
  let home: Home
  let sandbox: SandboxProcess

  beforeAll(async () => {
    home = makeHome()
    sandbox = await startSandboxProcess(home, [
      "--admin-port",
      "0",
      "--admin-http-port",
      "0",
      "--idp-port",
      "0",
      "--redirect-uri",
      "http://localhost:0/callback"
    ])
  })
  afterAll(async () => {
    await sandbox?.stop()
    home?.cleanup()
  })

  it("logs in through the IdP's pages in Chromium; token and whoami then work without a browser", async () => {
    const common = ["--endpoint", sandbox.info.adminGrpc, "--insecure", "--keyring", "file"]
    const login = await runCli(home, ["login", ...common, "--browser-command", chromiumBrowser, "--timeout", "60"], {
      timeoutMs: 90_000
    })
    const runs = await home.awaitBrowserRuns(1)
    expect(runs, login.stderr).toHaveLength(1)
    expect(runs[0]).toMatchObject({ browser: "chromium", ok: true })
    // What Chromium showed at the end: the CLI's success page on the loopback redirect URI.
    expect(String(runs[0].finalUrl)).toMatch(/^http:\/\/localhost:\d+\/callback$/)
    expect(login.code).toBe(0)
    expect(login.stderr).toContain(`Logged in to ${sandbox.info.adminGrpc} as sandbox|demo`)

    const token = await runCli(home, ["token", ...common])
    expect(token.code).toBe(0)
    expect(jwtClaims(token.stdout.trim()).sub).toBe("sandbox|demo")
    const whoami = await runCli(home, ["whoami", ...common])
    expect(JSON.parse(whoami.stdout)).toMatchObject({ subject: "sandbox|demo", email: "demo@flyte-sandbox.local" })
  }, 120_000)
})
