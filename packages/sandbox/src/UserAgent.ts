/**
 * A scripted "user with a browser" for the sandbox IdP: no browser, just `fetch`, a cookie jar, manual redirects
 * and the HTML forms of the login, consent and device pages.
 *
 * Give it the URL a client would open in a browser; it signs in, answers the consent page and, for the
 * authorization code flow, finally performs the GET on the loopback redirect URI exactly as a browser would, so the
 * client's loopback server receives the code.
 *
 * @example
 * ```ts
 * import { UserAgent } from "@flyte-auth/sandbox"
 *
 * // In a test, as the `Browser` that "opens" the authorize URL:
 * const page = await UserAgent.authorize(authorizeUrl, { username: "demo", password: "demo-password" })
 * // page.status / page.body: what the client's loopback server answered
 *
 * // Device flow: what the user does with the code the CLI printed
 * await UserAgent.approveDevice({ verificationUriComplete }, { username: "demo", password: "demo-password" })
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * The user's username and password.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly username: string
  readonly password: string
}

/**
 * What the loopback redirect URI answered (the client's "you can close this window" page).
 *
 * @since 0.1.0
 * @category models
 */
export interface CallbackResponse {
  /** The redirect URI with the authorization response (`code` and `state`, or `error`). */
  readonly callbackUrl: string
  readonly status: number
  readonly body: string
}

/**
 * Where the user goes to approve a device: the complete URI, or the URI plus the code to type in.
 *
 * @since 0.1.0
 * @category models
 */
export type DeviceVerification =
  | { readonly verificationUriComplete: string }
  | { readonly verificationUri: string; readonly userCode: string }

/**
 * How a device approval ended (the final page of the IdP).
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceResult {
  readonly outcome: "approved" | "denied"
  readonly status: number
  readonly body: string
}

/**
 * The user agent could not get where it was asked to go.
 *
 * - `LoginFailed`: the login page came back with an error (wrong username or password).
 * - `CredentialsRequired`: a login page was shown but no credentials were given.
 * - `ErrorPage`: the IdP showed an error page (`error` / `errorDescription` carry its OAuth error).
 * - `DeviceCodeRejected`: the device page rejected the code (unknown, expired or already used).
 * - `CallbackFailed`: the redirect URI could not be reached.
 * - `UnexpectedPage`, `TooManySteps`: the pages were not the expected ones.
 *
 * @since 0.1.0
 * @category errors
 */
export class UserAgentError extends Data.TaggedError("UserAgentError")<{
  readonly reason:
    | "LoginFailed"
    | "CredentialsRequired"
    | "ErrorPage"
    | "DeviceCodeRejected"
    | "CallbackFailed"
    | "UnexpectedPage"
    | "TooManySteps"
  readonly message: string
  readonly url: string
  readonly status?: number
  readonly error?: string
  readonly errorDescription?: string
  readonly page?: string
  readonly cause?: unknown
}> {}

/**
 * A user with a browser session (cookies persist across calls, like a real browser profile).
 *
 * @since 0.1.0
 * @category models
 */
export interface UserAgent {
  /** Opens `authorizeUrl`, signs in and allows; returns what the loopback redirect URI answered. */
  readonly authorize: (authorizeUrl: string | URL, credentials?: Credentials) => Promise<CallbackResponse>
  /** Like `authorize`, but stops at the redirect and returns the redirect URI (with `code`/`state`) unvisited. */
  readonly authorizeRedirect: (authorizeUrl: string | URL, credentials?: Credentials) => Promise<URL>
  /**
   * Opens `authorizeUrl` and says no: without credentials presses "Cancel" on the login page (or "Deny" on consent
   * if already signed in); with credentials signs in, then presses "Deny". Then visits the redirect URI, which
   * carries `error=access_denied`.
   */
  readonly deny: (authorizeUrl: string | URL, credentials?: Credentials) => Promise<CallbackResponse>
  /** Opens the verification URI, enters the code if needed, confirms, signs in and allows. */
  readonly approveDevice: (verification: DeviceVerification, credentials?: Credentials) => Promise<DeviceResult>
  /**
   * Opens the verification URI and says no: without credentials presses "Abort" on the confirmation page; with
   * credentials confirms, signs in and presses "Deny". The client's next poll gets `access_denied`.
   */
  readonly denyDevice: (verification: DeviceVerification, credentials?: Credentials) => Promise<DeviceResult>
  /** Forgets every cookie (signs the user out of the IdP). */
  readonly clearCookies: () => void
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Upper bound on requests per call (redirects and form submissions). Default 40. */
  readonly maxSteps?: number
  /** The `fetch` to use. Default `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch
}

// ---------------------------------------------------------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------------------------------------------------------

interface Cookie {
  readonly name: string
  readonly value: string
  readonly host: string
  readonly path: string
  readonly expiresAt: number | undefined
}

const defaultCookiePath = (url: URL): string => {
  const path = url.pathname
  const last = path.lastIndexOf("/")
  return last <= 0 ? "/" : path.slice(0, last)
}

const pathMatches = (requestPath: string, cookiePath: string): boolean =>
  requestPath === cookiePath ||
  (requestPath.startsWith(cookiePath) && (cookiePath.endsWith("/") || requestPath.charAt(cookiePath.length) === "/"))

/** Host-only cookies (RFC 6265 §5.3), which is all the IdP sets. Like browsers, ports are not part of the match. */
class CookieJar {
  private cookies: Array<Cookie> = []

