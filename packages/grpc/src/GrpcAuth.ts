/**
 * Authenticated gRPC calls with grpc-js: an interceptor that adds `<headerKey>: Bearer <token>` to every call and
 * refreshes and retries once when the server answers `UNAUTHENTICATED`, call credentials for TLS channels, the
 * `proxy-authorization` interceptor for identity-aware proxies, and the channel set-up of a Flyte client.
 *
 * What is retried: a unary or server-streaming call rejected with `UNAUTHENTICATED` before it received a message is
 * sent again once, through a fresh call, after the rejected token was invalidated and a new one obtained (one
 * refresh for any number of concurrent calls: the `Authenticator` single-flights it). A second `UNAUTHENTICATED`
 * surfaces, as does any other code (`PERMISSION_DENIED`, `NOT_FOUND`, `INVALID_ARGUMENT`, ...), which never
 * triggers a refresh. A server stream that already delivered a message is never replayed: its error surfaces.
 * Messages are passed on as they arrive, never buffered. Client-streaming and bidirectional calls carry the header
 * but are not replayed (their request messages are not kept): their `UNAUTHENTICATED` surfaces, and the next call
 * uses the refreshed token.
 *
 * @example
 * ```ts
 * import { FlyteProtos, GrpcAuth } from "@flyte-auth/grpc"
 * import { Effect } from "effect"
 *
 * const IdentityService = FlyteProtos.load("flyteidl/service/identity.proto").flyteidl.service.IdentityService
 * const program = Effect.gen(function*() {
 *   const identity = yield* GrpcAuth.makeClient(IdentityService, { endpoint: "flyte.example.com:443" })
 *   // identity.UserInfo({}, callback)
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Authenticator } from "@flyte-auth/core/Authenticator"
import type { AuthClientLike } from "@flyte-auth/core/Authenticator"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import type { AuthError } from "@flyte-auth/core/AuthError"
import * as AuthHeader from "@flyte-auth/core/AuthHeader"
import * as Credentials from "@flyte-auth/core/Credentials"
import * as TokenSource from "@flyte-auth/core/TokenSource"
import type * as grpc from "@grpc/grpc-js"
import { credentials as grpcCredentials, Metadata, status as Status } from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { readFile } from "node:fs/promises"
import * as IpLiteralTls from "./internal/ipLiteralTls.js"
import * as RetryingCall from "./internal/retryingCall.js"

/**
 * The metadata key of the proxy token.
 *
 * @since 0.1.0
 * @category constants
 */
export const proxyAuthorizationKey = "proxy-authorization"

/**
 * Whether a status looks like an identity-aware proxy in front of the server rejected the call, rather than the
 * server itself: `UNAUTHENTICATED`, `UNAVAILABLE` or `UNKNOWN` (grpc-js reports an HTTP 407 as
 * `UNKNOWN: Received HTTP status code 407`) whose details mention 407 or a proxy.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isProxyRejection = (status: Pick<grpc.StatusObject, "code" | "details">): boolean =>
  (status.code === Status.UNAUTHENTICATED || status.code === Status.UNAVAILABLE || status.code === Status.UNKNOWN) &&
  /\b407\b|proxy/i.test(status.details)

/**
 * Whether a status means the server rejected the access token: `UNAUTHENTICATED`, unless a proxy said it
 * (`isProxyRejection`). Only this status makes the interceptor refresh and retry.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isTokenRejection = (status: Pick<grpc.StatusObject, "code" | "details">): boolean =>
  status.code === Status.UNAUTHENTICATED && !isProxyRejection(status)

/**
 * The interceptor for an `Authenticator` (see the module documentation for what is retried). The header key is
 * the `Authenticator`'s (the server's `authorization_metadata_key`, e.g. `flyte-authorization`, else
 * `authorization`); metadata the caller set is kept. The interceptor runs the `Authenticator` on the runtime this
 * effect runs in. It works on insecure channels too, unlike call credentials.
 *
 * When no token can be obtained the call fails with `UNAUTHENTICATED` and details saying why (never a secret);
 * when the call's deadline passes while a token is obtained, with `DEADLINE_EXCEEDED`.
 *
 * @example
 * ```ts
 * const interceptor = yield* GrpcAuth.interceptor
 * const client = new IdentityService(address, credentials.createInsecure(), { interceptors: [interceptor] })
 * ```
 *
 * @since 0.1.0
 * @category interceptors
 */
