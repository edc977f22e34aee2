/**
 * A loopback HTTP proxy in front of an upstream server (the sandbox IdP) that misbehaves on command.
 *
 * Point a flow's token / device endpoints at `proxy.url(upstreamUrl)`; every request is forwarded unchanged
 * unless a rule matches it, in which case the rule's fault is applied instead (or to the upstream answer).
 * Rules are consumed in the order they were added; each applies to `times` matching requests.
 *
 * The proxy also says what it is doing right now (`inFlight`, `stalled`), so a test on `TestClock` can move
 * virtual time forward exactly when the client is waiting on a stalled request, and never while a real request
 * is under way.
 */
import { Effect, type Scope } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"

/** What the proxy can do to one request. */
export type Fault =
  /** Answers with `status` (and `Retry-After` when set) without forwarding. */
  | {
    readonly _tag: "Status"
    readonly status: number
    readonly retryAfter?: string
    readonly contentType?: string
    readonly body?: string
  }
  /** Answers with `body` and `contentType` (status 200 by default) without forwarding. */
  | { readonly _tag: "Replace"; readonly status?: number; readonly contentType: string; readonly body: string | Buffer }
  /** Never answers: holds the request open until the client gives up. */
  | { readonly _tag: "StallBeforeHeaders" }
  /** Forwards, sends the status line, headers and half the body, then holds the connection open. */
  | { readonly _tag: "StallMidBody" }
  /** Destroys the connection as soon as the request has arrived (nothing is forwarded). */
  | { readonly _tag: "ResetBeforeResponse" }
  /** Forwards, sends headers and half the body, then destroys the connection. */
  | { readonly _tag: "ResetMidResponse" }
  /** Forwards, announces the full `content-length`, sends half the body and closes the connection cleanly. */
  | { readonly _tag: "TruncatedConnection" }
  /** Forwards, then sends a well-formed HTTP answer whose JSON body is cut in half. */
  | { readonly _tag: "TruncatedJson" }
  /** Forwards the upstream answer with another `content-type`. */
  | { readonly _tag: "ContentType"; readonly contentType: string }
  /**
   * Answers an RFC 6749 error that quotes the request back (form body and `authorization` header) in every text
   * field, raw and percent-encoded: a careless identity provider, and the worst case for secret scrubbing.
   */
  | { readonly _tag: "Echo"; readonly status: number; readonly error?: string }

/** Which requests a rule applies to. */
export interface Rule {
  readonly fault: Fault
  /** The request path (e.g. `/token`); any path when absent. */
  readonly path?: string
  /** The form's `grant_type` (e.g. `refresh_token`); any when absent. */
  readonly grantType?: string
  /** How many matching requests get the fault; `Infinity` for all of them. Default 1. */
  readonly times?: number
}

/** What the proxy saw. */
export interface SeenRequest {
  readonly method: string
  readonly path: string
  /** The form's `grant_type`, when the body had one. */
  readonly grantType: string | undefined
  /** The fault applied, if any. */
  readonly fault: Fault["_tag"] | undefined
}

export interface FaultProxy {
  /** The proxy's base URL, `http://127.0.0.1:<port>`. */
  readonly origin: string
  /** The URL that reaches `upstreamUrl` through the proxy. */
  readonly url: (upstreamUrl: string) => string
  readonly inject: (rule: Rule) => void
  /** Drops every rule not used up yet. */
  readonly clearRules: () => void
  readonly requests: () => ReadonlyArray<SeenRequest>
  /** Requests whose answer is not finished and whose connection is still open. */
  readonly inFlight: () => number
  /** Requests held open on purpose (`StallBeforeHeaders`, `StallMidBody`) whose connection is still open. */
  readonly stalled: () => number
  /** Forgets the requests seen and the rules. */
  readonly reset: () => void
  readonly close: () => Promise<void>
}

interface Upstream {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: Buffer
}

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade"
])

const copyHeaders = (headers: Http.IncomingHttpHeaders): Http.OutgoingHttpHeaders => {
  const out: Http.OutgoingHttpHeaders = {}
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(key)) out[key] = value
  }
  return out
}

const readBody = (stream: Http.IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    stream.on("data", (chunk: Buffer) => chunks.push(chunk))
    stream.on("end", () => resolve(Buffer.concat(chunks)))
    stream.on("error", reject)
  })

