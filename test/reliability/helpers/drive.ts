/**
 * Runs an effect that does real I/O through the fault proxy while the test holds the `TestClock`.
 *
 * Virtual time moves only when nothing real can be under way:
 * - the proxy holds a request open on purpose (a stall): time jumps to the next timer, which is the client's
 *   timeout for that request;
 * - no request is at the proxy and the next timer is short (a retry backoff, a device-flow poll interval):
 *   time jumps to it.
 * A long timer (a request timeout, the interactive timeout) is never reached while a real request may be in flight.
 *
 * The answer carries the virtual time the effect took, so a test can check "fails within the configured bound"
 * without waiting for it, and the run is itself bounded in real time, so nothing hangs.
 */
import { Chunk, Clock, Duration, Effect, type Exit, Fiber, Option, TestClock } from "effect"
import type { FaultProxy } from "./faultProxy.js"

export interface Driven<A, E> {
  readonly exit: Exit.Exit<A, E>
  /** Virtual milliseconds from start to end. */
  readonly elapsed: number
}

/** Timers at most this far away are backoffs and poll intervals, safe to jump to when no request is at the proxy. */
const shortTimer = 3_000
/** How long a request must have been stalled (real time) before time jumps: lets a stale count settle. */
const stallSettle = 30
/**
 * How long (real time) nothing must have changed (no request at the proxy, no new request, the same timers) before
 * time jumps to a short timer. The timers of finished requests stay in the `TestClock`'s list until their time
 * passes; without this, a jump could land on one while the client is still reading its last answer.
 */
const idleSettle = 50

const liveSleep = (millis: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

export const drive = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  proxy: FaultProxy,
  options: { readonly maxRealTime?: Duration.DurationInput } = {}
): Effect.Effect<Driven<A, E>, never, R> =>
  Effect.gen(function*() {
    const maxReal = Duration.toMillis(options.maxRealTime ?? Duration.seconds(20))
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.fork(effect)
    const realStart = Date.now()
    let stalledSince: number | undefined
    let idle: { readonly since: number; readonly key: string } | undefined
    while (true) {
      yield* liveSleep(5)
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) {
        return { exit: done.value, elapsed: (yield* Clock.currentTimeMillis) - start }
      }
      if (Date.now() - realStart > maxReal) {
        yield* Fiber.interrupt(fiber)
        return yield* Effect.dieMessage(`the effect did not finish within ${maxReal} ms of real time`)
      }
      const sleeps = yield* TestClock.sleeps()
      if (Chunk.isEmpty(sleeps)) continue
      const now = yield* Clock.currentTimeMillis
      const next = Math.min(...Chunk.toReadonlyArray(sleeps))
      if (proxy.stalled() > 0) {
        stalledSince ??= Date.now()
        if (Date.now() - stalledSince >= stallSettle) {
          stalledSince = undefined
          yield* TestClock.adjust(Duration.millis(Math.max(0, next - now)))
        }
      } else {
        stalledSince = undefined
        if (proxy.inFlight() === 0 && next - now <= shortTimer) {
          const key = `${now} ${proxy.requests().length} ${Chunk.toReadonlyArray(sleeps).join(",")}`
          if (idle?.key !== key) idle = { since: Date.now(), key }
          if (Date.now() - idle.since >= idleSettle) {
            idle = undefined
            yield* TestClock.adjust(Duration.millis(Math.max(0, next - now)))
          }
        } else {
          idle = undefined
        }
      }
    }
  })

/** Sets the `TestClock` to the real time, so that tokens from the sandbox and `Clock` agree. */
export const syncTestClock: Effect.Effect<void> = Effect.suspend(() => TestClock.setTime(Date.now()))
