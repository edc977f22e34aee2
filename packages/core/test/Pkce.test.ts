import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Browser, CallbackPaste, ClientConfig, type Credentials, LoopbackServer, Pkce } from "@flyte-auth/core"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Logger, Queue, Redacted, Ref, TestClock } from "effect"
import { createHash } from "node:crypto"

const config = new ClientConfig.ClientConfig({
  tokenEndpoint: "https://idp.example/oauth2/token",
  authorizationEndpoint: "https://idp.example/oauth2/authorize?tenant=t1",
  redirectUri: "http://localhost:53593/callback",
  clientId: "flytectl",
  scopes: ["openid", "offline_access", "all"]
})

const tokenJson = { access_token: "at-123", refresh_token: "rt-456", token_type: "Bearer", expires_in: 3600 }

const jsonResponse = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })

interface TokenRequest {
  readonly url: string
  readonly form: URLSearchParams
  readonly authorization: string | undefined
}

/** What the user's browser does with the authorization URL. */
type Visit = (authorizeUrl: URL, harness: Harness) => Effect.Effect<void, unknown>

interface Harness {
  readonly loopback: LoopbackServer.TestLoopbackServer
  readonly opened: Deferred.Deferred<string>
  readonly openedUrls: Ref.Ref<Array<string>>
  readonly tokenRequests: Ref.Ref<Array<TokenRequest>>
  /** The pages the browser got back from the callback server, in order. */
  readonly pages: Queue.Queue<LoopbackServer.CallbackPage>
  readonly logs: Array<string>
  readonly run: (options?: Partial<Pkce.Options>) => Effect.Effect<Credentials.Credentials, AuthenticationError>
}

const makeHarness = (setup: {
  readonly visit?: Visit
  readonly tokenResponse?: Effect.Effect<Response>
  readonly busy?: ReadonlyArray<number>
  readonly browserFails?: boolean
  /** Replaces the test browser. */
  readonly browser?: Browser.Browser.Service
} = {}) =>
  Effect.gen(function*() {
    const loopback = yield* LoopbackServer.makeTest({ busy: setup.busy ?? [] })
    const opened = yield* Deferred.make<string>()
    const openedUrls = yield* Ref.make<Array<string>>([])
    const tokenRequests = yield* Ref.make<Array<TokenRequest>>([])
    const pages = yield* Queue.unbounded<LoopbackServer.CallbackPage>()
    const logs: Array<string> = []

    const httpClient = HttpClient.make((request) =>
      Effect.gen(function*() {
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        yield* Ref.update(tokenRequests, (all) => [
          ...all,
          { url: request.url, form: new URLSearchParams(body), authorization: request.headers["authorization"] }
        ])
        const response = yield* (setup.tokenResponse ?? Effect.sync(() => jsonResponse(tokenJson)))
        return HttpClientResponse.fromWeb(request, response)
      })
    )
    const harness: Harness = {
      loopback,
      opened,
      openedUrls,
      tokenRequests,
      pages,
      logs,
      run: (options = {}) =>
        Pkce.authenticate({ endpoint: "flyte.example:443", config, ...options }).pipe(
          Effect.provideService(LoopbackServer.LoopbackServer, loopback.service),
          Effect.provideService(HttpClient.HttpClient, httpClient),
          Effect.provideService(Browser.Browser, setup.browser ?? browser),
          Effect.provide(Logger.replace(
            Logger.defaultLogger,
            Logger.make(({ logLevel, message }) => {
              logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
            })
          ))
        )
    }
    const browser: Browser.Browser.Service = {
      open: (url) =>
        Effect.gen(function*() {
          yield* Ref.update(openedUrls, (all) => [...all, url])
          yield* Deferred.succeed(opened, url)
          if (setup.visit !== undefined) {
            // A failing visit shows up as a page with status 0, so a test waiting for the page sees why.
            yield* Effect.forkDaemon(
              setup.visit(new URL(url), harness).pipe(
                Effect.catchAllCause((cause) => Queue.offer(pages, { status: 0, html: Cause.pretty(cause) }))
              )
            )
          }
          if (setup.browserFails === true) {
            return yield* new AuthenticationError({ reason: "Browser", description: "no display" })
          }
        })
    }
    return harness
  })