export const interceptor: Effect.Effect<grpc.Interceptor, never, Authenticator> = Effect.gen(function*() {
  const auth = yield* Authenticator
  const runtime = yield* Effect.runtime<never>()
  return RetryingCall.makeInterceptor(authenticatorPolicy(auth), runtime)
})

/**
 * The interceptor for the Promise facade (`createAuthClient` of `@flyte-auth/node`, or anything with its
 * `AuthClientLike` shape). Same behaviour as `interceptor`: every header of `auth.headers()` (or, while fresh,
 * `auth.cachedHeaders()`) is added; on `UNAUTHENTICATED` the headers that were sent go back to
 * `auth.rejected(sentHeaders)`, which refreshes once for all the calls rejected with them, and the call is retried
 * once.
 *
 * @example
 * ```ts
 * await using auth = await createAuthClient({ endpoint: "flyte.example.com:443", authMode: "Pkce" })
 * const client = new IdentityService("flyte.example.com:443", credentials.createSsl(), {
 *   interceptors: [authInterceptor(auth)]
 * })
 * ```
 *
 * @since 0.1.0
 * @category interceptors
 */
export const authInterceptor = (auth: AuthClientLike): grpc.Interceptor =>
  RetryingCall.makeInterceptor(clientPolicy(auth), Runtime.defaultRuntime)

/**
 * Call credentials that add the `Authenticator`'s header, the alternative to `interceptor` for TLS channels
 * (`credentials.combineChannelCredentials(credentials.createSsl(), callCredentials)`). grpc-js sends call
 * credentials only on secure channels and cannot retry from them: a rejected token surfaces as `UNAUTHENTICATED`
 * and is not refreshed until it expires. Prefer `interceptor`.
 *
 * @since 0.1.0
 * @category call credentials
 */
export const callCredentials: Effect.Effect<grpc.CallCredentials, never, Authenticator> = Effect.gen(function*() {
  const auth = yield* Authenticator
  const runtime = yield* Effect.runtime<never>()
  return metadataGenerator(
    Effect.map(auth.header, (header): RetryingCall.Headers => [header]),
    runtime
  )
})

/**
 * `callCredentials` for the Promise facade: the headers of `auth.headers()` on every call of a TLS channel.
 *
 * @since 0.1.0
 * @category call credentials
 */
export const authCallCredentials = (auth: AuthClientLike): grpc.CallCredentials =>
  metadataGenerator(clientPolicy(auth).headers, Runtime.defaultRuntime)

/**
 * An interceptor adding `proxy-authorization: Bearer <token>` to every call, for identity-aware proxies in front
 * of Flyte admin. The token is obtained on the first call and cached (one run of `token` for concurrent calls).
 * When a call is rejected by the proxy (`isProxyRejection`) before it received a message, the token is dropped
 * (unless another call already replaced it), a new one obtained and the call retried once.
 *
 * Put it after `interceptor` in the `interceptors` list (grpc-js runs the first one outermost): the proxy token is
 * then renewed inside a single attempt of the auth interceptor. Give it also to the `RemoteClientConfigStore`, so
 * the metadata calls carry it too. `channelOptions` does both orderings right.
 *
 * @since 0.1.0
 * @category interceptors
 */
export const proxyInterceptor = (source: TokenSource.TokenSource): Effect.Effect<grpc.Interceptor> =>
  Effect.map(Effect.runtime<never>(), (runtime) => RetryingCall.makeInterceptor(proxyPolicy(source), runtime))

/**
 * `proxyInterceptor` for Promise users: `token` resolves to the proxy token (surrounding whitespace is trimmed).
 * A rejection fails the call with `UNAUTHENTICATED`; only the tagged errors of flyte-auth are quoted in its
 * details, other errors by name only (a message could carry a secret).
 *
 * @since 0.1.0
 * @category interceptors
 */
export const proxyAuthorizationInterceptor = (token: () => Promise<string>): grpc.Interceptor => {
  const source = Effect.runSync(
    TokenSource.reuse(
      Effect.tryPromise({ try: () => token(), catch: (error) => error }).pipe(
        Effect.map((value) =>
          new Credentials.Credentials({
            accessToken: Redacted.make(String(value).trim()),
            endpoint: proxyAuthorizationKey
          })
        )
      )
    ).pipe(Scope.extend(promiseScope))
  )
  return RetryingCall.makeInterceptor(proxyPolicy(source), Runtime.defaultRuntime)
}

