/**
 * Authentication for ConnectRPC clients (`@connectrpc/connect` v2; Flyte 2 speaks it): interceptors that add
 * `<headerKey>: Bearer <token>` to every call and, when the server rejects the token, hand that exact header back
 * to its source (which refreshes once for every call rejected with it), and send the call again, once.
 *
 * - **What counts as a rejection** (`isTokenRejection`): `Code.Unauthenticated` (HTTP 401 becomes it),
 *   `Code.Unknown`, or a message that says unauthenticated / unauthorized, as servers and meshes in front of
 *   Flyte 2 answer; `Code.PermissionDenied` only on a call that used credentials nobody had used yet in this
 *   process (Istio answers PERMISSION_DENIED to a first call it does not accept). A proxy's refusal
 *   (`isProxyRejection`) is the proxy token's business, not the access token's. Nothing else is retried.
 * - **What is sent again**: a unary call always; a client-streaming or bidi call only when its whole request
 *   stream was read and kept (at most `Policies.maxReplayedMessages` messages); a server-streaming or bidi call
 *   only before its first response message. Output already handed to the caller is never repeated.
 * - **Headers**: before a new attempt the previous attempt's header is removed, then the new one set (its key can
 *   change between attempts: a new client configuration may name another `authorization_metadata_key`).
 *
 * Only `@flyte-auth/core` is imported: the interceptors work with `@connectrpc/connect-node` and
 * `@connectrpc/connect-web` alike, given an `Authenticator`, a `TokenSource` or the Promise facade's shape
 * (`AuthClientLike`).
 *
 * @example
 * ```ts
 * import { createClient } from "@connectrpc/connect"
 * import { createConnectTransport } from "@connectrpc/connect-node"
 * import { ConnectAuth } from "@flyte-auth/connect"
 *
 * const program = Effect.gen(function*() {
 *   const transport = createConnectTransport({
 *     baseUrl: "https://flyte.example.com",
 *     httpVersion: "2",
 *     interceptors: [yield* ConnectAuth.interceptor]
 *   })
 *   const identity = createClient(IdentityService, transport)
 *   return yield* Effect.promise(() => identity.userInfo({}))
 * })
 * ```
 *
 * @since 0.2.0
 */
