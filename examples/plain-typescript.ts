/**
 * Plain TypeScript, no Effect: a token from whatever Flyte's config file and FLYTE_* variables describe.
 *
 *   FLYTE_PLATFORM_URL=flyte.example.com:443 node examples/dist/plain-typescript.js
 *
 * Against the sandbox (two terminals; the sandbox writes the FLYTE_* variables of its service account):
 *
 *   node packages/cli/dist/bin.js sandbox --write-env-file sandbox.env
 *   node --env-file=sandbox.env examples/dist/plain-typescript.js
 */
import { createAuthClient } from "@flyte-auth/node/client"

export const main = async (): Promise<string> => {
  await using auth = await createAuthClient()
  return await auth.accessToken() // await: the client closes when this scope ends
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((token) => console.log(`got a token of ${token.length} characters`), fail)
}

/** A rejection is one line on stderr (what failed; the tagged error's message never holds a secret), exit 1. */
function fail(error: unknown): void {
  console.error(`${import.meta.url.split("/").at(-1)}: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
