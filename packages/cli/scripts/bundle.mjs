#!/usr/bin/env node
// Bundles the `flyte-auth` binary with esbuild: `dist/bin.js` plus the chunks it loads lazily (dist/chunks/).
//
// - Sources are bundled from the workspace packages' `src/` through the root tsconfig's `paths`, so the bundle
//   does not depend on what `tsc -b` left in the other packages' `dist/`.
// - `bin.js` holds only what `flyte-auth token` needs to answer from a valid cached token; everything else
//   (@effect/cli, the flows, grpc-js, the sandbox's oidc-provider) sits behind dynamic `import()`s and is split
//   into chunks that are read only when a command needs them.
// - Workspace modules that find files next to themselves through `import.meta.url` (the flyteidl protos of
//   @flyte-auth/grpc and @flyte-auth/sandbox) keep resolving from their own package directory: their
//   `import.meta.url` is rewritten to the module's original location, relative to the bundle file.
// - The native keyring modules (keytar, @napi-rs/keyring) are loaded at run time by name; they are optional
//   dependencies of this package so that they resolve from `dist/`.
import * as esbuild from "esbuild"
import { rmSync } from "node:fs"
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.join(here, "..")
const root = path.join(pkg, "..", "..")
const outdir = path.join(pkg, "dist")
const packagesDir = path.join(root, "packages")

/** Rewrites `import.meta.url` in workspace sources to the URL of the original file, relative to the output file. */
const moduleUrlPlugin = {
  name: "flyte-auth-module-url",
  setup(build) {
    build.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8")
      if (!source.includes("import.meta.url") || args.path.startsWith(path.join(pkg, "src"))) {
        return { contents: source, loader: "ts" }
      }
      // Output files live in dist/ (bin.js) and dist/chunks/; the helper resolves against the one it is in.
      const relative = path.relative(packagesDir, args.path).split(path.sep).join("/")
      return {
        contents: source.replaceAll("import.meta.url", `__flyteAuthModuleUrl(${JSON.stringify(relative)})`),
        loader: "ts"
      }
    })
  }
}

rmSync(path.join(outdir, "chunks"), { recursive: true, force: true })

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { bin: path.join(pkg, "src", "bin.ts") },
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  target: "node20",
  format: "esm",
  tsconfig: path.join(root, "tsconfig.json"),
  mainFields: ["module", "main"],
  conditions: ["module"],
  external: ["keytar", "@napi-rs/keyring"],
  minifySyntax: true,
  // oidc-provider names its adapter models after its classes (`Session`, `AccessToken`...): keep the names.
  keepNames: true,
  minifyWhitespace: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  logOverride: { "unsupported-dynamic-import": "silent", "empty-import-meta": "silent" },
  banner: {
    js: [
      "import { createRequire as __flyteAuthCreateRequire } from \"node:module\";",
      "const require = __flyteAuthCreateRequire(import.meta.url);",
      // Every output file sits in dist/ or dist/chunks/: find packages/ from here.
      "const __flyteAuthModuleUrl = (p) => new URL((import.meta.url.includes(\"/dist/chunks/\") ? \"../../../\" :" +
      " \"../../\") + p, import.meta.url).href;"
    ].join("\n")
  },
  plugins: [moduleUrlPlugin]
})

const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith(".js"))
  .map(([file, output]) => [path.relative(pkg, path.join(root, file)), output.bytes])
const total = sizes.reduce((sum, [, bytes]) => sum + bytes, 0)
const binBytes = sizes.find(([file]) => file === "dist/bin.js")?.[1] ?? 0
console.error(
  `flyte-auth bundle: dist/bin.js ${(binBytes / 1024).toFixed(0)} KiB, ${sizes.length - 1} lazy chunks, ` +
    `${(total / 1024).toFixed(0)} KiB in all`
)