/** The browser follows the redirect back to the callback server with these query parameters. */
const redirectBack = (query: (authorize: URL) => Record<string, string>, path?: string): Visit => (authorize, h) =>
  Effect.gen(function*() {
    const redirect = new URL(authorize.searchParams.get("redirect_uri")!)
    if (path !== undefined) redirect.pathname = path
    for (const [key, value] of Object.entries(query(authorize))) redirect.searchParams.set(key, value)
    const page = yield* h.loopback.request(redirect.toString())
    yield* Queue.offer(h.pages, page)
  })

const approve = redirectBack((authorize) => ({ code: "the-auth-code", state: authorize.searchParams.get("state")! }))

const s256 = (verifier: string) => createHash("sha256").update(verifier).digest("base64url")

const unreserved = /^[A-Za-z0-9\-._~]{43,128}$/

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (error === undefined) throw new Error(`expected a typed failure, got ${exit.cause._tag}`)
  return error
}

describe("Pkce.authenticate", () => {
  it.effect("logs in: authorize URL, S256 challenge of the verifier, code exchange, then the success page", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      const credentials = yield* h.run()

      expect(Redacted.value(credentials.accessToken)).toBe("at-123")
      expect(Redacted.value(credentials.refreshToken!)).toBe("rt-456")
      expect(credentials.endpoint).toBe("flyte.example:443")

      const [url] = yield* Ref.get(h.openedUrls)
      const authorize = new URL(url)
      expect(authorize.origin + authorize.pathname).toBe("https://idp.example/oauth2/authorize")
      const q = authorize.searchParams
      expect(q.get("tenant")).toBe("t1")
      expect(q.get("response_type")).toBe("code")
      expect(q.get("client_id")).toBe("flytectl")
      expect(q.get("redirect_uri")).toBe("http://localhost:53593/callback")
      expect(q.get("scope")).toBe("openid offline_access all")
      expect(q.get("code_challenge_method")).toBe("S256")
      expect(q.get("state")).toMatch(unreserved)
      expect(q.has("audience")).toBe(false)

      const requests = yield* Ref.get(h.tokenRequests)
      expect(requests).toHaveLength(1)
      const form = requests[0].form
      expect(requests[0].url).toBe("https://idp.example/oauth2/token")
      expect(form.get("grant_type")).toBe("authorization_code")
      expect(form.get("code")).toBe("the-auth-code")
      expect(form.get("client_id")).toBe("flytectl")
      expect(form.get("redirect_uri")).toBe("http://localhost:53593/callback")
      const verifier = form.get("code_verifier")!
      expect(verifier).toMatch(unreserved)
      expect(q.get("code_challenge")).toBe(s256(verifier))
      expect(requests[0].authorization).toBeUndefined()

      const page = yield* Queue.take(h.pages)
      expect(page.status).toBe(200)
      expect(page.html).toBe(Pkce.defaultSuccessPage)
      // The port is released when the flow ends.
      expect(yield* h.loopback.listening).toEqual([])
    }))

  it.effect("always logs the URL (and hands it to onUrl), but never the code or the verifier", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      const printed: Array<string> = []
      yield* h.run({ onUrl: (url) => Effect.sync(() => printed.push(url)) })
      const [url] = yield* Ref.get(h.openedUrls)
      expect(printed).toEqual([url])
      expect(h.logs.some((line) => line.startsWith("INFO") && line.includes(url))).toBe(true)
      const verifier = (yield* Ref.get(h.tokenRequests))[0].form.get("code_verifier")!
      for (const line of h.logs) {
        expect(line).not.toContain(verifier)
        expect(line).not.toContain("the-auth-code")
        expect(line).not.toContain("at-123")
      }
    }))

  it.effect("keeps waiting when the browser cannot be opened: the logged URL still works", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve, browserFails: true })
      const credentials = yield* h.run()
      expect(Redacted.value(credentials.accessToken)).toBe("at-123")
      expect(h.logs.some((line) => line.startsWith("WARN") && line.includes("no display"))).toBe(true)
    }))

  it.effect("uses a fresh state and verifier for every attempt", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      yield* h.run()
      yield* h.run()
      yield* h.run()
      const urls = (yield* Ref.get(h.openedUrls)).map((url) => new URL(url).searchParams)
      const verifiers = (yield* Ref.get(h.tokenRequests)).map((r) => r.form.get("code_verifier")!)
      expect(new Set(urls.map((q) => q.get("state"))).size).toBe(3)
      expect(new Set(verifiers).size).toBe(3)
      urls.forEach((q, i) => expect(q.get("code_challenge")).toBe(s256(verifiers[i])))
    }))

  it.effect("generates verifiers and states of 43-128 unreserved characters from the CSPRNG", () =>
    Effect.gen(function*() {
      const seen = new Set<string>()
      for (let i = 0; i < 50; i++) {
        const verifier = Redacted.value(yield* Pkce.generateCodeVerifier)
        const state = yield* Pkce.generateState
        expect(verifier).toMatch(unreserved)
        expect(state).toMatch(unreserved)
        seen.add(verifier).add(state)
      }
      expect(seen.size).toBe(100)
      // RFC 7636 appendix B.
      expect(yield* Pkce.codeChallenge(Redacted.make("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))).toBe(
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
      )
    }))

  it.effect("sends the audience only when set, and extra parameters", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      yield* h.run({
        config: new ClientConfig.ClientConfig({ ...config, audience: "https://flyte.example" }),
        extraAuthorizeParams: { prompt: "login" }
      })
      const q = new URL((yield* Ref.get(h.openedUrls))[0]).searchParams
      expect(q.get("audience")).toBe("https://flyte.example")
      expect(q.get("prompt")).toBe("login")
    }))

  it.effect("refuses extra parameters that would replace the flow's own", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      const error = failure(yield* Effect.exit(h.run({ extraAuthorizeParams: { state: "fixed" } })))
      expect(error.reason).toBe("Config")
      expect(error.message).toContain("state")
      expect(yield* Ref.get(h.openedUrls)).toEqual([])
    }))

  it.effect("fails with Config when the configuration cannot work, before binding anything", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      const cases: Array<[Partial<ConstructorParameters<typeof ClientConfig.ClientConfig>[0]>, string]> = [
        [{ authorizationEndpoint: undefined }, "authorization endpoint"],
        [{ clientId: "" }, "client id"],
        [{ redirectUri: "http://flyte.example:53593/callback" }, "loopback"],
        [{ redirectUri: "https://localhost:53593/callback" }, "http://"],
        [{ authorizationEndpoint: "not a url" }, "not a valid URL"]
      ]
      for (const [override, text] of cases) {
        const error = failure(
          yield* Effect.exit(h.run({ config: new ClientConfig.ClientConfig({ ...config, ...override }) }))
        )
        expect(error.reason).toBe("Config")
        expect(error.message).toContain(text)
      }
      expect(yield* Ref.get(h.openedUrls)).toEqual([])
      expect(yield* h.loopback.listening).toEqual([])
    }))

  it.effect("uses Flyte's fixed redirect URI when the config has none", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      yield* h.run({ config: new ClientConfig.ClientConfig({ ...config, redirectUri: undefined }) })
      const q = new URL((yield* Ref.get(h.openedUrls))[0]).searchParams
      expect(q.get("redirect_uri")).toBe(Pkce.defaultRedirectUri)
      expect(Pkce.defaultRedirectUri).toBe("http://localhost:53593/callback")
    }))

  it.effect("times out even when opening the browser never returns", () =>
    Effect.gen(function*() {
      const stuck = yield* Deferred.make<void>()
      const h = yield* makeHarness({
        browser: { open: () => Effect.zipRight(Deferred.succeed(stuck, undefined), Effect.never) }
      })
      const fiber = yield* Effect.fork(h.run())
      yield* Deferred.await(stuck)
      yield* TestClock.adjust(Duration.minutes(5))
      expect(failure(yield* Fiber.await(fiber)).reason).toBe("Timeout")
      expect(yield* h.loopback.listening).toEqual([])
    }))

  it.effect("a pinned redirect port that is busy is PortInUse naming the port and the redirect URI", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve, busy: [53593, 8400] })
      const error = failure(yield* Effect.exit(h.run({ redirectPort: 53593 })))
      expect(error.reason).toBe("PortInUse")
      expect(error.message).toContain("53593")
      expect(error.message).toContain("http://localhost:53593/callback")
      // The pinned port replaces the redirect URI's port.
      const other = failure(yield* Effect.exit(h.run({ redirectPort: 8400 })))
      expect(other.message).toContain("http://localhost:8400/callback")
      expect(yield* Ref.get(h.openedUrls)).toEqual([])
      expect(failure(yield* Effect.exit(h.run({ redirectPort: 70000 }))).reason).toBe("Config")
    }))

  it.effect("a busy redirect port is replaced by a free one, sent in the URL and the exchange, with a warning", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve, busy: [53593] })
      const credentials = yield* h.run()
      expect(Redacted.value(credentials.accessToken)).toBe("at-123")
      const redirectUri = new URL((yield* Ref.get(h.openedUrls))[0]).searchParams.get("redirect_uri")!
      expect(redirectUri).toMatch(/^http:\/\/localhost:\d+\/callback$/)
      expect(redirectUri).not.toBe("http://localhost:53593/callback")
      expect((yield* Ref.get(h.tokenRequests))[0].form.get("redirect_uri")).toBe(redirectUri)
      const warning = h.logs.find((line) => line.startsWith("WARN"))
      expect(warning).toContain("port 53593")
      expect(warning).toContain(`listening on ${redirectUri} instead`)
      expect(warning).toContain("must allow any loopback port")
      expect(yield* h.loopback.listening).toEqual([])
    }))

  it.effect("a pinned redirect port that is free is used as it is", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      yield* h.run({ redirectPort: 8400 })
      const redirectUri = new URL((yield* Ref.get(h.openedUrls))[0]).searchParams.get("redirect_uri")!
      expect(redirectUri).toBe("http://localhost:8400/callback")
      expect((yield* Ref.get(h.tokenRequests))[0].form.get("redirect_uri")).toBe(redirectUri)
    }))

  it.effect("with port 0, sends the redirect URI of the port actually bound, in the URL and the exchange", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      yield* h.run({ config: new ClientConfig.ClientConfig({ ...config, redirectUri: "http://127.0.0.1:0/cb" }) })
      const redirectUri = new URL((yield* Ref.get(h.openedUrls))[0]).searchParams.get("redirect_uri")!
      expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/cb$/)
      expect(redirectUri).not.toBe("http://127.0.0.1:0/cb")
      expect((yield* Ref.get(h.tokenRequests))[0].form.get("redirect_uri")).toBe(redirectUri)
    }))

  it.effect("answers a stray path 404 and keeps waiting; accepts a trailing slash", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({
        visit: (authorize, h) =>
          Effect.gen(function*() {
            const origin = new URL(authorize.searchParams.get("redirect_uri")!).origin
            yield* Queue.offer(h.pages, yield* h.loopback.request(`${origin}/favicon.ico`))
            yield* redirectBack((a) => ({ code: "c", state: a.searchParams.get("state")! }), "/callback/")(authorize, h)
          })
      })
      const credentials = yield* h.run()
      expect(Redacted.value(credentials.accessToken)).toBe("at-123")
      expect((yield* Queue.take(h.pages)).status).toBe(404)
      expect((yield* Queue.take(h.pages)).status).toBe(200)
    }))

  it.effect("rejects a wrong state with a failure page and never exchanges the code", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: redirectBack(() => ({ code: "stolen-code", state: "attacker-state" })) })
      const error = failure(yield* Effect.exit(h.run()))
      expect(error.reason).toBe("StateMismatch")
      expect(yield* Ref.get(h.tokenRequests)).toEqual([])
      const page = yield* Queue.take(h.pages)
      expect(page.status).toBe(400)
      expect(page.html).toContain("Login failed")
      expect(page.html).toContain("state")
      expect(page.html).not.toContain("Login successful")
      expect(error.message).not.toContain("stolen-code")
    }))

  it.effect("rejects a callback without state", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: redirectBack(() => ({ code: "c" })) })
      expect(failure(yield* Effect.exit(h.run())).reason).toBe("StateMismatch")
      expect(yield* Ref.get(h.tokenRequests)).toEqual([])
    }))

  it.effect("ends promptly on ?error= with the provider's error and description, HTML-escaped on the page", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({
        visit: redirectBack((a) => ({
          error: "access_denied",
          error_description: "User <script>alert(1)</script> said \"no\"",
          state: a.searchParams.get("state")!
        }))
      })
      const error = failure(yield* Effect.exit(h.run()))
      expect(error.reason).toBe("CallbackError")
      expect(error.error).toBe("access_denied")
      expect(error.errorDescription).toBe("User <script>alert(1)</script> said \"no\"")
      expect(yield* Ref.get(h.tokenRequests)).toEqual([])
      const page = yield* Queue.take(h.pages)
      expect(page.status).toBe(400)
      expect(page.html).toContain("User &lt;script&gt;alert(1)&lt;/script&gt; said &quot;no&quot;")
      expect(page.html).not.toContain("<script>")
    }))

  it.effect("shows the failure page, not the success page, when the code exchange fails", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({
        visit: approve,
        tokenResponse: Effect.sync(() =>
          jsonResponse({ error: "invalid_grant", error_description: "code <expired>" }, 400)
        )
      })
      const error = failure(yield* Effect.exit(h.run()))
      expect(error.reason).toBe("OAuthError")
      expect(error.error).toBe("invalid_grant")
      const page = yield* Queue.take(h.pages)
      expect(page.status).toBe(502)
      expect(page.html).toContain("invalid_grant: code &lt;expired&gt;")
      expect(page.html).not.toContain("Login successful")
      expect(error.message).not.toContain("the-auth-code")
    }))

  it.effect("renders custom success and failure pages", () =>
    Effect.gen(function*() {
      const ok = yield* makeHarness({ visit: approve })
      yield* ok.run({ successPage: "<p>Welcome to Flyte</p>" })
      expect((yield* Queue.take(ok.pages)).html).toBe("<p>Welcome to Flyte</p>")

      const denied = yield* makeHarness({
        visit: redirectBack((a) => ({
          error: "access_denied",
          error_description: "a&b",
          state: a.searchParams.get("state")!
        }))
      })
      yield* Effect.exit(denied.run({ failurePage: "<main>Nope: {{message}} / {{message}}</main>" }))
      const page = (yield* Queue.take(denied.pages)).html
      expect(page).toMatch(/^<main>Nope: .*a&amp;b.* \/ .*a&amp;b.*<\/main>$/)
    }))

  it.effect("times out after 5 minutes by default and frees the port", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      const fiber = yield* Effect.fork(h.run())
      yield* Deferred.await(h.opened)
      expect(yield* h.loopback.listening).toEqual(["http://localhost:53593/callback"])
      yield* TestClock.adjust(Duration.minutes(4))
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.minutes(1))
      const error = failure(yield* Fiber.await(fiber))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("http://localhost:53593/callback")
      expect(yield* h.loopback.listening).toEqual([])
    }))

  it.effect("honours a custom timeout", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      const fiber = yield* Effect.fork(h.run({ timeout: "30 seconds" }))
      yield* Deferred.await(h.opened)
      yield* TestClock.adjust(Duration.seconds(29))
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.seconds(1))
      expect(failure(yield* Fiber.await(fiber)).reason).toBe("Timeout")
    }))

  it.effect("answers a callback still open when the attempt is interrupted, and frees the port", () =>
    Effect.gen(function*() {
      const exchanging = yield* Deferred.make<void>()
      const h = yield* makeHarness({
        visit: approve,
        tokenResponse: Effect.zipRight(Deferred.succeed(exchanging, undefined), Effect.never)
      })
      const fiber = yield* Effect.fork(h.run())
      yield* Deferred.await(exchanging)
      yield* Fiber.interrupt(fiber)
      expect(yield* Queue.take(h.pages)).toEqual(LoopbackServer.endedPage)
      expect(yield* h.loopback.listening).toEqual([])
    }))
})

