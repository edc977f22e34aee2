/**
 * Every flow, and the refresh path, through every fault of the catalogue (`helpers/faults.ts`), with the real
 * sandbox IdP behind the fault proxy and the real undici transport (`NodeTransport`, response timeout 5 s).
 *
 * Time is the `TestClock`, moved by `drive` only while the client waits on a stall or a backoff, so "within the
 * configured bound" is checked in virtual time and a 30 s timeout costs nothing.
 *
 * Expected: a typed `AuthenticationError` (reason from the catalogue) within the bound, or, for a transient fault
 * on an idempotent call (client credentials, device authorization) or a server failure status on a device poll,
 * success after one backed-off retry, unless the server asks to wait longer than `Policies.maxRetryAfter`. The keyring is untouched by
 * every failure, and the refresh path never falls back to a browser login.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Authenticator, AuthError, ClientConfig, Credentials, Flows, Keyring, Policies } from "@flyte-auth/core"
import { NodeCommandRunner, NodeTransport } from "@flyte-auth/node"
import { Cause, Context, DateTime, Duration, Effect, Exit, Layer, Option, Redacted, Ref } from "effect"
import { drive, syncTestClock } from "./helpers/drive.js"
import { type FaultCase, faultCases } from "./helpers/faults.js"
import { entryOf, type FlowName, flowNames, setupFlow, startWorld, type World } from "./helpers/world.js"

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

const responseTimeout = Duration.seconds(5)
const transport = NodeTransport.layer({ timeout: responseTimeout })
/** Backoff (one retry ≤ 240 ms) plus a device-flow poll interval (1 s), with room to spare. */
const slack = 2_000

/** The calls that are safe to repeat, so a transient fault is retried (`Policies.transientRetry`). */
const idempotent = new Set<FlowName>(["client credentials", "device authorization"])

/** The `Retry-After` a fault sends, in seconds. */
const retryAfterOf = (fault: FaultCase): number | undefined =>
  fault.fault._tag === "Status" && fault.fault.retryAfter !== undefined ? Number(fault.fault.retryAfter) : undefined

/** A `Retry-After` longer than `Policies.maxRetryAfter`: not waited for, the error surfaces at once. */
const waitsTooLong = (fault: FaultCase) => (retryAfterOf(fault) ?? 0) > Duration.toSeconds(Policies.maxRetryAfter)

/** The proxy answered with a 5xx itself (nothing forwarded): a device poll may be repeated (`isServerBusy`). */
const serverBusy = (fault: FaultCase) =>
  (fault.fault._tag === "Status" || fault.fault._tag === "Replace") && (fault.fault.status ?? 200) >= 500

/** Whether a transient fault is retried: idempotent calls on any, device polls on a server's failure status. */
const retriedOn = (flow: FlowName, fault: FaultCase) =>
  fault.transient && !waitsTooLong(fault) && (idempotent.has(flow) || (flow === "device poll" && serverBusy(fault)))

const pathOf = (flow: FlowName) => flow === "device authorization" ? world.devicePath : world.tokenPath

const waitOf = (fault: FaultCase) =>
  fault.waitsFor === "responseTimeout"
    ? Duration.toMillis(responseTimeout)
    : fault.waitsFor === "httpTimeout"
    ? Duration.toMillis(Policies.httpTimeout)
    : 0

const typedFailure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause)).toBe(false)
  expect(Cause.isInterrupted(exit.cause), Cause.pretty(exit.cause)).toBe(false)
  return Option.getOrThrow(Cause.failureOption(exit.cause))
}

