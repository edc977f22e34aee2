/**
 * Running the BUILT `flyte-auth` binary (packages/cli/dist/bin.js) as a subprocess, in an isolated home: a
 * temporary HOME (so no ~/.flyte/config.yaml of the machine leaks in), a temporary file-keyring directory, and no
 * FLYTE_* variables from the environment. stdin is not a terminal, so these are non-interactive runs.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

export const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")
export const bin = Path.join(root, "packages", "cli", "dist", "bin.js")
export const fixtures = Path.join(root, "test", "e2e", "fixtures")
export const userAgentBrowser = JSON.stringify([process.execPath, Path.join(fixtures, "user-agent-browser.mjs")])
export const chromiumBrowser = JSON.stringify([process.execPath, Path.join(fixtures, "chromium-browser.mjs")])

/** The e2e suites test the build: a missing bundle is a failure, never a skip. */
export const requireBuild = (): void => {
  if (!Fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: build first (npm run build; \`npm test\` builds before testing)`)
  }
  if (!Fs.existsSync(Path.join(root, "packages", "sandbox", "dist", "index.js"))) {
    throw new Error("packages/sandbox/dist is missing (the browser fixtures import it): run npm run build")
  }
}

export interface Home {
  readonly dir: string
  /** The file keyring's directory (FLYTE_AUTH_CREDENTIALS_DIR). */
  readonly credentials: string
  /** One JSON line per run of a browser fixture. */
  readonly browserLog: string
  readonly env: Record<string, string>
  readonly browserRuns: () => Array<Record<string, unknown>>
  /**
   * The browser runs once there are at least `count` of them. The CLI starts its browser detached and exits as soon
   * as the callback is served, so the fixture may write its line a moment after the CLI has exited.
   */
  readonly awaitBrowserRuns: (count: number, timeoutMs?: number) => Promise<Array<Record<string, unknown>>>
  readonly cleanup: () => void
}

/**
 * An ES module loader hook that logs every module a process loads, one URL a line: `register` is the module to
 * preload (`--import <register>`, or in NODE_OPTIONS), `loaded()` what the processes loaded since `reset()`.
 */
export const moduleLoadLog = (home: Home) => {
  const log = Path.join(home.dir, "loaded.log")
  const hookModule = Path.join(home.dir, "hooks.mjs")
  Fs.writeFileSync(
    hookModule,
    `import { appendFileSync } from "node:fs"\n` +
      `export const load = async (url, context, next) => {\n` +
      `  appendFileSync(${JSON.stringify(log)}, url + "\\n")\n` +
      `  return next(url, context)\n}\n`
  )
  const register = Path.join(home.dir, "register.mjs")
  Fs.writeFileSync(
    register,
    `import { register } from "node:module"\nregister(${JSON.stringify(`file://${hookModule}`)})\n`
  )
  return {
    register,
    reset: () => Fs.rmSync(log, { force: true }),
    loaded: (): Array<string> => Fs.readFileSync(log, "utf8").trim().split("\n")
  }
}

export const makeHome = (): Home => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-e2e-"))
  const credentials = Path.join(dir, "credentials")
  const browserLog = Path.join(dir, "browser.log")
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith("FLYTE_") || key === "FLYTECTL_CONFIG") continue
    env[key] = value
  }
  Object.assign(env, {
    HOME: dir,
    FLYTE_AUTH_CREDENTIALS_DIR: credentials,
    FLYTE_AUTH_TEST_BROWSER_LOG: browserLog,
    NO_COLOR: "1"
  })
  if (process.env.FLYTE_AUTH_TEST_CHROMIUM) env.FLYTE_AUTH_TEST_CHROMIUM = process.env.FLYTE_AUTH_TEST_CHROMIUM
  const browserRuns = (): Array<Record<string, unknown>> =>
    Fs.existsSync(browserLog)
      ? Fs.readFileSync(browserLog, "utf8").trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
      : []
  return {
    dir,
    credentials,
    browserLog,
    env,
    browserRuns,
    awaitBrowserRuns: async (count, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs
      let runs = browserRuns()
      while (runs.length < count && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        runs = browserRuns()
      }
      return runs
    },
    cleanup: () => Fs.rmSync(dir, { recursive: true, force: true })
  }
}

export interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>
  readonly timeoutMs?: number
  /** Called with each stderr line as it arrives (e.g. to act on the device code). */
  readonly onStderrLine?: (line: string) => void
}

/** Runs `node <args>` in `cwd` to completion (killed after `timeoutMs`, which then answers a null exit code). */
export const runNode = (
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env: Record<string, string>; readonly timeoutMs?: number }
): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

