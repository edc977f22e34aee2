/**
 * Plain TypeScript over HTTP: `auth.fetch` adds the auth header to a request of Flyte admin's REST API, and on a
 * 401 refreshes the token and sends the request once more.
 *
 *   FLYTE_PLATFORM_URL=https://flyte.example.com node examples/dist/http-fetch.js https://flyte.example.com/api/v1/projects
 *
 * Against the sandbox (two terminals; the sandbox writes the FLYTE_* variables of its service account):
 *
 *   node packages/cli/dist/bin.js sandbox --write-env-file sandbox.env
 *   node --env-file=sandbox.env examples/dist/http-fetch.js   (GET <admin HTTP>/api/v1/whoami)
 */
import { createAuthClient } from "@flyte-auth/node/client"

export const main = async (url: string): Promise<{ readonly status: number; readonly body: unknown }> => {
  await using auth = await createAuthClient()
  const response = await auth.fetch(url, { headers: { accept: "application/json" } })
  return { status: response.status, body: await response.json() }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv[2] ?? `${process.env.FLYTE_SANDBOX_ADMIN_HTTP}/api/v1/whoami`).then(
    ({ body, status }) => console.log(status, body),
    fail
  )
}

/** A rejection is one line on stderr (what failed; the tagged error's message never holds a secret), exit 1. */
function fail(error: unknown): void {
  console.error(`${import.meta.url.split("/").at(-1)}: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
