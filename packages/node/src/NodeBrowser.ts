/**
 * Opening the login URL on Node: the system browser, a command of the user's, or a callback. Every one of them
 * also prints the URL on stderr first, since a browser can fail to open without telling anyone.
 *
 * @since 0.1.0
 */
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as Browser from "@flyte-auth/core/Browser"
import * as Policies from "@flyte-auth/core/Policies"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { errorMessage } from "./internal/optionalModule.js"

/**
 * Prints the URL on stderr (through Effect's `Console`), so the user can open it by hand.
 *
 * @since 0.1.0
 * @category utils
 */
export const printUrl = (url: string): Effect.Effect<void> =>
  Console.error(`Open this URL in a browser to log in:\n\n  ${url}\n`)

const browserError = (description: string, cause?: unknown) =>
  new AuthenticationError({ reason: "Browser", description, cause })

/**
 * Starts `argv` (no shell) detached from this process. An error to start it, or a non-zero exit within
 * `Policies.browserLaunchGrace`, is a failure; a command still running after that is left to run on its own.
 */
const launch = (argv: ReadonlyArray<string>): Effect.Effect<void, AuthenticationError> =>
  Effect.async<void, AuthenticationError>((resume) => {
    const [command, ...args] = argv
    const cannotRun = (cause: unknown) => browserError(`cannot run ${command}: ${errorMessage(cause)}`, cause)
    let child: ChildProcess
    try {
      child = spawn(command, args, { detached: true, stdio: "ignore", windowsHide: true })
    } catch (cause) {
      resume(Effect.fail(cannotRun(cause)))
      return
    }
    let settled = false
    const timer = setTimeout(() => settle(Effect.void), Duration.toMillis(Policies.browserLaunchGrace))
    const settle = (effect: Effect.Effect<void, AuthenticationError>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.unref()
      resume(effect)
    }
    child.once("error", (cause) => settle(Effect.fail(cannotRun(cause))))
    child.once("exit", (code, signal) =>
      settle(
        code === 0
          ? Effect.void
          : Effect.fail(browserError(`${command} exited with ${code === null ? `signal ${signal}` : `code ${code}`}`))
      ))
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
      child.unref()
    })
  })

/**
 * The command that opens a URL in the system's default browser: `open` on macOS, the URL handler of
 * `rundll32` on Windows (it takes the URL as one argument, where `cmd /c start` would reparse `&` in it),
 * `xdg-open` elsewhere.
 *
 * @since 0.1.0
 * @category utils
 */
export const systemOpener = (platform: NodeJS.Platform = process.platform): ReadonlyArray<string> =>
  platform === "darwin"
    ? ["open"]
    : platform === "win32"
    ? ["rundll32", "url.dll,FileProtocolHandler"]
    : ["xdg-open"]

/**
 * What decides how the system browser is opened: the platform, the environment (`BROWSER`, WSL's variables) and
 * the kernel release (WSL's says `microsoft`).
 *
 * @since 0.2.0
 * @category models
 */
export interface OpenerEnvironment {
  readonly platform: NodeJS.Platform
  readonly env: Readonly<Record<string, string | undefined>>
  readonly osRelease?: string | undefined
}

/**
 * Whether this is Linux under WSL (Windows Subsystem for Linux), where the browser to open is the Windows one.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isWsl = (environment: OpenerEnvironment): boolean =>
  environment.platform === "linux" &&
  (nonBlank(environment.env.WSL_DISTRO_NAME) !== undefined || nonBlank(environment.env.WSL_INTEROP) !== undefined ||
    /microsoft/i.test(environment.osRelease ?? ""))

/**
 * The commands that may open `url`, to be tried in order until one works (argv each, no shell). `BROWSER` wins:
 * a `:`-separated list of commands (words, `%s` replaced by the URL, else the URL appended), and `BROWSER=none`
 * means none at all. Otherwise macOS `open`, Windows `rundll32`'s URL handler, under WSL `wslview`, then
 * `cmd.exe /c start` (with cmd's metacharacters escaped), then `powershell.exe Start-Process`, and `xdg-open`
 * elsewhere.
 *
 * @since 0.2.0
 * @category utils
 */
