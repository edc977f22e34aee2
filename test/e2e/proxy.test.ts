/**
 * `--proxy-command` against an admin behind an identity-aware proxy (`flyte-auth sandbox --require-proxy-token`):
 * every admin call, gRPC (AuthMetadataService included) and HTTP, is refused without exactly
 * `proxy-authorization: Bearer <token>`, as GCP IAP or Cloudflare Access refuse it. The CLI runs as a user runs it.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  fixtures,
  type Home,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  startSandboxProcess
} from "./helpers.js"

requireBuild()

const proxyToken = "proxy-token-for-e2e"

describe("flyte-auth behind an identity-aware proxy", () => {
  let home: Home
  let sandbox: SandboxProcess
  let runs = 0

  beforeAll(async () => {
    home = makeHome()
    sandbox = await startSandboxProcess(home, [
      "--admin-port",
      "0",
      "--admin-http-port",
      "0",
      "--idp-port",
      "0",
      "--require-proxy-token",
      proxyToken
    ])
  })
  afterAll(async () => {
    await sandbox?.stop()
    home?.cleanup()
  })

  /** `whoami` as the service account, with the proxy fixture as `--proxy-command`; how often the command ran. */
  const whoami = async (endpoint: string, mode?: "stale-first") => {
    const log = Path.join(home.dir, `proxy-${++runs}.log`)
    const proxy = [process.execPath, Path.join(fixtures, "proxy-token.mjs"), log, ...(mode ? [mode] : [])]
    const result = await runCli(home, [
      "whoami",
      "--endpoint",
      endpoint,
      "--insecure",
      "--keyring",
      "memory",
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      sandbox.info.confidentialClientId,
      "--client-secret-env-var",
      "MY_SECRET",
      "--proxy-command",
      JSON.stringify(proxy)
    ], { env: { MY_SECRET: sandbox.info.confidentialClientSecret } })
    const commandRuns = Fs.existsSync(log) ? Fs.readFileSync(log, "utf8").trim().split("\n").length : 0
    return { ...result, commandRuns }
  }

  for (const transport of ["gRPC", "HTTP"] as const) {
    const endpoint = () => transport === "gRPC" ? sandbox.info.adminGrpc : sandbox.info.adminHttp

    it(`${transport}: metadata and whoami pass the proxy; the command runs once per process`, async () => {
      const result = await whoami(endpoint())
      expect(result.stderr).toBe("")
      expect(result.code).toBe(0)
      expect(JSON.parse(result.stdout)).toMatchObject({ subject: sandbox.info.confidentialClientId })
      // One proxy token source for the metadata calls, the OAuth calls and the admin calls.
      expect(result.commandRuns).toBe(1)
    })

    it(`${transport}: a token the proxy refuses is dropped, the command run again and the call resent`, async () => {
      const result = await whoami(endpoint(), "stale-first")
      expect(result.stderr).toBe("")
      expect(result.code).toBe(0)
      expect(JSON.parse(result.stdout)).toMatchObject({ subject: sandbox.info.confidentialClientId })
      expect(result.commandRuns).toBe(2)
    })
  }

  it("without --proxy-command the proxy's refusal is reported as such", async () => {
    const result = await runCli(home, [
      "whoami",
      "--endpoint",
      sandbox.info.adminGrpc,
      "--insecure",
      "--keyring",
      "memory",
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      sandbox.info.confidentialClientId,
      "--client-secret-env-var",
      "MY_SECRET"
    ], { env: { MY_SECRET: sandbox.info.confidentialClientSecret } })
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toMatch(/proxy/i)
    expect(result.stderr).not.toContain(sandbox.info.confidentialClientSecret)
  })
})
