/**
 * What a flow needs to know about the identity provider and the client, and where it comes from.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { AuthenticationError } from "./AuthError.js"
import { decodeBody, describeUrl, requestJson } from "./internal/oauthHttp.js"
import * as SingleFlight from "./internal/singleFlight.js"
import * as Policies from "./Policies.js"

/**
 * The OAuth2 parameters of a client. Servers that send empty strings for absent values (Flyte's protos do)
 * are normalised to absent by the stores.
 *
 * @since 0.1.0
 * @category models
 */
export class ClientConfig extends Schema.Class<ClientConfig>("@flyte-auth/core/ClientConfig")({
  tokenEndpoint: Schema.String,
  authorizationEndpoint: Schema.optional(Schema.String),
  deviceAuthorizationEndpoint: Schema.optional(Schema.String),
  redirectUri: Schema.optional(Schema.String),
  clientId: Schema.optional(Schema.String),
  scopes: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** The request header (gRPC metadata key) that carries `Bearer <token>`. */
  headerKey: Schema.optionalWith(Schema.String, { default: () => "authorization" }),
  audience: Schema.optional(Schema.String),
  /** The issuer, when the server published one: the expected `iss` of an id_token. */
  issuer: Schema.optional(Schema.String),
  /** The issuer's JWK Set (`jwks_uri`), against which an id_token's signature is checked. */
  jwksUri: Schema.optional(Schema.String),
  /**
   * How the token endpoint accepts client credentials (`token_endpoint_auth_methods_supported`), when published:
   * `client_secret_basic`, `client_secret_post`, `none`, ...
   */
  tokenEndpointAuthMethods: Schema.optional(Schema.Array(Schema.String)),
  /** The token revocation endpoint (RFC 7009), when published. */
  revocationEndpoint: Schema.optional(Schema.String),
  /** Flyte admin's HTTP endpoint, when its client configuration names one (`service_http_endpoint`). */
  serviceHttpEndpoint: Schema.optional(Schema.String),
  /** Flyte 2's `dataplane_domain`: where dataplane operations go, when the server published one. */
  dataplaneDomain: Schema.optional(Schema.String)
}) {}

/**
 * Where the `ClientConfig` comes from: a static value, Flyte admin's metadata endpoints, or OIDC discovery.
 * Remote stores fetch once, cache the result and retry transient failures.
 *
 * @since 0.1.0
 * @category tags
 */
export class ClientConfigStore extends Context.Tag("@flyte-auth/core/ClientConfigStore")<
  ClientConfigStore,
  ClientConfigStore.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace ClientConfigStore {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly get: Effect.Effect<ClientConfig, AuthenticationError>
  }
}

/**
 * A store that always answers the given configuration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStatic = (config: ClientConfig): Layer.Layer<ClientConfigStore> =>
  Layer.succeed(ClientConfigStore, { get: Effect.succeed(config) })

/**
 * Empty strings (as proto3 and some servers send for "unset") become `undefined`.
 *
 * @since 0.1.0
 * @category utils
 */
export const nonEmpty = (value: string | null | undefined): string | undefined =>
  value === undefined || value === null || value.trim() === "" ? undefined : value

/**
 * Values set by the user (config file, environment, options). Each one that is set wins over what a server
 * publishes; empty strings and empty scope lists count as unset.
 *
 * @since 0.1.0
 * @category models
 */
export interface Overrides {
  readonly clientId?: string | undefined
  readonly redirectUri?: string | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly audience?: string | undefined
  readonly headerKey?: string | undefined
}

/**
 * `config` with `overrides` applied: each override that is set (not empty) wins. A header key is trimmed and
 * lower-cased, as gRPC metadata keys are.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withOverrides = (config: ClientConfig, overrides: Overrides): ClientConfig => {
  const headerKey = nonEmpty(overrides.headerKey)
  return new ClientConfig({
    ...config,
    clientId: nonEmpty(overrides.clientId) ?? config.clientId,
    redirectUri: nonEmpty(overrides.redirectUri) ?? config.redirectUri,
    scopes: nonEmptyScopes(overrides.scopes) ?? config.scopes,
    audience: nonEmpty(overrides.audience) ?? config.audience,
    headerKey: headerKey === undefined ? config.headerKey : normalizeHeaderKey(headerKey)
  })
}

/**
 * The scopes that are not empty (trimmed), or `undefined` when none is.
 *
 * @since 0.1.0
 * @category utils
 */
