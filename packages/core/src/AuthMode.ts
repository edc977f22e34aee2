/**
 * The four ways to obtain a token, and the names users write for them (flytekit's spellings included).
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AuthenticationError } from "./AuthError.js"

/**
 * The auth modes:
 *
 * - `Pkce`: authorization code with PKCE in a browser (interactive).
 * - `ClientSecret`: the client credentials grant (a service account).
 * - `ExternalCommand`: a command prints the token.
 * - `DeviceFlow`: the device authorization grant, approved on another device (interactive).
 *
 * @since 0.1.0
 * @category models
 */
export const AuthMode = Schema.Literal("Pkce", "ClientSecret", "ExternalCommand", "DeviceFlow")

/**
 * @since 0.1.0
 * @category models
 */
export type AuthMode = typeof AuthMode.Type

/**
 * Every accepted spelling (compared case-insensitively) and the mode it names: the canonical names plus
 * flytekit's aliases `standard`, `basic`, `client_credentials` and `external_process`.
 *
 * @since 0.1.0
 * @category constants
 */
export const aliases: Readonly<Record<string, AuthMode>> = {
  pkce: "Pkce",
  standard: "Pkce",
  clientsecret: "ClientSecret",
  client_secret: "ClientSecret",
  basic: "ClientSecret",
  client_credentials: "ClientSecret",
  externalcommand: "ExternalCommand",
  external_command: "ExternalCommand",
  external_process: "ExternalCommand",
  deviceflow: "DeviceFlow",
  device_flow: "DeviceFlow"
}

/**
 * A human-readable list of the valid modes and their aliases, for error messages and help texts.
 *
 * @since 0.1.0
 * @category constants
 */
export const validModes: string =
  "Pkce (or standard), ClientSecret (or basic, client_credentials), ExternalCommand (or external_process), DeviceFlow"

/**
 * Parses an auth mode case-insensitively, accepting flytekit's aliases; anything else is an
 * `AuthenticationError` with reason `Config` that lists the valid modes.
 *
 * @example
 * ```ts
 * import { AuthMode } from "@flyte-auth/core"
 * AuthMode.parseEither("client_credentials") // Either.right("ClientSecret")
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseEither = (input: string): Either.Either<AuthMode, AuthenticationError> => {
  const key = input.trim().toLowerCase()
  const mode = Object.prototype.hasOwnProperty.call(aliases, key) ? aliases[key] : undefined
  return mode !== undefined ? Either.right(mode) : Either.left(
    new AuthenticationError({
      reason: "Config",
      setting: "authMode",
      description: `Unknown auth mode "${input.trim()}"; valid modes are ${validModes}`
    })
  )
}

/**
 * Parses an auth mode (see `parseEither`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (input: string): Effect.Effect<AuthMode, AuthenticationError> => parseEither(input)

/**
 * A schema from the user's spelling to the canonical mode (for configuration decoding).
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthModeFromString: Schema.Schema<AuthMode, string> = Schema.transformOrFail(
  Schema.String,
  AuthMode,
  {
    strict: true,
    decode: (input, _, ast) =>
      Either.mapLeft(parseEither(input), (error) => new ParseResult.Type(ast, input, error.description)),
    encode: (mode) => Either.right(mode)
  }
)

/**
 * Whether a mode needs a user at the keyboard (a browser or a device prompt).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isInteractive = (mode: AuthMode): boolean => mode === "Pkce" || mode === "DeviceFlow"
