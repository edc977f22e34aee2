// 7. cold-start: the first token of a fresh process. Each sample is a new `node` process that imports the published
// entry of a package, gets a token that needs no network, and reports `performance.now()` at that point (the time
// since its process started, before exit); the baselines are fresh processes doing the same with
// google-auth-library. Variants alternate within each row.
//
// - cold-start/facade: `createAuthClient` of `@flyte-auth/node/client` (the facade's bundle, the entry for programs
//   without Effect) with a valid token stored in the file keyring, `accessToken()`, `close()`; baseline:
//   google-auth-library's `OAuth2Client` given the same token read from the same kind of JSON file,
//   `getAccessToken()`. Target ≤ 2.
// - cold-start/facade-barrel: the same through `createAuthClient` of `@flyte-auth/node` (the unbundled Effect API
//   with it). No target.
// - cold-start/effect: `AuthLayer.layer` + `Authenticator.accessToken` through `Effect.runPromise`, same stored
//   token and baseline. Target ≤ 3.
// - cold-start/effect-floor: the same AuthLayer program against a fresh process that imports `effect/Effect`,
//   `effect/Layer` and `effect/Schema` and runs one decode: what any Effect program using Schema pays before
//   flyte-auth's own code (`effect/Schema` alone brings fast-check). No target: it says what flyte-auth adds.
// - cold-start/import-core, -node, -grpc: `await import()` of the package entry alone, against
//   `await import("google-auth-library")`. No target (they say where the time goes).
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { alternate, medianOf, report, rounds } from "./lib.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
// The child scripts resolve packages as a user's program would, from a package that depends on them.
const cwd = path.join(here, "..")
const ROUNDS = rounds(15)

const home = mkdtempSync(path.join(tmpdir(), "flyte-auth-bench-cold-"))
const credentialsDir = path.join(home, "credentials")
const configFile = path.join(home, "config.yaml")
writeFileSync(configFile, "")
const endpoint = "flyte.bench.invalid:443"
const token = `bench.${"x".repeat(600)}.token`
const tokenFile = path.join(home, "token.json")
const expiresAt = Date.now() + 24 * 3600 * 1000
writeFileSync(tokenFile, JSON.stringify({ access_token: token, expiry_date: expiresAt }))

const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith("FLYTE") && key !== "NODE_OPTIONS")
)
Object.assign(env, { HOME: home, FLYTE_AUTH_CREDENTIALS_DIR: credentialsDir })

/** Runs an ES module given as text in a fresh `node`; answers the `performance.now()` it printed last. */
const run = (code, expected) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], { cwd, env, stdio: "pipe" })
    const out = []
    const err = []
    child.stdout.on("data", (chunk) => out.push(chunk))
    child.stderr.on("data", (chunk) => err.push(chunk))
    child.on("error", reject)
    child.on("close", (exitCode) => {
      // The last line: Effect's default logger (the AuthLayer row) writes its warnings to stdout before it.
      const [value, printed] = Buffer.concat(out).toString("utf8").trim().split("\n").at(-1).split(" ")
      if (exitCode !== 0 || (expected !== undefined && printed !== expected)) {
        return reject(new Error(`cold-start child failed (${exitCode}): ${Buffer.concat(err).toString("utf8")}`))
      }
      resolve({ value: Number(value) })
    })
  })

