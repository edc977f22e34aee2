/**
 * `flyte-auth sandbox --flyte 2` (built CLI, subprocesses): the Flyte 2 admin's address in the first stdout line
 * and in `--write-env-file`, its flyteidl2 services answering Connect unary calls (JSON over
 * plain HTTP/1.1, as the Connect protocol allows) with a token of the sandbox IdP, and the proxy
 * (`--require-proxy-token`) in front of both admins. The connect-node clients are in packages/sandbox/test and
 * packages/connect/test.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  bin,
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

/**
 * A Connect unary call with a JSON body over HTTP/1.1: status and parsed answer (with node:http, as `fetch` turns
 * a proxy's 407 into a network error).
 */
const connectCall = (baseUrl: string, method: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; json: Record<string, any> }>((resolve, reject) => {
    const request = Http.request(`${baseUrl}/${method}`, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers }
    }, (response) => {
      let body = ""
      response.setEncoding("utf8").on("data", (chunk: string) => body += chunk)
      response.on("end", () => {
        try {
          resolve({ status: response.statusCode!, json: JSON.parse(body) })
        } catch (error) {
          reject(error)
        }
      })
    })
    request.on("error", reject)
    request.end("{}")
  })

const envFile = (path: string): Record<string, string> =>
  Object.fromEntries(
    Fs.readFileSync(path, "utf8").split("\n").filter((line) => /^[A-Z_]+=/.test(line)).map((line) => {
      const at = line.indexOf("=")
      return [line.slice(0, at), line.slice(at + 1)]
    })
  )

