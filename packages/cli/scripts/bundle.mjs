#!/usr/bin/env node
// Bundles the `flyte-auth` binary with esbuild (scripts/bundle.mjs): `dist/bin.js` plus the chunks it loads
// lazily (dist/chunks/).
//
// - `bin.js` holds only what `flyte-auth token` needs to answer from a valid cached token; everything else
//   (@effect/cli, the flows, grpc-js, the sandbox's oidc-provider) sits behind dynamic `import()`s and is split
//   into chunks that are read only when a command needs them.
// - The native keyring modules (keytar, @napi-rs/keyring) are loaded at run time by name; they are optional
//   dependencies of this package so that they resolve from `dist/`.
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { bundle, summary } from "../../../scripts/bundle.mjs"

const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")

const sizes = await bundle({
  pkg,
  entryPoints: { bin: path.join(pkg, "src", "bin.ts") },
  outdir: path.join(pkg, "dist"),
  external: ["keytar", "@napi-rs/keyring"],
  // oidc-provider names its adapter models after its classes (`Session`, `AccessToken`...): keep the names.
  esbuildOptions: { keepNames: true }
})
summary("flyte-auth", sizes, ["dist/bin.js"])