/** The scope of the Promise API's token runs: it has no owner to close it, so a run is never cut short. */
const promiseScope = Effect.runSync(Scope.make())

/**
 * How to reach a Flyte admin, as in Flyte's configuration (`admin.endpoint`, `admin.insecure`,
 * `admin.caCertFilePath`, `admin.insecureSkipVerify`), plus the proxy token of `admin.proxyCommand`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlyteChannelOptions {
  /** `host:port` (also `dns:///host:port`). */
  readonly endpoint: string
  /** Plaintext instead of TLS. */
  readonly insecure?: boolean | undefined
  /** A PEM file of CA certificates to trust instead of the system roots. */
  readonly caCertFilePath?: string | undefined
  /** Accept any server certificate (logged as a warning). Only for development. */
  readonly insecureSkipVerify?: boolean | undefined
  /** Adds `proxy-authorization` to every call (see `proxyInterceptor`). */
  readonly proxyToken?: TokenSource.TokenSource | undefined
}

/**
 * What a grpc-js client constructor needs: `new Service(address, credentials, { interceptors })`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthenticatedChannel {
  readonly address: string
  readonly credentials: grpc.ChannelCredentials
  /** The auth interceptor, then (innermost) the proxy interceptor when a proxy token is configured. */
  readonly interceptors: Array<grpc.Interceptor>
}

/**
 * The channel credentials for Flyte's connection options: plaintext when `insecure`, else TLS with the system
 * roots or the CA file, optionally without verification. An IP-literal endpoint gets no SNI (RFC 6066).
 *
 * @since 0.1.0
 * @category channel
 */
export const channelCredentials = (
  options: Omit<FlyteChannelOptions, "proxyToken">
): Effect.Effect<grpc.ChannelCredentials, AuthenticationError> =>
  Effect.gen(function*() {
    if (options.insecure === true) return grpcCredentials.createInsecure()
    const rootCerts = options.caCertFilePath === undefined ? null : yield* Effect.tryPromise({
      try: () => readFile(options.caCertFilePath!),
      catch: (cause) =>
        new AuthenticationError({
          reason: "Config",
          description: `Cannot read the CA certificates at caCertFilePath ${options.caCertFilePath}`,
          cause
        })
    })
    if (options.insecureSkipVerify === true) {
      yield* Effect.logWarning(
        `TLS certificate verification is disabled for ${options.endpoint} (insecureSkipVerify); use it only for development`
      )
      return IpLiteralTls.isIpLiteral(options.endpoint)
        ? IpLiteralTls.make(options.endpoint, rootCerts, false)
        : grpcCredentials.createSsl(rootCerts, null, null, {
          rejectUnauthorized: false,
          checkServerIdentity: () => undefined
        })
    }
    // grpc-js would send an IP literal as SNI, which RFC 6066 forbids (Node warns: DEP0123).
    return IpLiteralTls.isIpLiteral(options.endpoint)
      ? IpLiteralTls.make(options.endpoint, rootCerts, true)
      : grpcCredentials.createSsl(rootCerts)
  })

/**
 * Everything an authenticated client of any flyteidl service needs, with the interceptors in the right order
 * (auth outside, proxy authorization innermost).
 *
 * @example
 * ```ts
 * const { address, credentials, interceptors } = yield* GrpcAuth.channelOptions({ endpoint, insecure: true })
 * const identity = new IdentityService(address, credentials, { interceptors })
 * ```
 *
 * @since 0.1.0
 * @category channel
 */
export const channelOptions = (
  options: FlyteChannelOptions
): Effect.Effect<AuthenticatedChannel, AuthenticationError, Authenticator> =>
  Effect.gen(function*() {
    const credentials = yield* channelCredentials(options)
    const auth = yield* interceptor
    const proxy = options.proxyToken === undefined ? [] : [yield* proxyInterceptor(options.proxyToken)]
    return { address: options.endpoint, credentials, interceptors: [auth, ...proxy] }
  }).pipe(Effect.withSpan("GrpcAuth.channelOptions", { attributes: { endpoint: options.endpoint } }))

