/**
 * A real, independent identity provider for interop tests: Glewlwyd 2.7 (the Debian package `glewlwyd`), run as a
 * child process on loopback with a throw-away sqlite database, configured through its admin REST API:
 *
 * - an OpenID Connect plugin instance `oidc` (JWT access tokens signed RS256 with a key generated at start,
 *   authorization code + PKCE (S256), device authorization, client credentials, one-time-use (rotated) refresh
 *   tokens, introspection and revocation);
 * - scopes `flyte` and `offline_access` (`openid` is seeded by the schema);
 * - a user with a password, allowed those scopes (and `g_profile`, which Glewlwyd requires to record a consent);
 * - a public client (no secret, fixed loopback redirect URI) and a confidential client whose secret changes under
 *   form-url-encoding, allowed `client_credentials` with the `flyte` scope.
 *
 * The user's side (login page, consent, device approval) is done headless with fetch and a cookie jar, the way
 * Glewlwyd's own login page calls its API (no browser).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { generateKeyPairSync, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

export const glewlwydBinary = "/usr/bin/glewlwyd"
/** The package's own sqlite schema (dbconfig-common install script), which seeds the `admin` user. */
export const glewlwydSchema = "/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3"
/** The password of the seeded `admin` user (GETTING_STARTED.md: "the default login `admin` with the default password `password`"). */
const seededAdmin = { username: "admin", password: "password" }
const pluginName = "oidc"

export interface Options {
  /** `access-token-duration` of the plugin, in seconds (default 3600). */
  readonly accessTokenLifetimeSeconds?: number
  /** `refresh-token-duration`, in seconds (default 1209600, Glewlwyd's default). */
  readonly refreshTokenLifetimeSeconds?: number
  /** `device-authorization-interval`, the polling interval the server publishes, in seconds (default 1). */
  readonly deviceIntervalSeconds?: number
  /** Glewlwyd's log level (default `WARNING`); its output is kept in `logs()`, never printed. */
  readonly logLevel?: "NONE" | "ERROR" | "WARNING" | "INFO" | "DEBUG"
}

export interface Endpoints {
  readonly authorization: string
  readonly token: string
  readonly deviceAuthorization: string
  readonly jwks: string
  readonly revocation: string
  readonly introspection: string
  readonly userinfo: string
  /** `{issuer}/.well-known/openid-configuration` (Glewlwyd publishes no RFC 8414 document). */
  readonly discovery: string
}

export interface Glewlwyd {
  /** `http://127.0.0.1:<port>`: the `external_url`. */
  readonly baseUrl: string
  /** What Glewlwyd claims as `issuer` (discovery and the `iss` of its tokens): `${baseUrl}/api/oidc`. */
  readonly issuer: string
  readonly endpoints: Endpoints
  /** The port of the public client's redirect URI, picked free at start. */
  readonly redirectPort: number
  readonly clients: {
    readonly public: { readonly clientId: string; readonly redirectUri: string }
    readonly confidential: { readonly clientId: string; readonly clientSecret: string }
  }
  readonly user: { readonly username: string; readonly password: string }
  readonly accessTokenLifetimeSeconds: number
  /**
   * Logs the user in for an authorize URL (password, consent to the requested scopes) with a fresh cookie jar and
   * answers the final redirect URL (to the client's redirect URI, with `code` or `error`). It does not visit it.
   */
  readonly approveLogin: (authorizeUrl: string) => Promise<string>
  /** Logs the user in and approves a device user code (consent to the scopes of the device request). */
  readonly approveDevice: (userCode: string) => Promise<void>
  /** `approveLogin`, then follows the redirect to the client's loopback callback, as a browser would. */
  readonly browse: (authorizeUrl: string) => Promise<{ readonly redirectUrl: string; readonly callbackStatus: number }>
  /** An admin REST call (as the seeded admin): `/api/<path>`. */
  readonly admin: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: string }>
  /** What Glewlwyd wrote to stdout/stderr so far. */
  readonly logs: () => string
  readonly close: () => Promise<void>
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough for a test run). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

