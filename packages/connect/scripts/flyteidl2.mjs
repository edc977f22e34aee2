#!/usr/bin/env node
// Copies the flyteidl2 modules this package uses from `@flyteorg/flyteidl2` (which ships protoc-gen-es `.ts`
// sources, not JavaScript) into src/gen/, so that tsc compiles them with the package; src/gen/ is not committed.
// Relative `.ts` imports become `.js` (NodeNext). A file is rewritten only when its content changes, so that
// incremental builds stay incremental.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const modules = ["flyteidl2/auth/auth_service_pb.ts", "flyteidl2/auth/identity_pb.ts"]

const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const require = createRequire(path.join(pkg, "package.json"))
const idlRoot = path.dirname(require.resolve("@flyteorg/flyteidl2/package.json"))
const { version } = JSON.parse(readFileSync(path.join(idlRoot, "package.json"), "utf8"))

for (const module of modules) {
  const source = readFileSync(path.join(idlRoot, module), "utf8")
  const text = `// Copied from @flyteorg/flyteidl2@${version}/${module} by scripts/flyteidl2.mjs: do not edit.\n` +
    source.replace(/(from\s+"\.{1,2}\/[^"]+)\.ts"/g, "$1.js\"")
  const target = path.join(pkg, "src", "gen", module)
  mkdirSync(path.dirname(target), { recursive: true })
  if (!existsSync(target) || readFileSync(target, "utf8") !== text) writeFileSync(target, text)
}
