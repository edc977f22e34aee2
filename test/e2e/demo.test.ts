/**
 * `flyte-auth demo` (what `npm run demo` runs) passes on this machine: all four flows, whoami over gRPC and HTTP,
 * forced expiry and refresh, keyring reuse and the proactive refresh, then the four flows against the Flyte 2
 * admin (ConnectRPC) — and says so in its summary.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Home, makeHome, requireBuild, runCli } from "./helpers.js"

requireBuild()

describe("flyte-auth demo", () => {
  let home: Home
  beforeAll(() => {
    home = makeHome()
  })
  afterAll(() => home?.cleanup())

  it("runs every flow end to end and exits 0 with ALL PASSED", async () => {
    const result = await runCli(home, ["demo", "--token-ttl", "12"], { timeoutMs: 150_000 })
    expect(result.stdout, result.stderr).toMatch(/\d+\/\d+ checks passed in [\d.]+ s — ALL PASSED/)
    expect(result.code).toBe(0)
    for (const flow of ["PKCE", "Device code", "Client credentials", "External command"]) {
      // Once against the Flyte 1 admin, once against the Flyte 2 one.
      expect(result.stdout.match(new RegExp(`^${flow} +✓`, "gm"))).toHaveLength(2)
    }
    expect(result.stdout).toMatch(/^Flyte 2 \(ConnectRPC\) +login +flyteidl2 UserInfo/m)
    expect(result.stdout).not.toContain("✗")
    expect(result.stdout).toMatch(/proactive refresh of a 12 s token: ✓/)
    // Progress goes to stderr, the summary to stdout.
    expect(result.stderr).toContain("▶ PKCE")
    expect(result.stdout).not.toContain("▶")
  }, 160_000)
})
