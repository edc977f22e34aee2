/**
 * Plain TypeScript calling a protected Flyte Admin gRPC service (IdentityService/UserInfo) with only an endpoint:
 * the client configuration comes from the admin's AuthMetadataService.
 *
 *   FLYTE_PLATFORM_URL=flyte.example.com:443 node examples/dist/grpc-client.js
 *
 * Against the sandbox (two terminals; the sandbox writes the FLYTE_* variables of its service account):
 *
 *   node packages/cli/dist/bin.js sandbox --write-env-file sandbox.env
 *   node --env-file=sandbox.env examples/dist/grpc-client.js
 */
import { authInterceptor, FlyteProtos } from "@flyte-auth/grpc"
import { createAuthClient } from "@flyte-auth/node/client"
import { credentials } from "@grpc/grpc-js"

export const main = async (options: { endpoint: string; insecure: boolean }): Promise<unknown> => {
  await using auth = await createAuthClient(options)
  const IdentityService = FlyteProtos.service("flyteidl/service/identity.proto", "flyteidl.service.IdentityService")
  const channel = options.insecure ? credentials.createInsecure() : credentials.createSsl()
  const client = new IdentityService(options.endpoint, channel, { interceptors: [authInterceptor(auth)] })
  try {
    return await new Promise((resolve, reject) =>
      client.UserInfo({}, (error: Error | null, response: unknown) => error ? reject(error) : resolve(response))
    )
  } finally {
    client.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const endpoint = process.env.FLYTE_PLATFORM_URL ?? "localhost:8089"
  main({ endpoint, insecure: process.env.FLYTE_PLATFORM_INSECURE === "true" }).then((info) => console.log(info), fail)
}

/** A rejection is one line on stderr (what failed; the tagged error's message never holds a secret), exit 1. */
function fail(error: unknown): void {
  console.error(`${import.meta.url.split("/").at(-1)}: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
