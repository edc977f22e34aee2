/**
 * The exit codes of `flyte-auth` (dependency-free, for the fast path of `bin.ts`).
 *
 * @internal
 */

/**
 * `0` success, `1` failure, `2` bad usage (options), `3` no token without a login that is not allowed here
 * (`AccessTokenNotFound`), `70` internal error, `130` interrupted.
 *
 * @internal
 */
export const exitCodes = { failure: 1, usage: 2, accessTokenNotFound: 3, internal: 70, interrupted: 130 } as const
