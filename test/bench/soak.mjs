// 6. soak: an Authenticator whose token lives 4 seconds, refreshed on a hand-advanced clock (it jumps 4 s before
// each `accessToken`, so every call refreshes: refresh-token grant, the refresh token rotating every time).
// Not `TestClock`: its `adjust` polls until every fiber is suspended (a timer tick or more per call), which would
// make 10,000 cycles take minutes; this clock is as deterministic and costs nothing.
//
// Two phases, each in a fresh Authenticator:
// - memory: 10,000 cycles against an in-memory token endpoint (`HttpClient.make`): the heap (after full GCs,
//   `--expose-gc`) after a warm-up and every 2,000 cycles. Target: growth < 1 MB.
// - loopback: 600 cycles over the real Node transport (undici) to a token endpoint on 127.0.0.1 that keeps
//   nothing per request: the same heap check, and the active handles (`process.getActiveResourcesInfo()`) during
//   the run (no socket or timer piling up) and after everything is closed (none left).
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Authenticator, ClientConfig, ClientCredentials, Keyring } from "@flyte-auth/core"
import { NodeTransport } from "@flyte-auth/node"
import { Clock, Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as http from "node:http"
import { log, report, scaled } from "./lib.mjs"

const TTL_SECONDS = 4
const MB = 1048576
const ENDPOINT = "soak.example.com:443"

if (typeof global.gc !== "function") throw new Error("run with --expose-gc (pnpm bench does)")

const count = (resources) => {
  const counts = {}
  for (const name of resources) counts[name] = (counts[name] ?? 0) + 1
  return counts
}
/** The handles `after` holds more of than `before` (one closed meanwhile, e.g. a file of the start-up, is no leak). */
const gained = (before, after) => {
  const changes = {}
  for (const name of Object.keys(after)) {
    const delta = after[name] - (before[name] ?? 0)
    if (delta > 0) changes[name] = delta
  }
  return changes
}
/** Bytes per cycle: the least-squares slope of the heap samples. */
const slope = (samples) => {
  const n = samples.length
  const mx = samples.reduce((a, s) => a + s.cycles, 0) / n
  const my = samples.reduce((a, s) => a + s.heapBytes, 0) / n
  const sxy = samples.reduce((a, s) => a + (s.cycles - mx) * (s.heapBytes - my), 0)
  const sxx = samples.reduce((a, s) => a + (s.cycles - mx) ** 2, 0)
  return sxx === 0 ? 0 : sxy / sxx
}
const activeResources = () => count(process.getActiveResourcesInfo())
const settle = () => new Promise((resolve) => setTimeout(resolve, 10))
const heapAfterGc = async () => {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await settle()
  }
  return process.memoryUsage().heapUsed
}

/** The token endpoint's logic, shared by both phases: counts what it issued and wrong refresh tokens. */
const makeIssuer = () => {
  const issuer = { issued: 0, wrongRefreshTokens: 0 }
  issuer.answer = (form) => {
    if (form.get("grant_type") === "refresh_token" && form.get("refresh_token") !== `rt-${issuer.issued}`) {
      issuer.wrongRefreshTokens++
    }
    issuer.issued++
    return JSON.stringify({
      access_token: `at-${issuer.issued}`,
      token_type: "Bearer",
      expires_in: TTL_SECONDS,
      refresh_token: `rt-${issuer.issued}`
    })
  }
  return issuer
}

const formOf = (body) => {
  const text = body._tag === "Uint8Array"
    ? new TextDecoder().decode(body.body)
    : body._tag === "Raw"
    ? String(body.body)
    : ""
  return new URLSearchParams(text)
}

/** The real clock plus `offset` ms; sleeping is real. */
const makeClock = () => {
  const real = Clock.make()
  let offset = 0
  const clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => real.unsafeCurrentTimeMillis() + offset,
    unsafeCurrentTimeNanos: () => real.unsafeCurrentTimeNanos() + BigInt(offset) * 1_000_000n,
    currentTimeMillis: Effect.sync(() => real.unsafeCurrentTimeMillis() + offset),
    currentTimeNanos: Effect.sync(() => real.unsafeCurrentTimeNanos() + BigInt(offset) * 1_000_000n),
    sleep: (duration) => real.sleep(duration)
  }
  const advance = (seconds) =>
    Effect.sync(() => {
      offset += seconds * 1000
    })
  return { clock, advance }
}

/**
 * Runs `cycles` refresh cycles (after `warmup` ones) with an Authenticator over `transport`; answers the heap
 * samples and the handles gained between the start and the end of the measured cycles.
 */
