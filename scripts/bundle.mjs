// The esbuild setup shared by the published bundles (the `flyte-auth` binary, `@flyte-auth/node/client`): ESM for
// Node 20 from the workspace packages' `src/` (through the root tsconfig's `paths`, so a bundle does not depend on
// what `tsc -b` left in the other packages' `dist/`), split into an entry plus chunks that dynamic `import()`s
// load on demand.
//
// - Workspace modules that find files next to themselves through `import.meta.url` (the flyteidl protos of
//   @flyte-auth/grpc and @flyte-auth/sandbox) keep resolving from their own package directory: their
//   `import.meta.url` is rewritten to the module's original location, relative to the output file (entries sit in
//   `outdir`, chunks in `outdir/chunks/`).
// - CommonJS dependencies that are bundled get a `require` (createRequire of the output file).
// - A CommonJS package that the sources only `import()` gets a chunk whose one export is `default` (its
//   `module.exports`): take `.default` when present (FlyteConfig's yaml), or import it statically from a module that
//   is itself imported on demand (packages/node/src/internal/undici.ts).
import * as esbuild from "esbuild"
import { rmSync } from "node:fs"
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const packagesDir = path.join(root, "packages")

/** Rewrites `import.meta.url` in workspace sources (but `own`'s) to the URL of the original file. */
const moduleUrlPlugin = (own) => ({
  name: "flyte-auth-module-url",
  setup(build) {
    build.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8")
      if (!source.includes("import.meta.url") || args.path.startsWith(own)) return { contents: source, loader: "ts" }
      const relative = path.relative(packagesDir, args.path).split(path.sep).join("/")
      return {
        contents: source.replaceAll("import.meta.url", `__flyteAuthModuleUrl(${JSON.stringify(relative)})`),
        loader: "ts"
      }
    })
  }
})

/**
 * Bundles `entryPoints` (name → source) of the package in `pkg` into `outdir` (chunks in `outdir/chunks/`, which is
 * emptied first); `external` names what is loaded at run time by name. Answers the sizes of the output files,
 * relative to `pkg`.
 */
export const bundle = async ({ pkg, entryPoints, outdir, external = [], sourcemap = false, esbuildOptions = {} }) => {
  rmSync(path.join(outdir, "chunks"), { recursive: true, force: true })
  // From an entry (in outdir) and from a chunk (one level deeper) to packages/.
  const up = path.relative(outdir, packagesDir).split(path.sep).join("/") + "/"
  const chunkDir = `/${path.relative(pkg, outdir).split(path.sep).join("/")}/chunks/`
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints,
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
    external,
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: "none",
    sourcemap,
    metafile: true,
    logLevel: "warning",
    logOverride: { "unsupported-dynamic-import": "silent", "empty-import-meta": "silent" },
    banner: {
      js: [
        "import { createRequire as __flyteAuthCreateRequire } from \"node:module\";",
        "const require = __flyteAuthCreateRequire(import.meta.url);",
        "const __flyteAuthModuleUrl = (p) => new URL((import.meta.url.includes(" + JSON.stringify(chunkDir) +
        ") ? " + JSON.stringify(`../${up}`) + " : " + JSON.stringify(up) + ") + p, import.meta.url).href;"
      ].join("\n")
    },
    plugins: [moduleUrlPlugin(path.join(pkg, "src"))],
    ...esbuildOptions
  })
  return Object.entries(result.metafile.outputs)
    .filter(([file]) => file.endsWith(".js"))
    .map(([file, output]) => [path.relative(pkg, path.join(root, file)), output.bytes])
}

/** One line on stderr: the entries' sizes, the number of chunks, the total. */
export const summary = (name, sizes, entries) => {
  const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`
  const total = sizes.reduce((sum, [, bytes]) => sum + bytes, 0)
  const shown = sizes.filter(([file]) => entries.includes(file))
  console.error(
    `${name} bundle: ${shown.map(([file, bytes]) => `${file} ${kib(bytes)}`).join(", ")}, ` +
      `${sizes.length - shown.length} lazy chunks, ${kib(total)} in all`
  )
}
