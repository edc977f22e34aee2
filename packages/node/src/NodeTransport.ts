/**
 * The `HttpClient` that every OAuth and metadata call goes through, on undici: HTTP(S) proxy, custom CA,
 * optional (loud) TLS verification bypass, connect and response timeouts.
 *
 * @example
 * ```ts
 * import { NodeTransport } from "@flyte-auth/node"
 * // Provide it under the flows: token, device and metadata requests all use it.
 * const HttpLive = NodeTransport.layer({ caCertFilePath: "/etc/ssl/corp-ca.pem", httpProxyUrl: "http://proxy:3128" })
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import { AuthenticationError } from "@flyte-auth/core/AuthError"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs/promises"
import * as Tls from "node:tls"
import type { buildConnector, Dispatcher } from "undici"
import { errorMessage } from "./internal/optionalModule.js"

// undici (110-odd modules) and @effect/platform-node's client on it are loaded by the first dispatcher made or
// request sent, not by importing this module (which the `@flyte-auth/node` barrel does).
const loadUndici = Effect.promise(() => import("./internal/undici.js"))

/**
 * How to reach the identity provider and the Flyte admin. The names match `FlyteConfig.FlyteOptions`, so a
 * loaded Flyte configuration can be passed as it is.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * A proxy for every request (`http://[user:password@]host:port`), used for both http and https targets.
   * Without it, `HTTPS_PROXY` / `HTTP_PROXY` (or their lower-case forms) apply. `NO_PROXY` is honoured either way.
   */
  readonly httpProxyUrl?: string | undefined
  /** A PEM file of CA certificates trusted in addition to Node's default roots. */
  readonly caCertFilePath?: string | undefined
  /** Turns TLS certificate verification off (logged as a warning every time a client is made). */
  readonly insecureSkipVerify?: boolean | undefined
  /** Bounds connecting and each request until its response headers arrive. */
  readonly timeout?: Duration.DurationInput | undefined
}

const configError = (description: string, cause?: unknown) =>
  new AuthenticationError({ reason: "Config", description, cause })

const envOption = (name: string) =>
  Config.option(Config.nonEmptyString(name)).pipe(
    Config.map(Option.getOrUndefined),
    Config.orElse(() => Config.succeed(undefined))
  )

/**
 * The proxy environment, read through Effect's `Config` (the lower-case spelling wins, as in curl).
 *
 * @since 0.1.0
 * @category config
 */
export const proxyEnvironment: Config.Config<{
  readonly httpsProxy: string | undefined
  readonly httpProxy: string | undefined
  readonly noProxy: string | undefined
}> = Config.all({
  httpsProxy: Config.zipWith(envOption("https_proxy"), envOption("HTTPS_PROXY"), (a, b) => a ?? b),
  httpProxy: Config.zipWith(envOption("http_proxy"), envOption("HTTP_PROXY"), (a, b) => a ?? b),
  noProxy: Config.zipWith(envOption("no_proxy"), envOption("NO_PROXY"), (a, b) => a ?? b)
})

const readCa = (path: string) =>
  Effect.tryPromise({
    try: () => Fs.readFile(path, "utf8"),
    catch: (cause) => configError(`cannot read caCertFilePath ${path}: ${errorMessage(cause)}`, cause)
  }).pipe(
    Effect.filterOrFail(
      (pem) => pem.includes("-----BEGIN CERTIFICATE-----"),
      () => configError(`caCertFilePath ${path} holds no PEM certificate`)
    )
  )

