/**
 * Test helpers: real grpc-js servers on 127.0.0.1:0, the Echo test service, Effect wrappers of client calls and a
 * small scripted `Authenticator` (the real one is tested end to end against the sandbox).
 */
import { Authenticator } from "@flyte-auth/core/Authenticator"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import type { AuthError } from "@flyte-auth/core/AuthError"
import * as AuthHeader from "@flyte-auth/core/AuthHeader"
import { Credentials } from "@flyte-auth/core/Credentials"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Effect, Layer, Redacted, Ref, SynchronizedRef } from "effect"
import type { Duration, Scope } from "effect"
import { fileURLToPath } from "node:url"

// --- servers ---------------------------------------------------------------------------------------------------

/** Starts a plaintext (or TLS) grpc-js server on 127.0.0.1:0 and shuts it down with the scope. */
export const startServer = (
  register: (server: grpc.Server) => void,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()
): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: grpc.Server; address: string }>((resume) => {
      const server = new grpc.Server()
      register(server)
      server.bindAsync("127.0.0.1:0", credentials, (error, port) => {
        if (error !== null) resume(Effect.die(error))
        else resume(Effect.succeed({ server, address: `127.0.0.1:${port}` }))
      })
    }),
    ({ server }) => Effect.sync(() => server.forceShutdown())
  ).pipe(Effect.map(({ address }) => address))

const echoPackage = grpc.loadPackageDefinition(
  protoLoader.loadSync(fileURLToPath(new URL("../fixtures/echo.proto", import.meta.url)), {
    keepCase: true,
    defaults: true
  })
) as any

/** The Echo service's client constructor and definition. */
export const EchoClient: grpc.ServiceClientConstructor = echoPackage.flyteauth.test.Echo

export interface EchoRequest {
  readonly text: string
}
export interface EchoResponse {
  readonly text: string
  readonly seen: Record<string, string>
}

/** The first value of each request metadata key, as the server saw it. */
export const seenMetadata = (metadata: grpc.Metadata): Record<string, string> =>
  Object.fromEntries(Object.entries(metadata.getMap()).map(([key, value]) => [key, String(value)]))

export const statusError = (code: grpc.status, details: string): Partial<grpc.StatusObject> => ({ code, details })

// --- clients ---------------------------------------------------------------------------------------------------

/** A client of the Echo service, closed with the scope. */
export const echoClient = (
  address: string,
  options: grpc.ClientOptions = {},
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()
): Effect.Effect<grpc.Client & Record<string, any>, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => new EchoClient(address, credentials, options) as grpc.Client & Record<string, any>),
    (client) => Effect.sync(() => client.close())
  )

/** A unary call as an Effect; a non-OK status fails with the `ServiceError`. */
export const unary = <A = EchoResponse>(
  client: Record<string, any>,
  method: string,
  request: object,
  metadata: grpc.Metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {}
): Effect.Effect<A, grpc.ServiceError> =>
  Effect.async<A, grpc.ServiceError>((resume) => {
    const call = client[method](request, metadata, options, (error: grpc.ServiceError | null, response: A) => {
      if (error !== null) resume(Effect.fail(error))
      else resume(Effect.succeed(response))
    })
    return Effect.sync(() => call.cancel())
  })

/** Reads a server stream to its end: the messages received, and the error it ended with, if any. */
export const readStream = (
  stream: grpc.ClientReadableStream<EchoResponse>,
  onMessage: (message: EchoResponse) => void = () => {}
): Effect.Effect<{ readonly messages: ReadonlyArray<EchoResponse>; readonly error: grpc.ServiceError | undefined }> =>
  Effect.async((resume) => {
    const messages: Array<EchoResponse> = []
    let error: grpc.ServiceError | undefined
    stream.on("data", (message: EchoResponse) => {
      messages.push(message)
      onMessage(message)
    })
    stream.on("error", (e: grpc.ServiceError) => {
      error = e
    })
    stream.on("status", () => resume(Effect.succeed({ messages, error })))
    return Effect.sync(() => stream.cancel())
  })

// --- a scripted Authenticator -------------------------------------------------------------------------------------

export interface TestAuth {
  readonly layer: Layer.Layer<Authenticator>
  readonly service: Authenticator.Service
  /** Token requests made (each refresh is one). */
  readonly refreshes: Effect.Effect<number>
  /** `invalidate` calls, with the token each named. */
  readonly invalidated: Effect.Effect<ReadonlyArray<string>>
  /** The token `header` hands out now. */
  readonly current: Effect.Effect<string>
}

/**
 * An `Authenticator` handing out `token-<n>`: `invalidate(token-n)` marks it stale (only if it is still current),
 * and the next `header` refreshes to `token-<n+1>` once for all concurrent callers (after `refreshDelay`).
 */
export const makeTestAuth = (options: {
  readonly headerKey?: string
  readonly refreshDelay?: Duration.DurationInput
  readonly header?: Effect.Effect<never, AuthError>
  readonly refreshFails?: AuthError
} = {}): Effect.Effect<TestAuth> =>
  Effect.gen(function*() {
    const state = yield* SynchronizedRef.make({ version: 0, stale: false })
    const refreshes = yield* Ref.make(0)
    const invalidated = yield* Ref.make<ReadonlyArray<string>>([])
    const headerKey = options.headerKey ?? "authorization"
    const credentialsOf = (version: number) =>
      new Credentials({ accessToken: Redacted.make(`token-${version}`), endpoint: "test" })
    const refreshNow = (s: { version: number }) =>
      Effect.gen(function*() {
        yield* Ref.update(refreshes, (n) => n + 1)
        yield* Effect.sleep(options.refreshDelay ?? "20 millis")
        if (options.refreshFails !== undefined) return yield* options.refreshFails
        return { version: s.version + 1, stale: false }
      })
    const credentials = SynchronizedRef.modifyEffect(state, (s) =>
      s.stale
        ? Effect.map(refreshNow(s), (next) => [credentialsOf(next.version), next] as const)
        : Effect.succeed([credentialsOf(s.version), s] as const))
    const service: Authenticator.Service = {
      endpoint: "test",
      login: Effect.dieMessage("the test authenticator never runs a full login"),
      get: credentials,
      credentials,
      accessToken: Effect.map(credentials, (c) => c.accessToken),
      header: options.header ?? Effect.map(credentials, (c) => AuthHeader.make(headerKey, c)),
      // Never a synchronous answer: every call goes through `header` (the real Authenticator's hot path is
      // covered by the sandbox tests).
      cachedHeader: () => undefined,
      refresh: SynchronizedRef.modifyEffect(state, (s) =>
        Effect.map(refreshNow(s), (next) => [credentialsOf(next.version), next] as const)),
      invalidate: (header) =>
        Ref.update(invalidated, (all) => [...all, Redacted.value(header.value).replace(/^Bearer /, "")]).pipe(
          Effect.zipRight(SynchronizedRef.update(state, (s) =>
            AuthHeader.carries(header, credentialsOf(s.version)) ? { ...s, stale: true } : s))
        ),
      logout: Effect.void
    }
    return {
      layer: Layer.succeed(Authenticator, service),
      service,
      refreshes: Ref.get(refreshes),
      invalidated: Ref.get(invalidated),
      current: Effect.map(SynchronizedRef.get(state), (s) =>
        `token-${s.version}`)
    }
  })

export const noCredentials = new AuthenticationError({
  reason: "Config",
  description: "No credentials for the test endpoint"
})
