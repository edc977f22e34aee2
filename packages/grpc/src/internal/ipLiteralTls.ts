/**
 * TLS channel credentials for an endpoint whose host is an IP literal (`10.0.0.5:443`, `[::1]:8089`).
 *
 * grpc-js always sets the TLS `servername` (SNI) to the target host, and Node warns (DEP0123) when that is an IP
 * address, which RFC 6066 forbids in SNI. These credentials do what grpc-js's own TLS connector does (ALPN `h2`, the
 * certificate checked against the host, `authorized` required unless verification is off) without SNI for an IP
 * literal. Host names keep grpc-js's `createSsl`. They implement grpc-js's `ChannelCredentials` contract
 * (`_isSecure`, `_equals`, `_createSecureConnector`, declared in its typings), so they compose with call
 * credentials like any other.
 *
 * @internal
 */
import { normalizeEndpoint } from "@flyte-auth/core/Credentials"
import * as grpc from "@grpc/grpc-js"
import { isIP } from "node:net"
import * as Tls from "node:tls"

type SecureConnector = ReturnType<grpc.ChannelCredentials["_createSecureConnector"]>

/** The host of `host:port`, `[v6]:port` or a bare host (each also as `dns:///…`), without brackets. */
export const hostOf = (target: string): string => {
  const endpoint = normalizeEndpoint(target)
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(endpoint)
  if (bracketed !== null) return bracketed[1]
  const colons = endpoint.split(":").length - 1
  // A bare IPv6 address has several colons and no port.
  return colons === 1 ? endpoint.slice(0, endpoint.indexOf(":")) : endpoint
}

/** Whether the endpoint's host is an IP address (no SNI may be sent for it). */
export const isIpLiteral = (endpoint: string): boolean => isIP(hostOf(endpoint)) !== 0

class IpLiteralTlsCredentials extends grpc.ChannelCredentials {
  constructor(
    private readonly host: string,
    private readonly secureContext: Tls.SecureContext,
    private readonly verify: boolean
  ) {
    super()
  }

  _isSecure(): boolean {
    return true
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return this === other
  }

  _createSecureConnector(
    _target: unknown,
    _options: unknown,
    callCredentials?: grpc.CallCredentials
  ): SecureConnector {
    const { host, secureContext, verify } = this
    const calls = callCredentials ?? grpc.credentials.createEmpty()
    return {
      connect: (socket) =>
        new Promise((resolve, reject) => {
          const tlsSocket = Tls.connect({
            socket,
            host,
            secureContext,
            ALPNProtocols: ["h2"],
            rejectUnauthorized: verify,
            ...(verify ? {} : { checkServerIdentity: () => undefined })
          }, () => {
            if (verify && !tlsSocket.authorized) reject(tlsSocket.authorizationError)
            else resolve({ socket: tlsSocket, secure: true })
          })
          tlsSocket.on("error", reject)
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => {}
    }
  }
}

/** TLS credentials for an IP-literal endpoint: the CA certificates (else Node's roots), verification on or off. */
export const make = (
  endpoint: string,
  rootCerts: Buffer | null,
  verify: boolean
): grpc.ChannelCredentials =>
  new IpLiteralTlsCredentials(
    hostOf(endpoint),
    Tls.createSecureContext(rootCerts === null ? {} : { ca: rootCerts }),
    verify
  )
