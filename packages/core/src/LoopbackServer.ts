/**
 * The loopback HTTP server that receives the browser's redirect at the end of a PKCE login (RFC 8252 §7.3).
 *
 * The service only hands over callback requests; the flow decides what to answer. That lets the PKCE flow
 * validate `state` and exchange the code before it tells the user that the login worked.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import { AuthenticationError } from "./AuthError.js"

/**
 * Listens on the redirect URI's loopback address. `listen` is scoped: the port is released when the scope
 * closes, whether the flow succeeded, failed, timed out or was interrupted.
 *
 * @since 0.1.0
 * @category tags
 */
export class LoopbackServer extends Context.Tag("@flyte-auth/core/LoopbackServer")<
  LoopbackServer,
  LoopbackServer.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace LoopbackServer {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /**
     * Binds the redirect URI's loopback host and port. Fails with reason `Config` for a redirect URI that is not
     * `http://` on 127.0.0.1, localhost or [::1], and with reason `PortInUse` when the port cannot be bound.
     */
    readonly listen: (redirectUri: string) => Effect.Effect<Listener, AuthenticationError, Scope.Scope>
  }
}

/**
 * A bound callback server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Listener {
  /**
   * The redirect URI the server really listens on. It is the requested one, except that port 0 is replaced by
   * the port the system chose: this is the URI to send in the authorization request.
   */
  readonly redirectUri: string
  /**
   * Waits for the next GET on the redirect path. Other paths (e.g. `/favicon.ico`) are answered 404 by the
   * server and never show up here.
   */
  readonly next: Effect.Effect<CallbackRequest>
}

/**
 * One callback request: its query parameters (the authorization `code` already `Redacted`) and a way to answer
 * it. A request left unanswered when the listener's scope closes is answered with `endedPage`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallbackRequest {
  readonly code: Redacted.Redacted<string> | undefined
  readonly state: string | undefined
  /** The OAuth `error` of an error redirect (RFC 6749 §4.1.2.1). */
  readonly error: string | undefined
  readonly errorDescription: string | undefined
  readonly errorUri: string | undefined
  /** All query parameters except `code`. */
  readonly params: Readonly<Record<string, string>>
  /** Answers the browser; only the first answer counts. */
  readonly respond: (page: CallbackPage) => Effect.Effect<void>
}

/**
 * An HTML page to answer a callback request with.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallbackPage {
  readonly status: number
  readonly html: string
}

/**
 * What a redirect URI asks the server to bind.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedirectTarget {
  /** The redirect URI as given. */
  readonly redirectUri: string
  /** The host as written in the URI (`127.0.0.1`, `localhost` or `[::1]`). */
  readonly hostname: string
  /**
   * The addresses to bind, in order. `localhost` binds 127.0.0.1 and also [::1] when the system has IPv6, since
   * a browser may resolve `localhost` to either; the extra addresses are marked optional.
   */
  readonly addresses: ReadonlyArray<{ readonly host: string; readonly optional: boolean }>
  /** The port to bind; 0 asks the system for a free one. */
  readonly port: number
  /** The path of the redirect URI, without trailing slashes. */
  readonly path: string
}

const loopbackAddresses: Record<string, RedirectTarget["addresses"]> = {
  "127.0.0.1": [{ host: "127.0.0.1", optional: false }],
  "[::1]": [{ host: "::1", optional: false }],
  "localhost": [{ host: "127.0.0.1", optional: false }, { host: "::1", optional: true }]
}

