/**
 * Sending requests to OAuth and metadata endpoints and reading their answers into typed results.
 *
 * Every call is bounded: one timeout covers the request and the whole body, and the body is read as a stream
 * that stops (and aborts the request) once it passes `maxResponseBytes`. Whatever a server answers becomes
 * either JSON or an `AuthenticationError`; nothing a server sends can crash the reader.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { AuthenticationError } from "../AuthError.js"
import * as Policies from "../Policies.js"

/**
 * The largest response body read from an identity provider or metadata endpoint. Real answers are a few KiB;
 * anything past this is refused without being buffered.
 *
 * @internal
 */
export const maxResponseBytes = 1024 * 1024

/** The longest server-provided text (`error_description`, ...) copied into an error. */
const maxServerText = 500

/** @internal */
export const ErrorResponse = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optionalWith(Schema.String, { nullable: true }),
  error_uri: Schema.optionalWith(Schema.String, { nullable: true })
})

/**
 * Executes a request and answers the parsed JSON body of a 2xx response. An RFC 6749 §5.2 error body (with any
 * status, since some servers answer errors with 200) fails with reason `OAuthError`; anything else that is not
 * 2xx JSON fails with `InvalidResponse` and the status; a request that does not complete fails with `Transport`.
 *
 * `secrets` are the secret values sent in the request: should a server echo one back in its error text, it is
 * replaced before it reaches the error.
 *
 * @internal
 */
export const requestJson = (
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  target: string,
  secrets: ReadonlyArray<string> = []
): Effect.Effect<unknown, AuthenticationError> =>
  client.execute(request).pipe(
    Effect.catchTag("RequestError", (error) =>
      Effect.fail(
        // A client wrapper that could not prepare the request (e.g. no proxy token) reports our own error as cause.
        error.cause instanceof AuthenticationError
          ? error.cause
          : error.reason === "InvalidUrl"
          ? new AuthenticationError({
            reason: "Config",
            description: `Cannot send a request to ${target}: the URL is not valid`
          })
          : new AuthenticationError({
            reason: "Transport",
            description: `Could not reach ${target}: ${
              describeRequestError(error.reason, error.cause, error.description, secrets)
            }`,
            cause: error.cause
          })
      )),
    // A client wrapped with `filterStatusOk` fails on a status; its response still says why.
    Effect.catchTag("ResponseError", (error) => Effect.succeed(error.response)),
    Effect.flatMap((response) => readJson(response, target, secrets)),
    Effect.timeoutFail({
      duration: Policies.httpTimeout,
      onTimeout: () =>
        new AuthenticationError({
          reason: "Transport",
          description: `${target} did not answer in time (${Duration.format(Policies.httpTimeout)})`
        })
    })
  )

const describeRequestError = (
  reason: string,
  cause: unknown,
  description: string | undefined,
  secrets: ReadonlyArray<string>
): string => {
  // fetch wraps the socket error (`ECONNREFUSED`, `ENOTFOUND`, ...) in a TypeError's cause.
  const inner = Predicate.hasProperty(cause, "cause") ? cause.cause : undefined
  const code = Predicate.hasProperty(inner, "code") && typeof inner.code === "string"
    ? inner.code
    : Predicate.hasProperty(cause, "code") && typeof cause.code === "string"
    ? cause.code
    : undefined
  // A transport that gave up by itself says why (e.g. NodeTransport's "no response within 5s").
  const detail = code ?? (description === undefined || description === "" ? undefined : scrubber(secrets)(description))
  return detail !== undefined ? `${reason} error (${detail})` : `${reason} error`
}

/**
 * Reads a response body of at most `maxResponseBytes` as text. A body past the limit fails with
 * `InvalidResponse` as soon as the limit is crossed, which ends the stream and aborts the request.
 *
 * @internal
 */
export const readText = (
  response: HttpClientResponse.HttpClientResponse,
  target: string
): Effect.Effect<string, AuthenticationError> =>
  response.stream.pipe(
    Stream.runFoldEffect(
      { chunks: [] as Array<Uint8Array>, size: 0 },
      (acc, chunk): Effect.Effect<{ chunks: Array<Uint8Array>; size: number }, AuthenticationError> => {
        const size = acc.size + chunk.byteLength
        if (size > maxResponseBytes) {
          return Effect.fail(
            new AuthenticationError({
              reason: "InvalidResponse",
              description: `The answer of ${target} is larger than ${maxResponseBytes} bytes`,
              status: response.status
            })
          )
        }
        acc.chunks.push(chunk)
        return Effect.succeed({ chunks: acc.chunks, size })
      }
    ),
    Effect.map(({ chunks, size }) => {
      const bytes = new Uint8Array(size)
      let offset = 0
      for (const chunk of chunks) {
        bytes.set(chunk, offset)
        offset += chunk.byteLength
      }
      return new TextDecoder().decode(bytes)
    }),
    Effect.catchTag("ResponseError", (error) =>
      error.reason === "EmptyBody" ? Effect.succeed("") : Effect.fail(
        new AuthenticationError({
          reason: "Transport",
          description: `The answer of ${target} broke off`,
          status: response.status,
          cause: error.cause
        })
      ))
  )

