// 1. grpc-overhead: unary IdentityService/UserInfo calls to the sandbox admin on loopback, concurrency 64.
// Baseline: a hand-written grpc-js interceptor adding a constant `flyte-authorization: Bearer <token>` header.
// Measured: the flyte-auth interceptor holding a cached valid token, both the Effect one (`GrpcAuth.interceptor`
// on the runtime of `AuthLayer.layer`) and the Promise facade's (`authInterceptor(createAuthClient(...))`).
// The floor, measured in the same rounds: no interceptor, the caller passes the header with each call; the rows
// `grpc-overhead/floor…` read each interceptor (the constant-header one included) against it.
// Every variant sends a valid token of the same client, so the server does the same work for each.
import { alternate, medianOf, report, rounds, runConcurrent, scaled, startGrpcWorld, throughputDetails } from "./lib.mjs"

// 20,000 calls per variant in all, spread over the rounds (plus a warm-up of 1,000 calls each).
const ROUNDS = rounds(5)
const CALLS = scaled(Math.ceil(20_000 / ROUNDS))
const WARMUP_CALLS = scaled(1_000)
const CONCURRENCY = 64

const { sandbox, clients, userInfo, close } = await startGrpcWorld()

sandbox.resetStats()
const samples = await alternate({
  name: "grpc-overhead",
  count: ROUNDS,
  variants: Object.fromEntries(
    Object.entries(clients).map(([name, client]) => [
      name,
      (warmup) => runConcurrent(warmup ? WARMUP_CALLS : CALLS, CONCURRENCY, userInfo(client))
    ])
  )
})
const stats = sandbox.stats()
const tokenRequests = Object.values(stats.tokenRequests).reduce((a, b) => a + b, 0)
if (stats.admin.authFailures !== 0 || tokenRequests !== 0) {
  throw new Error(`expected no rejected call and no token request, saw ${stats.admin.authFailures} / ${tokenRequests}`)
}

for (const [variant, label] of [["interceptor", "GrpcAuth.interceptor"], ["facade", "authInterceptor(facade)"]]) {
  report({
    name: variant === "interceptor" ? "grpc-overhead" : "grpc-overhead/facade",
    baseline: medianOf(samples.baseline),
    measured: medianOf(samples[variant]),
    unit: "calls/s",
    better: "higher",
    target: 0.97,
    rounds: ROUNDS,
    baselineLabel: "constant-header interceptor",
    measuredLabel: label,
    details: {
      calls: CALLS * ROUNDS,
      callsPerRound: CALLS,
      concurrency: CONCURRENCY,
      ...throughputDetails(samples.baseline, samples[variant])
    }
  })
}

for (const [variant, label] of [
  ["baseline", "constant-header interceptor"],
  ["interceptor", "GrpcAuth.interceptor"],
  ["facade", "authInterceptor(facade)"]
]) {
  report({
    name: `grpc-overhead/floor/${variant === "baseline" ? "constant" : variant}`,
    baseline: medianOf(samples.floor),
    measured: medianOf(samples[variant]),
    unit: "calls/s",
    better: "higher",
    rounds: ROUNDS,
    baselineLabel: "no interceptor, header passed per call",
    measuredLabel: label,
    details: { calls: CALLS * ROUNDS, concurrency: CONCURRENCY, ...throughputDetails(samples.floor, samples[variant]) }
  })
}

await close()
