import { describe, expect, it } from "@effect/vitest"
import { NodeCallbackPaste } from "@flyte-auth/node"
import { Effect, Fiber, Option } from "effect"
import { PassThrough } from "node:stream"

const streams = () => {
  const input = new PassThrough()
  const output = new PassThrough()
  let shown = ""
  output.setEncoding("utf8").on("data", (chunk: string) => (shown += chunk))
  return { input, output, shown: () => shown }
}

describe("NodeCallbackPaste.make", () => {
  it.live("shows the prompt and answers one line per read, then None when the input ends", () =>
    Effect.gen(function*() {
      const io = streams()
      const paste = NodeCallbackPaste.make(io.input, io.output)
      const first = yield* Effect.fork(paste.read("Paste: "))
      io.input.write("http://localhost/callback?code=c&state=s\n")
      expect(yield* Fiber.join(first)).toEqual(Option.some("http://localhost/callback?code=c&state=s"))
      const second = yield* Effect.fork(paste.read("Again: "))
      io.input.write("bare-code\n")
      expect(yield* Fiber.join(second)).toEqual(Option.some("bare-code"))
      const third = yield* Effect.fork(paste.read("Once more: "))
      io.input.end()
      expect(yield* Fiber.join(third)).toEqual(Option.none())
      expect(io.shown()).toBe("Paste: Again: Once more: ")
    }))

  it.live("an interrupted read ends the prompt's line and reads nothing more", () =>
    Effect.gen(function*() {
      const io = streams()
      const paste = NodeCallbackPaste.make(io.input, io.output)
      const read = yield* Effect.fork(paste.read("Paste: "))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(read)
      expect(io.shown()).toBe("Paste: \n")
      // A line typed afterwards is left for the next reader.
      const next = yield* Effect.fork(paste.read("Next: "))
      io.input.write("later\n")
      expect(yield* Fiber.join(next)).toEqual(Option.some("later"))
    }))
})