import type { Interceptor, StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect"
import { Code, ConnectError } from "@connectrpc/connect"
import { Authenticator } from "@flyte-auth/core/Authenticator"
import type { AuthClientLike } from "@flyte-auth/core/Authenticator"
import { isAuthError } from "@flyte-auth/core/AuthError"
import * as AuthHeader from "@flyte-auth/core/AuthHeader"
import { maxReplayedMessages, resendsOnRejection } from "@flyte-auth/core/Policies"
import type * as TokenSource from "@flyte-auth/core/TokenSource"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"

/**
 * The header of identity-aware proxies in front of Flyte (`admin.proxyCommand`).
 *
 * @since 0.2.0
 * @category constants
 */
export const proxyAuthorizationKey = "proxy-authorization"

/**
 * Whether an error is a proxy's refusal (HTTP 407, or a message naming the proxy), which only a new proxy token
 * can fix.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isProxyRejection = (error: ConnectError): boolean =>
  (error.code === Code.Unauthenticated || error.code === Code.Unknown || error.code === Code.Unavailable) &&
  /\b407\b|proxy/i.test(error.rawMessage)

/**
 * Whether an error means the server rejected the access token: `Unauthenticated`, `Unknown`, or a message saying
 * unauthenticated / unauthorized (unless a proxy said it); `PermissionDenied` only when `firstUse` (the call used
 * credentials that no call had used before).
 *
 * @since 0.2.0
 * @category predicates
 */
export const isTokenRejection = (error: ConnectError, firstUse = false): boolean => {
  if (isProxyRejection(error)) return false
  if (error.code === Code.PermissionDenied) return firstUse
  return error.code === Code.Unauthenticated || error.code === Code.Unknown ||
    /\bun(?:authenticated|authori[sz]ed)\b/i.test(error.rawMessage)
}

/** One attempt's headers; a rejection hands the same objects back to the policy. */
type Headers = ReadonlyArray<AuthHeader.AuthHeader>

/** What an interceptor adds, and when it sends a call again. */
interface Policy {
  /** What the headers are, for messages: `"access token"`, `"proxy token"`. */
  readonly what: string
  /** The headers of the next attempt. */
  readonly headers: (signal: AbortSignal) => Promise<Headers>
  /** The headers `headers` would resolve to at once, or `undefined` when it has work to do. */
  readonly cached: () => Headers | undefined
  /** Whether an error rejects the headers sent (`firstUse`: no call had used them before). */
  readonly isRejection: (error: ConnectError, firstUse: boolean) => boolean
  /** The server rejected `sent`: the source must not hand them out again (unless already replaced). */
  readonly rejected: (sent: Headers, signal: AbortSignal) => Promise<void>
}

/**
 * The interceptor for an `Authenticator`, run on the runtime this effect runs in. The header key is the
 * `Authenticator`'s (the server's `authorization_metadata_key`, else `authorization`).
 *
 * @since 0.2.0
 * @category interceptors
 */
export const interceptor: Effect.Effect<Interceptor, never, Authenticator> = Effect.gen(function*() {
  const auth = yield* Authenticator
  const run = Runtime.runPromise(yield* Effect.runtime<never>())
  let last: Headers = []
  return make({
    what: "access token",
    headers: (signal) => run(Effect.map(auth.header, (header) => [header]), { signal }),
    cached: () => {
      const header = auth.cachedHeader()
      if (header === undefined) return undefined
      if (last[0] !== header) last = [header]
      return last
    },
    isRejection: isTokenRejection,
    rejected: (sent, signal) => run(Effect.forEach(sent, auth.invalidate, { discard: true }), { signal })
  })
})

/**
 * The interceptor for the Promise facade (`createAuthClient` of `@flyte-auth/node`, or anything with its
 * `AuthClientLike` shape): every header of `auth.headers()` (or, while fresh, `auth.cachedHeaders()`); on a
 * rejection the headers that were sent go back to `auth.rejected(sentHeaders)`.
 *
 * @since 0.2.0
 * @category interceptors
 */
export const authInterceptor = (auth: AuthClientLike): Interceptor => {
  let cachedFrom: { readonly source: Readonly<Record<string, string>>; readonly headers: Headers } | undefined
  return make({
    what: "access token",
    headers: async (signal) => toHeaders(await auth.headers({ signal })),
    cached: () => {
      const source = auth.cachedHeaders?.()
      if (source === undefined) return undefined
      if (cachedFrom?.source !== source) cachedFrom = { source, headers: toHeaders(source) }
      return cachedFrom.headers
    },
    isRejection: isTokenRejection,
    rejected: async (sent, signal) => {
      await auth.rejected(Object.fromEntries(sent.map((h) => [h.key, Redacted.value(h.value)])), { signal })
    }
  })
}

/**
 * An interceptor adding `proxy-authorization: Bearer <token>` from `source` (e.g. `ProxyAuthorization.commandSource`)
 * to every call; a proxy's refusal (`isProxyRejection`) drops that token and sends the call again once. Put it
 * after `interceptor` in the `interceptors` list (Connect runs the first one outermost).
 *
 * @since 0.2.0
 * @category interceptors
 */
export const proxyInterceptor = (source: TokenSource.TokenSource<unknown>): Effect.Effect<Interceptor> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const run = Runtime.runPromise(runtime)
    return make({
      what: "proxy token",
      headers: (signal) =>
        run(Effect.map(source.get, (credentials) => [AuthHeader.make(proxyAuthorizationKey, credentials)]), {
          signal
        }),
      cached: () => undefined,
      isRejection: isProxyRejection,
      rejected: (sent, signal) => run(Effect.forEach(sent, source.invalidate, { discard: true }), { signal })
    })
  })

