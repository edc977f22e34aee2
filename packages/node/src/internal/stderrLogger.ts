/**
 * The Promise facade's logger: one plain line per message on stderr, `flyte-auth: warning: …` as the CLI writes
 * it, instead of Effect's `timestamp=… level=… fiber=#12 message=…` lines, which are meant for the developers of
 * flyte-auth rather than for the users of a program that embeds it.
 *
 * @internal
 */
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"

const labels: Record<LogLevel.LogLevel["_tag"], string> = {
  All: "log",
  Fatal: "fatal",
  Error: "error",
  Warning: "warning",
  Info: "info",
  Debug: "debug",
  Trace: "trace",
  None: "log"
}

/** @internal */
export const logger: Logger.Logger<unknown, void> = Logger.make(({ logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message])
    .map((part) => typeof part === "string" ? part : String(part))
    .join(" ")
    .replace(/^flyte-auth: /, "")
  globalThis.console.error(`flyte-auth: ${labels[logLevel._tag]}: ${text}`)
})
