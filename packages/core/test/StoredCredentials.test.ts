import { HttpClient, HttpClientError } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Authenticator, ClientConfig, Credentials, Keyring, StoredCredentials } from "@flyte-auth/core"
import type { AuthMode } from "@flyte-auth/core/AuthMode"
import { Effect, Layer, Option, Redacted } from "effect"

const endpoint = "flyte.example.com:443"

const config = new ClientConfig.ClientConfig({
  tokenEndpoint: "https://idp.example.com/oauth2/token",
  clientId: "flytectl",
  scopes: ["all"]
})

const credentials = (
  token: string,
  extra: { readonly authMode?: AuthMode; readonly clientId?: string; readonly endpoint?: string } = {}
) =>
  new Credentials.Credentials({
    accessToken: Redacted.make(token),
    endpoint: extra.endpoint ?? endpoint,
    ...(extra.authMode === undefined ? {} : { authMode: extra.authMode }),
    ...(extra.clientId === undefined ? {} : { clientId: extra.clientId })
  })

const noHttp = HttpClient.make((request) =>
  Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "no HTTP in this test" }))
)

const seed = (keyring: Keyring.Keyring.Service, account: string, value: Credentials.Credentials) =>
  Credentials.encodeKeyringEntry(value).pipe(
    Effect.flatMap((entry) => keyring.set(Keyring.serviceName, account, entry)),
    Effect.orDie
  )

const storedAt = (keyring: Keyring.Keyring.Service, account: string) =>
  keyring.get(Keyring.serviceName, account).pipe(
    Effect.orDie,
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeedNone,
      onSome: (entry) => Effect.asSome(Effect.orDie(Credentials.decodeKeyringEntry(entry)))
    })),
    Effect.map(Option.map((c) => ({ token: Redacted.value(c.accessToken), clientId: c.clientId, mode: c.authMode })))
  )

/** An authenticator of `clientId` whose login yields `token`, non-interactive (a service account). */
const authenticator = (
  keyring: Keyring.Keyring.Service,
  clientId: string | undefined,
  authMode: AuthMode,
  token: string
) =>
  Authenticator.make({
    endpoint,
    clientId,
    authMode,
    interactive: authMode === "Pkce" || authMode === "DeviceFlow",
    allowInteractive: false,
    login: Effect.succeed(credentials(token))
  }).pipe(
    Effect.provide(Layer.mergeAll(
      Layer.succeed(Keyring.Keyring, keyring),
      ClientConfig.layerStatic(config),
      Layer.succeed(HttpClient.HttpClient, noHttp)
    ))
  )

describe("Credentials keyring accounts", () => {
  it("names one account per endpoint and client, and reads it back", () => {
    expect(Credentials.keyringAccount(endpoint, "flyte-ci")).toBe("flyte.example.com:443#flyte-ci")
    expect(Credentials.keyringAccount(endpoint, undefined)).toBe("flyte.example.com:443#")
    expect(Credentials.keyringAccount("https://x.example.com/a#b", "a#b c")).toBe("https://x.example.com/a#b#a%23b%20c")
    expect(Credentials.parseKeyringAccount("https://x.example.com/a#b#a%23b%20c")).toEqual({
      endpoint: "https://x.example.com/a#b",
      clientId: "a#b c",
      legacy: false
    })
    expect(Credentials.parseKeyringAccount("flyte.example.com:443#")).toEqual({
      endpoint,
      clientId: undefined,
      legacy: false
    })
    expect(Credentials.parseKeyringAccount(endpoint)).toEqual({ endpoint, clientId: undefined, legacy: true })
    expect(Credentials.keyringAccount(endpoint, "a")).not.toBe(Credentials.keyringAccount(endpoint, undefined))
  })

  it("isFor: the same client id, and the same auth mode when both are known", () => {
    const a = credentials("t", { clientId: "a", authMode: "ClientSecret" })
    expect(Credentials.isFor(a, { clientId: "a", authMode: "ClientSecret" })).toBe(true)
    expect(Credentials.isFor(a, { clientId: "a" })).toBe(true)
    expect(Credentials.isFor(a, { clientId: "b", authMode: "ClientSecret" })).toBe(false)
    expect(Credentials.isFor(a, { clientId: undefined, authMode: "ClientSecret" })).toBe(false)
    expect(Credentials.isFor(a, { clientId: "a", authMode: "Pkce" })).toBe(false)
    expect(Credentials.isFor(credentials("t", { authMode: "Pkce" }), { authMode: "Pkce" })).toBe(true)
  })

  it("isLegacyFor: only a user's login recorded as such, for a caller of that mode", () => {
    expect(Credentials.isLegacyFor(credentials("t", { authMode: "Pkce" }), { authMode: "Pkce" })).toBe(true)
    expect(Credentials.isLegacyFor(credentials("t", { authMode: "Pkce" }), { clientId: "x" })).toBe(true)
    expect(Credentials.isLegacyFor(credentials("t", { authMode: "DeviceFlow" }), { authMode: "Pkce" })).toBe(false)
    expect(Credentials.isLegacyFor(credentials("t", { authMode: "ClientSecret" }), { authMode: "ClientSecret" }))
      .toBe(false)
    expect(Credentials.isLegacyFor(credentials("t", { authMode: "ExternalCommand" }), {})).toBe(false)
    expect(Credentials.isLegacyFor(credentials("t"), { authMode: "Pkce" })).toBe(false)
  })
})