export const nonEmptyScopes = (scopes: ReadonlyArray<string> | null | undefined): ReadonlyArray<string> | undefined => {
  const present = scopes?.flatMap((scope) => nonEmpty(scope)?.trim() ?? [])
  return present === undefined || present.length === 0 ? undefined : present
}

/**
 * A published header key (`authorization_metadata_key`) as it is sent: trimmed, lower-cased, `authorization`
 * when none is published.
 *
 * @since 0.1.0
 * @category utils
 */
export const normalizeHeaderKey = (key: string | null | undefined): string =>
  nonEmpty(key)?.trim().toLowerCase() ?? "authorization"

/**
 * Builds a store around an effect that fetches the configuration. The first `get` runs `fetch`; callers that
 * arrive while it runs wait for the same result, so N concurrent first callers cause one fetch. A success is kept
 * for the life of the store; a failure is handed to the callers that waited for it and then forgotten, so the
 * next `get` fetches again. Interrupting a caller does not interrupt a fetch others may be waiting for; closing
 * the scope that made the store does.
 *
 * This is the building block of the remote stores here and in `@flyte-auth/grpc`: give it the fetch with its
 * retry policy already applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCached = <R>(
  fetch: Effect.Effect<ClientConfig, AuthenticationError, R>
): Effect.Effect<ClientConfigStore.Service, never, R | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const flight = yield* SingleFlight.make(Effect.provide(fetch, context))
    return { get: flight.get } satisfies ClientConfigStore.Service
  })

/**
 * A store backed by Flyte admin's HTTP metadata endpoints: `GET {baseUrl}/.well-known/oauth-authorization-server`
 * (RFC 8414 metadata) and `GET {baseUrl}/config/v1/flyte_client` (client id, redirect URI, scopes, the header
 * that carries the token, audience). Both are fetched together on the first `get`, each retried on transient
 * failure (`Policies.transientRetry`), and the result is cached (see `makeCached`). Empty strings count as
 * absent; `overrides` win over published values.
 *
 * The requests go through the `HttpClient` in context, which must not itself add flyte-auth's token.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFlyteHttp = (
  baseUrl: string,
  overrides: Overrides = {}
): Effect.Effect<ClientConfigStore.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    makeCached(
      Effect.gen(function*() {
        const base = yield* parseBaseUrl(baseUrl, "Flyte admin endpoint")
        const [metadata, publicClient] = yield* Effect.all([
          getJson(client, new URL(".well-known/oauth-authorization-server", base), AuthorizationServerMetadataJson),
          getJson(client, new URL("config/v1/flyte_client", base), FlyteClientConfig)
        ], { concurrency: 2 })
        const metadataUrl = describeUrl(new URL(".well-known/oauth-authorization-server", base).href)
        return yield* fromServerMetadata(metadata, { source: `The metadata at ${metadataUrl}`, base, overrides }, {
          clientId: nonEmpty(publicClient.client_id) ?? nonEmpty(publicClient.clientId),
          redirectUri: nonEmpty(publicClient.redirect_uri) ?? nonEmpty(publicClient.redirectUri),
          scopes: nonEmptyScopes(publicClient.scopes),
          audience: nonEmpty(publicClient.audience),
          headerKey: nonEmpty(publicClient.authorization_metadata_key) ??
            nonEmpty(publicClient.authorizationMetadataKey),
          serviceHttpEndpoint: nonEmpty(publicClient.service_http_endpoint) ??
            nonEmpty(publicClient.serviceHttpEndpoint)
        })
      }).pipe(Effect.withSpan("ClientConfig.fetchFlyteHttp"))
    ))

/**
 * The store of `makeFlyteHttp` as a layer.
 *
 * @example
 * ```ts
 * import { ClientConfig } from "@flyte-auth/core"
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 *
 * const ConfigLive = ClientConfig.layerFlyteHttp("https://flyte.example.com").pipe(
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFlyteHttp = (
  baseUrl: string,
  overrides?: Overrides
): Layer.Layer<ClientConfigStore, never, HttpClient.HttpClient> =>
  Layer.scoped(ClientConfigStore, makeFlyteHttp(baseUrl, overrides))

/**
 * A store backed by OpenID Connect discovery: `GET {issuer}/.well-known/openid-configuration`. The issuer in the
 * document must be the one asked for (a trailing slash aside). Client id, redirect URI, scopes, audience and header
 * key are not part of discovery and come from `overrides`. Fetched on the first `get`, retried on transient
 * failure and cached (see `makeCached`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeOidcDiscovery = (
  issuer: string,
  overrides: Overrides = {}
): Effect.Effect<ClientConfigStore.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    makeCached(
      Effect.gen(function*() {
        const base = yield* parseBaseUrl(issuer, "OIDC issuer")
        const url = new URL(".well-known/openid-configuration", base)
        const metadata = yield* getJson(client, url, AuthorizationServerMetadataJson)
        const published = nonEmpty(metadata.issuer)
        if (published !== undefined && stripSlash(published) !== stripSlash(issuer)) {
          return yield* new AuthenticationError({
            reason: "InvalidResponse",
            description: `The discovery document at ${describeUrl(url.href)} names issuer ${
              describeUrl(published)
            }, not ${describeUrl(issuer)}`
          })
        }
        return yield* fromServerMetadata(metadata, {
          source: `The metadata at ${describeUrl(url.href)}`,
          base,
          overrides
        })
      }).pipe(Effect.withSpan("ClientConfig.fetchOidcDiscovery"))
    ))

/**
 * The store of `makeOidcDiscovery` as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOidcDiscovery = (
  issuer: string,
  overrides?: Overrides
): Layer.Layer<ClientConfigStore, never, HttpClient.HttpClient> =>
  Layer.scoped(ClientConfigStore, makeOidcDiscovery(issuer, overrides))

/**
 * Authorization server metadata (RFC 8414, OIDC discovery, Flyte's `OAuth2MetadataResponse`) as the stores read
 * it: the fields a client uses, with their wire names. Empty strings and empty lists count as absent.
 *
 * @since 0.2.0
 * @category models
 */
