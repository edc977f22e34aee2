/**
 * Several accounts on one endpoint (issue 15, item 4), through the built `flyte-auth` against `flyte-auth sandbox`:
 * two service accounts keep their own credentials, `token --client-id A` prints A's token and never B's, `status`
 * lists every stored login and exits 1 when the selected one cannot hand out a token, `logout` removes one
 * client's login only, and entries of the time before accounts were per client are taken over only by their owner.
 */
import * as Credentials from "@flyte-auth/core/Credentials"
import * as Keyring from "@flyte-auth/core/Keyring"
import * as NodeKeyring from "@flyte-auth/node/NodeKeyring"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import {
  type Home,
  jwtClaims,
  makeHome,
  requireBuild,
  runCli,
  type SandboxProcess,
  startSandboxProcess
} from "./helpers.js"

requireBuild()

describe("several accounts on one endpoint (built CLI + sandbox)", () => {
  let sandboxHome: Home
  let sandbox: SandboxProcess
  let home: Home
  let endpoint: string
  let common: Array<string>

  beforeAll(async () => {
    sandboxHome = makeHome()
    sandbox = await startSandboxProcess(sandboxHome, ["--admin-port", "0", "--admin-http-port", "0", "--idp-port", "0"])
    endpoint = sandbox.info.adminGrpc
    common = ["--endpoint", `dns:///${endpoint}`, "--insecure", "--keyring", "file"]
  })
  beforeEach(() => {
    home = makeHome()
  })
  afterEach(() => home.cleanup())
  afterAll(async () => {
    await sandbox?.stop()
    sandboxHome?.cleanup()
  })

  const run = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const result = await runCli(home, args, { env })
    for (const secret of [sandbox.info.confidentialClientSecret, sandbox.info.ciClientSecret]) {
      expect(result.stdout + result.stderr).not.toContain(secret)
    }
    return result
  }
  /** The options of one service account (its secret in a variable of its own). */
  const as = (who: "A" | "B") => {
    const clientId = who === "A" ? sandbox.info.confidentialClientId : sandbox.info.ciClientId
    return {
      clientId,
      args: ["--auth-mode", "ClientSecret", "--client-id", clientId],
      login: ["--client-secret-env-var", `SECRET_${who}`],
      env: { [`SECRET_${who}`]: who === "A" ? sandbox.info.confidentialClientSecret : sandbox.info.ciClientSecret }
    }
  }
  const clientOf = (token: string) => jwtClaims(token.trim()).client_id
  const statusJson = async (...more: Array<string>) => {
    const result = await run(["status", "--json", ...common, ...more])
    return { code: result.code, report: JSON.parse(result.stdout) }
  }
  const store = (account: string, credentials: Credentials.Credentials) =>
    Effect.runPromise(
      Effect.gen(function*() {
        const keyring = yield* NodeKeyring.makeFile(home.credentials)
        yield* keyring.set(Keyring.serviceName, account, yield* Credentials.encodeKeyringEntry(credentials))
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None))
    )
  const storedAt = (account: string) =>
    Effect.runPromise(
      Effect.gen(function*() {
        const keyring = yield* NodeKeyring.makeFile(home.credentials)
        return Option.getOrUndefined(yield* keyring.get(Keyring.serviceName, account))
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None))
    )

  it("two service accounts: both logins kept, each token its own client's, logout of one leaves the other", async () => {
    const a = as("A")
    const b = as("B")
    expect((await run(["login", ...common, ...a.args, ...a.login], a.env)).code).toBe(0)
    expect((await run(["login", ...common, ...b.args, ...b.login], b.env)).code).toBe(0)

    // Without a secret: answered from the keyring (the fast path), each client its own token.
    const tokenA = await run(["token", ...common, ...a.args])
    const tokenB = await run(["token", ...common, ...b.args])
    expect([tokenA.code, tokenB.code]).toEqual([0, 0])
    expect(clientOf(tokenA.stdout)).toBe(a.clientId)
    expect(clientOf(tokenB.stdout)).toBe(b.clientId)
    // The same through the full CLI (--client-secret-env-var is not a fast-path option).
    const fullA = await run(["token", ...common, ...a.args, ...a.login], a.env)
    expect(fullA.stdout).toBe(tokenA.stdout)
    // A caller of the admin's client (a Pkce user) gets neither: no login is allowed here, exit code 3.
    const user = await run(["token", ...common])
    expect(user.code).toBe(3)
    expect(user.stdout).toBe("")

    // status: every login of the endpoint, the selected one marked; exit 0 for a login that hands out a token.
    const statusA = await statusJson(...a.args)
    expect(statusA.code).toBe(0)
    expect(statusA.report).toMatchObject({ endpoint, clientId: a.clientId, authMode: "ClientSecret", loggedIn: true })
    expect(statusA.report.logins.map((l: Record<string, unknown>) => [l.clientId, l.authMode, l.selected]))
      .toEqual([[a.clientId, "ClientSecret", true], [b.clientId, "ClientSecret", false]].sort())
    const text = await run(["status", ...common, ...b.args])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`stored logins on ${endpoint.replace(/\./g, "\\.")}:`))
    expect(text.stdout).toMatch(new RegExp(`^\\* +${b.clientId} +ClientSecret .*logged in$`, "m"))
    expect(text.stdout).toMatch(new RegExp(`^ {3}${a.clientId} +ClientSecret .*logged in$`, "m"))
    // The admin's client has no login: exit 1, and the others are still listed.
    const userStatus = await run(["status", ...common])
    expect(userStatus.code).toBe(1)
    expect(userStatus.stderr).toMatch(/^flyte-auth status: not logged in to .* — run `flyte-auth login`/m)
    expect(userStatus.stdout).toMatch(/logged in\s+no\n/)

    // logout of A: A's login is gone, B's stays and still answers.
    expect((await run(["logout", ...common, ...a.args])).code).toBe(0)
    const afterLogout = await statusJson(...a.args)
    expect(afterLogout.code).toBe(1)
    expect(afterLogout.report.logins.map((l: Record<string, unknown>) => l.clientId)).toEqual([b.clientId])
    const stillB = await run(["token", ...common, ...b.args])
    expect(stillB.stdout).toBe(tokenB.stdout)
  })

  it("status --all lists the logins of every endpoint; status of nothing stored exits 1", async () => {
    const nothing = await run(["status", ...common])
    expect(nothing.code).toBe(1)
    expect(nothing.stdout).toMatch(/stored logins on .*:\n {2}none$/m)
    const a = as("A")
    expect((await run(["login", ...common, ...a.args, ...a.login], a.env)).code).toBe(0)
    const elsewhere = "elsewhere.example.com:443"
    await store(
      Credentials.keyringAccount(elsewhere, "svc"),
      new Credentials.Credentials({
        accessToken: Redacted.make("elsewhere-token"),
        endpoint: elsewhere,
        authMode: "ClientSecret",
        clientId: "svc"
      })
    )
    const all = await statusJson(...a.args, "--all")
    expect(all.code).toBe(0)
    expect(all.report.logins.map((l: Record<string, unknown>) => [l.endpoint, l.clientId, l.selected])).toEqual([
      [endpoint, a.clientId, true],
      [elsewhere, "svc", false]
    ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))))
    const one = await statusJson(...a.args)
    expect(one.report.logins.map((l: Record<string, unknown>) => l.endpoint)).toEqual([endpoint])
    const text = await run(["status", ...common, ...a.args, "--all"])
    expect(text.stdout).toMatch(/stored logins \(every endpoint\):/)
    expect(text.stdout).toContain(elsewhere)

    // --all with no endpoint configured at all: every login, none selected, exit 0.
    const keyringOnly = ["--keyring", "file"]
    const bare = await run(["status", "--all", "--json", ...keyringOnly])
    expect(bare.code, bare.stderr).toBe(0)
    const report = JSON.parse(bare.stdout)
    expect(report.endpoint).toBeNull()
    expect(report.logins.map((l: Record<string, unknown>) => [l.endpoint, l.selected]).sort()).toEqual(
      [[endpoint, false], [elsewhere, false]].sort()
    )
    const bareText = await run(["status", "--all", ...keyringOnly])
    expect(bareText.code).toBe(0)
    expect(bareText.stdout).toMatch(/^stored logins \(every endpoint\):$/m)
    expect(bareText.stdout).toContain(elsewhere)
    // Without --all, no endpoint stays the Config error it was.
    expect((await run(["status", ...keyringOnly])).stderr).toMatch(/No endpoint is configured/)
  })

  it("an entry written before accounts were per client: taken over by its owner only, then moved", async () => {
    const legacy = (token: string, authMode: "Pkce" | "ClientSecret") =>
      new Credentials.Credentials({
        accessToken: Redacted.make(token),
        expiresAt: DateTime.unsafeMake(Date.now() + 3_600_000),
        endpoint,
        authMode
      })
    // A service account's old entry: never handed to anyone (it could be another client's); B logs in anew.
    await store(endpoint, legacy("legacy-service-token", "ClientSecret"))
    const b = as("B")
    const tokenB = await run(["token", ...common, ...b.args, ...b.login], b.env)
    expect(tokenB.code).toBe(0)
    expect(tokenB.stdout).not.toContain("legacy-service-token")
    expect(clientOf(tokenB.stdout)).toBe(b.clientId)
    expect(await storedAt(endpoint)).toBeDefined()

    // A user's old entry: the user (the admin's client, Pkce) gets it, and it moves to the user's account.
    await store(endpoint, legacy("legacy-user-token", "Pkce"))
    const listed = await statusJson()
    expect(listed.code).toBe(0)
    expect(listed.report.logins.find((l: Record<string, unknown>) => l.legacy === true)).toMatchObject({
      account: endpoint,
      selected: true
    })
    // Not for a service account of the same endpoint.
    const notB = await run(["token", ...common, ...b.args])
    expect(notB.stdout).not.toContain("legacy-user-token")
    const user = await run(["token", ...common])
    expect(user.code).toBe(0)
    expect(user.stdout).toBe("legacy-user-token\n")
    expect(await storedAt(endpoint)).toBeUndefined()
    expect(JSON.parse((await storedAt(Credentials.keyringAccount(endpoint, undefined)))!)).toMatchObject({
      accessToken: "legacy-user-token",
      authMode: "Pkce"
    })
    // Now from the new account (the fast path reads it too).
    expect((await run(["token", ...common])).stdout).toBe("legacy-user-token\n")
  })
})