describe("fault proxy: every flow through every fault", () => {
  for (const flow of flowNames) {
    describe(flow, () => {
      for (const fault of faultCases) {
        const retried = retriedOn(flow, fault)
        const outcome = fault.usable ? "succeeds" : retried ? "succeeds after one retry" : "typed error"
        it.scoped(`${fault.name} → ${outcome}`, () =>
          Effect.gen(function*() {
            yield* syncTestClock
            world.proxy.reset()
            const setup = yield* setupFlow(world, flow, transport)
            const before = yield* entryOf(setup.keyring, world)
            const codeGrantsBefore = world.sandbox.stats().tokenRequests.authorization_code
            world.proxy.inject({ path: pathOf(flow), fault: fault.fault, times: fault.transient ? 1 : Infinity })

            const { elapsed, exit } = yield* drive(setup.auth.credentials, world.proxy)

            const hits = world.proxy.requests().filter((request) => request.path === pathOf(flow))
            const faulted = hits.filter((request) => request.fault !== undefined).length
            const after = yield* entryOf(setup.keyring, world)
            expect(faulted).toBeGreaterThanOrEqual(1)
            expect(elapsed).toBeLessThanOrEqual(faulted * waitOf(fault) + slack)
            expect(elapsed).toBeGreaterThanOrEqual(waitOf(fault))

            if (fault.usable || retried) {
              expect(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toBe(true)
              const credentials = Exit.isSuccess(exit) ? exit.value : undefined
              expect(faulted).toBe(1)
              expect(hits).toHaveLength(retried ? 2 : faulted)
              // the new credentials are what the keyring holds now
              const stored = yield* Credentials.decodeKeyringEntry(after!)
              expect(Redacted.value(stored.accessToken)).toBe(Redacted.value(credentials!.accessToken))
              expect(after).not.toBe(before)
            } else {
              const error = typedFailure(exit)
              expect(error).toBeInstanceOf(AuthError.AuthenticationError)
              const reason = (error as AuthError.AuthenticationError).reason
              expect(fault.reasons, String(error)).toContain(reason)
              if (fault.message !== undefined) expect(error.message).toContain(fault.message)
              if (waitsTooLong(fault) && (idempotent.has(flow) || flow === "device poll")) {
                expect((error as AuthError.AuthenticationError).retryAfterSeconds).toBe(retryAfterOf(fault))
              }
              // a persistent fault on the idempotent call is retried only when transient: here exactly once sent
              expect(hits).toHaveLength(faulted)
              expect(after).toBe(before)
            }
            if (flow === "refresh") {
              expect(before).toBeDefined()
              // never a browser login instead of the refresh
              expect(yield* Ref.get(setup.opened)).toEqual([])
              expect(world.sandbox.stats().tokenRequests.authorization_code).toBe(codeGrantsBefore)
            }
          }))
      }
    })
  }
})

describe("fault proxy: a fault that does not go away", () => {
  const persistent = (name: string, fault: FaultCase, flow: FlowName) =>
    it.scoped(`${flow}: ${name} on every request → typed error after 3 backed-off retries`, () =>
      Effect.gen(function*() {
        yield* syncTestClock
        world.proxy.reset()
        const setup = yield* setupFlow(world, flow, transport)
        world.proxy.inject({ path: pathOf(flow), fault: fault.fault, times: Infinity })
        const { elapsed, exit } = yield* drive(setup.auth.credentials, world.proxy)
        const error = typedFailure(exit) as AuthError.AuthenticationError
        expect(fault.reasons).toContain(error.reason)
        const hits = world.proxy.requests().filter((request) => request.path === pathOf(flow))
        expect(hits).toHaveLength(4)
        expect(hits.every((hit) => hit.fault !== undefined)).toBe(true)
        // 4 attempts, each ended by its timeout, and a backoff of at most (200 + 400 + 800) ms × 1.2 jitter
        expect(elapsed).toBeGreaterThanOrEqual(4 * waitOf(fault))
        expect(elapsed).toBeLessThanOrEqual(4 * waitOf(fault) + 1_680 + 100)
        expect(yield* entryOf(setup.keyring, world)).toBeUndefined()
      }))
  const byName = (name: string) => faultCases.find((fault) => fault.name.startsWith(name))!
  persistent("HTTP 503", byName("HTTP 503 temporarily_unavailable"), "client credentials")
  persistent("no answer", byName("no answer at all"), "client credentials")
  persistent("connection reset", byName("connection reset before"), "device authorization")
})

describe("external command through the Authenticator (real processes)", () => {
  const secretOnStdout = "stdout-secret-3f9a1c"
  const node = (script: string) => [process.execPath, "-e", script]
  const cases: ReadonlyArray<{
    readonly name: string
    readonly command: ReadonlyArray<string>
    readonly reason: AuthError.AuthenticationErrorReason
    readonly message: string
  }> = [
    {
      name: "hangs past its timeout → killed, Timeout",
      command: node("setInterval(() => {}, 1000)"),
      reason: "Timeout",
      message: "did not finish within"
    },
    {
      name: "exits 3 with stderr → CommandFailed with exit code and stderr, never stdout",
      command: node(`process.stdout.write("${secretOnStdout}"); process.stderr.write("boom"); process.exit(3)`),
      reason: "CommandFailed",
      message: "boom"
    },
    {
      name: "prints 10 MB → CommandFailed",
      command: node("process.stdout.write(\"a\".repeat(10 * 1024 * 1024))"),
      reason: "CommandFailed",
      message: "bytes"
    },
    {
      name: "prints a token with CR/LF (header injection) → CommandFailed",
      command: node(`process.stdout.write("${secretOnStdout}\\r\\nx-injected: 1")`),
      reason: "CommandFailed",
      message: "line break"
    },
    {
      name: "prints nothing → CommandFailed",
      command: node(""),
      reason: "CommandFailed",
      message: "printed no token"
    },
    {
      name: "program does not exist → CommandFailed",
      command: ["/nonexistent/flyte-token-helper"],
      reason: "CommandFailed",
      message: "was not found"
    }
  ]
  for (const testCase of cases) {
    it.scopedLive(testCase.name, () =>
      Effect.gen(function*() {
        const keyring = yield* Keyring.makeMemory
        const expired = new Credentials.Credentials({
          accessToken: Redacted.make("expired-command-token"),
          expiresAt: DateTime.unsafeMake(Date.now() - 60_000),
          endpoint: world.endpoint
        })
        const entry = yield* Credentials.encodeKeyringEntry(expired)
        yield* keyring.set(Keyring.serviceName, Credentials.keyringAccount(world.endpoint, undefined), entry)
        const context = yield* Layer.build(
          Flows.layerFromMode("ExternalCommand", {
            endpoint: world.endpoint,
            command: testCase.command,
            commandTimeout: "500 millis"
          }).pipe(Layer.provide(Layer.mergeAll(
            NodeCommandRunner.layer,
            Layer.succeed(Keyring.Keyring, keyring),
            ClientConfig.layerStatic(world.config),
            transport
          )))
        )
        const started = Date.now()
        const exit = yield* Effect.exit(Context.get(context, Authenticator.Authenticator).credentials)
        // the command's timeout (0.5 s) plus the time to kill and reap it
        expect(Date.now() - started).toBeLessThan(5_000)
        const error = typedFailure(exit) as AuthError.AuthenticationError
        expect(error.reason).toBe(testCase.reason)
        expect(error.message).toContain(testCase.message)
        expect(String(error)).not.toContain(secretOnStdout)
        expect(JSON.stringify(error)).not.toContain(secretOnStdout)
        expect(yield* entryOf(keyring, world)).toBe(entry)
      }))
  }
})
