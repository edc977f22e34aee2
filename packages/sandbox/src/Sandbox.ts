/**
 * A real, local Flyte authentication environment on loopback: an OAuth 2.0 / OpenID Connect IdP
 * (`oidc-provider`) and a Flyte-like admin serving flyteidl's `AuthMetadataService` and `IdentityService` over gRPC,
 * plus their HTTP twins; with `flyte2`, also a Flyte-2-like admin serving flyteidl2's over ConnectRPC.
 *
 * It is the world the flyte-auth clients are tested against, so it shares no code with them.
 *
 * @example
 * ```ts
 * import { startSandbox } from "@flyte-auth/sandbox"
 *
 * const sandbox = await startSandbox({ autoApprove: true })
 * console.log(sandbox.adminGrpc, sandbox.issuer)
 * await sandbox.close()
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import { startAdmin } from "./internal/admin.js"
import type { Admin } from "./internal/admin.js"
import { makeVerifier } from "./internal/bearer.js"
import type { ConnectAdmin } from "./internal/connectAdmin.js"
import { Counters } from "./internal/counters.js"
import { startIdp } from "./internal/idp.js"
import type { Idp } from "./internal/idp.js"
import { assertLoopback } from "./internal/net.js"
import { Store } from "./internal/store.js"
import * as UserAgent from "./UserAgent.js"

/**
 * How to start a sandbox. Every port may be 0 (the default): the OS picks a free one.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Loopback address to listen on. Default `"127.0.0.1"`; only loopback addresses are accepted. */
  readonly host?: string
  /** Port of the IdP (issuer). Default 0. */
  readonly idpPort?: number
  /** Port of the admin's gRPC server. Default 0. */
  readonly adminGrpcPort?: number
  /** Port of the admin's HTTP server. Default 0. */
  readonly adminHttpPort?: number
  /**
   * Also start a Flyte-2-like admin (`Service.adminConnect`): flyteidl2's `AuthMetadataService` (anonymous),
   * `IdentityService/UserInfo` and `StateService/Watch` (both need the bearer token) served by
   * `@connectrpc/connect-node` on one port, with the Connect, gRPC and gRPC-web protocols over HTTP/1.1 and h2c.
   * It shares the IdP, the header key, the revocation cutoff (`rejectTokensIssuedBefore`) and the proxy
   * (`proxyToken`) with the Flyte 1 admin, and counts its calls apart (`Stats.connectAdmin`). Default false.
   */
  readonly flyte2?: boolean
  /** Port of the Flyte 2 admin (`flyte2`). Default 0. */
  readonly adminConnectPort?: number
  /**
   * The pause between the live updates of a `StateService/Watch` (after its sentinel), in milliseconds: room to
   * act while a stream is open. Default 20.
   */
  readonly watchIntervalMs?: number
  /** Lifetime of access tokens (all grants). Default 600. */
  readonly tokenTtlSeconds?: number
  /** Lifetime of refresh tokens; each refresh rotates the token. Default 86400. */
  readonly refreshTokenTtlSeconds?: number
  /** Lifetime of device codes. Default 600. */
  readonly deviceCodeTtlSeconds?: number
  /** Sign the demo user in and grant consent without showing pages. Default false. */
  readonly autoApprove?: boolean
  /**
   * The metadata/header key the admin reads the bearer token from, lower-cased (`authorization` is accepted too).
   * Default `"flyte-authorization"`.
   */
  readonly headerKey?: string
  /** The demo user. Default `demo` / `demo-password`. */
  readonly user?: { readonly username: string; readonly password: string }
  /** Audience (resource indicator) of every access token, checked by the admin. Default `"http://flyte-admin"`. */
  readonly audience?: string
  /** Client id of the public (PKCE / device flow) client. Default `"flytectl"`. */
  readonly publicClientId?: string
  /** The confidential (client credentials) client. Default id `"flytepropeller"`, random secret. */
  readonly confidentialClient?: { readonly clientId?: string; readonly clientSecret?: string }
  /** A second confidential client, for two service accounts on one endpoint. Default id `"flyte-ci"`, random secret. */
  readonly ciClient?: { readonly clientId?: string; readonly clientSecret?: string }
  /** Redirect URI published by `GetPublicClientConfig`. Default `"http://localhost:53593/callback"` (like Flyte). */
  readonly redirectUri?: string
  /** Scopes published by `GetPublicClientConfig`. Default `["all", "offline_access"]`. */
  readonly scopes?: ReadonlyArray<string>
  /** Offer the device authorization grant. Default true; false removes the endpoint from the metadata. */
  readonly deviceFlow?: boolean
  /** `interval` returned by the device authorization endpoint. Default 5. */
  readonly devicePollIntervalSeconds?: number
  /** Answer polls faster than the interval with `slow_down` (interval +5 s), per RFC 8628 §3.5. Default false. */
  readonly enforceDevicePollInterval?: boolean
  /**
   * Put the admins behind an identity-aware proxy (as GCP IAP or Cloudflare Access would): every admin call, gRPC
   * (`AuthMetadataService` included), HTTP and ConnectRPC, is refused unless it carries `proxy-authorization:
   * Bearer <token>` with exactly this token: HTTP 407 with `proxy-authenticate` (the Flyte 2 admin's with a Connect
   * error body, `unauthenticated`, that says the proxy refused it), gRPC `UNAUTHENTICATED` whose details say so.
   * Default: no proxy.
   */
  readonly proxyToken?: string
  /**
   * Put the IdP behind the same proxy (`proxyToken` required): its back-channel endpoints (metadata, JWKS, token,
   * device authorization, revocation, introspection, userinfo) answer 407 without `proxy-authorization: Bearer
   * <proxyToken>`. Browser pages (sign-in, consent, device verification) pass, as a proxy lets a signed-in browser
   * through by its cookie. Default false.
   */
  readonly proxyGuardsIdp?: boolean
  /**
   * Scopes the IdP does not know, so never grants: asked for, they are left out of the grant and of the token
   * response's `scope` (a down-scoped grant, RFC 6749 §3.3), and a refresh that asks for them again is
   * `invalid_scope`. Works for the admin's scopes (`all`) and OIDC ones (`offline_access`, `profile`, `email`).
   * Default: none.
   */
  readonly withholdScopes?: ReadonlyArray<string>
  /**
   * Refuse an authorize request (GET) that asks for `openid` without a `nonce`, as Glewlwyd does: the client's
   * redirect URI receives `error=invalid_request&error_description=nonce required`. Default false (oidc-provider's
   * own rule: a nonce is optional with `response_type=code`).
   */
  readonly requireNonce?: boolean
  /**
   * How the token endpoint reads HTTP Basic client credentials. `"encoded"` (default, oidc-provider's own rule):
   * form-url-decoded first, per RFC 6749 §2.3.1. `"raw"`: compared as sent, as Glewlwyd and several other IdPs
   * do. They differ only for a secret (or client id) that form-encoding changes, e.g. one with `+`, `/` or `=`.
   */
  readonly basicCredentials?: "encoded" | "raw"
  /**
   * Approve every device code as the demo user as soon as it is issued, as a second device would (the sandbox's
   * own `UserAgent` opens the verification URI, confirms, signs in and allows): a device login completes without
   * anyone at a browser, e.g. on a headless machine. Default false.
   */
  readonly approveDeviceCodes?: boolean
  /** Called with unexpected server-side errors (the sandbox never logs by itself). */
  readonly onServerError?: (error: unknown) => void
}

