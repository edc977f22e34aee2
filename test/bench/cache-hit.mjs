// 4. cache-hit: `accessToken()` on a valid cached token, ns per call, side by side with google-auth-library's
// `OAuth2Client.getAccessToken()` holding a valid cached credential. flyte-auth through:
// - the Promise facade (`await auth.accessToken()`, its fast path),
// - the Effect API inside one Effect (`yield* authenticator.accessToken` in a loop),
// - the Effect API from Promise code (`await runtime.runPromise(authenticator.accessToken)` per call).
// Beside google-auth-library, a second library's hit: @azure/msal-node's `acquireTokenByClientCredential` on a token
// cache deserialized offline (authority and cloud discovery metadata given, so it opens no socket: checked), at a
// fiftieth of the calls, it being that much slower.
// 1,000,000 calls per variant in all, spread over the rounds (plus a warm-up of one round's calls each).
import { Authenticator } from "@flyte-auth/core"
import { AuthLayer } from "@flyte-auth/node"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { ConfidentialClientApplication } from "@azure/msal-node"
import { OAuth2Client } from "google-auth-library"
import net from "node:net"
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

// msal-node, offline: its authority's metadata given as strings, its cache holding a valid client-credentials token.
const msalHost = "login.microsoftonline.com"
const msalTenant = "00000000-0000-0000-0000-000000000001"
const msalClientId = "11111111-1111-1111-1111-111111111111"
const msalAuthority = `https://${msalHost}/${msalTenant}`
const msalScope = "api://flyte/.default"
const msal = new ConfidentialClientApplication({
  auth: {
    clientId: msalClientId,
    authority: msalAuthority,
    clientSecret: "unused",
    knownAuthorities: [msalHost],
    authorityMetadata: JSON.stringify({
      token_endpoint: `${msalAuthority}/oauth2/v2.0/token`,
      authorization_endpoint: `${msalAuthority}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${msalAuthority}/oauth2/v2.0/logout`,
      issuer: `${msalAuthority}/v2.0`,
      jwks_uri: `${msalAuthority}/discovery/v2.0/keys`
    }),
    cloudDiscoveryMetadata: JSON.stringify({
      tenant_discovery_endpoint: `${msalAuthority}/v2.0/.well-known/openid-configuration`,
      "api-version": "1.1",
      metadata: [{ preferred_network: msalHost, preferred_cache: msalHost, aliases: [msalHost] }]
    })
  }
})
const seconds = Math.floor(Date.now() / 1000)
msal.getTokenCache().deserialize(JSON.stringify({
  Account: {},
  IdToken: {},
  RefreshToken: {},
  AppMetadata: {},
  AccessToken: {
    [`-${msalHost}-accesstoken-${msalClientId}-${msalTenant}-${msalScope}--`]: {
      home_account_id: "",
      environment: msalHost,
      credential_type: "AccessToken",
      client_id: msalClientId,
      secret: token,
      realm: msalTenant,
      target: msalScope,
      token_type: "Bearer",
      cached_at: String(seconds),
      expires_on: String(seconds + 365 * 24 * 3600),
      extended_expires_on: String(seconds + 365 * 24 * 3600)
    }
  }
}))
// Any socket msal-node opened would be counted (the sandbox is not called during the rounds: its clients hold tokens).
let sockets = 0
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function(...args) {
  sockets++
  return connect.apply(this, args)
}
const MSAL_CALLS = Math.max(1, Math.round(CALLS / 50))

/** ns per call of `calls` awaited calls; checks the answer of the last one. */
const timed = async (label, expected, loop, calls = CALLS) => {
  const start = now()
  const last = await loop()
  const elapsed = now() - start
  if (last !== expected) throw new Error(`${label} answered something else than its cached token`)
  return { value: (elapsed * 1e6) / calls }
}

const variants = {
  google: () =>
    timed("google-auth-library", token, async () => {
      let answer
      for (let i = 0; i < CALLS; i++) answer = await google.getAccessToken()
      return answer.token
    }),
  msal: () =>
    timed("msal-node", token, async () => {
      let answer
      for (let i = 0; i < MSAL_CALLS; i++) answer = await msal.acquireTokenByClientCredential({ scopes: [msalScope] })
      if (!answer.fromCache) throw new Error("msal-node did not answer from its cache")
      return answer.accessToken
    }, MSAL_CALLS),
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
if (sockets !== 0) throw new Error(`expected no socket during the rounds, saw ${sockets}`)
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

report({
  name: "cache-hit/msal-node",
  baseline: medianOf(samples.google),
  measured: medianOf(samples.msal),
  unit: "ns/call",
  better: "lower",
  rounds: ROUNDS,
  baselineLabel: "google-auth-library OAuth2Client.getAccessToken()",
  measuredLabel: "msal-node acquireTokenByClientCredential (cache hit, offline)",
  details: { calls: MSAL_CALLS * ROUNDS, callsPerRound: MSAL_CALLS, sockets }
})

await auth.close()
await runtime.dispose()
await sandbox.close()
