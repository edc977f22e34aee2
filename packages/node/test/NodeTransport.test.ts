import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { TokenClient } from "@flyte-auth/core"
import { NodeTransport } from "@flyte-auth/node"
import { ConfigProvider, Effect, Layer, Logger, Redacted } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Https from "node:https"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

// -----------------------------------------------------------------------------------------------------------------
// Fixtures: a CA and a server certificate made with openssl, a token endpoint (http and https) and a CONNECT proxy,
// all on 127.0.0.1 port 0.
// -----------------------------------------------------------------------------------------------------------------

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-tls-"))
const file = (name: string) => Path.join(dir, name)

const makeCertificates = () => {
  const openssl = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=flyte-auth test CA")
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
  Fs.writeFileSync(
    file("ext.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
  )
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "1",
    "-extfile",
    "ext.cnf"
  )
}

interface Seen {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  readonly body: string
}

const tokenHandler = (seen: Array<Seen>) => (request: Http.IncomingMessage, response: Http.ServerResponse) => {
  let body = ""
  request.on("data", (chunk) => body += chunk)
  request.on("end", () => {
    seen.push({ method: request.method!, path: request.url!, authorization: request.headers.authorization, body })
    if (request.url === "/slow") return // never answers
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({ access_token: "the-access-token", token_type: "Bearer", expires_in: 300 }))
  })
}

const listen = (server: Net.Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as Net.AddressInfo).port))
  )

const close = (server: Net.Server & { closeAllConnections?: () => void }) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections?.()
    server.close(() => resolve())
  })

let httpPort: number
let httpsPort: number
let proxyPort: number
const httpSeen: Array<Seen> = []
const httpsSeen: Array<Seen> = []
const tunnels: Array<string> = []
const proxySockets = new Set<Net.Socket>()
let httpServer: Http.Server
let httpsServer: Https.Server
let proxy: Http.Server

beforeAll(async () => {
  makeCertificates()
  httpServer = Http.createServer(tokenHandler(httpSeen))
  httpsServer = Https.createServer(
    { key: Fs.readFileSync(file("server.key")), cert: Fs.readFileSync(file("server.pem")) },
    tokenHandler(httpsSeen)
  )
  // A forward proxy that only tunnels (HTTP CONNECT), and records every tunnel it opens.
  proxy = Http.createServer((_, response) => response.writeHead(405).end())
  proxy.on("connect", (request: Http.IncomingMessage, client: Net.Socket, head: Buffer) => {
    tunnels.push(request.url!)
    const [host, port] = request.url!.split(":")
    const upstream = Net.connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    for (const socket of [client, upstream]) {
      proxySockets.add(socket)
      socket.on("close", () => proxySockets.delete(socket))
      socket.on("error", () => {
        client.destroy()
        upstream.destroy()
      })
    }
  })
  ;[httpPort, httpsPort, proxyPort] = await Promise.all([listen(httpServer), listen(httpsServer), listen(proxy)])
})

afterAll(async () => {
  for (const socket of proxySockets) socket.destroy()
  await Promise.all([close(httpServer), close(httpsServer), close(proxy)])
  Fs.rmSync(dir, { recursive: true, force: true })
})

// -----------------------------------------------------------------------------------------------------------------

