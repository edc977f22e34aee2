/**
 * The Authenticator and AuthHttpClient against the real sandbox: the configuration comes from the admin's HTTP
 * metadata endpoints, tokens from oidc-provider over real HTTP (undici), and every authenticated request goes to the
 * admin's protected HTTP route, which rejects tokens on command (`rejectTokensIssuedBefore`).
 */
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  Authenticator,
  AuthHttpClient,
  ClientConfig,
  Credentials,
  DevicePrompt,
  Flows,
  Keyring
} from "@flyte-auth/core"
import { type Sandbox, startSandbox, UserAgent } from "@flyte-auth/sandbox"
import { Context, Effect, Layer, Option, Redacted, Ref } from "effect"

let sandbox: Sandbox.Service

beforeAll(async () => {
  sandbox = await startSandbox({ devicePollIntervalSeconds: 1 })
})
afterAll(() => sandbox?.close())

const whoamiUrl = () => `${sandbox.adminHttp}/api/v1/whoami`

/**
 * Builds, in the test's scope, an authenticator for `mode` over a memory keyring and the sandbox's HTTP
 * configuration, and an authenticated undici client in front of the admin.
 */
const setup = (
  mode: "ClientSecret" | "DeviceFlow",
  extra: Layer.Layer<DevicePrompt.DevicePrompt> = DevicePrompt.layerLog
) =>
  Effect.gen(function*() {
    const keyring = yield* Keyring.makeMemory
    const transport = yield* Layer.build(NodeHttpClient.layerUndici)
    const base = Layer.mergeAll(
      Layer.succeedContext(transport),
      Layer.succeed(Keyring.Keyring, keyring),
      extra
    )
    const environment = Layer.provideMerge(ClientConfig.layerFlyteHttp(sandbox.adminHttp), base)
    const context = yield* Layer.build(
      Flows.layerFromMode(mode, {
        endpoint: sandbox.adminHttp,
        ...(mode === "ClientSecret"
          ? {
            clientId: sandbox.clients.confidential.clientId,
            clientSecret: Redacted.make(sandbox.clients.confidential.clientSecret)
          }
          : {})
      }).pipe(Layer.provideMerge(environment))
    )
    const auth = Context.get(context, Authenticator.Authenticator)
    const raw = Context.get(transport, HttpClient.HttpClient)
    const client = yield* AuthHttpClient.make(raw).pipe(Effect.provideService(Authenticator.Authenticator, auth))
    const whoami = Effect.flatMap(client.get(whoamiUrl()), (response) =>
      Effect.map(response.json, (json) => ({ status: response.status, json: json as Record<string, unknown> })))
    const account = Credentials.keyringAccount(
      sandbox.adminHttp,
      mode === "ClientSecret" ? sandbox.clients.confidential.clientId : undefined
    )
    const stored = keyring.get(Keyring.serviceName, account).pipe(
      Effect.orDie,
      Effect.flatMap(Option.match({
        onNone: () =>
          Effect.succeed(Option.none<Credentials.Credentials>()),
        onSome: (entry) =>
          Effect.asSome(Effect.orDie(Credentials.decodeKeyringEntry(entry)))
      }))
    )
    return { auth, client, whoami, stored }
  })

