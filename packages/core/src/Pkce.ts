/**
 * The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636) for native apps (RFC 8252): open the
 * identity provider's login page in a browser, receive the redirect on a loopback server, check it, exchange
 * the code for tokens, and only then tell the user in the browser that the login worked.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import { AuthenticationError } from "./AuthError.js"
import { Browser } from "./Browser.js"
import * as CallbackPaste from "./CallbackPaste.js"
import type { ClientConfig } from "./ClientConfig.js"
import type { Credentials } from "./Credentials.js"
import { fromTokens } from "./Credentials.js"
import * as IdToken from "./IdToken.js"
import type { CallbackRequest, Listener } from "./LoopbackServer.js"
import { LoopbackServer } from "./LoopbackServer.js"
import * as Policies from "./Policies.js"
import * as TokenClient from "./TokenClient.js"

/**
 * Options of one PKCE login.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The endpoint the credentials are for (the keyring key). */
  readonly endpoint: string
  /**
   * Needs `authorizationEndpoint` and `clientId`; `redirectUri` defaults to `defaultRedirectUri`; `scopes` and
   * `audience` are sent when set.
   */
  readonly config: ClientConfig
  /** For a confidential client: sent to the token endpoint with HTTP Basic. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /**
   * Pins the callback port: it replaces the redirect URI's port, and a busy port then fails with reason
   * `PortInUse`. Without it a busy loopback port is replaced by a free one (RFC 8252 §7.3), with a warning.
   */
  readonly redirectPort?: number | undefined
  /** How long to wait for the browser callback; `Policies.interactiveTimeout` (5 minutes) by default. */
  readonly timeout?: Duration.DurationInput | undefined
  /** The HTML shown in the browser once the tokens were obtained. */
  readonly successPage?: string | undefined
  /**
   * The HTML shown in the browser when the login failed. Every `{{message}}` in it is replaced by the
   * HTML-escaped reason.
   */
  readonly failurePage?: string | undefined
  /** More parameters for the authorization URL (e.g. `prompt`); they may not replace the flow's own. */
  readonly extraAuthorizeParams?: Readonly<Record<string, string>> | undefined
  /**
   * Called with the authorization URL before the browser is opened, e.g. to print it. The URL is logged at
   * info level in any case, since opening a browser can fail silently.
   */
  readonly onUrl?: ((url: string) => Effect.Effect<void>) | undefined
}

/**
 * Runs one PKCE login and answers the credentials. Every attempt uses a fresh `state` and `code_verifier`
 * from a CSPRNG. The callback server is released when the attempt ends, however it ends.
 *
 * When the redirect URI's port is busy, the server listens on a free loopback port instead, and that redirect URI
 * goes into both the authorization request and the code exchange (RFC 8252 §7.3: the identity provider must
 * accept any port for a native client's loopback redirect); a warning says so.
 *
 * Fails with an `AuthenticationError` of reason `Config` (incomplete configuration or a non-loopback redirect
 * URI), `PortInUse` (only for a pinned `redirectPort`, or when no free port can be bound either), `Timeout` (no callback in time), `CallbackError` (the provider redirected with
 * `?error=`), `StateMismatch` (the code is then not exchanged), `InvalidResponse`, or any reason of
 * `TokenClient.authorizationCode`. A browser that cannot be opened is only a warning: the URL is logged.
 *
 * When the browser could not be opened and a `CallbackPaste` is provided (a terminal to type in), the user may also
 * paste the address the identity provider redirected to (from a browser on any machine), or just its `code`: the
 * first of the loopback callback and the paste wins. A pasted address is checked exactly like a callback (state,
 * `error=`, code); a bare code carries no state, so that check cannot be made for it. A paste that is not a
 * redirect of this attempt (another state, no code, not a URL) is reported and asked for again; a pasted
 * `error=` ends the login as the callback would.
 *
 * @example
 * ```ts
 * import { Pkce } from "@flyte-auth/core"
 * const credentials = Pkce.authenticate({ endpoint: "flyte.example.com", config })
 * ```
 *
 * @since 0.1.0
 * @category flows
 */