const soak = async ({ name, cycles, warmup, transport, tokenEndpoint, issuer }) => {
  const config = new ClientConfig.ClientConfig({ tokenEndpoint, clientId: "soak", scopes: ["all"] })
  const clientSecret = Redacted.make("soak-secret")
  const layer = Authenticator.layer({
    endpoint: ENDPOINT,
    interactive: false,
    clientId: "soak",
    clientSecret,
    login: ClientCredentials.authenticate({ endpoint: ENDPOINT, config, clientId: "soak", clientSecret })
  }).pipe(Layer.provide(Layer.mergeAll(Keyring.layerMemory, ClientConfig.layerStatic(config), transport)))
  const runtime = ManagedRuntime.make(layer)
  const { advance, clock } = makeClock()
  const sampleEvery = Math.max(1, Math.floor(cycles / 5))
  const samples = []
  let staleTokens = 0
  let handlesStart
  let handlesEnd

  const program = Effect.gen(function*() {
    const auth = yield* Authenticator.Authenticator
    const cycle = Effect.gen(function*() {
      yield* advance(TTL_SECONDS)
      const token = Redacted.value(yield* auth.accessToken)
      if (token !== `at-${issuer.issued}`) staleTokens++
    })
    for (let i = 0; i < warmup; i++) yield* cycle
    samples.push({ cycles: 0, heapBytes: yield* Effect.promise(heapAfterGc) })
    handlesStart = activeResources()
    for (let i = 1; i <= cycles; i++) {
      yield* cycle
      if (i % sampleEvery === 0 || i === cycles) {
        const heapBytes = yield* Effect.promise(heapAfterGc)
        samples.push({ cycles: i, heapBytes })
        log(`soak/${name}: heap after ${i} cycles: ${(heapBytes / MB).toFixed(2)} MB`)
      }
    }
    handlesEnd = activeResources()
  }).pipe(Effect.withClock(clock))

  const issuedBefore = issuer.issued
  const started = performance.now()
  await runtime.runPromise(program)
  const elapsed = performance.now() - started
  await runtime.dispose()
  return {
    samples,
    staleTokens,
    requests: issuer.issued - issuedBefore,
    msPerCycle: elapsed / (cycles + warmup),
    handlesGainedDuringRun: gained(handlesStart, handlesEnd)
  }
}

const rowFor = (name, cycles, warmup, result, extra) => {
  const before = result.samples[0].heapBytes
  const after = result.samples[result.samples.length - 1].heapBytes
  const growth = after - before
  const handlesOk = Object.keys(result.handlesGainedDuringRun).length === 0 &&
    Object.keys(extra.handlesLeftAfterClose ?? {}).length === 0
  const correct = result.staleTokens === 0 && extra.wrongRefreshTokens === 0 && result.requests === cycles + warmup
  report({
    name,
    baseline: before / MB,
    measured: after / MB,
    unit: "MB heap",
    better: "lower",
    rounds: 1,
    target: "growth < 1 MB, no handle left",
    met: growth < MB && handlesOk && correct,
    baselineLabel: `heap after ${warmup} warm-up refresh cycles`,
    measuredLabel: `heap after ${cycles} more refresh cycles`,
    details: {
      cycles,
      tokenRequests: result.requests,
      heapGrowthKB: Math.round(growth / 1024),
      heapSlopeBytesPerCycle: Math.round(slope(result.samples)),
      heapMB: result.samples.map((s) => ({ cycles: s.cycles, MB: Number((s.heapBytes / MB).toFixed(3)) })),
      msPerCycle: Number(result.msPerCycle.toFixed(3)),
      handlesGainedDuringRun: result.handlesGainedDuringRun,
      ...extra,
      staleTokensHandedOut: result.staleTokens
    }
  })
  return correct
}

const initialResources = activeResources()

// --- phase 1: in-memory token endpoint ---------------------------------------------------------------------------

{
  const cycles = scaled(10_000)
  // The first few thousand cycles grow the heap by ~1.5 MB once (optimised code, caches), flat afterwards (seen
  // over 40,000 cycles): the "before" sample is taken after them.
  const warmup = scaled(2_500)
  const issuer = makeIssuer()
  const tokenEndpoint = "https://idp.soak.example.com/token"
  const client = HttpClient.make((request) =>
    Effect.sync(() => {
      if (request.url !== tokenEndpoint) return HttpClientResponse.fromWeb(request, new Response(null, { status: 404 }))
      return HttpClientResponse.fromWeb(
        request,
        new Response(issuer.answer(formOf(request.body)), { headers: { "content-type": "application/json" } })
      )
    })
  )
  const result = await soak({
    name: "memory",
    cycles,
    warmup,
    transport: Layer.succeed(HttpClient.HttpClient, client),
    tokenEndpoint,
    issuer
  })
  if (!rowFor("soak", cycles, warmup, result, { wrongRefreshTokens: issuer.wrongRefreshTokens })) process.exitCode = 1
}

// --- phase 2: the real transport to a loopback token endpoint ----------------------------------------------------

{
  const cycles = scaled(600)
  const warmup = scaled(300)
  const issuer = makeIssuer()
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on("data", (chunk) => chunks.push(chunk))
    req.on("end", () => {
      const body = issuer.answer(new URLSearchParams(Buffer.concat(chunks).toString("utf8")))
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
      res.end(body)
    })
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  const result = await soak({
    name: "loopback",
    cycles,
    warmup,
    transport: NodeTransport.layer({}),
    tokenEndpoint: `http://127.0.0.1:${server.address().port}/token`,
    issuer
  })
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await settle()
  const handlesLeftAfterClose = gained(initialResources, activeResources())
  const ok = rowFor("soak/loopback", cycles, warmup, result, {
    wrongRefreshTokens: issuer.wrongRefreshTokens,
    handlesLeftAfterClose
  })
  if (!ok) process.exitCode = 1
}
