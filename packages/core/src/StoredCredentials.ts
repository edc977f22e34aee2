/**
 * The credentials kept in a `Keyring`: one entry per endpoint and client (`Credentials.keyringAccount`), read
 * only for the caller they belong to, and listed for `status`.
 *
 * @since 0.3.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Credentials from "./Credentials.js"
import * as Keyring from "./Keyring.js"

/**
 * A stored entry: its keyring account, the endpoint and client the account names, whether it is an entry of the
 * time before accounts were per client (`legacy`: the bare endpoint), and its credentials (`None` when the entry
 * is not valid credentials).
 *
 * @since 0.3.0
 * @category models
 */
export interface Stored {
  readonly account: string
  readonly endpoint: string
  readonly clientId: string | undefined
  readonly legacy: boolean
  readonly credentials: Option.Option<Credentials.Credentials>
}

/**
 * The entry of one account, decoded; a corrupt entry is reported and reads as none.
 *
 * @since 0.3.0
 * @category accessors
 */
export const read = (
  keyring: Keyring.Keyring.Service,
  account: string
): Effect.Effect<Option.Option<Credentials.Credentials>, Keyring.KeyringError> =>
  keyring.get(Keyring.serviceName, account).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeedNone,
      onSome: (entry) =>
        Credentials.decodeKeyringEntry(entry).pipe(
          Effect.asSome,
          Effect.catchTag("ParseError", () =>
            Effect.as(
              Effect.logWarning(`The keyring entry ${account} is not valid credentials; it is ignored`),
              Option.none()
            ))
        )
    }))
  )

/**
 * The credentials `owner` may be handed on `endpoint`, read only: its own account's entry when it is for it
 * (`Credentials.isFor`; an entry of another auth mode counts as none), else an entry under the bare endpoint
 * that `Credentials.isLegacyFor` gives it (`legacy: true`: the `Authenticator` then moves it to the account).
 *
 * @since 0.3.0
 * @category accessors
 */
export const find = (
  keyring: Keyring.Keyring.Service,
  endpoint: string,
  owner: Credentials.Owner
): Effect.Effect<
  Option.Option<{ readonly credentials: Credentials.Credentials; readonly legacy: boolean }>,
  Keyring.KeyringError
> =>
  Effect.gen(function*() {
    const own = yield* read(keyring, Credentials.keyringAccount(endpoint, owner.clientId))
    if (Option.isSome(own)) {
      return Credentials.isFor(own.value, owner)
        ? Option.some({ credentials: own.value, legacy: false })
        : Option.none()
    }
    const legacy = yield* read(keyring, Credentials.legacyKeyringAccount(endpoint))
    return Option.isSome(legacy) && Credentials.isLegacyFor(legacy.value, owner)
      ? Option.some({ credentials: legacy.value, legacy: true })
      : Option.none()
  })

/**
 * Every stored login, for `endpoint` or (without one) for every endpoint, sorted by endpoint then client id
 * (the admin's client first). Accounts that are not flyte-auth's credentials (a keyring probe, another tool) are
 * left out; a legacy entry is listed under the endpoint it records.
 *
 * @since 0.3.0
 * @category accessors
 */
export const list = (
  keyring: Keyring.Keyring.Service,
  endpoint?: string | undefined
): Effect.Effect<ReadonlyArray<Stored>, Keyring.KeyringError> =>
  Effect.gen(function*() {
    const accounts = yield* keyring.accounts(Keyring.serviceName)
    const found: Array<Stored> = []
    for (const account of accounts) {
      const named = Credentials.parseKeyringAccount(account)
      if (endpoint !== undefined && named.endpoint !== endpoint) continue
      const credentials = yield* read(keyring, account)
      // A legacy account is only the bare endpoint: something else under the service is not ours.
      if (named.legacy && !Option.exists(credentials, (c) => c.endpoint === named.endpoint)) continue
      if (Option.isSome(credentials) && credentials.value.endpoint !== named.endpoint) continue
      found.push({ account, ...named, credentials })
    }
    return found.sort((a, b) =>
      a.endpoint === b.endpoint
        ? Number(a.legacy) - Number(b.legacy) || (a.clientId ?? "").localeCompare(b.clientId ?? "")
        : a.endpoint.localeCompare(b.endpoint)
    )
  })