  store(url: URL, setCookies: ReadonlyArray<string>): void {
    for (const line of setCookies) {
      const [pair = "", ...attributes] = line.split(";")
      const eq = pair.indexOf("=")
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = defaultCookiePath(url)
      let expiresAt: number | undefined
      for (const attribute of attributes) {
        const i = attribute.indexOf("=")
        const key = (i === -1 ? attribute : attribute.slice(0, i)).trim().toLowerCase()
        const val = i === -1 ? "" : attribute.slice(i + 1).trim()
        if (key === "path" && val.startsWith("/")) path = val
        else if (key === "expires" && expiresAt === undefined) {
          const parsed = Date.parse(val)
          if (!Number.isNaN(parsed)) expiresAt = parsed
        } else if (key === "max-age" && /^-?\d+$/.test(val)) expiresAt = Date.now() + Number(val) * 1000
      }
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.host === url.hostname && c.path === path))
      if (expiresAt === undefined || expiresAt > Date.now()) {
        this.cookies.push({ name, value, host: url.hostname, path, expiresAt })
      }
    }
  }

  header(url: URL): string | undefined {
    const now = Date.now()
    this.cookies = this.cookies.filter((c) => c.expiresAt === undefined || c.expiresAt > now)
    const matching = this.cookies
      .filter((c) => c.host === url.hostname && pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length)
    return matching.length === 0 ? undefined : matching.map((c) => `${c.name}=${c.value}`).join("; ")
  }

  clear(): void {
    this.cookies = []
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// HTML forms (the sandbox's own pages, and the forms oidc-provider embeds in them)
// ---------------------------------------------------------------------------------------------------------------------

const decodeEntities = (s: string): string =>
  s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    const e = entity.toLowerCase()
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16))
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10))
    return ({ amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" } as Record<string, string>)[e] ?? entity
  })

const parseAttributes = (source: string): Map<string, string> => {
  const attributes = new Map<string, string>()
  const re = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g
  for (const match of source.matchAll(re)) {
    attributes.set(match[1]!.toLowerCase(), decodeEntities(match[2] ?? match[3] ?? match[4] ?? ""))
  }
  return attributes
}

interface Button {
  readonly name: string | undefined
  readonly value: string
  readonly label: string
}

interface Form {
  readonly id: string | undefined
  readonly action: string
  readonly method: string
  readonly fields: Array<[string, string]>
  readonly buttons: Array<Button>
}

const stripTags = (s: string): string => decodeEntities(s.replace(/<[^>]*>/g, "")).replace(/\s+/g, " ").trim()

