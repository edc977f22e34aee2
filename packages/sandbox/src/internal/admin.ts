/**
 * The Flyte-like admin: flyteidl's `AuthMetadataService` and `IdentityService` over gRPC, and their HTTP twins.
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import * as http from "node:http"
import type { Identity, Rejection, Verifier } from "./bearer.js"
import { userInfo } from "./bearer.js"
import type { AdminCounters } from "./counters.js"
import * as Net from "./net.js"
import { close, listen, urlHost } from "./net.js"
import { loadFlyteServices } from "./protos.js"

/** @internal */
export interface AdminConfig {
  readonly host: string
  readonly grpcPort: number
  readonly httpPort: number
  readonly issuer: string
  readonly audience: string
  readonly headerKey: string
  readonly publicClientId: string
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<string>
  /** Verifies bearer tokens (shared by both admins, with the revocation cutoff). */
  readonly verifier: Verifier
  readonly counters: AdminCounters
  /** The token an identity-aware proxy in front of the admin requires (`Sandbox.Options.proxyToken`). */
  readonly proxyToken: string | undefined
}

/** @internal */
export interface Admin {
  readonly grpcAddress: string
  readonly httpUrl: string
  readonly authorizationServerMetadata: Readonly<Record<string, unknown>>
  readonly close: () => Promise<void>
}

const str = (u: unknown): string | undefined => typeof u === "string" && u.length > 0 ? u : undefined

const strings = (u: unknown): Array<string> => Array.isArray(u) ? u.filter((s) => typeof s === "string") : []

/** `GetOAuth2MetadataResponse` (flyteidl and flyteidl2 alike) of the IdP's metadata, in proto field names. @internal */
export const oauth2MetadataOf = (metadata: Readonly<Record<string, unknown>>) => ({
  issuer: str(metadata.issuer) ?? "",
  authorization_endpoint: str(metadata.authorization_endpoint) ?? "",
  token_endpoint: str(metadata.token_endpoint) ?? "",
  response_types_supported: strings(metadata.response_types_supported),
  scopes_supported: strings(metadata.scopes_supported),
  token_endpoint_auth_methods_supported: strings(metadata.token_endpoint_auth_methods_supported),
  jwks_uri: str(metadata.jwks_uri) ?? "",
  code_challenge_methods_supported: strings(metadata.code_challenge_methods_supported),
  grant_types_supported: strings(metadata.grant_types_supported),
  device_authorization_endpoint: str(metadata.device_authorization_endpoint) ?? ""
})

/** GET a JSON document on a fresh connection (no pooled keep-alive socket that could outlive its server). */
const getJson = (url: string, headers: Record<string, string> = {}): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { accept: "application/json", ...headers } }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("error", reject)
      response.on("end", () => {
        if (response.statusCode !== 200) {
          return reject(new Error(`sandbox admin: ${url} returned HTTP ${response.statusCode}`))
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")))
        } catch (error) {
          reject(error)
        }
      })
    })
    request.on("error", reject)
  })

const bindGrpc = (server: grpc.Server, address: string): Promise<number> =>
  new Promise((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) reject(error)
      else resolve(port)
    })
  )

