/**
 * Redaction audit (library): every flow against the real sandbox IdP, and a failing variant of each, with the
 * most verbose logging (`LogLevel.All`, a logger that keeps annotations, spans and causes) and a tracer that
 * records every span, its attributes and how it ended. Everything a person or a log pipeline could see is
 * collected (logs, spans, every rendering of every error, the pages shown in the browser) and searched for every
 * secret of the run: access, refresh and id tokens, the client secret, code verifiers, authorization codes and
 * device codes — the values read off the wire by a recording `HttpClient`, so the search cannot miss one.
 *
 * The failing variants use an identity provider that quotes the whole request back in its error (the fault
 * proxy's `Echo`), the worst case for the scrubbing of server text.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Authenticator, Browser, ClientConfig, ClientCredentials, Credentials, Flows, Keyring } from "@flyte-auth/core"
import { NodeCommandRunner, NodeTransport } from "@flyte-auth/node"
import { UserAgent } from "@flyte-auth/sandbox"
import { Context, Effect, Exit, Layer, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type Audit, makeAudit } from "./helpers/audit.js"
import { entryOf, type FlowName, setupFlow, startWorld, type World } from "./helpers/world.js"

let world: World
let dir: string
beforeAll(async () => {
  world = await startWorld()
  dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-redaction-"))
})
afterAll(async () => {
  await world?.close()
  if (dir !== undefined) Fs.rmSync(dir, { recursive: true, force: true })
})

/** Records the tokens of credentials (returned or stored) as secrets, and checks that printing them hides them. */
const recordCredentials = (audit: Audit, credentials: Credentials.Credentials | undefined) => {
  if (credentials === undefined) return
  audit.addSecret("access_token", credentials.accessToken)
  audit.addSecret("refresh_token", credentials.refreshToken)
  audit.addSecret("id_token", credentials.idToken)
  audit.addText(String(credentials))
  audit.addText(JSON.stringify(credentials))
}

const recordStored = (audit: Audit, entry: string | undefined) =>
  entry === undefined
    ? Effect.void
    : Effect.map(Effect.orDie(Credentials.decodeKeyringEntry(entry)), (stored) => recordCredentials(audit, stored))

/** A browser that signs the demo user in and keeps the page the callback server answered (and its code). */
const pageKeepingBrowser = (audit: Audit) =>
  Layer.succeed(Browser.Browser, {
    open: (url) =>
      Effect.asVoid(Effect.forkDaemon(Effect.ignore(Effect.tryPromise(async () => {
        const redirect = await UserAgent.make().authorizeRedirect(url, world.sandbox.user)
        audit.addSecret("code", redirect.searchParams.get("code") ?? undefined)
        const page = await fetch(redirect)
        audit.addText(await page.text())
      }))))
  })

interface Case {
  readonly name: string
  readonly flow: FlowName
  /** Makes the run fail (or take its failure path); the expected outcome. */
  readonly fault?: () => void
  readonly succeeds: boolean
  /** A log line the run must have written (proof that the logs were captured). */
  readonly log?: string
}

const cases: ReadonlyArray<Case> = [
  { name: "PKCE", flow: "PKCE code exchange", succeeds: true, log: "level=INFO" },
  {
    name: "PKCE, the code exchange is refused with an echo of the request",
    flow: "PKCE code exchange",
    fault: () => world.proxy.inject({ path: world.tokenPath, fault: { _tag: "Echo", status: 400 } }),
    succeeds: false
  },
  { name: "device flow", flow: "device poll", succeeds: true },
  {
    name: "device flow, the poll is refused with an echo of the request",
    flow: "device poll",
    fault: () => world.proxy.inject({ path: world.tokenPath, fault: { _tag: "Echo", status: 400 } }),
    succeeds: false
  },
  {
    name: "device flow, the device authorization is refused with an echo of the request",
    flow: "device authorization",
    fault: () => world.proxy.inject({ path: world.devicePath, fault: { _tag: "Echo", status: 401 } }),
    succeeds: false
  },
  { name: "client credentials", flow: "client credentials", succeeds: true },
  {
    name: "client credentials, refused with an echo of the request (Basic header included)",
    flow: "client credentials",
    fault: () => world.proxy.inject({ path: world.tokenPath, fault: { _tag: "Echo", status: 401 } }),
    succeeds: false
  },
  { name: "refresh", flow: "refresh", succeeds: true },
  {
    name: "refresh, 503 with an echo of the request (kept, not retried)",
    flow: "refresh",
    fault: () => world.proxy.inject({ path: world.tokenPath, fault: { _tag: "Echo", status: 503 } }),
    succeeds: false
  },
  {
    name: "refresh, invalid_grant with an echo of the request (purged, logged in again in the browser)",
    flow: "refresh",
    fault: () =>
      world.proxy.inject({ path: world.tokenPath, fault: { _tag: "Echo", status: 400, error: "invalid_grant" } }),
    succeeds: true,
    log: "logging in again"
  }
]