export const authenticate: (
  options: Options
) => Effect.Effect<Credentials, AuthenticationError, HttpClient.HttpClient | Browser | LoopbackServer> = Effect.fn(
  "Pkce.authenticate"
)(function*(options: Options) {
  const { config } = options
  const authorizationEndpoint = yield* required(
    config.authorizationEndpoint,
    "authorizationEndpoint",
    "an authorization endpoint"
  )
  const clientId = yield* required(config.clientId, "clientId", "a client id")
  const configuredRedirectUri = config.redirectUri !== undefined && config.redirectUri.trim() !== ""
    ? config.redirectUri
    : defaultRedirectUri
  const extraParams = yield* checkExtraParams(options.extraAuthorizeParams)
  const timeout = Duration.decode(options.timeout ?? Policies.interactiveTimeout)
  const server = yield* LoopbackServer
  const browser = yield* Browser
  const paste = yield* Effect.serviceOption(CallbackPaste.CallbackPaste)

  return yield* Effect.scoped(Effect.gen(function*() {
    const listener = yield* listen(server, configuredRedirectUri, options.redirectPort)
    const redirectUri = listener.redirectUri
    const state = yield* generateState
    const codeVerifier = yield* generateCodeVerifier
    const nonce = IdToken.isOpenIdRequest(config.scopes) ? yield* IdToken.generateNonce : undefined
    const url = yield* authorizeUrl({
      authorizationEndpoint,
      clientId,
      redirectUri,
      scopes: config.scopes,
      audience: config.audience,
      state,
      nonce,
      codeChallenge: yield* codeChallenge(codeVerifier),
      extraParams
    })

    yield* Effect.logInfo(`To log in, open this URL in a browser: ${url}`)
    if (options.onUrl !== undefined) yield* options.onUrl(url)
    const openBrowser = browser.open(url).pipe(
      Effect.as(true),
      Effect.catchAll((error) =>
        Effect.as(Effect.logWarning(`Could not open a browser (${error.message}); open the URL above by hand`), false)
      )
    )
    // The browser is opened while the callback is awaited, not before: a `Browser` that settles only once the page
    // is done (a callback awaiting a headless browser's visit) must not hold up the callback it leads to. A browser
    // that never returns does not hang the login either: it is interrupted when the flow moves on. Only when it
    // could not be opened is the user asked to paste the redirect too.
    const opening = yield* Effect.fork(openBrowser)
    const pasteOffered = yield* Ref.make(false)
    const pasted = Option.match(paste, {
      onNone: () => Effect.never,
      onSome: (paste) =>
        Effect.flatMap(
          Fiber.join(opening),
          (opened) => opened ? Effect.never : Effect.zipRight(Ref.set(pasteOffered, true), readPasted(paste, state))
        )
    })
    const received = yield* Effect.raceFirst(
      Effect.map(listener.next, (callback): Received => ({ callback, stateless: false })),
      pasted
    ).pipe(
      Effect.timeout(timeout),
      Effect.catchTag(
        "TimeoutException",
        () =>
          Effect.flatMap(Ref.get(pasteOffered), (offered) =>
            new AuthenticationError({
              reason: "Timeout",
              description: `No login callback arrived at ${redirectUri}${
                offered ? " (and no redirect was pasted)" : ""
              } within ${Duration.format(timeout)}`
            }))
      )
    )
    const { callback } = received
    const failurePage = options.failurePage ?? defaultFailurePage
    const credentials = yield* exchange(received, {
      state,
      codeVerifier,
      redirectUri,
      tokenEndpoint: config.tokenEndpoint,
      endpoint: options.endpoint,
      client: TokenClient.clientAuthentication({
        clientId,
        clientSecret: options.clientSecret,
        supported: config.tokenEndpointAuthMethods
      })
    }).pipe(
      Effect.flatMap((credentials) => IdToken.verifyCredentials(credentials, { config, nonce })),
      Effect.tapError((error) =>
        callback.respond({
          status: error.reason === "StateMismatch" || error.reason === "CallbackError" ? 400 : 502,
          html: renderFailurePage(failurePage, error.message)
        })
      )
    )
    yield* callback.respond({ status: 200, html: options.successPage ?? defaultSuccessPage })
    return credentials
  }))
})

