import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Browser, ClientConfig, Pkce } from "@flyte-auth/core"
import { NodeBrowser, NodeLoopbackServer } from "@flyte-auth/node"
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox, UserAgent } from "@flyte-auth/sandbox"
import { Cause, Deferred, Effect, Exit, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import { chromium } from "playwright-core"

let sandbox: Sandbox.Service
beforeAll(async () => {
  sandbox = await startSandbox()
})
afterAll(() => sandbox?.close())

const configFor = (redirectUri: string) =>
  new ClientConfig.ClientConfig({
    tokenEndpoint: sandbox.endpoints.token,
    authorizationEndpoint: sandbox.endpoints.authorization,
    clientId: sandbox.clients.public.clientId,
    redirectUri,
    scopes: sandbox.scopes,
    audience: sandbox.audience
  })

/**
 * A `Browser` that hands the URL to `visit` in the background, as a user acts on what the browser shows, and
 * records how the visit ended.
 */
const browserVisiting = <A>(visit: (url: string) => Promise<A>) =>
  Effect.map(Deferred.make<A, unknown>(), (visited) => ({
    visited,
    layer: Layer.succeed(Browser.Browser, {
      open: (url) =>
        Effect.asVoid(Effect.forkDaemon(
          Effect.tryPromise(() => visit(url)).pipe(
            Effect.exit,
            Effect.flatMap((exit) => Deferred.done(visited, Exit.mapError(exit, (error) => error.error)))
          )
        ))
    })
  }))

const login = (redirectUri: string, browser: Layer.Layer<Browser.Browser>, options: Partial<Pkce.Options> = {}) =>
  Pkce.authenticate({ endpoint: sandbox.adminHttp, config: configFor(redirectUri), ...options }).pipe(
    Effect.provide(Layer.mergeAll(NodeLoopbackServer.layer, browser, NodeHttpClient.layerUndici)),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
  if (Option.isNone(error)) throw new Error(`expected a typed failure, got ${String(exit)}`)
  return error.value
}

const whoami = (accessToken: Redacted.Redacted<string>) =>
  Effect.promise(async () => {
    const response = await fetch(`${sandbox.adminHttp}/api/v1/whoami`, {
      headers: { [sandbox.headerKey]: `Bearer ${Redacted.value(accessToken)}` }
    })
    return { status: response.status, json: await response.json() as { subject?: string } }
  })

const canBind = (port: number) =>
  Effect.promise(() =>
    new Promise<boolean>((resolve) => {
      const server = Http.createServer()
      server.once("error", () => resolve(false))
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
    })
  )

describe("Pkce.authenticate against the sandbox IdP", () => {
  it.live("logs in through the IdP's login and consent pages; shows the success page after the exchange", () =>
    Effect.gen(function*() {
      const before = sandbox.stats().tokenRequests.authorization_code
      const browser = yield* browserVisiting((url) => UserAgent.authorize(url, sandbox.user))
      const credentials = yield* login("http://localhost:0/callback", browser.layer)

      expect(Redacted.value(credentials.accessToken)).not.toBe("")
      expect(credentials.refreshToken).toBeDefined()
      expect(credentials.expiresAt).toBeDefined()
      expect(credentials.endpoint).toBe(sandbox.adminHttp)
      expect(sandbox.stats().tokenRequests.authorization_code).toBe(before + 1)

      const page = yield* Deferred.await(browser.visited)
      expect(page.status).toBe(200)
      expect(page.body).toBe(Pkce.defaultSuccessPage)
      const callback = new URL(page.callbackUrl)
      expect(callback.hostname).toBe("localhost")
      expect(yield* canBind(Number(callback.port))).toBe(true)

      const me = yield* whoami(credentials.accessToken)
      expect(me.status).toBe(200)
      expect(me.json.subject).toBe(sandbox.user.subject)
    }))

  it.live("a browser callback that settles only after the visit (awaiting the IdP's pages) does not hang the login", () =>
    Effect.gen(function*() {
      let visit: Promise<UserAgent.CallbackResponse> | undefined
      const browser = NodeBrowser.layerCallback(async (url) => {
        visit = UserAgent.authorize(url, sandbox.user)
        await visit
      })
      const credentials = yield* login("http://localhost:0/callback", browser).pipe(Effect.timeout("20 seconds"))
      expect((yield* whoami(credentials.accessToken)).status).toBe(200)
      // The visit ended on the success page, served after the exchange.
      const page = yield* Effect.promise(() => visit!)
      expect(page.status).toBe(200)
    }))

  it.live("ends with CallbackError access_denied when the user denies, without a token request", () =>
    Effect.gen(function*() {
      const before = sandbox.stats().tokenRequests.authorization_code
      const browser = yield* browserVisiting((url) => UserAgent.deny(url, sandbox.user))
      const error = failureOf(yield* Effect.exit(login("http://127.0.0.1:0/callback", browser.layer)))
      expect(error.reason).toBe("CallbackError")
      expect(error.error).toBe("access_denied")
      expect(sandbox.stats().tokenRequests.authorization_code).toBe(before)
      const page = yield* Deferred.await(browser.visited)
      expect(page.status).toBe(400)
      expect(page.body).toContain("Login failed")
      expect(page.body).toContain("access_denied")
    }))

  it.live("shows the failure page, not the success page, when the IdP refuses the code exchange", () =>
    Effect.gen(function*() {
      sandbox.failNextTokenRequests(1, {
        status: 400,
        body: { error: "invalid_grant", error_description: "grant request is <invalid>" }
      })
      const browser = yield* browserVisiting((url) => UserAgent.authorize(url, sandbox.user))
      const error = failureOf(yield* Effect.exit(login("http://127.0.0.1:0/callback", browser.layer)))
      expect(error.reason).toBe("OAuthError")
      expect(error.error).toBe("invalid_grant")
      const page = yield* Deferred.await(browser.visited)
      expect(page.status).toBe(502)
      expect(page.body).toContain("grant request is &lt;invalid&gt;")
      expect(page.body).not.toContain("Login successful")
    }))
})

describe.skipIf(!process.env.FLYTE_AUTH_TEST_CHROMIUM)("Pkce.authenticate in headless Chromium", () => {
  it.scopedLive(
    "fills the IdP's login and consent forms in a real browser and ends on our success page",
    () =>
      Effect.gen(function*() {
        const chrome = yield* Effect.acquireRelease(
          Effect.promise(() =>
            chromium.launch({
              executablePath: process.env.FLYTE_AUTH_TEST_CHROMIUM!,
              headless: true,
              // Playwright gives every launch a fresh temporary profile (it refuses --user-data-dir in args).
              args: [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync"
              ]
            })
          ),
          (browser) => Effect.promise(() => browser.close())
        )
        const tab = yield* Effect.promise(() => chrome.newPage())
        const free = yield* Effect.promise(() =>
          new Promise<number>((resolve) => {
            const server = Http.createServer().listen(0, "127.0.0.1", () => {
              const { port } = server.address() as Net.AddressInfo
              server.close(() => resolve(port))
            })
          })
        )
        const redirectUri = `http://localhost:${free}/callback`

        const browser = yield* browserVisiting(async (url) => {
          await tab.goto(url)
          await tab.waitForSelector("meta[name=flyte-sandbox-page][content=login]", { state: "attached" })
          await tab.fill("#username", sandbox.user.username)
          await tab.fill("#password", sandbox.user.password)
          await tab.click("button[name=decision][value=approve]")
          await tab.waitForSelector("meta[name=flyte-sandbox-page][content=consent]", { state: "attached" })
          await tab.click("button[name=decision][value=approve]")
          await tab.waitForURL((u) => u.origin === new URL(redirectUri).origin, { waitUntil: "load" })
          return { url: tab.url(), text: await tab.locator("body").innerText() }
        })
        const credentials = yield* login(redirectUri, browser.layer, {
          successPage: "<!doctype html><title>Done</title><h1>Welcome to Flyte</h1><p>You may close this tab.</p>"
        })
        expect(credentials.refreshToken).toBeDefined()

        const page = yield* Deferred.await(browser.visited)
        expect(page.url.startsWith(`${redirectUri}?`)).toBe(true)
        expect(page.text).toContain("Welcome to Flyte")
        expect((yield* whoami(credentials.accessToken)).json.subject).toBe(sandbox.user.subject)
        expect(yield* canBind(free)).toBe(true)
      }),
    30_000
  )
})