/** A minimal cookie jar: name → value, from `Set-Cookie` headers (Glewlwyd sets `Path=/`, no domain). */
class CookieJar {
  private readonly cookies = new Map<string, string>()
  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";")
      const eq = pair!.indexOf("=")
      if (eq > 0) this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim())
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ")
  }
}

const describe = (url: string): string => url.replace(/[?#].*$/, "")

export const startGlewlwyd = async (options: Options = {}): Promise<Glewlwyd> => {
  if (!Fs.existsSync(glewlwydBinary) || !Fs.existsSync(glewlwydSchema)) {
    throw new Error(
      `Glewlwyd is not installed (${glewlwydBinary}, ${glewlwydSchema}): apt-get install glewlwyd sqlite3`
    )
  }
  const accessTokenLifetimeSeconds = options.accessTokenLifetimeSeconds ?? 3600
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-glewlwyd-"))
  const cleanupDir = () => Fs.rmSync(dir, { recursive: true, force: true })
  let child: ChildProcess | undefined
  let output = ""
  try {
    // The database: the package's schema, applied by sqlite3 (the seeded admin and modules come with it).
    const db = Path.join(dir, "glewlwyd.db")
    const sql = spawnSync("sqlite3", [db], { input: Fs.readFileSync(glewlwydSchema), encoding: "utf8" })
    if (sql.status !== 0) throw new Error(`sqlite3 could not create the database: ${sql.stderr}`)

    const [port, redirectPort] = [await freePort(), await freePort()]
    const baseUrl = `http://127.0.0.1:${port}`
    const configFile = Path.join(dir, "glewlwyd.conf")
    // libconfig syntax. `use_secure_connection=false` is NOT written: Glewlwyd 2.7.5 then still checks the
    // certificate files and exits ("secure connection is active but certificate is not valid").
    Fs.writeFileSync(
      configFile,
      [
        `port=${port}`,
        `bind_address="127.0.0.1"`,
        `external_url="${baseUrl}"`,
        `login_url="login.html"`,
        `api_prefix="api"`,
        `allow_origin="*"`,
        `log_mode="console"`,
        `log_level="${options.logLevel ?? "WARNING"}"`,
        `cookie_secure=0`,
        `session_expiration=3600`,
        `session_key="GLEWLWYD2_SESSION_ID"`,
        `admin_session_authentication="cookie"`,
        `profile_session_authentication="cookie"`,
        `allow_multiple_user_per_session=true`,
        `login_api_enabled=true`,
        `admin_scope="g_admin"`,
        `profile_scope="g_profile"`,
        `user_module_path="/usr/lib/glewlwyd/user"`,
        `client_module_path="/usr/lib/glewlwyd/client"`,
        `user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"`,
        `plugin_module_path="/usr/lib/glewlwyd/plugin"`,
        `hash_algorithm="SHA512"`,
        `database = { type = "sqlite3"; path = "${db}"; };`,
        ""
      ].join("\n")
    )

    child = spawn(glewlwydBinary, [`--config-file=${configFile}`], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)))
    let hasExited = false
    void exited.then(() => (hasExited = true))

    // Ready when `/config` answers.
    const deadline = Date.now() + 20_000
    for (;;) {
      if (hasExited) throw new Error(`glewlwyd exited before it was ready:\n${output}`)
      const ok = await fetch(`${baseUrl}/config`).then((r) => r.ok, () => false)
      if (ok) break
      if (Date.now() > deadline) throw new Error(`glewlwyd was not ready within 20 s:\n${output}`)
      await new Promise((r) => setTimeout(r, 100))
    }

    // --- admin session ---------------------------------------------------------------------------------------
    const adminJar = new CookieJar()
    const api = async (jar: CookieJar, method: string, path: string, body?: unknown) => {
      const response = await fetch(`${baseUrl}/api/${path}`, {
        method,
        redirect: "manual",
        headers: {
          cookie: jar.header(),
          ...(body === undefined ? {} : { "content-type": "application/json" })
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      jar.store(response)
      return { status: response.status, body: await response.text() }
    }
    const must = async (what: string, call: Promise<{ status: number; body: string }>) => {
      const result = await call
      if (result.status !== 200) throw new Error(`Glewlwyd admin: ${what} answered ${result.status} ${result.body}`)
      return result
    }
    await must("admin login", api(adminJar, "POST", "auth", seededAdmin))

    // --- the OIDC plugin instance ----------------------------------------------------------------------------
    const issuer = `${baseUrl}/api/${pluginName}`
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
    await must(
      "create the OIDC plugin",
      api(adminJar, "POST", "mod/plugin/", {
        module: "oidc",
        name: pluginName,
        display_name: "OpenID Connect (flyte-auth interop)",
        parameters: {
          // `iss` is mandatory for the plugin; it becomes the discovery document's issuer and every token's `iss`.
          iss: issuer,
          "jwt-type": "rsa",
          "jwt-key-size": "256",
          key: privateKey.export({ type: "pkcs8", format: "pem" }),
          cert: publicKey.export({ type: "spki", format: "pem" }),
          "access-token-duration": accessTokenLifetimeSeconds,
          "refresh-token-duration": options.refreshTokenLifetimeSeconds ?? 1_209_600,
          "code-duration": 600,
          "refresh-token-rolling": true,
          // One-time use: every refresh answers a new refresh token and disables the one used.
          "refresh-token-one-use": "always",
          "client-refresh-token-one-use-parameter": "refresh-token-one-use",
          // client_credentials (and device) are "non OIDC" grants for this plugin.
          "allow-non-oidc": true,
          "auth-type-code-enabled": true,
          "auth-type-code-revoke-replayed": false,
          "auth-type-token-enabled": false,
          "auth-type-id-token-enabled": true,
          "auth-type-none-enabled": false,
          "auth-type-password-enabled": false,
          "auth-type-client-enabled": true,
          "auth-type-device-enabled": true,
          "auth-type-refresh-enabled": true,
          scope: [],
          "additional-parameters": [],
          claims: [],
          "jwks-show": true,
          "allowed-scope": ["openid", "flyte", "offline_access"],
          "secret-type": "pairwise",
          "address-claim": { type: "no" },
          "name-claim": "no",
          "email-claim": "no",
          "scope-claim": "no",
          "pkce-allowed": true,
          "pkce-method-plain-allowed": false,
          "introspection-revocation-allowed": true,
          "introspection-revocation-auth-scope": [],
          "introspection-revocation-allow-target-client": true,
          "device-authorization-expiration": 600,
          "device-authorization-interval": options.deviceIntervalSeconds ?? 1
        }
      })
    )

    // --- scopes, user, clients -------------------------------------------------------------------------------
    for (const name of ["flyte", "offline_access"]) {
      await must(
        `create scope ${name}`,
        api(adminJar, "POST", "scope/", {
          name,
          display_name: name,
          description: `${name} (flyte-auth interop)`,
          password_required: false,
          password_max_age: 0,
          scheme: {}
        })
      )
    }
    const user = { username: "flyte-user", password: `pw-${randomBytes(9).toString("base64url")}` }
    await must(
      "create the user",
      api(adminJar, "POST", "user/", {
        username: user.username,
        password: user.password,
        name: "Flyte Interop User",
        email: "flyte-user@example.test",
        enabled: true,
        // g_profile: recording a consent (`PUT /api/auth/grant/<client>`) needs a session with that scope.
        scope: ["openid", "flyte", "offline_access", "g_profile"]
      })
    )
    const redirectUri = `http://localhost:${redirectPort}/callback`
    const publicClient = { clientId: "flyte-public", redirectUri }
    await must(
      "create the public client",
      api(adminJar, "POST", "client/", {
        client_id: publicClient.clientId,
        name: "flyte-auth public client",
        confidential: false,
        enabled: true,
        redirect_uri: [redirectUri],
        authorization_type: ["code", "refresh_token", "device_authorization"],
        scope: []
      })
    )
    const confidential = { clientId: "flyte-confidential", clientSecret: "s3cr+t/with:special&chars=%" }
    await must(
      "create the confidential client",
      api(adminJar, "POST", "client/", {
        client_id: confidential.clientId,
        name: "flyte-auth confidential client",
        confidential: true,
        enabled: true,
        // Stored as is (a `password` would be hashed); compared as is too.
        client_secret: confidential.clientSecret,
        redirect_uri: [],
        authorization_type: ["client_credentials"],
        token_endpoint_auth_method: ["client_secret_basic", "client_secret_post"],
        scope: ["flyte"]
      })
    )

    // --- the user's side, headless ---------------------------------------------------------------------------
    const loginPage = `${baseUrl}/login.html`
    const get = async (jar: CookieJar, url: string) => {
      const response = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } })
      jar.store(response)
      await response.body?.cancel()
      return { status: response.status, location: response.headers.get("location") ?? undefined }
    }
    const signIn = async (jar: CookieJar) =>
      must("the user's password login", api(jar, "POST", "auth", { username: user.username, password: user.password }))
    /** Consent as the login page does: the scopes of its URL, space-separated. */
    const consent = async (jar: CookieJar, login: URL) => {
      const clientId = login.searchParams.get("client_id")
      const scope = login.searchParams.get("scope")
      if (clientId === null || scope === null) return
      await must(
        `consent for ${clientId}`,
        api(jar, "PUT", `auth/grant/${encodeURIComponent(clientId)}`, { scope: scope.split(/[ ,]+/).join(" ") })
      )
    }
    const withContinue = (url: string) => `${url}${url.includes("?") ? "&" : "?"}g_continue`

    const approveLogin = async (authorizeUrl: string): Promise<string> => {
      const jar = new CookieJar()
      let signedIn = false
      let next = authorizeUrl
      for (let hop = 0; hop < 8; hop++) {
        const { status, location } = await get(jar, next)
        if (status < 300 || status >= 400 || location === undefined) {
          throw new Error(`Glewlwyd answered ${status} (no redirect) to ${describe(next)}`)
        }
        const target = new URL(location, next)
        if (!target.href.startsWith(loginPage)) return target.href
        // The login page: sign in, consent, then continue with its callback URL (as its "Continue" button does).
        if (!signedIn) {
          await signIn(jar)
          signedIn = true
        }
        await consent(jar, target)
        const callback = target.searchParams.get("callback_url")
        if (callback === null) {
          throw new Error(`Glewlwyd's login page URL has no callback_url: ${describe(target.href)}`)
        }
        next = withContinue(callback)
      }
      throw new Error(`Glewlwyd kept redirecting to its login page for ${describe(authorizeUrl)}`)
    }

    const approveDevice = async (userCode: string): Promise<void> => {
      const jar = new CookieJar()
      await signIn(jar)
      const first = await get(jar, `${issuer}/device?code=${encodeURIComponent(userCode)}`)
      if (first.location === undefined) throw new Error(`Glewlwyd answered ${first.status} to the device page`)
      const login = new URL(first.location, baseUrl)
      if (login.searchParams.get("prompt") === "deviceComplete") return
      await consent(jar, login)
      const callback = login.searchParams.get("callback_url")
      if (callback === null) throw new Error(`Glewlwyd's device redirect has no callback_url: ${describe(login.href)}`)
      const done = await get(jar, withContinue(callback))
      const prompt = done.location === undefined ? null : new URL(done.location, baseUrl).searchParams.get("prompt")
      if (prompt !== "deviceComplete") {
        throw new Error(`Glewlwyd did not complete the device approval (status ${done.status}, prompt ${prompt})`)
      }
    }

    const browse = async (authorizeUrl: string) => {
      const redirectUrl = await approveLogin(authorizeUrl)
      const response = await fetch(redirectUrl, { redirect: "manual" })
      await response.body?.cancel()
      return { redirectUrl, callbackStatus: response.status }
    }

    const close = async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM")
        const timer = setTimeout(() => child?.kill("SIGKILL"), 5_000)
        await exited
        clearTimeout(timer)
      }
      cleanupDir()
    }

    return {
      baseUrl,
      issuer,
      endpoints: {
        authorization: `${issuer}/auth`,
        token: `${issuer}/token`,
        deviceAuthorization: `${issuer}/device_authorization`,
        jwks: `${issuer}/jwks`,
        revocation: `${issuer}/revoke`,
        introspection: `${issuer}/introspect`,
        userinfo: `${issuer}/userinfo`,
        discovery: `${issuer}/.well-known/openid-configuration`
      },
      redirectPort,
      clients: { public: publicClient, confidential },
      user,
      accessTokenLifetimeSeconds,
      approveLogin,
      approveDevice,
      browse,
      admin: (method, path, body) => api(adminJar, method, path, body),
      logs: () => output,
      close
    }
  } catch (error) {
    if (child !== undefined && child.exitCode === null) child.kill("SIGKILL")
    cleanupDir()
    throw error
  }
}