/**
 * The redirect URI used when the client config has none: Flyte's fixed loopback callback.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRedirectUri: string = "http://localhost:53593/callback"

/**
 * A fresh `state` value: 32 bytes from the CSPRNG, base64url (43 characters).
 *
 * @since 0.1.0
 * @category utils
 */
export const generateState: Effect.Effect<string> = Effect.sync(() => randomBase64Url(32))

/**
 * A fresh PKCE `code_verifier` (RFC 7636 §4.1): 64 bytes from the CSPRNG, base64url, so 86 characters of
 * `[A-Za-z0-9-_]`.
 *
 * @since 0.1.0
 * @category utils
 */
export const generateCodeVerifier: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(() =>
  Redacted.make(randomBase64Url(64))
)

/**
 * The S256 `code_challenge` of a verifier: base64url(SHA-256(verifier)) (RFC 7636 §4.2), by Web Crypto.
 *
 * @since 0.1.0
 * @category utils
 */
export const codeChallenge = (codeVerifier: Redacted.Redacted<string>): Effect.Effect<string> =>
  Effect.promise(() =>
    globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(Redacted.value(codeVerifier)))
  ).pipe(Effect.map((digest) => Encoding.encodeBase64Url(new Uint8Array(digest))))

/**
 * The authorization request URL (RFC 6749 §4.1.1 with RFC 7636 §4.3). Query parameters already in the
 * authorization endpoint are kept. With `offline_access` among the scopes it asks for consent (`prompt=consent`,
 * OpenID Connect Core §11); `extraParams` may set another `prompt`.
 *
 * @since 0.1.0
 * @category utils
 */
export const authorizeUrl = (params: {
  readonly authorizationEndpoint: string
  readonly clientId: string
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<string>
  readonly audience?: string | undefined
  readonly state: string
  readonly codeChallenge: string
  /** OpenID Connect: the login's nonce (sent with the `openid` scope). */
  readonly nonce?: Redacted.Redacted<string> | undefined
  readonly extraParams?: Readonly<Record<string, string>> | undefined
}): Effect.Effect<string, AuthenticationError> =>
  Effect.try({
    try: () => new URL(params.authorizationEndpoint),
    catch: () =>
      new AuthenticationError({
        reason: "Config",
        setting: "authorizationEndpoint",
        description: `The authorization endpoint "${params.authorizationEndpoint}" is not a valid URL`
      })
  }).pipe(Effect.map((url) => {
    const query = url.searchParams
    query.set("response_type", "code")
    query.set("client_id", params.clientId)
    query.set("redirect_uri", params.redirectUri)
    if (params.scopes.length > 0) query.set("scope", params.scopes.join(" "))
    query.set("state", params.state)
    query.set("code_challenge", params.codeChallenge)
    query.set("code_challenge_method", "S256")
    if (params.audience !== undefined && params.audience !== "") query.set("audience", params.audience)
    if (params.nonce !== undefined) query.set("nonce", Redacted.value(params.nonce))
    // OpenID Connect Core §11: a request for offline access (a refresh token) MUST ask for consent; identity
    // providers that follow it (oidc-provider) drop `offline_access` otherwise and issue no refresh token.
    if (params.scopes.includes("offline_access")) query.set("prompt", "consent")
    for (const [key, value] of Object.entries(params.extraParams ?? {})) query.set(key, value)
    return url.toString()
  }))

