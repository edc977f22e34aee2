import { describe, expect, it, layer } from "@effect/vitest"
import { Sandbox, startSandbox, UserAgent } from "@flyte-auth/sandbox"
import * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as http from "node:http"
import * as http2 from "node:http2"
import * as net from "node:net"
import {
  authorizeUrl,
  clientCredentials,
  exchangeCode,
  grpcCall,
  pkcePair,
  refresh,
  startLoopback,
  userInfo,
  whoami
} from "./helpers.js"

const port = (address: string) => Number(new URL(address.includes("://") ? address : `http://${address}`).port)

const bindHttp = (p: number) =>
  new Promise<void>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: p, exclusive: true }, () => server.close(() => resolve()))
  })

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const bindGrpc = (p: number) =>
  new Promise<void>((resolve, reject) => {
    const server = new grpc.Server()
    server.bindAsync(`127.0.0.1:${p}`, grpc.ServerCredentials.createInsecure(), (error) => {
      server.forceShutdown()
      if (error) reject(error)
      else resolve()
    })
  })

describe("lifecycle", () => {
  it("close() frees every port, even with keep-alive connections open", async () => {
    const sandbox = await startSandbox()
    // Open keep-alive connections to each server.
    const agent = new http.Agent({ keepAlive: true })
    await new Promise<void>((resolve) =>
      http.get(`${sandbox.issuer}/jwks`, { agent }, (r) => r.resume().on("end", resolve))
    )
    await new Promise<void>((resolve) =>
      http.get(`${sandbox.adminHttp}/config/v1/flyte_client`, { agent }, (r) => r.resume().on("end", resolve))
    )
    const client = new grpc.Client(sandbox.adminGrpc, grpc.credentials.createInsecure())
    await grpcCall(sandbox.adminGrpc, "AuthMetadataService", "GetPublicClientConfig")
    const ports = [port(sandbox.issuer), port(sandbox.adminHttp), port(sandbox.adminGrpc)]

    await sandbox.close()
    await sandbox.close() // idempotent
    await bindHttp(ports[0]!)
    await bindHttp(ports[1]!)
    await bindGrpc(ports[2]!)
    client.close()
    agent.destroy()

    // ... and a new sandbox can take the same fixed ports.
    const again = await startSandbox({ idpPort: ports[0]!, adminHttpPort: ports[1]!, adminGrpcPort: ports[2]! })
    expect(again.issuer).toBe(`http://127.0.0.1:${ports[0]}`)
    expect(again.adminHttp).toBe(`http://127.0.0.1:${ports[1]}`)
    expect(again.adminGrpc).toBe(`127.0.0.1:${ports[2]}`)
    await again.close()
  })

  it("close() frees the Flyte 2 admin's port with HTTP/1.1 keep-alive and HTTP/2 sessions open; it can be reused", async () => {
    const sandbox = await startSandbox({ flyte2: true })
    const url = sandbox.adminConnect!
    const agent = new http.Agent({ keepAlive: true })
    const method = "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig"
    await new Promise<void>((resolve, reject) =>
      http.request(
        `${url}${method}`,
        { agent, method: "POST", headers: { "content-type": "application/json" } },
        (r) => r.resume().on("end", resolve)
      ).on("error", reject).end("{}")
    )
    const session = http2.connect(url)
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": method, "content-type": "application/json" })
      stream.on("error", reject)
      stream.resume().on("end", resolve)
      stream.end("{}")
    })
    const taken = port(url)
    await sandbox.close()
    await bindHttp(taken)
    agent.destroy()
    session.destroy()
    const again = await startSandbox({ flyte2: true, adminConnectPort: taken })
    expect(again.adminConnect).toBe(`http://127.0.0.1:${taken}`)
    await again.close()
  })

  it("a taken Flyte 2 admin port fails startup, and leaves nothing listening", async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve()))
    const taken = (blocker.address() as net.AddressInfo).port
    const fixed = { idpPort: await freePort(), adminHttpPort: await freePort(), adminGrpcPort: await freePort() }
    try {
      await expect(startSandbox({ ...fixed, flyte2: true, adminConnectPort: taken })).rejects.toThrow(/EADDRINUSE/)
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
    await bindHttp(fixed.idpPort)
    await bindHttp(fixed.adminHttpPort)
    await bindGrpc(fixed.adminGrpcPort)
  })

  it("a taken port fails startup, and leaves nothing listening", async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve()))
    const taken = (blocker.address() as net.AddressInfo).port
    try {
      await expect(startSandbox({ adminHttpPort: taken })).rejects.toThrow(/EADDRINUSE/)
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })

  it("stats count token requests by grant type and admin calls; resetStats clears them", async () => {
    const sandbox = await startSandbox()
    try {
      const loopback = await startLoopback()
      const { challenge, verifier } = pkcePair()
      await UserAgent.authorize(authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge }), sandbox.user)
      const code = (await loopback.received).searchParams.get("code")!
      await loopback.close()
      const tokens = await exchangeCode(sandbox, code, loopback.redirectUri, verifier)
      await refresh(sandbox, tokens.json.refresh_token)
      await refresh(sandbox, "bogus")
      const service = await clientCredentials(sandbox)
      await userInfo(sandbox, tokens.json.access_token)
      await userInfo(sandbox)
      await whoami(sandbox, service.json.access_token)

      expect(sandbox.stats()).toEqual({
        tokenRequests: { authorization_code: 1, refresh_token: 2, client_credentials: 1, device_code: 0, other: 0 },
        tokenErrors: { authorization_code: 0, refresh_token: 1, client_credentials: 0, device_code: 0, other: 0 },
        injectedTokenFailures: 0,
        proxyRejections: 0,
        authorizationRequests: 1,
        deviceAuthorizationRequests: 0,
        logins: 1,
        failedLogins: 0,
        consents: 1,
        denials: 0,
        serverErrors: 0,
        admin: {
          userInfoCalls: 2,
          whoamiCalls: 1,
          oauth2MetadataCalls: 0,
          publicClientConfigCalls: 0,
          authFailures: 1,
          lastAuthFailure: expect.stringMatching(/missing bearer token/),
          proxyRejections: 0
        },
        connectAdmin: {
          userInfoCalls: 0,
          oauth2MetadataCalls: 0,
          publicClientConfigCalls: 0,
          watchCalls: 0,
          authFailures: 0,
          lastAuthFailure: undefined,
          proxyRejections: 0
        }
      })
      expect(sandbox.adminStats()).toEqual(sandbox.stats().admin)

      sandbox.resetStats()
      const reset = sandbox.stats()
      expect(reset.tokenRequests).toEqual({
        authorization_code: 0,
        refresh_token: 0,
        client_credentials: 0,
        device_code: 0,
        other: 0
      })
      expect(reset.admin.userInfoCalls).toBe(0)
      expect(reset.admin.lastAuthFailure).toBeUndefined()
    } finally {
      await sandbox.close()
    }
  })

  it("revokeRefreshTokens makes the next refresh fail with invalid_grant", async () => {
    const sandbox = await startSandbox({ autoApprove: true })
    try {
      const loopback = await startLoopback()
      const { challenge, verifier } = pkcePair()
      await UserAgent.authorize(authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge }))
      const code = (await loopback.received).searchParams.get("code")!
      await loopback.close()
      const tokens = await exchangeCode(sandbox, code, loopback.redirectUri, verifier)
      expect(sandbox.revokeRefreshTokens()).toBe(1)
      const refreshed = await refresh(sandbox, tokens.json.refresh_token)
      expect(refreshed.status).toBe(400)
      expect(refreshed.json.error).toBe("invalid_grant")
    } finally {
      await sandbox.close()
    }
  })
})

