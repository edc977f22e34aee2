/**
 * Every retry, poll and timeout policy of flyte-auth, in one place.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import type { AuthenticationError, AuthenticationPending } from "./AuthError.js"

/**
 * How long one HTTP call to an identity provider or metadata endpoint may take.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const httpTimeout: Duration.Duration = Duration.seconds(30)

/**
 * How long an interactive login (browser callback, device approval) may wait by default.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const interactiveTimeout: Duration.Duration = Duration.minutes(5)

/**
 * How long an external token command may run by default.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const commandTimeout: Duration.Duration = Duration.seconds(60)

/**
 * How long an external command (token command, proxy command) that is abandoned (its caller was interrupted:
 * Ctrl-C, an aborted call) has to exit after `SIGTERM` before its process group is killed with `SIGKILL`.
 *
 * @since 0.2.0
 * @category timeouts
 */
export const commandTerminateGrace: Duration.Duration = Duration.seconds(2)

/**
 * How far an id_token's `exp` and `iat` may be off this machine's clock (clock skew between the IdP and here).
 *
 * @since 0.2.0
 * @category timeouts
 */
export const idTokenClockTolerance: Duration.Duration = Duration.seconds(60)

/**
 * How long the loopback callback server waits, when a login attempt ends, for its last answers to reach the
 * browser before it drops the remaining connections. The port itself is released at once.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const loopbackCloseGrace: Duration.Duration = Duration.seconds(1)

/**
 * How long one OS keyring call (keytar, @napi-rs/keyring) may take before it counts as unavailable:
 * a Secret Service that waits on an unlock prompt nobody can answer must not hang a login.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const keyringTimeout: Duration.Duration = Duration.seconds(10)

/**
 * How long a launched browser command is watched: exiting with an error within this time is reported;
 * still running (or exited cleanly) after it means the browser is taking over.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const browserLaunchGrace: Duration.Duration = Duration.seconds(2)

/**
 * Whether a failure is worth retrying: the request did not complete, or the server answered 5xx / 429.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isTransient = (error: AuthenticationError): boolean =>
  error.reason === "Transport" ||
  (error.status !== undefined && (error.status >= 500 || error.status === 429))

/**
 * The longest `Retry-After` a retry waits for. A server that asks for more is not retried: its error surfaces
 * at once rather than holding the caller for minutes.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxRetryAfter: Duration.Duration = Duration.seconds(10)

/**
 * The wait a failure asks for (the server's `Retry-After`), if it said.
 *
 * @since 0.1.0
 * @category utils
 */
export const retryAfter = (error: AuthenticationError): Duration.Duration | undefined =>
  error.retryAfterSeconds === undefined ? undefined : Duration.seconds(error.retryAfterSeconds)

/**
 * Retry of idempotent calls (metadata, discovery, client credentials) on transient failures:
 * exponential backoff from 200 ms with jitter, at most 3 retries; never sooner than the server's `Retry-After`,
 * and not at all when that is longer than `maxRetryAfter`.
 *
 * @since 0.1.0
 * @category schedules
 */
export const transientRetry: Schedule.Schedule<unknown, AuthenticationError> = Schedule.exponential(
  Duration.millis(200)
).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3)),
  Schedule.whileInput((error: AuthenticationError) => {
    const wait = retryAfter(error)
    return isTransient(error) && (wait === undefined || Duration.lessThanOrEqualTo(wait, maxRetryAfter))
  }),
  Schedule.intersect(Schedule.identity<AuthenticationError>()),
  Schedule.modifyDelay(([, error], delay) => {
    const wait = retryAfter(error)
    return wait === undefined ? delay : Duration.max(delay, wait)
  })
)

/**
 * The default device-flow polling interval when the server does not send one (RFC 8628 §3.2).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultDevicePollInterval: Duration.Duration = Duration.seconds(5)

/**
 * How much `slow_down` adds to the device-flow polling interval (RFC 8628 §3.5).
 *
 * @since 0.1.0
 * @category constants
 */
export const slowDownIncrement: Duration.Duration = Duration.seconds(5)

/**
 * Whether a server answered with a failure status (5xx, 429) rather than an answer: it issued nothing, so even
 * a request that is not idempotent (a device poll) can be sent again. A transport failure does not count: the
 * answer may have been lost after the server acted on the request.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isServerBusy = (error: AuthenticationError): boolean =>
  error.reason !== "Transport" && error.status !== undefined && (error.status >= 500 || error.status === 429)

/**
 * How many server failures in a row (`isServerBusy`: 5xx, 429) device-flow polling lives through, so that a
 * restarting or overloaded IdP does not end a login the user may be approving at that moment. A poll whose answer
 * was lost (a transport failure) is not repeated: the IdP may have spent the device code on it.
 *
 * @since 0.1.0
 * @category constants
 */
export const devicePollTransientFailures = 3

/**
 * Device-flow polling: waits `interval` between polls, adds 5 s for every `slow_down` (so two `slow_down`s
 * give 5, 10, 15 s), and gives up when the next poll would start at or after `deadline` by `Clock` (the
 * instant the device code expires: the time of the device authorization plus its `expires_in`). It recurs on
 * `AuthenticationPending`, and on up to `devicePollTransientFailures` server failures in a row (at the current
 * interval, or later when the server's `Retry-After` says so, up to `maxRetryAfter`); any other error ends it at once. When it gives up, the last error is what the retried
 * effect fails with.
 *
 * @since 0.1.0
 * @category schedules
 */
