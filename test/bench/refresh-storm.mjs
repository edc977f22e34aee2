// 3. refresh-storm: 1,000 concurrent IdentityService/UserInfo calls made right after the admin starts rejecting
// the token the client holds (`sandbox.rejectTokensIssuedBefore()`): every call is rejected with UNAUTHENTICATED,
// the interceptor must obtain exactly one new token for all of them (counted at the IdP's token endpoint) and
// every call must succeed on its retry. Time to recover = until the last of the 1,000 calls succeeded.
// Baseline: the same 1,000 concurrent calls with a valid token and a constant-header interceptor (no storm).
// Measured: the Effect interceptor (`GrpcAuth.interceptor`) and the facade's (`authInterceptor`).
import { alternate, median, medianOf, report, rounds, runConcurrent, scaled, startGrpcWorld } from "./lib.mjs"

const CALLS = scaled(1_000)
const ROUNDS = rounds(5)

const { sandbox, clients, userInfo, close } = await startGrpcWorld()

/** Warm-up of every client (connection, JIT) without a storm. */
for (const client of Object.values(clients)) await runConcurrent(CALLS, CALLS, userInfo(client))

const totalTokenRequests = () => Object.values(sandbox.stats().tokenRequests).reduce((a, b) => a + b, 0)

const calm = (client) => async () => {
  sandbox.acceptAllTokens()
  return runConcurrent(CALLS, CALLS, userInfo(client))
}

const storm = (client) => async () => {
  // The baseline's token is older than the cut-off too: it is accepted again after the storm.
  sandbox.rejectTokensIssuedBefore()
  sandbox.resetStats()
  let result
  try {
    result = await runConcurrent(CALLS, CALLS, userInfo(client))
  } finally {
    sandbox.acceptAllTokens()
  }
  const stats = sandbox.stats()
  return {
    ...result,
    value: result.elapsedMs,
    tokenRequests: totalTokenRequests(),
    rejected: stats.admin.authFailures,
    succeeded: CALLS
  }
}

const samples = await alternate({
  name: "refresh-storm",
  count: ROUNDS,
  warmup: false,
  variants: {
    baseline: async () => {
      const result = await calm(clients.baseline)()
      return { ...result, value: result.elapsedMs }
    },
    interceptor: storm(clients.interceptor),
    facade: storm(clients.facade)
  }
})

for (const [variant, label] of [["interceptor", "GrpcAuth.interceptor"], ["facade", "authInterceptor(facade)"]]) {
  const tokenRequests = samples[variant].map((sample) => sample.tokenRequests)
  report({
    name: variant === "interceptor" ? "refresh-storm" : "refresh-storm/facade",
    baseline: medianOf(samples.baseline),
    measured: medianOf(samples[variant]),
    unit: `ms for ${CALLS.toLocaleString("en-US")} calls`,
    better: "lower",
    rounds: ROUNDS,
    // The targets: exactly one token request in every round, and every call succeeded (runConcurrent throws
    // on any failure). The time has no target of its own.
    met: tokenRequests.every((count) => count === 1),
    target: "1 token request, 0 failed",
    baselineLabel: `${CALLS.toLocaleString("en-US")} calls, valid token, constant header`,
    measuredLabel: `${CALLS.toLocaleString("en-US")} calls right after the token was cut off, ${label}`,
    details: {
      calls: CALLS,
      tokenRequestsPerRound: tokenRequests,
      rejectedCallsPerRound: samples[variant].map((sample) => sample.rejected),
      succeededPerRound: samples[variant].map((sample) => sample.succeeded),
      p50Ms: { baseline: medianOf(samples.baseline, "p50"), measured: medianOf(samples[variant], "p50") },
      p99Ms: { baseline: medianOf(samples.baseline, "p99"), measured: medianOf(samples[variant], "p99") },
      recoverMsPerRound: samples[variant].map((sample) => Math.round(sample.value)),
      medianRecoverMs: median(samples[variant].map((sample) => sample.value))
    }
  })
}

await close()
