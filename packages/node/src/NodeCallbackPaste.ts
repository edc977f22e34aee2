/**
 * Reading a pasted login redirect from the terminal (see `CallbackPaste`): only when stdin is a terminal, one line at
 * a time, in the terminal's own line mode (its line editing, and Ctrl-C interrupting the process as usual).
 *
 * @since 0.2.0
 */
import * as CallbackPaste from "@flyte-auth/core/CallbackPaste"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { createInterface } from "node:readline"

/**
 * Reads lines from `input` after writing the prompt to `output` (stderr by default, as the URL is). The line is
 * never logged or echoed by this code (the terminal echoes what is typed, as for any input). Each `read` opens its
 * own reader and closes it when done or interrupted, so stdin is released (and the process may exit) between reads.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr
): CallbackPaste.CallbackPaste.Service => ({
  read: (prompt) =>
    Effect.async<Option.Option<string>>((resume) => {
      output.write(prompt)
      // terminal: false leaves the terminal in its canonical mode: no raw mode to restore, Ctrl-C stays SIGINT.
      const reader = createInterface({ input, terminal: false })
      let done = false
      const finish = (line: Option.Option<string>) => {
        if (done) return
        done = true
        reader.close()
        resume(Effect.succeed(line))
      }
      reader.once("line", (line) => finish(Option.some(line)))
      reader.once("close", () => finish(Option.none()))
      // Interrupted (the callback came first, a timeout, Ctrl-C): end the prompt's line, so what follows starts on
      // its own.
      return Effect.sync(() => {
        if (!done) output.write("\n")
        done = true
        reader.close()
      })
    })
})

/**
 * The paste reader on stdin when stdin is a terminal; otherwise nothing is provided (and the PKCE flow only waits
 * for the loopback callback). An empty layer is a valid answer: the service is optional.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerIfTerminal: Layer.Layer<never> = Layer.unwrapEffect(
  Effect.sync(() => process.stdin.isTTY === true ? Layer.succeed(CallbackPaste.CallbackPaste, make()) : Layer.empty)
) as Layer.Layer<never>
