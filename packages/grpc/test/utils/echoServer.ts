/**
 * A scriptable Echo server: every call is recorded with its metadata, a `gate` decides per call whether it is
 * rejected (and with which status), and the server stream is scripted per test.
 */
import * as grpc from "@grpc/grpc-js"
import type { Scope } from "effect"
import { Effect } from "effect"
import type { EchoRequest, EchoResponse } from "./grpcTest.js"
import { EchoClient, seenMetadata, startServer } from "./grpcTest.js"

export interface RecordedCall {
  readonly method: string
  readonly seen: Record<string, string>
}

export type Gate = (
  metadata: grpc.Metadata,
  method: string,
  index: number
) => { readonly code: grpc.status; readonly details: string } | undefined

export interface EchoServerOptions {
  readonly gate?: Gate
  /** Writes the server stream of an accepted `ServerStream` call (default: three messages). */
  readonly serverStream?: (
    call: grpc.ServerWritableStream<EchoRequest, EchoResponse>,
    index: number
  ) => Promise<void> | void
  readonly credentials?: grpc.ServerCredentials
}

export interface EchoServer {
  readonly address: string
  /** Every call received so far. */
  readonly calls: () => ReadonlyArray<RecordedCall>
}

/** Accepts a call only if `key` holds `Bearer <token>` for one of `accepted()`. */
export const tokenGate = (key: string, accepted: () => ReadonlyArray<string>): Gate => (metadata) => {
  const sent = metadata.get(key)[0]
  return typeof sent === "string" && accepted().some((token) => sent === `Bearer ${token}`)
    ? undefined
    : { code: grpc.status.UNAUTHENTICATED, details: "the access token is invalid or expired" }
}

export const startEchoServer = (options: EchoServerOptions = {}): Effect.Effect<EchoServer, never, Scope.Scope> => {
  const calls: Array<RecordedCall> = []
  const gate = options.gate ?? (() => undefined)
  const admit = (method: string, metadata: grpc.Metadata) => {
    const index = calls.length
    const seen = seenMetadata(metadata)
    calls.push({ method, seen })
    return { index, seen, rejection: gate(metadata, method, index) }
  }
  const implementation: grpc.UntypedServiceImplementation = {
    Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      const { rejection, seen } = admit("Unary", call.metadata)
      if (rejection !== undefined) callback(rejection)
      else callback(null, { text: call.request.text, seen })
    },
    ServerStream: (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) => {
      const { index, rejection, seen } = admit("ServerStream", call.metadata)
      if (rejection !== undefined) {
        call.emit("error", rejection)
        return
      }
      const script = options.serverStream ?? ((c) => {
        for (const text of ["one", "two", "three"]) c.write({ text, seen })
        c.end()
      })
      void Promise.resolve(script(call, index)).catch((error) => call.emit("error", error))
    },
    ClientStream: (
      call: grpc.ServerReadableStream<EchoRequest, EchoResponse>,
      callback: grpc.sendUnaryData<EchoResponse>
    ) => {
      const { rejection, seen } = admit("ClientStream", call.metadata)
      if (rejection !== undefined) {
        callback(rejection)
        return
      }
      const texts: Array<string> = []
      call.on("data", (request: EchoRequest) => texts.push(request.text))
      call.on("end", () => callback(null, { text: texts.join(","), seen }))
    },
    Bidi: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      const { rejection, seen } = admit("Bidi", call.metadata)
      if (rejection !== undefined) {
        call.emit("error", rejection)
        return
      }
      call.on("data", (request: EchoRequest) => call.write({ text: request.text, seen }))
      call.on("end", () => call.end())
    }
  }
  return startServer(
    (server) => server.addService(EchoClient.service, implementation),
    options.credentials
  ).pipe(Effect.map((address) => ({ address, calls: () => [...calls] })))
}