/**
 * Token-endpoint requests counted by grant type.
 *
 * @since 0.1.0
 * @category models
 */
export interface GrantTypeCounts {
  readonly authorization_code: number
  readonly refresh_token: number
  readonly client_credentials: number
  readonly device_code: number
  /** Requests with a missing or unsupported `grant_type`. */
  readonly other: number
}

/**
 * What the admin saw.
 *
 * @since 0.1.0
 * @category models
 */
export interface AdminStats {
  /** `IdentityService/UserInfo` calls (gRPC) and `GET /me` (HTTP). */
  readonly userInfoCalls: number
  /** `GET /api/v1/whoami` calls. */
  readonly whoamiCalls: number
  /** `GetOAuth2Metadata` (gRPC) and `/.well-known/oauth-authorization-server` (HTTP) calls. */
  readonly oauth2MetadataCalls: number
  /** `GetPublicClientConfig` (gRPC) and `/config/v1/flyte_client` (HTTP) calls. */
  readonly publicClientConfigCalls: number
  /** Protected calls rejected for a missing, invalid, expired or cut-off token. */
  readonly authFailures: number
  /** Why the last protected call was rejected. */
  readonly lastAuthFailure: string | undefined
  /** Admin calls the proxy (`Options.proxyToken`) refused: no or a wrong `proxy-authorization`. */
  readonly proxyRejections: number
}

