import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox } from "@flyte-auth/sandbox"
import { grpcCall } from "./helpers.js"

describe("metadata", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox()
  })
  afterAll(() => sandbox.close())

  it("listens on 127.0.0.1 with ephemeral ports", () => {
    expect(sandbox.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(sandbox.adminHttp).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(sandbox.adminGrpc).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(sandbox.headerKey).toBe("flyte-authorization")
    expect(sandbox.audience).toBe("http://flyte-admin")
  })

  it("GetOAuth2Metadata over gRPC, without a token", async () => {
    const { error, value } = await grpcCall(sandbox.adminGrpc, "AuthMetadataService", "GetOAuth2Metadata")
    expect(error).toBeUndefined()
    expect(value).toMatchObject({
      issuer: sandbox.issuer,
      authorization_endpoint: `${sandbox.issuer}/auth`,
      token_endpoint: `${sandbox.issuer}/token`,
      device_authorization_endpoint: `${sandbox.issuer}/device/auth`,
      jwks_uri: `${sandbox.issuer}/jwks`,
      code_challenge_methods_supported: ["S256"],
      response_types_supported: ["code"]
    })
    expect(value!.grant_types_supported).toEqual(expect.arrayContaining([
      "authorization_code",
      "refresh_token",
      "client_credentials",
      "urn:ietf:params:oauth:grant-type:device_code"
    ]))
    expect(value!.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(["client_secret_basic", "client_secret_post", "none"])
    )
    expect(value!.scopes_supported).toEqual(expect.arrayContaining(["openid", "offline_access", "all"]))
  })

  it("GetPublicClientConfig over gRPC, without a token", async () => {
    const { error, value } = await grpcCall(sandbox.adminGrpc, "AuthMetadataService", "GetPublicClientConfig")
    expect(error).toBeUndefined()
    expect(value).toEqual({
      client_id: "flytectl",
      redirect_uri: "http://localhost:53593/callback",
      scopes: ["all", "offline_access"],
      authorization_metadata_key: "flyte-authorization",
      service_http_endpoint: sandbox.adminHttp,
      audience: "http://flyte-admin"
    })
  })

  it("HTTP twins: /.well-known/oauth-authorization-server and /config/v1/flyte_client", async () => {
    const metadata = await (await fetch(`${sandbox.adminHttp}/.well-known/oauth-authorization-server`)).json()
    expect(metadata).toMatchObject({
      issuer: sandbox.issuer,
      authorization_endpoint: sandbox.endpoints.authorization,
      token_endpoint: sandbox.endpoints.token,
      device_authorization_endpoint: sandbox.endpoints.deviceAuthorization,
      jwks_uri: sandbox.endpoints.jwks
    })
    const config = await (await fetch(`${sandbox.adminHttp}/config/v1/flyte_client`)).json()
    expect(config).toEqual({
      client_id: sandbox.clients.public.clientId,
      redirect_uri: sandbox.redirectUri,
      scopes: [...sandbox.scopes],
      authorization_metadata_key: sandbox.headerKey,
      service_http_endpoint: sandbox.adminHttp,
      audience: sandbox.audience
    })
    expect((await fetch(`${sandbox.adminHttp}/nope`)).status).toBe(404)
  })

  it("the IdP serves RFC 8414 and OpenID discovery documents", async () => {
    const rfc8414 = await (await fetch(`${sandbox.issuer}/.well-known/oauth-authorization-server`)).json() as any
    const oidc = await (await fetch(`${sandbox.issuer}/.well-known/openid-configuration`)).json()
    expect(rfc8414).toEqual(oidc)
    expect(rfc8414.issuer).toBe(sandbox.issuer)
    const jwks = await (await fetch(sandbox.endpoints.jwks)).json() as any
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" })
    expect(jwks.keys[0].d).toBeUndefined()
  })

  it("counts metadata calls", () => {
    const stats = sandbox.adminStats()
    expect(stats.oauth2MetadataCalls).toBe(2)
    expect(stats.publicClientConfigCalls).toBe(2)
  })
})

describe("metadata options", () => {
  it("deviceFlow: false removes the device endpoint (an empty proto string over gRPC); headerKey is configurable", async () => {
    const sandbox = await startSandbox({ deviceFlow: false, headerKey: "X-Custom-Auth", scopes: ["all"] })
    try {
      expect(sandbox.endpoints.deviceAuthorization).toBeUndefined()
      const metadata = await grpcCall(sandbox.adminGrpc, "AuthMetadataService", "GetOAuth2Metadata")
      expect(metadata.value!.device_authorization_endpoint).toBe("")
      expect(metadata.value!.grant_types_supported).not.toContain("urn:ietf:params:oauth:grant-type:device_code")
      const config = await grpcCall(sandbox.adminGrpc, "AuthMetadataService", "GetPublicClientConfig")
      expect(config.value).toMatchObject({ authorization_metadata_key: "x-custom-auth", scopes: ["all"] })
    } finally {
      await sandbox.close()
    }
  })

  it("refuses a non-loopback host", async () => {
    await expect(startSandbox({ host: "0.0.0.0" })).rejects.toThrow(/loopback/)
  })
})
