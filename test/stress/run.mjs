#!/usr/bin/env node
// `pnpm test:stress` (after the build): runs vitest on test/stress and writes test-results/stress-summary, one line
// "N passed, N failed, N skipped" (what .ci/run adds to the summary of `npm test`). Like scripts/run.mjs, it runs
// vitest inside a private D-Bus session with an unlocked gnome-keyring (the Secret Service) when the machine has
// them and no session was set up by the caller; REQUIRE_ALL=1 turns a skipped test into a failure.
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const results = join(root, "test-results")
const report = join(results, "stress-report.json")
const summaryFile = join(results, "stress-summary")
mkdirSync(results, { recursive: true })
rmSync(report, { force: true })

const has = (bin) => spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0
const vitest = [join(root, "node_modules", ".bin", "vitest"), "run", "--config", join(root, "test", "stress", "vitest.config.ts"),
  "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)]
const env = { ...process.env }
const ownSession = !env.FLYTE_AUTH_TEST_SECRET_SERVICE && has("dbus-run-session") && has("gnome-keyring-daemon")
if (ownSession) env.FLYTE_AUTH_TEST_SECRET_SERVICE = "1"
if (!env.FLYTE_AUTH_TEST_SECRET_SERVICE) {
  console.error("\n!!! NOT RUN: the Secret Service stress suite needs dbus-run-session and gnome-keyring-daemon !!!")
}
const started = Date.now()
const result = ownSession
  ? spawnSync("dbus-run-session", ["--", "sh", join(root, "scripts", "with-keyring.sh"), ...vitest], { cwd: root, stdio: "inherit", env })
  : spawnSync(vitest[0], vitest.slice(1), { cwd: root, stdio: "inherit", env })

let summary = "0 passed, 1 failed, 0 skipped"
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, "utf8"))
  const failedFiles = json.testResults.filter((r) => r.status === "failed" && r.assertionResults.length === 0).length
  summary = `${json.numPassedTests} passed, ${json.numFailedTests + failedFiles} failed, ${json.numPendingTests + json.numTodoTests} skipped`
}
writeFileSync(summaryFile, summary + "\n")
console.log(`stress: ${summary} in ${Math.round((Date.now() - started) / 1000)} s`)
const skipped = !/ 0 skipped/.test(summary)
if (process.env.REQUIRE_ALL === "1" && skipped) console.error("REQUIRE_ALL=1: skipped stress tests count as not run; failing.")
const failed = result.status !== 0 || !/ 0 failed/.test(summary) || summary.startsWith("0 passed") ||
  (process.env.REQUIRE_ALL === "1" && skipped)
process.exit(failed ? (result.status || 1) : 0)
