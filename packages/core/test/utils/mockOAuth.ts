/**
 * A scripted OAuth server as an `HttpClient`: every request is recorded (with its `Clock` time) and answered by a
 * function of the request and its index.
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { Clock, Effect, Ref } from "effect"

export interface RecordedRequest {
  readonly url: string
  readonly path: string
  /** `Clock` time of the request, in milliseconds (TestClock time in `it.effect`). */
  readonly at: number
  readonly form: URLSearchParams
  readonly headers: Readonly<Record<string, string>>
}

export const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })

export const oauthError = (error: string, status = 400): Response => json({ error }, status)

export const tokenJson = (accessToken = "at-1", extra: Record<string, unknown> = {}) =>
  json({ access_token: accessToken, token_type: "Bearer", expires_in: 3600, ...extra })

export const mockOAuth = (
  answer: (request: RecordedRequest, index: number) => Response | Effect.Effect<Response>
) =>
  Effect.gen(function*() {
    const requests = yield* Ref.make<ReadonlyArray<RecordedRequest>>([])
    const client = HttpClient.make((request) =>
      Effect.gen(function*() {
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        const recorded: RecordedRequest = {
          url: request.url,
          path: new URL(request.url).pathname,
          at: yield* Clock.currentTimeMillis,
          form: new URLSearchParams(body),
          headers: request.headers
        }
        const index = yield* Ref.getAndUpdate(requests, (all) => [...all, recorded]).pipe(
          Effect.map((all) => all.length)
        )
        const response = answer(recorded, index)
        return HttpClientResponse.fromWeb(request, Effect.isEffect(response) ? yield* response : response)
      })
    )
    return { client, requests: Ref.get(requests) }
  })
