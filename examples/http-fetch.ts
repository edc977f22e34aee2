/**
 * Plain TypeScript over HTTP: `auth.fetch` adds the auth header to a request of Flyte admin's REST API, and on a
 * 401 refreshes the token and sends the request once more.
 *
 *   FLYTE_PLATFORM_URL=https://flyte.example.com node examples/dist/http-fetch.js https://flyte.example.com/api/v1/projects
 */
import { createAuthClient } from "@flyte-auth/node"

export const main = async (url: string): Promise<{ readonly status: number; readonly body: unknown }> => {
  await using auth = await createAuthClient()
  const response = await auth.fetch(url, { headers: { accept: "application/json" } })
  return { status: response.status, body: await response.json() }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv[2]).then(({ body, status }) => console.log(status, body))
}
