/**
 * The Promise facade against the real sandbox: oidc-provider issues the tokens, the Flyte-like admin publishes
 * the client configuration (over gRPC and over HTTP) and rejects tokens on command.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import { createAuthClient, NodeKeyring } from "@flyte-auth/node"
import { type Sandbox, startSandbox, UserAgent } from "@flyte-auth/sandbox"
import { Redacted } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

let sandbox: Sandbox.Service
let proxy: RecordingProxy
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-client-"))

beforeAll(async () => {
  ;[sandbox, proxy] = await Promise.all([startSandbox({ devicePollIntervalSeconds: 1 }), startRecordingProxy()])
})
afterAll(async () => {
  await Promise.all([sandbox?.close(), proxy?.close()])
  Fs.rmSync(dir, { recursive: true, force: true })
})

interface RecordingProxy {
  readonly url: string
  /** Every request seen, as `<host:port> <METHOD> <path>`: forwarded ones and those read inside CONNECT tunnels. */
  readonly requests: Array<string>
  readonly close: () => Promise<void>
}

/**
 * A forward proxy on 127.0.0.1: CONNECT tunnels (reading the plaintext HTTP/1.1 request lines that pass through
 * them) and absolute-form requests, each recorded.
 */
const startRecordingProxy = async (): Promise<RecordingProxy> => {
  const requests: Array<string> = []
  const sockets = new Set<Net.Socket>()
  const track = (socket: Net.Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  }
  const server = Http.createServer((request, response) => {
    const target = new URL(request.url!)
    requests.push(`${target.host} ${request.method} ${target.pathname}${target.search}`)
    const upstream = Http.request(target, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode!, answer.headers)
      answer.pipe(response)
    })
    upstream.on("error", () => response.destroy())
    request.pipe(upstream)
  })
  server.on("connection", track)
  server.on("connect", (request: Http.IncomingMessage, client: Net.Socket, head: Buffer) => {
    const target = request.url!
    const [host, port] = target.split(":")
    const upstream = Net.connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    client.on("data", (chunk: Buffer) => {
      for (const [, method, path] of chunk.toString("latin1").matchAll(/^([A-Z]+) (\S+) HTTP\/1\.[01]\r$/gm)) {
        requests.push(`${target} ${method} ${path}`)
      }
    })
    track(upstream)
    for (const socket of [client, upstream]) {
      socket.on("error", () => {
        client.destroy()
        upstream.destroy()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

const configFile = (yaml: string) => {
  const file = Path.join(Fs.mkdtempSync(Path.join(dir, "config-")), "config.yaml")
  Fs.writeFileSync(file, yaml)
  return file
}

const whoami = () => `${sandbox.adminHttp}/api/v1/whoami`
/** No Flyte config file or FLYTE_* variable of the machine may leak into these tests. */
const env = {}

const clientSecretOptions = () => ({
  endpoint: sandbox.adminGrpc,
  insecure: true,
  authMode: "ClientSecret",
  clientId: sandbox.clients.confidential.clientId,
  clientSecret: sandbox.clients.confidential.clientSecret,
  keyring: "memory" as const,
  env
})

describe("createAuthClient", () => {
  it("client credentials with the configuration fetched from AuthMetadataService over gRPC", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const token = await auth.accessToken()
    expect(token.split(".")).toHaveLength(3)
    // The header key comes from the admin's public client config.
    expect(await auth.headers()).toEqual({ [sandbox.headerKey]: `Bearer ${token}` })
    const credentials = await auth.credentials()
    expect(Redacted.value(credentials.accessToken)).toBe(token)
    expect(credentials.endpoint).toBe(sandbox.adminGrpc)

    const response = await auth.fetch(whoami())
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ subject: sandbox.clients.confidential.clientId })
  })

  it("two service accounts on one endpoint keep their own credentials; none is handed another's", async () => {
    const store = Fs.mkdtempSync(Path.join(dir, "accounts-"))
    const keyring = NodeKeyring.layerFile(store)
    const clientOf = (token: string) =>
      JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8")).client_id as unknown
    const a = { ...clientSecretOptions(), keyring, logLevel: "None" as const }
    const b = { ...a, clientId: sandbox.clients.ci.clientId, clientSecret: sandbox.clients.ci.clientSecret }
    const tokenA = await (async () => {
      await using auth = await createAuthClient(a)
      return await auth.accessToken()
    })()
    const tokenB = await (async () => {
      await using auth = await createAuthClient(b)
      return await auth.accessToken()
    })()
    expect(clientOf(tokenA)).toBe(sandbox.clients.confidential.clientId)
    expect(clientOf(tokenB)).toBe(sandbox.clients.ci.clientId)
    // New clients read their own stored tokens (no token request), never the other's.
    sandbox.resetStats()
    {
      await using again = await createAuthClient(a)
      expect(await again.accessToken()).toBe(tokenA)
      await using againB = await createAuthClient(b)
      expect(await againB.accessToken()).toBe(tokenB)
    }
    expect(sandbox.stats().tokenRequests.client_credentials ?? 0).toBe(0)
    // A user of the admin's client gets neither of them.
    {
      await using user = await createAuthClient({
        endpoint: sandbox.adminGrpc,
        insecure: true,
        keyring,
        allowInteractive: false,
        logLevel: "None",
        env
      })
      await expect(user.accessToken()).rejects.toMatchObject({ _tag: "AccessTokenNotFound" })
    }
    // Logging A out leaves B's login.
    {
      await using auth = await createAuthClient(a)
      await auth.logout()
    }
    sandbox.resetStats()
    await using stillB = await createAuthClient(b)
    expect(await stillB.accessToken()).toBe(tokenB)
    expect(sandbox.stats().tokenRequests.client_credentials ?? 0).toBe(0)
  })

  it("accessToken() on a valid stored token fetches nothing (no metadata, no token); headers() fetches the header key", async () => {
    const keyringDir = Fs.mkdtempSync(Path.join(dir, "stored-"))
    const stored = {
      ...clientSecretOptions(),
      keyring: "file" as const,
      env: { ...env, FLYTE_AUTH_CREDENTIALS_DIR: keyringDir }
    }
    {
      await using login = await createAuthClient({ ...stored, logLevel: "None" })
      await login.accessToken()
    }
    sandbox.resetStats()
    await using auth = await createAuthClient({ ...stored, logLevel: "None" })
    const token = await auth.accessToken()
    expect((await auth.credentials()).endpoint).toBe(sandbox.adminGrpc)
    const quiet = sandbox.stats()
    expect([quiet.admin.oauth2MetadataCalls, quiet.admin.publicClientConfigCalls]).toEqual([0, 0])
    expect(quiet.tokenRequests.client_credentials).toBe(0)
    expect(await auth.headers()).toEqual({ [sandbox.headerKey]: `Bearer ${token}` })
    expect(sandbox.stats().admin.publicClientConfigCalls).toBe(1)
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(0)
  })

  it("answers repeated accessToken calls from the cache, without new token requests", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const first = await auth.accessToken()
    sandbox.resetStats()
    for (let i = 0; i < 100; i++) expect(await auth.accessToken()).toBe(first)
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(0)
  })

  it("fetch refreshes and resends once on 401, with exactly one token request", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const before = await auth.accessToken()
    sandbox.rejectTokensIssuedBefore()
    sandbox.resetStats()
    const responses = await Promise.all(Array.from({ length: 10 }, () => auth.fetch(whoami())))
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200))
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
    expect(await auth.accessToken()).not.toBe(before)
  })

  it("rejected(sentHeaders): one token request for any number of callers; stale headers change nothing", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const sent = await auth.headers()
    await new Promise((resolve) => setTimeout(resolve, 1100)) // JWTs issued within the same second are equal
    sandbox.resetStats()
    await Promise.all(Array.from({ length: 20 }, () => auth.rejected(sent)))
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
    const renewed = await auth.headers()
    expect(renewed[sandbox.headerKey]).not.toBe(sent[sandbox.headerKey])
    // A late report about the old headers does not throw away the new token.
    await auth.rejected(sent)
    expect(auth.cachedHeaders()).toEqual(renewed)
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
  })

  it("refresh() obtains a new token; logout() forgets it", async () => {
    await using auth = await createAuthClient(clientSecretOptions())
    const first = await auth.accessToken()
    await new Promise((resolve) => setTimeout(resolve, 1100)) // JWTs issued within the same second are equal
    const refreshed = await auth.refresh()
    expect(Redacted.value(refreshed.accessToken)).not.toBe(first)
    await auth.logout()
    sandbox.resetStats()
    await auth.accessToken() // a non-interactive flow simply runs again
    expect(sandbox.stats().tokenRequests.client_credentials).toBe(1)
  })

  it("PKCE through the HTTP metadata endpoints, the user logging in from onUrl", async () => {
    await using auth = await createAuthClient({
      endpoint: sandbox.adminHttp,
      authMode: "Pkce",
      keyring: "memory",
      openBrowser: false,
      onUrl: (url) => void UserAgent.authorize(url, sandbox.user),
      // The sandbox announces Flyte's fixed redirect port; an ephemeral one keeps parallel runs apart.
      redirectUri: "http://127.0.0.1:0/callback",
      env
    })
    const credentials = await auth.credentials()
    expect(credentials.refreshToken).toBeDefined()
    const response = await auth.fetch(whoami())
    expect(await response.json()).toMatchObject({ subject: sandbox.user.subject })
  })

  it("device flow with onDeviceCode, then a refresh with the rotated refresh token", async () => {
    await using auth = await createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      authMode: "DeviceFlow",
      keyring: "memory",
      onDeviceCode: (prompt) => void UserAgent.approveDevice(prompt, sandbox.user),
      env
    })
    const first = await auth.credentials()
    sandbox.resetStats()
    const refreshed = await auth.refresh()
    expect(sandbox.stats().tokenRequests.refresh_token).toBe(1)
    expect(Redacted.value(refreshed.refreshToken!)).not.toBe(Redacted.value(first.refreshToken!))
  })

  it("logout() revokes the refresh token at the IdP (RFC 7009) before forgetting it: it no longer refreshes", async () => {
    // The admin's gRPC metadata has no revocation endpoint: it comes from the issuer's OpenID discovery.
    await using auth = await createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      authMode: "DeviceFlow",
      keyring: "memory",
      onDeviceCode: (prompt) => void UserAgent.approveDevice(prompt, sandbox.user),
      env
    })
    const refreshToken = Redacted.value((await auth.credentials()).refreshToken!)
    const refresh = () =>
      fetch(sandbox.endpoints.token, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: refreshToken,
          client_id: sandbox.clients.public.clientId
        })
      })
    await auth.logout()
    const answer = await refresh()
    expect(answer.status).toBe(400)
    expect(await answer.json()).toMatchObject({ error: "invalid_grant" })
  })

  it("rejects with the tagged error itself, without the secret in its message", async () => {
    const secret = "wrong-secret-7f3a9c"
    await using auth = await createAuthClient({ ...clientSecretOptions(), clientSecret: secret })
    const error = await auth.accessToken().then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "OAuthError", error: "invalid_client" })
    expect(String((error as Error).message)).not.toContain(secret)
    expect(JSON.stringify(error)).not.toContain(secret)
  })

  it("rejects createAuthClient itself on a bad configuration", async () => {
    const error = await createAuthClient({ endpoint: sandbox.adminGrpc, authMode: "Kerberos", env }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "Config" })
    expect((error as Error).message).toContain("Pkce")
  })

  it("a static clientConfig takes the redirectUri option, as a fetched one does", async () => {
    const urls: Array<string> = []
    await using auth = await createAuthClient({
      endpoint: sandbox.adminHttp,
      authMode: "Pkce",
      keyring: "memory",
      openBrowser: false,
      onUrl: (url) => {
        urls.push(url)
        void UserAgent.authorize(url, sandbox.user)
      },
      clientConfig: {
        tokenEndpoint: sandbox.endpoints.token,
        authorizationEndpoint: sandbox.endpoints.authorization,
        clientId: sandbox.clients.public.clientId,
        redirectUri: sandbox.redirectUri,
        scopes: sandbox.scopes,
        audience: sandbox.audience,
        headerKey: sandbox.headerKey
      },
      redirectUri: "http://127.0.0.1:0/callback",
      logLevel: "None",
      env
    })
    await auth.accessToken()
    const redirectUri = new URL(new URL(urls[0]).searchParams.get("redirect_uri")!)
    expect(redirectUri.hostname).toBe("127.0.0.1")
    expect(redirectUri.port).not.toBe(new URL(sandbox.redirectUri).port)
    expect((await auth.fetch(whoami())).status).toBe(200)
  })

  it("an aborted call rejects promptly and leaves the client usable", async () => {
    await using auth = await createAuthClient({
      endpoint: sandbox.adminHttp,
      authMode: "Pkce",
      keyring: "memory",
      openBrowser: false,
      onUrl: () => undefined, // nobody logs in
      redirectUri: "http://127.0.0.1:0/callback",
      env
    })
    const controller = new AbortController()
    const pending = auth.accessToken({ signal: controller.signal })
    setTimeout(() => controller.abort(), 200)
    const error = await pending.then(() => undefined, (e: unknown) => e)
    expect(error).toMatchObject({ name: "AbortError" })
  })

  it("fetch goes through httpProxyUrl, like the metadata and token requests", async () => {
    proxy.requests.length = 0
    await using auth = await createAuthClient({
      ...clientSecretOptions(),
      endpoint: sandbox.adminHttp,
      httpProxyUrl: proxy.url
    })
    const response = await auth.fetch(whoami())
    expect(response.status).toBe(200)
    const admin = new URL(sandbox.adminHttp).host
    const idp = new URL(sandbox.endpoints.token)
    expect(proxy.requests).toContain(`${admin} GET /config/v1/flyte_client`)
    expect(proxy.requests).toContain(`${idp.host} POST ${idp.pathname}`)
    expect(proxy.requests).toContain(`${admin} GET /api/v1/whoami`)
  })

  it("fetch keeps a dispatcher the caller passes", async () => {
    proxy.requests.length = 0
    await using auth = await createAuthClient({
      ...clientSecretOptions(),
      endpoint: sandbox.adminHttp,
      httpProxyUrl: proxy.url
    })
    const { Agent } = await import("undici")
    const direct = new Agent()
    try {
      const response = await auth.fetch(whoami(), { dispatcher: direct } as unknown as RequestInit)
      expect(response.status).toBe(200)
      expect(proxy.requests).not.toContain(`${new URL(sandbox.adminHttp).host} GET /api/v1/whoami`)
    } finally {
      await direct.close()
    }
  })

  it("logs warnings to stderr, never to the program's stdout; logLevel None silences it", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined)
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined)
    try {
      {
        // A warning while the client is built (insecureSkipVerify) and a line while it logs in (the PKCE URL).
        await using auth = await createAuthClient({
          endpoint: sandbox.adminHttp,
          authMode: "Pkce",
          keyring: "memory",
          insecureSkipVerify: true,
          openBrowser: false,
          onUrl: (url) => void UserAgent.authorize(url, sandbox.user),
          redirectUri: "http://127.0.0.1:0/callback",
          env
        })
        await auth.accessToken()
      }
      expect(log).not.toHaveBeenCalled()
      const lines = error.mock.calls.map((args) => args.join(" "))
      expect(lines.some((line) => /^flyte-auth: warning: .*TLS CERTIFICATE VERIFICATION/.test(line))).toBe(true)
      // The URL once, from the browser; the flow's own Info line about it is below the default level (Warning).
      expect(lines.filter((line) => line.includes("Open this URL in a browser to log in"))).toHaveLength(1)
      expect(lines.some((line) => line.startsWith("flyte-auth: info:"))).toBe(false)
      // Plain lines, not Effect's logfmt.
      expect(lines.some((line) => /timestamp=|fiber=#/.test(line))).toBe(false)

      error.mockClear()
      {
        await using auth = await createAuthClient({
          ...clientSecretOptions(),
          insecureSkipVerify: true,
          logLevel: "None"
        })
        await auth.accessToken()
      }
      expect(log).not.toHaveBeenCalled()
      expect(error).not.toHaveBeenCalled()
    } finally {
      log.mockRestore()
      error.mockRestore()
    }
  })

  it("admin.authorizationHeader names the header the token is sent in; an explicit option wins", async () => {
    const file = configFile("admin:\n  authorizationHeader: Authorization\n")
    {
      // The admin publishes its own key (flyte-authorization) and also reads `authorization`.
      await using auth = await createAuthClient({ ...clientSecretOptions(), configFile: file })
      const token = await auth.accessToken()
      expect(sandbox.headerKey).not.toBe("authorization")
      expect(await auth.headers()).toEqual({ authorization: `Bearer ${token}` })
      expect((await auth.fetch(whoami())).status).toBe(200)
    }
    {
      // A header the admin does not read: the token is sent, and refused as missing.
      await using auth = await createAuthClient({
        ...clientSecretOptions(),
        configFile: file,
        authorizationHeader: "X-Not-Read"
      })
      const token = await auth.accessToken()
      expect(await auth.headers()).toEqual({ "x-not-read": `Bearer ${token}` })
      sandbox.resetStats()
      expect((await auth.fetch(whoami())).status).toBe(401)
      expect(sandbox.stats().admin.lastAuthFailure).toContain("missing")
    }
  })

  it("admin.pkceConfig.timeout bounds a PKCE login; timeoutSeconds wins over it", async () => {
    const pkce = (yaml: string, timeoutSeconds?: number) =>
      createAuthClient({
        endpoint: sandbox.adminHttp,
        authMode: "Pkce",
        keyring: "memory",
        openBrowser: false,
        onUrl: () => undefined, // nobody logs in
        redirectUri: "http://127.0.0.1:0/callback",
        configFile: configFile(yaml),
        timeoutSeconds,
        logLevel: "None",
        env
      })
    for (
      const [yaml, timeoutSeconds] of [["admin:\n  pkceConfig:\n    timeout: 1s\n"], [
        "admin:\n  pkceConfig:\n    timeout: 10m\n",
        1
      ]] as const
    ) {
      await using auth = await pkce(yaml, timeoutSeconds)
      const started = Date.now()
      const error = await auth.accessToken().then(() => undefined, (e: unknown) => e)
      expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "Timeout" })
      expect(Date.now() - started).toBeLessThan(10_000)
    }
  })

  it("admin.deviceFlowConfig.timeout bounds a device login", async () => {
    await using auth = await createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      authMode: "DeviceFlow",
      keyring: "memory",
      onDeviceCode: () => undefined, // nobody approves
      configFile: configFile("admin:\n  deviceFlowConfig:\n    timeout: 2s\n"),
      logLevel: "None",
      env
    })
    const started = Date.now()
    const error = await auth.accessToken().then(() => undefined, (e: unknown) => e)
    expect(error).toMatchObject({ _tag: "AuthenticationError", reason: "Timeout" })
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it("a call after close rejects with a clear error", async () => {
    const auth = await createAuthClient(clientSecretOptions())
    await auth.close()
    await expect(auth.accessToken()).rejects.toThrow("closed")
  })
})

