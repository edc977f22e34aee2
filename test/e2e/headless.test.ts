/**
 * `flyte-auth login` where no browser can be opened (BROWSER=none, no display), as a user meets it:
 *
 * - the paste path: the built CLI runs in a real pseudo-terminal (util-linux `script`), prints the authorize URL and
 *   asks for the redirect; a headless Chromium (playwright-core) signs the demo user in on the sandbox IdP, its final
 *   redirect to the loopback callback is intercepted (the CLI's listener never sees it), and the test pastes that URL
 *   into the terminal, first with a wrong state (the typed error and the prompt again), then as it is;
 * - the device switch: with no auth mode configured and an IdP that offers the device flow, `login` uses the device
 *   flow and says so (the sandbox approves device codes as a second device would); a pinned Pkce does not switch.
 *
 * Runs when FLYTE_AUTH_TEST_CHROMIUM names a Chromium binary (`npm test` sets it when /usr/bin/chromium exists).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  bin,
  type Home,
  jwtClaims,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  startSandboxProcess
} from "./helpers.js"

requireBuild()

/** No browser here: BROWSER=none, and neither DISPLAY nor WAYLAND_DISPLAY nor an SSH session's variables. */
const noBrowserEnv = {
  BROWSER: "none",
  DISPLAY: undefined,
  WAYLAND_DISPLAY: undefined,
  SSH_CONNECTION: undefined,
  SSH_CLIENT: undefined,
  SSH_TTY: undefined
}

interface PtyProcess {
  readonly child: ChildProcess
  /** Everything the terminal showed so far (stdout and stderr, with the echo of what was typed). */
  readonly output: () => string
  /** Waits until the output after `from` (a length of `output()`) matches. */
  readonly waitFor: (pattern: RegExp, from?: number, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Types a line (and Enter) into the terminal. */
  readonly type: (line: string) => void
  readonly exited: Promise<number | null>
}

const shellQuote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`

/**
 * Runs the built `flyte-auth <args>` in a new pseudo-terminal (`script -q -e -f -c`: stdin, stdout and stderr are
 * the terminal, the exit code is the command's).
 */
const startInTerminal = (home: Home, args: ReadonlyArray<string>): PtyProcess => {
  const env: Record<string, string> = { ...home.env }
  for (const [key, value] of Object.entries(noBrowserEnv)) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  env.SHELL = "/bin/sh"
  const command = [process.execPath, bin, ...args].map(shellQuote).join(" ")
  const child = spawn("script", ["-q", "-e", "-f", "-c", command, "/dev/null"], {
    cwd: home.dir,
    env,
    stdio: ["pipe", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return {
    child,
    output: () => output,
    waitFor: async (pattern, from = 0, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const match = output.slice(from).match(pattern)
        if (match !== null) return match
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`the terminal never showed ${pattern}; it showed:\n${output}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    type: (line) => child.stdin!.write(`${line}\r`),
    exited
  }
}

/**
 * Signs the demo user in with headless Chromium at `authorizeUrl` and answers the URL the IdP redirected to. The
 * redirect never reaches the CLI's listener: Chromium sends `localhost` through a proxy of the test (`<-loopback>`
 * takes loopback off the proxy's implicit bypass list; the IdP, on 127.0.0.1, is still reached directly), which
 * records the request and answers it.
 */
const loginInChromium = async (authorizeUrl: string): Promise<string> => {
  let redirected: (url: string) => void = () => undefined
  const redirect = new Promise<string>((resolve) => (redirected = resolve))
  const proxy = Http.createServer((request, response) => {
    if (new URL(request.url ?? "/", "http://localhost").pathname === "/callback") redirected(request.url!)
    response.writeHead(200, { "content-type": "text/plain" }).end("intercepted by the test")
  })
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve))
  const { port } = proxy.address() as AddressInfo
  const browser = await chromium.launch({
    executablePath: process.env.FLYTE_AUTH_TEST_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      `--proxy-server=http://127.0.0.1:${port}`,
      "--proxy-bypass-list=<-loopback>;127.0.0.1"
    ]
  })
  try {
    const page = await browser.newPage()
    page.setDefaultTimeout(20_000)
    await page.goto(authorizeUrl)
    await page.fill("#username", "demo")
    await page.fill("#password", "demo-password")
    await Promise.all([page.waitForNavigation(), page.click("button[value=approve]")])
    if (await page.locator("input[name=prompt][value=consent]").count() > 0) {
      await page.click("button[value=approve]")
    }
    const url = await redirect
    await page.waitForURL((url) => url.pathname === "/callback")
    expect(await page.textContent("body")).toBe("intercepted by the test")
    return url
  } finally {
    await browser.close()
    proxy.close()
  }
}

