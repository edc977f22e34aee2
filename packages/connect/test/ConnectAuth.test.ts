/**
 * The ConnectRPC interceptors against a real connect-node server (HTTP/2 on loopback), over each of the Connect,
 * gRPC and gRPC-web protocols, with a real `Authenticator` (memory keyring) whose login mints `token-1`,
 * `token-2`, ... and counts its runs.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import type { Client } from "@connectrpc/connect"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { ConnectAuth } from "@flyte-auth/connect"
import * as Authenticator from "@flyte-auth/core/Authenticator"
import * as ClientConfig from "@flyte-auth/core/ClientConfig"
import { Credentials } from "@flyte-auth/core/Credentials"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as TokenSource from "@flyte-auth/core/TokenSource"
import { Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { Protocol, Script } from "./utils/echo.js"
import { acceptOnly, Echo, messages, protocols, startEchoServer, text, transport } from "./utils/echo.js"

const headerKey = "flyte-authorization"

/** A real Authenticator whose login hands out token-1, token-2, ... */
const makeAuth = () => {
  let logins = 0
  const layer = Authenticator.layer({
    endpoint: "connect.test",
    interactive: false,
    refresh: "login",
    login: Effect.sync(() =>
      new Credentials({ accessToken: Redacted.make(`token-${++logins}`), endpoint: "connect.test" })
    )
  }).pipe(
    Layer.provide(Layer.mergeAll(
      Keyring.layerMemory,
      ClientConfig.layerStatic(new ClientConfig.ClientConfig({ tokenEndpoint: "http://127.0.0.1:1/token", headerKey })),
      FetchHttpClient.layer
    ))
  )
  const runtime = ManagedRuntime.make(layer)
  return { runtime, logins: () => logins }
}

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A server answering by `script`, and an Echo client through `ConnectAuth.interceptor` over `protocol`. */
const setup = async (protocol: Protocol, script: Script) => {
  const server = await startEchoServer(script)
  const auth = makeAuth()
  cleanups.push(() => server.close(), () => auth.runtime.dispose())
  const interceptor = await auth.runtime.runPromise(ConnectAuth.interceptor)
  const client = createClient(Echo, transport(protocol, server.baseUrl, [interceptor])) as Client<typeof Echo> & any
  return { server, auth, client }
}

/** Rejects `token-1` only. */
const rejectFirstToken: Script = acceptOnly(headerKey, () => ["token-2", "token-3"])

const collect = async (stream: AsyncIterable<{ value: string }>) => {
  const out: Array<string> = []
  for await (const message of stream) out.push(message.value)
  return out
}

