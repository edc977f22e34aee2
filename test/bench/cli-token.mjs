// 5. cli-token: wall time and peak RSS of `flyte-auth token` answering from a valid token in the file keyring
// (and cli-status: `flyte-auth status` of the same login, against `token`)
// (after a `flyte-auth login` with client credentials against a sandbox), vs `node -e 0`, alternating in the same
// run. Both processes get the same preloaded probe (rss-probe.cjs) that reports the peak RSS on exit, and the same
// environment: a temporary HOME and FLYTE_AUTH_CREDENTIALS_DIR, no FLYTE_* variable.
import { startSandbox } from "@flyte-auth/sandbox"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { alternate, medianOf, now, report, rounds } from "./lib.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.join(here, "..", "..")
const bin = path.join(root, "packages", "cli", "dist", "bin.js")
const probe = path.join(here, "rss-probe.cjs")
const ROUNDS = rounds(20)

if (!existsSync(bin)) throw new Error(`${path.relative(root, bin)} is missing: run \`pnpm build\` first`)

const home = mkdtempSync(path.join(tmpdir(), "flyte-auth-bench-cli-"))
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith("FLYTE") && key !== "NODE_OPTIONS")
)
Object.assign(env, {
  HOME: home,
  FLYTE_AUTH_CREDENTIALS_DIR: path.join(home, "credentials"),
  FLYTE_BENCH_CLIENT_SECRET: ""
})

/** Runs `node -r probe ...args`; answers the wall time (ms), the peak RSS (MB) and stdout. */
const run = (args, extraEnv = {}) =>
  new Promise((resolve, reject) => {
    const start = now()
    const child = spawn(process.execPath, ["-r", probe, ...args], {
      cwd: home,
      env: { ...env, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe", "pipe"]
    })
    const out = []
    const err = []
    const rss = []
    child.stdout.on("data", (chunk) => out.push(chunk))
    child.stderr.on("data", (chunk) => err.push(chunk))
    child.stdio[3].on("data", (chunk) => rss.push(chunk))
    child.on("error", reject)
    child.on("close", (code) => {
      const wall = now() - start
      const stdout = Buffer.concat(out).toString("utf8")
      if (code !== 0) {
        return reject(new Error(`node ${args.join(" ")} exited with ${code}: ${Buffer.concat(err).toString("utf8")}`))
      }
      resolve({ value: wall, rssMB: Number(Buffer.concat(rss).toString("utf8")) / 1024, stdout })
    })
  })

const sandbox = await startSandbox()
try {
  // The service account's own keyring entry (credentials are kept per endpoint and client id).
  const common = [
    "--endpoint",
    sandbox.adminGrpc,
    "--insecure",
    "--keyring",
    "file",
    "--auth-mode",
    "ClientSecret",
    "--client-id",
    sandbox.clients.confidential.clientId
  ]
  await run([
    bin,
    "login",
    ...common,
    "--client-secret-env-var",
    "FLYTE_BENCH_CLIENT_SECRET"
  ], { FLYTE_BENCH_CLIENT_SECRET: sandbox.clients.confidential.clientSecret })
  const first = (await run([bin, "token", ...common])).stdout.trim()
  if (first.split(".").length !== 3) throw new Error("flyte-auth token did not print a JWT")
  sandbox.resetStats()

  const samples = await alternate({
    name: "cli-token",
    count: ROUNDS,
    variants: {
      node: () => run(["-e", "0"]),
      token: async () => {
        const result = await run([bin, "token", ...common])
        if (result.stdout.trim() !== first) throw new Error("flyte-auth token printed another token")
        return result
      },
      // Issue 16: `status` (offline) within 2x `token`.
      status: async () => {
        const result = await run([bin, "status", ...common])
        if (!/logged in +yes/.test(result.stdout)) throw new Error("flyte-auth status does not show the login")
        return result
      }
    }
  })
  const tokenRequests = Object.values(sandbox.stats().tokenRequests).reduce((a, b) => a + b, 0)
  if (tokenRequests !== 0) throw new Error(`flyte-auth token asked the IdP ${tokenRequests} times; the token was valid`)

  report({
    name: "cli-token",
    baseline: medianOf(samples.node),
    measured: medianOf(samples.token),
    unit: "ms wall",
    better: "lower",
    target: 2,
    rounds: ROUNDS,
    baselineLabel: "node -e 0",
    measuredLabel: "flyte-auth token (valid token in the file keyring)",
    details: {
      minMs: { baseline: Math.min(...samples.node.map((s) => s.value)), measured: Math.min(...samples.token.map((s) => s.value)) }
    }
  })
  report({
    name: "cli-status",
    baseline: medianOf(samples.token),
    measured: medianOf(samples.status),
    unit: "ms wall",
    better: "lower",
    target: 2,
    rounds: ROUNDS,
    baselineLabel: "flyte-auth token (valid token in the file keyring)",
    measuredLabel: "flyte-auth status (the same login, offline)"
  })
  report({
    name: "cli-token/rss",
    baseline: medianOf(samples.node, "rssMB"),
    measured: medianOf(samples.token, "rssMB"),
    unit: "MB peak RSS",
    better: "lower",
    target: 2,
    rounds: ROUNDS,
    baselineLabel: "node -e 0",
    measuredLabel: "flyte-auth token (valid token in the file keyring)"
  })
} finally {
  await sandbox.close()
  rmSync(home, { recursive: true, force: true })
}
