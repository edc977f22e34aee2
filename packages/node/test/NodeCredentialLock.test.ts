/**
 * The lock-file `CredentialLock` on the real file system, in one process (the cross-process runs, with killed
 * holders, are in test/stress). A dead holder is a lock file naming a process that has exited.
 */
import { describe, expect, it } from "@effect/vitest"
import { CredentialLock, Keyring } from "@flyte-auth/core"
import { NodeCredentialLock } from "@flyte-auth/node"
import { ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Ref, Schedule } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as LockFile from "../src/internal/lockFile.js"

const key = "flyte.example.com:443"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-lock-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** A quick lock for tests: stale after 1 s without a touch, touched every 100 ms, retried every 20 ms. */
const quickLock = (dir: string, staleAfter: Duration.DurationInput = Duration.seconds(1)) =>
  NodeCredentialLock.make({
    dir,
    staleAfter,
    heartbeat: Schedule.spaced(Duration.millis(100)),
    retry: Schedule.spaced(Duration.millis(20))
  })

/** The pid of a process that has exited (and been reaped). */
const deadPid = Effect.async<number>((resume) => {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" })
  child.on("exit", () => resume(Effect.succeed(child.pid!)))
})

/** A live process that is not this one, killed with the scope. */
const livePid = Effect.acquireRelease(
  Effect.sync(() => spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })),
  (child) => Effect.sync(() => child.kill("SIGKILL"))
).pipe(Effect.map((child) => child.pid!))

const writeLock = (dir: string, holder: Partial<NodeCredentialLock.Holder> | string, ageMillis = 0) => {
  const path = Path.join(dir, NodeCredentialLock.lockFileName(key))
  Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  Fs.writeFileSync(
    path,
    typeof holder === "string" ? holder : JSON.stringify({
      pid: 1,
      host: Os.hostname(),
      nonce: "someone-else",
      acquiredAt: new Date(Date.now() - ageMillis).toISOString(),
      ...holder
    }),
    { mode: 0o600 }
  )
  if (ageMillis > 0) {
    const then = new Date(Date.now() - ageMillis)
    Fs.utimesSync(path, then, then)
  }
  return path
}

const readHolder = (path: string): NodeCredentialLock.Holder => JSON.parse(Fs.readFileSync(path, "utf8"))

/** Takes the lock, runs `self`, releases: like the Authenticator does. */
const holding = <A, E>(lock: CredentialLock.CredentialLock.Service, self: Effect.Effect<A, E>, timeout = "5 seconds") =>
  Effect.scoped(
    Effect.zipRight(lock.acquire(key, { timeout: Duration.decode(timeout as Duration.DurationInput) }), self)
  )

