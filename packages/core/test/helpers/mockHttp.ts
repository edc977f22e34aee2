/**
 * A scripted `HttpClient` for deterministic tests (an OAuth server, a metadata endpoint): every request is recorded
 * (method, URL, headers, decoded body, `Clock` time) and answered by a handler that returns a web `Response` (or
 * fails like a transport would).
 */
import { HttpClient, HttpClientError, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Clock, Effect, Ref } from "effect"

export interface RecordedRequest {
  readonly method: string
  readonly url: URL
  readonly path: string
  /** `Clock` time of the request, in milliseconds (TestClock time in `it.effect`). */
  readonly at: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly form: URLSearchParams
  readonly raw: HttpClientRequest.HttpClientRequest
}

export type Handler = (
  request: RecordedRequest,
  call: number
) => Response | Effect.Effect<Response, HttpClientError.HttpClientError>

export interface MockHttp {
  readonly client: HttpClient.HttpClient
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** How many requests went to a path (all paths when omitted). */
  readonly count: (path?: string) => Effect.Effect<number>
  readonly last: Effect.Effect<RecordedRequest>
}

export const makeMockHttp = (handler: Handler): Effect.Effect<MockHttp> =>
  Effect.gen(function*() {
    const requests = yield* Ref.make<ReadonlyArray<RecordedRequest>>([])
    const client = HttpClient.make((request, url) =>
      Effect.gen(function*() {
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        const recorded: RecordedRequest = {
          method: request.method,
          url,
          path: url.pathname,
          at: yield* Clock.currentTimeMillis,
          headers: request.headers,
          body,
          form: new URLSearchParams(body),
          raw: request
        }
        const call = yield* Ref.modify(requests, (all) => [all.length, [...all, recorded]])
        const answer = handler(recorded, call)
        const response = answer instanceof Response ? answer : yield* answer
        return HttpClientResponse.fromWeb(request, response)
      })
    )
    return {
      client,
      requests: Ref.get(requests),
      count: (path) =>
        Effect.map(
          Ref.get(requests),
          (all) => all.filter((request) => path === undefined || request.url.pathname === path).length
        ),
      last: Effect.map(Ref.get(requests), (all) => all[all.length - 1])
    }
  })

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

export const oauthError = (error: string, status = 400): Response => json({ error }, status)

export const tokenJson = (accessToken = "at-1", extra: Record<string, unknown> = {}) =>
  json({ access_token: accessToken, token_type: "Bearer", expires_in: 3600, ...extra })

export const text = (body: string, status: number, contentType = "text/html; charset=utf-8"): Response =>
  new Response(body, { status, headers: { "content-type": contentType } })

/** A request that failed before any answer, as fetch reports a refused connection. */
export const refused = (request: RecordedRequest) =>
  Effect.fail(
    new HttpClientError.RequestError({
      request: request.raw,
      reason: "Transport",
      cause: Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } })
    })
  )
