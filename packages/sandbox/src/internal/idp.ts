/**
 * The sandbox IdP: a real `oidc-provider` instance with our own login/consent pages.
 *
 * @internal
 */
import * as crypto from "node:crypto"
import * as http from "node:http"
import { InvalidTarget } from "oidc-provider/lib/helpers/errors.js"
import type { InteractionDetails, KoaContext } from "oidc-provider/lib/provider.js"
import { Provider } from "oidc-provider/lib/provider.js"
import type { Counters } from "./counters.js"
import { grantTypeKey } from "./counters.js"
import { close, listen, proxyAuthenticate, proxyRefusal, readBody, urlHost } from "./net.js"
import * as Pages from "./pages.js"
import type { Store } from "./store.js"

/** Custom access-token claim: issue time in milliseconds, so `rejectTokensIssuedBefore` is exact within a second. */
export const issuedAtMsClaim = "iat_ms"

/** @internal */
export interface UserRecord {
  readonly username: string
  readonly password: string
  readonly subject: string
  readonly name: string
  readonly email: string
}

/** @internal */
export interface IdpConfig {
  readonly host: string
  readonly port: number
  readonly tokenTtlSeconds: number
  readonly refreshTokenTtlSeconds: number
  readonly deviceCodeTtlSeconds: number
  readonly autoApprove: boolean
  readonly user: UserRecord
  readonly publicClientId: string
  readonly confidentialClientId: string
  readonly confidentialClientSecret: string
  /** A second service account (client credentials), so that two can log in on one endpoint. */
  readonly ciClientId: string
  readonly ciClientSecret: string
  readonly audience: string
  readonly resourceScopes: ReadonlyArray<string>
  readonly deviceFlow: boolean
  readonly devicePollIntervalSeconds: number
  readonly enforceDevicePollInterval: boolean
  /** Scopes the IdP does not know, so never grants (`Sandbox.Options.withholdScopes`). */
  readonly withholdScopes: ReadonlyArray<string>
  /** Refuse an `openid` authorize request without a `nonce` (`Sandbox.Options.requireNonce`). */
  readonly requireNonce: boolean
  /** How the token endpoint reads Basic client credentials (`Sandbox.Options.basicCredentials`). */
  readonly basicCredentials: "encoded" | "raw"
  /** The back-channel endpoints require `proxy-authorization: Bearer <token>` (`Sandbox.Options.proxyGuardsIdp`). */
  readonly proxyToken: string | undefined
  readonly counters: Counters
  readonly store: Store
  readonly onServerError: (error: unknown) => void
  /** Called with the `verification_uri_complete` of each device code issued (`Sandbox.Options.approveDeviceCodes`). */
  readonly onDeviceCode?: ((verificationUriComplete: string) => void) | undefined
}

/** @internal */
export interface TokenFailure {
  readonly status: number
  readonly body: unknown
}

/** @internal */
export interface Idp {
  readonly issuer: string
  readonly port: number
  readonly publicJwks: { readonly keys: ReadonlyArray<crypto.JsonWebKey> }
  readonly failNextTokenRequests: (count: number, failure: TokenFailure) => void
  readonly close: () => Promise<void>
}

const deviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"

