/**
 * The service that the integrations (gRPC interceptor, HTTP middleware, Promise facade, CLI) ask for a token.
 * It loads credentials from the `Keyring`, refreshes them before they expire, single-flights every refresh and
 * every interactive login, and runs the configured flow again only when a refresh is truly impossible.
 * With a `CredentialLock` in its context, every refresh and login also holds the endpoint's cross-process lock,
 * so that processes sharing a store refresh once between them.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { AccessTokenNotFound, type AccessTokenNotFoundReason } from "./AuthError.js"
import type { AuthError } from "./AuthError.js"
import * as AuthHeader from "./AuthHeader.js"
import type { AuthMode } from "./AuthMode.js"
import { ClientConfigStore } from "./ClientConfig.js"
import * as CredentialLock from "./CredentialLock.js"
import * as Credentials from "./Credentials.js"
import * as State from "./internal/authenticatorState.js"
import * as CredentialAccount from "./internal/credentialAccount.js"
import * as CrossProcessLock from "./internal/crossProcessLock.js"
import * as RefreshGrant from "./internal/refreshGrant.js"
import * as SingleFlight from "./internal/singleFlight.js"
import * as Keyring from "./Keyring.js"
import * as Policies from "./Policies.js"
import * as Revocation from "./Revocation.js"
import type { TokenSource } from "./TokenSource.js"

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
   * A `TokenSource` of credentials (`get`, `invalidate`) with the rest of what the integrations need.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Service extends TokenSource<AuthError> {
    /** The endpoint the credentials are for (the keyring key). */
    readonly endpoint: string
    /** A valid access token: cached, refreshed, or obtained by running the flow. */
    readonly accessToken: Effect.Effect<Redacted.Redacted<string>, AuthError>
    /** The whole credentials behind `accessToken` (the same effect as `get`). */
    readonly credentials: Effect.Effect<Credentials.Credentials, AuthError>
    /** The header to send: `<headerKey>: Bearer <token>`. */
    readonly header: Effect.Effect<AuthHeader.AuthHeader, AuthError>
    /**
     * The header of the cached credentials while they are fresh, read synchronously: what `header` would answer
     * without any request, or `undefined` when `header` has work to do (nothing loaded or cached yet, a rejected or
     * expiring token, a refresh under way). Freshness is judged by the `Clock` the authenticator was made with.
     * For hot paths such as the gRPC interceptor; never runs a flow.
     */
    readonly cachedHeader: () => AuthHeader.AuthHeader | undefined
    /** Forces a refresh now (single flight), falling back to the full flow when the refresh is impossible. */
    readonly refresh: Effect.Effect<Credentials.Credentials, AuthError>
    /**
     * Tells the authenticator that a server rejected `header` (one that `header` or `cachedHeader` handed out).
     * The cached credentials must be refreshed before they are handed out again, but only if `header` still
     * carries them (`AuthHeader.carries`): a concurrent caller may already have refreshed them.
     */
    readonly invalidate: (header: AuthHeader.AuthHeader) => Effect.Effect<void>
    /**
     * Revokes the stored refresh token at the identity provider's revocation endpoint (RFC 7009), when it publishes
     * one, then forgets the credentials, in memory and in the keyring. A failed revocation is a warning only.
     */
    readonly logout: Effect.Effect<void>
    /**
     * Runs the full flow now (single flight with other explicit logins), whatever is cached, and stores the
     * result: `flyte-auth login`. An interactive flow in a non-interactive run fails with `AccessTokenNotFound`.
     */
    readonly login: Effect.Effect<Credentials.Credentials, AuthError>
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
  /**
   * A server rejected the headers `sentHeaders` (as `headers()` or `cachedHeaders()` gave them): resolves when
   * `headers()` has new ones. The credentials are refreshed only if they are still the rejected ones, so any number
   * of calls rejected with the same headers cost one refresh.
   */
  readonly rejected: (
    sentHeaders: Readonly<Record<string, string>>,
    options?: { readonly signal?: AbortSignal }
  ) => Promise<unknown>
  /** Refreshes now, whatever is cached; resolves when new headers are available. */
  readonly refresh: (options?: { readonly signal?: AbortSignal }) => Promise<unknown>
  /**
   * The headers `headers()` would resolve to at once, read synchronously (the same object while the token is
   * unchanged), or `undefined` when `headers()` has work to do. Optional: hot paths use it when present.
   */
  readonly cachedHeaders?: () => Readonly<Record<string, string>> | undefined
}