/**
 * Checks a redirect URI and tells what to bind. Only `http://` URIs on a loopback host are accepted: the
 * callback carries the authorization code, which must never reach another machine. Without a port the URI
 * means port 80, as it does for the browser.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseRedirectUri = (redirectUri: string): Effect.Effect<RedirectTarget, AuthenticationError> => {
  const configError = (why: string) =>
    new AuthenticationError({ reason: "Config", description: `The redirect URI "${redirectUri}" ${why}` })
  let url: URL
  try {
    url = new URL(redirectUri)
  } catch {
    return Effect.fail(configError("is not a valid URL"))
  }
  if (url.protocol !== "http:") return Effect.fail(configError("must use http:// (it is served on loopback)"))
  const addresses = loopbackAddresses[url.hostname]
  if (addresses === undefined) {
    return Effect.fail(
      configError("is not on a loopback host: the callback server binds only 127.0.0.1, localhost or [::1]")
    )
  }
  return Effect.succeed({
    redirectUri,
    hostname: url.hostname,
    addresses,
    port: url.port === "" ? 80 : Number(url.port),
    path: normalizePath(url.pathname)
  })
}

/**
 * Whether a request path is the redirect path; a trailing-slash difference is accepted.
 *
 * @since 0.1.0
 * @category utils
 */
export const isCallbackPath = (target: RedirectTarget, pathname: string): boolean =>
  normalizePath(pathname) === target.path

/**
 * The redirect URI with the port that was really bound (for a requested port 0).
 *
 * @since 0.1.0
 * @category utils
 */
export const boundRedirectUri = (target: RedirectTarget, port: number): string => {
  if (port === target.port) return target.redirectUri
  const url = new URL(target.redirectUri)
  url.port = String(port)
  return url.toString()
}

/**
 * The error for a port that cannot be bound; it names the port and the redirect URI.
 *
 * @since 0.1.0
 * @category errors
 */
export const portInUse = (target: RedirectTarget, detail: string, cause?: unknown): AuthenticationError =>
  new AuthenticationError({
    reason: "PortInUse",
    description:
      `Cannot listen for the login callback on ${target.hostname} port ${target.port} (redirect URI ${target.redirectUri}): ${detail}`,
    cause
  })

/**
 * Builds the request handed to the flow from the query of a callback URL. The code is `Redacted` at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCallbackRequest = (
  query: URLSearchParams,
  respond: (page: CallbackPage) => Effect.Effect<void>
): CallbackRequest => {
  const params: Record<string, string> = {}
  for (const [key, value] of query) {
    if (key !== "code" && !(key in params)) params[key] = value
  }
  const code = query.get("code")
  const get = (key: string) => query.get(key) ?? undefined
  return {
    code: code === null ? undefined : Redacted.make(code),
    state: get("state"),
    error: get("error"),
    errorDescription: get("error_description"),
    errorUri: get("error_uri"),
    params,
    respond
  }
}

/**
 * The page for stray requests (any path but the redirect path).
 *
 * @since 0.1.0
 * @category pages
 */
export const notFoundPage: CallbackPage = {
  status: 404,
  html: page("Not found", "This address only receives the login callback.")
}

/**
 * The page for a non-GET request on the redirect path.
 *
 * @since 0.1.0
 * @category pages
 */
export const methodNotAllowedPage: CallbackPage = {
  status: 405,
  html: page("Method not allowed", "The login callback is a GET request.")
}

/**
 * The answer to a callback request that was still open when the login attempt ended (it timed out, failed or
 * was interrupted before the flow answered).
 *
 * @since 0.1.0
 * @category pages
 */
export const endedPage: CallbackPage = {
  status: 503,
  html: page("Login ended", "This login attempt has ended. Return to your terminal and try again.")
}