/**
 * What the Flyte 2 admin (`Options.flyte2`) saw, whatever the protocol (all zero when it is not running).
 *
 * @since 0.2.0
 * @category models
 */
export interface ConnectAdminStats {
  /** `flyteidl2.auth.IdentityService/UserInfo` calls. */
  readonly userInfoCalls: number
  /** `flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata` calls. */
  readonly oauth2MetadataCalls: number
  /** `flyteidl2.auth.AuthMetadataService/GetPublicClientConfig` calls. */
  readonly publicClientConfigCalls: number
  /** `flyteidl2.workflow.StateService/Watch` calls. */
  readonly watchCalls: number
  /** Protected calls rejected for a missing, invalid, expired or cut-off token. */
  readonly authFailures: number
  /** Why the last protected call was rejected. */
  readonly lastAuthFailure: string | undefined
  /** Requests the proxy (`Options.proxyToken`) refused with HTTP 407. */
  readonly proxyRejections: number
}

/**
 * What the sandbox saw since it started or since the last `resetStats()`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Every request to the token endpoint, by grant type (including failed and injected ones). */
  readonly tokenRequests: GrantTypeCounts
  /** Token-endpoint requests answered with an error (e.g. `authorization_pending`, `invalid_grant`). */
  readonly tokenErrors: GrantTypeCounts
  /** Token-endpoint requests answered by `failNextTokenRequests`. */
  readonly injectedTokenFailures: number
  /** IdP calls the proxy refused (`Options.proxyGuardsIdp`). Admin ones are in `admin.proxyRejections`. */
  readonly proxyRejections: number
  /** Requests to the authorization endpoint. */
  readonly authorizationRequests: number
  /** Requests to the device authorization endpoint. */
  readonly deviceAuthorizationRequests: number
  /** Successful sign-ins of the demo user (including auto-approved ones). */
  readonly logins: number
  /** Sign-ins rejected for a wrong username or password. */
  readonly failedLogins: number
  /** Consents granted (including auto-approved ones). */
  readonly consents: number
  /** Sign-ins or consents the user cancelled. */
  readonly denials: number
  /** Unexpected IdP errors (see `Options.onServerError`). */
  readonly serverErrors: number
  readonly admin: AdminStats
  /** The Flyte 2 admin (`Options.flyte2`). */
  readonly connectAdmin: ConnectAdminStats
}

/**
 * IdP endpoints, as published in its metadata.
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoints {
  readonly authorization: string
  readonly token: string
  /** Absent when the sandbox was started with `deviceFlow: false`. */
  readonly deviceAuthorization: string | undefined
  readonly jwks: string
  readonly revocation: string | undefined
  readonly introspection: string | undefined
  readonly userinfo: string | undefined
}

