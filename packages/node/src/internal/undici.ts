/**
 * What NodeTransport needs of undici and of @effect/platform-node's client on it, in one module that it imports
 * on demand. A static import here (not `import("undici")` there) so that a bundle, too, gets undici's named exports
 * (esbuild gives a CommonJS package that is only imported dynamically a chunk with a default export only).
 */
export { makeUndici } from "@effect/platform-node/NodeHttpClient"
export { Agent, EnvHttpProxyAgent } from "undici"
