/**
 * Test fixtures: an Echo service with the four method kinds (built from a descriptor at run time, no codegen), a
 * real connect-node server on 127.0.0.1:0 (HTTP/2 without TLS: Connect, gRPC and gRPC-web on one port) that
 * records what each call carried and answers as a script says, and the three client transports.
 */
import { create, createFileRegistry } from "@bufbuild/protobuf"
import type { DescService } from "@bufbuild/protobuf"
import { file_google_protobuf_wrappers, FileDescriptorProtoSchema, StringValueSchema } from "@bufbuild/protobuf/wkt"
import type { StringValue } from "@bufbuild/protobuf/wkt"
import type { Interceptor, Transport } from "@connectrpc/connect"
import { Code, ConnectError } from "@connectrpc/connect"
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport
} from "@connectrpc/connect-node"
import * as Http2 from "node:http2"
import type * as Net from "node:net"

const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "flyteauth/test/echo.proto",
    package: "flyteauth.test",
    dependency: ["google/protobuf/wrappers.proto"],
    syntax: "proto3",
    service: [{
      name: "Echo",
      method: [
        { name: "Unary", inputType: ".google.protobuf.StringValue", outputType: ".google.protobuf.StringValue" },
        {
          name: "ServerStream",
          inputType: ".google.protobuf.StringValue",
          outputType: ".google.protobuf.StringValue",
          serverStreaming: true
        },
        {
          name: "ClientStream",
          inputType: ".google.protobuf.StringValue",
          outputType: ".google.protobuf.StringValue",
          clientStreaming: true
        },
        {
          name: "Bidi",
          inputType: ".google.protobuf.StringValue",
          outputType: ".google.protobuf.StringValue",
          clientStreaming: true,
          serverStreaming: true
        }
      ]
    }]
  }),
  (name) => name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined
)

export const Echo: DescService = registry.getService("flyteauth.test.Echo")!

export const text = (value: string): StringValue => create(StringValueSchema, { value })

/** What one call carried, as the server saw it. */
export interface RecordedCall {
  readonly method: string
  readonly headers: Record<string, string>
  /** The request messages the server read. */
  readonly received: Array<string>
}

/**
 * How the server answers call number `index` (0-based, all methods): `undefined` accepts it; a `ConnectError`
 * rejects it (before any response message, after reading the whole request); `{ after, error }` sends `after`
 * response messages first, then fails (streaming responses only).
 */
export type Script = (call: RecordedCall, index: number) =>
  | ConnectError
  | { readonly after: number; readonly error: ConnectError }
  | undefined

export interface EchoServer {
  readonly baseUrl: string
  readonly calls: Array<RecordedCall>
  readonly close: () => Promise<void>
}

/** A script accepting only `Bearer <token>` under `key`, for any token in `accepted()`. */
export const acceptOnly = (key: string, accepted: () => ReadonlyArray<string>): Script => (call) =>
  accepted().some((token) => call.headers[key] === `Bearer ${token}`)
    ? undefined
    : new ConnectError("the access token is invalid or expired", Code.Unauthenticated)

/**
 * Starts the server. `proxyToken`: a plain HTTP/2 front that answers 407 (no body) to any request without
 * `proxy-authorization: Bearer <proxyToken()>`, as an identity-aware proxy does, before the Connect handler.
 */
export const startEchoServer = async (
  script: Script,
  options: { readonly proxyToken?: () => string } = {}
): Promise<EchoServer> => {
  const calls: Array<RecordedCall> = []
  const record = (method: string, headers: Headers): RecordedCall => {
    const call: RecordedCall = { method, headers: Object.fromEntries(headers.entries()), received: [] }
    calls.push(call)
    return call
  }
  const verdict = (call: RecordedCall) => script(call, calls.indexOf(call))
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(Echo, {
        unary: (request: StringValue, context: { requestHeader: Headers }) => {
          const call = record("Unary", context.requestHeader)
          call.received.push(request.value)
          const answer = verdict(call)
          if (answer !== undefined) throw answer instanceof ConnectError ? answer : answer.error
          return text(request.value)
        },
        serverStream: async function*(request: StringValue, context: { requestHeader: Headers }) {
          const call = record("ServerStream", context.requestHeader)
          call.received.push(request.value)
          yield* respond(verdict(call), ["one", "two", "three"].map((t) => `${request.value}:${t}`))
        },
        clientStream: async (requests: AsyncIterable<StringValue>, context: { requestHeader: Headers }) => {
          const call = record("ClientStream", context.requestHeader)
          for await (const request of requests) call.received.push(request.value)
          const answer = verdict(call)
          if (answer !== undefined) throw answer instanceof ConnectError ? answer : answer.error
          return text(call.received.join(","))
        },
        bidi: async function*(requests: AsyncIterable<StringValue>, context: { requestHeader: Headers }) {
          const call = record("Bidi", context.requestHeader)
          for await (const request of requests) call.received.push(request.value)
          yield* respond(verdict(call), call.received)
        }
      } as any)
  })
  const server = Http2.createServer((request, response) => {
    const expected = options.proxyToken?.()
    if (expected !== undefined && request.headers["proxy-authorization"] !== `Bearer ${expected}`) {
      response.writeHead(407, { "proxy-authenticate": "Bearer" }).end()
      return
    }
    handler(request, response)
  })
  // Clients keep their HTTP/2 sessions open: closing the server ends them.
  const sessions = new Set<Http2.ServerHttp2Session>()
  server.on("session", (session) => {
    sessions.add(session)
    session.on("close", () => sessions.delete(session))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as Net.AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        for (const session of sessions) session.destroy()
      })
  }
}

async function* respond(answer: ReturnType<Script>, texts: ReadonlyArray<string>) {
  if (answer instanceof ConnectError) throw answer
  const failAfter = answer?.after ?? Number.POSITIVE_INFINITY
  for (const [i, value] of texts.entries()) {
    if (i === failAfter) throw answer!.error
    yield text(value)
  }
  if (answer !== undefined && failAfter >= texts.length) throw answer.error
}

export type Protocol = "connect" | "grpc" | "grpc-web"
export const protocols: ReadonlyArray<Protocol> = ["connect", "grpc", "grpc-web"]

/** A client transport of `protocol` to `baseUrl` over HTTP/2 (h2c). */
export const transport = (protocol: Protocol, baseUrl: string, interceptors: Array<Interceptor>): Transport => {
  const options = { baseUrl, httpVersion: "2" as const, interceptors }
  switch (protocol) {
    case "connect":
      return createConnectTransport(options)
    case "grpc":
      return createGrpcTransport(options)
    case "grpc-web":
      return createGrpcWebTransport(options)
  }
}

/** The request stream of `values`, as a client-streaming or bidi caller writes it. */
export async function* messages(values: ReadonlyArray<string>) {
  for (const value of values) yield text(value)
}