export interface ServerMetadata {
  readonly issuer?: string | null | undefined
  readonly token_endpoint?: string | null | undefined
  readonly authorization_endpoint?: string | null | undefined
  readonly device_authorization_endpoint?: string | null | undefined
  readonly jwks_uri?: string | null | undefined
  readonly revocation_endpoint?: string | null | undefined
  readonly token_endpoint_auth_methods_supported?: ReadonlyArray<string> | null | undefined
}

/**
 * What a Flyte admin publishes about its public client (`PublicClientAuthConfigResponse`), already read from
 * its wire form. Empty strings count as absent.
 *
 * @since 0.2.0
 * @category models
 */
export interface PublishedClient {
  readonly clientId?: string | null | undefined
  readonly redirectUri?: string | null | undefined
  readonly scopes?: ReadonlyArray<string> | null | undefined
  readonly audience?: string | null | undefined
  /** `authorization_metadata_key`: the header that carries the token. */
  readonly headerKey?: string | null | undefined
  readonly serviceHttpEndpoint?: string | null | undefined
  /** Flyte 2's `dataplane_domain`. */
  readonly dataplaneDomain?: string | null | undefined
}

/**
 * The `ClientConfig` of a server's metadata and published client, with `overrides` applied: the one mapping of
 * every store (Flyte HTTP, OIDC discovery, and the gRPC and Connect `AuthMetadataService` stores). Endpoints
 * must be http(s) URLs (relative ones resolve against `base`); a missing `token_endpoint` or an invalid URL
 * fails with reason `InvalidResponse`, naming `source` (e.g. `"The metadata at https://…"`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromServerMetadata = (
  metadata: ServerMetadata,
  options: { readonly source: string; readonly base?: URL | undefined; readonly overrides?: Overrides | undefined },
  published: PublishedClient = {}
): Effect.Effect<ClientConfig, AuthenticationError> =>
  Effect.gen(function*() {
    const endpoint = (name: string, value: string | null | undefined) =>
      Effect.suspend(() => {
        const present = nonEmpty(value)?.trim()
        if (present === undefined) return Effect.succeed(undefined)
        const resolved = parseUrl(present, options.base)
        return resolved !== null && (resolved.protocol === "https:" || resolved.protocol === "http:")
          ? Effect.succeed(resolved.href)
          : Effect.fail(
            new AuthenticationError({
              reason: "InvalidResponse",
              description: `${options.source} has an invalid ${name}`
            })
          )
      })
    const tokenEndpoint = yield* endpoint("token_endpoint", metadata.token_endpoint)
    if (tokenEndpoint === undefined) {
      return yield* new AuthenticationError({
        reason: "InvalidResponse",
        description: `${options.source} has no token_endpoint`
      })
    }
    return withOverrides(
      new ClientConfig({
        tokenEndpoint,
        authorizationEndpoint: yield* endpoint("authorization_endpoint", metadata.authorization_endpoint),
        deviceAuthorizationEndpoint: yield* endpoint(
          "device_authorization_endpoint",
          metadata.device_authorization_endpoint
        ),
        redirectUri: nonEmpty(published.redirectUri),
        clientId: nonEmpty(published.clientId),
        scopes: nonEmptyScopes(published.scopes) ?? [],
        headerKey: normalizeHeaderKey(published.headerKey),
        audience: nonEmpty(published.audience),
        issuer: nonEmpty(metadata.issuer),
        jwksUri: yield* endpoint("jwks_uri", metadata.jwks_uri),
        tokenEndpointAuthMethods: nonEmptyScopes(metadata.token_endpoint_auth_methods_supported),
        revocationEndpoint: yield* endpoint("revocation_endpoint", metadata.revocation_endpoint),
        serviceHttpEndpoint: nonEmpty(published.serviceHttpEndpoint),
        dataplaneDomain: nonEmpty(published.dataplaneDomain)
      }),
      options.overrides ?? {}
    )
  })

// --- internals -------------------------------------------------------------------------------------------------

const OptionalString = Schema.optionalWith(Schema.String, { nullable: true, exact: true })

/** RFC 8414 authorization server metadata / OIDC discovery as JSON (only the fields used here). */
const AuthorizationServerMetadataJson = Schema.Struct({
  issuer: OptionalString,
  token_endpoint: OptionalString,
  authorization_endpoint: OptionalString,
  device_authorization_endpoint: OptionalString,
  jwks_uri: OptionalString,
  revocation_endpoint: OptionalString,
  token_endpoint_auth_methods_supported: Schema.optionalWith(Schema.Array(Schema.String), {
    nullable: true,
    exact: true
  })
})

