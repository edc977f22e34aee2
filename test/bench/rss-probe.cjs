// Preloaded (`node -r`) into each process of the cli-token benchmark: on exit, writes the peak RSS (KiB) of this
// process to fd 3, which the benchmark reads. Preloaded into the bare `node -e 0` baseline as well.
"use strict"
const fs = require("node:fs")
process.on("exit", () => {
  try {
    fs.writeSync(3, String(process.resourceUsage().maxRSS))
  } catch {
    // fd 3 is not open: run outside the benchmark
  }
})