export const devicePolling = (
  interval: Duration.DurationInput,
  deadline: DateTime.DateTime
): Schedule.Schedule<Duration.Duration, AuthenticationError | AuthenticationPending> =>
  Schedule.makeWithState(
    { delay: Duration.decode(interval), transientInARow: 0 },
    (now, error: AuthenticationError | AuthenticationPending, state) => {
      if (error._tag === "AuthenticationError") {
        const transientInARow = state.transientInARow + 1
        const wait = retryAfter(error)
        if (
          !isServerBusy(error) || transientInARow > devicePollTransientFailures ||
          (wait !== undefined && Duration.greaterThan(wait, maxRetryAfter))
        ) {
          return Effect.succeed([state, state.delay, ScheduleDecision.done] as const)
        }
        const next = wait === undefined ? state.delay : Duration.max(state.delay, wait)
        return Effect.succeed(
          [
            { delay: state.delay, transientInARow },
            next,
            ScheduleDecision.continueWith(ScheduleInterval.after(now + Duration.toMillis(next)))
          ] as const
        )
      }
      const delay = error.reason === "SlowDown" ? Duration.sum(state.delay, slowDownIncrement) : state.delay
      return Effect.succeed(
        [
          { delay, transientInARow: 0 },
          delay,
          ScheduleDecision.continueWith(ScheduleInterval.after(now + Duration.toMillis(delay)))
        ] as const
      )
    }
  ).pipe(
    Schedule.checkEffect((_, delay) =>
      Effect.map(Clock.currentTimeMillis, (now) => now + Duration.toMillis(delay) < DateTime.toEpochMillis(deadline))
    )
  )

/**
 * How many times a request whose auth header was rejected (HTTP 401 for the access token, 407 for the proxy
 * token, gRPC `UNAUTHENTICATED`) is sent again, each time after the header was invalidated and a new one obtained:
 * once. The next rejection surfaces to the caller. Every transport reads it (`retryOnceOnUnauthenticated` for the
 * Effect HTTP clients, the gRPC interceptors and the facade's `fetch` directly).
 *
 * @since 0.2.0
 * @category constants
 */
export const resendsOnRejection = 1

/**
 * `resendsOnRejection` as a schedule, for the HTTP clients (`AuthHttpClient`, `ProxyAuthorization`).
 *
 * @since 0.1.0
 * @category schedules
 */
export const retryOnceOnUnauthenticated: Schedule.Schedule<number> = Schedule.recurs(resendsOnRejection)

/**
 * Whether a request body (as `fetch` takes it) can be sent again after a rejected token: none, text, bytes,
 * `URLSearchParams`, `Blob` and `FormData` can; a stream (or anything else) is consumed by the first attempt.
 * The one rule of the Effect HTTP clients (`AuthHttpClient.isReplayable`) and the facade's `fetch`.
 *
 * @since 0.3.0
 * @category predicates
 */
export const isReplayableBody = (body: unknown): boolean =>
  body === undefined || body === null || typeof body === "string" || body instanceof URLSearchParams ||
  body instanceof ArrayBuffer || ArrayBuffer.isView(body) ||
  (typeof Blob !== "undefined" && body instanceof Blob) ||
  (typeof FormData !== "undefined" && body instanceof FormData)

/**
 * How many messages of a client-streaming or bidi call the ConnectRPC interceptor keeps so that it can send the
 * call again after a rejected token; a longer request stream is not sent again (the rejection surfaces).
 *
 * @since 0.2.0
 * @category constants
 */
export const maxReplayedMessages = 1_000

/**
 * How often a process that waits for the cross-process credential lock (`CredentialLock`) tries again:
 * exponentially from 10 ms, at most 250 ms apart, jittered so that waiting processes spread out. It recurs
 * forever: the wait is bounded by `credentialLockTimeout`.
 *
 * @since 0.1.0
 * @category schedules
 */
export const credentialLockRetry: Schedule.Schedule<Duration.Duration> = Schedule.exponential(
  Duration.millis(10),
  1.5
).pipe(
  Schedule.union(Schedule.spaced(Duration.millis(250))),
  Schedule.jittered,
  Schedule.delays
)

/**
 * How much longer than the login it guards the credential lock may be held (token requests, keyring writes).
 *
 * @since 0.1.0
 * @category timeouts
 */
export const credentialLockMargin: Duration.Duration = Duration.minutes(1)

/**
 * How long one process may hold the credential lock of an endpoint: the timeout of the login that may run under
 * it (default `interactiveTimeout`) plus `credentialLockMargin`. The `Authenticator` gives up the lock (failing
 * with reason `Timeout`) when its refresh or login takes longer.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const credentialLockHold = (loginTimeout: Duration.DurationInput = interactiveTimeout): Duration.Duration =>
  Duration.sum(Duration.decode(loginTimeout), credentialLockMargin)

/**
 * How long a process waits for another process's credential lock before it fails with reason `Timeout`: as long
 * as the other process may hold it by default (`credentialLockHold()`, 6 minutes), so that a token request waits
 * for a login under way elsewhere instead of starting its own. A holder that died is detected much sooner (see
 * `credentialLockStaleAfter`).
 *
 * @since 0.1.0
 * @category timeouts
 */
export const credentialLockTimeout: Duration.Duration = credentialLockHold()

/**
 * How often the holder of a file-based credential lock touches its lock file, to show that it is alive.
 *
 * @since 0.1.0
 * @category schedules
 */
export const credentialLockHeartbeat: Schedule.Schedule<number> = Schedule.spaced(Duration.seconds(2))

/**
 * A file-based credential lock whose holder has not touched it for this long is stale and may be broken (a
 * holder on another machine, or a reused pid). A holder on this machine whose process is gone is detected at
 * once.
 *
 * @since 0.1.0
 * @category timeouts
 */
export const credentialLockStaleAfter: Duration.Duration = Duration.seconds(20)
