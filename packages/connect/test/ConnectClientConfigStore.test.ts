/**
 * The Flyte 2 remote configuration against a real connect-node server implementing `flyteidl2.auth.
 * AuthMetadataService` (the descriptors of `@flyteorg/flyteidl2`), over the Connect, gRPC and gRPC-web protocols;
 * and against servers that are not that service.
 */
import { create } from "@bufbuild/protobuf"
import { Code, ConnectError } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { ConnectClientConfigStore } from "@flyte-auth/connect"
import * as ClientConfig from "@flyte-auth/core/ClientConfig"
import { Effect } from "effect"
import * as Http2 from "node:http2"
import type * as Net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import {
  AuthMetadataService,
  GetOAuth2MetadataResponseSchema,
  GetPublicClientConfigResponseSchema
} from "../src/gen/flyteidl2/auth/auth_service_pb.js"
import { protocols, transport } from "./utils/echo.js"

const closers: Array<() => void> = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/** An HTTP/2 (h2c) server on 127.0.0.1:0 with `handler`; every session is destroyed after the test. */
const listen = async (handler: (request: Http2.Http2ServerRequest, response: Http2.Http2ServerResponse) => void) => {
  const server = Http2.createServer(handler)
  const sessions = new Set<Http2.ServerHttp2Session>()
  server.on("session", (session) => sessions.add(session))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  closers.push(() => {
    server.close()
    for (const session of sessions) session.destroy()
  })
  return `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`
}

interface Seen {
  readonly method: string
  readonly authorization: string | null
}

/** A Flyte 2 AuthMetadataService; `fail(method, index)` may throw for a call. */
const startFlyte2 = (fail: (method: string, index: number) => ConnectError | undefined = () => undefined) => {
  const seen: Array<Seen> = []
  const answer = <A>(method: string, headers: Headers, value: A): A => {
    seen.push({ method, authorization: headers.get("authorization") ?? headers.get("flyte-authorization") })
    const error = fail(method, seen.filter((s) => s.method === method).length - 1)
    if (error !== undefined) throw error
    return value
  }
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(AuthMetadataService, {
        getOAuth2Metadata: (_request, context) =>
          answer(
            "GetOAuth2Metadata",
            context.requestHeader,
            create(GetOAuth2MetadataResponseSchema, {
              issuer: "https://idp.example.com",
              authorizationEndpoint: "https://idp.example.com/authorize",
              tokenEndpoint: "https://idp.example.com/token",
              deviceAuthorizationEndpoint: "",
              jwksUri: "https://idp.example.com/jwks",
              tokenEndpointAuthMethodsSupported: ["client_secret_basic"]
            })
          ),
        getPublicClientConfig: (_request, context) =>
          answer(
            "GetPublicClientConfig",
            context.requestHeader,
            create(GetPublicClientConfigResponseSchema, {
              clientId: "flyte2-cli",
              redirectUri: "http://localhost:53593/callback",
              scopes: ["all", "offline_access"],
              authorizationMetadataKey: "Flyte-Authorization",
              serviceHttpEndpoint: "",
              audience: "",
              dataplaneDomain: "dataplane.example.com"
            })
          )
      })
  })
  return listen(handler).then((baseUrl) => ({ baseUrl, seen }))
}

describe.each(protocols)("ConnectClientConfigStore over %s", (protocol) => {
  it("maps both answers (empty strings absent), anonymously, once for every get", async () => {
    const { baseUrl, seen } = await startFlyte2()
    const [first, second] = await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* ConnectClientConfigStore.make({
          endpoint: baseUrl,
          transport: transport(protocol, baseUrl, [])
        })
        return yield* Effect.all([store.get, store.get], { concurrency: 2 })
      }).pipe(Effect.scoped)
    )
    expect(second).toBe(first)
    expect(first).toBeInstanceOf(ClientConfig.ClientConfig)
    expect(first).toMatchObject({
      tokenEndpoint: "https://idp.example.com/token",
      authorizationEndpoint: "https://idp.example.com/authorize",
      clientId: "flyte2-cli",
      redirectUri: "http://localhost:53593/callback",
      scopes: ["all", "offline_access"],
      headerKey: "flyte-authorization",
      issuer: "https://idp.example.com",
      jwksUri: "https://idp.example.com/jwks",
      tokenEndpointAuthMethods: ["client_secret_basic"],
      dataplaneDomain: "dataplane.example.com"
    })
    expect(first.deviceAuthorizationEndpoint).toBeUndefined()
    expect(first.audience).toBeUndefined()
    expect(first.serviceHttpEndpoint).toBeUndefined()
    expect(seen.map((s) => s.method).sort()).toEqual(["GetOAuth2Metadata", "GetPublicClientConfig"])
    expect(seen.every((s) => s.authorization === null)).toBe(true)
  })

  it("retries a transient failure; overrides win", async () => {
    const { baseUrl, seen } = await startFlyte2((method, index) =>
      method === "GetPublicClientConfig" && index === 0 ? new ConnectError("restarting", Code.Unavailable) : undefined
    )
    const config = await Effect.runPromise(
      ConnectClientConfigStore.fetchConfig({
        endpoint: baseUrl,
        transport: transport(protocol, baseUrl, []),
        overrides: { clientId: "mine", headerKey: "X-Token" }
      })
    )
    expect(config).toMatchObject({ clientId: "mine", headerKey: "x-token" })
    expect(seen.filter((s) => s.method === "GetPublicClientConfig")).toHaveLength(2)
  })
})

describe("ConnectClientConfigStore against what is not Flyte 2's AuthMetadataService", () => {
  it("a server without the service: a Config error saying so", async () => {
    const baseUrl = await listen(connectNodeAdapter({ routes: () => {} }))
    const error = await Effect.runPromise(
      Effect.flip(
        ConnectClientConfigStore.fetchConfig({ endpoint: baseUrl, transport: transport("connect", baseUrl, []) })
      )
    )
    expect(error.reason).toBe("Config")
    expect(error.message).toContain("does not implement flyteidl2.auth.AuthMetadataService")
  })

  it("an HTML page (a proxy's login page): an InvalidResponse error that says it is not ConnectRPC", async () => {
    const baseUrl = await listen((_request, response) => {
      response.writeHead(200, { "content-type": "text/html" }).end("<html><body>Sign in</body></html>")
    })
    for (const protocol of protocols) {
      const error = await Effect.runPromise(
        Effect.flip(
          ConnectClientConfigStore.fetchConfig({ endpoint: baseUrl, transport: transport(protocol, baseUrl, []) })
        )
      )
      expect({ protocol, reason: error.reason }).toEqual({ protocol, reason: "InvalidResponse" })
      expect(error.message).toContain("not ConnectRPC")
    }
  })
})