describe("flyte-auth sandbox --flyte 2 (built CLI)", () => {
  let home: Home
  let flyte2: SandboxProcess
  let proxied: SandboxProcess
  const ports = ["--admin-port", "0", "--admin-http-port", "0", "--idp-port", "0", "--admin-connect-port", "0"]
  beforeAll(async () => {
    home = makeHome()
    ;[flyte2, proxied] = await Promise.all([
      startSandboxProcess(home, [
        ...ports,
        "--flyte",
        "2",
        "--write-env-file",
        Path.join(home.dir, "flyte2.env"),
        "--redirect-uri",
        "http://localhost:0/callback",
        "--approve-device-codes"
      ]),
      // `--flyte` is a global option: before the command name too.
      startSandboxProcess(home, [...ports, "--require-proxy-token", "proxy-e2e"], ["--flyte", "2"])
    ])
  })
  afterAll(async () => {
    expect(await flyte2?.stop()).toBe(0)
    expect(await proxied?.stop()).toBe(0)
    home?.cleanup()
  })

  it("--flyte 2: the Flyte 2 admin is in the first line and the env file, and serves flyteidl2 with the IdP's tokens", async () => {
    const { info } = flyte2
    expect(info.adminConnect).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const baseUrl = info.adminConnect!
    const env = envFile(Path.join(home.dir, "flyte2.env"))
    expect(env).toMatchObject({
      FLYTE_PLATFORM_URL: baseUrl,
      FLYTE_PLATFORM_INSECURE: "true",
      FLYTE_CREDENTIALS_CLIENT_ID: info.confidentialClientId,
      FLYTE_SANDBOX_ADMIN_CONNECT: baseUrl
    })

    const metadata = await connectCall(baseUrl, "flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata")
    const published = await connectCall(baseUrl, "flyteidl2.auth.AuthMetadataService/GetPublicClientConfig")
    expect(metadata).toMatchObject({ status: 200, json: { issuer: info.issuer } })
    expect(published).toMatchObject({
      status: 200,
      json: { clientId: "flytectl", authorizationMetadataKey: "flyte-authorization", serviceHttpEndpoint: baseUrl }
    })

    const response = await fetch(metadata.json.tokenEndpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${
          Buffer.from(`${env.FLYTE_CREDENTIALS_CLIENT_ID}:${env.FLYTE_CREDENTIALS_CLIENT_SECRET}`).toString("base64")
        }`
      },
      body: new URLSearchParams({ grant_type: "client_credentials", scope: published.json.scopes.join(" ") })
    })
    expect(response.status).toBe(200)
    const { access_token } = await response.json() as { access_token: string }
    const userInfo = "flyteidl2.auth.IdentityService/UserInfo"
    expect(await connectCall(baseUrl, userInfo, { "flyte-authorization": `Bearer ${access_token}` })).toMatchObject({
      status: 200,
      json: { subject: info.confidentialClientId }
    })
    expect(await connectCall(baseUrl, userInfo)).toMatchObject({ status: 401, json: { code: "unauthenticated" } })
  })

  it("the four flows of the CLI against the Flyte 2 admin at the printed endpoint; whoami is its UserInfo", async () => {
    const { info } = flyte2
    const endpoint = ["--endpoint", info.adminConnect!, "--insecure"]
    const secret = { MY_SECRET: info.confidentialClientSecret }
    const service = ["--auth-mode", "ClientSecret", "--client-id", info.confidentialClientId]
    const flows: ReadonlyArray<readonly [string, ReadonlyArray<string>, string]> = [
      ["Pkce", ["--browser-command", userAgentBrowser], "sandbox|demo"],
      ["DeviceFlow", ["--auth-mode", "DeviceFlow"], "sandbox|demo"],
      ["ClientSecret", [...service, "--client-secret-env-var", "MY_SECRET"], info.confidentialClientId],
      ["ExternalCommand", [
        "--auth-mode",
        "ExternalCommand",
        "--command",
        JSON.stringify([
          process.execPath,
          bin,
          "token",
          ...endpoint,
          ...service,
          "--client-secret-env-var",
          "MY_SECRET",
          "--keyring",
          "memory"
        ])
      ], info.confidentialClientId]
    ]
    for (const [flow, args, subject] of flows) {
      const options = { env: secret, timeoutMs: 40_000 }
      const common = [...endpoint, "--keyring", "file", ...args]
      const login = await runCli(home, ["login", ...common, "--timeout", "30"], options)
      expect(login.stderr, flow).toContain(`Logged in to ${info.adminConnect} as ${subject}`)
      expect(login.code, flow).toBe(0)
      const token = await runCli(home, ["token", ...common], options)
      expect(jwtClaims(token.stdout.trim()).sub, flow).toBe(subject)
      const whoami = await runCli(home, ["whoami", ...common], options)
      expect(whoami.code, flow).toBe(0)
      // flyteidl2's UserInfoResponse: the sandbox's Flyte 2 admin puts the token's client in additional_claims.
      expect(JSON.parse(whoami.stdout), flow).toMatchObject({ subject, additional_claims: { scope: "all" } })
      expect((await runCli(home, ["logout", ...common], options)).code, flow).toBe(0)
    }
  })

  it("a Flyte 2 API key (FLYTE_API_KEY, --api-key): a client-credentials login against the key's endpoint", async () => {
    const { info } = flyte2
    const key = Buffer.from(
      `${info.adminConnect}:${info.confidentialClientId}:${info.confidentialClientSecret}:None`
    ).toString("base64")
    const options = { env: { FLYTE_API_KEY: key }, timeoutMs: 40_000 }
    // No endpoint, client or mode on the command line: all of it comes from the key.
    const token = await runCli(home, ["token", "--insecure", "--keyring", "memory"], options)
    expect(token.code, token.stderr).toBe(0)
    expect(jwtClaims(token.stdout.trim()).sub).toBe(info.confidentialClientId)
    const whoami = await runCli(home, ["whoami", "--insecure", "--keyring", "memory"], options)
    expect(JSON.parse(whoami.stdout)).toMatchObject({ subject: info.confidentialClientId })
    const flag = await runCli(home, ["token", "--api-key", key, "--insecure", "--keyring", "memory"], {
      timeoutMs: 40_000
    })
    expect(jwtClaims(flag.stdout.trim()).sub).toBe(info.confidentialClientId)

    // A malformed key: a usage-like failure naming where it came from, never the key itself.
    const bad = Buffer.from("no-colons-here").toString("base64")
    const failed = await runCli(home, ["token", "--keyring", "memory"], { env: { FLYTE_API_KEY: bad } })
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/FLYTE_API_KEY is not a valid Flyte API key/)
    expect(failed.stderr).not.toContain(bad)
  })

  it("--flyte 2 --require-proxy-token: the proxy is in front of both admins", async () => {
    const { info } = proxied
    expect(info.adminConnect).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const method = "flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata"
    expect(await connectCall(info.adminConnect!, method)).toEqual({
      status: 407,
      json: { code: "unauthenticated", message: "proxy authentication required (407): no proxy-authorization" }
    })
    expect(await connectCall(info.adminConnect!, method, { "proxy-authorization": "Bearer proxy-e2e" }))
      .toMatchObject({ status: 200, json: { issuer: info.issuer } })
    const flyte1 = await connectCall(info.adminHttp, "config/v1/flyte_client")
    expect(flyte1.status).toBe(407)
  })
})
