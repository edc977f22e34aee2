/**
 * `@flyte-auth/connect`: authenticated ConnectRPC calls (Flyte 2): the interceptors for `@connectrpc/connect` v2
 * (Connect, gRPC and gRPC-web protocols, Node and browsers).
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 */
export * as ConnectAuth from "./ConnectAuth.js"

/**
 * @since 0.2.0
 */
export * as ConnectClientConfigStore from "./ConnectClientConfigStore.js"

/**
 * @since 0.2.0
 */
export * as ApiKey from "./ApiKey.js"