/**
 * Escapes text for HTML content and attribute values.
 *
 * @since 0.1.0
 * @category utils
 */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/**
 * The page shown after a successful login.
 *
 * @since 0.1.0
 * @category pages
 */
export const defaultSuccessPage: string = "<!doctype html><html><head><meta charset=\"utf-8\">" +
  "<title>Login successful</title></head><body><h1>Login successful</h1>" +
  "<p>You are logged in. You can close this window and return to your terminal.</p></body></html>"

/**
 * The template of the page shown after a failed login; `{{message}}` is replaced by the escaped reason.
 *
 * @since 0.1.0
 * @category pages
 */
export const defaultFailurePage: string = "<!doctype html><html><head><meta charset=\"utf-8\">" +
  "<title>Login failed</title></head><body><h1>Login failed</h1><p>{{message}}</p>" +
  "<p>Return to your terminal and try again.</p></body></html>"

/**
 * Fills a failure page template with an HTML-escaped message.
 *
 * @since 0.1.0
 * @category pages
 */
export const renderFailurePage = (template: string, message: string): string =>
  template.replaceAll("{{message}}", escapeHtml(message))

// --- internals -------------------------------------------------------------------------------------------------

/** The parameters the flow sets itself; `extraAuthorizeParams` may not replace them. */
const reservedParams = new Set([
  "response_type",
  "client_id",
  "redirect_uri",
  "scope",
  "state",
  "code_challenge",
  "code_challenge_method",
  "audience",
  "nonce"
])

const checkExtraParams = (params: Readonly<Record<string, string>> | undefined) => {
  const reserved = Object.keys(params ?? {}).filter((key) => reservedParams.has(key))
  return reserved.length === 0
    ? Effect.succeed(params)
    : Effect.fail(
      new AuthenticationError({
        reason: "Config",
        setting: "extraAuthorizeParams",
        description: `extraAuthorizeParams may not set ${reserved.join(", ")}: the PKCE flow sets them itself`
      })
    )
}

/**
 * Listens on the redirect URI, or with a pinned `redirectPort` on that port. A busy port that was not pinned is
 * replaced by one the system picks, with a warning; when that fails too, the first error is the one reported.
 */
const listen = (
  server: LoopbackServer.Service,
  redirectUri: string,
  redirectPort: number | undefined
): Effect.Effect<Listener, AuthenticationError, Scope.Scope> => {
  if (redirectPort !== undefined) {
    return Effect.flatMap(withPort(redirectUri, redirectPort), server.listen)
  }
  return server.listen(redirectUri).pipe(
    Effect.catchIf((error) => error.reason === "PortInUse", (busy) =>
      withPort(redirectUri, 0).pipe(
        Effect.flatMap(server.listen),
        Effect.tap((listener) =>
          Effect.logWarning(
            `${busy.description}; listening on ${listener.redirectUri} instead. The identity provider must allow ` +
              `any loopback port for this client (RFC 8252 §7.3); pin the port with --redirect-port to fail instead`
          )
        ),
        Effect.catchAll(() => Effect.fail(busy))
      ))
  )
}

/** The redirect URI with another port; a URI that is not a URL is left to `listen` to report. */
const withPort = (redirectUri: string, port: number): Effect.Effect<string, AuthenticationError> => {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return Effect.fail(
      new AuthenticationError({
        reason: "Config",
        setting: "redirectPort",
        description: `The redirect port ${port} is not between 0 and 65535`
      })
    )
  }
  try {
    const url = new URL(redirectUri)
    url.port = String(port)
    return Effect.succeed(url.toString())
  } catch {
    return Effect.succeed(redirectUri)
  }
}

const required = (
  value: string | undefined,
  setting: "authorizationEndpoint" | "clientId",
  what: string
): Effect.Effect<string, AuthenticationError> =>
  value !== undefined && value.trim() !== ""
    ? Effect.succeed(value)
    : Effect.fail(
      new AuthenticationError({
        reason: "Config",
        setting,
        description: `The PKCE flow needs ${what} in the client config`
      })
    )