describe("NodeCredentialLock", () => {
  it.scopedLive("creates a private lock file naming its holder, and deletes it on release", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = Path.join(root, "not-yet", "there")
      const lock = quickLock(dir)
      const path = Path.join(dir, NodeCredentialLock.lockFileName(key))
      expect(NodeCredentialLock.lockFileName(key)).toMatch(/^[0-9a-f]{40}\.lock$/)
      expect(NodeCredentialLock.lockFileName(key)).not.toBe(NodeCredentialLock.lockFileName("other:443"))

      yield* holding(
        lock,
        Effect.sync(() => {
          const holder = readHolder(path)
          expect(holder.pid).toBe(process.pid)
          expect(holder.host).toBe(Os.hostname())
          expect(holder.nonce).toMatch(/^[0-9a-f-]{36}$/)
          expect(Math.abs(Date.parse(holder.acquiredAt) - Date.now())).toBeLessThan(5_000)
          expect(Fs.statSync(path).mode & 0o777).toBe(0o600)
          expect(Fs.statSync(dir).mode & 0o777).toBe(0o700)
          // Nothing about the endpoint in the file.
          expect(Fs.readFileSync(path, "utf8")).not.toContain("flyte.example.com")
        })
      )
      expect(Fs.existsSync(path)).toBe(false)
      // It is released after a failure too.
      const failed = yield* Effect.exit(holding(lock, Effect.fail("boom")))
      expect(Exit.isFailure(failed)).toBe(true)
      expect(Fs.existsSync(path)).toBe(false)
      expect(Fs.readdirSync(dir)).toEqual([])
    }))

  it.scopedLive("a second holder waits for the first and then proceeds; a third times out with a typed error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = quickLock(dir)
      const events = yield* Ref.make<ReadonlyArray<string>>([])
      const log = (event: string) => Ref.update(events, (all) => [...all, event])
      const first = yield* Effect.fork(holding(lock, Effect.zipRight(log("a in"), Effect.sleep("1500 millis"))))
      yield* Effect.sleep("100 millis")
      // Held for longer than staleAfter (1 s): the heartbeat keeps it from being broken.
      const second = yield* Effect.fork(holding(lock, log("b in")))
      const third = yield* Effect.flip(holding(lock, log("c in"), "500 millis"))
      expect(third).toMatchObject({ _tag: "CredentialLockError", reason: "Timeout", backend: "file" })
      expect(third.message).toContain(`process ${process.pid}`)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(yield* Ref.get(events)).toEqual(["a in", "b in"])
    }))

  it.scopedLive("the lock of a holder whose process is gone is broken at once", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const pid = yield* deadPid
      writeLock(dir, { pid })
      const lock = quickLock(dir, Duration.minutes(10))
      const started = Date.now()
      yield* holding(lock, Effect.void)
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(Fs.readdirSync(dir)).toEqual([])
    }))

  it.scopedLive("a live holder on this host is waited for; once nobody touched it for staleAfter it is broken", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const pid = yield* livePid
      const path = writeLock(dir, { pid })
      const lock = quickLock(dir, Duration.seconds(1))
      // Touched just now: the holder is alive, so it is not broken.
      const waited = yield* Effect.flip(holding(lock, Effect.void, "400 millis"))
      expect(waited.reason).toBe("Timeout")
      expect(waited.message).toContain(`process ${pid}`)
      expect(readHolder(path).pid).toBe(pid)
      // Untouched for longer than staleAfter: broken.
      yield* Effect.sleep("700 millis")
      yield* holding(lock, Effect.sync(() => expect(readHolder(path).pid).toBe(process.pid)), "2 seconds")
    }))

  it.scopedLive("a holder on another host is judged by the age of its last touch only", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const pid = yield* deadPid
      // A pid that is dead here means nothing for another host.
      writeLock(dir, { pid, host: "elsewhere.example" })
      const lock = quickLock(dir, Duration.seconds(2))
      expect((yield* Effect.flip(holding(lock, Effect.void, "300 millis"))).reason).toBe("Timeout")
      writeLock(dir, { pid, host: "elsewhere.example" }, 3_000)
      yield* holding(lock, Effect.void, "1 second")
    }))

  it.scopedLive("an unreadable lock file is left alone while fresh and broken when old", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = quickLock(dir, Duration.seconds(1))
      writeLock(dir, "")
      const waited = yield* Effect.flip(holding(lock, Effect.void, "300 millis"))
      expect(waited.message).toContain("another process")
      writeLock(dir, "{ half a lock", 5_000)
      yield* holding(lock, Effect.void, "1 second")
    }))

  it.scopedLive("20 waiters racing to break one stale lock: never two holders at a time", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeLock(dir, { pid: yield* deadPid })
      // Separate lock services, as separate processes would have.
      const inside = yield* Ref.make(0)
      const overlaps = yield* Ref.make(0)
      const section = Effect.gen(function*() {
        const now = yield* Ref.updateAndGet(inside, (n) => n + 1)
        if (now > 1) yield* Ref.update(overlaps, (n) => n + 1)
        yield* Effect.sleep("10 millis")
        yield* Ref.update(inside, (n) => n - 1)
      })
      yield* Effect.all(
        Array.from({ length: 20 }, () => holding(quickLock(dir, Duration.minutes(10)), section, "20 seconds")),
        { concurrency: "unbounded" }
      )
      expect(yield* Ref.get(overlaps)).toBe(0)
      expect(Fs.readdirSync(dir)).toEqual([])
    }))

  it.scopedLive("breaking deletes only the very file judged stale, one breaker at a time", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = writeLock(dir, { pid: yield* deadPid, nonce: "dead" })
      const guard = `${path}.break`
      const promise = <A>(f: () => Promise<A>) => Effect.promise(f)
      const seen = (yield* promise(() => LockFile.observe(path)))!
      expect(yield* promise(() => LockFile.staleness(seen, 60_000))).toMatch(/process \d+, is gone/)

      // Meanwhile another process broke it and took the lock (the file may even reuse the inode): a late breaker
      // acting on what it saw before must leave the new lock alone.
      Fs.unlinkSync(path)
      writeLock(dir, { pid: process.pid, nonce: "new" })
      expect(yield* promise(() => LockFile.breakStale(path, seen, 60_000))).toBe(false)
      expect(readHolder(path).nonce).toBe("new")

      // A holder that touched its file since it was seen is not broken either.
      writeLock(dir, { pid: process.pid, nonce: "touched" }, 10_000)
      const old = (yield* promise(() => LockFile.observe(path)))!
      const now = new Date()
      Fs.utimesSync(path, now, now)
      expect(yield* promise(() => LockFile.breakStale(path, old, 1_000))).toBe(false)
      expect(readHolder(path).nonce).toBe("touched")

      // While another breaker holds the guard, nobody breaks; a guard left behind by a dead breaker is cleared
      // once it is older than the bound, and the next try breaks.
      const stale = (yield* promise(() => LockFile.observe(path)))!
      Fs.writeFileSync(guard, "12345")
      expect(yield* promise(() => LockFile.breakStale(path, stale, 60_000))).toBe(false)
      expect(Fs.existsSync(path) && Fs.existsSync(guard)).toBe(true)
      const then = new Date(Date.now() - 5_000)
      Fs.utimesSync(guard, then, then)
      expect(yield* promise(() => LockFile.breakStale(path, stale, 1_000))).toBe(false)
      expect(Fs.existsSync(guard)).toBe(false)
      expect(yield* promise(() => LockFile.breakStale(path, stale, 1_000))).toBe(true)
      expect(Fs.readdirSync(dir)).toEqual([])
    }))

  it.scopedLive("a waiter interrupted while waiting leaves no lock file of its own", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = quickLock(dir)
      const holder = yield* Effect.fork(holding(lock, Effect.sleep("400 millis")))
      yield* Effect.sleep("50 millis")
      const waiter = yield* Effect.fork(holding(lock, Effect.never))
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(waiter)
      yield* Fiber.join(holder)
      expect(Fs.readdirSync(dir)).toEqual([])
    }))

  it.scopedLive("a lock directory that cannot be created is Unavailable, not a wait", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const file = Path.join(root, "a-file")
      Fs.writeFileSync(file, "")
      const error = yield* Effect.flip(holding(quickLock(Path.join(file, "locks")), Effect.void))
      expect(error).toMatchObject({ _tag: "CredentialLockError", reason: "Unavailable", backend: "file" })
    }))

  it.effect("makeForBackend: none for private keyrings; the file keyring's directory; FLYTE_AUTH_LOCK_DIR wins", () =>
    Effect.gen(function*() {
      const env = (map: Record<string, string>) =>
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(map))))
      const dirOf = (backend: string, map: Record<string, string>) =>
        NodeCredentialLock.makeForBackend(backend).pipe(env(map))
      expect((yield* dirOf("memory", {})).backend).toBe("none")
      expect((yield* dirOf("none", { FLYTE_AUTH_LOCK_DIR: "/x" })).backend).toBe("none")

      // Where does each put its lock? Take it and look.
      const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-lockdir-"))
      try {
        const where = (backend: string, map: Record<string, string>) =>
          Effect.scoped(Effect.gen(function*() {
            const lock = yield* dirOf(backend, map)
            expect(lock.backend).toBe("file")
            yield* lock.acquire(key)
            return Fs.readdirSync(root, { recursive: true }).map(String).filter((name) => name.endsWith(".lock"))
          }))
        const lockName = NodeCredentialLock.lockFileName(key)
        expect(yield* where("file", { FLYTE_AUTH_CREDENTIALS_DIR: Path.join(root, "creds") })).toEqual([
          Path.join("creds", lockName)
        ])
        expect(
          yield* where("file", {
            FLYTE_AUTH_CREDENTIALS_DIR: Path.join(root, "creds"),
            FLYTE_AUTH_LOCK_DIR: Path.join(root, "locks")
          })
        ).toEqual([Path.join("locks", lockName)])
        expect(yield* where("keytar", { FLYTE_AUTH_LOCK_DIR: Path.join(root, "keytar-locks") })).toEqual([
          Path.join("keytar-locks", lockName)
        ])
      } finally {
        Fs.rmSync(root, { recursive: true, force: true })
      }
      expect(NodeCredentialLock.defaultLockDir()).toBe(Path.join(Os.homedir(), ".flyte", "flyte-auth", "locks"))
    }))

  it.effect("layerForKeyring follows the keyring in context", () =>
    Effect.gen(function*() {
      const lock = yield* CredentialLock.CredentialLock.pipe(
        Effect.provide(NodeCredentialLock.layerForKeyring.pipe(Layer.provide(Keyring.layerMemory)))
      )
      expect(lock.backend).toBe("none")
    }))
})
