/**
 * The newcomer path: each example runs against `flyte-auth sandbox --write-env-file` with the one command its header
 * documents (`node --env-file=sandbox.env examples/dist/<example>.js`), and a rejection is one line on stderr with
 * exit code 1, not an unhandled-rejection stack.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  exampleOutput,
  examples,
  type ExamplesSandbox,
  requireBuild,
  root,
  runNode,
  startExamplesSandbox
} from "./helpers.js"

requireBuild()

describe("the examples against `flyte-auth sandbox --write-env-file` (built)", () => {
  let world: ExamplesSandbox

  beforeAll(async () => {
    world = await startExamplesSandbox()
  })
  afterAll(async () => {
    await world?.sandbox.stop()
    world?.home.cleanup()
  })

  /** `node --env-file=<envFile> examples/dist/<name>.js`, from the repository, as the header says. */
  const runExample = (name: string, env: Record<string, string> = {}) =>
    runNode([`--env-file=${world.envFile}`, Path.join("examples", "dist", `${name}.js`)], {
      cwd: root,
      env: { ...world.home.env, ...env }
    })

  it("the env file holds the service account's FLYTE_* variables, mode 0600", () => {
    expect(Fs.statSync(world.envFile).mode & 0o777).toBe(0o600)
    expect(Fs.readFileSync(world.envFile, "utf8")).toContain(`FLYTE_PLATFORM_URL=${world.sandbox.info.adminGrpc}\n`)
  })

  for (const name of examples) {
    it(`${name}: runs with the documented command`, async () => {
      const result = await runExample(name)
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout).toMatch(exampleOutput(name, world.sandbox))
    })

    it(`${name}: a rejection is one line on stderr and exit code 1`, async () => {
      // The environment wins over the env file (node --env-file does not override it).
      const result = await runExample(name, { FLYTE_PLATFORM_URL: "127.0.0.1:1" })
      expect(result.code).toBe(1)
      const lines = result.stderr.trimEnd().split("\n").filter((line) => !line.startsWith("flyte-auth: warning:"))
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^${name}\\.js: \\S.*127\\.0\\.0\\.1:1`))])
      expect(result.stderr).not.toContain(world.sandbox.info.confidentialClientSecret)
    })
  }
})
