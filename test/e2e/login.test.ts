/**
 * `login` stores credentials, or says plainly that it did not: through the built CLI against `flyte-auth
 * sandbox`, with keyrings that cannot write (a credentials directory that cannot be created, keytar without a
 * D-Bus session) and with a final write that fails after the browser login.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type Home,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  sleep,
  startSandboxProcess,
  userAgentBrowser
} from "./helpers.js"

requireBuild()

describe("login and the store it writes to (built CLI)", () => {
  let home: Home
  let sandbox: SandboxProcess
  let endpoint: Array<string>
  /** A path below a regular file: no directory can be created there, not even by root. */
  let unwritable: string

  beforeAll(async () => {
    home = makeHome()
    sandbox = await startSandboxProcess(home, ["--admin-port", "0", "--admin-http-port", "0", "--idp-port", "0"])
    endpoint = ["--endpoint", sandbox.info.adminGrpc, "--insecure"]
    Fs.writeFileSync(Path.join(home.dir, "a-file"), "")
    unwritable = Path.join(home.dir, "a-file", "credentials")
  })
  afterAll(async () => {
    await sandbox?.stop()
    home?.cleanup()
  })

  /** No D-Bus session: neither keytar nor @napi-rs/keyring can reach a Secret Service. */
  const noDbus = { DBUS_SESSION_BUS_ADDRESS: undefined, DISPLAY: undefined }

  for (
    const [name, keyring, env, line] of [
      [
        "a credentials directory that cannot be created",
        "file",
        () => ({ FLYTE_AUTH_CREDENTIALS_DIR: unwritable }),
        /^flyte-auth login: cannot store credentials in the file keyring \(.+\) — set FLYTE_AUTH_CREDENTIALS_DIR to a writable directory, or choose --keyring keytar or napi$/
      ],
      [
        "keytar without a D-Bus session",
        "keytar",
        () => noDbus,
        /^flyte-auth login: cannot store credentials in the keytar keyring \(.+\) — choose --keyring file \(plain files, 0600\) or make the OS keyring \(Secret Service\) available$/
      ]
    ] as const
  ) {
    it(`${name}: login fails at once, before a browser opens`, async () => {
      const before = home.browserRuns().length
      const result = await runCli(home, [
        "login",
        ...endpoint,
        "--keyring",
        keyring,
        "--browser-command",
        userAgentBrowser,
        "--timeout",
        "20"
      ], { env: env() })
      expect(result.code).toBe(1)
      expect(result.stdout).toBe("")
      expect(result.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(line)])
      // The browser would have logged a line within this time had it been started.
      await sleep(500)
      expect(home.browserRuns().length).toBe(before)
    })
  }

  it("the final write fails after the browser login: exit 1 with one line, and `token` agrees nothing is stored", async () => {
    const dir = Path.join(home.dir, "vanishing")
    // A browser that, before signing in, replaces the credentials directory with a file (a disk gone read-only,
    // a directory removed by a cleanup job): the store worked when login checked it, and fails when it writes.
    const browser = JSON.stringify([
      "sh",
      "-c",
      `rm -rf "$0" && : > "$0" && exec "$@"`,
      dir,
      ...JSON.parse(userAgentBrowser) as Array<string>
    ])
    const env = { FLYTE_AUTH_CREDENTIALS_DIR: dir }
    const before = home.browserRuns().length
    const result = await runCli(home, [
      "login",
      ...endpoint,
      "--keyring",
      "file",
      "--browser-command",
      browser,
      "--timeout",
      "20"
    ], { env })
    expect((await home.awaitBrowserRuns(before + 1)).at(-1)).toMatchObject({ ok: true })
    expect(result.code).toBe(1)
    expect(result.stderr).not.toMatch(/Logged in/)
    expect(result.stderr).not.toMatch(/unencrypted/)
    // Above it: the login URL, and the warnings of a credential lock whose directory went away with the store.
    const lines = result.stderr.trimEnd().split("\n")
    expect(lines.filter((line) => line.startsWith("flyte-auth login:"))).toEqual([lines.at(-1)])
    expect(lines.at(-1)).toMatch(
      /^flyte-auth login: logged in, but the credentials could not be stored in the file keyring, so the next command will not find them — set FLYTE_AUTH_CREDENTIALS_DIR to a writable directory/
    )
    const token = await runCli(home, ["token", ...endpoint, "--keyring", "file", "--no-interactive"], { env })
    expect(token.code).not.toBe(0)
  })

  it("auto without an OS keyring: login succeeds and says plainly that nothing outlives it", async () => {
    const result = await runCli(home, [
      "login",
      ...endpoint,
      "--keyring",
      "auto",
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      sandbox.info.confidentialClientId,
      "--client-secret-env-var",
      "SECRET"
    ], { env: { ...noDbus, SECRET: sandbox.info.confidentialClientSecret } })
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(
      /^Logged in to .*\(NOT stored: no OS keyring is usable, so nothing outlives this command; use --keyring file to keep it\)$/m
    )
    expect(result.stderr).not.toContain(sandbox.info.confidentialClientSecret)
  })

  it("a store that works: the unencrypted-files reminder comes with the successful login", async () => {
    const result = await runCli(home, [
      "login",
      ...endpoint,
      "--keyring",
      "file",
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      sandbox.info.confidentialClientId,
      "--client-secret-env-var",
      "SECRET"
    ], { env: { SECRET: sandbox.info.confidentialClientSecret } })
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/^Logged in to /m)
    expect(result.stderr).toMatch(/stored unencrypted in plain files/)
  })
})
