/**
 * The Promise facade's failure paths against the real sandbox: each rejects with the documented reason and a
 * message that says what failed.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createAuthClient } from "@flyte-auth/node"
import { type Sandbox, startSandbox } from "@flyte-auth/sandbox"

let sandbox: Sandbox.Service

beforeAll(async () => {
  sandbox = await startSandbox({})
})
afterAll(async () => {
  await sandbox?.close()
})

/** No Flyte config file or FLYTE_* variable of the machine may leak into these tests. */
const env = {}

const clientSecretOptions = (endpoint: string) => ({
  endpoint,
  insecure: true,
  authMode: "ClientSecret",
  clientId: sandbox.clients.confidential.clientId,
  clientSecret: sandbox.clients.confidential.clientSecret,
  keyring: "memory" as const,
  logLevel: "None" as const,
  env
})

const rejection = (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e)

describe("createAuthClient failure paths", () => {
  for (const transport of ["gRPC", "HTTP"] as const) {
    it(`a failing proxy command rejects with reason CommandFailed, naming the proxy command (${transport})`, async () => {
      const endpoint = transport === "gRPC" ? sandbox.adminGrpc : sandbox.adminHttp
      await using auth = await createAuthClient({
        ...clientSecretOptions(endpoint),
        proxyCommand: [process.execPath, "-e", "process.stderr.write('no proxy session'); process.exit(3)"]
      })
      const error = await rejection(auth.accessToken())
      expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "CommandFailed" })
      expect((error as Error).message).toMatch(/^The proxy command \S*node\S* exited with code 3: no proxy session$/)
    })
  }
})
