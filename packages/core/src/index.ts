/**
 * @since 0.1.0
 */
export * as AuthError from "./AuthError.js"
/**
 * @since 0.1.0
 */
export * as Authenticator from "./Authenticator.js"
/**
 * @since 0.2.0
 */
export * as AuthHeader from "./AuthHeader.js"
/**
 * @since 0.1.0
 */
export * as AuthHttpClient from "./AuthHttpClient.js"
/**
 * @since 0.1.0
 */
export * as AuthMode from "./AuthMode.js"
/**
 * @since 0.1.0
 */
export * as Browser from "./Browser.js"
/**
 * @since 0.2.0
 */
export * as CallbackPaste from "./CallbackPaste.js"
/**
 * @since 0.1.0
 */
export * as ClientConfig from "./ClientConfig.js"
/**
 * @since 0.1.0
 */
export * as ClientCredentials from "./ClientCredentials.js"
/**
 * @since 0.1.0
 */
export * as CommandRunner from "./CommandRunner.js"
/**
 * @since 0.1.0
 */
export * as CredentialLock from "./CredentialLock.js"
/**
 * @since 0.1.0
 */
export * as Credentials from "./Credentials.js"
/**
 * @since 0.1.0
 */
export * as DeviceCode from "./DeviceCode.js"
/**
 * @since 0.1.0
 */
export * as DevicePrompt from "./DevicePrompt.js"
/**
 * @since 0.1.0
 */
export * as ExternalCommand from "./ExternalCommand.js"
/**
 * @since 0.2.0
 */
export * as Flows from "./Flows.js"
/**
 * @since 0.2.0
 */
export * as IdToken from "./IdToken.js"

/**
 * @since 0.1.0
 */
export * as Keyring from "./Keyring.js"
/**
 * @since 0.1.0
 */
export * as LoopbackServer from "./LoopbackServer.js"
/**
 * @since 0.1.0
 */
export * as Pkce from "./Pkce.js"
/**
 * @since 0.1.0
 */
export * as Policies from "./Policies.js"
/**
 * @since 0.1.0
 */
export * as ProxyAuthorization from "./ProxyAuthorization.js"
/**
 * @since 0.2.0
 */
export * as Revocation from "./Revocation.js"
/**
 * @since 0.3.0
 */
export * as StoredCredentials from "./StoredCredentials.js"
/**
 * @since 0.1.0
 */
export * as TokenClient from "./TokenClient.js"
/**
 * @since 0.2.0
 */
export * as TokenSource from "./TokenSource.js"
