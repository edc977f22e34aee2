/**
 * The README's headless path: `flyte-auth sandbox --approve-device-codes` approves each device code as the demo
 * user when it is issued, so a `--auth-mode DeviceFlow` login completes on a machine without any browser and with
 * nobody at a second device. Without the option the same login waits (nobody approves it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type Home,
  jwtClaims,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  startSandboxProcess
} from "./helpers.js"

requireBuild()

describe("flyte-auth sandbox --approve-device-codes (built CLI)", () => {
  let home: Home
  let approving: SandboxProcess
  let plain: SandboxProcess
  const ports = ["--admin-port", "0", "--admin-http-port", "0", "--idp-port", "0"]
  beforeAll(async () => {
    home = makeHome()
    ;[approving, plain] = await Promise.all([
      startSandboxProcess(home, [...ports, "--approve-device-codes"]),
      startSandboxProcess(home, ports)
    ])
  })
  afterAll(async () => {
    await approving?.stop()
    await plain?.stop()
    home?.cleanup()
  })

  it("a device login completes with no browser and no second device; token then works offline", async () => {
    const common = ["--endpoint", approving.info.adminGrpc, "--insecure", "--keyring", "file"]
    const env = { BROWSER: "none", DISPLAY: "" }
    const login = await runCli(home, ["login", ...common, "--auth-mode", "DeviceFlow"], { env, timeoutMs: 40_000 })
    expect(login.stderr).toMatch(/To log in, open http:\/\/127\.0\.0\.1:\d+\/device\S* \(code [A-Z-]+\)/)
    expect(login.stderr).toContain(`Logged in to ${approving.info.adminGrpc} as sandbox|demo`)
    expect(login.code).toBe(0)
    const token = await runCli(home, ["token", ...common], { env })
    expect(token.code).toBe(0)
    expect(jwtClaims(token.stdout.trim()).sub).toBe("sandbox|demo")
  })

  it("without it nobody approves: the login waits until its timeout", async () => {
    const common = ["--endpoint", plain.info.adminGrpc, "--insecure", "--keyring", "memory"]
    const login = await runCli(home, ["login", ...common, "--auth-mode", "DeviceFlow", "--timeout", "7"], {
      timeoutMs: 40_000
    })
    expect(login.code).not.toBe(0)
    expect(login.stderr).toMatch(/The device login for \S+ was not approved in time/)
    expect(login.stderr).not.toContain("Logged in")
  })
})
