// Shared helpers of the benchmarks: alternating rounds, statistics, the sandbox set-up, and reporting a result to
// the runner (run.mjs), which reads one JSON object per line from the file named by FLYTE_AUTH_BENCH_OUT.
import { Authenticator } from "@flyte-auth/core"
import { authInterceptor, FlyteProtos, GrpcAuth } from "@flyte-auth/grpc"
import { AuthLayer, createAuthClient } from "@flyte-auth/node"
import { credentials, InterceptingCall, Metadata } from "@grpc/grpc-js"
import { Effect, ManagedRuntime } from "effect"
import { startSandbox } from "@flyte-auth/sandbox"
import { appendFileSync } from "node:fs"
import { performance } from "node:perf_hooks"

export const now = () => performance.now()

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** The p-th percentile (0..100) of `sorted` (ascending), nearest rank. */
export const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p / 100) - 1))]

/** A number for the table: 3 significant digits, no exponent for the magnitudes we print. */
export const round3 = (value) => Number.isFinite(value) ? Number(value.toPrecision(3)) : value

/** How many rounds: `FLYTE_AUTH_BENCH_ROUNDS` overrides every benchmark's default (e.g. 1 for a smoke run). */
export const rounds = (fallback) => {
  const given = Number(process.env.FLYTE_AUTH_BENCH_ROUNDS)
  return Number.isInteger(given) && given > 0 ? given : fallback
}

/** Scales an iteration count down for a smoke run (`FLYTE_AUTH_BENCH_SCALE=0.1`); 1 by default. */
export const scaled = (count) => {
  const scale = Number(process.env.FLYTE_AUTH_BENCH_SCALE)
  return Number.isFinite(scale) && scale > 0 && scale < 1 ? Math.max(1, Math.round(count * scale)) : count
}

export const log = (message) => process.stderr.write(`  ${message}\n`)

/**
 * Runs the variants (e.g. `{ baseline, measured }`) alternately: one unmeasured warm-up each, then `count` rounds,
 * the order rotated every round (AB, BA, ... for two) so that drift of the machine hits every variant alike.
 * Each function is called with `true` for its warm-up (it may do less then) and answers `{ value, ...extra }`; the
 * answer lists the samples of each variant.
 */
export const alternate = async ({ name, count, variants, warmup = true }) => {
  const names = Object.keys(variants)
  if (warmup) for (const variant of names) await variants[variant](true)
  const samples = Object.fromEntries(names.map((variant) => [variant, []]))
  for (let round = 0; round < count; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length])
    for (const variant of order) {
      const sample = await variants[variant](false)
      samples[variant].push(sample)
      log(`${name} round ${round + 1}/${count} ${variant}: ${round3(sample.value)}`)
    }
  }
  return samples
}

/** The median of one field over samples. */
export const medianOf = (samples, field = "value") => median(samples.map((sample) => sample[field]))

/**
 * Reports one benchmark row. `ratio` is measured / baseline; `better` says which direction is good ("higher" for
 * throughput, "lower" for times), `target` the ratio it should reach (≥ for higher, ≤ for lower) or a text for a
 * target that is not a ratio, `met` whether it was reached (computed for a ratio target unless given; a throughput
 * target needs `details.cpuRatio` to reach it as well, when there is one).
 */
export const report = (row) => {
  const ratio = row.ratio ?? row.measured / row.baseline
  // A throughput target counts as met only when the CPU-time ratio reaches it too: on a machine shared with other
  // work the wall-clock ratio of a few seconds' rounds can swing either way, the CPU time per operation much less.
  const cpuRatio = row.details?.cpuRatio
  const met = row.met ?? (typeof row.target !== "number"
    ? undefined
    : row.better === "higher"
    ? ratio >= row.target && (cpuRatio === undefined || cpuRatio >= row.target)
    : ratio <= row.target)
  const result = {
    name: row.name,
    baseline: round3(row.baseline),
    measured: round3(row.measured),
    ratio: round3(ratio),
    unit: row.unit,
    rounds: row.rounds,
    better: row.better,
    target: typeof row.target === "number" ? `${row.better === "higher" ? ">=" : "<="} ${row.target}` : row.target,
    met,
    baselineLabel: row.baselineLabel,
    measuredLabel: row.measuredLabel,
    details: row.details
  }
  const out = process.env.FLYTE_AUTH_BENCH_OUT
  if (out !== undefined) appendFileSync(out, `${JSON.stringify(result)}\n`)
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}

/** No Flyte config file or FLYTE_* variable of the machine may leak into a benchmark. */
export const emptyEnv = {}

/** A sandbox plus a client-credentials facade with a valid token (one token request). */
export const startWorld = async (sandboxOptions = {}) => {
  const sandbox = await startSandbox(sandboxOptions)
  const options = {
    endpoint: sandbox.adminGrpc,
    insecure: true,
    authMode: "ClientSecret",
    clientId: sandbox.clients.confidential.clientId,
    clientSecret: sandbox.clients.confidential.clientSecret,
    keyring: "memory",
    env: emptyEnv
  }
  return { sandbox, options, createClient: (extra = {}) => createAuthClient({ ...options, ...extra }) }
}

