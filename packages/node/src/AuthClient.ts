/**
 * The Promise facade: flyte-auth for plain TypeScript, without Effect.
 *
 * @example
 * ```ts
 * import { createAuthClient } from "@flyte-auth/node"
 *
 * await using auth = await createAuthClient({ endpoint: "flyte.example.com:443", authMode: "Pkce" })
 * const response = await auth.fetch("https://flyte.example.com/api/v1/projects")
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type { AuthClientLike } from "@flyte-auth/core/Authenticator"
import { Authenticator } from "@flyte-auth/core/Authenticator"
import type { AuthError } from "@flyte-auth/core/AuthError"
import * as AuthHeader from "@flyte-auth/core/AuthHeader"
import * as Credentials from "@flyte-auth/core/Credentials"
import * as Policies from "@flyte-auth/core/Policies"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as AuthLayer from "./AuthLayer.js"
import * as StderrLogger from "./internal/stderrLogger.js"

/**
 * Options of `createAuthClient`: every field is optional, Flyte's config file and `FLYTE_*` variables fill the
 * rest (see `AuthLayer.Options`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends AuthLayer.Options {
  /**
   * The least severe log line written (default `Warning`, as the CLI; `Info` or `Debug` tell more, `None` silences
   * the client). Log lines (e.g. the warning that no OS keyring is usable) go to stderr, never to the program's
   * stdout. The login URL of a PKCE flow is printed to stderr by the browser whatever the level.
   */
  readonly logLevel?: LogLevel.Literal | undefined
}

/**
 * Per-call options: an `AbortSignal` cancels the call (an interactive login under way is abandoned).
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * What the facade hands out: the token as a plain string (the caller asked for it), the credentials with their
 * tokens still `Redacted`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthClient extends AuthClientLike, AsyncDisposable {
  /** The endpoint the credentials are for. */
  readonly endpoint: string
  /** A valid access token (cached, refreshed, or obtained by running the configured flow). */
  readonly accessToken: (options?: CallOptions) => Promise<string>
  /** The credentials behind the access token (tokens stay `Redacted`). */
  readonly credentials: (options?: CallOptions) => Promise<Credentials.Credentials>
  /** Refreshes now (falling back to a new login when the refresh token is dead). */
  readonly refresh: (options?: CallOptions) => Promise<Credentials.Credentials>
  /** `{ [headerKey]: "Bearer <token>" }`, ready to merge into a request's headers. */
  readonly headers: (options?: CallOptions) => Promise<Record<string, string>>
  /** The headers `headers()` would resolve to at once, synchronously, or `undefined` when it has work to do. */
  readonly cachedHeaders: () => Readonly<Record<string, string>> | undefined
  /** `fetch` with the auth header; on 401 it refreshes and resends once (when the body can be replayed). */
  readonly fetch: (input: string | URL, init?: RequestInit) => Promise<Response>
  /** Forgets the credentials, in memory and in the keyring. */
  readonly logout: (options?: CallOptions) => Promise<void>
  /** Releases everything the client holds (servers, sockets, fibers). */
  readonly close: () => Promise<void>
}

