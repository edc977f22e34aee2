/**
 * `flyteidl2.auth.IdentityService/UserInfo` over ConnectRPC, for `whoami` on a Flyte 2 endpoint (loaded only
 * then).
 *
 * @internal
 */
import { toJson } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import * as ConnectAuth from "@flyte-auth/connect/ConnectAuth"
import { IdentityService, UserInfoResponseSchema } from "@flyte-auth/connect/gen/flyteidl2/auth/identity_pb"
import type { Authenticator } from "@flyte-auth/core/Authenticator"
import type * as AuthLayer from "@flyte-auth/node/AuthLayer"
import * as NodeConnectTransport from "@flyte-auth/node/NodeConnectTransport"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { CliError } from "./errors.js"

/**
 * Calls `UserInfo` with the authenticated transport (TLS settings of `AuthLayer`, the proxy token when one is
 * configured); the answer as JSON with the proto's field names, as `whoami` prints it for Flyte 1.
 *
 * @internal
 */
export const userInfo = (
  settings: Pick<
    AuthLayer.ResolvedSettings,
    "endpoint" | "insecure" | "caCertFilePath" | "insecureSkipVerify" | "proxyToken"
  >,
  timeout: Duration.DurationInput
): Effect.Effect<unknown, CliError, Authenticator> =>
  Effect.gen(function*() {
    const interceptors = [yield* ConnectAuth.interceptor]
    if (settings.proxyToken !== undefined) interceptors.push(yield* ConnectAuth.proxyInterceptor(settings.proxyToken))
    const transport = yield* NodeConnectTransport.make({ ...settings, interceptors }).pipe(
      Effect.mapError((cause) => new CliError({ message: cause.description, cause }))
    )
    const what = `${IdentityService.typeName}/UserInfo on ${settings.endpoint}`
    const response = yield* Effect.tryPromise({
      try: (signal) =>
        createClient(IdentityService, transport).userInfo({}, {
          signal,
          timeoutMs: Duration.toMillis(Duration.decode(timeout))
        }),
      catch: (error) => {
        const cause = ConnectError.from(error)
        return new CliError({
          message: cause.code === Code.DeadlineExceeded
            ? `${what} did not answer in time`
            : `${what} failed: ${Code[cause.code]}: ${cause.rawMessage}` +
              (cause.code === Code.Unavailable && !settings.insecure
                ? " — check --endpoint; for a plaintext server pass --insecure"
                : ""),
          cause
        })
      }
    })
    return toJson(UserInfoResponseSchema, response, { useProtoFieldName: true })
  })
