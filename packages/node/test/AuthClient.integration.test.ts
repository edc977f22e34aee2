/**
 * The Promise facade against the real sandbox: oidc-provider issues the tokens, the Flyte-like admin publishes
 * the client configuration (over gRPC and over HTTP) and rejects tokens on command.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createAuthClient } from "@flyte-auth/node"
import { type Sandbox, startSandbox, UserAgent } from "@flyte-auth/sandbox"
import { Redacted } from "effect"

let sandbox: Sandbox.Service

beforeAll(async () => {
  sandbox = await startSandbox({ devicePollIntervalSeconds: 1 })
})
afterAll(() => sandbox?.close())

const whoami = () => `${sandbox.adminHttp}/api/v1/whoami`
/** No Flyte config file or FLYTE_* variable of the machine may leak into these tests. */
const env = {}

const clientSecretOptions = () => ({
  endpoint: sandbox.adminGrpc,
  insecure: true,
  authMode: "ClientSecret",
  clientId: sandbox.clients.confidential.clientId,
  clientSecret: sandbox.clients.confidential.clientSecret,
  keyring: "memory" as const,
  env
})

describe("createAuthClient", () => {
  it("client credentials with the configuration fetched from AuthMetadataService over gRPC", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const token = await auth.accessToken()
    expect(token.split(".")).toHaveLength(3)
    // The header key comes from the admin's public client config.
    expect(await auth.headers()).toEqual({ [sandbox.headerKey]: `Bearer ${token}` })
    const credentials = await auth.credentials()
    expect(Redacted.value(credentials.accessToken)).toBe(token)
    expect(credentials.endpoint).toBe(sandbox.adminGrpc)

    const response = await auth.fetch(whoami())
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ subject: sandbox.clients.confidential.clientId })
  })

  it("answers repeated accessToken calls from the cache, without new token requests", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const first = await auth.accessToken()
    sandbox.resetStats()
    for (let i = 0; i < 100; i++) expect(await auth.accessToken()).toBe(first)
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(0)
  })

  it("fetch refreshes and resends once on 401, with exactly one token request", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const before = await auth.accessToken()
    sandbox.rejectTokensIssuedBefore()
    sandbox.resetStats()
    const responses = await Promise.all(Array.from({ length: 10 }, () => auth.fetch(whoami())))
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200))
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
    expect(await auth.accessToken()).not.toBe(before)
  })

  it("refresh() obtains a new token; logout() forgets it", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const first = await auth.accessToken()
    await new Promise((resolve) => setTimeout(resolve, 1100)) // JWTs issued within the same second are equal
    const refreshed = await auth.refresh()
    expect(Redacted.value(refreshed.accessToken)).not.toBe(first)
    await auth.logout()
    sandbox.resetStats()
    await auth.accessToken() // a non-interactive flow simply runs again
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
  })

  it("PKCE through the HTTP metadata endpoints, the user logging in from onUrl", async () => {
    await using auth = await createAuthClient({
      endpoint: sandbox.adminHttp,
      authMode: "Pkce",
      keyring: "memory",
      openBrowser: false,
      onUrl: (url) => void UserAgent.authorize(url, sandbox.user),
      // The sandbox announces Flyte's fixed redirect port; an ephemeral one keeps parallel runs apart.
      redirectUri: "http://127.0.0.1:0/callback",
      env
    })
    const credentials = await auth.credentials()
    expect(credentials.refreshToken).toBeDefined()
    const response = await auth.fetch(whoami())
    expect(await response.json()).toMatchObject({ subject: sandbox.user.subject })
  })

  it("device flow with onDeviceCode, then a refresh with the rotated refresh token", async () => {
    await using auth = await createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      authMode: "DeviceFlow",
      keyring: "memory",
      onDeviceCode: (prompt) => void UserAgent.approveDevice(prompt, sandbox.user),
      env
    })
    const first = await auth.credentials()
    sandbox.resetStats()
    const refreshed = await auth.refresh()
    expect(sandbox.stats().tokenRequests.refresh_token).toBe(1)
    expect(Redacted.value(refreshed.refreshToken!)).not.toBe(Redacted.value(first.refreshToken!))
  })

  it("rejects with the tagged error itself, without the secret in its message", async () => {
    const secret = "wrong-secret-7f3a9c"
    await using auth = await createAuthClient({ ...clientSecretOptions(), clientSecret: secret })
    const error = await auth.accessToken().then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "OAuthError", error: "invalid_client" })
    expect(String((error as Error).message)).not.toContain(secret)
    expect(JSON.stringify(error)).not.toContain(secret)
  })

  it("rejects createAuthClient itself on a bad configuration", async () => {
    const error = await createAuthClient({ endpoint: sandbox.adminGrpc, authMode: "Kerberos", env }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "Config" })
    expect((error as Error).message).toContain("Pkce")
  })

  it("an aborted call rejects promptly and leaves the client usable", async () => {
    await using auth = await createAuthClient({
      endpoint: sandbox.adminHttp,
      authMode: "Pkce",
      keyring: "memory",
      openBrowser: false,
      onUrl: () => undefined, // nobody logs in
      redirectUri: "http://127.0.0.1:0/callback",
      env
    })
    const controller = new AbortController()
    const pending = auth.accessToken({ signal: controller.signal })
    setTimeout(() => controller.abort(), 200)
    const error = await pending.then(() => undefined, (e: unknown) => e)
    expect(error).toMatchObject({ name: "AbortError" })
  })

  it("a call after close rejects with a clear error", async () => {
    const auth = await createAuthClient(clientSecretOptions())
    await auth.close()
    await expect(auth.accessToken()).rejects.toThrow("closed")
  })
})