/**
 * Reads a response: 2xx JSON is answered; an RFC 6749 error or anything else fails typed.
 *
 * @internal
 */
export const readJson = (
  response: HttpClientResponse.HttpClientResponse,
  target: string,
  secrets: ReadonlyArray<string> = []
): Effect.Effect<unknown, AuthenticationError> =>
  Effect.flatMap(
    readText(response, target),
    (text) =>
      Effect.catchAll(parseJson(response, text, target, secrets), (error) => {
        const header = response.headers["retry-after"]
        if (header === undefined || (response.status >= 200 && response.status < 300)) return Effect.fail(error)
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const retryAfter = retryAfterSeconds(header, now)
          return Effect.fail(
            retryAfter === undefined ? error : new AuthenticationError({ ...error, retryAfterSeconds: retryAfter })
          )
        })
      })
  )

/**
 * The seconds to wait that a `Retry-After` header asks for: delay-seconds, or an HTTP date (relative to `now`,
 * epoch ms); `undefined` when absent or not understood.
 *
 * @internal
 */
export const retryAfterSeconds = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined) return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) return Number(value)
  const date = Date.parse(value)
  return Number.isNaN(date) || !/[a-z]/i.test(value) ? undefined : Math.max(0, Math.ceil((date - now) / 1000))
}

const parseJson = (
  response: HttpClientResponse.HttpClientResponse,
  text: string,
  target: string,
  secrets: ReadonlyArray<string>
): Effect.Effect<unknown, AuthenticationError> =>
  Effect.suspend(() => {
    const json = text.trim() === "" ? Either.left(undefined) : Either.try(() => JSON.parse(text) as unknown)
    const ok = response.status >= 200 && response.status < 300
    const oauthError = Either.isRight(json) && isErrorBody(json.right, ok)
      ? Schema.decodeUnknownOption(ErrorResponse)(json.right)
      : Option.none()
    if (Option.isSome(oauthError)) {
      const scrub = scrubber(secrets)
      return Effect.fail(
        new AuthenticationError({
          reason: "OAuthError",
          description: `${target} refused the request (HTTP ${response.status})`,
          error: scrub(oauthError.value.error),
          errorDescription: oauthError.value.error_description === undefined
            ? undefined
            : scrub(oauthError.value.error_description),
          errorUri: oauthError.value.error_uri === undefined ? undefined : scrub(oauthError.value.error_uri),
          status: response.status
        })
      )
    }
    if (ok && Either.isRight(json)) return Effect.succeed(json.right)
    const contentType = describeContentType(response.headers["content-type"])
    return Effect.fail(
      new AuthenticationError({
        reason: "InvalidResponse",
        description: ok
          ? `${target} answered HTTP ${response.status} with a body that is not JSON (${contentType})`
          : `${target} answered HTTP ${response.status} (${contentType}) without an OAuth error`,
        status: response.status
      })
    )
  })

/** An error body has a string `error`; a 2xx body counts only when it carries no token either. */
const isErrorBody = (body: unknown, ok: boolean): boolean =>
  Predicate.isRecord(body) && typeof body.error === "string" &&
  (!ok || (body.access_token === undefined && body.device_code === undefined))

const describeContentType = (value: string | undefined): string =>
  value === undefined || value === "" ? "no content type" : truncate(value.split(";")[0].trim(), 100)

/**
 * Truncates server text and removes any secret value sent in the request from it.
 *
 * @internal
 */
export const scrubber = (secrets: ReadonlyArray<string>) => (text: string): string => {
  let result = text
  for (const secret of secrets) {
    if (secret.length >= 4) result = result.split(secret).join("<redacted>")
  }
  return truncate(result, maxServerText)
}

const truncate = (text: string, max: number): string => text.length > max ? `${text.slice(0, max)}…` : text

/**
 * Decodes a JSON body; the parse error names the fields that are wrong, never their values.
 *
 * @internal
 */
export const decodeBody = <A, I>(
  schema: Schema.Schema<A, I>,
  body: unknown,
  what: string
): Effect.Effect<A, AuthenticationError> =>
  Schema.decodeUnknown(schema)(body).pipe(
    Effect.mapError((error) =>
      new AuthenticationError({
        reason: "InvalidResponse",
        description: `The ${what} response is not valid: ${describeParseError(error)}`
      })
    )
  )

const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue._tag}`)
  return [...new Set(issues)].join(", ")
}

/**
 * The URL without its query, fragment or user info (which may carry values that are not ours to print).
 *
 * @internal
 */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.origin}${parsed.pathname}`
  } catch {
    return "(invalid URL)"
  }
}
