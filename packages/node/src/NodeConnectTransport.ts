/**
 * ConnectRPC transports to a Flyte 2 endpoint on Node (`@connectrpc/connect-node`), with the TLS settings of the
 * Flyte config: plaintext (`insecure`), extra CA certificates, and the (loud) verification bypass.
 *
 * An endpoint written as `host:port` (or `dns:///host:port`, as Flyte's config has it) is a gRPC endpoint: it is
 * reached with the gRPC protocol over HTTP/2 (which connect-go serves too, and which a Flyte 1 admin answers with a
 * plain UNIMPLEMENTED); an `http(s)://` URL with the Connect protocol over HTTP/1.1, which every proxy and ingress
 * passes.
 *
 * @example
 * ```ts
 * import { createClient } from "@connectrpc/connect"
 * import { ConnectAuth } from "@flyte-auth/connect"
 * import { NodeConnectTransport } from "@flyte-auth/node"
 * import { Effect } from "effect"
 *
 * const transport = Effect.gen(function*() {
 *   return yield* NodeConnectTransport.make({
 *     endpoint: "flyte.example.com:443",
 *     interceptors: [yield* ConnectAuth.interceptor]
 *   })
 * })
 * ```
 *
 * @since 0.2.0
 */
import type { Interceptor, Transport } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import { normalizeEndpoint } from "@flyte-auth/core/Credentials"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs/promises"
import * as Tls from "node:tls"
import { errorMessage } from "./internal/optionalModule.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** `host:port`, `dns:///host:port` or an `http(s)://` base URL. */
  readonly endpoint: string
  /** Plaintext (h2c or HTTP/1.1) instead of TLS, for a `host:port` endpoint. */
  readonly insecure?: boolean | undefined
  /** A PEM file of CA certificates trusted in addition to Node's default roots. */
  readonly caCertFilePath?: string | undefined
  /** Turns TLS certificate verification off (logged as a warning). */
  readonly insecureSkipVerify?: boolean | undefined
  /** E.g. `ConnectAuth.interceptor`, `ConnectAuth.proxyInterceptor(...)`. */
  readonly interceptors?: ReadonlyArray<Interceptor> | undefined
}

/**
 * The base URL and protocol of an endpoint (see the module's description).
 *
 * @since 0.2.0
 * @category utils
 */
export const target = (
  endpoint: string,
  insecure = false
): { readonly baseUrl: string; readonly protocol: "connect" | "grpc" } => {
  const trimmed = normalizeEndpoint(endpoint)
  return /^https?:\/\//i.test(trimmed)
    ? { baseUrl: trimmed.replace(/\/+$/, ""), protocol: "connect" }
    : { baseUrl: `${insecure ? "http" : "https"}://${trimmed}`, protocol: "grpc" }
}

/**
 * A ConnectRPC transport to `options.endpoint` (gRPC or Connect protocol, see the module's description).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Transport, AuthenticationError> =>
  Effect.gen(function*() {
    const { baseUrl, protocol } = target(options.endpoint, options.insecure)
    const ca = options.caCertFilePath === undefined ? undefined : yield* Effect.tryPromise({
      try: () => Fs.readFile(options.caCertFilePath!, "utf8"),
      catch: (cause) =>
        new AuthenticationError({
          reason: "Config",
          description: `cannot read caCertFilePath ${options.caCertFilePath}: ${errorMessage(cause)}`,
          cause
        })
    })
    if (options.insecureSkipVerify === true) {
      yield* Effect.logWarning(`TLS certificate verification is off for ${baseUrl} (insecureSkipVerify)`)
    }
    const tls = {
      ...(ca === undefined ? {} : { ca: [...Tls.rootCertificates, ca] }),
      ...(options.insecureSkipVerify === true ? { rejectUnauthorized: false } : {})
    }
    const interceptors = [...(options.interceptors ?? [])]
    return protocol === "grpc"
      ? createGrpcTransport({ baseUrl, interceptors, nodeOptions: tls })
      : createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors, nodeOptions: tls })
  })
