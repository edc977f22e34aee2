/**
 * The state of an `Authenticator` and the one rule that reads it: given the state, what the caller asks for and
 * the time, hand out the cached credentials, wait for the flight under way, or lead a new one. Pure: the
 * `Authenticator` applies it atomically in its single-flight path (`join`) and in its synchronous cache read
 * (`cachedHeader`), so the two can never disagree.
 *
 * @internal
 */
import type * as Deferred from "effect/Deferred"
import * as Option from "effect/Option"
import type { AuthError } from "../AuthError.js"
import type * as Credentials from "../Credentials.js"

/** What a caller asks for: valid credentials, a refresh now, or a full login now. */
export type Want = "valid" | "refresh" | "login"

/** The refresh or login under way, and what it was started for. */
export interface InFlight {
  readonly want: Want
  readonly deferred: Deferred.Deferred<Credentials.Credentials, AuthError>
}

export interface State {
  /** Whether the keyring has been read. */
  readonly loaded: boolean
  readonly credentials: Option.Option<Credentials.Credentials>
  /** A server rejected the cached access token: it must be refreshed before it is handed out again. */
  readonly stale: boolean
  readonly loggedOut: boolean
  /** Bumped by `logout`, so a refresh that was under way does not write its result back. */
  readonly generation: number
  readonly inFlight: Option.Option<InFlight>
}

export const initial: State = {
  loaded: false,
  credentials: Option.none(),
  stale: false,
  loggedOut: false,
  generation: 0,
  inFlight: Option.none()
}

export type Decision =
  | { readonly _tag: "Cached"; readonly credentials: Credentials.Credentials }
  | { readonly _tag: "Await"; readonly deferred: InFlight["deferred"] }
  /** An explicit login while a refresh is under way: wait for it, then decide again. */
  | { readonly _tag: "AwaitThenRetry"; readonly deferred: InFlight["deferred"] }
  | { readonly _tag: "Lead" }

/** Until when (epoch milliseconds) credentials may be handed out as they are (`Credentials.freshUntil`). */
export type FreshUntil = (credentials: Credentials.Credentials) => number

/** The held credentials if they may be handed out as they are at `now`: not rejected, and fresh. */
export const usable = (state: State, now: number, freshUntil: FreshUntil): Credentials.Credentials | undefined =>
  !state.stale && Option.isSome(state.credentials) && now < freshUntil(state.credentials.value)
    ? state.credentials.value
    : undefined

/**
 * What a caller that wants valid credentials gets at once, without waiting: the loaded, usable credentials while no
 * flight is under way. The synchronous cache read is exactly this case of `decide`.
 */
export const cached = (state: State, now: number, freshUntil: FreshUntil): Credentials.Credentials | undefined =>
  state.loaded && Option.isNone(state.inFlight) ? usable(state, now, freshUntil) : undefined

const lead: Decision = { _tag: "Lead" }

/** What a caller that wants `want` at `now` does. */
export const decide = (state: State, want: Want, now: number, freshUntil: FreshUntil): Decision => {
  if (Option.isSome(state.inFlight)) {
    // A login asked for explicitly is not satisfied by a refresh under way.
    const satisfied = want !== "login" || state.inFlight.value.want === "login"
    return { _tag: satisfied ? "Await" : "AwaitThenRetry", deferred: state.inFlight.value.deferred }
  }
  const hit = want === "valid" ? cached(state, now, freshUntil) : undefined
  return hit === undefined ? lead : { _tag: "Cached", credentials: hit }
}
