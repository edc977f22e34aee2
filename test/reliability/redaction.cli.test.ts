/**
 * Redaction audit (the built CLI): every flow, and a failing variant of each, run by `flyte-auth ... --verbose`
 * against the in-process sandbox. All OAuth traffic goes through `--http-proxy-url`, a recording proxy whose tunnels
 * lead through the fault proxy to the IdP: the secrets of the run are read off the wire (form fields, Basic
 * credentials, the tokens and device codes of the answers), and the failing variants answer with an echo of the
 * whole request. No secret may appear on stderr, nor on stdout except the token that `token` was asked for.
 */
import { type Sandbox, startSandbox, UserAgent } from "@flyte-auth/sandbox"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, makeHome, requireBuild, type Result, runCli, userAgentBrowser } from "../e2e/helpers.js"
import { type FaultProxy, startFaultProxy } from "./helpers/faultProxy.js"
import { type RecordingProxy, secretsOnTheWire, startRecordingProxy } from "./helpers/recordingProxy.js"

requireBuild()

/** Access tokens live 3 s, so that a refresh is due after 1.5 s (the skew is half the lifetime). */
const tokenTtlSeconds = 3

let sandbox: Sandbox.Service
let faults: FaultProxy
let recorder: RecordingProxy
let home: Home
const runs: Array<{ readonly name: string; readonly args: ReadonlyArray<string>; readonly result: Result }> = []
/** The token `token` printed, per run: the only secret stdout may carry. */
const printedTokens = new Set<string>()

beforeAll(async () => {
  sandbox = await startSandbox({
    tokenTtlSeconds,
    devicePollIntervalSeconds: 1,
    redirectUri: "http://localhost:0/callback"
  })
  faults = await startFaultProxy(sandbox.issuer)
  const idpPort = Number(new URL(sandbox.issuer).port)
  const faultPort = Number(new URL(faults.origin).port)
  recorder = await startRecordingProxy((host, port) => port === idpPort ? { host, port: faultPort } : { host, port })
  home = makeHome()
})
afterAll(async () => {
  await recorder?.close()
  await faults?.close()
  await sandbox?.close()
  home?.cleanup()
})

const tokenPath = () => new URL(sandbox.endpoints.token).pathname

const cli = async (name: string, args: ReadonlyArray<string>, options: Parameters<typeof runCli>[2] = {}) => {
  const all = [
    ...args,
    "--endpoint",
    sandbox.adminGrpc,
    "--insecure",
    "--verbose",
    "--http-proxy-url",
    recorder.url,
    "--timeout",
    "30"
  ]
  const result = await runCli(home, all, {
    timeoutMs: 40_000,
    ...options,
    // every OAuth call must go through the recording proxy; nothing else may proxy
    env: {
      NO_PROXY: "",
      no_proxy: "",
      HTTP_PROXY: "",
      HTTPS_PROXY: "",
      http_proxy: "",
      https_proxy: "",
      ...options.env
    }
  })
  runs.push({ name, args: all, result })
  if (args[0] === "token" && result.code === 0) printedTokens.add(result.stdout.trim())
  return result
}

const expireTokens = () => new Promise((resolve) => setTimeout(resolve, tokenTtlSeconds * 500 + 200))

const approveFromStderr = () => {
  let approval: Promise<unknown> | undefined
  return {
    onStderrLine: (line: string) => {
      const url = /(https?:\/\/\S+\/device\S*)/.exec(line)?.[1]
      if (approval === undefined && url !== undefined) {
        approval = UserAgent.make().approveDevice({ verificationUriComplete: url }, sandbox.user).catch(() => undefined)
      }
    },
    approval: () => approval
  }
}

