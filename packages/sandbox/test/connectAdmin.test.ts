/**
 * The Flyte 2 admin (`flyte2: true`) as a plain connect-node client sees it, with hand-made headers and tokens from
 * the sandbox IdP: every service over Connect, gRPC and gRPC-web, HTTP/2 (h2c) and HTTP/1.1 on one port, and the
 * revocation cutoff and proxy shared with the Flyte 1 admin.
 */
import type { Client, Interceptor, Transport } from "@connectrpc/connect"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox } from "@flyte-auth/sandbox"
import { UserAgent } from "@flyte-auth/sandbox"
import * as http from "node:http"
import { AuthMetadataService } from "../src/gen/flyteidl2/auth/auth_service_pb.js"
import { IdentityService } from "../src/gen/flyteidl2/auth/identity_pb.js"
import { ActionPhase } from "../src/gen/flyteidl2/common/phase_pb.js"
import { StateService } from "../src/gen/flyteidl2/workflow/state_service_pb.js"
import type { WatchResponse } from "../src/gen/flyteidl2/workflow/state_service_pb.js"
import { authorizeUrl, clientCredentials, exchangeCode, pkcePair, refresh, startLoopback } from "./helpers.js"

type Protocol = "connect" | "grpc" | "grpc-web"
const variants: ReadonlyArray<readonly [Protocol, "1.1" | "2"]> = [
  ["connect", "2"],
  ["connect", "1.1"],
  ["grpc", "2"],
  ["grpc-web", "2"],
  ["grpc-web", "1.1"]
]

/** A transport adding `headers` to every call. */
const transport = (
  protocol: Protocol,
  baseUrl: string,
  httpVersion: "1.1" | "2",
  headers: Record<string, string> = {}
): Transport => {
  const interceptors: Array<Interceptor> = [(next) => (request) => {
    for (const [key, value] of Object.entries(headers)) request.header.set(key, value)
    return next(request)
  }]
  switch (protocol) {
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion, interceptors })
    case "grpc": // HTTP/2 only
      return createGrpcTransport({ baseUrl, interceptors })
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion, interceptors })
  }
}

const rejection = (promise: Promise<unknown>): Promise<ConnectError> =>
  promise.then(
    () => {
      throw new Error("expected the call to fail")
    },
    (error: unknown) => ConnectError.from(error)
  )

const watch = async (client: Client<typeof StateService>): Promise<Array<WatchResponse>> => {
  const messages: Array<WatchResponse> = []
  for await (const message of client.watch({})) messages.push(message)
  return messages
}

const accessToken = async (sandbox: Sandbox.Service): Promise<string> => {
  const tokens = await clientCredentials(sandbox)
  expect(tokens.status).toBe(200)
  return tokens.json.access_token
}