describe("Effect API", () => {
  it.effect("make() closes the sandbox when its scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const sandbox = yield* Sandbox.make({ autoApprove: true }).pipe(Scope.extend(scope))
      const before = yield* Effect.promise(() => fetch(`${sandbox.adminHttp}/healthcheck`).then((r) => r.status))
      expect(before).toBe(200)
      yield* Scope.close(scope, Exit.void)
      yield* Effect.promise(() => bindHttp(port(sandbox.adminHttp)))
    }))

  it.effect("make() fails with a SandboxError", () =>
    Effect.gen(function*() {
      const error = yield* Sandbox.make({ host: "10.0.0.1" }).pipe(Effect.scoped, Effect.flip)
      expect(error._tag).toBe("SandboxError")
      expect(error.reason).toBe("StartFailed")
      expect(error.message).toMatch(/loopback/)
    }))

  layer(Sandbox.layer({ headerKey: "flyte-authorization" }))("layer", (it) => {
    it.effect("provides the Sandbox service", () =>
      Effect.gen(function*() {
        const sandbox = yield* Sandbox.Sandbox
        const tokens = yield* Effect.promise(() => clientCredentials(sandbox))
        const me = yield* Effect.promise(() => userInfo(sandbox, tokens.json.access_token))
        expect(me.value?.subject).toBe(sandbox.clients.confidential.clientId)
      }))
  })
})
