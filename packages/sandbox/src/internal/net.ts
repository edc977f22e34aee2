/**
 * Listening and closing helpers for the sandbox's HTTP servers, and loopback host handling.
 *
 * @internal
 */
import type * as http from "node:http"
import type * as net from "node:net"

const loopbackHosts = new Set(["127.0.0.1", "localhost", "::1"])

/** Throws unless `host` is a loopback address: the sandbox never listens on a routable interface. */
export const assertLoopback = (host: string): void => {
  if (!loopbackHosts.has(host) && !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    throw new Error(`flyte-auth sandbox: host must be a loopback address (127.0.0.1, localhost or ::1), got "${host}"`)
  }
}

/** `host` as it appears in a URL authority (`[::1]` for IPv6). */
export const urlHost = (host: string): string => host.includes(":") ? `[${host}]` : host

/** Listens on `host:port` (0 = ephemeral) and resolves with the bound port. */
export const listen = (server: net.Server, host: string, port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error)
    server.once("error", onError)
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError)
      resolve((server.address() as net.AddressInfo).port)
    })
  })

/** Stops listening and destroys every open (including keep-alive) connection, so the port is free afterwards. */
export const close = (server: http.Server): Promise<void> =>
  new Promise((resolve) => {
    if (!server.listening) {
      server.closeAllConnections()
      resolve()
      return
    }
    server.close(() => resolve())
    server.closeAllConnections()
  })

/** Reads a whole request body (bounded) as text. */
export const readBody = async (req: http.IncomingMessage, limit = 64 * 1024): Promise<string> => {
  const chunks: Array<Buffer> = []
  let size = 0
  for await (const chunk of req) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk as Buffer
    size += buffer.length
    if (size > limit) throw new Error("request body too large")
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString("utf8")
}

/**
 * An identity-aware proxy's verdict on a `proxy-authorization` value: why it refuses it, or `undefined` to let it
 * through. Only `Bearer <expected>` passes.
 */
export const proxyRefusal = (expected: string, value: string | undefined): string | undefined =>
  value === undefined || value === ""
    ? "no proxy-authorization"
    : /^bearer /i.test(value) && value.slice(7) === expected
    ? undefined
    : "proxy-authorization is not \"Bearer <the proxy token>\""

/** The headers of a proxy's 407 answer (RFC 9110 §11.7.1). */
export const proxyAuthenticate = { "proxy-authenticate": `Bearer realm="flyte-sandbox-proxy"` } as const