// The stored login is an ExternalCommand one (its "login" prints the token); the measured clients are of that mode
// too, since a stored entry is only handed to a client of its own mode and client id (its command never runs: the
// stored token is valid).
const command = [
  process.execPath,
  "-e",
  `process.stdout.write(${JSON.stringify(JSON.stringify({ access_token: token, expires_in: 86400 }))})`
]
const options = JSON.stringify({
  endpoint,
  insecure: true,
  keyring: "file",
  configFile,
  env: {},
  authMode: "ExternalCommand",
  command
})
const scripts = {
  facade: (entry) => `
    const { createAuthClient } = await import(${JSON.stringify(entry)})
    const auth = await createAuthClient(${options})
    const token = await auth.accessToken()
    await auth.close()
    process.stdout.write(performance.now() + " " + token)`,
  effect: `
    const [{ AuthLayer }, Authenticator, Effect, Redacted] = await Promise.all([
      import("@flyte-auth/node"), import("@flyte-auth/core/Authenticator"), import("effect/Effect"),
      import("effect/Redacted")
    ])
    const token = await Effect.runPromise(Effect.scoped(Effect.provide(
      Effect.map(Effect.flatMap(Authenticator.Authenticator, (auth) => auth.accessToken), Redacted.value),
      AuthLayer.layer(${options})
    )))
    process.stdout.write(performance.now() + " " + token)`,
  google: `
    const { OAuth2Client } = await import("google-auth-library")
    const { readFile } = await import("node:fs/promises")
    const client = new OAuth2Client()
    client.setCredentials(JSON.parse(await readFile(${JSON.stringify(tokenFile)}, "utf8")))
    const { token } = await client.getAccessToken()
    process.stdout.write(performance.now() + " " + token)`,
  // What an Effect program that uses Schema loads and runs before any flyte-auth code: the floor of the AuthLayer row.
  effectFloor: `
    const [Effect, Layer, Schema] = await Promise.all([
      import("effect/Effect"), import("effect/Layer"), import("effect/Schema")
    ])
    const Token = Schema.Struct({ token: Schema.String })
    const token = await Effect.runPromise(Effect.provide(
      Effect.map(Schema.decodeUnknown(Token)({ token: ${JSON.stringify(token)} }), (t) => t.token),
      Layer.empty
    ))
    process.stdout.write(performance.now() + " " + token)`,
  importOf: (name) => `await import(${JSON.stringify(name)}); process.stdout.write(String(performance.now()))`
}

// One valid token in the file keyring, written by the real client (a login with a fixed client configuration
// whose "login" is an external command printing the token).
await run(`
  const { createAuthClient } = await import("@flyte-auth/node")
  const auth = await createAuthClient({
    ...${options},
    clientConfig: { tokenEndpoint: "https://idp.bench.invalid/token", clientId: "bench", scopes: [] }
  })
  await auth.accessToken()
  await auth.close()
  process.stdout.write(performance.now() + " " + "stored")`, "stored")

try {
  for (const row of [
    {
      name: "cold-start/facade",
      measured: scripts.facade("@flyte-auth/node/client"),
      target: 2,
      label: "createAuthClient (@flyte-auth/node/client) + accessToken()"
    },
    {
      name: "cold-start/facade-barrel",
      measured: scripts.facade("@flyte-auth/node"),
      target: "none (the Effect API loaded with it)",
      label: "createAuthClient (@flyte-auth/node) + accessToken()"
    },
    { name: "cold-start/effect", measured: scripts.effect, target: 3, label: "AuthLayer.layer + accessToken" },
    {
      name: "cold-start/effect-floor",
      measured: scripts.effect,
      baseline: scripts.effectFloor,
      baselineLabel: "effect/Effect + effect/Layer + effect/Schema imported, one Schema decode run (no flyte-auth)",
      target: "none (flyte-auth's share of an Effect program's start)",
      label: "AuthLayer.layer + accessToken"
    }
  ]) {
    const samples = await alternate({
      name: row.name,
      count: ROUNDS,
      variants: {
        google: () => run(row.baseline ?? scripts.google, token),
        flyte: () => run(row.measured, token)
      }
    })
    report({
      name: row.name,
      baseline: medianOf(samples.google),
      measured: medianOf(samples.flyte),
      unit: "ms from process start",
      better: "lower",
      target: row.target,
      rounds: ROUNDS,
      baselineLabel: row.baselineLabel ?? "google-auth-library OAuth2Client.getAccessToken() (token from a JSON file)",
      measuredLabel: `${row.label} (valid token in the file keyring)`
    })
  }
  for (const pkg of ["core", "node", "grpc"]) {
    const samples = await alternate({
      name: `cold-start/import-${pkg}`,
      count: ROUNDS,
      variants: {
        google: () => run(scripts.importOf("google-auth-library")),
        flyte: () => run(scripts.importOf(`@flyte-auth/${pkg}`))
      }
    })
    report({
      name: `cold-start/import-${pkg}`,
      baseline: medianOf(samples.google),
      measured: medianOf(samples.flyte),
      unit: "ms from process start",
      better: "lower",
      target: "none (where the time goes)",
      rounds: ROUNDS,
      baselineLabel: "await import(\"google-auth-library\")",
      measuredLabel: `await import("@flyte-auth/${pkg}")`
    })
  }
} finally {
  rmSync(home, { recursive: true, force: true })
}
