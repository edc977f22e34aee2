/**
 * flyte-auth against a second, independent IdP: Glewlwyd 2.7 (Debian's package), not written for flyte-auth and
 * not bent to it. Every flow goes through the public facade (`createAuthClient`) with the client configuration
 * from Glewlwyd's own OIDC discovery document; a recording proxy in front of the token endpoint shows what went
 * over the wire (never a secret). What Glewlwyd does that oidc-provider does not (see ../shared notes): it refuses
 * `openid` without a `nonce`, compares Basic client credentials without form-decoding them, refuses
 * `client_credentials` without a `scope`, and rotates refresh tokens (a spent one is a bare 400).
 *
 * Runs when FLYTE_AUTH_TEST_GLEWLWYD is set (`npm test` sets it when /usr/bin/glewlwyd and sqlite3 exist; with
 * REQUIRE_ALL=1, as in CI, a machine without them fails instead of skipping).
 */
import { FetchHttpClient } from "@effect/platform"
import { ClientConfig } from "@flyte-auth/core"
import { createAuthClient, NodeBrowser } from "@flyte-auth/node"
import { Effect, Redacted } from "effect"
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, makeHome, requireBuild, runCli } from "../e2e/helpers.js"
import { type Glewlwyd, startGlewlwyd, startTap, type Tap } from "./glewlwyd.js"

const enabled = process.env.FLYTE_AUTH_TEST_GLEWLWYD === "1"

let glewlwyd: Glewlwyd
let tap: Tap
let discovered: ClientConfig.ClientConfig

beforeAll(async () => {
  if (!enabled) return
  glewlwyd = await startGlewlwyd()
  tap = await startTap(glewlwyd.baseUrl, [glewlwyd.clients.confidential])
  discovered = await Effect.runPromise(
    Effect.flatMap(ClientConfig.makeOidcDiscovery(glewlwyd.issuer), (store) => store.get).pipe(
      Effect.provide(FetchHttpClient.layer),
      Effect.scoped
    )
  )
}, 60_000)
afterAll(async () => {
  await tap?.close()
  await glewlwyd?.close()
})

/** The discovered configuration, with the token endpoint behind the recording tap. */
const config = () =>
  new ClientConfig.ClientConfig({
    ...discovered,
    tokenEndpoint: discovered.tokenEndpoint.replace(glewlwyd.baseUrl, tap.baseUrl)
  })

const tokenRequests = (grantType: string) => tap.requests.filter((request) => request.grantType === grantType)

/** Verifies a Glewlwyd access token against its published JWKS: the token is real, not merely well-formed. */
const verifyAccessToken = async (token: string) => {
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(discovered.jwksUri!)), {
    issuer: glewlwyd.issuer
  })
  return payload
}