/** Starts a proxy on 127.0.0.1, port 0, forwarding to `upstreamOrigin` (e.g. the sandbox issuer). */
export const startFaultProxy = async (upstreamOrigin: string): Promise<FaultProxy> => {
  const upstream = new URL(upstreamOrigin)
  let rules: Array<{ readonly rule: Rule; left: number }> = []
  let seen: Array<SeenRequest> = []
  const open = new Set<Http.ServerResponse>()
  const stalled = new Set<Http.ServerResponse>()
  // Agent-less upstream requests: a fresh connection each time, so no fault leaks into the next request.
  const forward = (request: Http.IncomingMessage, body: Buffer): Promise<Upstream> =>
    new Promise((resolve, reject) => {
      const outgoing = Http.request({
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        agent: false,
        headers: { ...copyHeaders(request.headers), host: upstream.host, "content-length": body.length }
      }, (response) => {
        readBody(response).then(
          (responseBody) =>
            resolve({ status: response.statusCode ?? 502, headers: response.headers, body: responseBody }),
          reject
        )
      })
      outgoing.on("error", reject)
      outgoing.end(body)
    })

  const takeFault = (path: string, grantType: string | undefined): Fault | undefined => {
    const entry = rules.find(({ left, rule }) =>
      left > 0 && (rule.path === undefined || rule.path === path) &&
      (rule.grantType === undefined || rule.grantType === grantType)
    )
    if (entry === undefined) return undefined
    entry.left -= 1
    rules = rules.filter(({ left }) => left > 0)
    return entry.rule.fault
  }

  const handle = async (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    const body = await readBody(request)
    const path = new URL(request.url ?? "/", "http://proxy").pathname
    const grantType = new URLSearchParams(body.toString("utf8")).get("grant_type") ?? undefined
    const fault = takeFault(path, grantType)
    seen.push({ method: request.method ?? "GET", path, grantType, fault: fault?._tag })
    const send = (status: number, headers: Http.OutgoingHttpHeaders, payload: Buffer | string) => {
      response.writeHead(status, { ...headers, "content-length": Buffer.byteLength(payload) })
      response.end(payload)
    }
    const sendHalf = (answer: Upstream) => {
      response.writeHead(answer.status, { ...copyHeaders(answer.headers), "content-length": answer.body.length })
      response.write(answer.body.subarray(0, Math.floor(answer.body.length / 2)))
    }
    switch (fault?._tag) {
      case undefined: {
        const answer = await forward(request, body)
        return send(answer.status, copyHeaders(answer.headers), answer.body)
      }
      case "Status":
        return send(fault.status, {
          "content-type": fault.contentType ?? "application/json",
          ...(fault.retryAfter === undefined ? {} : { "retry-after": fault.retryAfter })
        }, fault.body ?? JSON.stringify({ error: "temporarily_unavailable" }))
      case "Replace":
        return send(fault.status ?? 200, { "content-type": fault.contentType }, fault.body)
      case "StallBeforeHeaders":
        stalled.add(response)
        return
      case "StallMidBody": {
        const answer = await forward(request, body)
        sendHalf(answer)
        stalled.add(response)
        return
      }
      case "ResetBeforeResponse":
        request.socket.destroy()
        return
      case "ResetMidResponse": {
        const answer = await forward(request, body)
        sendHalf(answer)
        // Let the first half reach the client before the connection is torn down.
        setTimeout(() => request.socket.destroy(), 5)
        return
      }
      case "TruncatedConnection": {
        const answer = await forward(request, body)
        sendHalf(answer)
        setTimeout(() => request.socket.end(), 5)
        return
      }
      case "TruncatedJson": {
        const answer = await forward(request, body)
        return send(
          answer.status,
          copyHeaders(answer.headers),
          answer.body.subarray(0, Math.floor(answer.body.length / 2))
        )
      }
      case "Echo": {
        const form = body.toString("utf8")
        const said = `you sent ${form} ${decodeURIComponent(form.replace(/\+/g, " "))} with ${
          request.headers.authorization ?? "no authorization"
        }`
        return send(
          fault.status,
          { "content-type": "application/json" },
          JSON.stringify({
            error: fault.error ?? said,
            error_description: said,
            error_uri: `https://idp.example/errors?request=${encodeURIComponent(form)}`
          })
        )
      }
      case "ContentType": {
        const answer = await forward(request, body)
        return send(answer.status, { ...copyHeaders(answer.headers), "content-type": fault.contentType }, answer.body)
      }
    }
  }

  const server = Http.createServer((request, response) => {
    open.add(response)
    const done = () => {
      open.delete(response)
      stalled.delete(response)
    }
    response.once("finish", done)
    response.once("close", done)
    // A client that gave up (or a reset we caused) makes writes fail: that is expected here.
    response.on("error", () => {})
    request.on("error", () => {})
    handle(request, response).catch(() => {
      if (!response.headersSent) send502(response)
      else response.destroy()
    })
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as Net.AddressInfo
  const origin = `http://127.0.0.1:${port}`
  let closing: Promise<void> | undefined

  return {
    origin,
    url: (upstreamUrl) => {
      const target = new URL(upstreamUrl)
      return `${origin}${target.pathname}${target.search}`
    },
    inject: (rule) => {
      rules.push({ rule, left: rule.times ?? 1 })
    },
    clearRules: () => {
      rules = []
    },
    requests: () => [...seen],
    inFlight: () => open.size,
    stalled: () => stalled.size,
    reset: () => {
      rules = []
      seen = []
    },
    close: () =>
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

const send502 = (response: Http.ServerResponse) => {
  response.writeHead(502, { "content-type": "text/plain" })
  response.end("fault proxy: upstream failed")
}

/** The proxy in a scope: closed (with every connection) when the scope ends. */
export const makeFaultProxy = (upstreamOrigin: string): Effect.Effect<FaultProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startFaultProxy(upstreamOrigin)),
    (proxy) => Effect.promise(() => proxy.close())
  )

/** Ten megabytes of syntactically valid JSON. */
export const hugeJson = (): Buffer => {
  const size = 10 * 1024 * 1024
  const buffer = Buffer.alloc(size, "a")
  buffer.write("{\"access_token\":\"", 0)
  buffer.write("\"}", size - 2)
  return buffer
}
