/**
 * Cross-process refresh: many `flyte-auth token` processes (the BUILT binary) sharing one store, with an expired
 * access token and a rotating refresh token, against the sandbox IdP. Without the cross-process lock each process
 * would refresh with the same refresh token: one would win and the others would get `invalid_grant` (the IdP
 * rotates refresh tokens and revokes the whole family on reuse).
 *
 * How the token is expired: the login's token gets the sandbox's normal lifetime, then its stored `expiresAt` is
 * moved into the past (every client sees it expired) and the admin is told to reject it (as it would an expired
 * one). A short token lifetime instead would let the REFRESHED token go stale again while 20 processes start on
 * a loaded two-core machine, and a second, legitimate refresh could not be told from a broken lock.
 *
 * Also: a killed lock holder (SIGKILL) is recovered from at once, a live one is waited for, and a storm of
 * processes that die while holding the lock never lets two holders in at a time.
 */
import { Credentials, Keyring } from "@flyte-auth/core"
import { NodeCredentialLock } from "@flyte-auth/node"
import { startSandbox } from "@flyte-auth/sandbox"
import type { Sandbox } from "@flyte-auth/sandbox"
import { Duration, Effect, Exit, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, makeHome, requireBuild, userAgentBrowser } from "../e2e/helpers.js"
import {
  claims,
  expireStoredToken,
  fixtures,
  keyringOf,
  kill,
  runCli,
  runNode,
  startLockHolder,
  storedEntry,
  type Timed,
  whoami
} from "./helpers.js"

requireBuild()

const processes = 20

// One sandbox and one home for the whole file: each test expires the stored token again (see `expire`).
let sandbox: Sandbox.Service
let home: Home

beforeAll(async () => {
  sandbox = await startSandbox({ redirectUri: "http://127.0.0.1:0/callback" })
  home = makeHome()
})
afterAll(async () => {
  await sandbox?.close()
  home?.cleanup()
})

interface Store {
  readonly backend: "file" | "keytar"
  readonly keyring: Keyring.Keyring.Service
  /** Extra environment of the CLI runs. */
  readonly env: Record<string, string>
  /** Where the lock files are. */
  readonly lockDir: string
}

const fileStore = (): Store => ({
  backend: "file",
  keyring: keyringOf("file", home.credentials),
  env: {},
  lockDir: home.credentials
})

const secretServiceStore = (): Store => {
  const lockDir = Path.join(home.dir, "locks")
  return { backend: "keytar", keyring: keyringOf("keytar"), env: { FLYTE_AUTH_LOCK_DIR: lockDir }, lockDir }
}

const args = (store: Store) => ["--endpoint", sandbox.adminGrpc, "--insecure", "--keyring", store.backend]

/** A PKCE login through the IdP's pages (the sandbox's scripted user agent as the browser), stored in `store`. */
const login = async (store: Store) => {
  const result = await runCli(
    home,
    ["login", ...args(store), "--browser-command", userAgentBrowser, "--timeout", "60"],
    store.env
  )
  expect(result.code, result.stderr).toBe(0)
  const entry = await storedEntry(store.keyring, sandbox.adminGrpc)
  expect(entry?.refreshToken).toBeTypeOf("string")
  return entry!
}

/** The file store is logged in once, by the first test that needs it. */
let fileLogin: Promise<unknown> | undefined
const loggedIn = (store: Store) => store.backend === "file" ? (fileLogin ??= login(store)) : login(store)

/** Expires the stored token (see the header); returns it and the stored refresh token. */
const expire = async (store: Store) => {
  await loggedIn(store)
  const entry = (await storedEntry(store.keyring, sandbox.adminGrpc))!
  const old = entry.accessToken as string
  await expireStoredToken(store.keyring, sandbox.adminGrpc)
  sandbox.rejectTokensIssuedBefore()
  expect((await whoami(sandbox, old)).status).toBe(401)
  sandbox.resetStats()
  return { old, refreshToken: entry.refreshToken }
}

const token = (store: Store) => runCli(home, ["token", ...args(store)], store.env)

/** Every run printed the same new token, the admin accepts it, and nobody started an interactive login. */
const expectOneNewToken = async (runs: ReadonlyArray<Timed>, old: string, store: Store) => {
  for (const run of runs) {
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
  }
  const tokens = new Set(runs.map((run) => run.stdout.trim()))
  expect(tokens.size).toBe(1)
  const [printed] = tokens
  expect(printed).not.toBe(old)
  expect(claims(printed).sub).toBe(sandbox.user.subject)
  expect(await whoami(sandbox, printed)).toEqual({ status: 200, subject: sandbox.user.subject })

  const stats = sandbox.stats()
  expect(stats.tokenRequests.refresh_token).toBe(1)
  expect(stats.tokenErrors.refresh_token).toBe(0)
  // Nobody fell back to a login of any kind.
  expect(stats.tokenRequests.authorization_code + stats.tokenRequests.device_code).toBe(0)
  expect(stats.authorizationRequests + stats.deviceAuthorizationRequests).toBe(0)
  for (const run of runs) expect(run.stderr).not.toMatch(/Open this URL|device|AccessTokenNotFound/i)

  // The store holds the new token and the rotated refresh token; no lock file is left behind.
  const stored = await storedEntry(store.keyring, sandbox.adminGrpc)
  expect(stored?.accessToken).toBe(printed)
  expect(Fs.readdirSync(store.lockDir).filter((name) => name.endsWith(".lock") || name.endsWith(".break")))
    .toEqual([])
  return printed
}

