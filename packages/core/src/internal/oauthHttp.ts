/**
 * Reading answers of OAuth and metadata endpoints into typed results.
 *
 * @internal
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AuthenticationError } from "../AuthError.js"
import * as Policies from "../Policies.js"

/** @internal */
export const ErrorResponse = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String),
  error_uri: Schema.optional(Schema.String)
})

/** Reads a response: 2xx JSON is answered; an RFC 6749 error or anything else fails typed. */
export const readJson = Effect.fnUntraced(function*(response: HttpClientResponse.HttpClientResponse, target: string) {
  const text = yield* response.text.pipe(
    Effect.timeoutFail({
      duration: Policies.httpTimeout,
      onTimeout: () =>
        new AuthenticationError({ reason: "Transport", description: `${target} did not finish its answer in time` })
    }),
    Effect.catchTag("ResponseError", (error) =>
      Effect.fail(
        new AuthenticationError({
          reason: "Transport",
          description: `The answer of ${target} broke off`,
          status: response.status,
          cause: error.cause
        })
      ))
  )
  const json = Either.try(() => JSON.parse(text) as unknown)
  const ok = response.status >= 200 && response.status < 300
  if (ok && Either.isRight(json)) return json.right

  const oauthError = Either.isRight(json) ? Schema.decodeUnknownOption(ErrorResponse)(json.right) : Option.none()
  if (Option.isSome(oauthError)) {
    return yield* new AuthenticationError({
      reason: "OAuthError",
      description: `${target} refused the request (HTTP ${response.status})`,
      error: oauthError.value.error,
      errorDescription: oauthError.value.error_description,
      errorUri: oauthError.value.error_uri,
      status: response.status
    })
  }
  const contentType = response.headers["content-type"] ?? "no content type"
  return yield* new AuthenticationError({
    reason: "InvalidResponse",
    description: ok
      ? `${target} answered HTTP ${response.status} with a body that is not JSON (${contentType})`
      : `${target} answered HTTP ${response.status} (${contentType}) without an OAuth error`,
    status: response.status
  })
})

/** Decodes a JSON body; the parse error names the fields that are wrong, never their values. */
export const decodeBody = <A, I>(schema: Schema.Schema<A, I>, body: unknown, what: string) =>
  Schema.decodeUnknown(schema)(body).pipe(
    Effect.mapError((error) =>
      new AuthenticationError({
        reason: "InvalidResponse",
        description: `The ${what} response is not valid: ${describeParseError(error)}`
      })
    )
  )

const describeParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue._tag}`)
    .join(", ")

/** The URL without its query (which may carry values that are not ours to print). */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.origin}${parsed.pathname}`
  } catch {
    return "the token endpoint"
  }
}
