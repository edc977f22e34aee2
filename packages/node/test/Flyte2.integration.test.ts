/**
 * `AuthLayer` and the facade against a Flyte 2 endpoint: a real connect-node server implementing
 * `flyteidl2.auth.AuthMetadataService` (publishing the sandbox's real IdP) and `IdentityService/UserInfo` (which
 * checks the token at the IdP), next to the sandbox's Flyte 1 admin (gRPC and HTTP). Detection, the explicit
 * `flyte` option, and API keys.
 */
import { create } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { ConnectAuth } from "@flyte-auth/connect"
import {
  AuthMetadataService,
  GetOAuth2MetadataResponseSchema,
  GetPublicClientConfigResponseSchema
} from "@flyte-auth/connect/gen/flyteidl2/auth/auth_service_pb"
import { IdentityService, UserInfoResponseSchema } from "@flyte-auth/connect/gen/flyteidl2/auth/identity_pb"
import { Authenticator } from "@flyte-auth/core"
import { AuthLayer, createAuthClient } from "@flyte-auth/node"
import * as NodeConnectTransport from "@flyte-auth/node/NodeConnectTransport"
import { type Sandbox, startSandbox } from "@flyte-auth/sandbox"
import { Effect } from "effect"
import * as jose from "jose"
import * as Fs from "node:fs"
import * as Http2 from "node:http2"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

let sandbox: Sandbox.Service
let flyte2: { readonly endpoint: string; readonly calls: Array<string>; readonly close: () => void }
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-flyte2-"))
// An empty Flyte config: nothing of this machine's config applies.
const configFile = Path.join(dir, "config.yaml")
Fs.writeFileSync(configFile, "")

beforeAll(async () => {
  sandbox = await startSandbox()
  flyte2 = await startFlyte2(sandbox)
})
afterAll(async () => {
  flyte2?.close()
  await sandbox?.close()
  Fs.rmSync(dir, { recursive: true, force: true })
})

/** A Flyte-2-like admin (h2c, all three protocols) publishing the sandbox IdP; UserInfo asks the IdP. */
const startFlyte2 = async (sandbox: Sandbox.Service) => {
  const calls: Array<string> = []
  const discovery = await (await fetch(`${sandbox.issuer}/.well-known/openid-configuration`)).json() as Record<
    string,
    string
  >
  const jwks = jose.createRemoteJWKSet(new URL(discovery.jwks_uri!))
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(AuthMetadataService, {
        getOAuth2Metadata: () => {
          calls.push("GetOAuth2Metadata")
          return create(GetOAuth2MetadataResponseSchema, {
            issuer: discovery.issuer,
            authorizationEndpoint: discovery.authorization_endpoint,
            tokenEndpoint: discovery.token_endpoint,
            deviceAuthorizationEndpoint: discovery.device_authorization_endpoint,
            jwksUri: discovery.jwks_uri,
            tokenEndpointAuthMethodsSupported: ["client_secret_basic"]
          })
        },
        getPublicClientConfig: () => {
          calls.push("GetPublicClientConfig")
          return create(GetPublicClientConfigResponseSchema, {
            clientId: sandbox.clients.public.clientId,
            redirectUri: sandbox.redirectUri,
            scopes: [...sandbox.scopes],
            authorizationMetadataKey: sandbox.headerKey,
            audience: sandbox.audience,
            dataplaneDomain: "dataplane.example.com"
          })
        }
      })
      router.service(IdentityService, {
        userInfo: async (_request, context) => {
          calls.push("UserInfo")
          const header = context.requestHeader.get(sandbox.headerKey) ?? ""
          const token = /^Bearer (.+)$/.exec(header)?.[1]
          if (token === undefined) throw new ConnectError("no access token", Code.Unauthenticated)
          const claims = await jose.jwtVerify(token, jwks, { issuer: sandbox.issuer, audience: sandbox.audience })
            .then(({ payload }) => payload, () => undefined)
          if (claims === undefined) throw new ConnectError("the access token is not valid", Code.Unauthenticated)
          return create(UserInfoResponseSchema, { subject: String(claims.sub ?? claims.client_id ?? "") })
        }
      })
    }
  })
  const server = Http2.createServer(handler)
  const sessions = new Set<Http2.ServerHttp2Session>()
  server.on("session", (session) => sessions.add(session))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    endpoint: `127.0.0.1:${(server.address() as Net.AddressInfo).port}`,
    calls,
    close: () => {
      server.close()
      for (const session of sessions) session.destroy()
    }
  }
}

const apiKeyOf = (endpoint: string, clientId: string, secret: string, org = "None") =>
  Buffer.from(`${endpoint}:${clientId}:${secret}:${org}`).toString("base64")

const clientSecretOptions = (): AuthLayer.Options => ({
  insecure: true,
  authMode: "ClientSecret",
  clientId: sandbox.clients.confidential.clientId,
  clientSecret: sandbox.clients.confidential.clientSecret,
  keyring: "memory",
  env: {},
  configFile
})

const flyteOf = (options: AuthLayer.Options) =>
  Effect.gen(function*() {
    const settings = yield* AuthLayer.Settings
    const auth = yield* Authenticator.Authenticator
    const config = yield* settings.clientConfig
    yield* auth.accessToken
    return { flyte: yield* settings.flyte, config }
  }).pipe(Effect.provide(AuthLayer.layer(options)), Effect.scoped, Effect.runPromise)

