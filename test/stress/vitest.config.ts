/**
 * `pnpm test:stress`: the load and cross-process suites, apart from `npm test` (they take minutes and spawn many
 * processes). Same aliases and pool as the root config; the files run one after the other, so the load numbers
 * are not disturbed by the other suite.
 */
import * as path from "node:path"
import { defineConfig } from "vitest/config"
import root from "../../vitest.config.js"

export default defineConfig({
  ...root,
  root: path.join(__dirname, "..", ".."),
  test: {
    ...root.test,
    include: ["test/stress/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})
