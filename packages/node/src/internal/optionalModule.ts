/**
 * Loading of optional native modules (keytar, @napi-rs/keyring) on first use.
 *
 * The specifier is passed through a variable so that neither TypeScript nor a bundler resolves it when our
 * package is imported: a missing or broken native module only shows up as a failed effect, when a keyring of
 * that backend is actually used.
 */
import * as Effect from "effect/Effect"

/** @internal */
export const importOptional = (specifier: string): Effect.Effect<unknown, unknown> =>
  Effect.tryPromise({ try: () => import(specifier) as Promise<unknown>, catch: (cause) => cause })

/** @internal */
export const errorMessage = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)
