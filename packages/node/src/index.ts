/**
 * @since 0.1.0
 */
export * as NodeKeyring from "./NodeKeyring.js"
/**
 * @since 0.1.0
 */
export * as NodeBrowser from "./NodeBrowser.js"
/**
 * @since 0.1.0
 */
export * as NodeCommandRunner from "./NodeCommandRunner.js"
/**
 * @since 0.1.0
 */
export * as NodeCredentialLock from "./NodeCredentialLock.js"
/**
 * @since 0.1.0
 */
export * as NodeLoopbackServer from "./NodeLoopbackServer.js"
/**
 * @since 0.2.0
 */
export * as NodeCallbackPaste from "./NodeCallbackPaste.js"
/**
 * @since 0.1.0
 */
export * as NodeTransport from "./NodeTransport.js"
/**
 * @since 0.1.0
 */
export * as FlyteConfig from "./FlyteConfig.js"
/**
 * @since 0.1.0
 */
export * as AuthLayer from "./AuthLayer.js"
/**
 * @since 0.1.0
 */
export * as AuthClient from "./AuthClient.js"
/**
 * The Promise facade (see `AuthClient`).
 *
 * @since 0.1.0
 */
export { createAuthClient } from "./AuthClient.js"
