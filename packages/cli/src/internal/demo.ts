/**
 * `flyte-auth demo`: the whole library against a real local IdP and admin, unattended.
 *
 * It starts the sandbox in-process (ephemeral ports, auto-approve, short token lifetime), then, in a fresh
 * temporary file keyring, runs each of the four flows through `AuthLayer` exactly as a user's program would:
 *
 * - PKCE, with a headless user agent as the browser (it follows the IdP's pages to the loopback callback);
 * - device code, approved by a simulated second device from the device prompt;
 * - client credentials, with the sandbox's confidential client;
 * - external command: `flyte-auth token` itself (client credentials, memory keyring) as the command.
 *
 * With each it calls `IdentityService/UserInfo` over gRPC and the protected `GET /api/v1/whoami` over HTTP,
 * makes the admin reject the current token and shows the automatic refresh (counting token-endpoint requests by
 * grant type), checks that a new client is served from the keyring without any IdP request, and finally waits
 * for a short-lived token to near its expiry to show the proactive refresh. Then the four flows again against the
 * sandbox's Flyte 2 admin (ConnectRPC), found by detection: flyteidl2 `IdentityService/UserInfo` through the
 * Connect interceptor, the forced expiry, the keyring. Tables summarise; the exit code is 0 only if every check
 * passed.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import { Authenticator } from "@flyte-auth/core/Authenticator"
import * as Browser from "@flyte-auth/core/Browser"
import type * as DevicePrompt from "@flyte-auth/core/DevicePrompt"
import * as AuthLayer from "@flyte-auth/node/AuthLayer"
import * as NodeKeyring from "@flyte-auth/node/NodeKeyring"
import type * as SandboxModule from "@flyte-auth/sandbox/Sandbox"
import type * as UserAgentModule from "@flyte-auth/sandbox/UserAgent"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as ConnectUserInfo from "./connectUserInfo.js"
import { CliError } from "./errors.js"
import * as GrpcUserInfo from "./grpcUserInfo.js"

/** @internal */
export interface DemoOptions {
  readonly verbose: boolean
  readonly tokenTtlSeconds: number
}

type GrantType = keyof SandboxModule.GrantTypeCounts

interface Check {
  readonly flow: string
  readonly step: string
  readonly ok: boolean
  readonly detail: string
}

const grantNames: Record<GrantType, string> = {
  authorization_code: "authorization_code",
  refresh_token: "refresh_token",
  client_credentials: "client_credentials",
  device_code: "device_code",
  other: "other"
}

const callTimeout = Duration.seconds(15)