/**
 * A simulated token-endpoint failure, see `Service.failNextTokenRequests`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenFailure {
  /** HTTP status. Default 503. */
  readonly status?: number
  /** Response body: an object is sent as JSON, a string as `text/html` when it starts with `<`, else `text/plain`. Default `{ error: "temporarily_unavailable", ... }`. */
  readonly body?: unknown
}

/**
 * A running sandbox.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Admin gRPC address, `"127.0.0.1:<port>"` (plaintext). */
  readonly adminGrpc: string
  /** Admin HTTP base URL, `"http://127.0.0.1:<port>"`. */
  readonly adminHttp: string
  /**
   * The Flyte 2 admin's base URL, `"http://127.0.0.1:<port>"` (Connect, gRPC and gRPC-web; HTTP/1.1 and h2c), when
   * started with `flyte2`.
   */
  readonly adminConnect: string | undefined
  /** The IdP's issuer, `"http://127.0.0.1:<port>"`. */
  readonly issuer: string
  /** Audience of every access token. */
  readonly audience: string
  /** Header / metadata key the admin publishes as `authorization_metadata_key`. */
  readonly headerKey: string
  /** Redirect URI published by the admin (any loopback port is accepted by the IdP). */
  readonly redirectUri: string
  /** Scopes published by the admin. */
  readonly scopes: ReadonlyArray<string>
  readonly endpoints: Endpoints
  readonly clients: {
    readonly public: { readonly clientId: string }
    readonly confidential: { readonly clientId: string; readonly clientSecret: string }
    /** The second confidential client (`ciClient`). */
    readonly ci: { readonly clientId: string; readonly clientSecret: string }
  }
  readonly user: { readonly username: string; readonly password: string; readonly subject: string }
  readonly stats: () => Stats
  readonly adminStats: () => AdminStats
  /** What the Flyte 2 admin saw (`Options.flyte2`). */
  readonly connectAdminStats: () => ConnectAdminStats
  readonly resetStats: () => void
  /** Both admins reject (`UNAUTHENTICATED` / 401) every access token issued before `date` (default: now). */
  readonly rejectTokensIssuedBefore: (date?: Date) => void
  /** Undoes `rejectTokensIssuedBefore`. */
  readonly acceptAllTokens: () => void
  /** Forgets every refresh token, so the next refresh fails with `invalid_grant`. Returns how many were dropped. */
  readonly revokeRefreshTokens: () => number
  /** Answers the next `count` token-endpoint requests (any grant type) with `failure` instead of processing them. */
  readonly failNextTokenRequests: (count?: number, failure?: TokenFailure) => void
  /** Stops every server and frees every port (idempotent). */
  readonly close: () => Promise<void>
}

/**
 * The sandbox as an Effect service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Sandbox extends Context.Tag("@flyte-auth/sandbox/Sandbox")<Sandbox, Service>() {}

/**
 * The sandbox could not start (e.g. a fixed port is taken).
 *
 * @since 0.1.0
 * @category errors
 */