describe("createAuthClient without a browser (headless)", () => {
  it("with no auth mode configured, switches to the device flow the IdP offers, and records it as DeviceFlow", async () => {
    const urls: Array<string> = []
    const prompts: Array<string> = []
    await using auth = await createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      keyring: "memory",
      openBrowser: false,
      onUrl: (url) => void urls.push(url),
      onDeviceCode: (prompt) => {
        prompts.push(prompt.userCode)
        void UserAgent.approveDevice(prompt, sandbox.user)
      },
      logLevel: "None",
      env
    })
    const credentials = await auth.credentials()
    expect(credentials.authMode).toBe("DeviceFlow")
    expect(prompts).toHaveLength(1)
    expect(urls).toEqual([])
  })

  it("headless paste (or a pinned Pkce) keeps the PKCE login: the URL is handed out, no device code is asked for", async () => {
    for (const pin of [{ headless: "paste" as const }, { authMode: "Pkce" }]) {
      const prompts: Array<string> = []
      const urls: Array<string> = []
      await using auth = await createAuthClient({
        endpoint: sandbox.adminGrpc,
        insecure: true,
        keyring: "memory",
        openBrowser: false,
        redirectUri: "http://127.0.0.1:0/callback",
        onUrl: (url) => {
          urls.push(url)
          void UserAgent.authorize(url, sandbox.user)
        },
        onDeviceCode: (prompt) => void prompts.push(prompt.userCode),
        logLevel: "None",
        env,
        ...pin
      })
      const credentials = await auth.credentials()
      expect(credentials.authMode, JSON.stringify(pin)).not.toBe("DeviceFlow")
      expect(urls, JSON.stringify(pin)).toHaveLength(1)
      expect(prompts).toEqual([])
    }
  })

  it("an unknown headless value is a Config error", async () => {
    await expect(createAuthClient({
      endpoint: sandbox.adminGrpc,
      insecure: true,
      keyring: "memory",
      headless: "sometimes" as never,
      logLevel: "None",
      env
    })).rejects.toMatchObject({
      reason: "Config",
      message: expect.stringContaining("headless")
    })
  })
})
