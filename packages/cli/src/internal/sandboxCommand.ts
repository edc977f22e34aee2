/**
 * `flyte-auth sandbox`: runs the embedded IdP and Flyte-like admin until SIGINT/SIGTERM.
 *
 * @internal
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Fs from "node:fs"
import { CliError } from "./errors.js"

/**
 * Default ports, the ones of a local Flyte (`flyte start`): admin gRPC 8089, admin HTTP 8088; the IdP on 8087; the
 * Flyte 2 admin (`--flyte 2`) on 8090.
 *
 * @internal
 */
export const defaultPorts = { adminGrpc: 8089, adminHttp: 8088, idp: 8087, adminConnect: 8090 } as const

/** @internal */
export interface SandboxArgs {
  readonly adminPort: number
  readonly adminHttpPort: number
  readonly idpPort: number
  /**
   * `--flyte 2`: also start the Flyte 2 admin (ConnectRPC), which the printed command and the env file then point
   * at (the Flyte 1 admin runs too).
   */
  readonly flyte2: boolean
  readonly adminConnectPort: number
  readonly tokenTtl: number | undefined
  readonly autoApprove: boolean
  /** Approve each device code as the demo user when it is issued (a second device, for headless machines). */
  readonly approveDeviceCodes: boolean
  readonly headerKey: string | undefined
  readonly proxyToken: string | undefined
  readonly redirectUri: string | undefined
  /** Where to write the `FLYTE_*` variables of the sandbox's service account (for `node --env-file`). */
  readonly envFile: string | undefined
}

/**
 * The first stdout line of `flyte-auth sandbox`: where everything is and how to sign in.
 *
 * @internal
 */
export interface SandboxInfo {
  readonly adminGrpc: string
  readonly adminHttp: string
  readonly issuer: string
  /** The Flyte 2 admin's base URL (`--flyte 2` only: the key is absent otherwise). */
  readonly adminConnect?: string
  readonly publicClientId: string
  readonly confidentialClientId: string
  readonly confidentialClientSecret: string
  /** The second service account, for a second login on the same endpoint. */
  readonly ciClientId: string
  readonly ciClientSecret: string
  readonly username: string
  readonly password: string
}

/** @internal */
export const run = (args: SandboxArgs): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const { Sandbox } = yield* Effect.promise(() => import("@flyte-auth/sandbox"))
    // The sandbox reports its servers' errors through a plain callback: printed through this command's Console.
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const sandbox = yield* Sandbox.make({
      idpPort: args.idpPort,
      adminGrpcPort: args.adminPort,
      adminHttpPort: args.adminHttpPort,
      ...(args.flyte2 ? { flyte2: true, adminConnectPort: args.adminConnectPort } : {}),
      autoApprove: args.autoApprove,
      approveDeviceCodes: args.approveDeviceCodes,
      ...(args.tokenTtl !== undefined ? { tokenTtlSeconds: args.tokenTtl } : {}),
      ...(args.headerKey !== undefined ? { headerKey: args.headerKey } : {}),
      ...(args.proxyToken !== undefined ? { proxyToken: args.proxyToken } : {}),
      ...(args.redirectUri !== undefined ? { redirectUri: args.redirectUri } : {}),
      onServerError: (error) => runFork(Console.error(`flyte-auth sandbox: server error: ${describe(error)}`))
    }).pipe(
      Effect.mapError((error) =>
        new CliError({
          // The report says `flyte-auth sandbox: ` already; the SandboxError's message starts with it too.
          message: `${error.message.replace(/^flyte-auth sandbox\s*/, "")}; choose other ports with --admin-port, ` +
            `--admin-http-port${args.flyte2 ? ", --admin-connect-port" : ""} and --idp-port (0 picks a free port)`,
          cause: error
        })
      )
    )
    const info: SandboxInfo = {
      adminGrpc: sandbox.adminGrpc,
      adminHttp: sandbox.adminHttp,
      issuer: sandbox.issuer,
      ...(sandbox.adminConnect === undefined ? {} : { adminConnect: sandbox.adminConnect }),
      publicClientId: sandbox.clients.public.clientId,
      confidentialClientId: sandbox.clients.confidential.clientId,
      confidentialClientSecret: sandbox.clients.confidential.clientSecret,
      ciClientId: sandbox.clients.ci.clientId,
      ciClientSecret: sandbox.clients.ci.clientSecret,
      username: sandbox.user.username,
      password: sandbox.user.password
    }
    if (args.envFile !== undefined) yield* writeEnvFile(args.envFile, info)
    yield* Console.log(JSON.stringify(info))
    yield* Console.error(
      [
        `flyte-auth sandbox: admin gRPC ${sandbox.adminGrpc}, admin HTTP ${sandbox.adminHttp}, IdP ${sandbox.issuer}`,
        ...(sandbox.adminConnect === undefined ? [] : [
          `  Flyte 2 admin ${sandbox.adminConnect} (ConnectRPC: Connect, gRPC and gRPC-web; HTTP/1.1 and h2c): ` +
          "flyteidl2 AuthMetadataService, IdentityService/UserInfo, StateService/Watch"
        ]),
        `  user ${sandbox.user.username} / ${sandbox.user.password}, header key ${sandbox.headerKey}, ` +
        `access tokens live ${args.tokenTtl ?? 600} s${args.autoApprove ? ", logins are approved automatically" : ""}` +
        `${args.approveDeviceCodes ? ", device codes are approved as they are issued" : ""}`,
        `  try: flyte-auth --endpoint ${
          sandbox.adminConnect ?? sandbox.adminGrpc
        } --insecure login   (Ctrl-C stops the sandbox)`,
        ...(args.envFile === undefined ? [] : [
          `  ${args.envFile}: the service account's FLYTE_* variables; run an example with ` +
          `node --env-file=${args.envFile} examples/dist/plain-typescript.js`
        ])
      ].join("\n")
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)

/**
 * The `FLYTE_*` variables that make any flyte-auth client (the examples, `createAuthClient()`,
 * `AuthLayer.fromFlyteConfig()`) log in to the sandbox as its confidential client, in the format of
 * `node --env-file` (mode 0600: it holds the sandbox's client secret).
 *
 * @internal
 */
export const envFileText = (info: SandboxInfo): string =>
  [
    "# flyte-auth sandbox: log in as its service account (client credentials)",
    `FLYTE_PLATFORM_URL=${info.adminConnect ?? info.adminGrpc}`,
    "FLYTE_PLATFORM_INSECURE=true",
    "FLYTE_CREDENTIALS_AUTH_MODE=ClientSecret",
    `FLYTE_CREDENTIALS_CLIENT_ID=${info.confidentialClientId}`,
    `FLYTE_CREDENTIALS_CLIENT_SECRET=${info.confidentialClientSecret}`,
    `FLYTE_SANDBOX_ADMIN_HTTP=${info.adminHttp}`,
    ...(info.adminConnect === undefined ? [] : [`FLYTE_SANDBOX_ADMIN_CONNECT=${info.adminConnect}`]),
    ""
  ].join("\n")

const writeEnvFile = (path: string, info: SandboxInfo) =>
  Effect.try({
    try: () => Fs.writeFileSync(path, envFileText(info), { mode: 0o600 }),
    catch: (cause) =>
      new CliError({ message: `cannot write --write-env-file ${path}: ${describe(cause)}`, cause, exitCode: 1 })
  })

const describe = (error: unknown): string => error instanceof Error ? error.message : String(error)