const sameSecret = (a: string, b: string): boolean => {
  const digest = (s: string) => crypto.createHash("sha256").update(s).digest()
  return crypto.timingSafeEqual(digest(a), digest(b))
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

const oidcParams = (ctx: KoaContext): Record<string, unknown> | undefined => {
  try {
    const params = ctx.oidc?.params
    return isRecord(params) ? params : undefined
  } catch {
    return undefined
  }
}

/**
 * Cookies for agents that keep none (e.g. a test "browser" that is a bare `fetch` following redirects).
 *
 * oidc-provider ties an interaction to the browser with cookies, so a cookie-less agent can never finish one. With
 * `autoApprove`, requests that carry no `Cookie` header at all get the cookies the IdP last set for such requests
 * (matched by path, and oidc-provider scopes interaction cookies to `/interaction/<uid>` and `/auth/<uid>`). Agents
 * that do send cookies (real browsers, `UserAgent`) are left alone.
 */
class CookielessJar {
  private readonly cookies = new Map<string, { readonly name: string; readonly value: string; readonly path: string }>()

  header(path: string): string | undefined {
    const pairs: Array<string> = []
    for (const cookie of this.cookies.values()) {
      if (path === cookie.path || path.startsWith(cookie.path.endsWith("/") ? cookie.path : `${cookie.path}/`)) {
        pairs.push(`${cookie.name}=${cookie.value}`)
      }
    }
    return pairs.length === 0 ? undefined : pairs.join("; ")
  }

  capture(header: number | string | ReadonlyArray<string> | undefined): void {
    if (header === undefined || typeof header === "number") return
    for (const line of typeof header === "string" ? [header] : header) {
      const [pair = "", ...attributes] = line.split(";")
      const eq = pair.indexOf("=")
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = "/"
      let expired = value === ""
      for (const attribute of attributes) {
        const [key = "", val = ""] = attribute.split("=").map((s) => s.trim())
        if (key.toLowerCase() === "path" && val.startsWith("/")) path = val
        if (key.toLowerCase() === "expires" && Date.parse(val) <= Date.now()) expired = true
        if (key.toLowerCase() === "max-age" && Number(val) <= 0) expired = true
      }
      const key = `${name};${path}`
      if (expired) this.cookies.delete(key)
      else this.cookies.set(key, { name, value, path })
    }
  }
}

/** @internal */
export const startIdp = async (config: IdpConfig): Promise<Idp> => {
  const { audience, counters, user } = config
  const server = http.createServer()
  server.keepAliveTimeout = 5_000
  const port = await listen(server, config.host, config.port)
  const issuer = `http://${urlHost(config.host)}:${port}`

  try {
    const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" })
    const kid = crypto.randomBytes(8).toString("hex")
    const signingJwk = { ...privateKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" }
    const publicJwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" }

    const clientNames: Record<string, string> = {
      [config.publicClientId]: `${config.publicClientId} (Flyte CLI)`,
      [config.confidentialClientId]: `${config.confidentialClientId} (service)`,
      [config.ciClientId]: `${config.ciClientId} (second service)`
    }
    const clientName = (clientId: unknown) =>
      typeof clientId === "string" ? clientNames[clientId] ?? clientId : "unknown client"

    const findAccount = async (_ctx: unknown, sub: string) =>
      sub === user.subject
        ? {
          accountId: sub,
          claims: async () => ({
            sub,
            name: user.name,
            preferred_username: user.username,
            email: user.email,
            email_verified: true
          })
        }
        : undefined

    const provider = new Provider(issuer, {
      adapter: config.store.factory,
      jwks: { keys: [signingJwk] },
      cookies: { keys: [crypto.randomBytes(32).toString("base64url")] },
      clients: [
        {
          client_id: config.publicClientId,
          client_name: clientNames[config.publicClientId],
          application_type: "native",
          token_endpoint_auth_method: "none",
          grant_types: ["authorization_code", "refresh_token", ...(config.deviceFlow ? [deviceCodeGrantType] : [])],
          response_types: ["code"],
          // Native client: oidc-provider matches loopback redirect URIs on any port (RFC 8252 §7.3).
          redirect_uris: ["http://127.0.0.1/callback", "http://localhost/callback", "http://[::1]/callback"]
        },
        {
          client_id: config.confidentialClientId,
          client_secret: config.confidentialClientSecret,
          client_name: clientNames[config.confidentialClientId],
          token_endpoint_auth_method: "client_secret_basic",
          grant_types: ["client_credentials"],
          response_types: [],
          redirect_uris: []
        },
        {
          client_id: config.ciClientId,
          client_secret: config.ciClientSecret,
          client_name: clientNames[config.ciClientId],
          token_endpoint_auth_method: "client_secret_basic",
          grant_types: ["client_credentials"],
          response_types: [],
          redirect_uris: []
        }
      ],
      clientDefaults: {
        grant_types: ["authorization_code"],
        id_token_signed_response_alg: "ES256",
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic"
      },
      responseTypes: ["code"],
      // A withheld scope is one this IdP does not know: asked for, it is left out of the grant (RFC 6749 §3.3).
      scopes: ["openid", "offline_access", "profile", "email"].filter((scope) =>
        !config.withholdScopes.includes(scope)
      ),
      claims: Object.fromEntries(
        Object.entries({
          openid: ["sub"],
          profile: ["name", "preferred_username"],
          email: ["email", "email_verified"]
        }).filter(([scope]) => !config.withholdScopes.includes(scope))
      ),
      findAccount,
      extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => ({
        [issuedAtMsClaim]: Date.now(),
        ...(token.accountId === user.subject
          ? { name: user.name, preferred_username: user.username, email: user.email }
          : {})
      }),
      rotateRefreshToken: () => true,
      clientBasedCORS: () => true,
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      renderError: async (ctx: KoaContext, out: Record<string, unknown>) => {
        ctx.type = "html"
        ctx.body = Pages.errorPage(out)
      },
      ttl: {
        AccessToken: config.tokenTtlSeconds,
        ClientCredentials: config.tokenTtlSeconds,
        IdToken: config.tokenTtlSeconds,
        RefreshToken: config.refreshTokenTtlSeconds,
        AuthorizationCode: 60,
        DeviceCode: config.deviceCodeTtlSeconds,
        BackchannelAuthenticationRequest: 600,
        PreAuthorizedCode: 600,
        Interaction: 3600,
        Session: 14 * 24 * 3600,
        Grant: 14 * 24 * 3600
      },
      features: {
        devInteractions: { enabled: false },
        rpInitiatedLogout: { enabled: false },
        clientCredentials: { enabled: true },
        revocation: { enabled: true, allowedPolicy: async () => true },
        introspection: { enabled: true, allowedPolicy: async () => true },
        resourceIndicators: {
          enabled: true,
          // Tokens are always for the admin: it is the default resource, and refresh/code exchanges reuse it.
          defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: ReadonlyArray<string>) => oneOf ?? audience,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: unknown, resource: string) => {
            if (resource !== audience) throw new InvalidTarget(`unknown resource; this server only knows ${audience}`)
            return {
              audience,
              scope: config.resourceScopes.filter((scope) => !config.withholdScopes.includes(scope)).join(" "),
              accessTokenFormat: "jwt",
              accessTokenTTL: config.tokenTtlSeconds
            }
          }
        },
        deviceFlow: {
          enabled: config.deviceFlow,
          charset: "base-20",
          mask: "****-****",
          userCodeInputSource: async (
            ctx: KoaContext,
            form: string,
            out?: { error: string; error_description?: string },
            err?: Error
          ) => {
            ctx.type = "html"
            ctx.body = Pages.deviceInputPage({
              form,
              ...(out === undefined ? {} : {
                error: { error: out.error, description: out.error_description, name: err?.name ?? "" }
              })
            })
          },
          userCodeConfirmSource: async (
            ctx: KoaContext,
            form: string,
            client: { clientId: string },
            _deviceInfo: unknown,
            userCode: string
          ) => {
            ctx.type = "html"
            ctx.body = Pages.deviceConfirmPage({
              form,
              clientName: clientName(client.clientId),
              userCode,
              autoSubmit: config.autoApprove
            })
          },
          successSource: async (ctx: KoaContext) => {
            ctx.type = "html"
            ctx.body = Pages.deviceSuccessPage(clientName(ctx.oidc?.client?.clientId))
          }
        }
      }
    })
    provider.proxy = false
    provider.silent = true
    provider.on("error", config.onServerError)
    if (config.onDeviceCode !== undefined) {
      const onDeviceCode = config.onDeviceCode
      provider.on("device_authorization.success", (_ctx: unknown, body: { verification_uri_complete?: string }) => {
        if (body.verification_uri_complete !== undefined) onDeviceCode(body.verification_uri_complete)
      })
    }
    provider.on("server_error", (_ctx: unknown, error: unknown) => {
      counters.serverErrors++
      config.onServerError(error)
    })

    // ---------------------------------------------------------------------------------------------------------------
    // Interactions: login and consent
    // ---------------------------------------------------------------------------------------------------------------

    const approve = async (details: InteractionDetails): Promise<Record<string, unknown>> => {
      if (details.prompt.name === "login") {
        counters.logins++
        return { login: { accountId: user.subject } }
      }
      const accountId = details.session?.accountId ?? user.subject
      const clientId = String(details.params.client_id)
      const grant = (details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)) ??
        new provider.Grant({ accountId, clientId })
      const { missingOIDCClaims, missingOIDCScope, missingResourceScopes } = details.prompt.details
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(" "))
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims)
      for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
        grant.addResourceScope(resource, scopes.join(" "))
      }
      counters.consents++
      return { consent: { grantId: await grant.save() } }
    }

    const finish = async (ctx: KoaContext, result: Record<string, unknown>, merge: boolean) => {
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge })
      ctx.status = 303
      ctx.redirect(returnTo)
    }

    const renderPrompt = (ctx: KoaContext, details: InteractionDetails, error?: string, username?: string) => {
      ctx.type = "html"
      if (details.prompt.name === "login") {
        ctx.body = Pages.loginPage({
          uid: details.uid,
          clientName: clientName(details.params.client_id),
          username,
          error
        })
      } else {
        const scope = typeof details.params.scope === "string" ? details.params.scope : ""
        ctx.body = Pages.consentPage({
          uid: details.uid,
          clientName: clientName(details.params.client_id),
          username: user.username,
          scopes: scope.split(" ").filter((s) => s.length > 0),
          resources: Object.keys(details.prompt.details.missingResourceScopes ?? {})
        })
      }
    }

    const interaction = async (ctx: KoaContext, uid: string) => {
      ctx.set("cache-control", "no-store")
      let details: InteractionDetails
      try {
        details = await provider.interactionDetails(ctx.req, ctx.res)
      } catch (error) {
        ctx.status = 400
        ctx.type = "html"
        ctx.body = Pages.errorPage({
          error: "invalid_request",
          error_description: error instanceof Error ? error.message : "interaction not found"
        })
        return
      }
      if (details.uid !== uid || (details.prompt.name !== "login" && details.prompt.name !== "consent")) {
        ctx.status = 400
        ctx.type = "html"
        ctx.body = Pages.errorPage({ error: "invalid_request", error_description: "unexpected interaction" })
        return
      }

      if (ctx.method === "GET") {
        if (config.autoApprove) return finish(ctx, await approve(details), details.prompt.name === "consent")
        return renderPrompt(ctx, details)
      }
      if (ctx.method !== "POST") {
        ctx.status = 405
        return
      }

      const form = new URLSearchParams(await readBody(ctx.req))
      if (form.get("prompt") !== details.prompt.name) {
        // A stale page (e.g. the back button): show the current step again.
        return renderPrompt(ctx, details)
      }
      if (form.get("decision") === "deny") {
        counters.denials++
        return finish(ctx, { error: "access_denied", error_description: "End-User aborted interaction" }, false)
      }
      if (details.prompt.name === "login") {
        const username = form.get("username") ?? ""
        const password = form.get("password") ?? ""
        if (!(sameSecret(username, user.username) && sameSecret(password, user.password))) {
          counters.failedLogins++
          return renderPrompt(ctx, details, "Invalid username or password.", username)
        }
        return finish(ctx, await approve(details), false)
      }
      return finish(ctx, await approve(details), true)
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Middleware in front of oidc-provider's routes
    // ---------------------------------------------------------------------------------------------------------------

    const pendingFailures: Array<TokenFailure> = []
    const devicePolls = new Map<string, { last: number; interval: number }>()

    /** Answers a token request without letting oidc-provider see it (its body is read here, and counted). */
    const answerToken = async (
      ctx: KoaContext,
      status: number,
      body: unknown,
      headers: Record<string, string> = {}
    ) => {
      const form = new URLSearchParams(await readBody(ctx.req).catch(() => ""))
      const key = grantTypeKey(form.get("grant_type"))
      counters.tokenRequests[key]++
      counters.tokenErrors[key]++
      ctx.status = status
      ctx.set("cache-control", "no-store")
      for (const [name, value] of Object.entries(headers)) ctx.set(name, value)
      ctx.body = body
    }

    /**
     * `basicCredentials: "raw"`: Basic credentials are compared as sent, without the form-url-decoding of RFC 6749
     * §2.3.1 (as Glewlwyd does). A raw match of the confidential client goes on to oidc-provider in the RFC form it
     * decodes; anything else for that client is `invalid_client`. Answers whether the request was refused.
     */
    const refuseUndecodedBasic = async (ctx: KoaContext): Promise<boolean> => {
      const header = ctx.req.headers.authorization
      if (config.basicCredentials !== "raw" || header === undefined || !/^basic /i.test(header)) return false
      const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8")
      const colon = decoded.indexOf(":")
      if (colon < 0 || decoded.slice(0, colon) !== config.confidentialClientId) return false
      if (sameSecret(decoded.slice(colon + 1), config.confidentialClientSecret)) {
        const encode = (value: string) => new URLSearchParams([["", value]]).toString().slice(1)
        ctx.req.headers.authorization = `Basic ${
          Buffer.from(`${encode(config.confidentialClientId)}:${encode(config.confidentialClientSecret)}`)
            .toString("base64")
        }`
        return false
      }
      await answerToken(ctx, 401, {
        error: "invalid_client",
        error_description: "client authentication failed"
      }, { "www-authenticate": `Basic realm="${issuer}"` })
      return true
    }

    const tokenEndpoint = async (ctx: KoaContext, next: () => Promise<void>) => {
      const failure = pendingFailures.shift()
      if (failure !== undefined) {
        counters.injectedTokenFailures++
        return answerToken(ctx, failure.status, failure.body)
      }
      if (await refuseUndecodedBasic(ctx)) return
      await next()
      const params = oidcParams(ctx)
      const key = grantTypeKey(params?.grant_type)
      counters.tokenRequests[key]++
      if (ctx.status >= 400) counters.tokenErrors[key]++

      // RFC 8628 §3.5: polling faster than the interval earns `slow_down`, and the interval grows by 5 seconds.
      if (key === "device_code" && typeof params?.device_code === "string") {
        const now = Date.now()
        const poll = devicePolls.get(params.device_code) ?? { last: 0, interval: config.devicePollIntervalSeconds }
        const pending = isRecord(ctx.body) && ctx.body.error === "authorization_pending"
        if (config.enforceDevicePollInterval && pending && now - poll.last < poll.interval * 1000) {
          poll.interval += 5
          ctx.body = { error: "slow_down", error_description: `poll at most every ${poll.interval} seconds` }
        }
        poll.last = now
        if (pending) devicePolls.set(params.device_code, poll)
        else devicePolls.delete(params.device_code)
      }
    }

    /**
     * `requireNonce`: an `openid` authorize request without a `nonce` is refused with `invalid_request` (as Glewlwyd
     * does), sent back to the client's loopback redirect URI as an authorization error response (RFC 6749
     * §4.1.2.1). A request whose redirect URI is not a loopback one of the public client is left to oidc-provider.
     */
    const refuseWithoutNonce = (ctx: KoaContext): boolean => {
      const query = new URLSearchParams(ctx.querystring)
      const scopes = (query.get("scope") ?? "").split(" ")
      if (!scopes.includes("openid") || (query.get("nonce") ?? "") !== "") return false
      const redirectUri = query.get("redirect_uri") ?? ""
      const loopback = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\/callback$/.test(redirectUri)
      if (query.get("client_id") !== config.publicClientId || !loopback) return false
      const target = new URL(redirectUri)
      target.searchParams.set("error", "invalid_request")
      target.searchParams.set("error_description", "nonce required")
      const state = query.get("state")
      if (state !== null) target.searchParams.set("state", state)
      target.searchParams.set("iss", issuer)
      ctx.status = 303
      ctx.redirect(target.href)
      return true
    }

    const cookieless = config.autoApprove ? new CookielessJar() : undefined

    /** Browser pages (sign-in, consent, device verification) pass a proxy by its session cookie, not a header. */
    const isBrowserPage = (path: string): boolean =>
      /^\/(auth|interaction)(\/|$)/.test(path) || (/^\/device(\/|$)/.test(path) && path !== "/device/auth")

    provider.use(async (ctx, next) => {
      const { method, path } = ctx
      const interactionMatch = /^\/interaction\/([^/]+)\/?$/.exec(path)
      if (interactionMatch) return interaction(ctx, interactionMatch[1]!)
      if (
        (path === "/.well-known/oauth-authorization-server" || path === "/.well-known/openid-configuration") &&
        (method === "GET" || method === "HEAD")
      ) {
        // RFC 8414 metadata is the same document as OpenID Connect discovery; list the admin's scopes too.
        ctx.path = "/.well-known/openid-configuration"
        await next()
        if (ctx.status === 200 && isRecord(ctx.body) && Array.isArray(ctx.body.scopes_supported)) {
          ctx.body = {
            ...ctx.body,
            scopes_supported: [
              ...new Set([
                ...ctx.body.scopes_supported,
                ...config.resourceScopes.filter((scope) => !config.withholdScopes.includes(scope))
              ])
            ]
          }
        }
        return
      }
      if (path === "/token" && method === "POST") return tokenEndpoint(ctx, next)
      if (path === "/auth" && (method === "GET" || method === "POST")) {
        counters.authorizationRequests++
        if (config.requireNonce && method === "GET" && refuseWithoutNonce(ctx)) return
      }
      if (path === "/device/auth" && method === "POST") {
        counters.deviceAuthorizationRequests++
        await next()
        if (ctx.status === 200 && isRecord(ctx.body)) {
          ctx.body = { ...ctx.body, interval: config.devicePollIntervalSeconds }
        }
        return
      }
      return next()
    })

    const callback = provider.callback()
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (config.proxyToken !== undefined && !isBrowserPage((req.url ?? "/").split("?")[0]!)) {
        const header = req.headers["proxy-authorization"]
        const refusal = proxyRefusal(config.proxyToken, header)
        if (refusal !== undefined) {
          counters.idpProxyRejections++
          res.writeHead(407, { "content-type": "application/json", "cache-control": "no-store", ...proxyAuthenticate })
          res.end(JSON.stringify({ error: "proxy_authentication_required", error_description: refusal }))
          return
        }
      }
      if (cookieless !== undefined && req.headers.cookie === undefined) {
        const path = (req.url ?? "/").split("?")[0]!
        const cookie = cookieless.header(path)
        if (cookie !== undefined) req.headers.cookie = cookie
        const writeHead = res.writeHead
        res.writeHead = function(this: http.ServerResponse, ...args: Array<any>) {
          cookieless.capture(res.getHeader("set-cookie"))
          return (writeHead as (...a: Array<any>) => http.ServerResponse).apply(this, args)
        } as typeof res.writeHead
      }
      callback(req, res)
    })

    return {
      issuer,
      port,
      publicJwks: { keys: [publicJwk] },
      failNextTokenRequests: (count, failure) => {
        for (let i = 0; i < count; i++) pendingFailures.push(failure)
      },
      close: () => close(server)
    }
  } catch (error) {
    await close(server)
    throw error
  }
}
