import * as path from "node:path"
import { defineConfig } from "vitest/config"

const packages = ["core", "node", "grpc", "connect", "sandbox", "cli"]

// Tests run against the TypeScript sources: `@flyte-auth/<pkg>` and `@flyte-auth/<pkg>/<Module>` resolve into src/.
const alias = packages.flatMap((name) => [
  { find: new RegExp(`^@flyte-auth/${name}$`), replacement: path.join(__dirname, "packages", name, "src", "index.ts") },
  {
    find: new RegExp(`^@flyte-auth/${name}/(.*)$`),
    replacement: path.join(__dirname, "packages", name, "src", "$1.ts")
  }
])

export default defineConfig({
  resolve: { alias },
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "test/e2e/**/*.test.ts",
      "examples/**/*.test.ts",
      "test/reliability/**/*.test.ts",
      "test/interop/**/*.test.ts"
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    sequence: { hooks: "stack" }
  }
})