const randomBase64Url = (bytes: number): string =>
  Encoding.encodeBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(bytes)))

/** Whether two strings are equal, in time that depends only on their lengths. */
const constantTimeEquals = (a: string, b: string): boolean => {
  let difference = a.length ^ b.length
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    difference |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0)
  }
  return difference === 0
}

/** A callback from the loopback server, or a pasted one; a pasted bare code has no state to check. */
interface Received {
  readonly callback: CallbackRequest
  readonly stateless: boolean
}

/** The prompt for a paste, after a problem with the last one when there was one. */
const pastePrompt = (problem: string | undefined): string =>
  (problem === undefined ? "" : `${problem}\n`) +
  "Or paste the address your browser was redirected to (or just the code) and press Enter: "

/**
 * Reads pasted lines until one is a redirect of this attempt (or a bare code). A paste that cannot be one is
 * reported with the error a callback like it would get, and asked for again; the identity provider's `error=` ends
 * the login. When the input ends, only the loopback callback is awaited.
 */
const readPasted = (
  paste: CallbackPaste.CallbackPaste.Service,
  state: string
): Effect.Effect<Received, AuthenticationError> => {
  const ask = (problem: string | undefined): Effect.Effect<Received, AuthenticationError> =>
    Effect.flatMap(paste.read(pastePrompt(problem)), (line) => {
      if (Option.isNone(line)) return Effect.never
      const pasted = CallbackPaste.parse(line.value)
      if (pasted._tag === "Invalid") return ask(`Not a login redirect: ${pasted.reason}.`)
      const received: Received = { callback: pasted.callback, stateless: pasted._tag === "Code" }
      return checkCallback(received, state).pipe(
        Effect.as(received),
        Effect.catchIf((error) => error.reason !== "CallbackError", (error) => ask(error.message))
      )
    })
  return ask(undefined)
}

/**
 * Checks a callback as RFC 6749 §4.1.2 and §10.12 ask: its state is this attempt's, it is not an error redirect,
 * it carries a code. Answers the code.
 */
const checkCallback = Effect.fnUntraced(function*(received: Received, state: string) {
  const { callback } = received
  // An error redirect without state still ends the attempt with the provider's error (some providers omit
  // state there, and nothing is exchanged either way); a wrong state is always a mismatch.
  if (
    !received.stateless && (callback.state !== undefined
      ? !constantTimeEquals(callback.state, state)
      : callback.error === undefined)
  ) {
    return yield* new AuthenticationError({
      reason: "StateMismatch",
      description: callback.state === undefined
        ? "The login callback carried no state, so it cannot be matched to this login attempt; its code was not used"
        : "The login callback carried a state that is not the one of this login attempt; its code was not used"
    })
  }
  if (callback.error !== undefined) {
    return yield* new AuthenticationError({
      reason: "CallbackError",
      description: "The identity provider refused the login",
      error: callback.error,
      errorDescription: callback.errorDescription,
      errorUri: callback.errorUri
    })
  }
  if (callback.code === undefined) {
    return yield* new AuthenticationError({
      reason: "InvalidResponse",
      description: "The login callback carried neither a code nor an error"
    })
  }
  return callback.code
})

/** Checks a callback and exchanges its code; the callback is not answered here. */
const exchange = Effect.fnUntraced(function*(
  received: Received,
  attempt: {
    readonly state: string
    readonly codeVerifier: Redacted.Redacted<string>
    readonly redirectUri: string
    readonly tokenEndpoint: string
    readonly endpoint: string
    readonly client: TokenClient.ClientAuthentication
  }
) {
  const code = yield* checkCallback(received, attempt.state)
  const tokens = yield* TokenClient.authorizationCode({
    tokenEndpoint: attempt.tokenEndpoint,
    client: attempt.client,
    code,
    codeVerifier: attempt.codeVerifier,
    redirectUri: attempt.redirectUri
  })
  return fromTokens(tokens, attempt.endpoint)
})
