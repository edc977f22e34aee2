/**
 * The Promise facade's failure paths against the real sandbox: each rejects with the documented reason and a
 * message that says what failed.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
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
  it("an unreachable admin: the message ends with what failed, not grpc-js's empty resolution note", async () => {
    await using auth = await createAuthClient(clientSecretOptions("127.0.0.1:1"))
    const error = await rejection(auth.accessToken())
    expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "Transport" })
    expect((error as Error).message).toMatch(/^Cannot reach .* at 127\.0\.0\.1:1: /)
    expect((error as Error).message).not.toMatch(/Resolution note/)
  })

  it("warnings are plain `flyte-auth: warning: …` lines on stderr, as the CLI writes them", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined)
    try {
      await using auth = await createAuthClient({
        ...clientSecretOptions(sandbox.adminGrpc),
        insecureSkipVerify: true,
        logLevel: "Warning"
      })
      await auth.accessToken()
      const lines = error.mock.calls.map((args) => args.join(" "))
      expect(lines).toContainEqual(expect.stringMatching(/^flyte-auth: warning: .*TLS CERTIFICATE VERIFICATION/))
      expect(lines.filter((line) => /timestamp=|fiber=#|level=/.test(line))).toEqual([])
    } finally {
      error.mockRestore()
    }
  })

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