describe.skipIf(!process.env.FLYTE_AUTH_TEST_CHROMIUM)("flyte-auth login without a browser (built CLI)", () => {
  let home: Home
  let sandbox: SandboxProcess

  beforeAll(async () => {
    const script = spawnSync("script", ["--version"], { encoding: "utf8" })
    if (script.status !== 0) throw new Error("util-linux `script` is needed for the pseudo-terminal tests")
    home = makeHome()
    sandbox = await startSandboxProcess(home, [
      "--admin-port",
      "0",
      "--admin-http-port",
      "0",
      "--idp-port",
      "0",
      "--redirect-uri",
      "http://localhost:0/callback",
      "--approve-device-codes"
    ])
  })
  afterAll(async () => {
    await sandbox?.stop()
    home?.cleanup()
  })

  it(
    "pastes the redirect from Chromium into the terminal: a wrong state is refused and asked again, then logged in",
    async () => {
      const common = ["--endpoint", sandbox.info.adminGrpc, "--insecure", "--keyring", "file"]
      const cli = startInTerminal(home, ["login", ...common, "--headless", "paste", "--timeout", "90"])
      try {
        const [authorizeUrl] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/auth\?\S+/)
        await cli.waitFor(/Could not open a browser \(no browser is opened here: BROWSER=none\)/)
        const firstPrompt = cli.output().length
        await cli.waitFor(/paste the address your browser was redirected to \(or just the code\) and press Enter: /)

        const redirected = await loginInChromium(authorizeUrl)
        const redirect = new URL(redirected)
        expect(redirect.searchParams.get("code")).toBeTruthy()
        expect(redirect.searchParams.get("state")).toBe(new URL(authorizeUrl).searchParams.get("state"))
        // The CLI's listener never got the redirect: it is still waiting.
        expect(cli.output()).not.toContain("Logged in")

        const wrong = new URL(redirected)
        wrong.searchParams.set("state", "a-state-of-another-login")
        let mark = cli.output().length
        cli.type(wrong.toString())
        await cli.waitFor(/carried a state that is not the one of this login attempt; its code was not used/, mark)
        await cli.waitFor(/and press Enter: /, mark)
        expect(cli.output().slice(firstPrompt)).not.toContain("Logged in")

        mark = cli.output().length
        cli.type(redirected)
        await cli.waitFor(
          new RegExp(`Logged in to ${sandbox.info.adminGrpc.replaceAll(".", "\\.")} as sandbox\\|demo`),
          mark
        )
        expect(await cli.exited).toBe(0)
      } finally {
        cli.child.kill("SIGKILL")
      }

      const token = await runCli(home, ["token", ...common], { env: noBrowserEnv })
      expect(token.code, token.stderr).toBe(0)
      expect(jwtClaims(token.stdout.trim()).sub).toBe("sandbox|demo")
      const status = await runCli(home, ["status", ...common, "--json"], { env: noBrowserEnv })
      expect(JSON.parse(status.stdout)).toMatchObject({ authMode: "Pkce", loggedIn: true })
    },
    120_000
  )

  it("Ctrl-C at the prompt ends the login", async () => {
    const common = ["--endpoint", sandbox.info.adminGrpc, "--insecure", "--keyring", "memory"]
    const cli = startInTerminal(home, ["login", ...common, "--headless", "paste", "--timeout", "60"])
    try {
      await cli.waitFor(/and press Enter: /)
      cli.child.stdin!.write("\x03")
      const code = await Promise.race([cli.exited, new Promise((resolve) => setTimeout(() => resolve("hung"), 10_000))])
      expect(code).not.toBe("hung")
      expect(code).toBe(130)
      expect(cli.output()).not.toContain("Logged in")
    } finally {
      cli.child.kill("SIGKILL")
    }
  }, 30_000)

  it(
    "switches to the device flow (and says so) when no auth mode is configured; stored as a DeviceFlow login",
    async () => {
      const common = ["--endpoint", sandbox.info.adminGrpc, "--insecure", "--keyring", "file"]
      const login = await runCli(home, ["login", ...common, "--timeout", "30"], {
        env: noBrowserEnv,
        timeoutMs: 40_000
      })
      expect(login.stderr).toContain(
        "No browser can be opened here (BROWSER=none), so this login uses the device flow, which the identity provider offers"
      )
      expect(login.stderr).toContain("--headless paste")
      expect(login.stderr).toMatch(/To log in, open http:\/\/127\.0\.0\.1:\d+\/device\S* \(code [A-Z-]+\)/)
      expect(login.stderr).not.toContain("/auth?")
      expect(login.code, login.stderr).toBe(0)
      expect(login.stderr).toContain(`Logged in to ${sandbox.info.adminGrpc} as sandbox|demo`)
      const status = await runCli(home, ["status", ...common, "--json"], { env: noBrowserEnv })
      expect(JSON.parse(status.stdout)).toMatchObject({ authMode: "DeviceFlow", loggedIn: true })
      const token = await runCli(home, ["token", ...common], { env: noBrowserEnv })
      expect(jwtClaims(token.stdout.trim()).sub).toBe("sandbox|demo")
    },
    60_000
  )

  it(
    "does not switch when Pkce is pinned (--auth-mode) or headless is paste/off: a PKCE login that prints its URL",
    async () => {
      const common = ["--endpoint", sandbox.info.adminGrpc, "--insecure", "--keyring", "memory", "--timeout", "2"]
      for (const extra of [["--auth-mode", "Pkce"], ["--headless", "paste"], ["--headless", "off"]]) {
        const login = await runCli(home, ["login", ...common, ...extra], { env: noBrowserEnv, timeoutMs: 20_000 })
        expect(login.code, extra.join(" ")).not.toBe(0)
        expect(login.stderr, extra.join(" ")).toMatch(/http:\/\/127\.0\.0\.1:\d+\/auth\?/)
        expect(login.stderr, extra.join(" ")).toContain("No login callback arrived")
        expect(login.stderr, extra.join(" ")).not.toContain("device flow")
        // stdin is not a terminal here: nothing to paste into, so no prompt.
        expect(login.stderr, extra.join(" ")).not.toContain("press Enter")
      }
    },
    60_000
  )
})