/**
 * The undici dispatcher for `options`: a plain `Agent`, or an `EnvHttpProxyAgent` when a proxy is configured
 * (CONNECT tunnels for https targets, and for http ones too). It is destroyed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeDispatcher = (
  options: Options = {}
): Effect.Effect<Dispatcher, AuthenticationError, Scope.Scope> =>
  Effect.gen(function*() {
    const extraCa = options.caCertFilePath === undefined ? undefined : yield* readCa(options.caCertFilePath)
    const insecure = options.insecureSkipVerify === true
    if (insecure) {
      yield* Effect.logWarning(
        "flyte-auth: TLS CERTIFICATE VERIFICATION IS DISABLED (insecureSkipVerify): any server can impersonate " +
          "the identity provider and read your credentials. Use caCertFilePath instead."
      )
    }
    const timeout = options.timeout === undefined ? undefined : Duration.toMillis(Duration.decode(options.timeout))
    const tls: buildConnector.BuildOptions = {
      rejectUnauthorized: !insecure,
      ...(extraCa === undefined ? {} : { ca: [...Tls.rootCertificates, extraCa] }),
      ...(timeout === undefined ? {} : { timeout })
    }
    const env = yield* proxyEnvironment.pipe(Effect.orElseSucceed(() => ({
      httpsProxy: undefined,
      httpProxy: undefined,
      noProxy: undefined
    })))
    const httpProxy = options.httpProxyUrl ?? env.httpProxy
    const httpsProxy = options.httpProxyUrl ?? env.httpsProxy
    if (httpProxy !== undefined) yield* checkProxyUrl(httpProxy)
    if (httpsProxy !== undefined) yield* checkProxyUrl(httpsProxy)
    const { Agent, EnvHttpProxyAgent } = yield* loadUndici
    return yield* Effect.acquireRelease(
      Effect.sync((): Dispatcher =>
        httpProxy === undefined && httpsProxy === undefined
          ? new Agent({ connect: tls })
          : new EnvHttpProxyAgent({
            // Empty strings stop undici from reading process.env itself: what applies is what we read.
            httpProxy: httpProxy ?? "",
            httpsProxy: httpsProxy ?? "",
            noProxy: env.noProxy ?? "",
            connect: tls,
            requestTls: tls,
            proxyTls: tls
          })
      ),
      (dispatcher) => Effect.promise(() => dispatcher.destroy())
    )
  })

const checkProxyUrl = (url: string) =>
  Effect.try({
    try: () => new URL(url),
    catch: (cause) => configError(`the proxy URL is not a valid URL`, cause)
  }).pipe(
    Effect.filterOrFail(
      (parsed) => parsed.protocol === "http:" || parsed.protocol === "https:",
      (parsed) => configError(`the proxy URL must be http:// or https://, not ${parsed.protocol}//`)
    )
  )

/**
 * An `HttpClient` on the dispatcher of `makeDispatcher`. With a `timeout`, a request whose response does not
 * start in time fails with a `RequestError` (reason `Transport`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<HttpClient.HttpClient, AuthenticationError, Scope.Scope> =>
  Effect.map(makeDispatcher(options), (dispatcher) => fromDispatcher(dispatcher, options))

/**
 * An `HttpClient` on a dispatcher made by `makeDispatcher`, for callers that also send plain `fetch` requests
 * through the same dispatcher (`fetch(url, { dispatcher })`), so both share one proxy, CA and connection pool.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDispatcher = (
  dispatcher: Dispatcher,
  options: Pick<Options, "timeout"> = {}
): HttpClient.HttpClient => {
  let undiciClient: HttpClient.HttpClient | undefined
  const client = HttpClient.make((request) =>
    Effect.suspend(() =>
      undiciClient === undefined
        ? Effect.map(loadUndici, (undici) => (undiciClient = undici.makeUndici(dispatcher)))
        : Effect.succeed(undiciClient)
    ).pipe(Effect.flatMap((client) => client.execute(request)))
  )
  const timeout = options.timeout
  if (timeout === undefined) return client
  return HttpClient.transform(client, (response, request) =>
    Effect.timeoutFail(response, {
      duration: timeout,
      onTimeout: () =>
        new HttpClientError.RequestError({
          request,
          reason: "Transport",
          description: `no response within ${Duration.format(Duration.decode(timeout))}`
        })
    }))
}

/**
 * The `HttpClient` layer. Fails (reason `Config`) for an unreadable CA file or an invalid proxy URL.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<HttpClient.HttpClient, AuthenticationError> =>
  Layer.scoped(HttpClient.HttpClient, make(options))
