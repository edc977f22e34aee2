#!/usr/bin/env node
// `pnpm bench [name...]`: runs the benchmarks of test/bench, each in its own Node process (a fresh heap and JIT,
// `--expose-gc` for the soak), against the built packages (`dist/`, as `npm test` or `pnpm build` leave them).
// Prints a table and writes test/bench/results.json (one object per benchmark row).
//
// Environment: FLYTE_AUTH_BENCH_ROUNDS=<n> overrides every benchmark's number of rounds,
// FLYTE_AUTH_BENCH_SCALE=<0..1> scales the iteration counts down (a smoke run; the numbers then mean little).
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.join(here, "..", "..")

/** In run order; cli-token (it needs the bundled CLI) and cold-start (fresh processes) last. */
const benchmarks = [
  { name: "grpc-overhead", file: "grpc-overhead.mjs" },
  { name: "http-overhead", file: "http-overhead.mjs" },
  { name: "refresh-storm", file: "refresh-storm.mjs" },
  { name: "cache-hit", file: "cache-hit.mjs" },
  { name: "soak", file: "soak.mjs" },
  { name: "cli-token", file: "cli-token.mjs" },
  { name: "cold-start", file: "cold-start.mjs" }
]

const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !benchmarks.some((b) => b.name === name))
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${benchmarks.map((b) => b.name).join(", ")}`)
  process.exit(2)
}
const selected = wanted.length === 0 ? benchmarks : benchmarks.filter((b) => wanted.includes(b.name))

const required = ["core", "node", "grpc", "sandbox"].map((pkg) => path.join(root, "packages", pkg, "dist", "index.js"))
const missing = required.filter((file) => !existsSync(file))
if (missing.length > 0) {
  console.error(`The packages are not built (${missing.map((f) => path.relative(root, f)).join(", ")} missing).`)
  console.error("Run `npm test` (or `pnpm install && pnpm build`) first.")
  process.exit(2)
}

const work = mkdtempSync(path.join(tmpdir(), "flyte-auth-bench-"))
const out = path.join(work, "results.jsonl")
const rows = []
const failed = []
const started = performance.now()

console.error(
  `flyte-auth benchmarks on Node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}), ` +
    `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`
)

for (const benchmark of selected) {
  console.error(`\n▶ ${benchmark.name}`)
  const t0 = performance.now()
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, ["--expose-gc", path.join(here, benchmark.file)], {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, FLYTE_AUTH_BENCH_OUT: out }
    })
    child.on("exit", (code, signal) => resolve(code ?? signal))
    child.on("error", (error) => resolve(error.message))
  })
  console.error(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  if (code !== 0) {
    failed.push(benchmark.name)
    console.error(`✗ ${benchmark.name} failed (${code})`)
  }
}

if (existsSync(out)) {
  for (const line of readFileSync(out, "utf8").split("\n")) if (line.trim() !== "") rows.push(JSON.parse(line))
}
rmSync(work, { recursive: true, force: true })

// --- the table -------------------------------------------------------------------------------------------------

const fmt = (value) => value === undefined ? "" : typeof value === "number" ? value.toLocaleString("en-US") : `${value}`
const header = ["benchmark", "baseline", "flyte-auth", "unit", "ratio", "cpu ratio", "target", "met", "rounds"]
const table = rows.map((row) => [
  row.name,
  fmt(row.baseline),
  fmt(row.measured),
  row.unit,
  fmt(row.ratio),
  fmt(row.details?.cpuRatio),
  row.target ?? "",
  row.met === undefined ? "" : row.met ? "yes" : "NO",
  fmt(row.rounds)
])
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)))
const line = (cells) => cells.map((cell, i) => i === 0 || i === 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join("  ")
console.log(`\n${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}`)
for (const row of table) console.log(line(row))

console.log("")
for (const row of rows) {
  const labels = row.baselineLabel === undefined ? "" : ` (baseline: ${row.baselineLabel}; flyte-auth: ${row.measuredLabel})`
  console.log(`${row.name}${labels}`)
  if (row.details !== undefined) console.log(`  ${JSON.stringify(row.details)}`)
}

// A partial run (`pnpm bench soak`) keeps the rows of the other benchmarks from the previous results.
const resultsFile = path.join(here, "results.json")
const ran = new Set(selected.map((b) => b.name))
let kept = []
if (wanted.length > 0 && existsSync(resultsFile)) {
  try {
    kept = JSON.parse(readFileSync(resultsFile, "utf8")).filter((row) => !ran.has(row.name.split("/")[0]))
  } catch {
    kept = []
  }
}
const order = (row) => benchmarks.findIndex((b) => b.name === row.name.split("/")[0])
const all = [...kept, ...rows].sort((a, b) => order(a) - order(b))
writeFileSync(resultsFile, `${JSON.stringify(all, null, 2)}\n`)
const missed = rows.filter((row) => row.met === false).map((row) => row.name)
console.log(
  `\nwrote test/bench/results.json (${all.length} rows) in ${((performance.now() - started) / 1000).toFixed(0)} s` +
    (missed.length > 0 ? `; targets missed: ${missed.join(", ")}` : "; every target met")
)
if (failed.length > 0) {
  console.error(`✗ benchmark(s) failed: ${failed.join(", ")}`)
  process.exit(1)
}
