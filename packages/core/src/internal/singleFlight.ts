/**
 * Single flight: one run of a piece of work shared by every caller that arrives while it runs, and its result
 * kept while it stays usable. The one place flyte-auth starts work on behalf of several callers, with one
 * interruption rule: the run belongs to the scope that made the flight, so closing that scope interrupts it; a
 * caller that is interrupted only stops waiting, and never strands the others.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"

/** @internal */
export interface SingleFlight<A, E> {
  /** The kept result while `keep` says it is usable, else the run under way, else a new run of the work. */
  readonly get: Effect.Effect<A, E>
  /** Forgets the kept result if `stale` says so of it (a run under way, or another result, is left alone). */
  readonly forget: (stale: (value: A) => boolean) => Effect.Effect<void>
}

/** @internal */
export interface Options<A> {
  /**
   * Whether a kept result may still be handed out (e.g. a token that is not near its expiry). Default: always.
   * A failure is never kept: it reaches the callers that waited for it and is forgotten.
   */
  readonly keep?: ((value: A) => Effect.Effect<boolean>) | undefined
}

/**
 * Starts one run of `work` for the callers awaiting `deferred`: forked in `scope` (closing it interrupts the run),
 * and `settle` runs before `deferred` is completed with the run's exit, whatever the exit, so the callers never
 * see a state that still names a finished run. Call it while uninterruptible (the run starts so too, so `settle`
 * is installed before anything can interrupt it: even a run interrupted at once completes `deferred`); callers wait
 * on `deferred`, interruptibly, and an interrupted caller only stops waiting.
 *
 * @internal
 */
export const launch = <A, E>(
  work: Effect.Effect<A, E>,
  deferred: Deferred.Deferred<A, E>,
  scope: Scope.Scope,
  settle: (exit: Exit.Exit<A, E>) => Effect.Effect<void>
): Effect.Effect<void> =>
  work.pipe(
    Effect.interruptible,
    Effect.onExit((exit) => Effect.zipRight(settle(exit), Deferred.done(deferred, exit))),
    Effect.forkIn(scope),
    Effect.asVoid
  )

/**
 * A single flight of `work`, whose runs are forked in the current scope.
 *
 * @internal
 */
export const make = <A, E>(
  work: Effect.Effect<A, E>,
  options: Options<A> = {}
): Effect.Effect<SingleFlight<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const keep = options.keep
    const state = yield* Ref.make<Option.Option<Deferred.Deferred<A, E>>>(Option.none())

    const clear = (deferred: Deferred.Deferred<A, E>) =>
      Ref.update(state, (current) => Option.isSome(current) && current.value === deferred ? Option.none() : current)

    /** A run under way is always joined; a finished one only while `keep` says so. */
    const usable = (deferred: Deferred.Deferred<A, E>): Effect.Effect<boolean> =>
      keep === undefined ?
        Effect.succeed(true) :
        Effect.flatMap(Deferred.poll(deferred), (polled) =>
          Option.isNone(polled)
            ? Effect.succeed(true)
            : Effect.flatMap(Effect.exit(polled.value), (exit) =>
              Exit.isSuccess(exit) ? keep(exit.value) : Effect.succeed(false)))

    // Deciding who runs and starting that run happen without interruption, so the state never names a run that
    // did not start; only the waiting is interruptible.
    const start = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const candidate = yield* Deferred.make<A, E>()
        const leader = yield* Ref.modify(state, (latest) =>
          Option.isSome(latest) ? [latest.value, latest] as const : [candidate, Option.some(candidate)] as const)
        if (leader === candidate) {
          // Forget a failure before anyone hears of it, so a caller that retries at once starts a new run.
          yield* launch(work, candidate, scope, (exit) =>
            Exit.isFailure(exit) ? clear(candidate) : Effect.void)
        }
        return yield* restore(Deferred.await(leader))
      })
    )

    const get: Effect.Effect<A, E> = Effect.flatMap(Ref.get(state), (current) => {
      if (Option.isNone(current)) {
        return start
      }
      if (keep === undefined) {
        return Deferred.await(current.value)
      }
      return Effect.flatMap(
        usable(current.value),
        (ok) =>
          ok ? Deferred.await(current.value) : Effect.zipRight(clear(current.value), start)
      )
    })

    const forget = (stale: (value: A) => boolean): Effect.Effect<void> =>
      Effect.flatMap(Ref.get(state), (current) =>
        Option.isNone(current) ?
          Effect.void :
          Effect.flatMap(Deferred.poll(current.value), (polled) =>
            Option.isNone(polled) ?
              Effect.void :
              Effect.flatMap(Effect.exit(polled.value), (exit) =>
                Exit.isSuccess(exit) && stale(exit.value) ? clear(current.value) : Effect.void)))

    return { get, forget }
  })
