/**
 * The machinery behind the auth and proxy interceptors: a grpc-js call that waits for its headers without
 * blocking, adds them to the metadata, and replays a unary or server-streaming call once through a fresh
 * `nextCall(options)` when the server rejects the headers before answering.
 *
 * grpc-js calls the methods of an intercepting call synchronously, so nothing here waits: the headers are
 * obtained by running an `Effect` with `Runtime.runCallback`, and every operation the caller issues meanwhile
 * (`sendMessage`, `halfClose`, `startRead`) is queued and forwarded when the attempt starts.
 *
 * @internal
 */
import { isAuthError } from "@flyte-auth/core/AuthError"
import type * as AuthHeader from "@flyte-auth/core/AuthHeader"
import { resendsOnRejection } from "@flyte-auth/core/Policies"
import type * as grpc from "@grpc/grpc-js"
import { InterceptingCall, Metadata, status as Status } from "@grpc/grpc-js"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"

/** Headers to add to the metadata of one attempt; a rejection hands the same objects back to the policy. */
export type Headers = ReadonlyArray<AuthHeader.AuthHeader>

/** What a retrying interceptor adds, and when it replays a call. */
export interface Policy<E> {
  /** What the headers are, for messages: `"access token"`, `"proxy token"`. */
  readonly what: string
  /** The headers of the next attempt. */
  readonly headers: Effect.Effect<Headers, E>
  /**
   * The headers `headers` would yield at once, read synchronously, or `undefined` when it has work to do: the
   * first attempt of a call then starts without running an effect.
   */
  readonly cached?: () => Headers | undefined
  /** Whether a status (of a call that received no message yet) means that the headers were rejected. */
  readonly isRejection: (status: grpc.StatusObject) => boolean
  /** The server rejected the `sent` headers: the source must not hand them out again (unless already replaced). */
  readonly rejected: (sent: Headers) => Effect.Effect<void, E>
}

type CallInterface = ReturnType<grpc.NextCall>
type MessageContext = Parameters<CallInterface["sendMessageWithContext"]>[0]

interface FullListener {
  readonly onReceiveMetadata: (metadata: Metadata) => void
  readonly onReceiveMessage: (message: any) => void
  readonly onReceiveStatus: (status: grpc.StatusObject) => void
}

/** The deadline of a call passed while its headers were being obtained. */
class DeadlinePassed {
  readonly _tag = "DeadlinePassed"
}

/**
 * A grpc-js interceptor driven by `policy`, running its effects on `runtime`.
 */
export const makeInterceptor =
  <E>(policy: Policy<E>, runtime: Runtime.Runtime<never>): grpc.Interceptor => (options, nextCall) =>
    new InterceptingCall(new RetryingCall(policy, runtime, options, nextCall))

/** A human description of why an effect failed; it never quotes a secret (the public errors never contain one). */
export const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (isAuthError(error)) return error.message
    if (error instanceof Error) return `${error.name} (message withheld)`
    return "unknown error"
  }
  if (Cause.isInterruptedOnly(cause)) return "interrupted"
  const defect = Cause.dieOption(cause)
  return Option.isSome(defect) && defect.value instanceof Error
    ? `unexpected ${defect.value.name}`
    : "unexpected error"
}

class RetryingCall implements CallInterface {
  /** Whether a failed first attempt may be replayed: only calls with a single request message. */
  private readonly replayable: boolean
  private listener: FullListener | undefined
  private metadata: Metadata | undefined
  /** The attempt in progress, once its headers are ready. */
  private attempt: CallInterface | undefined
  private attempts = 0
  private sent: Headers = []
  /** Messages not yet given to an attempt; for a replayable call, every message sent so far. */
  private outbox: Array<readonly [MessageContext, any]> = []
  private halfClosed = false
  /** The caller asked for a message that has not arrived yet. */
  private readWanted = false
  private cancelFetch: (() => void) | undefined
  private finished = false