/** @internal */
export const startAdmin = async (config: AdminConfig): Promise<Admin> => {
  const { counters, headerKey } = config

  // The admin reaches the IdP from inside the proxy's perimeter, with the proxy token should the IdP require it.
  const metadata = await getJson(
    `${config.issuer}/.well-known/oauth-authorization-server`,
    config.proxyToken === undefined ? {} : { "proxy-authorization": `Bearer ${config.proxyToken}` }
  )

  /** Why the proxy refuses a `proxy-authorization` value (counted), or `undefined` to let it through. */
  const proxyRefusal = (value: string | undefined): string | undefined => {
    if (config.proxyToken === undefined) return undefined
    const refusal = Net.proxyRefusal(config.proxyToken, value)
    if (refusal !== undefined) counters.proxyRejections++
    return refusal
  }
  /** A gRPC handler behind the proxy: refused with UNAUTHENTICATED (as the proxy's 407) before it runs. */
  const behindProxy = <Req, Res>(
    handler: (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void
  ) =>
  (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
    const value = call.metadata.get("proxy-authorization")[0]
    const refusal = proxyRefusal(typeof value === "string" ? value : value?.toString("utf8"))
    if (refusal === undefined) return handler(call, callback)
    callback({ code: grpc.status.UNAUTHENTICATED, details: `proxy authentication required (407): ${refusal}` }, null)
  }

  const authenticate = config.verifier.authenticate

  const rejected = (authentication: Rejection) => {
    counters.authFailures++
    counters.lastAuthFailure = authentication.description
  }

  // -----------------------------------------------------------------------------------------------------------------
  // gRPC
  // -----------------------------------------------------------------------------------------------------------------

  const services = loadFlyteServices()
  const grpcServer = new grpc.Server()
  const oauth2Metadata = oauth2MetadataOf(metadata)

  grpcServer.addService(services.AuthMetadataService, {
    GetOAuth2Metadata: behindProxy((_call: grpc.ServerUnaryCall<unknown, unknown>, callback) => {
      counters.oauth2MetadataCalls++
      callback(null, oauth2Metadata)
    }),
    GetPublicClientConfig: behindProxy((_call: grpc.ServerUnaryCall<unknown, unknown>, callback) => {
      counters.publicClientConfigCalls++
      callback(null, publicClientConfig)
    })
  })
  grpcServer.addService(services.IdentityService, {
    UserInfo: behindProxy((call: grpc.ServerUnaryCall<unknown, unknown>, callback) => {
      counters.userInfoCalls++
      const values = [headerKey, "authorization"].map((key) => {
        const value = call.metadata.get(key)[0]
        return typeof value === "string" ? value : value?.toString("utf8")
      })
      authenticate(values).then((authentication) => {
        if (authentication._tag === "Authenticated") return callback(null, userInfo(authentication.identity))
        rejected(authentication)
        callback({ code: grpc.status.UNAUTHENTICATED, details: authentication.description }, null)
      }, (error: unknown) => callback({ code: grpc.status.INTERNAL, details: String(error) }, null))
    })
  })

  // -----------------------------------------------------------------------------------------------------------------
  // HTTP
  // -----------------------------------------------------------------------------------------------------------------

  const httpServer = http.createServer()
  httpServer.keepAliveTimeout = 5_000
  let httpUrl = ""
  let publicClientConfig: Record<string, unknown> = {}

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const json = JSON.stringify(body)
    res.writeHead(status, {
      "content-type": "application/json",
      "cache-control": "no-store",
      "content-length": Buffer.byteLength(json),
      ...headers
    })
    res.end(json)
  }

  const protectedRoute = async (req: http.IncomingMessage, res: http.ServerResponse, ok: (i: Identity) => unknown) => {
    const header = (name: string) => {
      const value = req.headers[name]
      return Array.isArray(value) ? value[0] : value
    }
    const authentication = await authenticate([header(headerKey), header("authorization")])
    if (authentication._tag === "Authenticated") return send(res, 200, ok(authentication.identity))
    rejected(authentication)
    const challenge = authentication.error === "missing_token"
      ? `Bearer realm="flyte-sandbox"`
      : `Bearer realm="flyte-sandbox", error="invalid_token", error_description="${
        authentication.description.replace(/["\\]/g, "'")
      }"`
    send(res, 401, { error: authentication.error, error_description: authentication.description }, {
      "www-authenticate": challenge
    })
  }

  httpServer.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", httpUrl)
    const proxyHeader = req.headers["proxy-authorization"]
    const refusal = proxyRefusal(Array.isArray(proxyHeader) ? proxyHeader[0] : proxyHeader)
    if (refusal !== undefined) {
      return send(
        res,
        407,
        { error: "proxy_authentication_required", error_description: refusal },
        Net.proxyAuthenticate
      )
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(res, 405, { error: "method_not_allowed" }, { allow: "GET, HEAD" })
    }
    switch (url.pathname) {
      case "/.well-known/oauth-authorization-server":
        counters.oauth2MetadataCalls++
        return send(res, 200, metadata)
      case "/config/v1/flyte_client":
        counters.publicClientConfigCalls++
        return send(res, 200, publicClientConfig)
      case "/api/v1/whoami":
        counters.whoamiCalls++
        return void protectedRoute(req, res, (identity) => ({
          subject: identity.subject,
          ...(identity.name === undefined ? {} : { name: identity.name }),
          ...(identity.email === undefined ? {} : { email: identity.email }),
          ...(identity.clientId === undefined ? {} : { client_id: identity.clientId }),
          ...(identity.scope === undefined ? {} : { scope: identity.scope })
        })).catch((error: unknown) => send(res, 500, { error: "server_error", error_description: String(error) }))
      case "/me":
        counters.userInfoCalls++
        return void protectedRoute(req, res, userInfo).catch((error: unknown) =>
          send(res, 500, { error: "server_error", error_description: String(error) })
        )
      case "/healthcheck":
        return send(res, 200, { status: "ok" })
      default:
        return send(res, 404, { error: "not_found" })
    }
  })

  const httpPort = await listen(httpServer, config.host, config.httpPort)
  httpUrl = `http://${urlHost(config.host)}:${httpPort}`
  publicClientConfig = {
    client_id: config.publicClientId,
    redirect_uri: config.redirectUri,
    scopes: [...config.scopes],
    authorization_metadata_key: headerKey,
    service_http_endpoint: httpUrl,
    audience: config.audience
  }

  let grpcAddress: string
  try {
    const grpcPort = await bindGrpc(grpcServer, `${urlHost(config.host)}:${config.grpcPort}`)
    grpcAddress = `${urlHost(config.host)}:${grpcPort}`
  } catch (error) {
    grpcServer.forceShutdown()
    await close(httpServer)
    throw error
  }

  return {
    grpcAddress,
    httpUrl,
    authorizationServerMetadata: metadata,
    close: async () => {
      grpcServer.forceShutdown()
      await close(httpServer)
    }
  }
}
