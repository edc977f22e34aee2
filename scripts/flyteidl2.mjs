#!/usr/bin/env node
// Copies the flyteidl2 modules each package uses from `@flyteorg/flyteidl2` (which ships protoc-gen-es `.ts`
// sources, not JavaScript) into <package>/src/gen/, so that tsc compiles them with the package; src/gen/ is not
// committed. Each package resolves `@flyteorg/flyteidl2` from its own dependencies and gets the modules it lists
// plus what they import. Relative `.ts` imports become `.js` (NodeNext). A file is rewritten only when its content
// changes, so that incremental builds stay incremental.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const packages = {
  // The client: remote configuration (AuthMetadataService) and `whoami` (IdentityService).
  connect: ["flyteidl2/auth/auth_service_pb.ts", "flyteidl2/auth/identity_pb.ts"],
  // The Flyte-2-like admin: the same two services, and StateService/Watch as its server-streaming method (a small
  // import set: buf/validate, common identifiers and phases, core literals and execution errors, google.rpc.Status).
  sandbox: [
    "flyteidl2/auth/auth_service_pb.ts",
    "flyteidl2/auth/identity_pb.ts",
    "flyteidl2/workflow/state_service_pb.ts"
  ]
}

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")

for (const [name, modules] of Object.entries(packages)) {
  const pkg = path.join(root, "packages", name)
  const require = createRequire(path.join(pkg, "package.json"))
  const idlRoot = path.dirname(require.resolve("@flyteorg/flyteidl2/package.json"))
  const { version } = JSON.parse(readFileSync(path.join(idlRoot, "package.json"), "utf8"))
  const pending = [...modules]
  const copied = new Set()
  while (pending.length > 0) {
    const module = pending.pop()
    if (copied.has(module)) continue
    copied.add(module)
    const source = readFileSync(path.join(idlRoot, module), "utf8")
    for (const [, relative] of source.matchAll(/from\s+"(\.{1,2}\/[^"]+\.ts)"/g)) {
      pending.push(path.posix.normalize(path.posix.join(path.posix.dirname(module), relative)))
    }
    const text = `// Copied from @flyteorg/flyteidl2@${version}/${module} by scripts/flyteidl2.mjs: do not edit.\n` +
      source.replace(/(from\s+"\.{1,2}\/[^"]+)\.ts"/g, "$1.js\"")
    const target = path.join(pkg, "src", "gen", module)
    mkdirSync(path.dirname(target), { recursive: true })
    if (!existsSync(target) || readFileSync(target, "utf8") !== text) writeFileSync(target, text)
  }
}
