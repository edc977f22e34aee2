/**
 * `flyteidl.service.IdentityService/UserInfo` over the authenticated gRPC channel (loaded only by `whoami` and
 * the demo).
 *
 * @internal
 */
import type { Authenticator } from "@flyte-auth/core/Authenticator"
import * as FlyteProtos from "@flyte-auth/grpc/FlyteProtos"
import * as GrpcAuth from "@flyte-auth/grpc/GrpcAuth"
import type * as AuthLayer from "@flyte-auth/node/AuthLayer"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { CliError } from "./errors.js"

/**
 * The `UserInfo` response, as proto-loader decodes it (field names as in the proto).
 *
 * @internal
 */
export type UserInfoResponse = Record<string, unknown>

/**
 * Calls `IdentityService/UserInfo` with the channel settings of `AuthLayer` (TLS or plaintext, CA, proxy token).
 *
 * @internal
 */
export const userInfo = (
  settings: Pick<
    AuthLayer.ResolvedSettings,
    "endpoint" | "insecure" | "caCertFilePath" | "insecureSkipVerify" | "proxyToken"
  >,
  timeout: Duration.DurationInput
): Effect.Effect<UserInfoResponse, CliError, Authenticator> =>
  Effect.scoped(Effect.gen(function*() {
    const IdentityService = yield* Effect.try({
      try: () => FlyteProtos.service("flyteidl/service/identity.proto", "flyteidl.service.IdentityService"),
      catch: (cause) => new CliError({ message: "cannot load the flyteidl IdentityService definition", cause })
    })
    const client = yield* GrpcAuth.makeClient(IdentityService, {
      endpoint: settings.endpoint,
      insecure: settings.insecure,
      caCertFilePath: settings.caCertFilePath,
      insecureSkipVerify: settings.insecureSkipVerify,
      proxyToken: settings.proxyToken
    }).pipe(Effect.mapError((cause) => new CliError({ message: cause.message, cause })))
    return yield* Effect.async<UserInfoResponse, CliError>((resume) => {
      const call = client.UserInfo(
        {},
        (error: (Error & { code?: number; details?: string }) | null, response: UserInfoResponse) => {
          if (error !== null) {
            resume(Effect.fail(
              new CliError({
                message: `IdentityService/UserInfo on ${settings.endpoint} failed: ${error.details ?? error.message}` +
                  (error.code === 14 && !settings.insecure
                    ? " — check --endpoint; for a plaintext server pass --insecure"
                    : ""),
                cause: error
              })
            ))
          } else {
            resume(Effect.succeed(response))
          }
        }
      )
      return Effect.sync(() => call.cancel())
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new CliError({ message: `IdentityService/UserInfo on ${settings.endpoint} did not answer in time` })
      })
    )
  }))
