#!/usr/bin/env node
/**
 * The `flyte-auth` binary. `flyte-auth token` with a valid cached token is answered by the fast path (no Effect
 * runtime, no `@effect/cli`), and so are option values that are plainly wrong; everything else loads the full
 * command line (`Cli.ts`) on demand.
 *
 * @since 0.1.0
 */
import { validValues } from "./internal/argv.js"
import { exitCodes } from "./internal/errorCodes.js"
import { tryFastToken } from "./internal/fastToken.js"

const args = process.argv.slice(2)
const problem = validValues(args)
const cached = problem === undefined ? await tryFastToken(args).catch(() => undefined) : undefined
if (problem !== undefined) {
  process.stderr.write(`flyte-auth: ${problem}\n`)
  process.exitCode = exitCodes.usage
} else if (cached !== undefined) {
  process.stdout.write(`${cached}\n`)
} else {
  const { main } = await import("./Cli.js")
  main(process.argv)
}