describe.skipIf(!enabled)("Glewlwyd 2.7", () => {
  describe("discovery", () => {
    it("maps Glewlwyd's openid-configuration into a ClientConfig", () => {
      expect(discovered.issuer).toBe(glewlwyd.issuer)
      expect(discovered.tokenEndpoint).toBe(glewlwyd.endpoints.token)
      expect(discovered.authorizationEndpoint).toBe(glewlwyd.endpoints.authorization)
      expect(discovered.deviceAuthorizationEndpoint).toBe(glewlwyd.endpoints.deviceAuthorization)
      expect(discovered.jwksUri).toBe(glewlwyd.endpoints.jwks)
      expect(discovered.tokenEndpointAuthMethods).toEqual(expect.arrayContaining(["client_secret_basic"]))
    })
  })

  describe("PKCE with openid (Glewlwyd requires a nonce) and rotated refresh tokens", () => {
    it("logs in, validates the id_token, and refreshes twice without asking for scopes again", async () => {
      const visited: Array<string> = []
      const client = await createAuthClient({
        endpoint: glewlwyd.issuer,
        authMode: "Pkce",
        clientId: glewlwyd.clients.public.clientId,
        redirectUri: glewlwyd.clients.public.redirectUri,
        scopes: ["openid", "offline_access", "flyte"],
        clientConfig: config(),
        keyring: "memory",
        browser: NodeBrowser.layerCallback((url) => {
          visited.push(url)
          void glewlwyd.browse(url)
        })
      })
      try {
        const first = await client.credentials()
        const authorize = new URL(visited[0]!)
        expect(authorize.searchParams.get("nonce")).toMatch(/^[\w-]{32,}$/)
        expect(authorize.searchParams.get("code_challenge_method")).toBe("S256")
        expect(first.idToken).toBeDefined()
        const idClaims = decodeJwt(Redacted.value(first.idToken!))
        expect(idClaims.nonce).toBe(authorize.searchParams.get("nonce"))
        expect(idClaims.aud).toContain(glewlwyd.clients.public.clientId)
        expect(first.refreshToken).toBeDefined()
        const claims = await verifyAccessToken(Redacted.value(first.accessToken))
        expect(String(claims.scope).split(" ")).toEqual(expect.arrayContaining(["openid", "flyte", "offline_access"]))

        // Glewlwyd rotates refresh tokens: the second refresh must use the token the first one answered.
        const second = await client.refresh()
        const third = await client.refresh()
        for (const next of [second, third]) await verifyAccessToken(Redacted.value(next.accessToken))
        expect(Redacted.value(second.refreshToken!)).not.toBe(Redacted.value(first.refreshToken!))
        expect(Redacted.value(third.refreshToken!)).not.toBe(Redacted.value(second.refreshToken!))
        const refreshes = tokenRequests("refresh_token")
        expect(refreshes.map((request) => request.status)).toEqual([200, 200])
        // RFC 6749 §6: omitted scope means "as granted"; never the configured scopes.
        for (const request of refreshes) expect(request.params).not.toContain("scope")
        expect(visited).toHaveLength(1)
      } finally {
        await client.close()
      }
    })
  })

  describe("device authorization", () => {
    it("logs in through a user code the user approves on Glewlwyd's device page", async () => {
      const prompts: Array<string> = []
      const client = await createAuthClient({
        endpoint: `${glewlwyd.issuer}#device`,
        authMode: "DeviceFlow",
        clientId: glewlwyd.clients.public.clientId,
        scopes: ["openid", "flyte"],
        clientConfig: config(),
        keyring: "memory",
        onDeviceCode: (prompt) => {
          prompts.push(prompt.userCode)
          void glewlwyd.approveDevice(prompt.userCode)
        }
      })
      try {
        const credentials = await client.credentials()
        expect(prompts).toHaveLength(1)
        const claims = await verifyAccessToken(Redacted.value(credentials.accessToken))
        expect(String(claims.scope).split(" ")).toEqual(expect.arrayContaining(["flyte"]))
        const polls = tokenRequests("urn:ietf:params:oauth:grant-type:device_code")
        expect(polls.at(-1)?.status).toBe(200)
      } finally {
        await client.close()
      }
    })
  })

  describe("client credentials with a secret that form-encoding changes", () => {
    it("falls back from RFC-encoded Basic to raw Basic once, and remembers it", async () => {
      const { clientId, clientSecret } = glewlwyd.clients.confidential
      const before = tokenRequests("client_credentials").length
      const make = (endpoint: string) =>
        createAuthClient({
          endpoint,
          authMode: "ClientSecret",
          clientId,
          clientSecret,
          scopes: ["flyte"],
          clientConfig: config(),
          keyring: "memory"
        })
      const first = await make(`${glewlwyd.issuer}#cc-1`)
      const second = await make(`${glewlwyd.issuer}#cc-2`)
      try {
        const token = await first.accessToken()
        const claims = await verifyAccessToken(token)
        expect(claims.scope).toBe("flyte")
        await verifyAccessToken(await second.accessToken())
        const requests = tokenRequests("client_credentials").slice(before)
        expect(requests.map((request) => [request.clientAuth, request.status])).toEqual([
          ["basic-encoded", 403],
          ["basic-raw", 200],
          ["basic-raw", 200]
        ])
        for (const request of requests) expect(request.params).toContain("scope")
      } finally {
        await first.close()
        await second.close()
      }
    })

    it("a wrong secret is a typed error without the secret, after trying each form once", async () => {
      const wrong = "wr0ng+secret/with:chars=%"
      const before = tokenRequests("client_credentials").length
      const client = await createAuthClient({
        endpoint: `${glewlwyd.issuer}#cc-wrong`,
        authMode: "ClientSecret",
        clientId: glewlwyd.clients.confidential.clientId,
        clientSecret: wrong,
        scopes: ["flyte"],
        clientConfig: config(),
        keyring: "memory"
      })
      try {
        const error = await client.accessToken().then(() => undefined, (error: unknown) => error)
        expect(error).toMatchObject({ _tag: "AuthenticationError" })
        for (const rendering of [String(error), JSON.stringify(error), (error as Error).stack ?? ""]) {
          expect(rendering).not.toContain(wrong)
          expect(rendering).not.toContain(encodeURIComponent(wrong))
        }
        const requests = tokenRequests("client_credentials").slice(before)
        expect(requests.length).toBeGreaterThan(0)
        expect(requests.length).toBeLessThanOrEqual(3)
        for (const request of requests) expect(request.status).toBe(403)
      } finally {
        await client.close()
      }
    })
  })

  describe("short-lived access tokens (a second Glewlwyd, 4 s tokens)", () => {
    let shortLived: Glewlwyd
    let shortTap: Tap
    beforeAll(async () => {
      shortLived = await startGlewlwyd({ accessTokenLifetimeSeconds: 4 })
      shortTap = await startTap(shortLived.baseUrl)
    }, 60_000)
    afterAll(async () => {
      await shortTap?.close()
      await shortLived?.close()
    })

    const pkceClient = async (visited: Array<string>) => {
      const found = await Effect.runPromise(
        Effect.flatMap(ClientConfig.makeOidcDiscovery(shortLived.issuer), (store) => store.get).pipe(
          Effect.provide(FetchHttpClient.layer),
          Effect.scoped
        )
      )
      return createAuthClient({
        endpoint: `${shortLived.issuer}#short`,
        authMode: "Pkce",
        clientId: shortLived.clients.public.clientId,
        redirectUri: shortLived.clients.public.redirectUri,
        scopes: ["openid", "offline_access", "flyte"],
        clientConfig: new ClientConfig.ClientConfig({
          ...found,
          tokenEndpoint: shortLived.endpoints.token.replace(shortLived.baseUrl, shortTap.baseUrl)
        }),
        keyring: "memory",
        browser: NodeBrowser.layerCallback((url) => {
          visited.push(url)
          void shortLived.browse(url)
        })
      })
    }
    const requests = (grantType: string) => shortTap.requests.filter((request) => request.grantType === grantType)
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

    it("refreshes an expired access token with the rotated refresh token, without a login", async () => {
      const visited: Array<string> = []
      const client = await pkceClient(visited)
      try {
        const first = await client.accessToken()
        await sleep(4_500)
        const second = await client.accessToken()
        expect(second).not.toBe(first)
        const jwks = createRemoteJWKSet(new URL(shortLived.endpoints.jwks))
        await jwtVerify(second, jwks, { issuer: shortLived.issuer })
        expect(requests("refresh_token").map((request) => request.status)).toEqual([200])
        expect(visited).toHaveLength(1)
      } finally {
        await client.close()
      }
    }, 30_000)

    it("a refused refresh (Glewlwyd's bare 400 for a spent token) ends in exactly one login", async () => {
      const visited: Array<string> = []
      const client = await pkceClient(visited)
      try {
        const credentials = await client.credentials()
        // Someone else (a copy of the keyring, say) spends the refresh token first: Glewlwyd rotates it and, the
        // next time the spent one is shown, answers 400 with no body.
        const spent = await fetch(shortLived.endpoints.token, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            grant_type: "refresh_token",
            client_id: shortLived.clients.public.clientId,
            refresh_token: Redacted.value(credentials.refreshToken!)
          })
        })
        expect(spent.status).toBe(200)
        await spent.body?.cancel()
        const before = requests("refresh_token").length
        const codesBefore = requests("authorization_code").length
        await sleep(4_500)
        const token = await client.accessToken()
        await jwtVerify(token, createRemoteJWKSet(new URL(shortLived.endpoints.jwks)), { issuer: shortLived.issuer })
        const refused = requests("refresh_token").slice(before)
        expect(refused.map((request) => [request.status, request.contentLength])).toEqual([[400, 0]])
        expect(requests("authorization_code").length - codesBefore).toBe(1)
        expect(visited).toHaveLength(2)
        // The new login's refresh token works.
        await client.refresh()
        expect(requests("refresh_token").slice(before).map((request) => request.status)).toEqual([400, 200])
        expect(visited).toHaveLength(2)
      } finally {
        await client.close()
      }
    }, 30_000)
  })

  describe("the flyte-auth CLI, with --authorization-server-url (no Flyte admin in front of Glewlwyd)", () => {
    let home: Home
    beforeAll(() => {
      requireBuild()
      home = makeHome()
    })
    afterAll(() => home?.cleanup())

    const cli = (args: ReadonlyArray<string>, options: Parameters<typeof runCli>[2] = {}) =>
      runCli(home, [
        ...args,
        "--endpoint",
        `${glewlwyd.baseUrl}/api`,
        "--authorization-server-url",
        glewlwyd.issuer,
        "--keyring",
        "file"
      ], options)

    it("ClientSecret: login, token and status --json name the client; the secret never shows", async () => {
      const { clientId, clientSecret } = glewlwyd.clients.confidential
      const service = [
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        clientId,
        "--client-secret-env-var",
        "GLEWLWYD_SECRET",
        "--scopes",
        "flyte"
      ]
      const env = { GLEWLWYD_SECRET: clientSecret }
      const login = await cli(["login", ...service], { env })
      expect(login.code, login.stderr).toBe(0)
      expect(login.stderr).toContain(`as ${clientId}`)
      const token = await cli(["token", ...service], { env })
      expect(token.code, token.stderr).toBe(0)
      expect((await verifyAccessToken(token.stdout.trim())).scope).toBe("flyte")
      const status = await cli(["status", "--json", ...service], { env })
      expect(JSON.parse(status.stdout)).toMatchObject({ loggedIn: true, subject: clientId })
      for (const output of [login, token, status]) {
        expect(output.stdout + output.stderr).not.toContain(clientSecret)
        expect(output.stdout + output.stderr).not.toContain(encodeURIComponent(clientSecret))
      }
      await cli(["logout", ...service])
    })

    it("DeviceFlow: the user approves the code the CLI prints on Glewlwyd's device page", async () => {
      const device = [
        "--auth-mode",
        "DeviceFlow",
        "--client-id",
        glewlwyd.clients.public.clientId,
        "--scopes",
        "openid,offline_access,flyte"
      ]
      const approvals: Array<Promise<void>> = []
      const login = await cli(["login", ...device], {
        onStderrLine: (line) => {
          const code = /\bcode ([\w-]+)/.exec(line)?.[1]
          if (code !== undefined) approvals.push(glewlwyd.approveDevice(code))
        }
      })
      await Promise.all(approvals)
      expect(login.code, login.stderr).toBe(0)
      expect(approvals).toHaveLength(1)
      expect(login.stderr).toMatch(/Logged in to .* as /)
      const token = await cli(["token", ...device])
      expect(token.code, token.stderr).toBe(0)
      const claims = await verifyAccessToken(token.stdout.trim())
      const status = await cli(["status", "--json", ...device])
      expect(JSON.parse(status.stdout)).toMatchObject({ loggedIn: true, refreshToken: true, subject: claims.sub })
    })
  })
})
