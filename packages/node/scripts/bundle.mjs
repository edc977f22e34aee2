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
// External, loaded at run time by name: the native keyring modules (optional dependencies of this package).
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { bundle, summary } from "../../../scripts/bundle.mjs"

const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")

const sizes = await bundle({
  pkg,
  entryPoints: { client: path.join(pkg, "src", "client.ts") },
  outdir: path.join(pkg, "dist", "bundle"),
  external: ["keytar", "@napi-rs/keyring"],
  sourcemap: true
})
summary("@flyte-auth/node/client", sizes, ["dist/bundle/client.js"])