export class SandboxError extends Schema.TaggedError<SandboxError>("@flyte-auth/sandbox/SandboxError")(
  "SandboxError",
  {
    reason: Schema.Literal("StartFailed"),
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `flyte-auth sandbox failed to start: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}

/**
 * Default demo user.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultUser = { username: "demo", password: "demo-password" } as const

const str = (u: unknown): string | undefined => typeof u === "string" && u.length > 0 ? u : undefined

/**
 * Starts a sandbox. Resolve `close()` when done.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startSandbox = async (options: Options = {}): Promise<Service> => {
  const host = options.host ?? "127.0.0.1"
  assertLoopback(host)
  const counters = new Counters()
  const store = new Store()
  const username = options.user?.username ?? defaultUser.username
  const password = options.user?.password ?? defaultUser.password
  const user = {
    username,
    password,
    subject: `sandbox|${username}`,
    name: `${username.charAt(0).toUpperCase()}${username.slice(1)} User`,
    email: `${username}@flyte-sandbox.local`
  }
  const audience = options.audience ?? "http://flyte-admin"
  const headerKey = (options.headerKey ?? "flyte-authorization").toLowerCase()
  const publicClientId = options.publicClientId ?? "flytectl"
  const confidentialClientId = options.confidentialClient?.clientId ?? "flytepropeller"
  const confidentialClientSecret = options.confidentialClient?.clientSecret ??
    crypto.randomBytes(24).toString("base64url")
  const ciClientId = options.ciClient?.clientId ?? "flyte-ci"
  const ciClientSecret = options.ciClient?.clientSecret ?? crypto.randomBytes(24).toString("base64url")
  const redirectUri = options.redirectUri ?? "http://localhost:53593/callback"
  const scopes = [...(options.scopes ?? ["all", "offline_access"])]
  const onServerError = options.onServerError ?? (() => {})
  if (options.proxyGuardsIdp === true && options.proxyToken === undefined) {
    throw new Error("flyte-auth sandbox: proxyGuardsIdp needs a proxyToken")
  }

  const idp: Idp = await startIdp({
    host,
    port: options.idpPort ?? 0,
    tokenTtlSeconds: options.tokenTtlSeconds ?? 600,
    refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? 86_400,
    deviceCodeTtlSeconds: options.deviceCodeTtlSeconds ?? 600,
    autoApprove: options.autoApprove ?? false,
    onDeviceCode: options.approveDeviceCodes === true
      ? (verificationUriComplete) =>
        void UserAgent.make().approveDevice({ verificationUriComplete }, user).then(
          (result) => {
            if (result.outcome !== "approved") onServerError(new Error(`device approval: HTTP ${result.status}`))
          },
          onServerError
        )
      : undefined,
    user,
    publicClientId,
    confidentialClientId,
    confidentialClientSecret,
    ciClientId,
    ciClientSecret,
    audience,
    resourceScopes: ["all"],
    deviceFlow: options.deviceFlow ?? true,
    devicePollIntervalSeconds: options.devicePollIntervalSeconds ?? 5,
    enforceDevicePollInterval: options.enforceDevicePollInterval ?? false,
    withholdScopes: options.withholdScopes ?? [],
    requireNonce: options.requireNonce ?? false,
    basicCredentials: options.basicCredentials ?? "encoded",
    proxyToken: options.proxyGuardsIdp === true ? options.proxyToken : undefined,
    counters,
    store,
    onServerError
  })
  const verifier = makeVerifier({ issuer: idp.issuer, audience, headerKey, jwks: idp.publicJwks })
  let admin: Admin
  let connectAdmin: ConnectAdmin | undefined
  try {
    admin = await startAdmin({
      host,
      grpcPort: options.adminGrpcPort ?? 0,
      httpPort: options.adminHttpPort ?? 0,
      issuer: idp.issuer,
      audience,
      headerKey,
      publicClientId,
      redirectUri,
      scopes,
      verifier,
      counters: counters.admin,
      proxyToken: options.proxyToken
    })
  } catch (error) {
    await idp.close()
    throw error
  }
  if (options.flyte2 === true) {
    try {
      // Loaded only here: connect-node and the flyteidl2 descriptors stay out of a Flyte-1-only sandbox.
      const { startConnectAdmin } = await import("./internal/connectAdmin.js")
      connectAdmin = await startConnectAdmin({
        host,
        port: options.adminConnectPort ?? 0,
        authorizationServerMetadata: admin.authorizationServerMetadata,
        audience,
        headerKey,
        publicClientId,
        redirectUri,
        scopes,
        verifier,
        counters: counters.connectAdmin,
        proxyToken: options.proxyToken,
        watchUpdateIntervalMs: options.watchIntervalMs ?? 20
      })
    } catch (error) {
      await Promise.all([admin.close(), idp.close()])
      throw error
    }
  }

  const metadata = admin.authorizationServerMetadata
  let closing: Promise<void> | undefined
  const adminStats = (): AdminStats => ({
    userInfoCalls: counters.admin.userInfoCalls,
    whoamiCalls: counters.admin.whoamiCalls,
    oauth2MetadataCalls: counters.admin.oauth2MetadataCalls,
    publicClientConfigCalls: counters.admin.publicClientConfigCalls,
    authFailures: counters.admin.authFailures,
    lastAuthFailure: counters.admin.lastAuthFailure,
    proxyRejections: counters.admin.proxyRejections
  })
  const connectAdminStats = (): ConnectAdminStats => ({
    userInfoCalls: counters.connectAdmin.userInfoCalls,
    oauth2MetadataCalls: counters.connectAdmin.oauth2MetadataCalls,
    publicClientConfigCalls: counters.connectAdmin.publicClientConfigCalls,
    watchCalls: counters.connectAdmin.watchCalls,
    authFailures: counters.connectAdmin.authFailures,
    lastAuthFailure: counters.connectAdmin.lastAuthFailure,
    proxyRejections: counters.connectAdmin.proxyRejections
  })

  return {
    adminGrpc: admin.grpcAddress,
    adminHttp: admin.httpUrl,
    adminConnect: connectAdmin?.url,
    issuer: idp.issuer,
    audience,
    headerKey,
    redirectUri,
    scopes,
    endpoints: {
      authorization: str(metadata.authorization_endpoint)!,
      token: str(metadata.token_endpoint)!,
      deviceAuthorization: str(metadata.device_authorization_endpoint),
      jwks: str(metadata.jwks_uri)!,
      revocation: str(metadata.revocation_endpoint),
      introspection: str(metadata.introspection_endpoint),
      userinfo: str(metadata.userinfo_endpoint)
    },
    clients: {
      public: { clientId: publicClientId },
      confidential: { clientId: confidentialClientId, clientSecret: confidentialClientSecret },
      ci: { clientId: ciClientId, clientSecret: ciClientSecret }
    },
    user: { username, password, subject: user.subject },
    stats: () => ({
      tokenRequests: { ...counters.tokenRequests },
      tokenErrors: { ...counters.tokenErrors },
      injectedTokenFailures: counters.injectedTokenFailures,
      proxyRejections: counters.idpProxyRejections,
      authorizationRequests: counters.authorizationRequests,
      deviceAuthorizationRequests: counters.deviceAuthorizationRequests,
      logins: counters.logins,
      failedLogins: counters.failedLogins,
      consents: counters.consents,
      denials: counters.denials,
      serverErrors: counters.serverErrors,
      admin: adminStats(),
      connectAdmin: connectAdminStats()
    }),
    adminStats,
    connectAdminStats,
    resetStats: () => counters.reset(),
    rejectTokensIssuedBefore: (date) => verifier.rejectTokensIssuedBefore((date ?? new Date()).getTime()),
    acceptAllTokens: () => verifier.rejectTokensIssuedBefore(undefined),
    revokeRefreshTokens: () => store.deleteModel("RefreshToken"),
    failNextTokenRequests: (count = 1, failure = {}) =>
      idp.failNextTokenRequests(count, {
        status: failure.status ?? 503,
        body: failure.body ?? {
          error: "temporarily_unavailable",
          error_description: "failure injected by the flyte-auth sandbox"
        }
      }),
    close: () => closing ??= Promise.all([admin.close(), connectAdmin?.close(), idp.close()]).then(() => undefined)
  }
}

/**
 * Starts a sandbox in the current scope and closes it when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, SandboxError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startSandbox(options),
      catch: (cause) => new SandboxError({ reason: "StartFailed", cause })
    }),
    (sandbox) => Effect.promise(() => sandbox.close())
  )

/**
 * A layer providing a fresh sandbox, closed when the layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Sandbox, SandboxError> => Layer.scoped(Sandbox, make(options))
