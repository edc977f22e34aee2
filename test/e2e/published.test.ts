/**
 * The published form: every package `pnpm pack`ed, installed with npm from the tarballs (plus `effect`, the same
 * version as ours) into a project outside the repository, as a user's app gets them. Its `exports` resolve and their
 * types exist, the app and our packages share one `effect`, and the examples run there against the sandbox of the
 * installed `flyte-auth` binary. Needs the npm registry for the third-party dependencies: without it the install
 * fails and so does this suite (never a skip).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  exampleOutput,
  examples,
  type ExamplesSandbox,
  requireBuild,
  root,
  runNode,
  startExamplesSandbox
} from "./helpers.js"

requireBuild()

const packages = ["core", "node", "grpc", "connect", "cli", "sandbox"] as const

const readJson = (file: string) => JSON.parse(Fs.readFileSync(file, "utf8"))
const manifest = (name: string) => readJson(Path.join(root, "packages", name, "package.json"))

/** The repository's pnpm, located as `scripts/run.mjs` does: `pnpm` of the pinned version, else `.tools/`'s. */
const pnpm = (): string => {
  const version = readJson(Path.join(root, "package.json")).packageManager.split("@")[1]
  for (const candidate of ["pnpm", Path.join(root, ".tools", "node_modules", ".bin", "pnpm")]) {
    const result = spawnSync(candidate, ["--version"], { encoding: "utf8" })
    if (result.status === 0 && result.stdout.trim() === version) return candidate
  }
  throw new Error(`pnpm ${version} not found (on PATH or in .tools/): run \`npm test\` once, which installs it`)
}

/** Runs a command to completion; a failure throws with its output. */
const run = (cmd: string, args: ReadonlyArray<string>, cwd: string, timeout = 150_000) => {
  const result = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout, env: process.env })
  if (result.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${result.status ?? result.signal ?? result.error?.message}):\n` +
        `${result.stdout}\n${result.stderr}`
    )
  }
  return result.stdout
}

/** `run` without blocking the test worker (vitest's RPC times out under a minute of `spawnSync`). */
const runAsync = (cmd: string, args: ReadonlyArray<string>, cwd: string, timeout: number) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: process.env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else {reject(
          new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal}; the npm registry unreachable?):\n${output}`)
        )}
    })
  })

/** Runs an ES module in the app's directory (so it resolves through the app's node_modules); answers stdout. */
const runApp = (app: string, file: string, code: string) => {
  Fs.writeFileSync(Path.join(app, file), code)
  return run(process.execPath, [file], app, 30_000)
}