describe("Pkce.authenticate with a pasted redirect (no browser opened)", () => {
  /** A login whose browser cannot be opened, with a paste reader; `redirect` builds a redirect of the attempt. */
  const pasting = (setup: Parameters<typeof makeHarness>[0] = {}) =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ browserFails: true, ...setup })
      const paste = yield* CallbackPaste.makeScripted([])
      const fiber = yield* Effect.fork(
        h.run().pipe(Effect.provideService(CallbackPaste.CallbackPaste, paste.service))
      )
      const authorize = new URL(yield* Deferred.await(h.opened))
      const redirect = (query: Record<string, string>) => {
        const url = new URL(authorize.searchParams.get("redirect_uri")!)
        for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value)
        return url.toString()
      }
      return { h, paste, fiber, state: authorize.searchParams.get("state")!, redirect }
    })

  it.effect("exchanges the code of a pasted redirect URL, with the attempt's redirect URI", () =>
    Effect.gen(function*() {
      const { fiber, h, paste, redirect, state } = yield* pasting()
      yield* paste.type(`  ${redirect({ code: "pasted-code", state })}  `)
      const credentials = yield* Fiber.join(fiber)
      expect(Redacted.value(credentials.accessToken)).toBe("at-123")
      const [request] = yield* Ref.get(h.tokenRequests)
      expect(request.form.get("code")).toBe("pasted-code")
      expect(request.form.get("redirect_uri")).toBe("http://localhost:53593/callback")
      expect(paste.prompts()).toHaveLength(1)
      expect(paste.prompts()[0]).toContain("paste the address your browser was redirected to (or just the code)")
      expect(h.logs.join("\n")).not.toContain("pasted-code")
    }))

  it.effect("a pasted redirect of another state is the StateMismatch message and the prompt again, nothing exchanged", () =>
    Effect.gen(function*() {
      const { fiber, h, paste, redirect, state } = yield* pasting()
      yield* paste.type(redirect({ code: "old-code", state: "state-of-another-attempt" }))
      yield* paste.type(redirect({ code: "no-state-code" }))
      yield* paste.type("not a url at all")
      yield* paste.type(redirect({ state }))
      yield* paste.type(redirect({ code: "good-code", state }))
      yield* Fiber.join(fiber)
      const prompts = paste.prompts()
      expect(prompts).toHaveLength(5)
      expect(prompts[1]).toContain("carried a state that is not the one of this login attempt")
      expect(prompts[2]).toContain("carried no state")
      expect(prompts[3]).toContain("Not a login redirect")
      expect(prompts[4]).toContain("carried neither a code nor an error")
      for (const prompt of prompts) expect(prompt).not.toMatch(/old-code|no-state-code/)
      const requests = yield* Ref.get(h.tokenRequests)
      expect(requests.map((r) => r.form.get("code"))).toEqual(["good-code"])
    }))

  it.effect("accepts a bare code (no state to check) and a pasted query string", () =>
    Effect.gen(function*() {
      const bare = yield* pasting()
      yield* bare.paste.type("bare-code-123")
      yield* Fiber.join(bare.fiber)
      expect((yield* Ref.get(bare.h.tokenRequests))[0].form.get("code")).toBe("bare-code-123")

      const query = yield* pasting()
      yield* query.paste.type(`?code=query-code&state=${encodeURIComponent(query.state)}`)
      yield* Fiber.join(query.fiber)
      expect((yield* Ref.get(query.h.tokenRequests))[0].form.get("code")).toBe("query-code")
    }))

  it.effect("a pasted error= from the identity provider ends the login as the callback would", () =>
    Effect.gen(function*() {
      const { fiber, h, paste, redirect, state } = yield* pasting()
      yield* paste.type(redirect({ error: "access_denied", error_description: "no", state }))
      const error = failure(yield* Fiber.await(fiber))
      expect(error.reason).toBe("CallbackError")
      expect(error.error).toBe("access_denied")
      expect(yield* Ref.get(h.tokenRequests)).toEqual([])
    }))

  it.effect("the loopback callback still wins while the prompt waits", () =>
    Effect.gen(function*() {
      const { fiber, h, paste, redirect, state } = yield* pasting()
      yield* Effect.yieldNow()
      const page = yield* Effect.fork(h.loopback.request(redirect({ code: "callback-code", state })))
      yield* Fiber.join(fiber)
      expect((yield* Fiber.join(page)).status).toBe(200)
      expect((yield* Ref.get(h.tokenRequests))[0].form.get("code")).toBe("callback-code")
      expect(paste.prompts()).toHaveLength(1)
    }))

  it.effect("with the input ended, waits for the callback alone", () =>
    Effect.gen(function*() {
      const { fiber, h, paste, redirect, state } = yield* pasting()
      yield* paste.end
      yield* Effect.yieldNow()
      yield* h.loopback.request(redirect({ code: "callback-code", state }))
      yield* Fiber.join(fiber)
      expect(paste.prompts()).toHaveLength(1)
    }))

  it.effect("a timeout says that nothing was pasted either", () =>
    Effect.gen(function*() {
      const { fiber } = yield* pasting()
      yield* TestClock.adjust(Duration.minutes(5))
      const error = failure(yield* Fiber.await(fiber))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("(and no redirect was pasted) within 5m")
    }))

  it.effect("asks nothing when the browser was opened", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ visit: approve })
      const paste = yield* CallbackPaste.makeScripted([])
      yield* h.run().pipe(Effect.provideService(CallbackPaste.CallbackPaste, paste.service))
      expect(paste.prompts()).toEqual([])
    }))
})

