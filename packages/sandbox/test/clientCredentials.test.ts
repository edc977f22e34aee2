import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox } from "@flyte-auth/sandbox"
import * as grpc from "@grpc/grpc-js"
import { basicAuth, clientCredentials, decodeJwt, tokenRequest, userInfo, whoami } from "./helpers.js"

describe("client credentials", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({
      confidentialClient: { clientId: "flyte propeller+1", clientSecret: "s3cr3t:%&+/=" }
    })
  })
  afterAll(() => sandbox.close())

  it("client_secret_basic yields a JWT access token for the admin audience; whoami works", async () => {
    const tokens = await clientCredentials(sandbox)
    expect(tokens.status).toBe(200)
    expect(tokens.json).toMatchObject({ token_type: "Bearer", expires_in: 600, scope: "all" })
    expect(tokens.json.refresh_token).toBeUndefined()
    expect(decodeJwt(tokens.json.access_token)).toMatchObject({
      iss: sandbox.issuer,
      aud: sandbox.audience,
      sub: "flyte propeller+1",
      client_id: "flyte propeller+1"
    })
    const me = await whoami(sandbox, tokens.json.access_token)
    expect(me.status).toBe(200)
    expect(me.json).toEqual({ subject: "flyte propeller+1", client_id: "flyte propeller+1", scope: "all" })
    expect((await userInfo(sandbox, tokens.json.access_token)).value?.subject).toBe("flyte propeller+1")
  })

  it("client_secret_post works too", async () => {
    const tokens = await tokenRequest(sandbox, {
      grant_type: "client_credentials",
      client_id: sandbox.clients.confidential.clientId,
      client_secret: sandbox.clients.confidential.clientSecret
    })
    expect(tokens.status).toBe(200)
    expect((await whoami(sandbox, tokens.json.access_token)).status).toBe(200)
  })

  it("basic auth must form-urlencode id and secret (RFC 6749 §2.3.1)", async () => {
    const { clientId, clientSecret } = sandbox.clients.confidential
    const raw = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`
    const unencoded = await tokenRequest(sandbox, { grant_type: "client_credentials" }, { authorization: raw })
    // "%&" is not valid form-urlencoding: invalid_request; other unencoded ids/secrets fail as invalid_client.
    expect(unencoded.status).toBe(400)
    expect(unencoded.json.error).toBe("invalid_request")
    const plusInId = `Basic ${Buffer.from(`${clientId}:${encodeURIComponent(clientSecret)}`).toString("base64")}`
    const unencodedId = await tokenRequest(sandbox, { grant_type: "client_credentials" }, { authorization: plusInId })
    expect(unencodedId.status).toBe(401)
    expect(unencodedId.json.error).toBe("invalid_client")
    const wrongSecret = await tokenRequest(sandbox, { grant_type: "client_credentials" }, {
      authorization: basicAuth(clientId, "nope")
    })
    expect(wrongSecret.status).toBe(401)
    expect(wrongSecret.json.error).toBe("invalid_client")
  })

  it("whoami: 401 with WWW-Authenticate: Bearer when the token is missing or invalid", async () => {
    const missing = await whoami(sandbox)
    expect(missing.status).toBe(401)
    expect(missing.wwwAuthenticate).toBe(`Bearer realm="flyte-sandbox"`)
    expect(missing.json.error).toBe("missing_token")

    const tokens = await clientCredentials(sandbox)
    const tampered = tokens.json.access_token.slice(0, -4) + "AAAA"
    const invalid = await whoami(sandbox, tampered)
    expect(invalid.status).toBe(401)
    expect(invalid.wwwAuthenticate).toMatch(/^Bearer realm="flyte-sandbox", error="invalid_token"/)
    expect((await userInfo(sandbox, tampered)).error?.code).toBe(grpc.status.UNAUTHENTICATED)
  })

  it("rejectTokensIssuedBefore(date) spares tokens issued after the date", async () => {
    const before = await clientCredentials(sandbox)
    sandbox.rejectTokensIssuedBefore(new Date())
    const after = await clientCredentials(sandbox)
    expect((await whoami(sandbox, before.json.access_token)).status).toBe(401)
    expect((await whoami(sandbox, after.json.access_token)).status).toBe(200)
    sandbox.acceptAllTokens()
    expect((await whoami(sandbox, before.json.access_token)).status).toBe(200)
  })

  it("failNextTokenRequests answers with the injected failure, then recovers", async () => {
    sandbox.resetStats()
    sandbox.failNextTokenRequests(1)
    sandbox.failNextTokenRequests(1, { status: 502, body: "<html><body>Bad gateway</body></html>" })
    const first = await clientCredentials(sandbox)
    expect(first.status).toBe(503)
    expect(first.json.error).toBe("temporarily_unavailable")
    const second = await fetch(sandbox.endpoints.token, { method: "POST", body: "grant_type=client_credentials" })
    expect(second.status).toBe(502)
    expect(second.headers.get("content-type")).toMatch(/text\/html/)
    expect(await second.text()).toContain("Bad gateway")
    expect((await clientCredentials(sandbox)).status).toBe(200)
    expect(sandbox.stats()).toMatchObject({
      injectedTokenFailures: 2,
      tokenRequests: { client_credentials: 3 },
      tokenErrors: { client_credentials: 2 }
    })
  })
})

describe("token expiry", () => {
  it("the admin rejects an expired token", async () => {
    // JWT times are whole seconds: a 2 s token is valid for 1-2 s.
    const sandbox = await startSandbox({ tokenTtlSeconds: 2 })
    try {
      const tokens = await clientCredentials(sandbox)
      expect(tokens.json.expires_in).toBe(2)
      expect((await whoami(sandbox, tokens.json.access_token)).status).toBe(200)
      const exp = decodeJwt(tokens.json.access_token).exp as number
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 50))
      const expired = await whoami(sandbox, tokens.json.access_token)
      expect(expired.status).toBe(401)
      expect(expired.json.error_description).toBe("token expired")
      const grpcExpired = await userInfo(sandbox, tokens.json.access_token)
      expect(grpcExpired.error?.code).toBe(grpc.status.UNAUTHENTICATED)
      expect(grpcExpired.error?.details).toBe("token expired")
    } finally {
      await sandbox.close()
    }
  })
})