const env = (entries: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

/** A client-credentials token request (a POST with Basic client authentication) through the HttpClient layer. */
const tokenRequest = (
  url: string,
  options: NodeTransport.Options,
  environment: Record<string, string> = {}
) =>
  TokenClient.clientCredentials({
    tokenEndpoint: url,
    client: { method: "client_secret_basic", clientId: "flytectl", clientSecret: Redacted.make("s3cret") },
    scopes: ["all"]
  }).pipe(
    Effect.provide(NodeTransport.layer(options).pipe(Layer.provide(env(environment))))
  )

const captureWarnings = () => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push((Array.isArray(message) ? message : [message]).join(" "))
  })
  return { warnings, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("NodeTransport", () => {
  it.live("sends a token request directly when no proxy is configured", () =>
    Effect.gen(function*() {
      const before = tunnels.length
      const credentials = yield* tokenRequest(`http://127.0.0.1:${httpPort}/token`, {})
      expect(Redacted.value(credentials.accessToken)).toBe("the-access-token")
      expect(tunnels.length).toBe(before)
      const last = httpSeen.at(-1)!
      expect(last.method).toBe("POST")
      expect(last.body).toContain("grant_type=client_credentials")
      expect(last.authorization).toBe(
        Redacted.value(TokenClient.basicAuthorization("flytectl", Redacted.make("s3cret")))
      )
    }))

  it.live("sends it through the proxy of httpProxyUrl (a CONNECT tunnel)", () =>
    Effect.gen(function*() {
      const before = httpSeen.length
      const credentials = yield* tokenRequest(`http://127.0.0.1:${httpPort}/token`, {
        httpProxyUrl: `http://127.0.0.1:${proxyPort}`
      })
      expect(Redacted.value(credentials.accessToken)).toBe("the-access-token")
      expect(tunnels.at(-1)).toBe(`127.0.0.1:${httpPort}`)
      expect(httpSeen.length).toBe(before + 1)
    }))

  it.live("sends an https request through the HTTPS_PROXY of the environment, verifying the server with the CA file", () =>
    Effect.gen(function*() {
      const credentials = yield* tokenRequest(
        `https://127.0.0.1:${httpsPort}/token`,
        { caCertFilePath: file("ca.pem") },
        { HTTPS_PROXY: `http://127.0.0.1:${proxyPort}` }
      )
      expect(Redacted.value(credentials.accessToken)).toBe("the-access-token")
      expect(tunnels.at(-1)).toBe(`127.0.0.1:${httpsPort}`)
      expect(httpsSeen.at(-1)?.body).toContain("grant_type=client_credentials")
    }))

  it.live("bypasses the proxy for NO_PROXY hosts", () =>
    Effect.gen(function*() {
      const before = tunnels.length
      yield* tokenRequest(`http://127.0.0.1:${httpPort}/token`, {}, {
        HTTP_PROXY: `http://127.0.0.1:${proxyPort}`,
        NO_PROXY: "localhost,127.0.0.1"
      })
      expect(tunnels.length).toBe(before)
      yield* tokenRequest(`http://127.0.0.1:${httpPort}/token`, {}, { http_proxy: `http://127.0.0.1:${proxyPort}` })
      expect(tunnels.length).toBe(before + 1)
    }))

  it.live("refuses a server whose certificate it cannot verify, and accepts it with the CA file", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.flip(tokenRequest(`https://127.0.0.1:${httpsPort}/token`, {}))
      expect(refused._tag).toBe("AuthenticationError")
      expect(refused._tag === "AuthenticationError" && refused.reason).toBe("Transport")
      expect(refused.message).toContain("UNABLE_TO_VERIFY_LEAF_SIGNATURE")
      expect(refused.message).not.toContain("s3cret")
      const before = httpsSeen.length
      const accepted = yield* tokenRequest(`https://127.0.0.1:${httpsPort}/token`, { caCertFilePath: file("ca.pem") })
      expect(Redacted.value(accepted.accessToken)).toBe("the-access-token")
      expect(httpsSeen.length).toBe(before + 1)
    }))

  it.live("accepts any certificate with insecureSkipVerify, and says so loudly", () => {
    const logs = captureWarnings()
    return Effect.gen(function*() {
      const credentials = yield* tokenRequest(`https://127.0.0.1:${httpsPort}/token`, { insecureSkipVerify: true })
      expect(Redacted.value(credentials.accessToken)).toBe("the-access-token")
      expect(logs.warnings).toHaveLength(1)
      expect(logs.warnings[0]).toContain("TLS CERTIFICATE VERIFICATION IS DISABLED")
    }).pipe(Effect.provide(logs.layer))
  })

  it.live("times out a request whose response does not come", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* Effect.flip(tokenRequest(`http://127.0.0.1:${httpPort}/slow`, { timeout: "300 millis" }))
      expect(error._tag === "AuthenticationError" && error.reason).toBe("Transport")
      expect(Date.now() - started).toBeLessThan(5_000)
    }))

  it.live("an unreadable CA file or a bad proxy URL is a Config error naming it", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(tokenRequest(`https://127.0.0.1:${httpsPort}/token`, {
        caCertFilePath: file("missing.pem")
      }))
      expect(missing).toMatchObject({ _tag: "AuthenticationError", reason: "Config" })
      expect(missing.message).toContain(file("missing.pem"))
      const notPem = yield* Effect.flip(tokenRequest(`https://127.0.0.1:${httpsPort}/token`, {
        caCertFilePath: file("ext.cnf")
      }))
      expect(notPem.message).toBe(`caCertFilePath ${file("ext.cnf")} holds no PEM certificate`)
      const badProxy = yield* Effect.flip(tokenRequest(`http://127.0.0.1:${httpPort}/token`, {
        httpProxyUrl: "socks5://127.0.0.1:1080"
      }))
      expect(badProxy.message).toBe("the proxy URL must be http:// or https://, not socks5://")
    }))
})
