#!/usr/bin/env node
// The two set-up commands of the README: `npm test` and `npm run demo`.
// Each one works on a fresh machine with only Node 20 and npm: it installs pnpm (pinned) if absent,
// installs the workspace from the lockfile, builds, and then tests or runs the demo.
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const PNPM_VERSION = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager.split("@")[1]
const command = process.argv[2]
const extra = process.argv.slice(3)

const step = (title) => console.error(`\n▶ ${title}`)
const run = (cmd, args, options = {}) => {
  const result = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...options })
  if (result.status !== 0) {
    console.error(`✗ ${[cmd, ...args].join(" ")} exited with ${result.status ?? result.signal}`)
    process.exit(result.status || 1)
  }
}
const versionOf = (bin) => {
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}
const has = (bin) => spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0

function ensurePnpm() {
  if (versionOf("pnpm") === PNPM_VERSION) return "pnpm"
  const local = join(root, ".tools", "node_modules", ".bin", "pnpm")
  if (versionOf(local) !== PNPM_VERSION) {
    step(`installing pnpm ${PNPM_VERSION} into .tools/`)
    run("npm", ["install", "--prefix", join(root, ".tools"), "--no-save", "--no-package-lock", `pnpm@${PNPM_VERSION}`])
  }
  return local
}

function setup() {
  const pnpm = ensurePnpm()
  step("installing dependencies from the lockfile")
  run(pnpm, ["install", "--frozen-lockfile"])
  step("building")
  run(pnpm, ["run", "-s", "build"])
  return pnpm
}

// System parts that some suites need. Each is detected here; a missing one is reported loudly,
// and REQUIRE_ALL=1 turns a missing one into a failure.
function systemParts() {
  const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
  return {
    secretService: has("dbus-run-session") && has("gnome-keyring-daemon"),
    chromium: existsSync(chromium) ? chromium : undefined,
    // A second, independent IdP for the interop suite (test/interop/glewlwyd.ts).
    glewlwyd: existsSync("/usr/bin/glewlwyd") && has("sqlite3")
  }
}

function test() {
  const pnpm = setup()
  step("lint")
  run(pnpm, ["run", "-s", "lint"])
  step("type-check")
  run(pnpm, ["run", "-s", "check"])

  const parts = systemParts()
  const missing = []
  if (!parts.secretService) missing.push("Secret Service (apt-get install gnome-keyring dbus dbus-x11)")
  if (!parts.chromium) missing.push("Chromium (apt-get install chromium, or set CHROMIUM_PATH)")
  if (!parts.glewlwyd) missing.push("Glewlwyd (apt-get install glewlwyd sqlite3)")
  for (const m of missing) console.error(`\n!!! NOT RUN: the suites that need ${m} are skipped !!!`)
  if (missing.length > 0 && process.env.REQUIRE_ALL === "1") {
    console.error("REQUIRE_ALL=1: every suite must run; failing.")
    process.exit(1)
  }

  step("tests")
  const report = join(root, ".vitest-report.json")
  const env = {
    ...process.env,
    FLYTE_AUTH_TEST_SECRET_SERVICE: parts.secretService ? "1" : "",
    FLYTE_AUTH_TEST_CHROMIUM: parts.chromium ?? "",
    FLYTE_AUTH_TEST_GLEWLWYD: parts.glewlwyd ? "1" : ""
  }
  const vitest = [join(root, "node_modules", ".bin", "vitest"), "run", "--reporter=default", "--reporter=json",
    `--outputFile.json=${report}`, ...extra]
  const result = parts.secretService
    // A private session bus with an unlocked gnome-keyring: the real Secret Service for keytar and @napi-rs/keyring.
    ? spawnSync("dbus-run-session", ["--", "sh", join(root, "scripts", "with-keyring.sh"), ...vitest],
      { cwd: root, stdio: "inherit", env })
    : spawnSync(vitest[0], vitest.slice(1), { cwd: root, stdio: "inherit", env })

  const summary = summarize(report)
  console.log(summary)
  writeFileSync(join(root, ".test-summary"), summary + "\n")
  const failed = result.status !== 0 || summary.startsWith("0 passed") || !/ 0 failed/.test(summary)
  if (process.env.REQUIRE_ALL === "1" && /skipped/.test(summary) && !/ 0 skipped/.test(summary)) {
    console.error("REQUIRE_ALL=1: skipped tests count as not run; failing.")
    process.exit(1)
  }
  process.exit(failed ? (result.status || 1) : 0)
}

function summarize(report) {
  if (!existsSync(report)) return "0 passed, 1 failed"
  const json = JSON.parse(readFileSync(report, "utf8"))
  const skipped = json.numPendingTests + json.numTodoTests
  // Files that failed to load count as failures too.
  const failedFiles = json.testResults.filter((r) => r.status === "failed" && r.assertionResults.length === 0).length
  return `${json.numPassedTests} passed, ${json.numFailedTests + failedFiles} failed, ${skipped} skipped`
}

function demo() {
  setup()
  step("demo")
  const bin = join(root, "packages", "cli", "dist", "bin.js")
  if (existsSync(bin)) run(process.execPath, [bin, "demo", ...extra])
  else run(process.execPath, [join(root, "examples", "dist", "demo.js"), ...extra])
}

if (command === "test") test()
else if (command === "demo") demo()
else if (command === "setup") setup()
else {
  console.error("usage: node scripts/run.mjs test|demo|setup [args...]")
  process.exit(2)
}
