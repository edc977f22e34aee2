/**
 * `@flyte-auth/sandbox`: a local Flyte authentication environment (IdP + admin) and a scripted user agent.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Sandbox from "./Sandbox.js"

/**
 * @since 0.1.0
 */
export { startSandbox } from "./Sandbox.js"

/**
 * @since 0.1.0
 */
export * as UserAgent from "./UserAgent.js"
