/**
 * TLS to an IP-literal endpoint: the certificate is still verified (against its IP SAN), and no SNI is sent, so
 * Node's DEP0123 warning ("Setting the TLS ServerName to an IP address is not permitted by RFC 6066") never
 * appears. This file runs in its own process (vitest's forks pool), so any warning seen here is from these calls.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { GrpcAuth } from "@flyte-auth/grpc"
import * as IpLiteralTls from "@flyte-auth/grpc/internal/ipLiteralTls"
import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { startEchoServer } from "./utils/echoServer.js"
import { echoClient, unary } from "./utils/grpcTest.js"
import { makeCertificate } from "./utils/tls.js"

const certificate = makeCertificate()
const otherCertificate = makeCertificate()
const warnings: Array<Error> = []
const onWarning = (warning: Error) => warnings.push(warning)
process.on("warning", onWarning)
afterAll(() => {
  process.off("warning", onWarning)
  certificate.remove()
  otherCertificate.remove()
})

const tlsServer = startEchoServer({
  credentials: grpc.ServerCredentials.createSsl(null, [{
    private_key: certificate.key,
    cert_chain: certificate.cert
  }])
})

describe("IpLiteralTls", () => {
  it("recognises IP literals in the endpoint forms Flyte accepts", () => {
    expect(IpLiteralTls.isIpLiteral("127.0.0.1:8089")).toBe(true)
    expect(IpLiteralTls.isIpLiteral("dns:///10.0.0.5:443")).toBe(true)
    expect(IpLiteralTls.isIpLiteral("[::1]:8089")).toBe(true)
    expect(IpLiteralTls.isIpLiteral("::1")).toBe(true)
    expect(IpLiteralTls.isIpLiteral("flyte.example.com:443")).toBe(false)
    expect(IpLiteralTls.isIpLiteral("dns:///localhost:8089")).toBe(false)
  })

  it.scopedLive("a call over TLS to 127.0.0.1 verifies the certificate and sends no SNI (no DEP0123)", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer
      expect(IpLiteralTls.isIpLiteral(server.address)).toBe(true)
      const credentials = yield* GrpcAuth.channelCredentials({
        endpoint: server.address,
        caCertFilePath: certificate.certPath
      })
      const client = yield* echoClient(server.address, {}, credentials)
      expect((yield* unary(client, "Unary", { text: "ip" })).text).toBe("ip")

      // Another CA: refused, the certificate is really checked.
      const untrusted = yield* GrpcAuth.channelCredentials({
        endpoint: server.address,
        caCertFilePath: otherCertificate.certPath
      })
      const refused = yield* Effect.flip(
        unary(yield* echoClient(server.address, {}, untrusted), "Unary", { text: "x" })
      )
      expect(refused.code).toBe(grpc.status.UNAVAILABLE)

      // Verification off (insecureSkipVerify): accepted with the wrong CA.
      const unverified = yield* GrpcAuth.channelCredentials({
        endpoint: server.address,
        caCertFilePath: otherCertificate.certPath,
        insecureSkipVerify: true
      })
      expect((yield* unary(yield* echoClient(server.address, {}, unverified), "Unary", { text: "y" })).text).toBe("y")

      // The warning is emitted on the next tick of a TLS connect that set an IP servername.
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      expect(warnings.map((w) => `${(w as { code?: string }).code}: ${w.message}`)).toEqual([])
    }))
})
