/**
 * The Flyte-2-like admin: flyteidl2's `AuthMetadataService`, `IdentityService` and `StateService/Watch` served by
 * `@connectrpc/connect-node` on one port, with the Connect, gRPC and gRPC-web protocols over HTTP/1.1 and h2c
 * (HTTP/2 without TLS), as a connect-go server answers Flyte 2's SDK.
 *
 * `AuthMetadataService` is anonymous; `UserInfo` and `Watch` need `<headerKey>: Bearer <token>` (or
 * `authorization`) with an access token of the sandbox IdP that the shared `Verifier` accepts, else
 * `Code.Unauthenticated`. With a proxy token every request, whatever its protocol, first meets the proxy: HTTP 407
 * with `proxy-authenticate` and a Connect error body (`unauthenticated`, "proxy authentication required (407): …"),
 * which a Connect unary client reads as such and the other protocols see as HTTP 407.
 *
 * @internal
 */
import { create, fromJson } from "@bufbuild/protobuf"
import type { HandlerContext } from "@connectrpc/connect"
import { Code, ConnectError } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import * as http from "node:http"
import * as http2 from "node:http2"
import * as net from "node:net"
import * as stream from "node:stream"
import { setTimeout as sleep } from "node:timers/promises"
import {
  AuthMetadataService,
  GetOAuth2MetadataResponseSchema,
  GetPublicClientConfigResponseSchema
} from "../gen/flyteidl2/auth/auth_service_pb.js"
import { IdentityService, UserInfoResponseSchema } from "../gen/flyteidl2/auth/identity_pb.js"
import type { ActionIdentifier } from "../gen/flyteidl2/common/identifier_pb.js"
import { ActionIdentifierSchema } from "../gen/flyteidl2/common/identifier_pb.js"
import { ActionPhase } from "../gen/flyteidl2/common/phase_pb.js"
import type { WatchRequest, WatchResponse } from "../gen/flyteidl2/workflow/state_service_pb.js"
import { StateService, WatchResponseSchema } from "../gen/flyteidl2/workflow/state_service_pb.js"
import { oauth2MetadataOf } from "./admin.js"
import type { Identity, Verifier } from "./bearer.js"
import { userInfo } from "./bearer.js"
import type { AdminCounters } from "./counters.js"
import * as Net from "./net.js"
import { listen, urlHost } from "./net.js"

/** @internal */
export interface ConnectAdminConfig {
  readonly host: string
  readonly port: number
  /** The IdP's RFC 8414 metadata, as the Flyte 1 admin fetched it. */
  readonly authorizationServerMetadata: Readonly<Record<string, unknown>>
  readonly audience: string
  readonly headerKey: string
  readonly publicClientId: string
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<string>
  readonly verifier: Verifier
  readonly counters: AdminCounters
  readonly proxyToken: string | undefined
  /** Pause between the live updates of a watch (after the sentinel). */
  readonly watchUpdateIntervalMs: number
}

/** @internal */
export interface ConnectAdmin {
  /** `http://<host>:<port>`: Connect, gRPC and gRPC-web, HTTP/1.1 and h2c. */
  readonly url: string
  readonly close: () => Promise<void>
}

/** The run a watch without a parent action reports on. */
const defaultParent = {
  run: { org: "sandbox", project: "flytesnacks", domain: "development", name: "sandbox-run" },
  name: "a0"
} as const

/**
 * What `StateService/Watch` sends for `parent`: the current state of its three child actions, the sentinel that
 * ends the current state, then three live updates until every child succeeded; then the stream ends (a real watch
 * stays open for further updates).
 */
const watchScript = (parent: ActionIdentifier | undefined) => {
  const run = parent?.run ?? defaultParent.run
  const parentName = parent?.name ?? defaultParent.name
  const update = (child: number, phase: ActionPhase): WatchResponse => {
    const name = `${parentName}-${child}`
    return create(WatchResponseSchema, {
      message: {
        case: "actionUpdate",
        value: {
          actionId: create(ActionIdentifierSchema, { run, name }),
          phase,
          outputUri: phase === ActionPhase.SUCCEEDED ? `s3://flyte-sandbox/${run.name}/${name}/outputs` : ""
        }
      }
    })
  }
  return {
    current: [update(0, ActionPhase.SUCCEEDED), update(1, ActionPhase.RUNNING), update(2, ActionPhase.QUEUED)],
    sentinel: create(WatchResponseSchema, { message: { case: "controlMessage", value: { sentinel: true } } }),
    live: [update(1, ActionPhase.SUCCEEDED), update(2, ActionPhase.RUNNING), update(2, ActionPhase.SUCCEEDED)]
  }
}

