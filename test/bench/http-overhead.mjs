// 2. http-overhead: GET /api/v1/whoami of the sandbox admin (a protected route) on loopback, concurrency 64.
// Two pairs, alternating in the same rounds:
// - `fetch` with a constant `flyte-authorization: Bearer <token>` header vs the facade's `auth.fetch`;
// - an Effect `HttpClient` (NodeTransport, undici) with a constant header (`HttpClient.mapRequest`) vs
//   `AuthHttpClient.make` over the very same transport.
// The `fetch` baseline already is the floor of its transport (the caller passes the header with each request). The
// `HttpClient` one is a `mapRequest` wrapper, so its floor runs in the same rounds too: the plain client with the
// header set on each request; the rows `http-overhead/floor/…` read both HttpClient variants against it.
// Every variant sends a valid token of the same client and reads the whole body.
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Authenticator, AuthHttpClient } from "@flyte-auth/core"
import { AuthLayer, NodeTransport } from "@flyte-auth/node"
import { Effect, ManagedRuntime } from "effect"
import {
  alternate,
  cpuSince,
  medianOf,
  now,
  percentile,
  report,
  rounds,
  runConcurrent,
  scaled,
  startWorld,
  throughputDetails
} from "./lib.mjs"

// 20,000 requests per variant in all, spread over the rounds (plus a warm-up of 1,000 requests each).
const ROUNDS = rounds(5)
const REQUESTS = scaled(Math.ceil(20_000 / ROUNDS))
const WARMUP_REQUESTS = scaled(1_000)
const CONCURRENCY = 64

const { sandbox, options, createClient } = await startWorld()
const auth = await createClient()
const token = await auth.accessToken()
const url = `${sandbox.adminHttp}/api/v1/whoami`
const constant = { [sandbox.headerKey]: `Bearer ${token}` }

const runtime = ManagedRuntime.make(AuthLayer.layer(options))
await runtime.runPromise(Effect.flatMap(Authenticator.Authenticator, (authenticator) => authenticator.accessToken))
const transport = ManagedRuntime.make(NodeTransport.layer({}))
const base = await transport.runPromise(HttpClient.HttpClient)
const plainClient = base.pipe(HttpClient.mapRequest(HttpClientRequest.setHeaders(constant)))
const authClient = await runtime.runPromise(AuthHttpClient.make(base))

const bearer = `Bearer ${token}`

const ok = (status) => {
  if (status !== 200) throw new Error(`HTTP ${status}`)
}

const viaFetch = (send) => (warmup) =>
  runConcurrent(warmup ? WARMUP_REQUESTS : REQUESTS, CONCURRENCY, async () => {
    const response = await send()
    await response.arrayBuffer()
    ok(response.status)
  })

/** The same loop inside one Effect: `REQUESTS` requests, `CONCURRENCY` at a time, each timed. */
const viaHttpClient = (client, perRequest = (request) => request) => (warmup) => {
  const requests = warmup ? WARMUP_REQUESTS : REQUESTS
  const latencies = new Float64Array(requests)
  const one = (index) =>
    Effect.suspend(() => {
      const start = now()
      return client.execute(perRequest(HttpClientRequest.get(url))).pipe(
        Effect.flatMap((response) => Effect.as(response.arrayBuffer, response.status)),
        Effect.map((status) => {
          ok(status)
          latencies[index] = now() - start
        })
      )
    })
  const cpu = process.cpuUsage()
  const start = now()
  return runtime.runPromise(
    Effect.forEach(Array.from({ length: requests }, (_, i) => i), one, { concurrency: CONCURRENCY, discard: true })
  ).then(() => {
    const elapsed = now() - start
    const cpuUs = cpuSince(cpu)
    latencies.sort()
    return {
      value: requests / (elapsed / 1000),
      elapsedMs: elapsed,
      cpuUsPerOp: cpuUs / requests,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99)
    }
  })
}

sandbox.resetStats()
const samples = await alternate({
  name: "http-overhead",
  count: ROUNDS,
  variants: {
    fetch: viaFetch(() => fetch(url, { headers: constant })),
    authFetch: viaFetch(() => auth.fetch(url)),
    httpClientFloor: viaHttpClient(base, (request) => HttpClientRequest.setHeader(request, sandbox.headerKey, bearer)),
    httpClient: viaHttpClient(plainClient),
    authHttpClient: viaHttpClient(authClient)
  }
})
const stats = sandbox.stats()
const tokenRequests = Object.values(stats.tokenRequests).reduce((a, b) => a + b, 0)
if (stats.admin.authFailures !== 0 || tokenRequests !== 0) {
  throw new Error(`expected no rejected request and no token request, saw ${stats.admin.authFailures} / ${tokenRequests}`)
}

const pairs = [
  ["http-overhead/fetch", "fetch", "authFetch", "fetch + constant header", "auth.fetch (facade)"],
  ["http-overhead/HttpClient", "httpClient", "authHttpClient", "HttpClient + constant header", "AuthHttpClient"]
]
for (const [name, baseline, measured, baselineLabel, measuredLabel] of pairs) {
  report({
    name,
    baseline: medianOf(samples[baseline]),
    measured: medianOf(samples[measured]),
    unit: "req/s",
    better: "higher",
    target: 0.97,
    rounds: ROUNDS,
    baselineLabel,
    measuredLabel,
    details: {
      requests: REQUESTS * ROUNDS,
      requestsPerRound: REQUESTS,
      concurrency: CONCURRENCY,
      ...throughputDetails(samples[baseline], samples[measured])
    }
  })
}

const floors = [
  ["httpClientFloor", "HttpClient, header set per request", [
    ["httpClient", "HttpClient + constant header"],
    ["authHttpClient", "AuthHttpClient"]
  ]]
]
for (const [floor, baselineLabel, measuredVariants] of floors) {
  for (const [variant, measuredLabel] of measuredVariants) {
    report({
      name: `http-overhead/floor/${variant}`,
      baseline: medianOf(samples[floor]),
      measured: medianOf(samples[variant]),
      unit: "req/s",
      better: "higher",
      rounds: ROUNDS,
      baselineLabel,
      measuredLabel,
      details: { requests: REQUESTS * ROUNDS, concurrency: CONCURRENCY, ...throughputDetails(samples[floor], samples[variant]) }
    })
  }
}

await auth.close()
await runtime.dispose()
await transport.dispose()
await sandbox.close()