describe("the Flyte 2 admin", () => {
  let sandbox: Sandbox.Service
  let url: string
  beforeAll(async () => {
    sandbox = await startSandbox({ flyte2: true, headerKey: "X-Flyte-Auth" })
    url = sandbox.adminConnect!
  })
  afterAll(() => sandbox.close())

  it("is not started by default", async () => {
    const flyte1 = await startSandbox()
    try {
      expect(flyte1.adminConnect).toBeUndefined()
      expect(flyte1.connectAdminStats().oauth2MetadataCalls).toBe(0)
    } finally {
      await flyte1.close()
    }
  })

  it.each(variants)("AuthMetadataService answers anonymously over %s (HTTP/%s)", async (protocol, version) => {
    const client = createClient(AuthMetadataService, transport(protocol, url, version))
    const [metadata, published] = await Promise.all([client.getOAuth2Metadata({}), client.getPublicClientConfig({})])
    expect(metadata).toMatchObject({
      issuer: sandbox.issuer,
      tokenEndpoint: sandbox.endpoints.token,
      authorizationEndpoint: sandbox.endpoints.authorization,
      deviceAuthorizationEndpoint: sandbox.endpoints.deviceAuthorization,
      jwksUri: sandbox.endpoints.jwks
    })
    expect(metadata.grantTypesSupported).toContain("client_credentials")
    expect(metadata.codeChallengeMethodsSupported).toEqual(["S256"])
    expect(published).toMatchObject({
      clientId: sandbox.clients.public.clientId,
      redirectUri: sandbox.redirectUri,
      scopes: [...sandbox.scopes],
      authorizationMetadataKey: "x-flyte-auth",
      serviceHttpEndpoint: url,
      audience: sandbox.audience,
      dataplaneDomain: new URL(url).host
    })
  })

  it.each(variants)("UserInfo needs the bearer token over %s (HTTP/%s)", async (protocol, version) => {
    const token = await accessToken(sandbox)
    const before = sandbox.connectAdminStats()
    const anonymous = createClient(IdentityService, transport(protocol, url, version))
    const refused = await rejection(anonymous.userInfo({}))
    expect(refused.code).toBe(Code.Unauthenticated)
    expect(refused.rawMessage).toMatch(/missing bearer token \(send "x-flyte-auth: Bearer <token>"\)/)
    const forged = createClient(
      IdentityService,
      transport(protocol, url, version, { "x-flyte-auth": `Bearer ${token.slice(0, -4)}AAAA` })
    )
    expect((await rejection(forged.userInfo({}))).code).toBe(Code.Unauthenticated)

    const client = createClient(
      IdentityService,
      transport(protocol, url, version, { "x-flyte-auth": `Bearer ${token}` })
    )
    const me = await client.userInfo({})
    const service = sandbox.clients.confidential.clientId
    expect(me).toMatchObject({ subject: service, name: "", email: "" })
    expect(me.additionalClaims).toEqual({ client_id: service, scope: "all" })
    // `authorization` works too, as on the Flyte 1 admin.
    const standard = createClient(
      IdentityService,
      transport(protocol, url, version, { authorization: `Bearer ${token}` })
    )
    expect((await standard.userInfo({})).subject).toBe(service)
    expect(sandbox.connectAdminStats()).toMatchObject({
      userInfoCalls: before.userInfoCalls + 4,
      authFailures: before.authFailures + 2,
      lastAuthFailure: expect.stringMatching(/^invalid token/)
    })
  })

  it.each(variants)(
    "Watch streams the current state, a sentinel and live updates over %s (HTTP/%s)",
    async (protocol, version) => {
      const token = await accessToken(sandbox)
      const anonymous = createClient(StateService, transport(protocol, url, version))
      expect((await rejection(watch(anonymous))).code).toBe(Code.Unauthenticated)

      const client = createClient(
        StateService,
        transport(protocol, url, version, { "x-flyte-auth": `Bearer ${token}` })
      )
      const messages = await watch(client)
      expect(messages.map((m) => m.message.case)).toEqual([
        "actionUpdate",
        "actionUpdate",
        "actionUpdate",
        "controlMessage",
        "actionUpdate",
        "actionUpdate",
        "actionUpdate"
      ])
      const updates = messages.flatMap((m) => m.message.case === "actionUpdate" ? [m.message.value] : [])
      expect(updates.map((u) => [u.actionId?.name, ActionPhase[u.phase]])).toEqual([
        ["a0-0", "SUCCEEDED"],
        ["a0-1", "RUNNING"],
        ["a0-2", "QUEUED"],
        ["a0-1", "SUCCEEDED"],
        ["a0-2", "RUNNING"],
        ["a0-2", "SUCCEEDED"]
      ])
      expect(updates[0]!.actionId?.run?.name).toBe("sandbox-run")
    }
  )

  it("Watch reports on the parent action it is asked about", async () => {
    const token = await accessToken(sandbox)
    const client = createClient(StateService, transport("connect", url, "2", { "x-flyte-auth": `Bearer ${token}` }))
    const run = { org: "o", project: "p", domain: "d", name: "r1" }
    const names: Array<string | undefined> = []
    for await (const message of client.watch({ filter: { case: "parentActionId", value: { run, name: "n0" } } })) {
      if (message.message.case === "actionUpdate") names.push(message.message.value.actionId?.name)
    }
    expect(names.slice(0, 3)).toEqual(["n0-0", "n0-1", "n0-2"])
  })

  it("rejectTokensIssuedBefore cuts off both admins' tokens; acceptAllTokens undoes it", async () => {
    const token = await accessToken(sandbox)
    const client = createClient(IdentityService, transport("connect", url, "2", { "x-flyte-auth": `Bearer ${token}` }))
    const state = createClient(StateService, transport("grpc", url, "2", { "x-flyte-auth": `Bearer ${token}` }))
    expect((await client.userInfo({})).subject).toBe(sandbox.clients.confidential.clientId)
    sandbox.rejectTokensIssuedBefore()
    try {
      const refused = await rejection(client.userInfo({}))
      expect(refused.code).toBe(Code.Unauthenticated)
      expect(refused.rawMessage).toBe("token was issued before the revocation cutoff")
      expect((await rejection(watch(state))).code).toBe(Code.Unauthenticated)
      const fresh = await accessToken(sandbox)
      const renewed = createClient(
        IdentityService,
        transport("connect", url, "2", { "x-flyte-auth": `Bearer ${fresh}` })
      )
      expect((await renewed.userInfo({})).subject).toBe(sandbox.clients.confidential.clientId)
    } finally {
      sandbox.acceptAllTokens()
    }
    expect((await client.userInfo({})).subject).toBe(sandbox.clients.confidential.clientId)
  })

  it("an unknown method is Unimplemented; the counters are the Flyte 2 admin's own", async () => {
    const token = await accessToken(sandbox)
    const client = createClient(StateService, transport("connect", url, "2", { "x-flyte-auth": `Bearer ${token}` }))
    expect((await rejection(client.get({}))).code).toBe(Code.Unimplemented)
    sandbox.resetStats()
    await createClient(AuthMetadataService, transport("grpc", url, "2")).getOAuth2Metadata({})
    await watch(client)
    expect(sandbox.stats().connectAdmin).toEqual({
      userInfoCalls: 0,
      oauth2MetadataCalls: 1,
      publicClientConfigCalls: 0,
      watchCalls: 1,
      authFailures: 0,
      lastAuthFailure: undefined,
      proxyRejections: 0
    })
    expect(sandbox.stats().admin.oauth2MetadataCalls).toBe(0)
  })
})

