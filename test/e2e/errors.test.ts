/**
 * Bad options and bad configuration, through the built `flyte-auth` binary: each gives one line on stderr that
 * says what failed and what to do, nothing on stdout, and a non-zero exit code (2 for usage errors). Also: the
 * Flyte config file and FLYTE_* variables are really read, and `--verbose` adds the cause chain.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, makeHome, requireBuild, type Result, runCli } from "./helpers.js"

requireBuild()

interface Case {
  readonly name: string
  readonly args: ReadonlyArray<string>
  readonly env?: Record<string, string>
  readonly code: number
  readonly line: RegExp
  /** What the line must not say (e.g. a hint that does not apply). */
  readonly not?: RegExp
}

/** Runs the cases a few at a time (each is a Node process). */
const runAll = async (home: Home, cases: ReadonlyArray<Case>): Promise<Array<Result>> => {
  const results: Array<Result> = new Array(cases.length)
  let next = 0
  const worker = async () => {
    while (next < cases.length) {
      const i = next++
      results[i] = await runCli(home, cases[i].args, { env: cases[i].env ?? {}, timeoutMs: 45_000 })
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])
  return results
}

describe("bad options and bad config give the documented errors (built CLI)", () => {
  let home: Home
  let busy: Net.Server
  let busyPort: number
  /** A web server (HTTP/1, HTML), as the admin's HTTP port or a proxy's login page. */
  let web: Http.Server
  let webPort: number
  const file = (name: string, text: string) => {
    const path = Path.join(home.dir, name)
    Fs.writeFileSync(path, text)
    return path
  }

  beforeAll(async () => {
    home = makeHome()
    busy = Net.createServer()
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve))
    busyPort = (busy.address() as Net.AddressInfo).port
    web = Http.createServer((_, response) => {
      response.writeHead(200, { "content-type": "text/html" }).end("<html><body>Welcome</body></html>")
    })
    await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve))
    webPort = (web.address() as Net.AddressInfo).port
  })
  afterAll(async () => {
    web?.closeAllConnections()
    await new Promise((resolve) => web?.close(resolve))
    await new Promise((resolve) => busy?.close(resolve))
    home?.cleanup()
  })

  it("each failure is one line on stderr, nothing on stdout, with the documented exit code", async () => {
    const endpoint = ["--endpoint", "127.0.0.1:1", "--insecure", "--keyring", "memory"]
    const cases: Array<Case> = [
      {
        name: "unknown option",
        args: ["token", "--bogus"],
        code: 2,
        line: /^flyte-auth: unknown option --bogus \(see flyte-auth token --help\)$/
      },
      {
        name: "mistyped option before the command",
        args: ["--auth-mod", "DeviceFlow", "login"],
        code: 2,
        line: /^flyte-auth: unknown option --auth-mod \(see flyte-auth --help\)$/
      },
      {
        name: "unknown short option",
        args: ["-v", "status"],
        code: 2,
        line: /^flyte-auth: unknown option -v \(see flyte-auth --help\)$/
      },
      {
        name: "another command's option",
        args: ["token", "--json"],
        code: 2,
        line: /^flyte-auth: unknown option --json \(see flyte-auth token --help\)$/
      },
      {
        name: "option without its value",
        args: ["--endpoint"],
        code: 2,
        line: /^flyte-auth: --endpoint needs a value$/
      },
      {
        name: "option without its value after the command",
        args: ["status", "--endpoint"],
        code: 2,
        line: /^flyte-auth: --endpoint needs a value$/
      },
      {
        name: "option followed by another option instead of its value",
        args: ["status", "--endpoint", "--json"],
        code: 2,
        line: /^flyte-auth: --endpoint needs a value$/
      },
      {
        name: "a command's own option without its value",
        args: ["sandbox", "--header-key"],
        code: 2,
        line: /^flyte-auth: --header-key needs a value$/
      },
      {
        name: "unknown command",
        args: ["tokn"],
        code: 2,
        line: /^flyte-auth: Invalid subcommand .*'login', 'token'.* — run `flyte-auth --help`/
      },
      { name: "no command", args: [], code: 2, line: /^flyte-auth: no command given; run `flyte-auth --help`/ },
      {
        name: "bad keyring",
        args: ["token", "--keyring", "vault"],
        code: 2,
        line: /^flyte-auth: --keyring must be one of auto, keytar, napi, file, memory, none \(got "vault"\)$/
      },
      {
        name: "timeout not a number",
        args: ["--timeout", "soon", "login"],
        code: 2,
        line: /^flyte-auth: --timeout must be a whole number \(got "soon"\)$/
      },
      {
        name: "timeout zero",
        args: ["login", "--timeout", "0", ...endpoint],
        code: 2,
        line: /^flyte-auth login: --timeout must be a positive number of seconds$/
      },
      {
        name: "option twice",
        args: ["token", "--keyring", "file", "--keyring", "memory"],
        code: 2,
        line: /^flyte-auth: --keyring given more than once/
      },
      {
        name: "interactive and not",
        args: ["token", "--interactive", "--no-interactive", ...endpoint],
        code: 2,
        line: /^flyte-auth token: --interactive and --no-interactive cannot be used together$/
      },
      {
        name: "unknown auth mode",
        args: ["token", ...endpoint, "--auth-mode", "kerberos"],
        code: 2,
        line: /^flyte-auth token: Unknown auth mode "kerberos"; valid modes are Pkce \(or standard\), ClientSecret/,
        not: /--command/
      },
      {
        name: "unknown auth mode before the command",
        args: [...endpoint, "--auth-mode", "Foo", "login"],
        code: 2,
        line: /^flyte-auth login: Unknown auth mode "Foo"; valid modes are .*DeviceFlow$/
      },
      {
        name: "a command that is not a JSON array",
        args: ["token", ...endpoint, "--auth-mode", "ExternalCommand", "--command", "[\"get-token\""],
        code: 2,
        line: /^flyte-auth token: The command option \(--command\) is not a JSON array of strings$/
      },
      {
        name: "unknown auth mode without an endpoint",
        args: ["token", "--auth-mode", "kerberos"],
        code: 2,
        line: /^flyte-auth token: Unknown auth mode "kerberos"; valid modes are/
      },
      {
        name: "no endpoint",
        args: ["token"],
        code: 1,
        line:
          /^flyte-auth token: No endpoint is configured: pass --endpoint, set FLYTE_PLATFORM_URL, or admin\.endpoint/
      },
      {
        name: "client secret missing",
        args: ["token", ...endpoint, "--auth-mode", "ClientSecret", "--client-id", "x"],
        code: 1,
        line: /needs a client secret — pass --client-secret-env-var NAME or --client-secret-location PATH/
      },
      {
        name: "client secret variable not set",
        args: ["login", ...endpoint, "--auth-mode", "ClientSecret", "--client-id", "x"].concat(
          ["--client-secret-env-var", "NOPE_UNSET"]
        ),
        code: 1,
        line:
          /needs a client secret — the environment variable NOPE_UNSET \(--client-secret-env-var\) is not set or empty$/
      },
      {
        name: "client secret file missing",
        args: ["login", ...endpoint, "--auth-mode", "ClientSecret", "--client-id", "x"].concat(
          ["--client-secret-location", "/nonexistent/secret"]
        ),
        code: 1,
        line: /^flyte-auth login: cannot read the client secret file \/nonexistent\/secret: ENOENT[^—]*$/
      },
      {
        name: "config file missing",
        args: ["token", "--config", Path.join(home.dir, "nope.yaml")],
        code: 1,
        line: /^flyte-auth token: cannot read the Flyte config .*nope\.yaml: ENOENT/
      },
      {
        name: "malformed YAML",
        args: ["status", "--config", file("broken.yaml", "admin:\n  endpoint: [unclosed\n")],
        code: 1,
        line: /^flyte-auth status: malformed YAML in .*broken\.yaml/
      },
      {
        name: "bad boolean in the config",
        args: ["status", "--config", file("bool.yaml", "admin:\n  endpoint: dns:///x:1\n  insecure: maybe\n")],
        code: 1,
        line: /admin\.insecure in .*bool\.yaml: "maybe" is not a boolean \(use true\/false, 1\/0, on\/off or yes\/no\)/
      },
      {
        name: "a number where scopes belong in the config",
        args: ["status", "--config", file("scopes.yaml", "admin:\n  endpoint: dns:///x:1\n  scopes: 5\n")],
        code: 1,
        line:
          /^flyte-auth status: admin\.scopes in .*scopes\.yaml must be a list of strings or one string, not a number \(5; quote it if it is meant as text\)$/
      },
      {
        name: "a mapping where scopes belong in the config",
        args: ["status", "--config", file("scopes-map.yaml", "admin:\n  endpoint: dns:///x:1\n  scopes: {a: 1}\n")],
        code: 1,
        line:
          /^flyte-auth status: admin\.scopes in .*scopes-map\.yaml must be a list of strings or one string, not a mapping$/
      },
      {
        name: "bad auth mode in FLYTE_CREDENTIALS_AUTH_MODE",
        args: ["status", "--endpoint", "x:1"],
        env: { FLYTE_CREDENTIALS_AUTH_MODE: "magic" },
        code: 1,
        line: /FLYTE_CREDENTIALS_AUTH_MODE: Unknown auth mode "magic"; valid modes are/
      },
      {
        name: "server not reachable",
        args: ["login", ...endpoint, "--auth-mode", "ClientSecret", "--client-id", "x", "--client-secret-env-var", "S"],
        env: { S: "a-secret-that-must-not-leak" },
        code: 1,
        line: /^flyte-auth login: Cannot reach .* at 127\.0\.0\.1:1.* — check --endpoint \(admin\.endpoint\)/,
        // Neither grpc-js's empty "Resolution note:" nor --insecure, which was given.
        not: /Resolution note|\. —|--insecure/
      },
      {
        name: "TLS server not reachable (HOST:PORT)",
        args: ["login", "--endpoint", "127.0.0.1:1", "--keyring", "memory"],
        code: 1,
        line: /^flyte-auth login: Cannot reach .* — check --endpoint .*; use --insecure for a plaintext server$/,
        not: /Resolution note/
      },
      {
        name: "TLS server not reachable (https:// URL)",
        args: ["login", "--endpoint", "https://127.0.0.1:1", "--keyring", "memory"].concat(
          ["--auth-mode", "ClientSecret", "--client-id", "x", "--client-secret-env-var", "S"]
        ),
        env: { S: "a-secret-that-must-not-leak" },
        code: 1,
        line:
          /^flyte-auth login: Could not reach https:\/\/127\.0\.0\.1:1\/.*; use an http:\/\/ URL for a plaintext server$/,
        not: /--insecure/
      },
      {
        name: "a gRPC endpoint that answers HTTP/1 (HTML)",
        args: ["login", "--endpoint", `127.0.0.1:${webPort}`, "--insecure", "--keyring", "memory"].concat(
          ["--auth-mode", "ClientSecret", "--client-id", "x", "--client-secret-env-var", "S"]
        ),
        env: { S: "a-secret-that-must-not-leak" },
        code: 1,
        line: new RegExp(
          `— the server at 127\\.0\\.0\\.1:${webPort} is up but does not speak gRPC \\(wrong port or scheme\\?\\): ` +
            `give its gRPC port, or its HTTP address as a URL \\(http://127\\.0\\.0\\.1:${webPort}\\)$`
        ),
        not: /that the server is up/
      },
      {
        name: "a failing proxy command (http:// endpoint)",
        args: ["login", "--endpoint", `http://127.0.0.1:${webPort}`, "--keyring", "memory"].concat(
          ["--auth-mode", "ClientSecret", "--client-id", "x", "--client-secret-env-var", "S"],
          ["--proxy-command", JSON.stringify([process.execPath, "-e", "process.exit(3)"])]
        ),
        env: { S: "a-secret-that-must-not-leak" },
        code: 1,
        line:
          /^flyte-auth login: The proxy command \S*node\S* exited with code 3 and printed nothing on stderr — check --proxy-command \(admin\.proxyCommand\)$/,
        not: /--command \(/
      },
      {
        name: "nothing stored, --no-interactive",
        args: ["token", ...endpoint, "--no-interactive"],
        code: 3,
        line: /^flyte-auth token: No credentials are stored for .* — run `flyte-auth login` first$/
      },
      {
        name: "sandbox port out of range",
        args: ["sandbox", "--idp-port", "70000"],
        code: 2,
        line: /^flyte-auth sandbox: port 70000 is not between 0 and 65535$/
      }
    ]
    const results = await runAll(home, cases)
    for (const [i, result] of results.entries()) {
      const { code, line, name } = cases[i]
      const lines = result.stderr.trimEnd().split("\n")
      expect({ name, code: result.code, stdout: result.stdout, lines: lines.length }).toEqual({
        name,
        code,
        stdout: "",
        lines: 1
      })
      expect(lines[0], name).toMatch(line)
      if (cases[i].not !== undefined) expect(lines[0], name).not.toMatch(cases[i].not!)
      expect(result.stderr, name).not.toContain("a-secret-that-must-not-leak")
    }
  })

  it("a taken port stops the sandbox with a hint about the port options", async () => {
    const result = await runCli(home, [
      "sandbox",
      "--idp-port",
      String(busyPort),
      "--admin-port",
      "0",
      "--admin-http-port",
      "0"
    ])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toMatch(/^flyte-auth sandbox: .*EADDRINUSE.*choose other ports with --admin-port/)
    // One prefix only (the sandbox's own message starts with "flyte-auth sandbox" too).
    expect(result.stderr).not.toMatch(/flyte-auth sandbox.*flyte-auth sandbox/)
  })

  it("a corrupt credentials file: one warning per command, the command still works, the next write replaces it", async () => {
    const credentials = Path.join(home.dir, "corrupt-credentials")
    const args = [
      "token",
      "--endpoint",
      "127.0.0.1:1",
      "--insecure",
      "--keyring",
      "file",
      "--auth-mode",
      "ExternalCommand",
      "--command",
      JSON.stringify([process.execPath, "-e", "process.stdout.write('from-the-command')"])
    ]
    const env = { FLYTE_AUTH_CREDENTIALS_DIR: credentials }
    expect((await runCli(home, args, { env })).code).toBe(0)
    const [stored, ...others] = Fs.readdirSync(credentials)
    expect(others).toEqual([])
    Fs.writeFileSync(Path.join(credentials, stored), "{\"service\":\"flyte-a")

    const result = await runCli(home, args, { env })
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("from-the-command\n")
    expect(result.stderr.trim().split("\n")).toEqual([
      `warning: flyte-auth: ignoring the corrupt credentials file ${Path.join(credentials, stored)}`
    ])
    const again = await runCli(home, args, { env })
    expect(again.stderr).toBe("")
  })

  it("--verbose adds the chain of causes below the line", async () => {
    const result = await runCli(home, [
      "login",
      "--endpoint",
      "127.0.0.1:1",
      "--insecure",
      "--keyring",
      "memory",
      "--auth-mode",
      "ClientSecret",
      "--client-id",
      "x",
      "--client-secret-env-var",
      "S",
      "--verbose"
    ], { env: { S: "another-secret" } })
    expect(result.code).toBe(1)
    const lines = result.stderr.trimEnd().split("\n")
    const first = lines.findIndex((l) => l.startsWith("flyte-auth login: Cannot reach"))
    expect(first).toBeGreaterThanOrEqual(0)
    expect(lines[first + 1]).toMatch(/^ {2}caused by .*UNAVAILABLE/)
    expect(result.stderr).not.toContain("another-secret")
    // The failure is reported once, not also as the runtime's note about a failed fiber.
    expect(result.stderr).not.toContain("Fiber terminated")
  })

  it("the Flyte config file and FLYTE_* variables are read; explicit options win", async () => {
    const config = file(
      "config.yaml",
      "admin:\n  endpoint: dns:///flyte.example.com:443\n  insecure: true\n  authType: deviceflow\n"
    )
    const [fromFile, fromEnv, explicit, viaFlytectl] = await Promise.all([
      runCli(home, ["status", "--json", "--keyring", "memory", "--config", config]),
      runCli(home, ["status", "--json", "--keyring", "memory", "--config", config], {
        env: { FLYTE_PLATFORM_URL: "dns:///other.example.com:443", FLYTE_CREDENTIALS_AUTH_MODE: "client_credentials" }
      }),
      runCli(home, [
        "status",
        "--json",
        "--keyring",
        "memory",
        "--config",
        config,
        "--endpoint",
        "mine:1",
        "--auth-mode",
        "Pkce"
      ]),
      runCli(home, ["status", "--json", "--keyring", "memory"], { env: { FLYTECTL_CONFIG: config } })
    ])
    expect(JSON.parse(fromFile.stdout)).toMatchObject({
      endpoint: "flyte.example.com:443",
      insecure: true,
      authMode: "DeviceFlow",
      keyringBackend: "memory",
      loggedIn: false
    })
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ endpoint: "other.example.com:443", authMode: "ClientSecret" })
    expect(JSON.parse(explicit.stdout)).toMatchObject({ endpoint: "mine:1", authMode: "Pkce" })
    expect(JSON.parse(viaFlytectl.stdout)).toMatchObject({ endpoint: "flyte.example.com:443" })
  })
})
