/**
 * IdToken.verifyCredentials against id_tokens signed with jose and a JWK Set served over real HTTP: each check
 * that the issue names (signature, iss, aud, azp, exp/iat leeway, nonce) refuses with reason InvalidIdToken.
 */
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { AuthError, ClientConfig, Credentials, IdToken } from "@flyte-auth/core"
import { Effect, Redacted } from "effect"
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

const issuer = "https://idp.example.test"
const clientId = "flyte-cli"
const nonce = Redacted.make("n-0123456789abcdefghijklmnopqrstuvwxyz")

let server: Http.Server
let jwksUri: string
let sign: (claims: JWTPayload, options?: { readonly other?: boolean }) => Promise<string>

beforeAll(async () => {
  const [key, other] = await Promise.all([generateKeyPair("ES256"), generateKeyPair("ES256")])
  const jwk = { ...(await exportJWK(key.publicKey)), kid: "k1", alg: "ES256", use: "sig" }
  server = Http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
  sign = (claims, options = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: options.other ? "k2" : "k1" })
      .sign(options.other ? other.privateKey : key.privateKey)
})
afterAll(() => new Promise<void>((resolve) => server?.close(() => resolve())))

const now = () => Math.floor(Date.now() / 1000)
const good = (): JWTPayload => ({
  iss: issuer,
  aud: clientId,
  sub: "user-1",
  iat: now(),
  exp: now() + 600,
  nonce: Redacted.value(nonce)
})

const check = (idToken: string, expectations: { readonly requireNonce?: boolean } = {}) =>
  IdToken.verifyCredentials(
    new Credentials.Credentials({
      accessToken: Redacted.make("access-token-value"),
      idToken: Redacted.make(idToken),
      endpoint: "dns:///flyte.example.test"
    }),
    {
      config: new ClientConfig.ClientConfig({ tokenEndpoint: `${issuer}/token`, issuer, jwksUri, clientId }),
      nonce,
      ...expectations
    }
  ).pipe(Effect.provide(FetchHttpClient.layer))

const refused = (idToken: string, expectations?: { readonly requireNonce?: boolean }) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(check(idToken, expectations))
    expect(error).toBeInstanceOf(AuthError.AuthenticationError)
    expect(error.reason).toBe("InvalidIdToken")
    for (const rendering of [String(error), JSON.stringify(error), error.message]) {
      expect(rendering).not.toContain(idToken)
      expect(rendering).not.toContain(Redacted.value(nonce))
    }
    return error.message
  })

describe("IdToken.verifyCredentials", () => {
  it.live("a valid id_token keeps the credentials as they are", () =>
    Effect.gen(function*() {
      const credentials = yield* check(yield* Effect.promise(() => sign(good())))
      expect(credentials.idToken).toBeDefined()
    }))

  const cases: ReadonlyArray<readonly [string, () => JWTPayload, { readonly other?: boolean }?]> = [
    ["signed with a key not in the JWK Set", good, { other: true }],
    ["another issuer", () => ({ ...good(), iss: "https://evil.example.test" })],
    ["another audience", () => ({ ...good(), aud: "someone-else" })],
    ["several audiences, azp another client", () => ({ ...good(), aud: [clientId, "x"], azp: "x" })],
    ["expired beyond the leeway", () => ({ ...good(), exp: now() - 120, iat: now() - 720 })],
    ["issued in the future beyond the leeway", () => ({ ...good(), iat: now() + 600, exp: now() + 1200 })],
    ["another nonce", () => ({ ...good(), nonce: "replayed-nonce" })],
    ["no nonce although the login sent one", () => ({ ...good(), nonce: undefined })]
  ]
  for (const [name, claims, options] of cases) {
    it.live(`refused: ${name}`, () =>
      Effect.gen(function*() {
        const token = yield* Effect.promise(() => sign(claims(), options))
        expect(yield* refused(token)).toMatch(/^The id_token is not valid: /)
      }))
  }

  it.live("within the 60 s leeway an expired token still passes; a missing nonce passes when not required", () =>
    Effect.gen(function*() {
      yield* check(yield* Effect.promise(() => sign({ ...good(), exp: now() - 30 })))
      yield* check(yield* Effect.promise(() => sign({ ...good(), nonce: undefined })), { requireNonce: false })
      // Not required is not "anything goes": a wrong nonce is still refused.
      yield* refused(yield* Effect.promise(() => sign({ ...good(), nonce: "other" })), { requireNonce: false })
    }))

  it.live("a token that is not a JWT at all is refused", () =>
    Effect.gen(function*() {
      yield* refused("not-a-jwt")
    }))
})