/** @internal */
export const run = (options: DemoOptions): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const started = Date.now()
    const { Sandbox, UserAgent } = yield* Effect.promise(() => import("@flyte-auth/sandbox"))
    const progress = (line: string) => Effect.sync(() => process.stderr.write(`${line}\n`))

    yield* progress("▶ starting the sandbox (oidc-provider IdP + Flyte-like admin on 127.0.0.1, ephemeral ports)")
    const sandbox = yield* Sandbox.make({
      autoApprove: true,
      flyte2: true,
      tokenTtlSeconds: options.tokenTtlSeconds,
      devicePollIntervalSeconds: 1,
      // Any free loopback port for the PKCE callback (RFC 8252 §7.3): nothing fixed can be taken.
      redirectUri: "http://localhost:0/callback"
    }).pipe(Effect.mapError((error) => new CliError({ message: error.message, cause: error })))
    yield* progress(
      `  admin gRPC ${sandbox.adminGrpc}, admin HTTP ${sandbox.adminHttp}, Flyte 2 admin ${sandbox.adminConnect}, ` +
        `IdP ${sandbox.issuer}; ` +
        `access tokens live ${options.tokenTtlSeconds} s`
    )

    const keyringDir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-demo-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    yield* progress(`  fresh file keyring in ${keyringDir} (deleted at the end)`)
    const keyring = NodeKeyring.layerFile(Path.join(keyringDir, "credentials"))
    // An empty Flyte config, so that the user's ~/.flyte/config.yaml and FLYTE_* variables stay out of the demo.
    const configFile = Path.join(keyringDir, "config.yaml")
    Fs.writeFileSync(configFile, "# flyte-auth demo: everything is given explicitly\n")

    const checks: Array<Check> = []
    const record = (flow: string, step: string, ok: boolean, detail: string) =>
      Effect.sync(() => {
        checks.push({ flow, step, ok, detail })
        process.stderr.write(`  ${ok ? "✓" : "✗"} ${flow}: ${step} — ${detail}\n`)
      })
    const tokenRequests = () => ({ ...sandbox.stats().tokenRequests })
    const diff = (before: SandboxModule.GrantTypeCounts): Partial<Record<GrantType, number>> => {
      const after = sandbox.stats().tokenRequests
      const out: Partial<Record<GrantType, number>> = {}
      for (const key of Object.keys(grantNames) as Array<GrantType>) {
        const delta = after[key] - before[key]
        if (delta !== 0) out[key] = delta
      }
      return out
    }
    const describeDiff = (d: Partial<Record<GrantType, number>>) => {
      const parts = Object.entries(d).map(([grant, n]) => `${grant} +${n}`)
      return parts.length === 0 ? "no token request" : parts.join(", ")
    }

    const user = { username: sandbox.user.username, password: sandbox.user.password }
    const background: Array<Promise<unknown>> = []

    // The browser of the PKCE flow: a headless user agent that "opens" the URL in the background.
    const headlessBrowser = Layer.succeed(Browser.Browser, {
      open: (url: string) =>
        Effect.sync(() => {
          background.push(UserAgent.make().authorize(url, user))
        })
    })
    // The second device of the device flow: approves the code shown by the prompt.
    const secondDevice = (prompt: DevicePrompt.DeviceCodePrompt) => {
      const verification: UserAgentModule.DeviceVerification = prompt.verificationUriComplete !== undefined
        ? { verificationUriComplete: prompt.verificationUriComplete }
        : { verificationUri: prompt.verificationUri, userCode: prompt.userCode }
      background.push(UserAgent.make().approveDevice(verification, user))
    }
    const secretEnvVar = "FLYTE_AUTH_DEMO_CLIENT_SECRET"
    process.env[secretEnvVar] = sandbox.clients.confidential.clientSecret
    const bin = process.argv[1]

    const base: AuthLayer.Options = {
      endpoint: sandbox.adminGrpc,
      insecure: true,
      keyring,
      configFile,
      env: { [secretEnvVar]: sandbox.clients.confidential.clientSecret },
      timeoutSeconds: 60
    }
    const flows: ReadonlyArray<{
      readonly name: string
      readonly options: AuthLayer.Options
      readonly login: GrantType
      readonly refresh: GrantType
      readonly subject: string
    }> = [
      {
        name: "PKCE",
        options: { ...base, authMode: "Pkce", browser: headlessBrowser },
        login: "authorization_code",
        refresh: "refresh_token",
        subject: sandbox.user.subject
      },
      {
        name: "Device code",
        options: { ...base, authMode: "DeviceFlow", onDeviceCode: secondDevice },
        login: "device_code",
        refresh: "refresh_token",
        subject: sandbox.user.subject
      },
      {
        name: "Client credentials",
        options: {
          ...base,
          authMode: "ClientSecret",
          clientId: sandbox.clients.confidential.clientId,
          clientSecretEnvVar: secretEnvVar
        },
        login: "client_credentials",
        refresh: "client_credentials",
        subject: sandbox.clients.confidential.clientId
      },
      {
        name: "External command",
        options: {
          ...base,
          authMode: "ExternalCommand",
          // `flyte-auth token` as another tool's command: client credentials, nothing stored.
          command: [
            process.execPath,
            bin,
            "token",
            "--endpoint",
            sandbox.adminGrpc,
            "--insecure",
            "--auth-mode",
            "ClientSecret",
            "--client-id",
            sandbox.clients.confidential.clientId,
            "--client-secret-env-var",
            secretEnvVar,
            "--keyring",
            "memory",
            "--config",
            configFile
          ]
        },
        login: "client_credentials",
        refresh: "client_credentials",
        subject: sandbox.clients.confidential.clientId
      }
    ]

    // Each flow uses its own endpoint entry: the four share one admin, so log out between them.
    const summary: Array<{ flow: string; cells: Array<string> }> = []

    for (const flow of flows) {
      yield* progress(`▶ ${flow.name}`)
      const cells: Array<string> = []
      const layer = AuthLayer.layer(flow.options)
      const outcome = yield* Effect.either(Effect.scoped(
        Effect.gen(function*() {
          const auth = yield* Authenticator
          const settings = yield* AuthLayer.Settings
          const http = yield* HttpClient.HttpClient
          yield* auth.logout

          // 1. log in
          let before = tokenRequests()
          const t0 = Date.now()
          const credentials = yield* auth.credentials.pipe(Effect.timeout(Duration.seconds(60)))
          const loginDiff = diff(before)
          const loggedIn = (loginDiff[flow.login] ?? 0) >= 1
          yield* record(
            flow.name,
            "login",
            loggedIn,
            `${describeDiff(loginDiff)} in ${Date.now() - t0} ms${
              credentials.refreshToken !== undefined ? ", with a refresh token" : ""
            }`
          )
          cells.push(loggedIn ? `✓ ${formatMillis(Date.now() - t0)}` : "✗")

          // 2. a second call is served from the cache
          before = tokenRequests()
          yield* auth.accessToken
          const cached = Object.keys(diff(before)).length === 0
          yield* record(flow.name, "cached token", cached, describeDiff(diff(before)))

          // 3. whoami over gRPC and HTTP
          const grpcSubject = yield* grpcWhoami(settings)
          const httpSubject = yield* httpWhoami(http, sandbox.adminHttp)
          const grpcOk = grpcSubject === flow.subject
          const httpOk = httpSubject === flow.subject
          yield* record(flow.name, "gRPC IdentityService/UserInfo", grpcOk, `subject ${grpcSubject}`)
          yield* record(flow.name, "HTTP GET /api/v1/whoami", httpOk, `subject ${httpSubject}`)
          cells.push(grpcOk ? `✓ ${grpcSubject}` : `✗ ${grpcSubject}`, httpOk ? "✓" : `✗ ${httpSubject}`)

          // 4. the admin stops accepting the current token: gRPC, then HTTP, each refresh once and retry
          const expiry = yield* Effect.forEach(["gRPC", "HTTP"] as const, (via) =>
            Effect.gen(function*() {
              yield* Effect.sleep(Duration.millis(5)) // the admin compares issue times in milliseconds
              sandbox.rejectTokensIssuedBefore()
              const failuresBefore = sandbox.adminStats().authFailures
              const b = tokenRequests()
              const subject = via === "gRPC" ? yield* grpcWhoami(settings) : yield* httpWhoami(http, sandbox.adminHttp)
              const d = diff(b)
              const rejected = sandbox.adminStats().authFailures - failuresBefore
              const ok = subject === flow.subject && (d[flow.refresh] ?? 0) === 1 && rejected === 1
              yield* record(
                flow.name,
                `forced expiry via ${via}`,
                ok,
                `${rejected} call rejected, then ${describeDiff(d)}, retried: subject ${subject}`
              )
              return { ok, detail: describeDiff(d) }
            }))
          cells.push(
            expiry.every((e) => e.ok)
              ? `✓ ${expiry[0].detail} (gRPC), ${expiry[1].detail} (HTTP)`
              : `✗ ${expiry.map((e) => e.detail).join(" / ")}`
          )

          // 5. a new client (a new process, say) is served from the keyring
          const fresh = yield* Effect.scoped(Effect.gen(function*() {
            const b = tokenRequests()
            const other = yield* Authenticator
            yield* other.accessToken
            return diff(b)
          })).pipe(Effect.provide(AuthLayer.layer(flow.options)))
          const fromKeyring = Object.keys(fresh).length === 0
          yield* record(flow.name, "new client served from the keyring", fromKeyring, describeDiff(fresh))
          cells.push(fromKeyring ? "✓ 0 IdP requests" : `✗ ${describeDiff(fresh)}`)
          return cells
        }).pipe(Effect.provide(layer))
      ))
      if (outcome._tag === "Left") {
        const message = messageOf(outcome.left)
        yield* record(flow.name, "run", false, message)
        cells.push(`✗ ${message}`)
      }
      summary.push({ flow: flow.name, cells })
      // The next flow starts without credentials (same endpoint): forget these.
      yield* Effect.scoped(Effect.flatMap(Authenticator, (auth) => auth.logout)).pipe(
        Effect.provide(AuthLayer.layer(flow.options)),
        Effect.ignore
      )
    }

    // 6. the four flows against the Flyte 2 admin (ConnectRPC), which the layer detects.
    const flyte2Endpoint = sandbox.adminConnect!.replace(/^http:\/\//, "")
    const summary2: Array<{ flow: string; cells: Array<string> }> = []
    for (const flow of flows) {
      const name = `${flow.name} (Flyte 2)`
      yield* progress(`▶ ${name}`)
      const cells: Array<string> = []
      const options2: AuthLayer.Options = { ...flow.options, endpoint: flyte2Endpoint }
      const outcome = yield* Effect.either(Effect.scoped(
        Effect.gen(function*() {
          const auth = yield* Authenticator
          const settings = yield* AuthLayer.Settings
          yield* auth.logout
          const before = tokenRequests()
          const t0 = Date.now()
          yield* auth.credentials.pipe(Effect.timeout(Duration.seconds(60)))
          const loginDiff = diff(before)
          const detected = yield* settings.flyte
          const loggedIn = (loginDiff[flow.login] ?? 0) >= 1 && detected === 2
          yield* record(
            name,
            "login",
            loggedIn,
            `detected Flyte ${detected}, ${describeDiff(loginDiff)} in ${Date.now() - t0} ms`
          )
          cells.push(loggedIn ? `✓ ${formatMillis(Date.now() - t0)}` : "✗")

          const subject = yield* connectWhoami(settings)
          const whoamiOk = subject === flow.subject
          yield* record(name, "flyteidl2 IdentityService/UserInfo", whoamiOk, `subject ${subject}`)
          cells.push(whoamiOk ? `✓ ${subject}` : `✗ ${subject}`)

          yield* Effect.sleep(Duration.millis(5)) // the admin compares issue times in milliseconds
          sandbox.rejectTokensIssuedBefore()
          const failuresBefore = sandbox.connectAdminStats().authFailures
          const b = tokenRequests()
          const again = yield* connectWhoami(settings)
          const d = diff(b)
          const rejected = sandbox.connectAdminStats().authFailures - failuresBefore
          const expiryOk = again === flow.subject && (d[flow.refresh] ?? 0) === 1 && rejected === 1
          yield* record(
            name,
            "forced expiry via Connect",
            expiryOk,
            `${rejected} call rejected, then ${describeDiff(d)}, retried: subject ${again}`
          )
          cells.push(expiryOk ? `✓ ${describeDiff(d)}` : `✗ ${describeDiff(d)}`)

          const fresh = yield* Effect.scoped(Effect.gen(function*() {
            const b = tokenRequests()
            yield* Effect.flatMap(Authenticator, (other) => other.accessToken)
            return diff(b)
          })).pipe(Effect.provide(AuthLayer.layer(options2)))
          const fromKeyring = Object.keys(fresh).length === 0
          yield* record(name, "new client served from the keyring", fromKeyring, describeDiff(fresh))
          cells.push(fromKeyring ? "✓ 0 IdP requests" : `✗ ${describeDiff(fresh)}`)
        }).pipe(Effect.provide(AuthLayer.layer(options2)))
      ))
      if (outcome._tag === "Left") {
        const message = messageOf(outcome.left)
        yield* record(name, "run", false, message)
        cells.push(`✗ ${message}`)
      }
      summary2.push({ flow: flow.name, cells })
      yield* Effect.scoped(Effect.flatMap(Authenticator, (auth) => auth.logout)).pipe(
        Effect.provide(AuthLayer.layer(options2)),
        Effect.ignore
      )
    }

    // 7. proactive refresh: a PKCE token nearing its expiry is refreshed before use, without any rejection.
    yield* progress(`▶ proactive refresh of a ${options.tokenTtlSeconds} s token`)
    const pkce = flows[0]
    const proactive = yield* Effect.either(
      Effect.scoped(Effect.gen(function*() {
        const auth = yield* Authenticator
        const settings = yield* AuthLayer.Settings
        yield* auth.credentials
        const obtainedAt = Date.now()
        // Refreshed within half the lifetime of the token before it expires (the skew is capped at half).
        const wait = Math.ceil(options.tokenTtlSeconds / 2) * 1000 + 500
        yield* progress(`  waiting ${(wait / 1000).toFixed(1)} s for the token to near its expiry`)
        yield* Effect.sleep(Duration.millis(Math.max(0, obtainedAt + wait - Date.now())))
        const failuresBefore = sandbox.adminStats().authFailures
        const b = tokenRequests()
        const subject = yield* grpcWhoami(settings)
        const d = diff(b)
        const ok = subject === pkce.subject && (d.refresh_token ?? 0) === 1 &&
          sandbox.adminStats().authFailures === failuresBefore
        yield* record("PKCE", "proactive refresh before expiry", ok, `${describeDiff(d)}, no call rejected`)
        return ok
      })).pipe(Effect.provide(AuthLayer.layer(pkce.options)))
    )
    if (proactive._tag === "Left") yield* record("PKCE", "proactive refresh", false, messageOf(proactive.left))

    // The scripted browser and second device must have finished cleanly.
    const agents = yield* Effect.promise(() => Promise.allSettled(background)).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(30),
        onTimeout: () => new CliError({ message: "the scripted browser or second device did not finish within 30 s" })
      })
    )
    const agentFailures = agents.filter((r) => r.status === "rejected")
    yield* record(
      "user agents",
      "browser logins and device approvals",
      agentFailures.length === 0,
      agentFailures.length === 0
        ? `${agents.length} completed`
        : messageOf((agentFailures[0] as PromiseRejectedResult).reason)
    )

    // --- summary -------------------------------------------------------------------------------------------------
    const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
      const line = (cells: ReadonlyArray<string>) =>
        cells.map((c, i) => (c ?? "").padEnd(widths[i])).join("  ").trimEnd()
      return [line(header), line(widths.map((w) => "─".repeat(w))), ...rows.map(line)]
    }
    const failed = checks.filter((c) => !c.ok)
    const stats = sandbox.stats()
    const out = [
      "",
      "flyte-auth demo: four flows against a local oidc-provider IdP and Flyte-like admins",
      "",
      ...table(
        ["flow", "login", "gRPC UserInfo", "HTTP whoami", "forced expiry → refresh", "keyring reuse"],
        summary.map(({ cells, flow }) => [flow, ...cells])
      ),
      "",
      ...table(
        ["Flyte 2 (ConnectRPC)", "login", "flyteidl2 UserInfo", "forced expiry → refresh", "keyring reuse"],
        summary2.map(({ cells, flow }) => [flow, ...cells])
      ),
      "",
      `proactive refresh of a ${options.tokenTtlSeconds} s token: ${
        checks.find((c) => c.step.startsWith("proactive"))?.ok === true ? "✓" : "✗"
      } (refreshed before use, no call rejected)`,
      `token requests: ${
        (Object.keys(grantNames) as Array<GrantType>)
          .filter((g) => stats.tokenRequests[g] > 0)
          .map((g) => `${g} ${stats.tokenRequests[g]}`)
          .join(", ")
      }; admin calls rejected: ${stats.admin.authFailures + stats.connectAdmin.authFailures} (all forced)`,
      `${checks.length - failed.length}/${checks.length} checks passed in ${
        ((Date.now() - started) / 1000).toFixed(1)
      } s` +
      (failed.length === 0 ? " — ALL PASSED" : ` — FAILED: ${failed.map((c) => `${c.flow}: ${c.step}`).join("; ")}`)
    ]
    yield* Effect.sync(() => process.stdout.write(`${out.join("\n")}\n`))
    if (failed.length > 0) {
      return yield* new CliError({ message: `${failed.length} of ${checks.length} checks failed (see above)` })
    }
  }).pipe(
    Effect.scoped,
    // Every step has its own bound; this one makes sure the demo as a whole can never hang.
    Effect.timeoutFail({
      duration: Duration.minutes(3),
      onTimeout: () => new CliError({ message: "the demo did not finish within 3 minutes" })
    }),
    Logger.withMinimumLogLevel(options.verbose ? LogLevel.Debug : LogLevel.Error)
  )