describe("Authenticator + AuthHttpClient against the sandbox", () => {
  it.live("client credentials: authenticated call; a revoked token is refreshed once and the call resent", () =>
    Effect.gen(function*() {
      sandbox.acceptAllTokens()
      sandbox.resetStats()
      const { auth, whoami } = yield* setup("ClientSecret")

      const first = yield* whoami
      expect(first.status).toBe(200)
      expect(first.json.subject).toBe(sandbox.clients.confidential.clientId)
      expect((yield* auth.header).key).toBe(sandbox.headerKey)
      expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)

      // Every token issued so far is now refused: 401 → one new token → resent → 200.
      sandbox.rejectTokensIssuedBefore()
      const before = sandbox.adminStats()
      const second = yield* whoami
      expect(second.status).toBe(200)
      expect(sandbox.stats().tokenRequests.client_credentials).toBe(2)
      expect(sandbox.adminStats().whoamiCalls - before.whoamiCalls).toBe(2)
      expect(sandbox.adminStats().authFailures - before.authFailures).toBe(1)

      // Served from the cache afterwards.
      expect((yield* whoami).status).toBe(200)
      expect(sandbox.stats().tokenRequests.client_credentials).toBe(2)
    }).pipe(Effect.scoped))

  it.live("concurrent requests rejected at once share one token request; a second 401 surfaces", () =>
    Effect.gen(function*() {
      sandbox.acceptAllTokens()
      const { whoami } = yield* setup("ClientSecret")
      expect((yield* whoami).status).toBe(200)

      sandbox.resetStats()
      sandbox.rejectTokensIssuedBefore()
      const all = yield* Effect.all(Array.from({ length: 20 }, () => whoami), { concurrency: "unbounded" })
      expect(all.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 200))
      expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)

      // Now even fresh tokens are refused: one refresh, one resend, and the 401 is the answer.
      sandbox.resetStats()
      sandbox.rejectTokensIssuedBefore(new Date(Date.now() + 3_600_000))
      const refused = yield* whoami
      expect(refused.status).toBe(401)
      expect(refused.json.error).toBe("invalid_token")
      expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
      expect(sandbox.adminStats().whoamiCalls).toBe(2)
      sandbox.acceptAllTokens()
    }).pipe(Effect.scoped))

  it.live(
    "device flow: refresh-token rotation on 401, 503 leaves the keyring alone, invalid_grant logs in again",
    () =>
      Effect.gen(function*() {
        sandbox.acceptAllTokens()
        sandbox.resetStats()
        const approvals = yield* Ref.make(0)
        const prompt = DevicePrompt.layerScripted((p) =>
          Ref.update(approvals, (n) => n + 1).pipe(
            Effect.zipRight(
              Effect.tryPromise(() =>
                UserAgent.approveDevice({ verificationUriComplete: p.verificationUriComplete! }, sandbox.user)
              )
            )
          )
        )
        const { client, stored, whoami } = yield* setup("DeviceFlow", prompt)

        const first = yield* whoami
        expect(first.status).toBe(200)
        expect(first.json.subject).toBe(sandbox.user.subject)
        expect(yield* Ref.get(approvals)).toBe(1)
        const login = Option.getOrThrow(yield* stored)
        expect(login.refreshToken).toBeDefined()

        // 401 → the refresh token is used (and rotated by the IdP); the new one is stored.
        sandbox.rejectTokensIssuedBefore()
        expect((yield* whoami).status).toBe(200)
        expect(sandbox.stats().tokenRequests.refresh_token).toBe(1)
        const rotated = Option.getOrThrow(yield* stored)
        expect(Redacted.value(rotated.accessToken)).not.toBe(Redacted.value(login.accessToken))
        expect(Redacted.value(rotated.refreshToken!)).not.toBe(Redacted.value(login.refreshToken!))
        expect(yield* Ref.get(approvals)).toBe(1)

        // The IdP is down during the refresh: a typed error, the keyring entry untouched, no new device login.
        sandbox.rejectTokensIssuedBefore()
        sandbox.failNextTokenRequests(1, { status: 503 })
        const error = yield* Effect.flip(client.get(whoamiUrl()))
        expect(error._tag).toBe("AuthenticationError")
        expect(error._tag === "AuthenticationError" && error.status).toBe(503)
        const untouched = Option.getOrThrow(yield* stored)
        expect(Redacted.value(untouched.refreshToken!)).toBe(Redacted.value(rotated.refreshToken!))
        expect(yield* Ref.get(approvals)).toBe(1)

        // The refresh token is revoked: invalid_grant → purge → one new device login → the call succeeds.
        expect(sandbox.revokeRefreshTokens()).toBeGreaterThan(0)
        const before = sandbox.stats()
        const again = yield* whoami
        expect(again.status).toBe(200)
        expect(yield* Ref.get(approvals)).toBe(2)
        expect(sandbox.stats().tokenErrors.refresh_token - before.tokenErrors.refresh_token).toBe(1)
        expect(sandbox.stats().deviceAuthorizationRequests - before.deviceAuthorizationRequests).toBe(1)
        const relogged = Option.getOrThrow(yield* stored)
        expect(Redacted.value(relogged.refreshToken!)).not.toBe(Redacted.value(rotated.refreshToken!))
      }).pipe(Effect.scoped),
    60_000
  )
})
