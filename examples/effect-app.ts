/**
 * An Effect app: the Authenticator and an authenticated HttpClient from Flyte's config and FLYTE_* variables.
 *
 *   FLYTE_PLATFORM_URL=https://flyte.example.com node examples/dist/effect-app.js https://flyte.example.com/api/v1/projects
 *
 * Against the sandbox (two terminals; the sandbox writes the FLYTE_* variables of its service account):
 *
 *   node packages/cli/dist/bin.js sandbox --write-env-file sandbox.env
 *   node --env-file=sandbox.env examples/dist/effect-app.js   (GET <admin HTTP>/api/v1/whoami)
 */
import { HttpClient } from "@effect/platform"
import { Authenticator } from "@flyte-auth/core"
import { AuthLayer } from "@flyte-auth/node"
import { Effect, Redacted } from "effect"

export const main = (url: string) =>
  Effect.gen(function*() {
    const auth = yield* Authenticator.Authenticator
    const token = yield* auth.accessToken
    const client = yield* HttpClient.HttpClient // adds the header; refreshes and resends once on 401
    const response = yield* client.get(url)
    return { tokenLength: Redacted.value(token).length, status: response.status, body: yield* response.json }
  }).pipe(Effect.scoped, Effect.provide(AuthLayer.fromFlyteConfig()))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(main(process.argv[2] ?? `${process.env.FLYTE_SANDBOX_ADMIN_HTTP}/api/v1/whoami`)).then(
    (result) => console.log(result.status, result.body),
    fail
  )
}

/** A rejection is one line on stderr (what failed; the tagged error's message never holds a secret), exit 1. */
function fail(error: unknown): void {
  console.error(`${import.meta.url.split("/").at(-1)}: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
