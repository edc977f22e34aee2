import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ClientConfig, Credentials, Revocation } from "@flyte-auth/core"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import { Effect, Logger, Redacted, Ref } from "effect"

const refreshToken = "rt-secret-4711"

const credentials = (withRefreshToken = true) =>
  new Credentials.Credentials({
    accessToken: Redacted.make("at-secret-0815"),
    ...(withRefreshToken ? { refreshToken: Redacted.make(refreshToken) } : {}),
    endpoint: "flyte.example:443"
  })

const config = (fields: Partial<ConstructorParameters<typeof ClientConfig.ClientConfig>[0]> = {}) =>
  new ClientConfig.ClientConfig({ tokenEndpoint: "https://idp.example/token", clientId: "flytectl", ...fields })

interface Seen {
  readonly method: string
  readonly url: string
  readonly form: URLSearchParams
  readonly authorization: string | undefined
}

/** An IdP: `answer` decides the response to each request; every request is recorded. */
const run = (
  options: Parameters<typeof Revocation.revokeCredentials>[0],
  answer: (request: Seen) => Response = () => new Response(null, { status: 200 })
) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<Array<Seen>>([])
    const logs: Array<string> = []
    const client = HttpClient.make((request) =>
      Effect.gen(function*() {
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        const entry = {
          method: request.method,
          url: request.url,
          form: new URLSearchParams(body),
          authorization: request.headers["authorization"]
        }
        yield* Ref.update(seen, (all) => [...all, entry])
        return HttpClientResponse.fromWeb(request, answer(entry))
      })
    )
    const outcome = yield* Revocation.revokeCredentials(options).pipe(
      Effect.provideService(HttpClient.HttpClient, client),
      Effect.provide(Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
        })
      ))
    )
    return { outcome, seen: yield* Ref.get(seen), logs }
  })

describe("Revocation.revokeCredentials", () => {
  it.effect("posts the refresh token with its hint and the public client's id (RFC 7009 §2.1); 200 = Revoked", () =>
    Effect.gen(function*() {
      const { logs, outcome, seen } = yield* run({
        credentials: credentials(),
        config: config({ revocationEndpoint: "https://idp.example/revoke" })
      })
      expect(outcome).toBe("Revoked")
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatchObject({ method: "POST", url: "https://idp.example/revoke", authorization: undefined })
      expect(Object.fromEntries(seen[0].form)).toEqual({
        token: refreshToken,
        token_type_hint: "refresh_token",
        client_id: "flytectl"
      })
      expect(logs).toEqual([])
    }))

  it.effect("a confidential client authenticates with HTTP Basic, as at the token endpoint", () =>
    Effect.gen(function*() {
      const { outcome, seen } = yield* run({
        credentials: credentials(),
        config: config({ revocationEndpoint: "https://idp.example/revoke" }),
        clientId: "svc",
        clientSecret: Redacted.make("s3cret")
      })
      expect(outcome).toBe("Revoked")
      expect(seen[0].authorization).toBe(`Basic ${Buffer.from("svc:s3cret").toString("base64")}`)
      expect(seen[0].form.get("client_secret")).toBeNull()
    }))

  it.effect("without a revocation endpoint in the config, finds it in the issuer's OpenID discovery document", () =>
    Effect.gen(function*() {
      const { outcome, seen } = yield* run(
        { credentials: credentials(), config: Effect.succeed(config({ issuer: "https://idp.example" })) },
        (request) =>
          request.method === "GET"
            ? Response.json({
              issuer: "https://idp.example",
              token_endpoint: "https://idp.example/token",
              revocation_endpoint: "https://idp.example/token/revocation"
            })
            : new Response("", { status: 200 })
      )
      expect(outcome).toBe("Revoked")
      expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual([
        "GET https://idp.example/.well-known/openid-configuration",
        "POST https://idp.example/token/revocation"
      ])
    }))

  it.effect("Unsupported when neither the config nor the issuer names a revocation endpoint; nothing is sent", () =>
    Effect.gen(function*() {
      const bare = yield* run({ credentials: credentials(), config: config() })
      expect(bare.outcome).toBe("Unsupported")
      expect(bare.seen).toEqual([])
      const discovered = yield* run(
        { credentials: credentials(), config: config({ issuer: "https://idp.example" }) },
        () => Response.json({ issuer: "https://idp.example", token_endpoint: "https://idp.example/token" })
      )
      expect(discovered.outcome).toBe("Unsupported")
      expect(discovered.seen).toHaveLength(1)
    }))

  it.effect("NothingToRevoke without a refresh token", () =>
    Effect.gen(function*() {
      const { outcome, seen } = yield* run({
        credentials: credentials(false),
        config: config({ revocationEndpoint: "https://idp.example/revoke" })
      })
      expect(outcome).toBe("NothingToRevoke")
      expect(seen).toEqual([])
    }))

  it.effect("a refusal, a server error or a config that cannot be read is Failed with a warning, never a token", () =>
    Effect.gen(function*() {
      const cases = [
        () =>
          Response.json({ error: "unsupported_token_type", error_description: `no ${refreshToken}` }, { status: 400 }),
        () => new Response("<html>down</html>", { status: 503, headers: { "content-type": "text/html" } })
      ]
      for (const answer of cases) {
        const { logs, outcome } = yield* run(
          { credentials: credentials(), config: config({ revocationEndpoint: "https://idp.example/revoke" }) },
          answer
        )
        expect(outcome).toBe("Failed")
        expect(logs).toHaveLength(1)
        expect(logs[0]).toMatch(/^WARN Could not revoke the refresh token of flyte\.example:443 .*deleted anyway$/)
        expect(logs[0]).not.toContain(refreshToken)
      }
      const unreadable = yield* run({
        credentials: credentials(),
        config: Effect.fail(new AuthenticationError({ reason: "Transport", description: "the admin is down" }))
      })
      expect(unreadable.outcome).toBe("Failed")
      expect(unreadable.logs[0]).toContain("the admin is down")
    }))
})