/**
 * What an `Authenticator` needs to know: whose credentials it keeps, how to log in, and how to refresh.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> {
  /**
   * The endpoint the credentials are for. With `clientId` it names the keyring account under
   * `Keyring.serviceName` (`Credentials.keyringAccount`).
   */
  readonly endpoint: string
  /** The full flow (PKCE, device code, client credentials, external command). */
  readonly login: Effect.Effect<Credentials.Credentials, AuthError, R>
  /** The auth mode of `login`, recorded in the keyring entry (`Credentials.authMode`) unless it names one. */
  readonly authMode?: AuthMode | undefined
  /** Whether `login` needs a user (a browser or a device prompt). */
  readonly interactive: boolean
  /**
   * Whether an interactive `login` may run in this process (default `true`). When `false`, a login that needs a
   * user fails with `AccessTokenNotFound` instead (e.g. `flyte-auth token` in CI).
   */
  readonly allowInteractive?: boolean | undefined
  /**
   * How to refresh expiring credentials. By default the refresh token is used (`TokenClient.refresh` with the
   * `ClientConfigStore` configuration and `clientSecret`); credentials without a refresh token run `login` again.
   * `"login"` always runs `login` again; a function replaces the refresh-token grant.
   */
  readonly refresh?:
    | "login"
    | ((credentials: Credentials.Credentials) => Effect.Effect<Credentials.Credentials, AuthError, R>)
    | undefined
  /** The client secret of a confidential client, sent with the refresh-token grant (HTTP Basic). */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /**
   * The configured client id (`undefined`: the configuration's `clientId`, the client the admin publishes): the
   * client of the refresh-token grant, and the owner of the keyring entry. Credentials stored for another client
   * id, or by a login of another `authMode`, are never handed out (`Credentials.isFor`); an entry under the bare
   * endpoint, written before accounts were per client, is taken over only by `Credentials.isLegacyFor`.
   */
  readonly clientId?: string | undefined
  /**
   * What the refresh-token grant sends as `scope`: nothing (the default; RFC 6749 §6: the scope "as granted"), or
   * `"granted"`: the scope the server granted (`Credentials.scopes`), for identity providers that want one. Never
   * the scopes requested at login, which a server that granted fewer answers with `invalid_scope`.
   */
  readonly refreshScope?: "omit" | "granted" | undefined
  /** How long before expiry a token is refreshed (default `Credentials.defaultRefreshSkew`, 60 s). */
  readonly skew?: Duration.DurationInput | undefined
  /**
   * How long to wait for another process's `CredentialLock` on the endpoint (default
   * `Policies.credentialLockTimeout`); then the refresh fails with an `AuthenticationError` of reason `Timeout`.
   */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /**
   * How long this process may hold the `CredentialLock` for one refresh or login (default
   * `Policies.credentialLockHold()`): a refresh or login that takes longer fails with reason `Timeout` and the
   * lock is released. Give the login's own timeout plus a margin (`Policies.credentialLockHold(timeout)`).
   */
  readonly lockHold?: Duration.DurationInput | undefined
}

