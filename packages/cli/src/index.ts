/**
 * `@flyte-auth/cli`: the `flyte-auth` command line (the binary is `dist/bin.js`, bundled with esbuild).
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"