/** The examples under examples/ (each documents `node --env-file=sandbox.env examples/dist/<example>.js`). */
export const examples = ["plain-typescript", "http-fetch", "effect-app", "grpc-client"] as const

/** What the examples run against: a home, `flyte-auth sandbox` on free ports, and the env file it wrote. */
export interface ExamplesSandbox {
  readonly home: Home
  readonly sandbox: SandboxProcess
  readonly envFile: string
}

/**
 * `flyte-auth sandbox --write-env-file` on free ports, in a new home (`cliBin`: which `flyte-auth` to run, by
 * default the repository's build).
 */
export const startExamplesSandbox = async (cliBin?: string): Promise<ExamplesSandbox> => {
  const home = makeHome()
  const envFile = Path.join(home.dir, "sandbox.env")
  const sandbox = await startSandboxProcess(
    home,
    ["--admin-port", "0", "--admin-http-port", "0", "--idp-port", "0", "--write-env-file", envFile],
    [],
    cliBin
  )
  return { home, sandbox, envFile }
}

/** What an example prints when it ran: the length of its token, or the UserInfo of the sandbox's service account. */
export const exampleOutput = (name: typeof examples[number], sandbox: SandboxProcess): RegExp =>
  name === "plain-typescript" ? /^got a token of \d+ characters\n$/ : new RegExp(sandbox.info.confidentialClientId)

/** Runs `flyte-auth <args>` to completion (killed after `timeoutMs`). */
export const runCli = (home: Home, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<Result> =>
  startCli(home, args, options).result

/** A running `flyte-auth <args>`, for a test that signals it; `result` as of `runCli`. */
export interface CliProcess {
  readonly child: ChildProcess
  readonly result: Promise<Result>
}

/** Starts `flyte-auth <args>` (killed after `timeoutMs`). */
export const startCli = (home: Home, args: ReadonlyArray<string>, options: RunOptions = {}): CliProcess => {
  const env: Record<string, string> = { ...home.env }
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  const child = spawn(process.execPath, [bin, ...args], { cwd: home.dir, env, stdio: ["ignore", "pipe", "pipe"] })
  const result = new Promise<Result>((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding("utf8")
    createInterface({ input: child.stderr! }).on("line", (line) => {
      stderr += `${line}\n`
      options.onStderrLine?.(line)
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`flyte-auth ${args.join(" ")} did not finish in ${options.timeoutMs ?? 30_000} ms\n${stderr}`))
    }, options.timeoutMs ?? 30_000)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      // Let readline deliver the last line.
      setImmediate(() => resolve({ code, stdout, stderr }))
    })
  })
  return { child, result }
}

/**
 * Whether a process is still running (a zombie is not: it has exited and waits for its parent to reap it).
 */
export const isRunning = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // The state follows the command name, which is in parentheses and may itself contain spaces.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    if (Fs.existsSync("/proc/self/stat")) return false
  }
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** What `flyte-auth sandbox` prints as its first stdout line. */
export interface SandboxInfo {
  readonly adminGrpc: string
  readonly adminHttp: string
  readonly issuer: string
  /** With `--flyte 2`. */
  readonly adminConnect?: string
  readonly publicClientId: string
  readonly confidentialClientId: string
  readonly confidentialClientSecret: string
  readonly ciClientId: string
  readonly ciClientSecret: string
  readonly username: string
  readonly password: string
}

export interface SandboxProcess {
  readonly info: SandboxInfo
  /** The first stdout line, verbatim. */
  readonly firstLine: string
  readonly child: ChildProcess
  /** Sends SIGTERM and resolves with the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts `flyte-auth <before> sandbox <args>` and waits for its first stdout line. */
export const startSandboxProcess = (
  home: Home,
  args: ReadonlyArray<string>,
  before: ReadonlyArray<string> = [],
  cliBin: string = bin
): Promise<SandboxProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, ...before, "sandbox", ...args], {
      cwd: home.dir,
      env: home.env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`flyte-auth sandbox printed nothing within 30 s\n${stderr}`))
    }, 30_000)
    const lines = createInterface({ input: child.stdout })
    lines.once("line", (line) => {
      clearTimeout(timer)
      try {
        resolve({
          info: JSON.parse(line) as SandboxInfo,
          firstLine: line,
          child,
          stop: (signal = "SIGTERM") => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal)
            return exited
          }
        })
      } catch (error) {
        child.kill("SIGKILL")
        reject(error)
      }
    })
    child.on("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`flyte-auth sandbox exited with ${code} before printing its addresses\n${stderr}`))
    })
  })

/** The claims of a JWT (unverified), to tell whose token a command printed. */
export const jwtClaims = (token: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