describe("redaction audit: the built CLI with --verbose", () => {
  it("runs every flow and a failing variant of each; no secret on stderr or (but the token) on stdout", async () => {
    const file = ["--keyring", "file"]
    const memory = ["--keyring", "memory"]
    const browser = ["--browser-command", userAgentBrowser]
    const secretEnv = { MY_SECRET: sandbox.clients.confidential.clientSecret }
    const clientSecret = [
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      "flytepropeller",
      "--client-secret-env-var",
      "MY_SECRET"
    ]
    // Three lanes run side by side; each fault only matches its own lane's grant type.
    const echo = (grantType: string, status: number, times = 1, error?: string) =>
      faults.inject({
        path: tokenPath(),
        grantType,
        times,
        fault: error === undefined ? { _tag: "Echo", status } : { _tag: "Echo", status, error }
      })
    let pkceLoggedIn!: () => void
    const afterPkceLogin = new Promise<void>((resolve) => pkceLoggedIn = resolve)

    const pkceLane = async () => {
      // PKCE login, status, a refresh after expiry, then a refresh refused (invalid_grant, quoting the request):
      // `token` may not log in again, so it fails with the refusal as the cause (printed by --verbose)
      expect((await cli("login (PKCE)", ["login", ...file, ...browser])).code).toBe(0)
      pkceLoggedIn()
      expect((await cli("status --json", ["status", "--json", ...file])).code).toBe(0)
      await expireTokens()
      expect((await cli("token (refresh)", ["token", ...file])).code).toBe(0)
      await expireTokens()
      echo("refresh_token", 400, 1, "invalid_grant")
      const refused = await cli("token (refresh refused)", ["token", ...file])
      expect(refused.code).not.toBe(0)
      expect(refused.stderr).toContain("caused by")
    }

    const deviceLane = async () => {
      // device flow, then a poll refused with an echo of the request (device code included); then the PKCE code
      // exchange refused with an echo (code and verifier included), once the PKCE lane's login is done
      const device = approveFromStderr()
      expect((await cli("login (device)", ["login", ...memory, "--auth-mode", "DeviceFlow"], device)).code).toBe(0)
      await expect(device.approval()).resolves.toMatchObject({ outcome: "approved" })
      echo("urn:ietf:params:oauth:grant-type:device_code", 400, 10)
      const failing = approveFromStderr()
      const deviceFails = await cli("login (device, poll refused)", [
        "login",
        ...memory,
        "--auth-mode",
        "DeviceFlow"
      ], failing)
      expect(deviceFails.code).not.toBe(0)
      await afterPkceLogin
      echo("authorization_code", 400)
      expect((await cli("login (PKCE, exchange refused)", ["login", ...memory, ...browser])).code).not.toBe(0)
    }

    const secretLane = async () => {
      // client credentials, refused with an echo (Basic credentials included); then an external command that
      // prints a token, and one that prints it and exits 7
      expect((await cli("token (client credentials)", ["token", ...memory, ...clientSecret], { env: secretEnv })).code)
        .toBe(0)
      echo("client_credentials", 401, 4)
      const refused = await cli("token (client credentials refused)", ["token", ...memory, ...clientSecret], {
        env: secretEnv
      })
      expect(refused.code).not.toBe(0)
      const token = [...printedTokens][0]
      const tokenFile = Path.join(home.dir, "token.txt")
      Fs.writeFileSync(tokenFile, token, { mode: 0o600 })
      const print = `process.stdout.write(require("fs").readFileSync(${JSON.stringify(tokenFile)}, "utf8"))`
      const command = (script: string) => [
        "--auth-mode",
        "ExternalCommand",
        "--command",
        JSON.stringify([process.execPath, "-e", script])
      ]
      expect((await cli("token (external command)", ["token", ...memory, ...command(print)])).code).toBe(0)
      const failing = `${print}; process.stderr.write("token helper: session expired"); process.exit(7)`
      const commandFails = await cli("token (external command fails)", ["token", ...memory, ...command(failing)])
      expect(commandFails.code).not.toBe(0)
      expect(commandFails.stderr).toContain("session expired")
    }

    await Promise.all([pkceLane(), deviceLane(), secretLane()])

    // --- the audit ----------------------------------------------------------------------------------------
    expect(recorder.connections()).toBeGreaterThan(0)
    const secrets = secretsOnTheWire(recorder.sent(), recorder.received())
    secrets.set(
      "client_secret",
      new Set([...(secrets.get("client_secret") ?? []), sandbox.clients.confidential.clientSecret])
    )
    // the wire gave up every kind of secret: the audit cannot pass for want of looking
    expect([...secrets.keys()].sort()).toEqual(
      [
        "access_token",
        "basic_credentials",
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "refresh_token"
      ]
    )
    expect(secrets.get("refresh_token")!.size).toBeGreaterThanOrEqual(2)

    const leaks: Array<string> = []
    for (const run of runs) {
      const outputs = [["stderr", run.result.stderr], ["stdout", run.result.stdout]] as const
      for (const [channel, text] of outputs) {
        for (const [kind, values] of secrets) {
          for (const value of values) {
            if (channel === "stdout" && run.args[0] === "token" && run.result.code === 0 && text.trim() === value) {
              continue
            }
            for (const form of new Set([value, encodeURIComponent(value)])) {
              if (text.includes(form)) leaks.push(`${run.name} ${channel}: ${kind}`)
            }
          }
        }
      }
    }
    expect(leaks).toEqual([])
    // `token` printed nothing but a token that came from the IdP
    for (const printed of printedTokens) expect(secrets.get("access_token")).toContain(printed)
  }, 120_000)
})
