/**
 * Flyte 2 API keys (`FLYTE_API_KEY`, in a task pod `EAGER_API_KEY` / `_UNION_EAGER_API_KEY`): the base64 of
 * `endpoint:client_id:client_secret:org`, the client credentials of a service account for one endpoint.
 *
 * The fields are split at colons, with what Flyte 2's SDK gets wrong done right: an endpoint written
 * `dns:///host`, `https://host` or `host:port` keeps its scheme and port (the SDK's `split(":", 3)` cuts
 * `dns:///host` apart), and a colon inside the secret stays in the secret (the org, the last field, has none).
 * An empty org, or the SDK's `"None"`, means no org. A malformed key is an `AuthenticationError` of reason
 * `Config` that names the problem and never quotes the key or any part of it.
 *
 * @since 0.2.0
 */
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Redacted from "effect/Redacted"

/**
 * @since 0.2.0
 * @category models
 */
export interface ApiKey {
  /** The endpoint the key is for, as written in the key (`dns:///` and the port kept). */
  readonly endpoint: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** The org, when the key names one. */
  readonly org: string | undefined
}

/**
 * The environment variables that hold an API key, in the order they are read: `FLYTE_API_KEY`, then the ones
 * Flyte 2 injects into task pods.
 *
 * @since 0.2.0
 * @category constants
 */
export const envVars: ReadonlyArray<string> = ["FLYTE_API_KEY", "EAGER_API_KEY", "_UNION_EAGER_API_KEY"]

/**
 * Decodes an API key; `where` names its origin in errors (e.g. `"FLYTE_API_KEY"`, `"--api-key"`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const decode = (
  key: Redacted.Redacted<string> | string,
  where = "the API key"
): Effect.Effect<ApiKey, AuthenticationError> =>
  Effect.suspend(() => {
    const invalid = (problem: string) =>
      Effect.fail(
        new AuthenticationError({
          reason: "Config",
          description: `${where} is not a valid Flyte API key: ${problem}; copy it again from where it was issued`
        })
      )
    const encoded = (Redacted.isRedacted(key) ? Redacted.value(key) : key).trim()
    if (encoded === "") return invalid("it is empty")
    const bytes = Encoding.decodeBase64(encoded.replace(/-/g, "+").replace(/_/g, "/"))
    if (Either.isLeft(bytes)) return invalid("it is not base64")
    let text: string
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.right)
    } catch {
      return invalid("it does not decode to text")
    }
    // The endpoint: an optional scheme, a host (an IPv6 literal in brackets), an optional port.
    const endpoint = /^(?:dns:\/\/\/|https?:\/\/)?(?:\[[^\]]*\]|[^:/\s]+)(?::\d+)?(?=:)/i.exec(text)?.[0]
    const candidates = endpoint === undefined ? [] : [endpoint, endpoint.replace(/:\d+$/, "")]
    for (const candidate of new Set(candidates)) {
      const rest = text.slice(candidate.length + 1).split(":")
      if (rest.length < 3) continue
      const clientId = rest[0]
      const org = rest[rest.length - 1]
      const clientSecret = rest.slice(1, -1).join(":")
      if (clientId === "") return invalid("its client id is empty")
      if (clientSecret === "") return invalid("its client secret is empty")
      return Effect.succeed({
        endpoint: candidate,
        clientId,
        clientSecret: Redacted.make(clientSecret),
        org: org === "" || org === "None" ? undefined : org
      })
    }
    return invalid("it does not hold endpoint:client_id:client_secret:org")
  })

/**
 * The API key of the environment (the first of `envVars` that is set and not blank), with the variable it came
 * from; `undefined` when none is set.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromEnv = (
  env: Readonly<Record<string, string | undefined>>
): Effect.Effect<{ readonly key: ApiKey; readonly envVar: string } | undefined, AuthenticationError> => {
  const envVar = envVars.find((name) => (env[name] ?? "").trim() !== "")
  return envVar === undefined
    ? Effect.succeed(undefined)
    : Effect.map(decode(Redacted.make(env[envVar]!), envVar), (key) => ({ key, envVar }))
}
