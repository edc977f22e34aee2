/**
 * The service that the integrations (gRPC interceptor, HTTP middleware, Promise facade, CLI) ask for a token.
 * It loads credentials from the `Keyring`, refreshes them before they expire, single-flights every refresh and
 * every interactive login, and runs the configured flow again only when a refresh is truly impossible.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { AuthError } from "./AuthError.js"
import type { Credentials } from "./Credentials.js"

/**
 * A request header carrying the access token: `key` comes from `ClientConfig.headerKey`, `value` is
 * `Bearer <token>`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthHeader {
  readonly key: string
  readonly value: Redacted.Redacted<string>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Authenticator extends Context.Tag("@flyte-auth/core/Authenticator")<
  Authenticator,
  Authenticator.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace Authenticator {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The endpoint the credentials are for (the keyring key). */
    readonly endpoint: string
    /** A valid access token: cached, refreshed, or obtained by running the flow. */
    readonly accessToken: Effect.Effect<Redacted.Redacted<string>, AuthError>
    /** The whole credentials behind `accessToken`. */
    readonly credentials: Effect.Effect<Credentials, AuthError>
    /** The header to send: `<headerKey>: Bearer <token>`. */
    readonly header: Effect.Effect<AuthHeader, AuthError>
    /** Forces a refresh now (single flight), falling back to the full flow when the refresh is impossible. */
    readonly refresh: Effect.Effect<Credentials, AuthError>
    /**
     * Tells the authenticator that a server rejected `failed`. The cached credentials are dropped only if they
     * still hold that token (a concurrent caller may already have refreshed them).
     */
    readonly invalidate: (failed: Redacted.Redacted<string>) => Effect.Effect<void>
    /** Forgets the credentials, in memory and in the keyring. */
    readonly logout: Effect.Effect<void>
  }
}

/**
 * What the gRPC interceptor and HTTP helpers need from an authenticated client, as Promises: the facade
 * returned by `createAuthClient` has this shape, so `@flyte-auth/grpc` never imports `@flyte-auth/node`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthClientLike {
  /** The auth headers to add to a request (e.g. `{ "flyte-authorization": "Bearer ..." }`). */
  readonly headers: (options?: { readonly signal?: AbortSignal }) => Promise<Record<string, string>>
  /** Refresh after a server rejected the token in `failedHeaders`; resolves when new headers are available. */
  readonly refresh: (options?: { readonly signal?: AbortSignal }) => Promise<unknown>
}