// --- a recording reverse proxy ---------------------------------------------------------------------------------

/** How a request to the token endpoint authenticated the client. */
export type ClientAuthStyle = "basic-encoded" | "basic-raw" | "basic-other" | "post" | "none"

/** One request through the tap: what was sent (never a secret) and what came back. */
export interface TappedRequest {
  readonly method: string
  readonly path: string
  readonly grantType: string | undefined
  readonly clientAuth: ClientAuthStyle
  /** The form parameter names (values are not kept). */
  readonly params: ReadonlyArray<string>
  readonly status: number
  readonly contentLength: number
  /** The response body when it is not a token (an error body), else `<token response>`. */
  readonly responseBody: string
}

export interface Tap {
  /** The tap's base URL: the same paths as the upstream. */
  readonly baseUrl: string
  readonly requests: Array<TappedRequest>
  readonly close: () => Promise<void>
}

const formEncode = (value: string): string => new URLSearchParams([["", value]]).toString().slice(1)

/**
 * A reverse proxy in front of `upstream` that records every request (to count token requests and to report the
 * exact exchange). `clients` lets it tell how a Basic header was encoded, without recording the secret.
 */
export const startTap = async (
  upstream: string,
  clients: ReadonlyArray<{ readonly clientId: string; readonly clientSecret: string }> = []
): Promise<Tap> => {
  const requests: Array<TappedRequest> = []
  const classify = (authorization: string | undefined, params: URLSearchParams): ClientAuthStyle => {
    if (authorization === undefined) return params.has("client_secret") ? "post" : "none"
    if (!/^basic /i.test(authorization)) return "basic-other"
    const decoded = Buffer.from(authorization.slice(6).trim(), "base64").toString("utf8")
    for (const { clientId, clientSecret } of clients) {
      const encoded = `${formEncode(clientId)}:${formEncode(clientSecret)}`
      const raw = `${clientId}:${clientSecret}`
      if (decoded === encoded && encoded !== raw) return "basic-encoded"
      if (decoded === raw) return "basic-raw"
    }
    return "basic-other"
  }
  const server = Http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", async () => {
      const body = Buffer.concat(chunks)
      const params = new URLSearchParams(body.toString("utf8"))
      const headers: Record<string, string> = {}
      for (const [key, value] of Object.entries(request.headers)) {
        if (typeof value === "string" && !["host", "connection", "content-length"].includes(key)) headers[key] = value
      }
      try {
        const upstreamResponse = await fetch(new URL(request.url ?? "/", upstream), {
          method: request.method ?? "GET",
          headers,
          ...(request.method === "GET" || request.method === "HEAD" ? {} : { body }),
          redirect: "manual"
        })
        const answer = Buffer.from(await upstreamResponse.arrayBuffer())
        const text = answer.toString("utf8")
        requests.push({
          method: request.method ?? "?",
          path: (request.url ?? "/").replace(/\?.*$/, ""),
          grantType: params.get("grant_type") ?? undefined,
          clientAuth: classify(request.headers.authorization, params),
          params: [...params.keys()],
          status: upstreamResponse.status,
          contentLength: answer.length,
          responseBody: text.includes("access_token") ? "<token response>" : text
        })
        const out: Record<string, string> = {}
        upstreamResponse.headers.forEach((value, key) => {
          if (!["content-length", "content-encoding", "transfer-encoding", "connection"].includes(key)) out[key] = value
        })
        response.writeHead(upstreamResponse.status, { ...out, "content-length": String(answer.length) }).end(answer)
      } catch (error) {
        response.writeHead(502).end(String(error))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve))
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
