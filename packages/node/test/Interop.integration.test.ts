/**
 * The facade against a sandbox that behaves as IdPs flyte-auth did not write do (the interop defects): a grant
 * down-scoped by the IdP, a nonce required with openid, Basic credentials compared without decoding, and an IdP
 * behind the same identity-aware proxy as the admin. Each of these failed before the fix it guards.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { type AuthClient, createAuthClient } from "@flyte-auth/node"
import { type Sandbox, startSandbox } from "@flyte-auth/sandbox"
import { Redacted } from "effect"
import type { JSONWebKeySet } from "jose"
import { createLocalJWKSet, decodeJwt, jwtVerify } from "jose"

const open: Array<{ close: () => Promise<void> }> = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((resource) => resource.close()))
})
const sandboxWith = async (options: Sandbox.Options) => {
  const sandbox = await startSandbox({ autoApprove: true, ...options })
  open.push(sandbox)
  return sandbox
}
/** A PKCE client whose "browser" is a bare fetch of the authorize URL (the sandbox approves it). */
const pkceClient = async (sandbox: Sandbox.Service, urls: Array<string> = []): Promise<AuthClient.AuthClient> => {
  const client = await createAuthClient({
    endpoint: sandbox.adminGrpc,
    insecure: true,
    authMode: "Pkce",
    keyring: "memory",
    openBrowser: false,
    redirectUri: "http://127.0.0.1:0/callback",
    onUrl: (url) => {
      urls.push(url)
      void fetch(url).then((response) => response.body?.cancel())
    }
  })
  open.push(client)
  return client
}

/** The admin's `whoami` through the facade's `fetch`: the token is one the admin accepts. */
const whoami = async (client: AuthClient.AuthClient, sandbox: Sandbox.Service) => {
  const response = await client.fetch(`${sandbox.adminHttp}/api/v1/whoami`)
  expect(response.status).toBe(200)
  return response.json()
}

describe("a grant the IdP down-scoped", () => {
  it("refreshes without asking for the scopes the IdP left out (no invalid_scope, no second login)", async () => {
    const sandbox = await sandboxWith({ scopes: ["all", "offline_access", "profile"], withholdScopes: ["profile"] })
    const client = await pkceClient(sandbox)
    const first = await client.credentials()
    expect(first.refreshToken).toBeDefined()
    expect(first.scopes).not.toContain("profile")
    const second = await client.refresh()
    const third = await client.refresh()
    expect(Redacted.value(third.accessToken)).not.toBe(Redacted.value(second.accessToken))
    const stats = sandbox.stats()
    expect(stats.tokenRequests.refresh_token).toBe(2)
    expect(stats.tokenErrors.refresh_token).toBe(0)
    expect(stats.tokenRequests.authorization_code).toBe(1)
    expect(await whoami(client, sandbox)).toMatchObject({ subject: sandbox.user.subject })
  })
})

describe("an IdP that requires a nonce with openid", () => {
  it("sends a fresh nonce, verifies the id_token, and logs in", async () => {
    const sandbox = await sandboxWith({ scopes: ["openid", "all", "offline_access"], requireNonce: true })
    const urls: Array<string> = []
    const client = await pkceClient(sandbox, urls)
    const credentials = await client.credentials()
    expect(sandbox.stats().tokenErrors.authorization_code).toBe(0)
    const nonce = new URL(urls[0]!).searchParams.get("nonce")
    expect(nonce).toMatch(/^[\w-]{32,}$/)
    const jwks = await (await fetch(sandbox.endpoints.jwks)).json() as JSONWebKeySet
    const { payload } = await jwtVerify(Redacted.value(credentials.idToken!), createLocalJWKSet(jwks), {
      issuer: sandbox.issuer,
      audience: sandbox.clients.public.clientId
    })
    expect(payload.nonce).toBe(nonce)
    expect(payload.sub).toBe(sandbox.user.subject)

    // A second login (another process, say) sends another nonce.
    const again = await pkceClient(sandbox, urls)
    await again.credentials()
    expect(new URL(urls[1]!).searchParams.get("nonce")).not.toBe(nonce)
    expect(decodeJwt(Redacted.value((await again.credentials()).idToken!)).nonce).not.toBe(nonce)
  })
})

describe("an IdP that compares Basic credentials without form-decoding them", () => {
  const clientSecret = "s3cr3t+/=:%&x"

  it("is refused the RFC 6749 encoding once, then uses the raw credentials, and remembers that", async () => {
    const sandbox = await sandboxWith({ basicCredentials: "raw", confidentialClient: { clientSecret } })
    const make = async () => {
      const client = await createAuthClient({
        endpoint: sandbox.adminGrpc,
        insecure: true,
        authMode: "ClientSecret",
        clientId: sandbox.clients.confidential.clientId,
        clientSecret,
        keyring: "memory"
      })
      open.push(client)
      return client
    }
    const first = await make()
    expect(await whoami(first, sandbox)).toMatchObject({ subject: sandbox.clients.confidential.clientId })
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(2)
    expect(sandbox.stats().tokenErrors.client_credentials).toBe(1)
    const second = await make()
    await second.accessToken()
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(3)
    expect(sandbox.stats().tokenErrors.client_credentials).toBe(1)
  })

  it("an IdP that decodes them (the default) is never sent the raw form", async () => {
    const sandbox = await sandboxWith({ confidentialClient: { clientSecret } })
    const client = await createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      authMode: "ClientSecret",
      clientId: sandbox.clients.confidential.clientId,
      clientSecret,
      keyring: "memory"
    })
    open.push(client)
    await client.accessToken()
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
    expect(sandbox.stats().tokenErrors.client_credentials).toBe(0)
  })
})

describe("an IdP behind the admin's identity-aware proxy", () => {
  it("carries the proxy token to the IdP too: metadata, token endpoint and JWKS", async () => {
    const proxyToken = "proxy-token-idp"
    const sandbox = await sandboxWith({
      scopes: ["openid", "all", "offline_access"],
      proxyToken,
      proxyGuardsIdp: true
    })
    const client = await createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      authMode: "Pkce",
      keyring: "memory",
      openBrowser: false,
      redirectUri: "http://127.0.0.1:0/callback",
      proxyCommand: [process.execPath, "-e", `console.log(${JSON.stringify(proxyToken)})`],
      onUrl: (url) => void fetch(url).then((response) => response.body?.cancel())
    })
    open.push(client)
    const credentials = await client.credentials()
    expect(credentials.idToken).toBeDefined()
    await client.refresh()
    expect(sandbox.stats().proxyRejections).toBe(0)
    expect(sandbox.stats().admin.proxyRejections).toBe(0)
    expect(sandbox.stats().tokenRequests.refresh_token).toBe(1)
  })
})