describe("the Flyte 2 admin and a user's tokens", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({ flyte2: true, autoApprove: true })
  })
  afterAll(() => sandbox.close())

  it("UserInfo names the user; a cut-off token is replaced by a refresh until revokeRefreshTokens", async () => {
    const loopback = await startLoopback()
    const { challenge, verifier } = pkcePair()
    await UserAgent.authorize(authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge }))
    const code = (await loopback.received).searchParams.get("code")!
    await loopback.close()
    const tokens = await exchangeCode(sandbox, code, loopback.redirectUri, verifier)
    expect(tokens.status).toBe(200)
    const identity = (token: string) =>
      createClient(
        IdentityService,
        transport("grpc-web", sandbox.adminConnect!, "1.1", { [sandbox.headerKey]: `Bearer ${token}` })
      )
    expect(await identity(tokens.json.access_token).userInfo({})).toMatchObject({
      subject: "sandbox|demo",
      name: "Demo User",
      preferredUsername: "demo",
      email: "demo@flyte-sandbox.local"
    })

    sandbox.rejectTokensIssuedBefore()
    expect((await rejection(identity(tokens.json.access_token).userInfo({}))).code).toBe(Code.Unauthenticated)
    const refreshed = await refresh(sandbox, tokens.json.refresh_token)
    expect(refreshed.status).toBe(200)
    expect((await identity(refreshed.json.access_token).userInfo({})).subject).toBe("sandbox|demo")

    expect(sandbox.revokeRefreshTokens()).toBeGreaterThan(0) // the rotated-out one is still stored, consumed
    const revoked = await refresh(sandbox, refreshed.json.refresh_token)
    expect(revoked).toMatchObject({ status: 400, json: { error: "invalid_grant" } })
    // The access token already issued lives on until it expires.
    expect((await identity(refreshed.json.access_token).userInfo({})).subject).toBe("sandbox|demo")
  })
})

describe("the Flyte 2 admin behind the proxy", () => {
  let sandbox: Sandbox.Service
  let url: string
  const proxy = { "proxy-authorization": "Bearer proxy-token-2" }
  beforeAll(async () => {
    sandbox = await startSandbox({ flyte2: true, proxyToken: "proxy-token-2" })
    url = sandbox.adminConnect!
  })
  afterAll(() => sandbox.close())

  it.each(variants)("refuses every call without the proxy token over %s (HTTP/%s)", async (protocol, version) => {
    const before = sandbox.connectAdminStats().proxyRejections
    const refused = await rejection(
      createClient(AuthMetadataService, transport(protocol, url, version)).getOAuth2Metadata({})
    )
    expect(refused.rawMessage).toMatch(/\b407\b/)
    if (protocol === "connect") {
      // A Connect unary client reads the proxy's error body.
      expect(refused.code).toBe(Code.Unauthenticated)
      expect(refused.rawMessage).toBe("proxy authentication required (407): no proxy-authorization")
    }
    const wrong = createClient(
      AuthMetadataService,
      transport(protocol, url, version, { "proxy-authorization": "Bearer x" })
    )
    expect((await rejection(wrong.getPublicClientConfig({}))).rawMessage).toMatch(/\b407\b/)

    const token = await accessToken(sandbox)
    const through = transport(protocol, url, version, { ...proxy, [sandbox.headerKey]: `Bearer ${token}` })
    expect((await createClient(AuthMetadataService, through).getOAuth2Metadata({})).issuer).toBe(sandbox.issuer)
    expect((await createClient(IdentityService, through).userInfo({})).subject).toBe(
      sandbox.clients.confidential.clientId
    )
    expect(await watch(createClient(StateService, through))).toHaveLength(7)
    expect(sandbox.connectAdminStats().proxyRejections).toBe(before + 2)
  })

  it("answers HTTP 407 with proxy-authenticate", async () => {
    const answer = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const request = http.request(`${url}/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata`, {
          method: "POST",
          agent: false,
          headers: { "content-type": "application/json" }
        }, (response) => {
          let body = ""
          response.on("data", (chunk) => body += chunk)
          response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body }))
        })
        request.on("error", reject)
        request.end("{}")
      }
    )
    expect(answer.status).toBe(407)
    expect(answer.headers["proxy-authenticate"]).toMatch(/^Bearer /)
    expect(JSON.parse(answer.body)).toEqual({
      code: "unauthenticated",
      message: "proxy authentication required (407): no proxy-authorization"
    })
  })
})
