/**
 * The other way back from the login page when no browser could be opened here: the user logs in on any machine,
 * copies the address the identity provider redirected to (or just its `code`), and pastes it into the terminal.
 * The PKCE flow races what is pasted against the loopback callback and checks a pasted redirect exactly like one.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import { type CallbackRequest, makeCallbackRequest } from "./LoopbackServer.js"

/**
 * Reads what the user pastes. Present only where someone can type (the Node layer provides it when stdin is a
 * terminal); without it the PKCE flow waits for the loopback callback alone.
 *
 * @since 0.2.0
 * @category tags
 */
export class CallbackPaste
  extends Context.Tag("@flyte-auth/core/CallbackPaste")<CallbackPaste, CallbackPaste.Service>()
{}

/**
 * @since 0.2.0
 */
export declare namespace CallbackPaste {
  /**
   * @since 0.2.0
   * @category models
   */
  export interface Service {
    /**
     * Shows `prompt` and completes with the next line the user enters, or `None` when the input has ended (then
     * nothing more is asked). Interrupting it stops reading and leaves the terminal as it was.
     */
    readonly read: (prompt: string) => Effect.Effect<Option.Option<string>>
  }
}

/**
 * What a pasted line is: a redirect (a full URL, or its query) checked like a callback, or a bare authorization
 * code, whose `state` cannot be checked (there is none to compare).
 *
 * @since 0.2.0
 * @category models
 */
export type Pasted =
  | { readonly _tag: "Redirect"; readonly callback: CallbackRequest }
  | { readonly _tag: "Code"; readonly callback: CallbackRequest }
  | { readonly _tag: "Invalid"; readonly reason: string }

/**
 * Reads a pasted line: an `http(s)://` URL or a query (`code=…&state=…`, with or without a leading `?`) is a
 * redirect whose query parameters become a `CallbackRequest`, as the loopback server builds it (the code
 * `Redacted` at once); anything else without white space is a bare code. An empty line, a URL that does not parse
 * or text with spaces is `Invalid`. Nothing is answered to a pasted callback (`respond` does nothing): there is no
 * browser waiting for a page.
 *
 * @since 0.2.0
 * @category utils
 */
export const parse = (line: string): Pasted => {
  const text = line.trim().replace(/^["'<]+|["'>]+$/g, "")
  if (text === "") return { _tag: "Invalid", reason: "nothing was pasted" }
  const respond = () => Effect.void
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const url = safeUrl(text)
    return url === undefined
      ? { _tag: "Invalid", reason: "that is not a valid URL" }
      : { _tag: "Redirect", callback: makeCallbackRequest(url.searchParams, respond) }
  }
  if (text.includes("=")) {
    const query = new URLSearchParams(text.slice(text.indexOf("?") + 1).replace(/#.*$/, ""))
    return { _tag: "Redirect", callback: makeCallbackRequest(query, respond) }
  }
  if (/\s/.test(text)) return { _tag: "Invalid", reason: "that is neither a URL nor a code" }
  return { _tag: "Code", callback: makeCallbackRequest(new URLSearchParams({ code: text }), respond) }
}

/**
 * A paste service for tests: each `read` answers the next scripted line, then waits for one `type`d later (as a user
 * who types nothing yet), or `None` after `end`. The prompts it was shown are kept.
 *
 * @since 0.2.0
 * @category test
 */
export const makeScripted = (lines: Iterable<string>): Effect.Effect<{
  readonly service: CallbackPaste.Service
  /** Offers another line, as a user typing later would. */
  readonly type: (line: string) => Effect.Effect<void>
  /** Ends the input (a closed stdin): the next `read` answers `None`. */
  readonly end: Effect.Effect<void>
  readonly prompts: () => ReadonlyArray<string>
}> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Option.Option<string>>()
    yield* Queue.offerAll(queue, [...lines].map(Option.some))
    const prompts: Array<string> = []
    return {
      service: CallbackPaste.of({
        read: (prompt) =>
          Effect.suspend(() => {
            prompts.push(prompt)
            return Queue.take(queue)
          })
      }),
      type: (line) => Queue.offer(queue, Option.some(line)),
      end: Queue.offer(queue, Option.none()).pipe(Effect.asVoid),
      prompts: () => prompts
    }
  })

/**
 * A layer of `makeScripted` (its lines only).
 *
 * @since 0.2.0
 * @category test
 */
export const layerScripted = (lines: Iterable<string>): Layer.Layer<CallbackPaste> =>
  Layer.effect(CallbackPaste, Effect.map(makeScripted(lines), (scripted) => scripted.service))

const safeUrl = (text: string): URL | undefined => {
  try {
    return new URL(text)
  } catch {
    return undefined
  }
}
