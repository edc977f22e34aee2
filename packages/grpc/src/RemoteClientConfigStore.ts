/**
 * A `ClientConfigStore` that asks Flyte admin over gRPC: `flyteidl.service.AuthMetadataService`'s
 * `GetOAuth2Metadata` (the authorization server's endpoints) and `GetPublicClientConfig` (client id, redirect
 * URI, scopes, the metadata key that carries the token, audience).
 *
 * Both calls are anonymous: they carry no bearer token (give this store only the proxy interceptor, never the auth
 * interceptor, whose `Authenticator` depends on this store). They are made on the first `get`, each with a
 * deadline, retried on `UNAVAILABLE` (`Policies.transientRetry`), and the result is cached for the life of the
 * store; a failure is not cached. Empty proto3 strings count as absent, and values in `overrides` win over the
 * published ones.
 *
 * @example
 * ```ts
 * import { RemoteClientConfigStore } from "@flyte-auth/grpc"
 *
 * const ConfigLive = RemoteClientConfigStore.layer({ endpoint: "flyte.example.com:443" })
 * ```
 *
 * @since 0.1.0
 */
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as ClientConfig from "@flyte-auth/core/ClientConfig"
import * as Policies from "@flyte-auth/core/Policies"
import type * as grpc from "@grpc/grpc-js"
import { credentials as grpcCredentials, Metadata, status as Status } from "@grpc/grpc-js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as FlyteProtos from "./FlyteProtos.js"

/**
 * Where Flyte admin is, and how to reach it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  /** `host:port` of Flyte admin's gRPC endpoint (also `dns:///host:port`). */
  readonly endpoint: string
  /** Plaintext instead of TLS (ignored when `channelCredentials` is given). */
  readonly insecure?: boolean | undefined
  /** The channel credentials, e.g. from `GrpcAuth.channelCredentials` (custom CA, skip verify). */
  readonly channelCredentials?: grpc.ChannelCredentials | undefined
  /** Interceptors of the metadata calls, e.g. `GrpcAuth.proxyInterceptor` (never the auth interceptor). */
  readonly interceptors?: ReadonlyArray<grpc.Interceptor> | undefined
  /** Values set by the user, which win over the published ones. */
  readonly overrides?: ClientConfig.Overrides | undefined
  /** The deadline of each metadata call (default `Policies.httpTimeout`). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * The fully qualified name of the service this store calls.
 *
 * @since 0.1.0
 * @category constants
 */
export const serviceName = "flyteidl.service.AuthMetadataService"

/**
 * Builds the store. The gRPC client is created now (no connection is made until the first `get`) and closed when
 * the scope closes; an endpoint grpc-js cannot parse fails with a `Config` error.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  target: Target
): Effect.Effect<ClientConfig.ClientConfigStore.Service, AuthenticationError, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const Service = FlyteProtos.service("flyteidl/service/auth.proto", serviceName)
          const credentials = target.channelCredentials ??
            (target.insecure === true ? grpcCredentials.createInsecure() : grpcCredentials.createSsl())
          return new Service(target.endpoint, credentials, {
            interceptors: [...(target.interceptors ?? [])]
          }) as unknown as AuthMetadataClient
        },
        catch: (cause) =>
          new AuthenticationError({
            reason: "Config",
            description: `Cannot create a gRPC client of ${serviceName} for ${target.endpoint}`,
            cause
          })
      }),
      (client) => Effect.sync(() => client.close())
    )
    const timeout = Duration.decode(target.timeout ?? Policies.httpTimeout)
    const call = <A>(method: "GetOAuth2Metadata" | "GetPublicClientConfig") =>
      unary<A>(client, method, target.endpoint, timeout).pipe(Effect.retry(Policies.transientRetry))
    return yield* ClientConfig.makeCached(
      Effect.all([
        call<ClientConfig.ServerMetadata>("GetOAuth2Metadata"),
        call<PublicClientAuthConfigResponse>("GetPublicClientConfig")
      ], { concurrency: 2 }).pipe(
        Effect.flatMap(([metadata, publicClient]) =>
          toClientConfig(metadata, publicClient, target.endpoint, target.overrides ?? {})
        ),
        Effect.withSpan("RemoteClientConfigStore.fetch", { attributes: { endpoint: target.endpoint } })
      )
    )
  })

/**
 * The store as a layer (see `make`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (target: Target): Layer.Layer<ClientConfig.ClientConfigStore, AuthenticationError> =>
  Layer.scoped(ClientConfig.ClientConfigStore, make(target))

// --- internals -------------------------------------------------------------------------------------------------

/** `PublicClientAuthConfigResponse` as proto-loader decodes it. */
interface PublicClientAuthConfigResponse {
  readonly client_id?: string | null
  readonly redirect_uri?: string | null
  readonly scopes?: ReadonlyArray<string> | null
  readonly authorization_metadata_key?: string | null
  readonly service_http_endpoint?: string | null
  readonly audience?: string | null
}

