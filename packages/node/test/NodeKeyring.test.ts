import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Keyring } from "@flyte-auth/core"
import { NodeKeyring } from "@flyte-auth/node"
import type { LogLevel } from "effect"
import { ConfigProvider, Effect, Layer, Logger, Option } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"

const nodePackage = Path.join(__dirname, "..")
const requireFromPackage = createRequire(Path.join(nodePackage, "package.json"))

/** Collects the log lines at Warning and above (and everything else, tagged with its level). */
const captureLogs = () => {
  const lines: Array<{ level: LogLevel.LogLevel; message: string }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push({ level: logLevel, message: (Array.isArray(message) ? message : [message]).map(String).join(" ") })
  })
  return {
    layer: Logger.replace(Logger.defaultLogger, logger),
    warnings: () => lines.filter((line) => line.level._tag === "Warning").map((line) => line.message)
  }
}

/** Runs a Node ES module in another process and returns its stdout (it fails if the script exits non-zero). */
const runNode = (script: string, args: ReadonlyArray<string> = [], timeout = 15_000) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-child-"))
  const file = Path.join(dir, "child.mjs")
  Fs.writeFileSync(file, script)
  return Effect.async<string, Error>((resume) => {
    const child = execFile(
      process.execPath,
      [file, ...args],
      { timeout, env: process.env },
      (error, stdout, stderr) => {
        Fs.rmSync(dir, { recursive: true, force: true })
        if (error) resume(Effect.fail(new Error(`${error.message}\n${stderr}`)))
        else resume(Effect.succeed(stdout.trim()))
      }
    )
    return Effect.sync(() => child.kill())
  })
}

/** The fields to compare (a failed match on the whole error would print its native cause). */
const describeError = (error: { _tag: string; reason: string; backend: string }) => ({
  _tag: error._tag,
  reason: error.reason,
  backend: error.backend
})

const withKeyring = <A, E>(
  layer: Layer.Layer<Keyring.Keyring>,
  f: (keyring: Keyring.Keyring.Service) => Effect.Effect<A, E>
) => Effect.flatMap(Keyring.Keyring, f).pipe(Effect.provide(layer))

// -----------------------------------------------------------------------------------------------------------------
// The Secret Service, on a D-Bus session and gnome-keyring of its own (so that locking the collection here does not
// disturb other suites), started by the test and stopped at the end.
// -----------------------------------------------------------------------------------------------------------------

const dbusSend = (address: string, args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) =>
    execFile(
      "dbus-send",
      ["--session", "--print-reply", ...args],
      { env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: address }, timeout: 5_000 },
      (error, stdout, stderr) => error ? reject(new Error(`${error.message} ${stderr}`)) : resolve(stdout)
    )
  )

