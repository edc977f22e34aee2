/**
 * The Promise facade alone (`createAuthClient`, see `AuthClient`), published as one tree-shaken bundle with its
 * share of `effect` inlined: the fastest start for a program that does not use Effect itself. The same function
 * as `createAuthClient` of `@flyte-auth/node`, which loads the whole Effect API with it.
 *
 * @example
 * ```ts
 * import { createAuthClient } from "@flyte-auth/node/client"
 *
 * await using auth = await createAuthClient({ endpoint: "flyte.example.com:443" })
 * const token = await auth.accessToken()
 * ```
 *
 * @since 0.2.0
 */
export type { AuthClient, AuthenticatedHttpClient, CallOptions, Options } from "./AuthClient.js"
/**
 * @since 0.2.0
 */
export { createAuthClient } from "./AuthClient.js"
/**
 * The facade rejects with these tagged errors. They come from the bundle's own copy of `@flyte-auth/core`, so test
 * them with `isAuthError` or their `_tag` (`"AuthenticationError"`, `"AccessTokenNotFound"`,
 * `"AuthenticationPending"`), not with `instanceof` against classes imported from `@flyte-auth/core`.
 *
 * @since 0.2.0
 */
export { isAuthError } from "@flyte-auth/core/AuthError"
export type {
  AccessTokenNotFound,
  AuthenticationError,
  AuthenticationPending,
  AuthError
} from "@flyte-auth/core/AuthError"
