/**
 * Test helpers: a hand-rolled OAuth client (PKCE, token requests, device flow) and gRPC calls, written here on
 * purpose rather than imported from the flyte-auth client packages.
 */
import type { Sandbox } from "@flyte-auth/sandbox"
import * as grpc from "@grpc/grpc-js"
import * as crypto from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { loadFlyteServices } from "../src/internal/protos.js"

export interface TokenResponse {
  readonly status: number
  readonly json: Record<string, any>
}

export const form = (params: Record<string, string | undefined>): string => {
  const body = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) if (value !== undefined) body.set(key, value)
  return body.toString()
}

export const tokenRequest = async (
  sandbox: Sandbox.Service,
  params: Record<string, string | undefined>,
  headers: Record<string, string> = {}
): Promise<TokenResponse> => {
  const response = await fetch(sandbox.endpoints.token, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json", ...headers },
    body: form(params)
  })
  const text = await response.text()
  let json: Record<string, any>
  try {
    json = JSON.parse(text)
  } catch {
    json = { raw: text }
  }
  return { status: response.status, json }
}

/** RFC 6749 §2.3.1: form-urlencode id and secret, then base64. */
export const basicAuth = (id: string, secret: string): string => {
  const encode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString("base64")}`
}

export const clientCredentials = (sandbox: Sandbox.Service, scope = "all") =>
  tokenRequest(sandbox, { grant_type: "client_credentials", scope }, {
    authorization: basicAuth(sandbox.clients.confidential.clientId, sandbox.clients.confidential.clientSecret)
  })

export const pkcePair = () => {
  const verifier = crypto.randomBytes(32).toString("base64url")
  const challenge = crypto.createHash("sha256").update(verifier).digest("base64url")
  return { verifier, challenge }
}

/** A client's loopback redirect server: records the authorization response and shows a page. */
export interface Loopback {
  readonly redirectUri: string
  readonly received: Promise<URL>
  readonly close: () => Promise<void>
}

export const startLoopback = async (host = "127.0.0.1", path = "/callback"): Promise<Loopback> => {
  let resolve!: (url: URL) => void
  const received = new Promise<URL>((r) => (resolve = r))
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://${host}`)
    if (url.pathname !== path) {
      res.writeHead(404).end()
      return
    }
    resolve(url)
    const ok = url.searchParams.has("code")
    res.writeHead(ok ? 200 : 400, { "content-type": "text/html" })
    res.end(ok ? "<h1>Signed in</h1>" : `<h1>Failed: ${url.searchParams.get("error")}</h1>`)
  })
  await new Promise<void>((r) => server.listen(0, host === "localhost" ? "127.0.0.1" : host, () => r()))
  const port = (server.address() as AddressInfo).port
  return {
    redirectUri: `http://${host}:${port}${path}`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
        server.closeAllConnections()
      })
  }
}

export const authorizeUrl = (
  sandbox: Sandbox.Service,
  params: { redirectUri: string; challenge: string; state?: string; scope?: string; prompt?: string | null }
): string => {
  const url = new URL(sandbox.endpoints.authorization)
  const scope = params.scope ?? sandbox.scopes.join(" ")
  // A client asking for offline access asks for consent (OpenID Connect Core §11), as flyte-auth does; `null` sends
  // no prompt at all.
  const prompt = params.prompt === undefined
    ? (scope.split(" ").includes("offline_access") ? "consent" : undefined)
    : params.prompt ?? undefined
  url.search = form({
    response_type: "code",
    client_id: sandbox.clients.public.clientId,
    redirect_uri: params.redirectUri,
    scope,
    state: params.state ?? crypto.randomBytes(16).toString("base64url"),
    code_challenge: params.challenge,
    code_challenge_method: "S256",
    ...(prompt === undefined ? {} : { prompt })
  })
  return url.href
}

export const exchangeCode = (sandbox: Sandbox.Service, code: string, redirectUri: string, verifier: string) =>
  tokenRequest(sandbox, {
    grant_type: "authorization_code",
    code,
    redirect_uri: redirectUri,
    client_id: sandbox.clients.public.clientId,
    code_verifier: verifier
  })

export const refresh = (sandbox: Sandbox.Service, refreshToken: string) =>
  tokenRequest(sandbox, {
    grant_type: "refresh_token",
    refresh_token: refreshToken,
    client_id: sandbox.clients.public.clientId
  })

export const startDevice = async (sandbox: Sandbox.Service, scope = sandbox.scopes.join(" ")) => {
  const response = await fetch(sandbox.endpoints.deviceAuthorization!, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form({ client_id: sandbox.clients.public.clientId, scope })
  })
  return { status: response.status, json: await response.json() as Record<string, any> }
}

export const pollDevice = (sandbox: Sandbox.Service, deviceCode: string) =>
  tokenRequest(sandbox, {
    grant_type: "urn:ietf:params:oauth:grant-type:device_code",
    device_code: deviceCode,
    client_id: sandbox.clients.public.clientId
  })

export const decodeJwt = (token: string): Record<string, any> =>
  JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"))

// ---------------------------------------------------------------------------------------------------------------------
// gRPC
// ---------------------------------------------------------------------------------------------------------------------

export interface GrpcResult<A> {
  readonly value?: A
  readonly error?: grpc.ServiceError
}

export const grpcCall = <A = Record<string, any>>(
  address: string,
  service: "AuthMetadataService" | "IdentityService",
  method: string,
  headers: Record<string, string> = {}
): Promise<GrpcResult<A>> => {
  const Client = grpc.makeGenericClientConstructor(loadFlyteServices()[service], service)
  const client = new Client(address, grpc.credentials.createInsecure())
  const metadata = new grpc.Metadata()
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value)
  return new Promise<GrpcResult<A>>((resolve) => {
    type Unary = (
      request: object,
      metadata: grpc.Metadata,
      callback: (error: grpc.ServiceError | null, value: A) => void
    ) => void
    const call = (client as unknown as Record<string, Unary>)[method]!.bind(client)
    call({}, metadata, (error, value) => {
      client.close()
      resolve(error ? { error } : { value })
    })
  })
}

export const userInfo = (sandbox: Sandbox.Service, accessToken?: string, key = sandbox.headerKey) =>
  grpcCall(sandbox.adminGrpc, "IdentityService", "UserInfo", accessToken ? { [key]: `Bearer ${accessToken}` } : {})

export const whoami = async (sandbox: Sandbox.Service, accessToken?: string, key = "authorization") => {
  const response = await fetch(`${sandbox.adminHttp}/api/v1/whoami`, {
    headers: accessToken ? { [key]: `Bearer ${accessToken}` } : {}
  })
  return {
    status: response.status,
    wwwAuthenticate: response.headers.get("www-authenticate"),
    json: await response.json() as Record<string, any>
  }
}
