/**
 * Load: 30 seconds of concurrent gRPC calls through the auth interceptor (`GrpcAuth.interceptor` over the real
 * `Authenticator`, after a device-flow login through the sandbox's scripted user agent) against the sandbox admin's
 * protected `IdentityService/UserInfo`, with 5-second access tokens: several refreshes happen under load, and not
 * a single call may fail.
 */
import { describe, expect, it } from "@effect/vitest"
import { DevicePrompt, Flows, Keyring } from "@flyte-auth/core"
import { FlyteProtos, GrpcAuth, RemoteClientConfigStore } from "@flyte-auth/grpc"
import { NodeTransport } from "@flyte-auth/node"
import { startSandbox, UserAgent } from "@flyte-auth/sandbox"
import type * as grpc from "@grpc/grpc-js"
import { Duration, Effect, Layer } from "effect"

const IdentityService = FlyteProtos.load("flyteidl/service/identity.proto").flyteidl.service.IdentityService

const seconds = 30
const concurrency = 32
const ttl = 5
/** Refresh when less than this is left: 1 s, so a token is used for about 4 of its 5 seconds. */
const skew = Duration.seconds(1)

const sandboxResource = Effect.acquireRelease(
  Effect.promise(() => startSandbox({ tokenTtlSeconds: ttl, devicePollIntervalSeconds: 1 })),
  (sandbox) => Effect.promise(() => sandbox.close())
)

const userInfo = (client: grpc.Client & Record<string, any>) =>
  new Promise<{ subject: string }>((resolve, reject) => {
    client.UserInfo({}, { deadline: Date.now() + 10_000 }, (error: grpc.ServiceError | null, response: any) => {
      if (error !== null) reject(error)
      else resolve(response)
    })
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

describe("load through the gRPC auth interceptor", () => {
  it.scopedLive(
    `${seconds} s of ${concurrency} concurrent UserInfo calls with ${ttl} s tokens: no failure, refreshes ≈ duration / TTL`,
    () =>
      Effect.gen(function*() {
        const sandbox = yield* sandboxResource
        const endpoint = sandbox.adminGrpc
        const auth = Flows.layerFromMode("DeviceFlow", { endpoint, skew, deviceTimeout: Duration.seconds(30) })
          .pipe(
            Layer.provideMerge(RemoteClientConfigStore.layer({ endpoint, insecure: true })),
            Layer.provide([
              Keyring.layerMemory,
              NodeTransport.layer({}),
              DevicePrompt.layerScripted((prompt) =>
                Effect.promise(() => UserAgent.approveDevice(prompt, sandbox.user))
              )
            ])
          )

        yield* Effect.gen(function*() {
          const client = yield* GrpcAuth.makeClient(IdentityService, { endpoint, insecure: true })
          // The login (device flow) happens on the first call; the load starts from a logged-in client.
          expect((yield* Effect.promise(() => userInfo(client))).subject).toBe(sandbox.user.subject)
          sandbox.resetStats()

          const latencies: Array<number> = []
          const failures: Array<string> = []
          const started = Date.now()
          const deadline = started + seconds * 1000
          const worker = async () => {
            while (Date.now() < deadline) {
              const t = performance.now()
              try {
                const response = await userInfo(client)
                if (response.subject !== sandbox.user.subject) failures.push(`wrong subject ${response.subject}`)
                latencies.push(performance.now() - t)
              } catch (error) {
                failures.push(String((error as Error).message))
              }
            }
          }
          yield* Effect.promise(() => Promise.all(Array.from({ length: concurrency }, worker)))
          const elapsed = (Date.now() - started) / 1000

          const stats = sandbox.stats()
          const refreshes = stats.tokenRequests.refresh_token
          const sorted = [...latencies].sort((a, b) => a - b)
          console.log(
            [
              `load: ${latencies.length + failures.length} UserInfo calls in ${elapsed.toFixed(1)} s ` +
              `(${Math.round(latencies.length / elapsed)}/s, concurrency ${concurrency}), ${failures.length} failed`,
              `  latency ms: p50 ${percentile(sorted, 0.5).toFixed(1)}, p99 ${percentile(sorted, 0.99).toFixed(1)}, ` +
              `max ${(sorted.at(-1) ?? 0).toFixed(1)}`,
              `  token requests: refresh_token ${refreshes} (duration / TTL = ${seconds / ttl}; with the 1 s skew ` +
              `≈ ${(seconds / (ttl - 1)).toFixed(1)}), other grants ${
                stats.tokenRequests.device_code + stats.tokenRequests.authorization_code +
                stats.tokenRequests.client_credentials
              }, token errors ${stats.tokenErrors.refresh_token}`,
              `  admin: ${stats.admin.userInfoCalls} UserInfo calls seen, ${stats.admin.authFailures} rejected ` +
              `(each retried once by the interceptor after a refresh)`
            ].join("\n")
          )

          expect(failures).toEqual([])
          expect(latencies.length).toBeGreaterThan(concurrency * seconds)
          // Several refreshes, about one per token lifetime: none missed, no storm.
          expect(refreshes).toBeGreaterThanOrEqual(seconds / ttl - 2)
          expect(refreshes).toBeLessThanOrEqual(seconds / ttl * 2 + 2)
          expect(stats.tokenErrors.refresh_token).toBe(0)
          // Never a second login: every renewal was a refresh.
          expect(stats.tokenRequests.device_code + stats.deviceAuthorizationRequests).toBe(0)
          // Every call the admin saw was ours: the successes plus the rejected first attempts that were retried.
          expect(stats.admin.userInfoCalls).toBe(latencies.length + stats.admin.authFailures)
        }).pipe(Effect.provide(auth))
      }),
    { timeout: 120_000 }
  )
})