  constructor(
    private readonly policy: Policy<any>,
    private readonly runtime: Runtime.Runtime<never>,
    private readonly options: grpc.InterceptorOptions,
    private readonly nextCall: grpc.NextCall
  ) {
    this.replayable = !options.method_definition.requestStream
  }

  start(metadata: Metadata, listener?: Partial<grpc.InterceptingListener>): void {
    this.metadata = metadata
    this.listener = {
      onReceiveMetadata: (m) => listener?.onReceiveMetadata?.(m),
      onReceiveMessage: (m) => listener?.onReceiveMessage?.(m),
      onReceiveStatus: (s) => listener?.onReceiveStatus?.(s)
    }
    const cached = this.policy.cached?.()
    if (cached !== undefined) {
      this.startAttempt(cached)
      return
    }
    this.fetch(this.policy.headers, (cause) => ({
      code: Status.UNAUTHENTICATED,
      details: `flyte-auth: could not obtain the ${this.policy.what} for ${this.path}: ${describeFailure(cause)}`,
      metadata: new Metadata()
    }))
  }

  sendMessageWithContext(context: MessageContext, message: any): void {
    if (this.finished) return
    if (this.attempt === undefined || this.replayable) {
      this.outbox.push([context, message])
    }
    this.attempt?.sendMessageWithContext(context, message)
  }

  sendMessage(message: any): void {
    this.sendMessageWithContext({}, message)
  }

  halfClose(): void {
    this.halfClosed = true
    this.attempt?.halfClose()
  }

  startRead(): void {
    this.readWanted = true
    this.attempt?.startRead()
  }

  cancelWithStatus(code: grpc.status, details: string): void {
    if (this.finished) return
    if (this.attempt !== undefined) {
      // The attempt reports the status through its listener; replaying a cancelled call is never wanted.
      this.attempts = Number.POSITIVE_INFINITY
      this.attempt.cancelWithStatus(code, details)
      return
    }
    this.cancelFetch?.()
    this.finishLater({ code, details, metadata: new Metadata() })
  }

  getPeer(): string {
    return this.attempt?.getPeer() ?? "unknown"
  }

  getAuthContext(): ReturnType<CallInterface["getAuthContext"]> {
    return this.attempt?.getAuthContext() ?? null
  }

  private get path(): string {
    return this.options.method_definition.path
  }

  /** Obtains headers (bounded by the call's deadline), then starts an attempt; a failure ends the call. */
  private fetch(
    headers: Effect.Effect<Headers, unknown>,
    onFailure: (cause: Cause.Cause<unknown>) => grpc.StatusObject
  ) {
    let settled = false
    const cancel = Runtime.runCallback(this.runtime)(withDeadline(headers, this.options.deadline), {
      onExit: (exit) => {
        settled = true
        this.cancelFetch = undefined
        if (this.finished) return
        if (Exit.isSuccess(exit)) {
          this.startAttempt(exit.value)
        } else if (isDeadlinePassed(exit.cause)) {
          this.finishLater({
            code: Status.DEADLINE_EXCEEDED,
            details: `flyte-auth: the deadline of ${this.path} passed while obtaining the ${this.policy.what}`,
            metadata: new Metadata()
          })
        } else {
          this.finishLater(onFailure(exit.cause))
        }
      }
    })
    if (!settled) this.cancelFetch = () => cancel()
  }