export const openers = (url: string, environment: OpenerEnvironment): ReadonlyArray<ReadonlyArray<string>> => {
  const browser = nonBlank(environment.env.BROWSER)
  if (browser !== undefined) {
    if (browser.toLowerCase() === "none") return []
    return browser.split(":").flatMap((command) => {
      const words = command.trim().split(/\s+/).filter((word) => word !== "")
      if (words.length === 0) return []
      return [words.some((word) => word.includes("%s")) ? words.map((w) => w.replaceAll("%s", url)) : [...words, url]]
    })
  }
  if (isWsl(environment)) {
    return [
      ["wslview", url],
      ["cmd.exe", "/c", "start", "\"\"", url.replace(/[&^|<>()%!]/g, "^$&")],
      ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", `Start-Process '${url.replaceAll("'", "''")}'`]
    ]
  }
  return [[...systemOpener(environment.platform), url]]
}

/**
 * Opens the URL in the system browser (see `openers`: `BROWSER`, WSL, macOS, Windows, `xdg-open`), after printing
 * it. Each opener is tried in turn; when none starts (or each exits non-zero at once), the last failure is an
 * `AuthenticationError` with reason `Browser` (the PKCE flow only warns about it: the URL is printed).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSystem: Browser.Browser.Service = {
  open: Effect.fn("NodeBrowser.open")(function*(url: string) {
    yield* printUrl(url)
    const candidates = openers(url, { platform: process.platform, env: process.env, osRelease: Os.release() })
    if (candidates.length === 0) return yield* Effect.fail(browserError("BROWSER=none: no browser is opened"))
    let failure: AuthenticationError | undefined
    for (const argv of candidates) {
      const result = yield* Effect.either(launch(argv))
      if (result._tag === "Right") return
      failure = result.left
      yield* Effect.logDebug(`Could not open the browser with ${argv[0]} (${failure.description})`)
    }
    return yield* Effect.fail(failure!)
  })
}

/**
 * Why no browser can be opened here, or `undefined` when one may be: `BROWSER=none`; an SSH session
 * (`SSH_CONNECTION`, `SSH_CLIENT`, `SSH_TTY`: the browser would open on the remote machine, if at all); a container;
 * Linux or a BSD (not WSL) with neither `DISPLAY` nor `WAYLAND_DISPLAY`. Another `BROWSER` means the user named
 * what to run, and is tried.
 *
 * @since 0.2.0
 * @category predicates
 */
export const noBrowserReason = (
  environment: OpenerEnvironment & { readonly inContainer?: boolean | undefined }
): string | undefined => {
  const { env } = environment
  const browser = nonBlank(env.BROWSER)
  if (browser !== undefined) return browser.toLowerCase() === "none" ? "BROWSER=none" : undefined
  if ([env.SSH_CONNECTION, env.SSH_CLIENT, env.SSH_TTY].some((v) => nonBlank(v) !== undefined)) {
    return "this is an SSH session"
  }
  if (environment.inContainer === true) return "this runs in a container"
  if (isWsl(environment)) return undefined
  const desktopless = ["linux", "freebsd", "openbsd", "netbsd", "sunos", "aix"].includes(environment.platform)
  if (desktopless && nonBlank(env.DISPLAY) === undefined && nonBlank(env.WAYLAND_DISPLAY) === undefined) {
    return "there is no display (DISPLAY and WAYLAND_DISPLAY are unset)"
  }
  return undefined
}

/**
 * Whether this process runs in a container (Docker's `/.dockerenv`, Podman's `/run/.containerenv`, or the
 * `container` variable systemd-nspawn and Podman set).
 *
 * @since 0.2.0
 * @category utils
 */
export const inContainer = (env: Readonly<Record<string, string | undefined>> = process.env): boolean =>
  nonBlank(env.container) !== undefined || Fs.existsSync("/.dockerenv") || Fs.existsSync("/run/.containerenv")

/**
 * `noBrowserReason` for this process (its platform, environment and kernel, and whether it runs in a container).
 *
 * @since 0.2.0
 * @category utils
 */
export const noBrowserHere = (): string | undefined =>
  noBrowserReason({ platform: process.platform, env: process.env, osRelease: Os.release(), inContainer: inContainer() })

/**
 * A browser that opens nothing: it prints the URL and fails with reason `Browser`, saying why (`reason`), so that
 * the PKCE flow warns, and offers to paste the redirect when it can read from a terminal.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeNone = (reason: string): Browser.Browser.Service => ({
  open: Effect.fn("NodeBrowser.open")(function*(url: string) {
    yield* printUrl(url)
    return yield* Effect.fail(browserError(`no browser is opened here: ${reason}`))
  })
})

const nonBlank = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === "" ? undefined : value.trim()

/**
 * @since 0.1.0
 * @category layers
 */
export const layerSystem: Layer.Layer<Browser.Browser> = Layer.succeed(Browser.Browser, makeSystem)

/**
 * Opens the URL with the user's command: `argv` is run without a shell, the URL appended as its last
 * argument (e.g. `["firefox", "--private-window"]`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCommand = (argv: ReadonlyArray<string>): Browser.Browser.Service => ({
  open: Effect.fn("NodeBrowser.open")(function*(url: string) {
    yield* printUrl(url)
    if (argv.length === 0 || argv[0] === "") {
      return yield* Effect.fail(browserError("the browser command is empty"))
    }
    yield* launch([...argv, url])
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerCommand = (argv: ReadonlyArray<string>): Layer.Layer<Browser.Browser> =>
  Layer.succeed(Browser.Browser, makeCommand(argv))

/**
 * Hands the URL to a function (for an embedding application); a thrown error or rejected promise is an
 * `AuthenticationError` with reason `Browser`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCallback = (f: (url: string) => void | PromiseLike<void>): Browser.Browser.Service => ({
  open: Effect.fn("NodeBrowser.open")(function*(url: string) {
    yield* printUrl(url)
    yield* Effect.tryPromise({
      try: async () => {
        await f(url)
      },
      catch: (cause) => browserError(`the browser callback failed: ${errorMessage(cause)}`, cause)
    })
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerCallback = (f: (url: string) => void | PromiseLike<void>): Layer.Layer<Browser.Browser> =>
  Layer.succeed(Browser.Browser, makeCallback(f))