const report = (what: string, runs: ReadonlyArray<Timed>) => {
  const first = Math.min(...runs.map((r) => r.startedAt))
  const last = Math.max(...runs.map((r) => r.endedAt))
  console.log(
    `${what}: ${runs.length} processes in ${((last - first) / 1000).toFixed(1)} s, ` +
      `refresh_token grants ${sandbox.stats().tokenRequests.refresh_token}`
  )
}

const crossProcessRefresh = async (store: Store) => {
  const { old, refreshToken } = await expire(store)
  const runs = await Promise.all(Array.from({ length: processes }, () => token(store)))
  report(`flyte-auth token, ${store.backend} keyring`, runs)
  await expectOneNewToken(runs, old, store)
  // The refresh token was rotated by the one refresh.
  const after = await storedEntry(store.keyring, sandbox.adminGrpc)
  expect(after?.refreshToken).toBeTypeOf("string")
  expect(after?.refreshToken).not.toBe(refreshToken)
}

describe("cross-process refresh, file keyring", () => {
  it(
    `${processes} concurrent \`flyte-auth token\` runs: all print one valid new token, the IdP sees one refresh`,
    () => crossProcessRefresh(fileStore()),
    180_000
  )
})

describe.skipIf(!process.env.FLYTE_AUTH_TEST_SECRET_SERVICE)("cross-process refresh, Secret Service (keytar)", () => {
  it(
    `${processes} concurrent \`flyte-auth token\` runs: all print one valid new token, the IdP sees one refresh`,
    async () => {
      const store = secretServiceStore()
      try {
        await crossProcessRefresh(store)
      } finally {
        await Effect.runPromise(
          Effect.ignore(
            store.keyring.delete(Keyring.serviceName, Credentials.keyringAccount(sandbox.adminGrpc, undefined))
          )
        )
      }
    },
    180_000
  )
})

describe("stale and live lock holders", () => {
  const lockEnv = () => home.env

  it("a holder killed with SIGKILL: the next acquirer breaks its lock at once, and `token` refreshes", async () => {
    const store = fileStore()
    const { old } = await expire(store)
    const lockName = NodeCredentialLock.lockFileName(sandbox.adminGrpc)

    // A holder dies while holding the lock; another process takes it at once (no waiting for the 20 s age bound).
    const first = await startLockHolder(store.lockDir, sandbox.adminGrpc, lockEnv())
    await kill(first.child)
    expect(Fs.readdirSync(store.lockDir)).toContain(lockName)
    const lock = NodeCredentialLock.make({ dir: store.lockDir })
    const started = Date.now()
    const scope = Effect.runSync(Scope.make())
    await Effect.runPromise(Scope.extend(lock.acquire(sandbox.adminGrpc, { timeout: Duration.seconds(5) }), scope))
    const recovery = Date.now() - started
    await Effect.runPromise(Scope.close(scope, Exit.void))
    console.log(`lock of a killed holder broken after ${recovery} ms`)
    expect(recovery).toBeLessThan(1_000)

    // Again, with `flyte-auth token` as the next process: it recovers and refreshes, well within the age bound.
    const second = await startLockHolder(store.lockDir, sandbox.adminGrpc, lockEnv())
    await kill(second.child)
    expect(Fs.readdirSync(store.lockDir)).toContain(lockName)
    const run = await token(store)
    console.log(`flyte-auth token after a killed holder: ${run.endedAt - run.startedAt} ms`)
    expect(run.endedAt - run.startedAt).toBeLessThan(Duration.toMillis(Duration.seconds(20)))
    await expectOneNewToken([run], old, store)
  }, 120_000)

  it("a live holder makes 3 `token` processes wait; once it releases, they proceed with one refresh", async () => {
    const store = fileStore()
    const { old } = await expire(store)
    const holder = await startLockHolder(store.lockDir, sandbox.adminGrpc, lockEnv())
    const runs = Promise.all(Array.from({ length: 3 }, () => token(store)))
    // Long enough for the processes to start and reach the lock, on a loaded machine too.
    await new Promise((resolve) => setTimeout(resolve, 8_000))
    expect(sandbox.stats().tokenRequests.refresh_token).toBe(0)
    const releasedAt = await holder.release()
    const done = await runs
    report("flyte-auth token behind a live holder", done)
    for (const run of done) expect(run.endedAt).toBeGreaterThanOrEqual(releasedAt)
    await expectOneNewToken(done, old, store)
  }, 120_000)

  it("a storm of processes dying while they hold the lock: never two holders at a time, nobody stuck", async () => {
    const dir = Path.join(home.dir, "storm")
    Fs.mkdirSync(dir, { mode: 0o700 })
    const workers = 4
    const sections = 20
    let overlaps = 0
    let crashes = 0
    let done = 0
    const worker = async () => {
      let left = sections
      while (left > 0) {
        const run = await runNode(
          [Path.join(fixtures, "crashStorm.mjs"), dir, "storm.example.com:443", String(left), "0.1"],
          home.env
        )
        const lines = run.stdout.split("\n")
        const finished = lines.filter((line) => line === "section").length
        overlaps += lines.filter((line) => line === "overlap").length
        if (run.signal === "SIGKILL") crashes++
        else expect(run.code, run.stderr).toBe(0)
        left -= finished
        done += finished
      }
    }
    const started = Date.now()
    await Promise.all(Array.from({ length: workers }, worker))
    console.log(
      `crash storm: ${done} sections by ${workers} workers, ${crashes} holders killed, ${overlaps} overlaps, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`
    )
    expect(overlaps).toBe(0)
    expect(done).toBe(workers * sections)
    expect(crashes).toBeGreaterThan(0)
  }, 150_000)
})