const parseForms = (html: string): Array<Form> => {
  const forms: Array<Form> = []
  const formRe = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi
  for (const match of html.matchAll(formRe)) {
    const attributes = parseAttributes(match[1]!)
    const inner = match[2]!
    const fields: Array<[string, string]> = []
    for (const input of inner.matchAll(/<input\b([^>]*)>/gi)) {
      const a = parseAttributes(input[1]!)
      const name = a.get("name")
      const type = (a.get("type") ?? "text").toLowerCase()
      if (name === undefined || a.has("disabled")) continue
      if (type === "submit" || type === "button" || type === "image" || type === "reset") continue
      if ((type === "checkbox" || type === "radio") && !a.has("checked")) continue
      fields.push([name, a.get("value") ?? (type === "checkbox" || type === "radio" ? "on" : "")])
    }
    const buttons: Array<Button> = []
    for (const button of inner.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const a = parseAttributes(button[1]!)
      if ((a.get("type") ?? "submit").toLowerCase() !== "submit") continue
      buttons.push({ name: a.get("name"), value: a.get("value") ?? "", label: stripTags(button[2]!) })
    }
    forms.push({
      id: attributes.get("id"),
      action: attributes.get("action") ?? "",
      method: (attributes.get("method") ?? "get").toLowerCase(),
      fields,
      buttons
    })
  }
  // Buttons outside a form that point at it with `form="<id>"` (oidc-provider's device pages).
  const outside = html.replace(formRe, "")
  for (const button of outside.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
    const a = parseAttributes(button[1]!)
    const form = forms.find((f) => f.id !== undefined && f.id === a.get("form"))
    if (form && (a.get("type") ?? "submit").toLowerCase() === "submit") {
      form.buttons.push({ name: a.get("name"), value: a.get("value") ?? "", label: stripTags(button[2]!) })
    }
  }
  return forms
}

const metaContent = (html: string, name: string): string | undefined => {
  for (const match of html.matchAll(/<meta\b([^>]*)>/gi)) {
    const a = parseAttributes(match[1]!)
    if (a.get("name") === name) return a.get("content")
  }
  return undefined
}

const errorField = (html: string, field: string): string | undefined => {
  const match = new RegExp(`<dd[^>]*data-field="${field}"[^>]*>([\\s\\S]*?)</dd>`, "i").exec(html)
  return match ? stripTags(match[1]!) : undefined
}

const pageError = (html: string): string | undefined => {
  const match = /<[^>]*class="error"[^>]*>([\s\S]*?)<\/[a-z]+>/i.exec(html)
  return match ? stripTags(match[1]!) : undefined
}

// ---------------------------------------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------------------------------------

interface Plan {
  readonly decision: "approve" | "deny"
  readonly credentials: Credentials | undefined
  readonly userCode: string | undefined
}

type Outcome =
  | { readonly _tag: "Redirect"; readonly location: URL }
  | { readonly _tag: "Device"; readonly outcome: "approved" | "denied"; readonly status: number; readonly body: string }

interface Request {
  readonly url: URL
  readonly method: "GET" | "POST"
  readonly body?: URLSearchParams
}

const isRedirect = (status: number) =>
  status === 301 || status === 302 || status === 303 || status === 307 || status === 308