/** Flyte's `PublicClientAuthConfigResponse` as JSON (proto names, or the camelCase of a JSON gateway). */
const FlyteClientConfig = Schema.Struct({
  client_id: OptionalString,
  clientId: OptionalString,
  redirect_uri: OptionalString,
  redirectUri: OptionalString,
  scopes: Schema.optionalWith(Schema.Array(Schema.String), { nullable: true, exact: true }),
  authorization_metadata_key: OptionalString,
  authorizationMetadataKey: OptionalString,
  service_http_endpoint: OptionalString,
  serviceHttpEndpoint: OptionalString,
  audience: OptionalString
})

const getJson = <A, I>(client: HttpClient.HttpClient, url: URL, schema: Schema.Schema<A, I>) => {
  const target = describeUrl(url.href)
  return requestJson(client, HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson), target).pipe(
    Effect.flatMap((body) => decodeBody(schema, body, target)),
    Effect.retry(Policies.transientRetry)
  )
}

const parseUrl = (url: string, base?: URL): URL | null => {
  try {
    return new URL(url, base)
  } catch {
    return null
  }
}

const stripSlash = (url: string): string => url.replace(/\/+$/, "")

/** The base URL with a trailing slash, so relative paths resolve below it. */
const parseBaseUrl = (url: string, what: string): Effect.Effect<URL, AuthenticationError> => {
  const parsed = parseUrl(`${stripSlash(url.trim())}/`)
  return parsed !== null && (parsed.protocol === "https:" || parsed.protocol === "http:") && parsed.search === "" &&
      parsed.hash === ""
    ? Effect.succeed(parsed)
    : Effect.fail(
      new AuthenticationError({
        reason: "Config",
        description: `The ${what} must be an http(s) URL without query, got ${JSON.stringify(describeUrl(url))}`
      })
    )
}
