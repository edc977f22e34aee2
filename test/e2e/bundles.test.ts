/**
 * The published bundles as a program loads them: `@flyte-auth/node/client` (the facade) and the `flyte-auth` binary,
 * each in a fresh process, with a Flyte config file to parse (the YAML parser is a lazy chunk of both).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, makeHome, moduleLoadLog, requireBuild, root, runCli, runNode } from "./helpers.js"

requireBuild()

const bundleDir = Path.join(root, "packages", "node", "dist", "bundle")
const endpoint = "flyte.bundle.invalid:443"
const token = `bundle.${"y".repeat(40)}.token`

/** Runs an ES module given as text in a fresh `node` from test/ (which depends on the packages); answers stdout. */
const runModule = async (home: Home, code: string, args: ReadonlyArray<string> = []): Promise<string> => {
  const { code: exitCode, stderr, stdout } = await runNode([...args, "--input-type=module", "-e", code], {
    cwd: Path.join(root, "test"),
    env: home.env
  })
  if (exitCode !== 0) throw new Error(`node exited ${exitCode}: ${stderr}`)
  return stdout
}

describe("the published bundles (built)", () => {
  let home: Home
  let configFile: string
  let loads: ReturnType<typeof moduleLoadLog>

  beforeAll(async () => {
    home = makeHome()
    // The login is an external command printing the token, once: a later run fails, so what is answered after the
    // first login is the stored token (credentials are kept per auth mode and client).
    const once = Path.join(home.dir, "logged-in-once")
    const command = [
      process.execPath,
      "-e",
      `const fs = require("node:fs"); if (fs.existsSync(${JSON.stringify(once)})) process.exit(3); ` +
      `fs.writeFileSync(${JSON.stringify(once)}, ""); ` +
      `process.stdout.write(${JSON.stringify(JSON.stringify({ access_token: token, expires_in: 86400 }))})`
    ]
    configFile = Path.join(home.dir, "config.yaml")
    Fs.writeFileSync(
      configFile,
      `admin:\n  endpoint: dns:///${endpoint}\n  insecure: true\n  authType: ExternalCommand\n` +
        `  command: ${JSON.stringify(command)}\n`
    )
    loads = moduleLoadLog(home)
    // One valid token in the file keyring, written by the facade (with a fixed client configuration: no admin).
    await runModule(
      home,
      `const { createAuthClient } = await import("@flyte-auth/node/client")
      const auth = await createAuthClient({
        configFile: ${JSON.stringify(configFile)}, keyring: "file", logLevel: "None",
        clientConfig: { tokenEndpoint: "https://idp.bundle.invalid/token", clientId: "bundle", scopes: [] }
      })
      process.stdout.write(await auth.accessToken())
      await auth.close()`
    )
  })
  afterAll(() => home?.cleanup())

  it("@flyte-auth/node/client answers a stored token from its own files: no undici, grpc-js, yaml or effect package", async () => {
    loads.reset()
    const printed = await runModule(
      home,
      `const { createAuthClient } = await import("@flyte-auth/node/client")
      const auth = await createAuthClient({ configFile: ${
        JSON.stringify(configFile)
      }, keyring: "file", logLevel: "None" })
      process.stdout.write(auth.endpoint + " " + await auth.accessToken())
      await auth.close()`,
      ["--import", loads.register]
    )
    expect(printed).toBe(`${endpoint} ${token}`)
    const files = loads.loaded().filter((url) => url.startsWith("file:"))
    // The config file was parsed (its endpoint is the client's) by the YAML chunk of the bundle.
    expect(files.length).toBeGreaterThan(1)
    expect(files.filter((url) => !url.startsWith(`file://${bundleDir}/`))).toEqual([])
  })

  it("@flyte-auth/node/client rejects with tagged errors that its isAuthError recognises", async () => {
    const printed = await runModule(
      home,
      `const { createAuthClient, isAuthError } = await import("@flyte-auth/node/client")
      const error = await createAuthClient({ configFile: ${
        JSON.stringify(configFile)
      }, authMode: "NoSuchMode", keyring: "memory", logLevel: "None" }).then(() => undefined, (e) => e)
      process.stdout.write(JSON.stringify([isAuthError(error), error._tag, error.reason, error instanceof Error]))`
    )
    expect(JSON.parse(printed)).toEqual([true, "AuthenticationError", "Config", true])
  })

  it("flyte-auth reads a Flyte config file (status, and token on its fast path)", async () => {
    const status = await runCli(home, ["status", "--config", configFile, "--keyring", "file"])
    expect(status.stderr).toBe("")
    expect(status.stdout).toMatch(new RegExp(`^endpoint +${endpoint.replaceAll(".", "\\.")} \\(insecure\\)$`, "m"))
    expect(status.stdout).toMatch(/^logged in +yes$/m)
    expect(status.code).toBe(0)
    const printed = await runCli(home, ["token", "--config", configFile, "--keyring", "file"])
    expect({ code: printed.code, stdout: printed.stdout.trim() }).toEqual({ code: 0, stdout: token })
  })
})
