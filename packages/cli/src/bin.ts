#!/usr/bin/env node
/**
 * The `flyte-auth` binary. `flyte-auth token` with a valid cached token and `flyte-auth status` of plain stored
 * logins are answered by the fast paths (no Effect runtime, no `@effect/cli`), and so are option values that are
 * plainly wrong; everything else loads the full command line (`Cli.ts`) on demand.
 *
 * @since 0.1.0
 */
import { validValues } from "./internal/argv.js"
import { exitCodes } from "./internal/errorCodes.js"
import { tryFastToken } from "./internal/fastToken.js"

const args = process.argv.slice(2)
const problem = validValues(args)
// FLYTE_AUTH_NO_FAST_PATH=1 always runs the full CLI (the tests compare the two).
const fast = problem === undefined && process.env.FLYTE_AUTH_NO_FAST_PATH !== "1"
const cached = fast ? await tryFastToken(args).catch(() => undefined) : undefined
const status = fast && cached === undefined && args.includes("status")
  ? await import("./internal/fastStatus.js").then((m) => m.tryFastStatus(args)).catch(() => undefined)
  : undefined
if (problem !== undefined) {
  process.stderr.write(`flyte-auth: ${problem}\n`)
  process.exitCode = exitCodes.usage
} else if (cached !== undefined) {
  process.stdout.write(`${cached}\n`)
} else if (status !== undefined) {
  process.stdout.write(status.stdout)
  if (status.stderr !== undefined) process.stderr.write(status.stderr)
  process.exitCode = status.exitCode
} else {
  const { main } = await import("./Cli.js")
  main(process.argv)
}
