/**
 * An HTTP proxy (CONNECT tunnels and absolute-form requests) that records every byte in both directions, for
 * `--http-proxy-url`: it reads the secrets of a CLI run off the wire (form fields, Basic credentials, tokens in
 * JSON answers), whatever the CLI does internally. `route` may send a tunnel elsewhere (e.g. through the fault
 * proxy in front of the IdP).
 */
import * as Http from "node:http"
import * as Net from "node:net"

export interface RecordingProxy {
  readonly url: string
  /** Everything the client sent and everything it received, as latin1 text. */
  readonly sent: () => string
  readonly received: () => string
  /** How many tunnels / requests were proxied. */
  readonly connections: () => number
  readonly close: () => Promise<void>
}

export const startRecordingProxy = async (
  route: (host: string, port: number) => { readonly host: string; readonly port: number } = (host, port) => ({
    host,
    port
  })
): Promise<RecordingProxy> => {
  let sent = ""
  let received = ""
  let connections = 0
  const sockets = new Set<Net.Socket>()
  const server = Http.createServer((request, response) => {
    // absolute-form: "POST http://127.0.0.1:1234/token HTTP/1.1"
    connections++
    const target = new URL(request.url ?? "/")
    const to = route(target.hostname, Number(target.port || 80))
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks)
      sent += `${request.method} ${request.url}\n${JSON.stringify(request.headers)}\n${body.toString("latin1")}\n`
      const upstream = Http.request({
        host: to.host,
        port: to.port,
        method: request.method,
        path: `${target.pathname}${target.search}`,
        headers: request.headers,
        agent: false
      }, (answer) => {
        const parts: Array<Buffer> = []
        answer.on("data", (chunk: Buffer) => parts.push(chunk))
        answer.on("end", () => {
          const payload = Buffer.concat(parts)
          received += `${JSON.stringify(answer.headers)}\n${payload.toString("latin1")}\n`
          const headers = { ...answer.headers }
          delete headers["transfer-encoding"]
          response.writeHead(answer.statusCode ?? 502, { ...headers, "content-length": payload.length })
          response.end(payload)
        })
      })
      upstream.on("error", () => response.destroy())
      upstream.end(body)
    })
  })
  server.on("connect", (request: Http.IncomingMessage, client: Net.Socket, head: Buffer) => {
    connections++
    const [host, port] = (request.url ?? "").split(":")
    const to = route(host, Number(port))
    const upstream = Net.connect(to.port, to.host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      if (head.length > 0) upstream.write(head)
      client.on("data", (chunk: Buffer) => {
        sent += chunk.toString("latin1")
      })
      upstream.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1")
      })
      client.pipe(upstream)
      upstream.pipe(client)
    })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => {
        client.destroy()
        upstream.destroy()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as Net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    sent: () => sent,
    received: () => received,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

/** The secrets in recorded traffic: form fields, Basic credentials, and the tokens and codes of JSON answers. */
export const secretsOnTheWire = (sent: string, received: string): Map<string, Set<string>> => {
  const found = new Map<string, Set<string>>()
  const add = (kind: string, value: string) => {
    if (value === "") return
    if (!found.has(kind)) found.set(kind, new Set())
    found.get(kind)!.add(value)
  }
  const utf8 = (latin1: string) => Buffer.from(latin1, "latin1").toString("utf8")
  for (
    const match of utf8(sent).matchAll(
      /(?:^|[&\s])(code|code_verifier|refresh_token|device_code|client_secret)=([^&\s]*)/g
    )
  ) {
    add(match[1], decodeURIComponent(match[2].replace(/\+/g, " ")))
  }
  for (const match of utf8(sent).matchAll(/authorization: Basic ([A-Za-z0-9+/=]+)/gi)) {
    add("basic_credentials", match[1])
    const decoded = Buffer.from(match[1], "base64").toString("utf8")
    add("client_secret", decodeURIComponent(decoded.slice(decoded.indexOf(":") + 1).replace(/\+/g, " ")))
  }
  for (const match of utf8(received).matchAll(/"(access_token|refresh_token|id_token|device_code)"\s*:\s*"([^"]+)"/g)) {
    add(match[1], match[2])
  }
  return found
}