const toHeaders = (record: Readonly<Record<string, string>>): Headers =>
  Object.entries(record).map(([key, value]) => ({ key: key.toLowerCase(), value: Redacted.make(value) }))

type AnyRequest = UnaryRequest | StreamRequest
type AnyResponse = UnaryResponse | StreamResponse

const make = (policy: Policy): Interceptor => (next) => async (request) => {
  const cached = policy.cached()
  const firstUse = cached === undefined
  let sent: Headers = []
  const send = async (headers: Headers, attempt: AnyRequest): Promise<AnyResponse> => {
    for (const header of sent) attempt.header.delete(header.key)
    for (const header of headers) attempt.header.set(header.key, Redacted.value(header.value))
    sent = headers
    return next(attempt)
  }
  const obtain = () =>
    policy.headers(request.signal).catch((error: unknown) => {
      throw new ConnectError(
        `flyte-auth: could not obtain the ${policy.what}: ${describe(error)}`,
        request.signal.aborted ? Code.Canceled : Code.Unauthenticated,
        undefined,
        undefined,
        error
      )
    })
  /** After a rejection of `sent`: the headers of the next attempt, or the rejection itself when none is allowed. */
  const renew = async (error: unknown, attempts: number, replayable: boolean): Promise<Headers> => {
    const connectError = ConnectError.from(error)
    if (attempts > resendsOnRejection || !replayable || !policy.isRejection(connectError, firstUse)) throw error
    await policy.rejected(sent, request.signal)
    return obtain()
  }

  const body = request.stream ? recorded(request.message) : undefined
  const attemptOf = (n: number): AnyRequest =>
    !request.stream || body === undefined ? request : { ...request, message: n === 1 ? body.first : body.replay() }
  const requestReplayable = () => body === undefined || body.complete()

  let attempts = 1
  let headers = cached ?? await obtain()
  for (;;) {
    let response: AnyResponse
    try {
      response = await send(headers, attemptOf(attempts))
    } catch (error) {
      headers = await renew(error, attempts++, requestReplayable())
      continue
    }
    if (!response.stream) return response
    return streamWithRetry(response, async (error, yielded) => {
      headers = await renew(error, attempts++, !yielded && requestReplayable())
      return send(headers, attemptOf(attempts)) as Promise<StreamResponse>
    })
  }
}

/**
 * A server-streaming response whose stream is replaced by `retry(error, yielded)` when it fails; once a message
 * was handed to the caller (`yielded`), `retry` rethrows. Header and trailer are those of the current attempt.
 */
const streamWithRetry = (
  first: StreamResponse,
  retry: (error: unknown, yielded: boolean) => Promise<StreamResponse>
): StreamResponse => {
  let current = first
  async function* messages() {
    let yielded = false
    for (;;) {
      try {
        for await (const message of current.message) {
          yielded = true
          yield message
        }
        return
      } catch (error) {
        current = await retry(error, yielded)
      }
    }
  }
  return {
    stream: true,
    service: first.service,
    method: first.method,
    get header() {
      return current.header
    },
    get trailer() {
      return current.trailer
    },
    message: messages()
  }
}

/**
 * A request stream that keeps what it yields, so that a second attempt can send the same messages: complete when
 * the first attempt read it to the end and it had at most `maxReplayedMessages` messages.
 */
const recorded = <T>(source: AsyncIterable<T>) => {
  const kept: Array<T> = []
  let done = false
  let overflow = false
  return {
    first: (async function*() {
      for await (const message of source) {
        if (kept.length < maxReplayedMessages) kept.push(message)
        else overflow = true
        yield message
      }
      done = true
    })(),
    complete: () => done && !overflow,
    replay: async function*() {
      yield* kept
    }
  }
}

/** Why a header could not be obtained; never a secret (the errors of flyte-auth never contain one). */
const describe = (error: unknown): string =>
  isAuthError(error)
    ? error.message
    : error instanceof Error
    ? `${error.name} (message withheld)`
    : "unknown error"
