/**
 * The keyring account of one endpoint and client: where an `Authenticator` keeps its credentials. A keyring that
 * cannot be used degrades to memory (the credentials live as long as the process), with one warning.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Credentials from "../Credentials.js"
import * as Keyring from "../Keyring.js"
import * as StoredCredentials from "../StoredCredentials.js"

/** @internal */
export interface CredentialAccount {
  /** The credentials stored for this client and mode (none: nothing stored, another owner's, or no keyring). */
  readonly load: Effect.Effect<Option.Option<Credentials.Credentials>>
  readonly save: (credentials: Credentials.Credentials) => Effect.Effect<void>
  readonly remove: Effect.Effect<void>
}

/**
 * One account per endpoint and client (`Credentials.keyringAccount`); another client's or another mode's entry is
 * never handed out (`owner.authMode` is also recorded in an entry whose credentials name no mode). An entry of the time before accounts were per client is moved to this account when it is its
 * own.
 *
 * @internal
 */
export const make = (
  keyring: Keyring.Keyring.Service,
  endpoint: string,
  owner: Credentials.Owner
): Effect.Effect<CredentialAccount> =>
  Effect.map(Ref.make(false), (warned) => {
    const { authMode, clientId } = owner
    const account = Credentials.keyringAccount(endpoint, clientId)

    const warnOnce = (error: Keyring.KeyringError) =>
      Effect.flatMap(Ref.getAndSet(warned, true), (already) =>
        already ? Effect.void : Keyring.logWarning(
          "MemoryOnly",
          `The keyring is not usable (${error.message}); credentials for ${endpoint} are kept in memory only`
        ))

    const encode = (credentials: Credentials.Credentials) =>
      Credentials.encodeKeyringEntry(
        new Credentials.Credentials({ ...credentials, authMode: credentials.authMode ?? authMode, clientId })
      ).pipe(Effect.orDie)

    const load = StoredCredentials.find(keyring, endpoint, owner).pipe(
      Effect.tap((found) =>
        Option.isSome(found) && found.value.legacy
          ? encode(found.value.credentials).pipe(
            Effect.flatMap((entry) => keyring.set(Keyring.serviceName, account, entry)),
            Effect.zipRight(keyring.delete(Keyring.serviceName, Credentials.legacyKeyringAccount(endpoint))),
            Effect.zipRight(Effect.logDebug(`The credentials for ${endpoint} are now under the account ${account}`))
          )
          : Effect.void
      ),
      Effect.map(Option.map((found) => found.credentials)),
      Effect.catchTag("KeyringError", (error) => Effect.as(warnOnce(error), Option.none()))
    )

    const save = (credentials: Credentials.Credentials) =>
      encode(credentials).pipe(
        Effect.flatMap((entry) => keyring.set(Keyring.serviceName, account, entry)),
        Effect.catchTag("KeyringError", warnOnce)
      )

    const remove = keyring.delete(Keyring.serviceName, account).pipe(Effect.catchTag("KeyringError", warnOnce))

    return { load, save, remove }
  })