describe("the published packages, installed from their tarballs (built)", () => {
  let work: string
  let app: string
  const tarballs: Record<string, string> = {}

  beforeAll(async () => {
    work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-published-"))
    const packed = Path.join(work, "tarballs")
    app = Path.join(work, "app")
    Fs.mkdirSync(packed)
    Fs.mkdirSync(app)
    const pnpmBin = pnpm()
    for (const name of packages) {
      const before = new Set(Fs.readdirSync(packed))
      run(pnpmBin, ["pack", "--pack-destination", packed], Path.join(root, "packages", name), 60_000)
      const added = Fs.readdirSync(packed).filter((file) => !before.has(file))
      expect(added, `pnpm pack of ${name}`).toHaveLength(1)
      tarballs[name] = Path.join(packed, added[0])
    }
    // The examples' dependencies, our packages as tarballs; every package of ours is a direct dependency, so npm
    // satisfies the packages' dependencies on each other (`0.1.0`) with them, never with the registry.
    const dependencies: Record<string, string> = {
      ...readJson(Path.join(root, "examples", "package.json")).dependencies
    }
    for (const name of packages) dependencies[`@flyte-auth/${name}`] = `file:${tarballs[name]}`
    dependencies.effect = manifest("core").dependencies.effect
    Fs.writeFileSync(
      Path.join(app, "package.json"),
      JSON.stringify({ name: "published-app", private: true, type: "module", dependencies }, null, 2)
    )
    await runAsync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], app, 170_000)
    for (const name of examples) {
      Fs.copyFileSync(Path.join(root, "examples", "dist", `${name}.js`), Path.join(app, `${name}.js`))
    }
  }, 200_000)
  afterAll(() => {
    if (work !== undefined) Fs.rmSync(work, { recursive: true, force: true })
  })

  const installed = (name: string) => Path.join(app, "node_modules", "@flyte-auth", name)

  describe("exports", () => {
    for (const name of packages) {
      it(`@flyte-auth/${name}: the tarball has every file its exports name, and no workspace: range`, () => {
        const files = new Set(
          execFileSync("tar", ["-tzf", tarballs[name]], { encoding: "utf8" }).trim().split("\n")
            .map((file) => file.replace(/^package\//, ""))
        )
        const published = readJson(Path.join(installed(name), "package.json"))
        for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
          for (const [dependency, range] of Object.entries(published[field] ?? {})) {
            expect(range, `${field}.${dependency}`).not.toMatch(/^workspace:/)
          }
        }
        // Each public module (dist/*.js, not a `bin`) is reached by the "./*" pattern: its declaration must be
        // there too.
        const bins = new Set(Object.values(published.bin ?? {}).map((file) => String(file).replace(/^\.\//, "")))
        const modules = [...files].filter((file) => /^dist\/[^/]+\.js$/.test(file) && !bins.has(file))
          .map((file) => file.slice(5, -3))
        expect(modules).toContain("index")
        for (const module of modules) expect(files.has(`dist/${module}.d.ts`), `dist/${module}.d.ts`).toBe(true)
        for (const [subpath, target] of Object.entries(published.exports as Record<string, unknown>)) {
          if (subpath.includes("*") || typeof target === "string") continue
          const { default: js, types } = target as { default: string; types: string }
          expect(files.has(js.slice(2)), `${subpath} → ${js}`).toBe(true)
          expect(files.has(types.slice(2)), `${subpath} types → ${types}`).toBe(true)
        }
      })

      it(`@flyte-auth/${name}: every entry imports in a fresh process of the app`, () => {
        const published = readJson(Path.join(installed(name), "package.json"))
        const modules = Fs.readdirSync(Path.join(installed(name), "dist"))
          .filter((file) => file.endsWith(".js") && file !== "index.js" && file !== "bin.js")
          .map((file) => `@flyte-auth/${name}/${file.slice(0, -3)}`)
        const specifiers = [
          `@flyte-auth/${name}`,
          ...Object.keys(published.exports).filter((subpath) =>
            subpath !== "." && !subpath.includes("*") && !subpath.endsWith(".json")
          )
            .map((subpath) => `@flyte-auth/${name}/${subpath.slice(2)}`),
          ...modules
        ]
        const printed = runApp(
          app,
          `import-${name}.mjs`,
          `const specifiers = ${JSON.stringify(specifiers)}\n` +
            `const out = []\n` +
            `for (const s of specifiers) {\n` +
            `  const url = import.meta.resolve(s)\n` +
            `  const m = await import(s)\n` +
            `  out.push([s, url, Object.keys(m).length])\n` +
            `}\n` +
            `process.stdout.write(JSON.stringify(out))\n`
        )
        const answers = JSON.parse(printed) as Array<[string, string, number]>
        expect(answers.map(([s]) => s)).toEqual(specifiers)
        for (const [specifier, url, exported] of answers) {
          // Resolved inside the installed package, not the repository.
          expect(url, specifier).toContain(`file://${installed(name)}/`)
          expect(exported, `${specifier} exports nothing`).toBeGreaterThan(0)
        }
      })
    }

    it("the types resolve for an app compiled with moduleResolution nodenext", () => {
      Fs.writeFileSync(
        Path.join(app, "types-check.ts"),
        `import { Authenticator } from "@flyte-auth/core"\n` +
          `import * as Credentials from "@flyte-auth/core/Credentials"\n` +
          `import { AuthLayer } from "@flyte-auth/node"\n` +
          `import { createAuthClient, type AuthClient } from "@flyte-auth/node/client"\n` +
          `import { GrpcAuth } from "@flyte-auth/grpc"\n` +
          `import * as Connect from "@flyte-auth/connect"\n` +
          `import { startSandbox } from "@flyte-auth/sandbox"\n` +
          `import * as Effect from "effect/Effect"\n` +
          `export const token: Effect.Effect<unknown, unknown, Authenticator.Authenticator> =\n` +
          `  Effect.flatMap(Authenticator.Authenticator, (a) => a.accessToken)\n` +
          `export const parts = [Credentials, AuthLayer.layer, GrpcAuth.interceptor, Connect, startSandbox] as const\n` +
          `export const client: Promise<AuthClient> = createAuthClient({ endpoint: "dns:///x:443" })\n` +
          `// @ts-expect-error a wrong option must not type-check: the types are real, not any\n` +
          `createAuthClient({ endpoint: 42 })\n`
      )
      Fs.writeFileSync(
        Path.join(app, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            module: "nodenext",
            moduleResolution: "nodenext",
            target: "es2022",
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: []
          },
          files: ["types-check.ts"]
        })
      )
      run(process.execPath, [Path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app)
    })
  })

  describe("one effect", () => {
    it("the app, @flyte-auth/core and @flyte-auth/node resolve the same effect, the only copy installed", () => {
      const copies: Array<string> = []
      const walk = (dir: string) => {
        for (const entry of Fs.readdirSync(dir, { withFileTypes: true })) {
          if (!entry.isDirectory()) continue
          const full = Path.join(dir, entry.name)
          if (entry.name === "effect" && Path.basename(dir) === "node_modules") copies.push(full)
          if (entry.name === "node_modules" || entry.name.startsWith("@") || Path.basename(dir) === "node_modules") {
            walk(full)
          }
        }
      }
      walk(Path.join(app, "node_modules"))
      expect(copies).toEqual([Path.join(app, "node_modules", "effect")])

      const printed = runApp(
        app,
        "resolve-effect.mjs",
        `import { createRequire } from "node:module"\n` +
          `const from = (dir) => createRequire(dir + "/package.json").resolve("effect/package.json")\n` +
          `process.stdout.write(JSON.stringify([\n` +
          `  createRequire(import.meta.url).resolve("effect/package.json"),\n` +
          `  ${packages.map((name) => `from(${JSON.stringify(installed(name))})`).join(", ")}\n` +
          `]))\n`
      )
      const resolved = JSON.parse(printed) as Array<string>
      expect(resolved).toHaveLength(packages.length + 1)
      expect(new Set(resolved)).toEqual(new Set([Path.join(app, "node_modules", "effect", "package.json")]))
    })

    it("the app's Effect, Context and Layer work with our tags and values as their own", () => {
      const printed = runApp(
        app,
        "one-effect.mjs",
        `import { Context, Effect, Layer, Redacted } from "effect"\n` +
          `import { Authenticator } from "@flyte-auth/core"\n` +
          `import { AuthLayer } from "@flyte-auth/node"\n` +
          `import { GrpcAuth } from "@flyte-auth/grpc"\n` +
          `const tagProto = Object.getPrototypeOf(Context.GenericTag("app/Tag"))\n` +
          `const layerProto = Object.getPrototypeOf(Layer.empty)\n` +
          `const ourLayer = AuthLayer.layer({ endpoint: "dns:///x.invalid:443", keyring: "memory", env: {} })\n` +
          `const fake = { accessToken: Effect.succeed(Redacted.make("app-token")) }\n` +
          `const context = Context.make(Authenticator.Authenticator, fake)\n` +
          `const viaLayer = await Effect.runPromise(Effect.provide(\n` +
          `  Effect.flatMap(Authenticator.Authenticator, (a) => a.accessToken),\n` +
          `  Layer.succeed(Authenticator.Authenticator, fake)\n` +
          `))\n` +
          `process.stdout.write(JSON.stringify({\n` +
          `  tagShared: tagProto.isPrototypeOf(Authenticator.Authenticator),\n` +
          `  layerShared: Object.getPrototypeOf(ourLayer) === layerProto && Layer.isLayer(ourLayer),\n` +
          `  isEffect: Effect.isEffect(GrpcAuth.interceptor) && Effect.isEffect(Authenticator.Authenticator),\n` +
          `  found: Context.getOption(context, Authenticator.Authenticator)._tag,\n` +
          `  same: Context.get(context, Authenticator.Authenticator) === fake,\n` +
          `  viaLayer: Redacted.value(viaLayer)\n` +
          `}))\n`
      )
      expect(JSON.parse(printed)).toEqual({
        tagShared: true,
        layerShared: true,
        isEffect: true,
        found: "Some",
        same: true,
        viaLayer: "app-token"
      })
    })
  })

  describe("the examples, against the sandbox of the installed flyte-auth", () => {
    let world: ExamplesSandbox

    beforeAll(async () => {
      world = await startExamplesSandbox(
        Path.join(installed("cli"), readJson(Path.join(installed("cli"), "package.json")).bin["flyte-auth"])
      )
    })
    afterAll(async () => {
      await world?.sandbox.stop()
      world?.home.cleanup()
    })

    const runExample = (name: string) =>
      runNode([`--env-file=${world.envFile}`, `${name}.js`], { cwd: app, env: world.home.env })

    for (const name of examples) {
      it(`${name}: does in the app what it does in the repository`, async () => {
        const result = await runExample(name)
        expect(result.code, result.stderr).toBe(0)
        expect(result.stdout).toMatch(exampleOutput(name, world.sandbox))
      })
    }
  })
})
