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
 * Opens the URL in the system browser (see `systemOpener`), after printing it. Failing to start the opener,
 * or its quick non-zero exit, is an `AuthenticationError` with reason `Browser`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSystem: Browser.Browser.Service = {
  open: Effect.fn("NodeBrowser.open")(function*(url: string) {
    yield* printUrl(url)
    yield* launch([...systemOpener(), url])
  })
}

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
