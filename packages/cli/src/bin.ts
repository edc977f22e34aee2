#!/usr/bin/env node
/**
 * The `flyte-auth` binary. `flyte-auth token` with a valid cached token is answered by the fast path (no Effect
 * runtime, no `@effect/cli`); everything else loads the full command line (`Cli.ts`) on demand.
 *
 * @since 0.1.0
 */
import { tryFastToken } from "./internal/fastToken.js"

const cached = await tryFastToken(process.argv.slice(2)).catch(() => undefined)
if (cached !== undefined) {
  process.stdout.write(`${cached}\n`)
} else {
  const { main } = await import("./Cli.js")
  main(process.argv)
}
