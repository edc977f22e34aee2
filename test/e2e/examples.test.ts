/**
 * The newcomer path: each example runs against `flyte-auth sandbox --write-env-file` with the one command its header
 * documents (`node --env-file=sandbox.env examples/dist/<example>.js`), and a rejection is one line on stderr with
 * exit code 1, not an unhandled-rejection stack.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type Home,
  makeHome,
  requireBuild,
  root,
  runNode,
  type SandboxProcess,
  startSandboxProcess
} from "./helpers.js"

requireBuild()

const examples = ["plain-typescript", "http-fetch", "effect-app", "grpc-client"] as const

describe("the examples against `flyte-auth sandbox --write-env-file` (built)", () => {
  let home: Home
  let sandbox: SandboxProcess
  let envFile: string

  beforeAll(async () => {
    home = makeHome()
    envFile = Path.join(home.dir, "sandbox.env")
    sandbox = await startSandboxProcess(home, [
      "--admin-port",
      "0",
      "--admin-http-port",
      "0",
      "--idp-port",
      "0",
      "--write-env-file",
      envFile
    ])
  })
  afterAll(async () => {
    await sandbox?.stop()
    home?.cleanup()
  })

  /** `node --env-file=<envFile> examples/dist/<name>.js`, from the repository, as the header says. */
  const runExample = (name: string, env: Record<string, string> = {}) =>
    runNode([`--env-file=${envFile}`, Path.join("examples", "dist", `${name}.js`)], {
      cwd: root,
      env: { ...home.env, ...env }
    })

  it("the env file holds the service account's FLYTE_* variables, mode 0600", () => {
    expect(Fs.statSync(envFile).mode & 0o777).toBe(0o600)
    expect(Fs.readFileSync(envFile, "utf8")).toContain(`FLYTE_PLATFORM_URL=${sandbox.info.adminGrpc}\n`)
  })

  for (const name of examples) {
    it(`${name}: runs with the documented command`, async () => {
      const result = await runExample(name)
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout).toMatch(
        name === "plain-typescript"
          ? /^got a token of \d+ characters\n$/
          : new RegExp(sandbox.info.confidentialClientId)
      )
    })

    it(`${name}: a rejection is one line on stderr and exit code 1`, async () => {
      // The environment wins over the env file (node --env-file does not override it).
      const result = await runExample(name, { FLYTE_PLATFORM_URL: "127.0.0.1:1" })
      expect(result.code).toBe(1)
      const lines = result.stderr.trimEnd().split("\n").filter((line) => !line.startsWith("flyte-auth: warning:"))
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^${name}\\.js: \\S.*127\\.0\\.0\\.1:1`))])
      expect(result.stderr).not.toContain(sandbox.info.confidentialClientSecret)
    })
  }
})