/**
 * Whether a failed refresh means the refresh token is dead (so the stored credentials are purged and the full
 * flow runs once): the server said `invalid_grant`, or answered 400 or 401. Transient failures (5xx, network)
 * are not: they surface as errors and leave the stored credentials alone.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRefreshRejected = (error: AuthError): boolean =>
  error._tag === "AuthenticationError" &&
  (error.error === "invalid_grant" || error.status === 400 || error.status === 401)

/**
 * Builds an authenticator. Credentials are read from the keyring on first use; every refresh or login runs in
 * a fiber owned by the authenticator's scope, and every caller that needs it awaits the same result, so an
 * interrupted caller never strands the others. Closing the scope interrupts a refresh or login under way.
 *
 * When the context holds a `CredentialLock` (other than `CredentialLock.layerNone`), that one fiber takes the
 * endpoint's cross-process lock before it refreshes or logs in, and reads the keyring again under it: when another
 * process stored a different access token that is still fresh, that token is used and nothing is requested;
 * otherwise the newest stored credentials (with the newest, possibly rotated, refresh token) are refreshed, stored,
 * and the lock is released on any exit. A lock that is `Unavailable` is skipped with one warning.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R = never>(
  options: Options<R>
): Effect.Effect<
  Authenticator.Service,
  never,
  Scope.Scope | Keyring.Keyring | ClientConfigStore | HttpClient.HttpClient | R
> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Keyring.Keyring | ClientConfigStore | HttpClient.HttpClient | R>()
    const scope = yield* Effect.scope
    const keyring = Context.get(context, Keyring.Keyring)
    const configStore = Context.get(context, ClientConfigStore)
    const endpoint = options.endpoint
    const skew = options.skew ?? Credentials.defaultRefreshSkew
    const loginAllowed = !options.interactive || options.allowInteractive !== false

    const clock = yield* Effect.clock
    // The state is read and written in single synchronous steps (never across a yield), so a plain variable is as
    // atomic as a `Ref`, and the hot path (`cachedHeader`) reads it without running an effect.
    let state = State.initial
    const getState = Effect.sync(() => state)
    const modifyState = <A>(f: (s: State.State) => readonly [A, State.State]) =>
      Effect.sync(() => {
        const [result, next] = f(state)
        state = next
        return result
      })
    const updateState = (f: (s: State.State) => State.State) => modifyState((s) => [undefined, f(s)] as const)
    const storeLock = yield* Effect.makeSemaphore(1)
    const crossProcess = yield* Option.match(
      Option.filter(yield* Effect.serviceOption(CredentialLock.CredentialLock), (lock) => lock.backend !== "none"),
      {
        onNone: () => Effect.succeedNone,
        onSome: (lock) =>
          Effect.asSome(CrossProcessLock.make(lock, endpoint, {
            timeout: Duration.decode(options.lockTimeout ?? Policies.credentialLockTimeout),
            hold: Duration.decode(options.lockHold ?? Policies.credentialLockHold())
          }))
      }
    )
    const { load, remove, save } = yield* CredentialAccount.make(keyring, endpoint, {
      clientId: options.clientId,
      authMode: options.authMode
    })

    /** The stored credentials (else the cached ones) revoked at the identity provider; never fails. */
    const revokeStored = Effect.gen(function*() {
      const stored = Option.orElse(yield* load, () => state.credentials)
      if (Option.isNone(stored)) return
      yield* Revocation.revokeCredentials({
        credentials: stored.value,
        config: configStore.get,
        clientId: options.clientId,
        clientSecret: options.clientSecret
      })
    }).pipe(Effect.provide(context))

    // --- what a leader fiber does ----------------------------------------------------------------------------

    const login = (reason: AccessTokenNotFoundReason, cause?: AuthError) =>
      loginAllowed
        ? options.login
        : Effect.fail(
          new AccessTokenNotFound({
            reason,
            description: describeNotFound(reason, endpoint),
            ...(cause?._tag === "AuthenticationError"
              ? { error: cause.error, errorDescription: cause.errorDescription }
              : {}),
            cause
          })
        )

    const purge = storeLock.withPermits(1)(
      Effect.zipRight(updateState((s) => ({ ...s, credentials: Option.none(), stale: false })), remove)
    )

    const refreshOrLogin = (credentials: Credentials.Credentials) => {
      const refresh = options.refresh
      const attempt: Effect.Effect<Credentials.Credentials, AuthError, R | HttpClient.HttpClient> | undefined =
        refresh === "login"
          ? undefined
          : refresh !== undefined
          ? refresh(credentials)
          : credentials.refreshToken !== undefined
          ? RefreshGrant.refresh(configStore, credentials, credentials.refreshToken, options)
          : undefined
      if (attempt === undefined) return login("RefreshImpossible")
      return attempt.pipe(
        Effect.catchIf(isRefreshRejected, (error) =>
          Effect.logInfo(`The refresh token for ${endpoint} was rejected; logging in again`).pipe(
            Effect.zipRight(purge),
            Effect.zipRight(login("RefreshImpossible", error))
          ))
      )
    }

    const commit = (credentials: Credentials.Credentials, generation: number) =>
      storeLock.withPermits(1)(Effect.gen(function*() {
        const committed = yield* modifyState((s) =>
          s.generation === generation
            ? [true, { ...s, credentials: Option.some(credentials), stale: false, loggedOut: false }] as const
            : [false, s] as const
        )
        if (!committed) {
          return
        }
        yield* save(credentials)
      }))

    /** Credentials another process stored are used as they are: in memory, not written back. */
    const adopt = (credentials: Credentials.Credentials, generation: number) =>
      storeLock.withPermits(1)(
        updateState((s) =>
          s.generation === generation
            ? { ...s, credentials: Option.some(credentials), stale: false, loggedOut: false }
            : s
        )
      )

    /** Refreshes `base` (or runs the flow) and stores the result. */
    const renew = (want: State.Want, base: Option.Option<Credentials.Credentials>, current: State.State) =>
      Effect.gen(function*() {
        const next = want === "login" || Option.isNone(base)
          ? yield* login(current.loggedOut ? "LoggedOut" : "NoCredentials")
          : yield* refreshOrLogin(base.value)
        yield* commit(next, current.generation)
        return next
      })

    /** Under the cross-process lock: what another process stored meanwhile wins over what this one holds. */
    const renewShared = (want: State.Want) =>
      Effect.gen(function*() {
        const stored = yield* load
        const current = yield* getState
        const now = yield* DateTime.now
        if (
          want !== "login" && Option.isSome(stored) &&
          !sameAccessToken(stored.value, current.credentials) &&
          Credentials.isFresh(stored.value, now, skew)
        ) {
          yield* Effect.logDebug(`Another process renewed the credentials for ${endpoint}; using them`)
          yield* adopt(stored.value, current.generation)
          return stored.value
        }
        return yield* renew(
          want,
          Option.orElse(stored, () =>
            current.credentials),
          current
        )
      })

    const obtain = (want: State.Want) =>
      Effect.gen(function*() {
        let current = yield* getState
        if (!current.loaded) {
          const stored = yield* load
          current = yield* modifyState((s) => {
            const next = s.loaded ? s : { ...s, loaded: true, credentials: stored }
            return [next, next] as const
          })
        }
        const usable = want === "valid"
          ? State.usable(current, yield* Clock.currentTimeMillis, freshUntil)
          : undefined
        if (usable !== undefined) {
          return usable
        }
        return yield* Option.match(crossProcess, {
          onNone: () =>
            renew(want, current.credentials, current),
          onSome: (guard) => guard(renewShared(want))
        })
      }).pipe(
        Effect.withSpan(`Authenticator.${want === "valid" ? "obtain" : want}`, { attributes: { endpoint } }),
        Effect.provide(context)
      )

    // --- single flight -----------------------------------------------------------------------------------------

    const join = (want: State.Want): Effect.Effect<Credentials.Credentials, AuthError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const candidate = yield* Deferred.make<Credentials.Credentials, AuthError>()
          const decision = yield* modifyState((s) => {
            const decision = State.decide(s, want, now, freshUntil)
            return [
              decision,
              decision._tag === "Lead" ? { ...s, inFlight: Option.some({ want, deferred: candidate }) } : s
            ] as const
          })
          switch (decision._tag) {
            case "Cached":
              return decision.credentials
            case "Await":
              return yield* restore(Deferred.await(decision.deferred))
            case "AwaitThenRetry":
              return yield* restore(Effect.zipRight(Effect.exit(Deferred.await(decision.deferred)), join(want)))
            case "Lead": {
              yield* SingleFlight.launch(obtain(want), candidate, scope, () =>
                updateState((s) =>
                  Option.isSome(s.inFlight) && s.inFlight.value.deferred === candidate
                    ? { ...s, inFlight: Option.none() }
                    : s
                ))
              return yield* restore(Deferred.await(candidate))
            }
          }
        })
      )

    // The cache hit, answered synchronously without entering `join` (no deferred, no uninterruptible region): the
    // "Cached" case of `join`'s decision (`State.cached`), read without changing the state. Anything else (not
    // loaded, stale, a flight under way, not fresh) goes through `join`, which decides again atomically. What is
    // derived from the cached credentials (their freshness deadline, the header) is computed once per credentials.
    let headerKey: string | undefined
    let hot:
      | {
        readonly credentials: Credentials.Credentials
        readonly freshUntil: number
        header: AuthHeader.AuthHeader | undefined
      }
      | undefined
    const hotFor = (credentials: Credentials.Credentials) => {
      if (hot?.credentials !== credentials) {
        hot = { credentials, freshUntil: Credentials.freshUntil(credentials, skew), header: undefined }
      }
      return hot
    }
    const freshUntil: State.FreshUntil = (credentials) => hotFor(credentials).freshUntil
    const freshCached = (now: number) => {
      const hit = State.cached(state, now, freshUntil)
      return hit === undefined ? undefined : hotFor(hit)
    }
    const headerOf = (fresh: ReturnType<typeof freshCached>): AuthHeader.AuthHeader | undefined => {
      if (fresh === undefined || headerKey === undefined) return undefined
      if (fresh.header?.key !== headerKey) fresh.header = AuthHeader.make(headerKey, fresh.credentials)
      return fresh.header
    }

    // The Effect paths read the caller's `Clock` (as `DateTime.now` does); the synchronous `cachedHeader`, which
    // has no fiber, the one the authenticator was made with.
    const credentials: Effect.Effect<Credentials.Credentials, AuthError> = Effect.clockWith((clock) => {
      const fresh = freshCached(clock.unsafeCurrentTimeMillis())
      return fresh === undefined ? join("valid") : Effect.succeed(fresh.credentials)
    })

    const service: Authenticator.Service = {
      endpoint,
      get: credentials,
      credentials,
      accessToken: Effect.clockWith((clock) => {
        const fresh = freshCached(clock.unsafeCurrentTimeMillis())
        return fresh === undefined
          ? Effect.map(join("valid"), (c) => c.accessToken)
          : Effect.succeed(fresh.credentials.accessToken)
      }),
      cachedHeader: () => headerOf(freshCached(clock.unsafeCurrentTimeMillis())),
      header: Effect.clockWith((clock) => {
        const header = headerOf(freshCached(clock.unsafeCurrentTimeMillis()))
        if (header !== undefined) return Effect.succeed(header)
        return Effect.gen(function*() {
          const current = yield* credentials
          const config = yield* configStore.get
          headerKey = config.headerKey.toLowerCase()
          return AuthHeader.make(headerKey, current)
        })
      }),
      refresh: join("refresh"),
      login: join("login"),
      invalidate: (header) =>
        updateState((s) =>
          Option.isSome(s.credentials) && AuthHeader.carries(header, s.credentials.value) ? { ...s, stale: true } : s
        ),
      // RFC 7009: the refresh token is revoked at the identity provider before it is forgotten (a failure warns).
      logout: revokeStored.pipe(
        Effect.zipRight(
          storeLock.withPermits(1)(
            Effect.zipRight(
              updateState((s) => ({
                ...s,
                loaded: true,
                credentials: Option.none(),
                stale: false,
                loggedOut: true,
                generation: s.generation + 1
              })),
              remove
            )
          )
        ),
        Effect.withSpan("Authenticator.logout", { attributes: { endpoint } })
      )
    }
    return service
  })

/**
 * The `Authenticator` as a layer; a refresh or login under way is interrupted when the layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(
  options: Options<R>
): Layer.Layer<Authenticator, never, Keyring.Keyring | ClientConfigStore | HttpClient.HttpClient | R> =>
  Layer.scoped(Authenticator, make(options))

const sameAccessToken = (
  credentials: Credentials.Credentials,
  held: Option.Option<Credentials.Credentials>
): boolean => Option.isSome(held) && Redacted.value(held.value.accessToken) === Redacted.value(credentials.accessToken)

const describeNotFound = (reason: AccessTokenNotFoundReason, endpoint: string): string => {
  switch (reason) {
    case "NoCredentials":
      return `No credentials are stored for ${endpoint} and an interactive login is not allowed here`
    case "RefreshImpossible":
      return `The credentials for ${endpoint} cannot be refreshed and an interactive login is not allowed here`
    case "LoggedOut":
      return `Logged out of ${endpoint}; an interactive login is not allowed here`
  }
}