describe("redaction audit: no secret in logs, spans, errors or pages (library, LogLevel.All)", () => {
  for (const testCase of cases) {
    it.live(testCase.name, () => {
      const audit = makeAudit()
      return audit.instrument(Effect.scoped(Effect.gen(function*() {
        world.proxy.reset()
        const transport = audit.recordRequests(NodeTransport.layer({ timeout: "10 seconds" }))
        const setup = yield* setupFlow(world, testCase.flow, transport, pageKeepingBrowser(audit))
        recordCredentials(audit, setup.seeded)
        testCase.fault?.()
        const exit = yield* Effect.exit(setup.auth.credentials)
        audit.addExit(exit)
        if (Exit.isSuccess(exit)) recordCredentials(audit, exit.value)
        yield* recordStored(audit, yield* entryOf(setup.keyring, world))
        expect(Exit.isSuccess(exit), Exit.isFailure(exit) ? String(exit.cause) : "").toBe(testCase.succeeds)
        if (testCase.flow === "client credentials") {
          audit.addSecret("client_secret", world.sandbox.clients.confidential.clientSecret)
        }
        // the audit saw the secrets it is looking for
        const kinds = [...audit.secrets.keys()]
        if (testCase.succeeds) expect(kinds).toContain("access_token")
        if (testCase.flow === "PKCE code exchange") {
          expect(kinds).toEqual(expect.arrayContaining(["code_verifier", "code"]))
        }
        if (testCase.flow === "device poll") expect(kinds).toContain("device_code")
        if (testCase.flow === "refresh") expect(kinds).toContain("refresh_token")
        if (testCase.flow === "client credentials") expect(kinds).toContain("client_secret")
        // the tracer and the logger saw the flow
        expect(audit.texts.some((text) => text.startsWith("span TokenClient."))).toBe(true)
        if (testCase.log !== undefined) expect(audit.texts.some((text) => text.includes(testCase.log!))).toBe(true)
        expect(audit.leaks()).toEqual([])
      })))
    })
  }

  it.live("external command, and a failing one that prints a token on stdout", () => {
    const audit = makeAudit()
    return audit.instrument(Effect.scoped(Effect.gen(function*() {
      const issued = yield* ClientCredentials.authenticate({
        endpoint: world.endpoint,
        config: world.config,
        clientId: world.sandbox.clients.confidential.clientId,
        clientSecret: Redacted.make(world.sandbox.clients.confidential.clientSecret)
      }).pipe(Effect.provide(NodeTransport.layer()))
      recordCredentials(audit, issued)
      const tokenFile = Path.join(dir, "token.txt")
      Fs.writeFileSync(tokenFile, Redacted.value(issued.accessToken), { mode: 0o600 })
      const print = "process.stdout.write(require('fs').readFileSync(process.argv[1], 'utf8'))"
      const commands = [
        { command: [process.execPath, "-e", print, tokenFile], succeeds: true },
        {
          command: [
            process.execPath,
            "-e",
            `${print}; process.stderr.write('token expired'); process.exit(7)`,
            tokenFile
          ],
          succeeds: false
        },
        // a token with a line break is refused; the refusal must not quote it
        { command: [process.execPath, "-e", `${print}; process.stdout.write('\\nx: y')`, tokenFile], succeeds: false }
      ]
      for (const { command, succeeds } of commands) {
        const keyring = yield* Keyring.makeMemory
        const context = yield* Layer.build(
          Flows.layerFromMode("ExternalCommand", {
            endpoint: world.endpoint,
            command,
            commandTimeout: "10 seconds"
          })
            .pipe(Layer.provide(Layer.mergeAll(
              NodeCommandRunner.layer,
              Layer.succeed(Keyring.Keyring, keyring),
              ClientConfig.layerStatic(world.config),
              NodeTransport.layer()
            )))
        )
        const exit = yield* Effect.exit(Context.get(context, Authenticator.Authenticator).credentials)
        audit.addExit(exit)
        expect(Exit.isSuccess(exit)).toBe(succeeds)
        yield* recordStored(
          audit,
          yield* entryOf(keyring, world)
        )
      }
      expect(audit.leaks()).toEqual([])
    })))
  })
})