/**
 * A client of a grpc-js service (e.g. `FlyteProtos.service(...)` or a generated client class) on an
 * authenticated channel (`channelOptions`), closed when the scope closes.
 *
 * @since 0.1.0
 * @category channel
 */
export const makeClient = <C extends grpc.Client>(
  Client: new(address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>) => C,
  options: FlyteChannelOptions
): Effect.Effect<C, AuthenticationError, Authenticator | Scope.Scope> =>
  Effect.flatMap(channelOptions(options), (channel) =>
    Effect.acquireRelease(
      Effect.sync(() => new Client(channel.address, channel.credentials, { interceptors: channel.interceptors })),
      (client) => Effect.sync(() => client.close())
    ))

// --- internals -------------------------------------------------------------------------------------------------

const authenticatorPolicy = (auth: Authenticator.Service): RetryingCall.Policy<AuthError> => {
  // The headers of the last cached header, so that a hit allocates nothing.
  let last: RetryingCall.Headers = []
  const cached = () => {
    const header = auth.cachedHeader()
    if (header === undefined) return undefined
    if (last[0] !== header) last = [header]
    return last
  }
  return {
    what: "access token",
    headers: Effect.map(auth.header, (header) => [header]),
    cached,
    isRejection: isTokenRejection,
    rejected: (sent) => Effect.forEach(sent, auth.invalidate, { discard: true })
  }
}

/**
 * A policy over the Promise facade: the headers of `auth.headers()`, and `auth.rejected` with the headers that were
 * sent (the facade refreshes once for all the calls rejected with the same headers).
 */
const clientPolicy = (auth: AuthClientLike): RetryingCall.Policy<unknown> => {
  let cachedFrom:
    | { readonly source: Readonly<Record<string, string>>; readonly headers: RetryingCall.Headers }
    | undefined
  const cached = auth.cachedHeaders && (() => {
    const source = auth.cachedHeaders!()
    if (source === undefined) return undefined
    if (cachedFrom?.source !== source) cachedFrom = { source, headers: toHeaders(source) }
    return cachedFrom.headers
  })
  return {
    what: "access token",
    ...(cached ? { cached } : {}),
    headers: Effect.tryPromise({
      try: (signal) => auth.headers({ signal }),
      catch: (error) => error
    }).pipe(Effect.map(toHeaders)),
    isRejection: isTokenRejection,
    rejected: (sent) =>
      Effect.asVoid(Effect.tryPromise({
        try: (signal) =>
          auth.rejected(Object.fromEntries(sent.map((header) => [header.key, Redacted.value(header.value)])), {
            signal
          }),
        catch: (error) => error
      }))
  }
}

const toHeaders = (headers: Readonly<Record<string, string>>): RetryingCall.Headers =>
  Object.entries(headers).map(([key, value]) => ({ key: key.toLowerCase(), value: Redacted.make(value) }))

const proxyPolicy = <E>(source: TokenSource.TokenSource<E>): RetryingCall.Policy<E> => ({
  what: "proxy token",
  headers: Effect.map(source.get, (credentials) => [AuthHeader.make(proxyAuthorizationKey, credentials)]),
  isRejection: isProxyRejection,
  rejected: (sent) => Effect.forEach(sent, source.invalidate, { discard: true })
})

const metadataGenerator = <E>(
  headers: Effect.Effect<RetryingCall.Headers, E>,
  runtime: Runtime.Runtime<never>
): grpc.CallCredentials =>
  grpcCredentials.createFromMetadataGenerator((_options, callback) => {
    Runtime.runCallback(runtime)(headers, {
      onExit: (exit) => {
        if (Exit.isFailure(exit)) {
          callback(
            unauthenticated(
              `flyte-auth: could not obtain the access token: ${RetryingCall.describeFailure(exit.cause)}`
            )
          )
          return
        }
        const metadata = new Metadata()
        try {
          for (const header of exit.value) metadata.set(header.key, Redacted.value(header.value))
        } catch {
          callback(unauthenticated("flyte-auth: the access token cannot be sent as gRPC metadata"))
          return
        }
        callback(null, metadata)
      }
    })
  })

const unauthenticated = (message: string): Error & { code: number } =>
  Object.assign(new Error(message), { code: Status.UNAUTHENTICATED })