describe.each(protocols)("ConnectAuth.interceptor over %s", (protocol) => {
  it("unary: adds the header; a rejected token is invalidated, a new one obtained once, the call sent again", async () => {
    const { auth, client, server } = await setup(protocol, rejectFirstToken)
    expect((await client.unary(text("hi"))).value).toBe("hi")
    expect(server.calls.map((c) => c.headers[headerKey])).toEqual(["Bearer token-1", "Bearer token-2"])
    expect(auth.logins()).toBe(2)
    // The next call uses the new token at once.
    expect((await client.unary(text("again"))).value).toBe("again")
    expect(server.calls.at(-1)!.headers[headerKey]).toBe("Bearer token-2")
  })

  it("unary: 20 concurrent calls rejected with the same token cost one new login", async () => {
    const { auth, client, server } = await setup(protocol, rejectFirstToken)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.unary(text(`c${i}`))))
    expect(results.map((r: { value: string }) => r.value)).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`))
    expect(server.calls).toHaveLength(40)
    expect(auth.logins()).toBe(2)
  })

  it("a second rejection surfaces to the caller (sent twice in all)", async () => {
    const { auth, client, server } = await setup(protocol, acceptOnly(headerKey, () => []))
    const error = await client.unary(text("x")).catch((e: unknown) => ConnectError.from(e))
    expect(error.code).toBe(Code.Unauthenticated)
    expect(server.calls).toHaveLength(2)
    expect(auth.logins()).toBe(2)
  })

  it("Unknown and a message saying unauthorized count as rejections; NotFound does not", async () => {
    const unknown = await setup(protocol, (_, i) => i === 0 ? new ConnectError("boom", Code.Unknown) : undefined)
    expect((await unknown.client.unary(text("u"))).value).toBe("u")
    expect(unknown.server.calls).toHaveLength(2)

    const worded = await setup(
      protocol,
      (_, i) => i === 0 ? new ConnectError("request unauthorized by the mesh", Code.Internal) : undefined
    )
    expect((await worded.client.unary(text("w"))).value).toBe("w")
    expect(worded.server.calls).toHaveLength(2)

    const notFound = await setup(protocol, () => new ConnectError("no such run", Code.NotFound))
    const error = await notFound.client.unary(text("n")).catch((e: unknown) => ConnectError.from(e))
    expect(error.code).toBe(Code.NotFound)
    expect(notFound.server.calls).toHaveLength(1)
    expect(notFound.auth.logins()).toBe(1)
  })

  it("PermissionDenied renews only credentials that no call had used yet", async () => {
    let deny = true
    const { auth, client, server } = await setup(protocol, () => {
      if (!deny) return undefined
      deny = false
      return new ConnectError("RBAC: access denied", Code.PermissionDenied)
    })
    // First call: fresh credentials, denied -> renewed and sent again.
    expect((await client.unary(text("first"))).value).toBe("first")
    expect(server.calls).toHaveLength(2)
    expect(auth.logins()).toBe(2)
    // Later: the same credentials worked before, so a denial is the answer.
    deny = true
    const error = await client.unary(text("later")).catch((e: unknown) => ConnectError.from(e))
    expect(error.code).toBe(Code.PermissionDenied)
    expect(server.calls).toHaveLength(3)
    expect(auth.logins()).toBe(2)
  })

  it("server streaming: a rejection before the first message is retried; after one, it surfaces", async () => {
    const before = await setup(protocol, rejectFirstToken)
    expect(await collect(before.client.serverStream(text("s")))).toEqual(["s:one", "s:two", "s:three"])
    expect(before.server.calls).toHaveLength(2)

    const after = await setup(
      protocol,
      (_, i) => i === 0 ? { after: 1, error: new ConnectError("token expired", Code.Unauthenticated) } : undefined
    )
    const seen: Array<string> = []
    const error = await (async () => {
      for await (const message of after.client.serverStream(text("p"))) seen.push(message.value)
    })().catch((e: unknown) => ConnectError.from(e))
    expect(seen).toEqual(["p:one"])
    expect(error).toBeInstanceOf(ConnectError)
    expect((error as ConnectError).code).toBe(Code.Unauthenticated)
    // Output already handed out is never repeated: no second call.
    expect(after.server.calls).toHaveLength(1)
  })

  it("client streaming: a request stream read to its end is sent again, message for message", async () => {
    const { client, server } = await setup(protocol, rejectFirstToken)
    expect((await client.clientStream(messages(["a", "b", "c"]))).value).toBe("a,b,c")
    expect(server.calls.map((c) => c.received)).toEqual([["a", "b", "c"], ["a", "b", "c"]])
  })

  it("bidi: sent again (with the kept request messages) when rejected before its first response message", async () => {
    const { client, server } = await setup(protocol, rejectFirstToken)
    expect(await collect(client.bidi(messages(["x", "y"])))).toEqual(["x", "y"])
    expect(server.calls.map((c) => c.received)).toEqual([["x", "y"], ["x", "y"]])
  })
})

describe("ConnectAuth.authInterceptor (Promise facade shape)", () => {
  it("removes the previous attempt's header before adding the new one (the key may change)", async () => {
    const server = await startEchoServer((call) =>
      call.headers["x-new-key"] === "Bearer second" ? undefined : new ConnectError("expired", Code.Unauthenticated)
    )
    cleanups.push(() => server.close())
    let rejected = false
    const sentBack: Array<Record<string, string>> = []
    const interceptor = ConnectAuth.authInterceptor({
      headers: async () => rejected ? { "x-new-key": "Bearer second" } : { authorization: "Bearer first" },
      rejected: async (sent) => {
        sentBack.push({ ...sent })
        rejected = true
      },
      refresh: async () => undefined
    })
    const client = createClient(Echo, transport("connect", server.baseUrl, [interceptor])) as any
    expect((await client.unary(text("k"))).value).toBe("k")
    expect(sentBack).toEqual([{ authorization: "Bearer first" }])
    expect(server.calls[1].headers).toMatchObject({ "x-new-key": "Bearer second" })
    expect(server.calls[1].headers.authorization).toBeUndefined()
  })

  it("a header that cannot be obtained fails the call with Unauthenticated, saying why without the secret", async () => {
    const server = await startEchoServer(() => undefined)
    cleanups.push(() => server.close())
    const interceptor = ConnectAuth.authInterceptor({
      headers: async () => {
        throw new Error("Bearer s3cr3t leaked?")
      },
      rejected: async () => undefined,
      refresh: async () => undefined
    })
    const client = createClient(Echo, transport("grpc", server.baseUrl, [interceptor])) as any
    const error = await client.unary(text("z")).catch((e: unknown) => ConnectError.from(e))
    expect(error.code).toBe(Code.Unauthenticated)
    expect(error.rawMessage).toBe("flyte-auth: could not obtain the access token: Error (message withheld)")
    expect(server.calls).toHaveLength(0)
  })
})

describe.each(protocols)("ConnectAuth.proxyInterceptor over %s, behind a proxy answering HTTP 407", (protocol) => {
  it("sends proxy-authorization; a 407 drops the proxy token, a new one is obtained and the call sent again", async () => {
    let current = "proxy-1"
    const server = await startEchoServer(() => undefined, { proxyToken: () => current })
    const scope = Effect.runSync(Scope.make())
    cleanups.push(() => server.close(), () => Effect.runPromise(Scope.close(scope, Exit.void)))
    let runs = 0
    const source = await Effect.runPromise(
      TokenSource.reuse(
        Effect.sync(() => new Credentials({ accessToken: Redacted.make(`proxy-${++runs}`), endpoint: "proxy" }))
      ).pipe(Scope.extend(scope))
    )
    const interceptor = await Effect.runPromise(ConnectAuth.proxyInterceptor(source))
    const client = createClient(Echo, transport(protocol, server.baseUrl, [interceptor])) as any
    expect((await client.unary(text("p1"))).value).toBe("p1")
    expect(runs).toBe(1)
    // The proxy now wants another token: the first attempt gets 407, the second carries proxy-2.
    current = "proxy-2"
    expect((await client.unary(text("p2"))).value).toBe("p2")
    expect(runs).toBe(2)
    expect(server.calls.map((c) => c.headers["proxy-authorization"])).toEqual(["Bearer proxy-1", "Bearer proxy-2"])
  })
})
