/**
 * Plain TypeScript, no Effect: a token from whatever Flyte's config file and FLYTE_* variables describe.
 *
 *   FLYTE_PLATFORM_URL=flyte.example.com:443 node examples/dist/plain-typescript.js
 */
import { createAuthClient } from "@flyte-auth/node"

export const main = async (): Promise<string> => {
  await using auth = await createAuthClient()
  return await auth.accessToken() // await: the client closes when this scope ends
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((token) => console.log(`got a token of ${token.length} characters`))
}
