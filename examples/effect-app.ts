/**
 * An Effect app: the Authenticator and an authenticated HttpClient from Flyte's config and FLYTE_* variables.
 *
 *   FLYTE_PLATFORM_URL=https://flyte.example.com node examples/dist/effect-app.js https://flyte.example.com/api/v1/projects
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
  Effect.runPromise(main(process.argv[2])).then((result) => console.log(result.status, result.body))
}