type UnaryMethod = (
  request: object,
  metadata: Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void
) => grpc.ClientUnaryCall

interface AuthMetadataClient {
  readonly GetOAuth2Metadata: UnaryMethod
  readonly GetPublicClientConfig: UnaryMethod
  readonly close: () => void
}

const unary = <A>(
  client: AuthMetadataClient,
  method: "GetOAuth2Metadata" | "GetPublicClientConfig",
  endpoint: string,
  timeout: Duration.Duration
): Effect.Effect<A, AuthenticationError> =>
  Effect.async<A, AuthenticationError>((resume) => {
    const call = client[method](
      {},
      new Metadata(),
      { deadline: Date.now() + Duration.toMillis(timeout) },
      (error, response) => {
        if (error !== null) resume(Effect.fail(fromStatus(error, method, endpoint)))
        else resume(Effect.succeed(response as A))
      }
    )
    return Effect.sync(() => call.cancel())
  })

/** grpc-js ends its details with `. Resolution note: ` followed by nothing when the name resolved fine. */
const withoutEmptyResolutionNote = (details: string): string =>
  details.replace(/\.?\s*Resolution note:\s*(?=$|[;)\]]|\n)/g, "")

const fromStatus = (error: grpc.ServiceError, method: string, endpoint: string): AuthenticationError => {
  const what = `${serviceName}/${method} at ${endpoint}`
  switch (error.code) {
    case Status.UNIMPLEMENTED:
      return new AuthenticationError({
        reason: "Config",
        description:
          `The server at ${endpoint} does not implement ${serviceName} (${method} answered UNIMPLEMENTED): ` +
          "configure the OAuth2 client (token endpoint, client id, ...) explicitly or use another configuration store",
        cause: error
      })
    case Status.UNAVAILABLE:
      return new AuthenticationError({
        reason: "Transport",
        description: `Cannot reach ${what}: ${withoutEmptyResolutionNote(error.details)}`,
        cause: error
      })
    case Status.DEADLINE_EXCEEDED:
      return new AuthenticationError({
        reason: "Timeout",
        description: `${what} did not answer before its deadline`,
        cause: error
      })
    default:
      return new AuthenticationError({
        reason: "InvalidResponse",
        description: `${what} failed with ${Status[error.code] ?? error.code}: ${
          withoutEmptyResolutionNote(error.details)
        }`,
        cause: error
      })
  }
}

const toClientConfig = (
  metadata: ClientConfig.ServerMetadata,
  publicClient: PublicClientAuthConfigResponse,
  endpoint: string,
  overrides: ClientConfig.Overrides
): Effect.Effect<ClientConfig.ClientConfig, AuthenticationError> =>
  ClientConfig.fromServerMetadata(metadata, { source: `${serviceName}/GetOAuth2Metadata at ${endpoint}`, overrides }, {
    clientId: publicClient.client_id,
    redirectUri: publicClient.redirect_uri,
    scopes: publicClient.scopes,
    headerKey: publicClient.authorization_metadata_key,
    audience: publicClient.audience,
    serviceHttpEndpoint: publicClient.service_http_endpoint
  })