describe("Keyring.accounts (memory)", () => {
  it.effect("lists the accounts of one service only", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      yield* keyring.set(Keyring.serviceName, "a", "1")
      yield* keyring.set(Keyring.serviceName, "b", "2")
      yield* keyring.set("other", "c", "3")
      expect([...(yield* keyring.accounts(Keyring.serviceName))].sort()).toEqual(["a", "b"])
      yield* keyring.delete(Keyring.serviceName, "a")
      expect(yield* keyring.accounts(Keyring.serviceName)).toEqual(["b"])
      expect(
        yield* Effect.flip(
          Effect.flatMap(Keyring.Keyring, (k) => k.accounts("x")).pipe(
            Effect.provide(Keyring.layerFailing())
          )
        )
      ).toMatchObject({ _tag: "KeyringError" })
    }))
})

describe("Authenticator with several clients on one endpoint", () => {
  it.scoped("two service accounts keep their own entries and tokens", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      const a = yield* authenticator(keyring, "client-a", "ClientSecret", "token-a")
      const b = yield* authenticator(keyring, "client-b", "ClientSecret", "token-b")
      expect(Redacted.value(yield* a.accessToken)).toBe("token-a")
      expect(Redacted.value(yield* b.accessToken)).toBe("token-b")
      expect(yield* storedAt(keyring, `${endpoint}#client-a`)).toEqual(
        Option.some({ token: "token-a", clientId: "client-a", mode: "ClientSecret" })
      )
      expect(yield* storedAt(keyring, `${endpoint}#client-b`)).toEqual(
        Option.some({ token: "token-b", clientId: "client-b", mode: "ClientSecret" })
      )
      // A new process of client A reads A's entry, never B's.
      const again = yield* authenticator(keyring, "client-a", "ClientSecret", "token-a2")
      expect(Redacted.value(yield* again.accessToken)).toBe("token-a")
      // Logging A out leaves B.
      yield* again.logout
      expect(yield* storedAt(keyring, `${endpoint}#client-a`)).toEqual(Option.none())
      expect(Option.isSome(yield* storedAt(keyring, `${endpoint}#client-b`))).toBe(true)
    }))

  it.scoped("an entry of another client or another mode in the account is never handed out", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      // An entry that says it is client B's, in A's account (written by hand or by a broken tool).
      yield* seed(keyring, `${endpoint}#client-a`, credentials("token-b", { clientId: "client-b" }))
      const a = yield* authenticator(keyring, "client-a", "ClientSecret", "token-a")
      expect(Redacted.value(yield* a.accessToken)).toBe("token-a")
      // A user's Pkce login of the admin's client is not a ClientSecret token of that client.
      yield* seed(keyring, `${endpoint}#`, credentials("user-token", { authMode: "Pkce" }))
      const service = yield* authenticator(keyring, undefined, "ClientSecret", "service-token")
      expect(Redacted.value(yield* service.accessToken)).toBe("service-token")
    }))

  it.scoped("a legacy entry (bare endpoint) of a Pkce login moves to the caller's account", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      yield* seed(keyring, endpoint, credentials("legacy-user", { authMode: "Pkce" }))
      const user = yield* authenticator(keyring, undefined, "Pkce", "unexpected")
      expect(Redacted.value(yield* user.accessToken)).toBe("legacy-user")
      expect(yield* storedAt(keyring, endpoint)).toEqual(Option.none())
      expect(yield* storedAt(keyring, `${endpoint}#`)).toEqual(
        Option.some({ token: "legacy-user", clientId: undefined, mode: "Pkce" })
      )
    }))

  it.scoped("a legacy ClientSecret entry is handed to no one and left where it is", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      yield* seed(keyring, endpoint, credentials("legacy-b", { authMode: "ClientSecret" }))
      const a = yield* authenticator(keyring, "client-a", "ClientSecret", "token-a")
      expect(Redacted.value(yield* a.accessToken)).toBe("token-a")
      const user = yield* authenticator(keyring, undefined, "Pkce", "unexpected")
      expect(yield* Effect.flip(user.accessToken)).toMatchObject({ _tag: "AccessTokenNotFound" })
      expect(Option.isSome(yield* storedAt(keyring, endpoint))).toBe(true)
    }))
})

describe("StoredCredentials.list", () => {
  it.effect("lists every login of an endpoint, or of all, and skips what is not ours", () =>
    Effect.gen(function*() {
      const keyring = yield* Keyring.makeMemory
      yield* seed(keyring, `${endpoint}#b`, credentials("b", { clientId: "b", authMode: "ClientSecret" }))
      yield* seed(keyring, `${endpoint}#`, credentials("u", { authMode: "Pkce" }))
      yield* seed(keyring, endpoint, credentials("l", { authMode: "Pkce" }))
      yield* seed(keyring, "other:443#a", credentials("o", { clientId: "a", endpoint: "other:443" }))
      yield* keyring.set(Keyring.serviceName, "probe-123", "not credentials")
      const mine = yield* StoredCredentials.list(keyring, endpoint)
      expect(mine.map((s) => [s.account, s.clientId, s.legacy])).toEqual([
        [`${endpoint}#`, undefined, false],
        [`${endpoint}#b`, "b", false],
        [endpoint, undefined, true]
      ])
      const all = yield* StoredCredentials.list(keyring)
      expect(all.map((s) => s.account)).toEqual([`${endpoint}#`, `${endpoint}#b`, endpoint, "other:443#a"])
    }))
})
