/**
 * The sandbox's options for behaving as IdPs that flyte-auth did not write do: a down-scoped grant, a required
 * nonce, Basic credentials compared without decoding, and an IdP behind the admin's identity-aware proxy. Each is
 * checked here with the hand-rolled client of ./helpers.ts, not with flyte-auth.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox, UserAgent } from "@flyte-auth/sandbox"
import * as Http from "node:http"
import {
  authorizeUrl,
  clientCredentials,
  decodeJwt,
  exchangeCode,
  pkcePair,
  refresh,
  startLoopback,
  tokenRequest
} from "./helpers.js"

const signIn = async (sandbox: Sandbox.Service, scope: string) => {
  const loopback = await startLoopback()
  try {
    const { challenge, verifier } = pkcePair()
    const url = authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge, scope })
    await UserAgent.authorize(url, sandbox.user)
    const received = await loopback.received
    return exchangeCode(sandbox, received.searchParams.get("code")!, loopback.redirectUri, verifier)
  } finally {
    await loopback.close()
  }
}

describe("withholdScopes: a down-scoped grant", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({ autoApprove: true, withholdScopes: ["profile"] })
  })
  afterAll(() => sandbox.close())

  it("grants what it knows, says so in the token response, and refuses a refresh that asks for the rest", async () => {
    const tokens = await signIn(sandbox, "openid profile offline_access all")
    expect(tokens.status).toBe(200)
    // oidc-provider's token response names the resource's scopes; the OIDC ones show in what came with it.
    expect(tokens.json.scope).toBe("all")
    expect(typeof tokens.json.refresh_token).toBe("string")
    expect(decodeJwt(tokens.json.id_token).name).toBeUndefined()

    const asRequested = await tokenRequest(sandbox, {
      grant_type: "refresh_token",
      refresh_token: tokens.json.refresh_token,
      client_id: sandbox.clients.public.clientId,
      scope: "openid profile offline_access all"
    })
    expect(asRequested.status).toBe(400)
    expect(asRequested.json.error).toBe("invalid_scope")
    // Without a scope, the refresh is "as granted" (RFC 6749 §6).
    const asGranted = await refresh(sandbox, tokens.json.refresh_token)
    expect(asGranted.status).toBe(200)
  })

  it("leaves the withheld scope out of the published metadata", async () => {
    const metadata = await (await fetch(`${sandbox.issuer}/.well-known/openid-configuration`)).json() as {
      scopes_supported: Array<string>
    }
    expect(metadata.scopes_supported).toContain("all")
    expect(metadata.scopes_supported).not.toContain("profile")
  })
})

describe("requireNonce", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({ autoApprove: true, requireNonce: true })
  })
  afterAll(() => sandbox.close())

  const authorize = async (scope: string, nonce?: string) => {
    const { challenge } = pkcePair()
    const url = new URL(authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/callback", challenge, scope }))
    if (nonce !== undefined) url.searchParams.set("nonce", nonce)
    url.searchParams.set("state", "s-1")
    return UserAgent.authorizeRedirect(url, sandbox.user)
  }

  it("an openid request without a nonce comes back to the redirect URI as invalid_request", async () => {
    const redirect = await authorize("openid all")
    expect(redirect.origin + redirect.pathname).toBe("http://127.0.0.1:1234/callback")
    expect(redirect.searchParams.get("error")).toBe("invalid_request")
    expect(redirect.searchParams.get("error_description")).toBe("nonce required")
    expect(redirect.searchParams.get("state")).toBe("s-1")
    expect(redirect.searchParams.get("code")).toBeNull()
  })

  it("with a nonce, or without openid, the login goes on", async () => {
    expect((await authorize("openid all", "n-0123456789")).searchParams.get("code")).toBeTruthy()
    expect((await authorize("all")).searchParams.get("code")).toBeTruthy()
  })
})

describe("basicCredentials: raw", () => {
  let sandbox: Sandbox.Service
  const secret = "s3cr3t+/=:%&x"
  beforeAll(async () => {
    sandbox = await startSandbox({ basicCredentials: "raw", confidentialClient: { clientSecret: secret } })
  })
  afterAll(() => sandbox.close())

  const basic = (value: string) => `Basic ${Buffer.from(value).toString("base64")}`
  const encode = (value: string) => new URLSearchParams([["", value]]).toString().slice(1)

  it("accepts the secret as it is and refuses its RFC 6749 form-encoding as invalid_client", async () => {
    const { clientId } = sandbox.clients.confidential
    const raw = await tokenRequest(sandbox, { grant_type: "client_credentials", scope: "all" }, {
      authorization: basic(`${clientId}:${secret}`)
    })
    expect(raw.status).toBe(200)
    const encoded = await clientCredentials(sandbox)
    expect(encoded.status).toBe(401)
    expect(encoded.json.error).toBe("invalid_client")
    expect(JSON.stringify(encoded.json)).not.toContain(encode(secret))
    expect(sandbox.stats().tokenErrors.client_credentials).toBe(1)
  })
})

/** A request through node:http: `fetch` cannot show a 407 (Fetch §4.3: it is a network error without a window). */
const request = (url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
  new Promise<{ status: number; body: string; proxyAuthenticate: string | undefined }>((resolve, reject) => {
    const req = Http.request(url, { method: options.method ?? "GET", headers: options.headers ?? {} }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          body: Buffer.concat(chunks).toString("utf8"),
          proxyAuthenticate: res.headers["proxy-authenticate"]
        }))
    })
    req.on("error", reject)
    req.end(options.body)
  })

describe("proxyGuardsIdp: the IdP behind the admin's proxy", () => {
  let sandbox: Sandbox.Service
  const proxy = { "proxy-authorization": "Bearer proxy-token-1" }
  beforeAll(async () => {
    sandbox = await startSandbox({ proxyToken: "proxy-token-1", proxyGuardsIdp: true })
  })
  afterAll(() => sandbox.close())

  it("back-channel endpoints answer 407 without the proxy token and work with it", async () => {
    const { clientId, clientSecret } = sandbox.clients.confidential
    const token = (headers: Record<string, string>) =>
      request(sandbox.endpoints.token, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams({
          grant_type: "client_credentials",
          client_id: clientId,
          client_secret: clientSecret
        })
          .toString()
      })
    const refused = await token({})
    expect(refused.status).toBe(407)
    expect(refused.proxyAuthenticate).toMatch(/^Bearer /)
    expect(JSON.parse(refused.body).error).toBe("proxy_authentication_required")
    expect((await request(sandbox.endpoints.jwks, { headers: { "proxy-authorization": "Bearer other" } })).status)
      .toBe(407)
    expect((await request(`${sandbox.issuer}/.well-known/openid-configuration`, { headers: proxy })).status).toBe(200)
    expect((await token(proxy)).status).toBe(200)
    expect(sandbox.stats().proxyRejections).toBe(2)
  })

  it("browser pages pass: a browser reaches the IdP by its session, not a header", async () => {
    const { challenge } = pkcePair()
    const url = authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/callback", challenge, scope: "all" })
    const redirect = await UserAgent.authorizeRedirect(url, sandbox.user)
    expect(redirect.searchParams.get("code")).toBeTruthy()
  })
})