/**
 * Creates an authenticated client. Failures reject with the tagged error itself (`AuthenticationError`,
 * `AccessTokenNotFound`, `AuthenticationPending`): an `Error` whose `_tag` says which, with a message that never
 * contains a secret. A call after `close()` is a programming error and rejects with a plain `Error` (no `_tag`).
 *
 * Every HTTP request of the client, `fetch` included, goes through the configured transport (`httpProxyUrl` /
 * `HTTPS_PROXY` / `NO_PROXY`, `caCertFilePath`, `insecureSkipVerify`). Log lines go to stderr (see `logLevel`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const createAuthClient = async (options: Options = {}): Promise<AuthClient> => {
  const { logLevel, ...layerOptions } = options
  // The program's stdout is not ours: Effect's default logger writes to console.log, this one to console.error,
  // one plain line per message.
  const logging = Layer.merge(
    Logger.replace(Logger.defaultLogger, StderrLogger.logger),
    Logger.minimumLogLevel(LogLevel.fromLiteral(logLevel ?? "Warning"))
  )
  const runtime = ManagedRuntime.make(Layer.provideMerge(AuthLayer.layer(layerOptions), logging))
  let closed = false
  const run = async <A>(effect: Effect.Effect<A, AuthError, Authenticator>, call?: CallOptions): Promise<A> => {
    if (closed) throw new Error("flyte-auth: this auth client is closed")
    const exit = await runtime.runPromiseExit(effect, call?.signal ? { signal: call.signal } : undefined)
    if (Exit.isSuccess(exit)) return exit.value
    if (Cause.isInterruptedOnly(exit.cause)) {
      // Aborted by the caller's signal (reject as fetch does, with its reason), or the client was closed meanwhile.
      if (call?.signal?.aborted) throw call.signal.reason
      throw new Error("flyte-auth: the auth client was closed while this call was running")
    }
    throw squash(exit.cause)
  }
  // Build the layer now, so configuration errors reject `createAuthClient` itself.
  const settings = await runtime.runPromiseExit(AuthLayer.Settings).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    void runtime.dispose()
    throw squash(exit.cause)
  })

  // The fast path: the last credentials handed out, answered without entering the runtime while they are fresh.
  // The header key comes from the client configuration, which only `headers()` needs: `accessToken()` on a valid
  // stored token does not fetch it.
  let current: Credentials.Credentials | undefined
  let currentToken: string | undefined
  let currentHeaders: Record<string, string> | undefined
  let headerKey: string | undefined
  let freshUntil = 0
  const remember = (credentials: Credentials.Credentials, key = headerKey) => {
    current = credentials
    currentToken = Redacted.value(credentials.accessToken)
    headerKey = key
    if (key === undefined) {
      currentHeaders = undefined
    } else {
      const header = AuthHeader.make(key, credentials)
      currentHeaders = { [header.key]: Redacted.value(header.value) }
    }
    freshUntil = Credentials.freshUntil(credentials)
  }
  const forget = () => {
    current = undefined
    currentToken = undefined
    currentHeaders = undefined
    freshUntil = 0
  }
  const withHeader = (credentials: Effect.Effect<Credentials.Credentials, AuthError, Authenticator>) =>
    Effect.flatMap(Authenticator, (auth) => Effect.zip(credentials, auth.header)).pipe(
      Effect.tap(([credentials, header]) => Effect.sync(() => remember(credentials, header.key))),
      Effect.map(([credentials]) => credentials)
    )
  const load = (call?: CallOptions) =>
    run(
      Effect.flatMap(Authenticator, (auth) => auth.credentials).pipe(
        Effect.tap((credentials) => Effect.sync(() => remember(credentials)))
      ),
      call
    )
  const loadWithHeader = (call?: CallOptions) =>
    run(Effect.flatMap(Authenticator, (auth) => withHeader(auth.credentials)), call)

  const accessToken = async (call?: CallOptions): Promise<string> => {
    if (currentToken !== undefined && Date.now() < freshUntil) return currentToken
    await load(call)
    return currentToken!
  }
  const cachedHeaders = () => currentHeaders !== undefined && Date.now() < freshUntil ? currentHeaders : undefined
  const headers = async (call?: CallOptions): Promise<Record<string, string>> => {
    const cached = cachedHeaders()
    if (cached !== undefined) return { ...cached }
    await loadWithHeader(call)
    return { ...currentHeaders! }
  }
  const credentials = async (call?: CallOptions): Promise<Credentials.Credentials> => {
    if (current !== undefined && Date.now() < freshUntil) return current
    await load(call)
    return current!
  }
  const refresh = (call?: CallOptions): Promise<Credentials.Credentials> => {
    forget()
    return run(Effect.flatMap(Authenticator, (auth) => withHeader(auth.refresh)), call)
  }
  /** After a server rejected `sentHeaders`: refreshes unless a concurrent caller already replaced that token. */
  const rejected = (sentHeaders: Readonly<Record<string, string>>, call?: CallOptions): Promise<unknown> => {
    const sent = Object.entries(sentHeaders).map(([key, value]): AuthHeader.AuthHeader => ({
      key: key.toLowerCase(),
      value: Redacted.make(value)
    }))
    const held = currentHeaders
    if (held !== undefined && sent.some((header) => held[header.key] === Redacted.value(header.value))) forget()
    return run(
      Effect.flatMap(
        Authenticator,
        (auth) =>
          Effect.zipRight(Effect.forEach(sent, auth.invalidate, { discard: true }), withHeader(auth.credentials))
      ),
      call
    )
  }

  /** The layer's dispatcher, kept once made: a request on a fresh token then never enters the runtime. */
  let dispatcher: unknown
  const layerDispatcher = async (signal: AbortSignal | undefined): Promise<unknown> =>
    dispatcher ??= await run(settings.dispatcher, { signal })

  const authFetch = async (input: string | URL, init: RequestInit = {}): Promise<Response> => {
    const signal = init.signal ?? undefined
    const send = async () => {
      const auth = await headers({ signal })
      const merged = new Headers(init.headers)
      for (const [key, value] of Object.entries(auth)) merged.set(key, value)
      // Through the layer's dispatcher (proxy, CA, skip-verify), unless the caller brought one. Node's fetch takes
      // a dispatcher of the undici package; only the two type declarations (undici-types, undici) disagree.
      const request = {
        ...init,
        dispatcher: (init as { readonly dispatcher?: unknown }).dispatcher ?? await layerDispatcher(signal),
        headers: merged
      } as RequestInit
      return { response: await fetch(input, request), sent: auth }
    }
    for (let resent = 0;; resent++) {
      const { response, sent } = await send()
      if (response.status !== 401 || resent >= Policies.resendsOnRejection || !Policies.isReplayableBody(init.body)) {
        return response
      }
      await response.body?.cancel()
      await rejected(sent, { signal })
    }
  }

  const close = async () => {
    closed = true
    forget()
    await runtime.dispose()
  }

  return {
    endpoint: settings.endpoint,
    accessToken,
    credentials,
    refresh,
    rejected,
    headers,
    cachedHeaders,
    fetch: authFetch,
    logout: async (call) => {
      forget()
      await run(Effect.flatMap(Authenticator, (auth) => auth.logout), call)
    },
    close,
    [Symbol.asyncDispose]: close
  }
}

/**
 * The `HttpClient` type of the authenticated client, for users who mix the facade with Effect.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthenticatedHttpClient = HttpClient.HttpClient

/** Bodies that can be sent twice: none, strings, bytes, form data; not streams. */
/** The error to throw: the tagged error itself, or the defect, never a `FiberFailure`. */
const squash = (cause: Cause.Cause<AuthError>): unknown =>
  Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))