describe("CallbackPaste.parse", () => {
  it("reads URLs, queries and bare codes; rejects what is neither", () => {
    const code = (line: string) => {
      const pasted = CallbackPaste.parse(line)
      return pasted._tag === "Invalid"
        ? pasted._tag
        : [pasted._tag, pasted.callback.code && Redacted.value(pasted.callback.code), pasted.callback.state]
    }
    expect(code("http://localhost:53593/callback?code=c1&state=s1")).toEqual(["Redirect", "c1", "s1"])
    expect(code("\"http://127.0.0.1:1/callback?state=s2&code=c%2B2#frag\"")).toEqual(["Redirect", "c+2", "s2"])
    expect(code("code=c3&state=s3")).toEqual(["Redirect", "c3", "s3"])
    expect(code("?code=c4")).toEqual(["Redirect", "c4", undefined])
    expect(code(" c5.-_~xyz ")).toEqual(["Code", "c5.-_~xyz", undefined])
    expect(code("")).toBe("Invalid")
    expect(code("two words")).toBe("Invalid")
    expect(code("http://[bad")).toBe("Invalid")
  })
})

describe("Pkce.escapeHtml", () => {
  it("escapes the five HTML special characters", () => {
    expect(Pkce.escapeHtml(`<a href="x">Tom & Jerry's</a>`)).toBe(
      "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
    )
  })
})