const startSecretService = async () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-bus-"))
  const socket = Path.join(dir, "bus")
  // No service directories: nothing is D-Bus-activated behind our back, the only Secret Service is ours.
  Fs.writeFileSync(
    Path.join(dir, "session.conf"),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>`
  )
  const processes: Array<ChildProcess> = []
  const daemon = spawn("dbus-daemon", [
    "--nofork",
    "--print-address=1",
    `--config-file=${Path.join(dir, "session.conf")}`
  ], {
    stdio: ["ignore", "pipe", "ignore"]
  })
  processes.push(daemon)
  const address = await new Promise<string>((resolve, reject) => {
    daemon.once("error", reject)
    daemon.stdout!.once("data", (data: Buffer) => resolve(data.toString().trim()))
  })
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DBUS_SESSION_BUS_ADDRESS: address,
    XDG_DATA_HOME: dir,
    XDG_RUNTIME_DIR: dir
  }
  delete env.GNOME_KEYRING_CONTROL
  const keyring = spawn(
    "gnome-keyring-daemon",
    ["--foreground", "--unlock", "--components=secrets", `--control-directory=${dir}`],
    { env, stdio: ["pipe", "ignore", "ignore"] }
  )
  processes.push(keyring)
  keyring.stdin!.end("flyte-auth-test")
  const deadline = Date.now() + 10_000
  for (;;) {
    const reply = await dbusSend(address, [
      "--dest=org.freedesktop.DBus",
      "/org/freedesktop/DBus",
      "org.freedesktop.DBus.NameHasOwner",
      "string:org.freedesktop.secrets"
    ])
    if (reply.includes("boolean true")) break
    if (Date.now() > deadline) throw new Error("gnome-keyring-daemon did not register the Secret Service")
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    address,
    lock: () =>
      dbusSend(address, [
        "--dest=org.freedesktop.secrets",
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.Lock",
        "array:objpath:/org/freedesktop/secrets/collection/login"
      ]),
    stop: () => {
      for (const child of processes.reverse()) child.kill()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

const keytarUrl = pathToFileURL(requireFromPackage.resolve("keytar")).href
const napiUrl = pathToFileURL(requireFromPackage.resolve("@napi-rs/keyring")).href

/** Reads (no value argument) or writes an entry in another process, with keytar or @napi-rs/keyring directly. */
const otherProcess = {
  keytar: (service: string, account: string, value?: string) =>
    runNode(
      `const keytar = (await import(${JSON.stringify(keytarUrl)})).default
const [service, account, value] = process.argv.slice(2)
if (value === undefined) console.log(JSON.stringify(await keytar.getPassword(service, account)))
else await keytar.setPassword(service, account, value)`,
      value === undefined ? [service, account] : [service, account, value]
    ),
  napi: (service: string, account: string, value?: string) =>
    runNode(
      `const napi = await import(${JSON.stringify(napiUrl)})
const AsyncEntry = napi.AsyncEntry ?? napi.default.AsyncEntry
const [service, account, value] = process.argv.slice(2)
const entry = new AsyncEntry(service, account, { linux: { store: "secret-service" } })
if (value === undefined) console.log(JSON.stringify(await entry.getPassword()))
else await entry.setPassword(value)`,
      value === undefined ? [service, account] : [service, account, value]
    )
}

describe.skipIf(!process.env.FLYTE_AUTH_TEST_SECRET_SERVICE)("NodeKeyring on the Secret Service", () => {
  let secretService: Awaited<ReturnType<typeof startSecretService>>
  const previousAddress = process.env.DBUS_SESSION_BUS_ADDRESS

  beforeAll(async () => {
    secretService = await startSecretService()
    // Set before the first D-Bus connection of this process (libdbus reads it once).
    process.env.DBUS_SESSION_BUS_ADDRESS = secretService.address
  })
  afterAll(() => {
    secretService?.stop()
    process.env.DBUS_SESSION_BUS_ADDRESS = previousAddress
  })

  for (const [name, layer] of [["keytar", NodeKeyring.layerKeytar], ["napi", NodeKeyring.layerNapi]] as const) {
    it.live(`${name}: stores, replaces and deletes an entry, and another process sees it`, () =>
      withKeyring(layer, (keyring) =>
        Effect.gen(function*() {
          expect(keyring.backend).toBe(name)
          const account = `https://flyte.example.com/${name}`
          expect(yield* keyring.get(Keyring.serviceName, account)).toEqual(Option.none())

          yield* keyring.set(Keyring.serviceName, account, "{\"accessToken\":\"first\"}")
          yield* keyring.set(Keyring.serviceName, account, "{\"accessToken\":\"second\"}")
          expect(yield* keyring.get(Keyring.serviceName, account)).toEqual(Option.some("{\"accessToken\":\"second\"}"))
          // A second process (plain Node, the native module used directly) reads what this one stored...
          expect(JSON.parse(yield* otherProcess[name](Keyring.serviceName, account))).toBe(
            "{\"accessToken\":\"second\"}"
          )
          // ...and what it stores is read here.
          yield* otherProcess[name](Keyring.serviceName, account, "from another process")
          expect(yield* keyring.get(Keyring.serviceName, account)).toEqual(Option.some("from another process"))

          yield* keyring.delete(Keyring.serviceName, account)
          expect(yield* keyring.get(Keyring.serviceName, account)).toEqual(Option.none())
          expect(JSON.parse(yield* otherProcess[name](Keyring.serviceName, account))).toBeNull()
          // Deleting what is not there is not an error.
          yield* keyring.delete(Keyring.serviceName, account)
        })))
  }

  for (const [name, layer] of [["keytar", NodeKeyring.layerKeytar], ["napi", NodeKeyring.layerNapi]] as const) {
    it.live(`${name}: lists the accounts of a service, including what another process stored`, () =>
      withKeyring(layer, (keyring) =>
        Effect.gen(function*() {
          const service = `flyte-auth-accounts-${name}`
          expect(yield* keyring.accounts(service)).toEqual([])
          yield* keyring.set(service, "flyte.example.com:443#a", "1")
          yield* keyring.set(service, "flyte.example.com:443#", "2")
          yield* otherProcess[name](service, "other.example.com:443#b", "3")
          yield* keyring.set(`${service}-other`, "not-listed", "4")
          expect([...(yield* keyring.accounts(service))].sort()).toEqual([
            "flyte.example.com:443#",
            "flyte.example.com:443#a",
            "other.example.com:443#b"
          ])
          for (const account of yield* keyring.accounts(service)) yield* keyring.delete(service, account)
          yield* keyring.delete(`${service}-other`, "not-listed")
          expect(yield* keyring.accounts(service)).toEqual([])
        })))
  }

  it.live("layerAuto picks keytar when the Secret Service works, without a warning", () => {
    const logs = captureLogs()
    return withKeyring(NodeKeyring.layerAuto, (keyring) =>
      Effect.gen(function*() {
        expect(keyring.backend).toBe("keytar")
        yield* keyring.set(Keyring.serviceName, "auto", "value")
        expect(JSON.parse(yield* otherProcess.keytar(Keyring.serviceName, "auto"))).toBe("value")
        yield* keyring.delete(Keyring.serviceName, "auto")
        expect(logs.warnings()).toEqual([])
      })).pipe(Effect.provide(logs.layer))
  })

  // Last: it leaves the collection locked.
  it.live("a locked collection is reported as Locked", () =>
    Effect.gen(function*() {
      yield* withKeyring(NodeKeyring.layerNapi, (k) => k.set("flyte-auth", "locked", "stored before locking"))
      yield* Effect.promise(() => secretService.lock())
      const keytar = yield* withKeyring(NodeKeyring.layerKeytar, (k) => Effect.flip(k.set("flyte-auth", "locked", "x")))
      expect(describeError(keytar)).toEqual({ _tag: "KeyringError", reason: "Locked", backend: "keytar" })
      const napiSet = yield* withKeyring(NodeKeyring.layerNapi, (k) => Effect.flip(k.set("flyte-auth", "locked", "x")))
      expect(describeError(napiSet)).toEqual({ _tag: "KeyringError", reason: "Locked", backend: "napi" })
      const napiGet = yield* withKeyring(NodeKeyring.layerNapi, (k) => Effect.flip(k.get("flyte-auth", "locked")))
      expect(describeError(napiGet)).toEqual({ _tag: "KeyringError", reason: "Locked", backend: "napi" })
    }))
})