/**
 * Creates a user agent with its own cookie jar.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): UserAgent => {
  const jar = new CookieJar()
  const maxSteps = options.maxSteps ?? 40
  const doFetch = options.fetch ?? globalThis.fetch

  const send = async (request: Request): Promise<Response> => {
    const headers = new Headers({
      accept: "text/html,application/xhtml+xml",
      "user-agent": "flyte-auth-sandbox-ua/0.1"
    })
    const cookie = jar.header(request.url)
    if (cookie !== undefined) headers.set("cookie", cookie)
    if (request.body !== undefined) headers.set("content-type", "application/x-www-form-urlencoded")
    const response = await doFetch(request.url, {
      method: request.method,
      headers,
      redirect: "manual",
      ...(request.body === undefined ? {} : { body: request.body.toString() })
    })
    jar.store(request.url, response.headers.getSetCookie())
    return response
  }

  const submit = (
    page: URL,
    form: Form,
    overrides: Record<string, string>,
    button: Button | undefined
  ): Request => {
    const params = new URLSearchParams()
    const overridden = new Set(Object.keys(overrides))
    for (const [name, value] of form.fields) if (!overridden.has(name)) params.append(name, value)
    for (const [name, value] of Object.entries(overrides)) params.set(name, value)
    if (button?.name !== undefined) params.append(button.name, button.value)
    const action = new URL(form.action === "" ? page.href : form.action, page)
    if (form.method === "post") return { url: action, method: "POST", body: params }
    action.search = params.toString()
    return { url: action, method: "GET" }
  }

  const drive = async (start: URL, plan: Plan): Promise<Outcome> => {
    const origin = start.origin
    let request: Request = { url: start, method: "GET" }
    let loginSubmitted = false
    let codeSubmitted = false
    // Deny on the first page that allows it, unless credentials were given: then sign in first, deny at consent.
    const denyEarly = plan.decision === "deny" && plan.credentials === undefined

    for (let step = 0; step < maxSteps; step++) {
      const url = request.url
      const response = await send(request).catch((cause: unknown) => {
        throw new UserAgentError({
          reason: "UnexpectedPage",
          message: `request to ${url.href} failed`,
          url: url.href,
          cause
        })
      })

      if (isRedirect(response.status)) {
        await response.body?.cancel()
        const location = response.headers.get("location")
        if (location === null) {
          throw new UserAgentError({ reason: "UnexpectedPage", message: "redirect without Location", url: url.href })
        }
        const next = new URL(location, url)
        if (next.origin !== origin) return { _tag: "Redirect", location: next }
        const keepMethod = response.status === 307 || response.status === 308
        request = keepMethod && request.method === "POST"
          ? { url: next, method: "POST", ...(request.body === undefined ? {} : { body: request.body }) }
          : { url: next, method: "GET" }
        continue
      }

      const html = await response.text()
      const kind = metaContent(html, "flyte-sandbox-page")
      const forms = parseForms(html)
      const fail = (reason: UserAgentError["reason"], message: string, extra: Partial<UserAgentError> = {}) =>
        new UserAgentError({ reason, message, url: url.href, status: response.status, page: html, ...extra })
      const pick = (form: Form, predicate: (b: Button) => boolean) => {
        const button = form.buttons.find(predicate)
        if (button === undefined) throw fail("UnexpectedPage", `no matching button on the ${kind} page`)
        return button
      }
      const onlyForm = () => {
        const form = forms[0]
        if (form === undefined) throw fail("UnexpectedPage", `no form on the ${kind} page`)
        return form
      }

      switch (kind) {
        case "login": {
          const form = onlyForm()
          if (denyEarly) {
            request = submit(url, form, {}, pick(form, (b) => b.name === "decision" && b.value === "deny"))
            break
          }
          if (loginSubmitted) {
            throw fail("LoginFailed", `sign-in failed: ${pageError(html) ?? "the login page was shown again"}`)
          }
          if (plan.credentials === undefined) {
            throw fail("CredentialsRequired", "the IdP asks the user to sign in, but no credentials were given")
          }
          loginSubmitted = true
          request = submit(
            url,
            form,
            { username: plan.credentials.username, password: plan.credentials.password },
            pick(form, (b) => b.name === "decision" && b.value === "approve")
          )
          break
        }
        case "consent": {
          const form = onlyForm()
          request = submit(url, form, {}, pick(form, (b) => b.name === "decision" && b.value === plan.decision))
          break
        }
        case "device-input": {
          const state = metaContent(html, "flyte-sandbox-state")
          if (state === "aborted") return { _tag: "Device", outcome: "denied", status: response.status, body: html }
          if (state === "error") {
            throw fail("DeviceCodeRejected", `the device code was rejected: ${pageError(html) ?? "unknown error"}`)
          }
          if (plan.userCode === undefined || codeSubmitted) {
            throw fail("UnexpectedPage", "the IdP asks for a user code, but none was given")
          }
          codeSubmitted = true
          const form = onlyForm()
          request = submit(url, form, { user_code: plan.userCode }, form.buttons.find((b) => b.name === undefined))
          break
        }
        case "device-confirm": {
          const form = onlyForm()
          request = denyEarly
            ? submit(url, form, {}, pick(form, (b) => b.name === "abort"))
            : submit(url, form, {}, pick(form, (b) => b.name === undefined))
          break
        }
        case "device-success":
          return { _tag: "Device", outcome: "approved", status: response.status, body: html }
        case "error": {
          const error = errorField(html, "error")
          const description = errorField(html, "error_description")
          throw fail(
            "ErrorPage",
            `the IdP showed an error: ${error ?? "unknown"}${description ? ` (${description})` : ""}`,
            {
              ...(error === undefined ? {} : { error }),
              ...(description === undefined ? {} : { errorDescription: description })
            }
          )
        }
        default: {
          // A page that submits itself with a script (oidc-provider's form_post pages): submit it like a browser.
          const form = forms[0]
          if (response.ok && forms.length === 1 && form !== undefined && /<script\b/i.test(html)) {
            request = submit(url, form, {}, undefined)
            break
          }
          throw fail(
            "UnexpectedPage",
            `unexpected response from the IdP (HTTP ${response.status}${kind === undefined ? "" : `, ${kind} page`})`
          )
        }
      }
    }
    throw new UserAgentError({ reason: "TooManySteps", message: `gave up after ${maxSteps} requests`, url: start.href })
  }

  const redirectOf = async (url: string | URL, plan: Plan): Promise<URL> => {
    const outcome = await drive(new URL(url), plan)
    if (outcome._tag !== "Redirect") {
      throw new UserAgentError({ reason: "UnexpectedPage", message: "the IdP did not redirect", url: String(url) })
    }
    return outcome.location
  }

  const visit = async (location: URL): Promise<CallbackResponse> => {
    try {
      const cookie = jar.header(location)
      const response = await doFetch(location, {
        headers: {
          accept: "text/html,application/xhtml+xml",
          "user-agent": "flyte-auth-sandbox-ua/0.1",
          ...(cookie === undefined ? {} : { cookie })
        },
        redirect: "follow"
      })
      return { callbackUrl: location.href, status: response.status, body: await response.text() }
    } catch (cause) {
      throw new UserAgentError({
        reason: "CallbackFailed",
        message: `could not reach the redirect URI ${location.origin}${location.pathname}`,
        url: location.href,
        cause
      })
    }
  }

  const device = async (verification: DeviceVerification, plan: Omit<Plan, "userCode">) => {
    const [start, userCode] = "verificationUriComplete" in verification
      ? [new URL(verification.verificationUriComplete), undefined]
      : [new URL(verification.verificationUri), verification.userCode]
    const outcome = await drive(start, { ...plan, userCode })
    if (outcome._tag !== "Device") {
      throw new UserAgentError({
        reason: "UnexpectedPage",
        message: `the device flow ended in a redirect to ${outcome.location.origin}`,
        url: start.href
      })
    }
    return { outcome: outcome.outcome, status: outcome.status, body: outcome.body }
  }

  return {
    authorize: async (url, credentials) =>
      visit(await redirectOf(url, { decision: "approve", credentials, userCode: undefined })),
    authorizeRedirect: (url, credentials) => redirectOf(url, { decision: "approve", credentials, userCode: undefined }),
    deny: async (url, credentials) =>
      visit(await redirectOf(url, { decision: "deny", credentials, userCode: undefined })),
    approveDevice: (verification, credentials) => device(verification, { decision: "approve", credentials }),
    denyDevice: (verification, credentials) => device(verification, { decision: "deny", credentials }),
    clearCookies: () => jar.clear()
  }
}

/**
 * `make().authorize(...)`: a fresh browser session signs in, allows, and visits the redirect URI.
 *
 * @since 0.1.0
 * @category flows
 */