  private startAttempt(headers: Headers): void {
    const metadata = this.metadata!.clone()
    try {
      for (const header of headers) metadata.set(header.key, Redacted.value(header.value))
    } catch {
      // Metadata rejects keys and values with characters HTTP/2 cannot carry.
      this.finishLater({
        code: Status.UNAUTHENTICATED,
        details: `flyte-auth: the ${this.policy.what} header (${
          headers.map((header) => header.key).join(", ")
        }) cannot be sent as gRPC metadata`,
        metadata: new Metadata()
      })
      return
    }
    this.sent = headers
    this.attempts += 1
    const call = this.nextCall(this.options)
    this.attempt = call
    const mayRetry = this.replayable && this.attempts <= resendsOnRejection
    let receivedMessage = false
    let heldMetadata: Metadata | undefined
    let heldEmptyMessage = false
    const current = () => this.attempt === call && !this.finished
    call.start(metadata, {
      onReceiveMetadata: (received: Metadata) => {
        if (!current()) return
        // Response headers of an attempt that may still be replayed are held until it is known to count.
        if (mayRetry && !receivedMessage) heldMetadata = received
        else this.listener!.onReceiveMetadata(received)
      },
      onReceiveMessage: (message: any) => {
        if (!current()) return
        if (message === null && !receivedMessage) {
          // grpc-js reports "no response message" of a unary call as `null` just before the status.
          heldEmptyMessage = true
          return
        }
        receivedMessage = true
        this.readWanted = false
        if (heldMetadata !== undefined) {
          this.listener!.onReceiveMetadata(heldMetadata)
          heldMetadata = undefined
        }
        this.listener!.onReceiveMessage(message)
      },
      onReceiveStatus: (status: grpc.StatusObject) => {
        if (!current()) return
        const rejected = this.attempts <= resendsOnRejection && this.policy.isRejection(status)
        if (rejected && this.replayable && !receivedMessage) {
          this.retry(status)
          return
        }
        if (rejected) {
          // Not replayed (a streamed request, or a response already under way): the error surfaces, and the
          // rejected headers are dropped so that the next call obtains new ones.
          Runtime.runFork(this.runtime)(Effect.ignore(this.policy.rejected(this.sent)))
        }
        if (heldMetadata !== undefined) this.listener!.onReceiveMetadata(heldMetadata)
        if (heldEmptyMessage) this.listener!.onReceiveMessage(null)
        this.finish(status)
      }
    })
    const pending = this.outbox
    if (!this.replayable) this.outbox = []
    for (const [context, message] of pending) {
      call.sendMessageWithContext(this.attempts > 1 ? withoutCallback(context) : context, message)
    }
    if (this.halfClosed) call.halfClose()
    if (this.readWanted) call.startRead()
  }

  private retry(rejection: grpc.StatusObject): void {
    this.attempt = undefined
    const sent = this.sent
    const policy = this.policy
    const path = this.path
    this.fetch(
      Effect.logDebug(
        `flyte-auth: ${path} was rejected (${Status[rejection.code]}); renewing the ${policy.what} and retrying once`
      )
        .pipe(Effect.zipRight(policy.rejected(sent)), Effect.zipRight(policy.headers)),
      (cause) => ({
        code: rejection.code,
        details: `flyte-auth: ${path} was rejected (${rejection.details}) and renewing the ${policy.what} failed: ${
          describeFailure(cause)
        }`,
        metadata: rejection.metadata
      })
    )
  }

  private finish(status: grpc.StatusObject): void {
    if (this.finished) return
    this.finished = true
    this.outbox = []
    this.listener?.onReceiveStatus(status)
  }

  /** Ends the call from this interceptor; never inside the caller's own `start()` (grpc-js reports asynchronously). */
  private finishLater(status: grpc.StatusObject): void {
    if (this.finished) return
    this.finished = true
    this.outbox = []
    void Promise.resolve().then(() => this.listener?.onReceiveStatus(status))
  }
}

const withoutCallback = (context: MessageContext): MessageContext =>
  context.flags === undefined ? {} : { flags: context.flags }

const isDeadlinePassed = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.failureOption(cause)
  return Option.isSome(failure) && failure.value instanceof DeadlinePassed
}

/** Bounds `effect` by a grpc deadline (an absolute wall-clock time, as grpc-js uses). */
const withDeadline = <A, E>(
  effect: Effect.Effect<A, E>,
  deadline: grpc.Deadline | undefined
): Effect.Effect<A, E | DeadlinePassed> => {
  if (deadline === undefined) return effect
  const at = deadline instanceof Date ? deadline.getTime() : deadline
  if (!Number.isFinite(at)) return effect
  return Effect.suspend(() =>
    Effect.timeoutFail(effect, {
      duration: Duration.millis(Math.max(0, at - Date.now())),
      onTimeout: () => new DeadlinePassed()
    })
  )
}