const grpcWhoami = (settings: AuthLayer.ResolvedSettings) =>
  GrpcUserInfo.userInfo(settings, callTimeout).pipe(
    Effect.map((response) => String(response.subject ?? "")),
    Effect.catchAll((error) => Effect.succeed(`(failed: ${error.message})`))
  )

const connectWhoami = (settings: AuthLayer.ResolvedSettings) =>
  ConnectUserInfo.userInfo(settings, callTimeout).pipe(
    Effect.map((response) => String((response as { subject?: unknown }).subject ?? "")),
    Effect.catchAll((error) => Effect.succeed(`(failed: ${error.message})`))
  )

const httpWhoami = (http: HttpClient.HttpClient, adminHttp: string) =>
  http.get(`${adminHttp}/api/v1/whoami`).pipe(
    Effect.flatMap((response) =>
      response.status === 200
        ? Effect.map(response.json, (body) => String((body as { subject?: unknown }).subject ?? ""))
        : Effect.succeed(`(HTTP ${response.status})`)
    ),
    Effect.timeout(callTimeout),
    Effect.catchAll((error) => Effect.succeed(`(failed: ${messageOf(error)})`))
  )

const formatMillis = (millis: number) => millis < 1000 ? `${millis} ms` : `${(millis / 1000).toFixed(1)} s`

const messageOf = (u: unknown): string =>
  typeof u === "object" && u !== null && typeof (u as { message?: unknown }).message === "string"
    ? (u as { message: string }).message
    : String(u)