// -----------------------------------------------------------------------------------------------------------------
// The plain-file store
// -----------------------------------------------------------------------------------------------------------------

const tempDir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-files-"))
const modeOf = (path: string) => Fs.statSync(path).mode & 0o777

describe("NodeKeyring.layerFile", () => {
  it.live("creates a 0700 directory and 0600 files, and says once that the secrets are in plain files", () => {
    const root = tempDir()
    const dir = Path.join(root, "nested", "credentials")
    const logs = captureLogs()
    return withKeyring(NodeKeyring.layerFile(dir), (keyring) =>
      Effect.gen(function*() {
        expect(keyring.backend).toBe("file")
        expect(Fs.existsSync(dir)).toBe(false)
        expect(yield* keyring.get("flyte-auth", "https://a")).toEqual(Option.none())
        expect(Fs.existsSync(dir)).toBe(false) // reading creates nothing
        yield* keyring.set("flyte-auth", "https://a", "secret-a")
        yield* keyring.set("flyte-auth", "https://b", "secret-b")
        expect(modeOf(dir)).toBe(0o700)
        const files = Fs.readdirSync(dir).sort()
        expect(files).toEqual(
          [NodeKeyring.fileNameFor("flyte-auth", "https://a"), NodeKeyring.fileNameFor("flyte-auth", "https://b")]
            .sort()
        )
        for (const file of files) expect(modeOf(Path.join(dir, file))).toBe(0o600)
        expect(files.join()).not.toContain("https") // the endpoint does not show in the listing
        expect(yield* keyring.get("flyte-auth", "https://a")).toEqual(Option.some("secret-a"))
        yield* keyring.delete("flyte-auth", "https://a")
        yield* keyring.delete("flyte-auth", "https://a")
        expect(yield* keyring.get("flyte-auth", "https://a")).toEqual(Option.none())
        expect(Fs.readdirSync(dir)).toEqual([NodeKeyring.fileNameFor("flyte-auth", "https://b")])
        const warnings = logs.warnings()
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toContain("plain files")
        expect(warnings.join()).not.toContain("secret-")
      })).pipe(Effect.provide(logs.layer), Effect.ensuring(Effect.sync(() => Fs.rmSync(root, { recursive: true }))))
  })

  it.live("lists the accounts of a service, skipping temporary, foreign and corrupt files", () => {
    const dir = tempDir()
    return withKeyring(NodeKeyring.layerFile(dir), (keyring) =>
      Effect.gen(function*() {
        expect(yield* keyring.accounts(Keyring.serviceName)).toEqual([])
        yield* keyring.set(Keyring.serviceName, "flyte.example.com:443#a", "1")
        yield* keyring.set(Keyring.serviceName, "flyte.example.com:443", "2")
        yield* keyring.set("another-service", "x", "3")
        Fs.writeFileSync(Path.join(dir, "0123456789012345678901234567890123456789.json"), "not json", { mode: 0o600 })
        // A file whose name is not the hash of the service and account it claims is not listed.
        Fs.writeFileSync(
          Path.join(dir, "abcdefabcdefabcdefabcdefabcdefabcdefabcd.json"),
          JSON.stringify({ service: Keyring.serviceName, account: "forged", value: "v" }),
          { mode: 0o600 }
        )
        Fs.writeFileSync(Path.join(dir, ".tmp.json"), "{}", { mode: 0o600 })
        expect([...(yield* keyring.accounts(Keyring.serviceName))].sort()).toEqual([
          "flyte.example.com:443",
          "flyte.example.com:443#a"
        ])
        yield* keyring.delete(Keyring.serviceName, "flyte.example.com:443")
        expect(yield* keyring.accounts(Keyring.serviceName)).toEqual(["flyte.example.com:443#a"])
      })).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))))
  })

  it.live("tightens a too-open directory and file, with a warning", () => {
    const dir = tempDir()
    const logs = captureLogs()
    return withKeyring(NodeKeyring.layerFile(dir), (keyring) =>
      Effect.gen(function*() {
        Fs.chmodSync(dir, 0o755)
        yield* keyring.set("flyte-auth", "e", "v")
        expect(modeOf(dir)).toBe(0o700)
        const file = Path.join(dir, NodeKeyring.fileNameFor("flyte-auth", "e"))
        Fs.chmodSync(file, 0o644)
        expect(yield* keyring.get("flyte-auth", "e")).toEqual(Option.some("v"))
        expect(modeOf(file)).toBe(0o600)
        const warnings = logs.warnings().filter((w) => w.includes("had mode"))
        expect(warnings).toEqual([
          `flyte-auth: ${dir} had mode 755; setting it to 700`,
          `flyte-auth: ${file} had mode 644; setting it to 600`
        ])
      })).pipe(Effect.provide(logs.layer), Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true }))))
  })

  it.live("reports a corrupt file and reads it as absent; the next write replaces it", () => {
    const dir = tempDir()
    const logs = captureLogs()
    return withKeyring(NodeKeyring.layerFile(dir), (keyring) =>
      Effect.gen(function*() {
        Fs.chmodSync(dir, 0o700)
        const file = Path.join(dir, NodeKeyring.fileNameFor("flyte-auth", "e"))
        Fs.writeFileSync(file, "{\"service\":\"flyte-auth\",\"acc", { mode: 0o600 })
        expect(yield* keyring.get("flyte-auth", "e")).toEqual(Option.none())
        // Read again (as a command does under the credential lock): reported once.
        expect(yield* keyring.get("flyte-auth", "e")).toEqual(Option.none())
        expect(logs.warnings().filter((w) => w.includes("corrupt"))).toEqual([
          `flyte-auth: ignoring the corrupt credentials file ${file}`
        ])
        yield* keyring.set("flyte-auth", "e", "fresh")
        expect(yield* keyring.get("flyte-auth", "e")).toEqual(Option.some("fresh"))
      })).pipe(Effect.provide(logs.layer), Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true }))))
  })

  it.live(
    "replaces files atomically: a reader in another process never sees a partial file, no temp file stays",
    () => {
      const dir = tempDir()
      const file = Path.join(dir, NodeKeyring.fileNameFor("flyte-auth", "big"))
      const values = ["a".repeat(2_000_000), "b".repeat(1_000_000)]
      return withKeyring(NodeKeyring.layerFile(dir), (keyring) =>
        Effect.gen(function*() {
          yield* keyring.set("flyte-auth", "big", values[0])
          // The reader reads the file as fast as it can until told to stop, and counts what it could not parse.
          const reader = runNode(
            `import * as fs from "node:fs"
const [file, stop] = process.argv.slice(2)
let reads = 0, partial = 0, values = new Set()
while (!fs.existsSync(stop)) {
  const text = fs.readFileSync(file, "utf8")
  reads++
  try { values.add(JSON.parse(text).value.length) } catch { partial++ }
}
console.log(JSON.stringify({ reads, partial, values: [...values] }))`,
            [file, Path.join(dir, "stop")]
          )
          const fiber = yield* Effect.fork(reader)
          for (let i = 0; i < 40; i++) yield* keyring.set("flyte-auth", "big", values[i % 2])
          Fs.writeFileSync(Path.join(dir, "stop"), "")
          const result = JSON.parse(yield* fiber.await.pipe(Effect.flatten)) as {
            reads: number
            partial: number
            values: Array<number>
          }
          expect(result.partial).toBe(0)
          expect(result.reads).toBeGreaterThan(10)
          expect(result.values.sort()).toEqual([1_000_000, 2_000_000])
          expect(Fs.readdirSync(dir).sort()).toEqual([Path.basename(file), "stop"].sort())
        })).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true }))))
    },
    30_000
  )

  it.live("is read and written across processes, and follows FLYTE_AUTH_CREDENTIALS_DIR", () => {
    const dir = tempDir()
    const layer = NodeKeyring.layerFile().pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["FLYTE_AUTH_CREDENTIALS_DIR", dir]]))))
    )
    const file = Path.join(dir, NodeKeyring.fileNameFor("flyte-auth", "https://x"))
    return Effect.gen(function*() {
      yield* withKeyring(layer, (keyring) => keyring.set("flyte-auth", "https://x", "written here"))
      const seen = yield* runNode(
        `import * as fs from "node:fs"
const entry = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
console.log(entry.value)
fs.writeFileSync(process.argv[2] + ".tmp", JSON.stringify({ ...entry, value: "written there" }), { mode: 0o600 })
fs.renameSync(process.argv[2] + ".tmp", process.argv[2])`,
        [file]
      )
      expect(seen).toBe("written here")
      // A fresh store (no state shared with the first) reads what the other process wrote.
      expect(yield* withKeyring(layer, (keyring) => keyring.get("flyte-auth", "https://x"))).toEqual(
        Option.some("written there")
      )
    }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true }))))
  })
})

describe("NodeKeyring.layerFromName", () => {
  it.effect("maps every backend name to its layer", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const backends: Array<string> = []
      for (const name of ["keytar", "napi", "file", "memory", "none"] as const) {
        backends.push(
          yield* withKeyring(NodeKeyring.layerFromName(name, { fileDir: dir }), (k) => Effect.succeed(k.backend))
        )
      }
      expect(backends).toEqual(["keytar", "napi", "file", "memory", "none"])
      expect(NodeKeyring.backendNames).toEqual(["auto", "keytar", "napi", "file", "memory", "none"])
      expect(NodeKeyring.isBackendName("napi")).toBe(true)
      expect(NodeKeyring.isBackendName("kwallet")).toBe(false)
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))
})
