/**
 * The request header that carries an access token, `<key>: Bearer <token>`, as one value that goes out with a
 * request and comes back when the server rejects it. A transport sends `header.value` under `header.key` and, on
 * a rejection, hands the same object to `TokenSource.invalidate` / `Authenticator.invalidate`, which compare it
 * with what they would hand out now: no integration ever parses a header.
 *
 * @since 0.2.0
 */
import * as Redacted from "effect/Redacted"
import type { Credentials } from "./Credentials.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface AuthHeader {
  /** The header name, lower case (`authorization`, `flyte-authorization`, `proxy-authorization`). */
  readonly key: string
  /** `Bearer <token>`, redacted. */
  readonly value: Redacted.Redacted<string>
}

/**
 * The header `key: Bearer <token>` for an access token (or the access token of credentials).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (key: string, token: Redacted.Redacted<string> | Credentials): AuthHeader => ({
  key: key.toLowerCase(),
  value: Redacted.make(`Bearer ${Redacted.value(Redacted.isRedacted(token) ? token : token.accessToken)}`)
})

/**
 * Whether `header` is the one that carries `credentials`' access token, i.e. what a source holding those
 * credentials handed out. A source that was told a header was rejected drops its credentials only then.
 *
 * @since 0.2.0
 * @category predicates
 */
export const carries = (header: AuthHeader, credentials: Credentials): boolean => {
  const value = Redacted.value(header.value)
  const token = Redacted.value(credentials.accessToken)
  return value.length === token.length + 7 && value.startsWith("Bearer ") && value.endsWith(token)
}
