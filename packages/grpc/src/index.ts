/**
 * `@flyte-auth/grpc`: authenticated grpc-js calls to Flyte (interceptor, call credentials, proxy authorization)
 * and the `ClientConfigStore` backed by Flyte admin's `AuthMetadataService`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as FlyteProtos from "./FlyteProtos.js"

/**
 * @since 0.1.0
 */
export * as GrpcAuth from "./GrpcAuth.js"

/**
 * @since 0.1.0
 */
export * as RemoteClientConfigStore from "./RemoteClientConfigStore.js"

/**
 * @since 0.1.0
 */
export { authInterceptor, proxyAuthorizationInterceptor } from "./GrpcAuth.js"