describe("AuthLayer on a Flyte 2 endpoint", () => {
  it("detects Flyte 2, Flyte 1 over gRPC and Flyte 1 over HTTP, each from one metadata fetch", async () => {
    flyte2.calls.length = 0
    const two = await flyteOf({ ...clientSecretOptions(), endpoint: `dns:///${flyte2.endpoint}` })
    expect(two.flyte).toBe(2)
    expect(two.config.headerKey).toBe(sandbox.headerKey)
    expect(two.config.dataplaneDomain).toBe("dataplane.example.com")
    expect(flyte2.calls.sort()).toEqual(["GetOAuth2Metadata", "GetPublicClientConfig"])

    sandbox.resetStats()
    const grpc = await flyteOf({ ...clientSecretOptions(), endpoint: sandbox.adminGrpc })
    expect(grpc.flyte).toBe(1)
    expect(grpc.config.headerKey).toBe(sandbox.headerKey)
    const http = await flyteOf({ ...clientSecretOptions(), endpoint: sandbox.adminHttp })
    expect(http.flyte).toBe(1)
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(2)
  })

  it("flyte: 2 skips detection; flyte: 1 on a Flyte 2 endpoint fails as Flyte 1 would", async () => {
    flyte2.calls.length = 0
    expect((await flyteOf({ ...clientSecretOptions(), endpoint: flyte2.endpoint, flyte: 2 })).flyte).toBe(2)
    // Flyte 2 explicitly on a Flyte 1 endpoint: no fallback, an error that names the Flyte 2 service.
    await expect(flyteOf({ ...clientSecretOptions(), endpoint: sandbox.adminGrpc, flyte: 2 })).rejects.toThrow(
      /flyteidl2\.auth\.AuthMetadataService/
    )
    await expect(flyteOf({ ...clientSecretOptions(), endpoint: flyte2.endpoint, flyte: 1 })).rejects.toThrow(
      /AuthMetadataService/
    )
    expect(flyte2.calls).not.toContain("UserInfo")
  })

  it("an authenticated Connect call: the interceptor over the layer's Authenticator", async () => {
    const subject = await Effect.gen(function*() {
      const transport = yield* NodeConnectTransport.make({
        endpoint: flyte2.endpoint,
        insecure: true,
        interceptors: [yield* ConnectAuth.interceptor]
      })
      return yield* Effect.promise(() => createClient(IdentityService, transport).userInfo({}))
    }).pipe(
      Effect.provide(AuthLayer.layer({ ...clientSecretOptions(), endpoint: flyte2.endpoint })),
      Effect.scoped,
      Effect.runPromise
    )
    expect(subject.subject).toBe(sandbox.clients.confidential.clientId)
  })
})

describe("API keys", () => {
  it("an API key (option or FLYTE_API_KEY) is a client-credentials login against the key's endpoint", async () => {
    const key = apiKeyOf(
      `dns:///${flyte2.endpoint}`,
      sandbox.clients.confidential.clientId,
      sandbox.clients.confidential.clientSecret
    )
    const base = { insecure: true, keyring: "memory" as const, configFile }
    for (const options of [{ ...base, env: {}, apiKey: key }, { ...base, env: { FLYTE_API_KEY: key } }]) {
      const result = await Effect.gen(function*() {
        const settings = yield* AuthLayer.Settings
        const credentials = yield* Effect.flatMap(Authenticator.Authenticator, (auth) => auth.credentials)
        return { settings, flyte: yield* settings.flyte, credentials }
      }).pipe(Effect.provide(AuthLayer.layer(options)), Effect.scoped, Effect.runPromise)
      expect(result.settings.endpoint).toBe(flyte2.endpoint)
      expect(result.settings.authMode).toBe("ClientSecret")
      expect(result.flyte).toBe(2)
    }
  })

  it("a malformed key is a Config error that does not quote the key", async () => {
    const key = Buffer.from("only-an-endpoint").toString("base64")
    const error = await Effect.flip(AuthLayer.resolve({ env: { FLYTE_API_KEY: key } })).pipe(Effect.runPromise)
    expect(error.reason).toBe("Config")
    expect(error.description).toMatch(/FLYTE_API_KEY is not a valid Flyte API key/)
    expect(error.description).not.toContain(key)
  })

  it("the facade: createAuthClient({ apiKey }) hands out the key's client's token; Connect calls carry it", async () => {
    const key = apiKeyOf(
      flyte2.endpoint,
      sandbox.clients.confidential.clientId,
      sandbox.clients.confidential.clientSecret
    )
    await using auth = await createAuthClient({
      apiKey: key,
      insecure: true,
      keyring: "memory",
      env: {},
      configFile
    })
    const transport = await Effect.runPromise(
      NodeConnectTransport.make({
        endpoint: flyte2.endpoint,
        insecure: true,
        interceptors: [ConnectAuth.authInterceptor(auth)]
      })
    )
    const answer = await createClient(IdentityService, transport).userInfo({})
    expect(answer.subject).toBe(sandbox.clients.confidential.clientId)
  })
})
