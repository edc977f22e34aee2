// 4. cache-hit: `accessToken()` on a valid cached token, ns per call, side by side with google-auth-library's
// `OAuth2Client.getAccessToken()` holding a valid cached credential. flyte-auth through:
// - the Promise facade (`await auth.accessToken()`, its fast path),
// - the Effect API inside one Effect (`yield* authenticator.accessToken` in a loop),
// - the Effect API from Promise code (`await runtime.runPromise(authenticator.accessToken)` per call).
// 1,000,000 calls per variant in all, spread over the rounds (plus a warm-up of one round's calls each).
import { Authenticator } from "@flyte-auth/core"
import { AuthLayer } from "@flyte-auth/node"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { OAuth2Client } from "google-auth-library"
import { alternate, medianOf, now, report, rounds, scaled, startWorld } from "./lib.mjs"

// More rounds than elsewhere: one round of the fast variants is a fraction of a second, easily disturbed.
const ROUNDS = rounds(9)
const CALLS = scaled(Math.ceil(1_000_000 / ROUNDS))

const { sandbox, options, createClient } = await startWorld()
const auth = await createClient()
const token = await auth.accessToken()
const runtime = ManagedRuntime.make(AuthLayer.layer(options))
const authenticator = await runtime.runPromise(Authenticator.Authenticator)
const effectToken = Redacted.value(await runtime.runPromise(authenticator.accessToken))

const google = new OAuth2Client()
google.setCredentials({ access_token: token, expiry_date: Date.now() + 365 * 24 * 3600 * 1000 })

/** ns per call of `CALLS` awaited calls; checks the answer of the last one. */
const timed = async (label, expected, loop) => {
  const start = now()
  const last = await loop()
  const elapsed = now() - start
  if (last !== expected) throw new Error(`${label} answered something else than its cached token`)
  return { value: (elapsed * 1e6) / CALLS }
}

const variants = {
  google: () =>
    timed("google-auth-library", token, async () => {
      let answer
      for (let i = 0; i < CALLS; i++) answer = await google.getAccessToken()
      return answer.token
    }),
  facade: () =>
    timed("facade", token, async () => {
      let answer
      for (let i = 0; i < CALLS; i++) answer = await auth.accessToken()
      return answer
    }),
  effectLoop: () =>
    timed("Effect loop", effectToken, () =>
      runtime.runPromise(Effect.gen(function*() {
        let answer
        for (let i = 0; i < CALLS; i++) answer = yield* authenticator.accessToken
        return Redacted.value(answer)
      }))),
  runPromise: () =>
    timed("runPromise", effectToken, async () => {
      let answer
      for (let i = 0; i < CALLS; i++) answer = await runtime.runPromise(authenticator.accessToken)
      return Redacted.value(answer)
    })
}

sandbox.resetStats()
const samples = await alternate({ name: "cache-hit", count: ROUNDS, variants })
const tokenRequests = Object.values(sandbox.stats().tokenRequests).reduce((a, b) => a + b, 0)
if (tokenRequests !== 0) throw new Error(`expected every call to be answered from the cache, saw ${tokenRequests} token requests`)

const rows = [
  ["cache-hit/facade", "facade", "await auth.accessToken() (facade)"],
  ["cache-hit/effect", "effectLoop", "yield* Authenticator.accessToken (in one Effect)"],
  ["cache-hit/runPromise", "runPromise", "await runtime.runPromise(Authenticator.accessToken)"]
]
for (const [name, variant, measuredLabel] of rows) {
  report({
    name,
    baseline: medianOf(samples.google),
    measured: medianOf(samples[variant]),
    unit: "ns/call",
    better: "lower",
    target: 1,
    rounds: ROUNDS,
    baselineLabel: "google-auth-library OAuth2Client.getAccessToken()",
    measuredLabel,
    details: { calls: CALLS * ROUNDS, callsPerRound: CALLS }
  })
}

await auth.close()
await runtime.dispose()
await sandbox.close()
