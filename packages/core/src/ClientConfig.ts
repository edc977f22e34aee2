/**
 * What a flow needs to know about the identity provider and the client, and where it comes from.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type { AuthenticationError } from "./AuthError.js"

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
  /** The issuer, when the configuration came from discovery. */
  issuer: Schema.optional(Schema.String)
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