/** @internal */
export const startConnectAdmin = async (config: ConnectAdminConfig): Promise<ConnectAdmin> => {
  const { counters, headerKey } = config
  let url = ""

  const identityOf = async (context: HandlerContext): Promise<Identity> => {
    const authentication = await config.verifier.authenticate([
      context.requestHeader.get(headerKey) ?? undefined,
      context.requestHeader.get("authorization") ?? undefined
    ])
    if (authentication._tag === "Authenticated") return authentication.identity
    counters.authFailures++
    counters.lastAuthFailure = authentication.description
    throw new ConnectError(authentication.description, Code.Unauthenticated, {
      "www-authenticate": authentication.error === "missing_token"
        ? `Bearer realm="flyte-sandbox"`
        : `Bearer realm="flyte-sandbox", error="invalid_token"`
    })
  }

  const oauth2Metadata = fromJson(GetOAuth2MetadataResponseSchema, oauth2MetadataOf(config.authorizationServerMetadata))
  const publicClientConfig = () =>
    create(GetPublicClientConfigResponseSchema, {
      clientId: config.publicClientId,
      redirectUri: config.redirectUri,
      scopes: [...config.scopes],
      authorizationMetadataKey: headerKey,
      // Flyte 2 serves its HTTP routes and the dataplane on the same endpoint as its API.
      serviceHttpEndpoint: url,
      audience: config.audience,
      dataplaneDomain: new URL(url).host
    })

  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(AuthMetadataService, {
        getOAuth2Metadata: () => {
          counters.oauth2MetadataCalls++
          return oauth2Metadata
        },
        getPublicClientConfig: () => {
          counters.publicClientConfigCalls++
          return publicClientConfig()
        }
      })
      router.service(IdentityService, {
        userInfo: async (_request, context) => {
          counters.userInfoCalls++
          const identity = await identityOf(context)
          return fromJson(UserInfoResponseSchema, {
            ...userInfo(identity),
            additional_claims: {
              ...(identity.clientId === undefined ? {} : { client_id: identity.clientId }),
              ...(identity.scope === undefined ? {} : { scope: identity.scope })
            }
          })
        }
      })
      router.service(StateService, {
        watch: async function*(request: WatchRequest, context: HandlerContext) {
          counters.watchCalls++
          await identityOf(context)
          const script = watchScript(request.filter.case === "parentActionId" ? request.filter.value : undefined)
          yield* script.current
          yield script.sentinel
          for (const update of script.live) {
            await sleep(config.watchUpdateIntervalMs, undefined, { signal: context.signal })
            yield update
          }
        }
      })
    }
  })

  const proxyRefusal = (value: string | Array<string> | undefined): string | undefined => {
    if (config.proxyToken === undefined) return undefined
    const refusal = Net.proxyRefusal(config.proxyToken, Array.isArray(value) ? value[0] : value)
    if (refusal !== undefined) counters.proxyRejections++
    return refusal
  }

  const serve = (
    request: http.IncomingMessage | http2.Http2ServerRequest,
    response: http.ServerResponse | http2.Http2ServerResponse
  ) => {
    const refusal = proxyRefusal(request.headers["proxy-authorization"])
    if (refusal === undefined) return handler(request, response)
    const body = JSON.stringify({ code: "unauthenticated", message: `proxy authentication required (407): ${refusal}` })
    response.writeHead(407, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      ...Net.proxyAuthenticate
    })
    response.end(body)
  }
  // One port for HTTP/1.1 and h2c (Node 20's cleartext HTTP/2 server has no `allowHTTP1`): the first bytes of a
  // connection tell them apart, as an HTTP/2 connection starts with the preface "PRI * HTTP/2.0".
  const http1 = http.createServer(serve)
  const h2c = http2.createServer(serve)
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => socket.destroy())
    socket.once("data", (chunk: Buffer) => {
      socket.pause()
      if (chunk.subarray(0, 3).toString("latin1") !== "PRI") {
        socket.unshift(chunk)
        http1.emit("connection", socket)
        socket.resume()
        return
      }
      // An HTTP/2 session reads the socket's handle, past anything unshifted: hand it a stream that replays.
      const readable = new stream.PassThrough()
      readable.write(chunk)
      socket.pipe(readable)
      const duplex = stream.Duplex.from({ readable, writable: socket })
      socket.on("close", () => duplex.destroy())
      h2c.emit("connection", duplex)
    })
  })

  const port = await listen(server, config.host, config.port)
  url = `http://${urlHost(config.host)}:${port}`

  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve()
        // Clients keep HTTP/1.1 keep-alive sockets and HTTP/2 sessions open: closing destroys them.
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      })
  }
}