function page(title: string, text: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>` +
    `<body><h1>${title}</h1><p>${text}</p></body></html>`
}

function normalizePath(pathname: string): string {
  const trimmed = pathname.replace(/\/+$/, "")
  return trimmed === "" ? "/" : trimmed
}

/**
 * An in-memory callback server for tests: `request(url)` plays the browser following a redirect and answers
 * the page the flow responded with (404 for a stray path). Ports behave as on a real machine: a port in use
 * by a listener (or listed in `busy`) fails `listen` with `PortInUse`, port 0 picks a free one, and the port is
 * free again when the listener's scope closes.
 *
 * @since 0.1.0
 * @category test
 */
export interface TestLoopbackServer {
  readonly service: LoopbackServer.Service
  /**
   * Sends a GET (or `method`) to a URL, as the browser does after the redirect, and waits for the answer.
   * Fails with `ConnectionRefused` when nothing listens on the URL's host and port.
   */
  readonly request: (
    url: string,
    method?: string
  ) => Effect.Effect<CallbackPage, ConnectionRefused>
  /** The redirect URIs currently listened on. */
  readonly listening: Effect.Effect<ReadonlyArray<string>>
}

/**
 * Nothing listens on the address of a test request.
 *
 * @since 0.1.0
 * @category test
 */
export class ConnectionRefused extends Data.TaggedError("ConnectionRefused")<{ readonly url: string }> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Nothing listens at ${this.url}`
  }
}

/**
 * Makes a `TestLoopbackServer`.
 *
 * @since 0.1.0
 * @category test
 */
export const makeTest = (options?: { readonly busy?: ReadonlyArray<number> }): Effect.Effect<TestLoopbackServer> =>
  Effect.gen(function*() {
    interface Bound {
      readonly target: RedirectTarget
      readonly redirectUri: string
      readonly port: number
      readonly queue: Queue.Queue<CallbackRequest>
      readonly pending: Set<Deferred.Deferred<CallbackPage>>
    }
    const bound = yield* Ref.make<ReadonlyArray<Bound>>([])
    const busy = new Set(options?.busy ?? [])
    let nextPort = 49152

    const listen = (redirectUri: string) =>
      Effect.gen(function*() {
        const target = yield* parseRedirectUri(redirectUri)
        const taken = (yield* Ref.get(bound)).map((b) => b.port)
        if (busy.has(target.port) || taken.includes(target.port)) {
          return yield* portInUse(target, "the address is already in use")
        }
        let port = target.port
        while (port === 0 || busy.has(port) || taken.includes(port)) port = nextPort++
        const entry: Bound = {
          target,
          redirectUri: boundRedirectUri(target, port),
          port,
          queue: yield* Queue.unbounded<CallbackRequest>(),
          pending: new Set()
        }
        yield* Effect.acquireRelease(
          Ref.update(bound, (all) => [...all, entry]),
          () =>
            Effect.gen(function*() {
              yield* Ref.update(bound, (all) => all.filter((b) => b !== entry))
              yield* Queue.shutdown(entry.queue)
              for (const deferred of entry.pending) yield* Deferred.succeed(deferred, endedPage)
            })
        )
        return { redirectUri: entry.redirectUri, next: Queue.take(entry.queue) } satisfies Listener
      })

    const request = (url: string, method = "GET") =>
      Effect.gen(function*() {
        const parsed = new URL(url)
        const port = parsed.port === "" ? 80 : Number(parsed.port)
        const hosts = (loopbackAddresses[parsed.hostname] ?? []).map((address) => address.host)
        const entry = (yield* Ref.get(bound)).find((b) =>
          b.port === port && b.target.addresses.some((address) => hosts.includes(address.host))
        )
        if (entry === undefined) return yield* new ConnectionRefused({ url })
        if (!isCallbackPath(entry.target, parsed.pathname)) return notFoundPage
        if (method !== "GET") return methodNotAllowedPage
        const answer = yield* Deferred.make<CallbackPage>()
        entry.pending.add(answer)
        const respond = (page: CallbackPage) =>
          Effect.suspend(() => {
            entry.pending.delete(answer)
            return Deferred.succeed(answer, page)
          })
        yield* Queue.offer(entry.queue, makeCallbackRequest(parsed.searchParams, respond))
        return yield* Deferred.await(answer)
      })

    return {
      service: LoopbackServer.of({ listen }),
      request,
      listening: Effect.map(Ref.get(bound), (all) => all.map((b) => b.redirectUri))
    }
  })
