/**
 * Every example runs against the sandbox, configured the way a user configures Flyte: a config file named by
 * FLYTECTL_CONFIG, with the client secret in an environment variable.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Sandbox, startSandbox } from "@flyte-auth/sandbox"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { main as effectApp } from "./effect-app.js"
import { main as grpcClient } from "./grpc-client.js"
import { main as httpFetch } from "./http-fetch.js"
import { main as plainTypeScript } from "./plain-typescript.js"

let sandbox: Sandbox.Service
let dir: string

const useConfig = (endpoint: string) => {
  const file = Path.join(dir, `config-${endpoint.replace(/\W/g, "_")}.yaml`)
  Fs.writeFileSync(
    file,
    [
      "admin:",
      `  endpoint: dns:///${endpoint}`,
      "  insecure: true",
      "  authType: ClientSecret",
      `  clientId: ${sandbox.clients.confidential.clientId}`,
      "  clientSecretEnvVar: EXAMPLE_CLIENT_SECRET",
      ""
    ].join("\n")
  )
  process.env.FLYTECTL_CONFIG = file
}

beforeAll(async () => {
  sandbox = await startSandbox()
  dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-examples-"))
  process.env.EXAMPLE_CLIENT_SECRET = sandbox.clients.confidential.clientSecret
  process.env.FLYTE_AUTH_CREDENTIALS_DIR = dir
})
afterAll(async () => {
  await sandbox?.close()
  Fs.rmSync(dir, { recursive: true, force: true })
})

describe("examples", () => {
  it("plain-typescript: a token from the Flyte config, over gRPC metadata", async () => {
    useConfig(sandbox.adminGrpc)
    const token = await plainTypeScript()
    expect(token.split(".")).toHaveLength(3)
  })

  it("effect-app: AuthLayer.fromFlyteConfig and the authenticated HttpClient", async () => {
    useConfig(sandbox.adminHttp)
    const result = await Effect.runPromise(effectApp(`${sandbox.adminHttp}/api/v1/whoami`))
    expect(result.status).toBe(200)
    expect(result.body).toMatchObject({ subject: sandbox.clients.confidential.clientId })
  })

  it("http-fetch: auth.fetch against the admin's REST API, configured by an http(s) endpoint", async () => {
    useConfig(sandbox.adminHttp)
    const result = await httpFetch(`${sandbox.adminHttp}/api/v1/whoami`)
    expect(result.status).toBe(200)
    expect(result.body).toMatchObject({ subject: sandbox.clients.confidential.clientId })
  })

  it("grpc-client: IdentityService/UserInfo with authInterceptor, knowing only the endpoint", async () => {
    useConfig(sandbox.adminGrpc)
    const info = await grpcClient({ endpoint: sandbox.adminGrpc, insecure: true })
    expect(info).toMatchObject({ subject: sandbox.clients.confidential.clientId })
  })
})
