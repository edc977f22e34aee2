/**
 * The `LoopbackServer` on Node's `http` module.
 *
 * Why `node:http` and not `@effect/platform`'s `HttpServer`: the callback server answers one request after the
 * flow has decided what to say, binds the same port on two addresses for `localhost`, must tell a busy port
 * (`EADDRINUSE`) from other bind failures, and must drop every connection when the attempt ends so the port is
 * free at once. `NodeHttpServer` hides the listen error behind `ServeError`, closes with `server.close()` (which
 * waits for keep-alive connections), and brings routing, WebSockets and per-request spans that a single callback
 * does not need. A small server wrapped in `acquireRelease` and `Effect.async` is easier to reason about.
 *
 * @since 0.1.0
 */
import type { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as LoopbackServer from "@flyte-auth/core/LoopbackServer"
import * as Policies from "@flyte-auth/core/Policies"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type * as Net from "node:net"

/**
 * Listens on the redirect URI's loopback address with `node:http`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: LoopbackServer.LoopbackServer.Service = LoopbackServer.LoopbackServer.of({
  listen: (redirectUri) => listen(redirectUri)
})

/**
 * The Node `LoopbackServer`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<LoopbackServer.LoopbackServer> = Layer.succeed(LoopbackServer.LoopbackServer, make)

const listen = (
  redirectUri: string
): Effect.Effect<LoopbackServer.Listener, AuthenticationError, Scope.Scope> =>
  Effect.gen(function*() {
    const target = yield* LoopbackServer.parseRedirectUri(redirectUri)
    const requests = yield* Effect.acquireRelease(
      Queue.unbounded<LoopbackServer.CallbackRequest>(),
      Queue.shutdown
    )
    const responses = makeResponses()

    const handler = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      responses.track(response)
      const url = parseTarget(request.url)
      if (url === undefined || !LoopbackServer.isCallbackPath(target, url.pathname)) {
        return write(response, LoopbackServer.notFoundPage)
      }
      if (request.method !== "GET") {
        response.setHeader("allow", "GET")
        return write(response, LoopbackServer.methodNotAllowedPage)
      }
      const callback = LoopbackServer.makeCallbackRequest(
        url.searchParams,
        (page) => Effect.sync(() => write(response, page))
      )
      if (!Queue.unsafeOffer(requests, callback)) write(response, LoopbackServer.endedPage)
    }

    const servers: Array<Http.Server> = []
    let port = target.port
    for (const address of target.addresses) {
      const server = yield* bind(target, address, port, handler)
      if (server !== undefined) {
        servers.push(server)
        port = (server.address() as Net.AddressInfo).port
      }
    }
    // Runs before the servers' own finalizers: stop listening (this frees the port), answer what is still
    // open, and give the answers a moment to reach the browser before the connections are dropped.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        for (const server of servers) server.close()
        for (const response of responses.unsent) write(response, LoopbackServer.endedPage)
        return responses.drained.pipe(Effect.interruptible, Effect.timeout(Policies.loopbackCloseGrace), Effect.ignore)
      })
    )
    return { redirectUri: LoopbackServer.boundRedirectUri(target, port), next: Queue.take(requests) }
  })

/**
 * The URL of a request target, or `undefined` when it is not one (e.g. `//?x`, an empty authority): any page the
 * user has open can send such a request to the loopback port, and it must not crash the process.
 */
const parseTarget = (target: string | undefined): URL | undefined => {
  try {
    return new URL(target ?? "/", "http://loopback")
  } catch {
    return undefined
  }
}

/** The responses of a listener that are not completely sent yet. */
const makeResponses = () => {
  const unsent = new Set<Http.ServerResponse>()
  const waiters = new Set<() => void>()
  const sent = (response: Http.ServerResponse) => {
    if (unsent.delete(response) && unsent.size === 0) { for (const waiter of waiters) waiter() }
  }
  return {
    unsent,
    track: (response: Http.ServerResponse) => {
      unsent.add(response)
      response.once("finish", () => sent(response))
      response.once("close", () => sent(response))
    },
    /** Waits until every tracked response is sent (or its connection is gone). */
    drained: Effect.async<void>((resume) => {
      if (unsent.size === 0) return resume(Effect.void)
      const waiter = () => resume(Effect.void)
      waiters.add(waiter)
      return Effect.sync(() => waiters.delete(waiter))
    })
  }
}

/**
 * Binds one address in the current scope; releasing it stops the server and drops its connections. Answers
 * `undefined` when an optional address does not exist on this machine (e.g. `::1` without IPv6).
 */
const bind = (
  target: LoopbackServer.RedirectTarget,
  address: { readonly host: string; readonly optional: boolean },
  port: number,
  handler: (request: Http.IncomingMessage, response: Http.ServerResponse) => void
): Effect.Effect<Http.Server | undefined, AuthenticationError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Http.Server | undefined, AuthenticationError>((resume) => {
      const server = Http.createServer(handler)
      const onError = (error: NodeJS.ErrnoException) => {
        if (address.optional && (error.code === "EADDRNOTAVAIL" || error.code === "EAFNOSUPPORT")) {
          resume(Effect.succeed(undefined))
        } else {
          resume(Effect.fail(LoopbackServer.portInUse(target, describeBindError(error, address.host), error)))
        }
      }
      server.once("error", onError)
      server.listen({ host: address.host, port }, () => {
        server.off("error", onError)
        resume(Effect.succeed(server))
      })
      return Effect.sync(() => {
        server.off("error", onError)
        server.close()
      })
    }),
    (server) => server === undefined ? Effect.void : stop(server)
  )

/** Stops listening and destroys every remaining connection; done when the server reports it is closed. */
const stop = (server: Http.Server): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  }).pipe(Effect.interruptible, Effect.timeout(Policies.loopbackCloseGrace), Effect.ignore)

const write = (response: Http.ServerResponse, page: LoopbackServer.CallbackPage): void => {
  if (response.headersSent || response.destroyed) return
  response.writeHead(page.status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    connection: "close"
  })
  response.end(page.html)
}

const describeBindError = (error: NodeJS.ErrnoException, host: string): string => {
  switch (error.code) {
    case "EADDRINUSE":
      return `the port is already in use on ${host} (is another login running?)`
    case "EACCES":
      return `binding ports below 1024 needs privileges (on ${host})`
    case "EADDRNOTAVAIL":
      return `the address ${host} is not available on this machine`
    default:
      return `${error.code ?? "error"} on ${host}`
  }
}