/**
 * The gRPC benchmarks' world: `startWorld`, an Effect runtime of `AuthLayer.layer` and a facade, both holding a
 * valid token, and four IdentityService clients — `floor` (no interceptor, the header passed with each call),
 * `baseline` (a hand-written interceptor adding a constant header, what anyone would write), `interceptor`
 * (`GrpcAuth.interceptor`) and `facade` (`authInterceptor`).
 */
export const startGrpcWorld = async (sandboxOptions = {}) => {
  const { sandbox, options, createClient } = await startWorld(sandboxOptions)
  const auth = await createClient()
  const runtime = ManagedRuntime.make(AuthLayer.layer(options))
  const effectInterceptor = await runtime.runPromise(GrpcAuth.interceptor)
  // Both clients hold a valid token before anything is measured.
  await runtime.runPromise(Effect.flatMap(Authenticator.Authenticator, (authenticator) => authenticator.accessToken))
  const token = await auth.accessToken()
  const constantHeader = (key, value) => (callOptions, nextCall) =>
    new InterceptingCall(nextCall(callOptions), {
      start(metadata, listener, next) {
        metadata.set(key, value)
        next(metadata, listener)
      }
    })
  const IdentityService = FlyteProtos.service("flyteidl/service/identity.proto", "flyteidl.service.IdentityService")
  const clientWith = (interceptor) =>
    new IdentityService(sandbox.adminGrpc, credentials.createInsecure(), { interceptors: [interceptor] })
  const clients = {
    floor: new IdentityService(sandbox.adminGrpc, credentials.createInsecure()),
    baseline: clientWith(constantHeader(sandbox.headerKey, `Bearer ${token}`)),
    interceptor: clientWith(effectInterceptor),
    facade: clientWith(authInterceptor(auth))
  }
  // The floor: no interceptor at all, the caller passes the header with each call (the least a call can cost).
  const floorMetadata = new Metadata()
  floorMetadata.set(sandbox.headerKey, `Bearer ${token}`)
  const userInfo = (client) =>
    client === clients.floor
      ? () =>
        new Promise((resolve, reject) =>
          client.UserInfo({}, floorMetadata.clone(), (error, response) => error ? reject(error) : resolve(response))
        )
      : () =>
        new Promise((resolve, reject) => client.UserInfo({}, (error, response) => error ? reject(error) : resolve(response)))
  const close = async () => {
    for (const client of Object.values(clients)) client.close()
    await auth.close()
    await runtime.dispose()
    await sandbox.close()
  }
  return { sandbox, clients, userInfo, close }
}

/** CPU time (user + system, µs) this process spent since `since` (a `process.cpuUsage()`). */
export const cpuSince = (since) => {
  const used = process.cpuUsage(since)
  return used.user + used.system
}

/**
 * Runs `total` operations with at most `concurrency` in flight; answers the throughput (ops/s), the latency
 * percentiles (ms) and the CPU time of this process per operation (µs) of this run. `op` answers a promise.
 */
export const runConcurrent = async (total, concurrency, op) => {
  const latencies = new Float64Array(total)
  let next = 0
  let failures = 0
  let firstError
  const worker = async () => {
    while (next < total) {
      const index = next++
      const start = now()
      try {
        await op(index)
      } catch (error) {
        failures++
        firstError ??= error
      }
      latencies[index] = now() - start
    }
  }
  const cpu = process.cpuUsage()
  const start = now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = now() - start
  const cpuUs = cpuSince(cpu)
  if (failures > 0) {
    throw new Error(`${failures}/${total} operations failed; the first: ${firstError?.message ?? firstError}`)
  }
  latencies.sort()
  return {
    value: total / (elapsed / 1000),
    elapsedMs: elapsed,
    cpuUsPerOp: cpuUs / total,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99)
  }
}

/**
 * The details of a throughput comparison: latency percentiles and CPU per operation of both sides (medians over
 * the rounds), and `cpuRatio` = baseline CPU / measured CPU per operation, the throughput ratio the CPU cost alone
 * predicts (less sensitive to other load on the machine than the wall-clock throughput).
 */
export const throughputDetails = (baseline, measured) => {
  const cpu = { baseline: medianOf(baseline, "cpuUsPerOp"), measured: medianOf(measured, "cpuUsPerOp") }
  return {
    p50Ms: { baseline: round3(medianOf(baseline, "p50")), measured: round3(medianOf(measured, "p50")) },
    p99Ms: { baseline: round3(medianOf(baseline, "p99")), measured: round3(medianOf(measured, "p99")) },
    cpuUsPerOp: { baseline: round3(cpu.baseline), measured: round3(cpu.measured) },
    addedCpuUsPerOp: round3(cpu.measured - cpu.baseline),
    cpuRatio: round3(cpu.baseline / cpu.measured)
  }
}
