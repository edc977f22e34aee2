#!/usr/bin/env node
// Bundles `@flyte-auth/node/client`, the Promise facade, with esbuild (scripts/bundle.mjs): `dist/bundle/client.js`
// plus the chunks it loads on demand (dist/bundle/chunks/); its types are tsc's `dist/client.d.ts`.
//
// A fresh process spends most of its first token resolving, reading and compiling modules (700-odd files through
// the package entry: effect, fast-check under effect/Schema, undici, @effect/platform), so the facade inlines
// what it uses of them, tree-shaken, in a few files. What a configuration may not need stays behind the dynamic
// `import()`s of the sources and becomes lazy chunks: undici and the HTTP client (the first HTTP call), grpc-js
// and the protos (a gRPC metadata fetch), connect-node (Flyte 2), yaml (a config file to parse).
//
// The Effect API (`@flyte-auth/node`, `@flyte-auth/node/AuthLayer`...) is not bundled: an Effect app shares its
// own copy of `effect` with it. The facade hands out no Effect values but `Redacted` tokens, whose registry is
// global to all copies of effect of one version.
//
// - yaml (loaded only for a config file to parse) is taken in its ES module build (the one its `exports` give
//   bundlers outside Node; the same parser, warnings through console.warn, which FlyteConfig turns off): one chunk
//   instead of 70-odd CommonJS files, and named exports (the CommonJS build, imported only dynamically, would get
//   a chunk with a default export only).
// - External, loaded at run time by name: the native keyring modules (optional dependencies of this package).
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { bundle, summary } from "../../../scripts/bundle.mjs"

const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")

const yamlEsm = path.join(
  path.dirname(createRequire(path.join(pkg, "package.json")).resolve("yaml/package.json")),
  "browser",
  "index.js"
)
const yamlPlugin = {
  name: "flyte-auth-yaml-esm",
  setup(build) {
    build.onResolve({ filter: /^yaml$/ }, () => ({ path: yamlEsm }))
  }
}

const sizes = await bundle({
  pkg,
  entryPoints: { client: path.join(pkg, "src", "client.ts") },
  outdir: path.join(pkg, "dist", "bundle"),
  external: ["keytar", "@napi-rs/keyring"],
  sourcemap: true,
  plugins: [yamlPlugin]
})
summary("@flyte-auth/node/client", sizes, ["dist/bundle/client.js"])
