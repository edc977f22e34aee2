/**
 * Helpers of the stress suites: many subprocesses at once (the built `flyte-auth`, or the lock fixtures), the
 * stored file-keyring entry, and the sandbox admin's verdict on a token.
 */
import { Credentials, Keyring } from "@flyte-auth/core"
import { NodeKeyring } from "@flyte-auth/node"
import type { Sandbox } from "@flyte-auth/sandbox"
import { Effect, Option } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { createInterface } from "node:readline"
import { bin, type Home, root } from "../e2e/helpers.js"

export const fixtures = Path.join(root, "test", "stress", "fixtures")

export interface Timed {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly startedAt: number
  readonly endedAt: number
}

/** Runs a Node script to completion (killed after `timeoutMs`), with timestamps. */
export const runNode = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  timeoutMs = 60_000
): Promise<Timed> =>
  new Promise((resolve, reject) => {
    const startedAt = Date.now()
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`node ${args.join(" ")} did not finish in ${timeoutMs} ms\n${stderr}`))
    }, timeoutMs)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, startedAt, endedAt: Date.now() })
    })
  })

/** `flyte-auth <args>` in `home` (non-interactive: stdin is not a terminal). */
export const runCli = (home: Home, args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
  runNode([bin, ...args], { ...home.env, ...extraEnv })

export interface LockHolder {
  readonly child: ChildProcess
  readonly lockedAt: number
  /** SIGTERM: the holder releases the lock; resolves with the time it did. */
  readonly release: () => Promise<number>
}

/** Starts `fixtures/holdLock.mjs` and resolves once it holds the lock. */
export const startLockHolder = (dir: string, key: string, env: Record<string, string>): Promise<LockHolder> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [Path.join(fixtures, "holdLock.mjs"), dir, key], {
      env,
      stdio: ["ignore", "pipe", "inherit"]
    })
    let onReleased: (at: number) => void = () => {}
    const released = new Promise<number>((done) => (onReleased = done))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error("the lock holder did not take the lock within 30 s"))
    }, 30_000)
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const event = JSON.parse(line) as { locked?: number; released?: number }
      if (event.locked !== undefined) {
        clearTimeout(timer)
        resolve({
          child,
          lockedAt: event.locked,
          release: () => {
            child.kill("SIGTERM")
            return released
          }
        })
      }
      if (event.released !== undefined) onReleased(event.released)
    })
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the lock holder exited (${code ?? signal}) before taking the lock`))
    })
  })

/** Kills a process with SIGKILL and waits until it is gone (reaped). */
export const kill = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/** The stored entry for `endpoint` (the `Credentials.KeyringEntry` JSON, parsed). */
export const storedEntry = (
  keyring: Keyring.Keyring.Service,
  endpoint: string
): Promise<Record<string, unknown> | undefined> =>
  Effect.runPromise(keyring.get(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined))).then((entry) =>
    Option.isNone(entry) ? undefined : JSON.parse(entry.value) as Record<string, unknown>
  )

/**
 * Makes the stored access token expired for every client: its `expiresAt` moves into the past (the token itself is
 * then rejected by the admin with `sandbox.rejectTokensIssuedBefore`).
 */
export const expireStoredToken = async (keyring: Keyring.Keyring.Service, endpoint: string): Promise<void> => {
  const entry = await storedEntry(keyring, endpoint)
  if (entry === undefined) throw new Error(`nothing is stored for ${endpoint}`)
  const expired = { ...entry, expiresAt: new Date(Date.now() - 60_000).toISOString() }
  await Effect.runPromise(
    keyring.set(Keyring.serviceName, Credentials.keyringAccount(endpoint, undefined), JSON.stringify(expired))
  )
}

/** The file keyring of `dir`, or the Secret Service through keytar. */
export const keyringOf = (backend: "file" | "keytar", dir?: string): Keyring.Keyring.Service =>
  Effect.runSync(backend === "file" ? NodeKeyring.makeFile(dir) : NodeKeyring.makeKeytar)

/** The admin's answer to `GET /api/v1/whoami` with `token` (status and subject). */
export const whoami = async (sandbox: Sandbox.Service, token: string) => {
  const response = await fetch(`${sandbox.adminHttp}/api/v1/whoami`, {
    headers: { [sandbox.headerKey]: `Bearer ${token}` }
  })
  const body = (await response.json()) as { subject?: string }
  return { status: response.status, subject: body.subject }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The claims of a JWT (unverified). */
export const claims = (token: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>
