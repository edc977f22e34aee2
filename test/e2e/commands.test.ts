/**
 * The token command (`--command`, ExternalCommand mode) and the proxy command (`--proxy-command`) through the built
 * CLI, when they hang: `--timeout` bounds each run, the error names which command it was, and the command is
 * killed with everything it started, on timeout and when the CLI is interrupted (the fixture ignores SIGTERM and
 * has a child of its own).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fixtures, type Home, isRunning, makeHome, requireBuild, runCli, sleep, startCli } from "./helpers.js"

requireBuild()

describe("hanging token and proxy commands (built CLI)", () => {
  let home: Home
  let runs = 0
  beforeAll(() => {
    home = makeHome()
  })
  afterAll(() => home?.cleanup())

  /** The fixture as a command argument, and the pids it writes once it runs. */
  const hanging = () => {
    const pidFile = Path.join(home.dir, `pids-${++runs}.json`)
    return {
      argv: JSON.stringify([process.execPath, Path.join(fixtures, "hanging-command.mjs"), pidFile]),
      started: async (timeoutMs = 10_000): Promise<Array<number>> => {
        const deadline = Date.now() + timeoutMs
        while (!Fs.existsSync(pidFile) || Fs.readFileSync(pidFile, "utf8") === "") {
          if (Date.now() > deadline) throw new Error("the command fixture did not start")
          await sleep(50)
        }
        return JSON.parse(Fs.readFileSync(pidFile, "utf8")) as Array<number>
      }
    }
  }

  /** The processes still running after a moment for their parent (or init) to reap them. */
  const leftOver = async (pids: ReadonlyArray<number>): Promise<Array<number>> => {
    for (let i = 0; i < 40 && pids.some(isRunning); i++) await sleep(50)
    return pids.filter(isRunning)
  }

  const offline = ["--endpoint", "127.0.0.1:1", "--insecure", "--keyring", "memory"]

  it("--timeout bounds the token command, which is killed with its children", async () => {
    const command = hanging()
    const started = Date.now()
    const result = await runCli(home, [
      "token",
      ...offline,
      "--auth-mode",
      "ExternalCommand",
      "--command",
      command.argv,
      "--timeout",
      "2"
    ])
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(
        /^flyte-auth token: The token command \S*node\S* did not finish within 2s — check why it hangs, or allow it more time with --timeout SECONDS$/
      )
    ])
    expect(await leftOver(await command.started())).toEqual([])
  })

  it("--timeout bounds the proxy command; the error names the proxy command, not the metadata call", async () => {
    const command = hanging()
    const started = Date.now()
    const result = await runCli(home, [
      "token",
      ...offline,
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      "svc",
      "--client-secret-env-var",
      "SECRET",
      "--proxy-command",
      command.argv,
      "--timeout",
      "2"
    ], { env: { SECRET: "a-secret-that-must-not-leak" } })
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(result.code).toBe(1)
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(
        /^flyte-auth token: The proxy command \S*node\S* did not finish within 2s — check why it hangs, or allow it more time with --timeout SECONDS$/
      )
    ])
    expect(result.stderr).not.toContain("a-secret-that-must-not-leak")
    expect(await leftOver(await command.started())).toEqual([])
  })

  it("Ctrl-C while the token command runs: exit 130 at once, nothing left behind", async () => {
    const command = hanging()
    const cli = startCli(home, ["token", ...offline, "--auth-mode", "ExternalCommand", "--command", command.argv])
    const pids = await command.started()
    const interrupted = Date.now()
    cli.child.kill("SIGINT")
    const result = await cli.result
    // The command ignores SIGTERM: it gets SIGKILL after Policies.commandTerminateGrace (2 s).
    expect(Date.now() - interrupted).toBeLessThan(8_000)
    expect(result.code).toBe(130)
    expect(await leftOver(pids)).toEqual([])
  })

  it("a hanging proxy command during login is named in the progress lines, and killed on Ctrl-C", async () => {
    const command = hanging()
    let waiting: (line: string) => void
    const progress = new Promise<string>((resolve) => (waiting = resolve))
    const cli = startCli(home, ["login", ...offline, "--proxy-command", command.argv], {
      timeoutMs: 40_000,
      onStderrLine: (line) => {
        if (line.startsWith("…")) waiting(line)
      }
    })
    const pids = await command.started()
    // The first progress line comes after 15 s.
    expect(await progress).toMatch(/^… still waiting for the proxy command \S*node\S* \(1[56] s of at most 60 s\)$/)
    cli.child.kill("SIGINT")
    const result = await cli.result
    expect(result.code).toBe(130)
    expect(result.stderr).not.toMatch(/login to complete/)
    expect(await leftOver(pids)).toEqual([])
  }, 45_000)
})