export const authorize = (authorizeUrl: string | URL, credentials?: Credentials): Promise<CallbackResponse> =>
  make().authorize(authorizeUrl, credentials)

/**
 * `make().authorizeRedirect(...)`: a fresh browser session signs in, allows, and returns the unvisited redirect.
 *
 * @since 0.1.0
 * @category flows
 */
export const authorizeRedirect = (authorizeUrl: string | URL, credentials?: Credentials): Promise<URL> =>
  make().authorizeRedirect(authorizeUrl, credentials)

/**
 * `make().deny(...)`: a fresh browser session cancels, and visits the redirect URI (`error=access_denied`).
 *
 * @since 0.1.0
 * @category flows
 */
export const deny = (authorizeUrl: string | URL, credentials?: Credentials): Promise<CallbackResponse> =>
  make().deny(authorizeUrl, credentials)

/**
 * `make().approveDevice(...)`: a fresh browser session approves a device code.
 *
 * @since 0.1.0
 * @category flows
 */
export const approveDevice = (verification: DeviceVerification, credentials?: Credentials): Promise<DeviceResult> =>
  make().approveDevice(verification, credentials)

/**
 * `make().denyDevice(...)`: a fresh browser session refuses a device code.
 *
 * @since 0.1.0
 * @category flows
 */
export const denyDevice = (verification: DeviceVerification, credentials?: Credentials): Promise<DeviceResult> =>
  make().denyDevice(verification, credentials)
