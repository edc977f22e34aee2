/**
 * Reading (not verifying) the claims of a JWT, to show who a token belongs to.
 *
 * @internal
 */

/**
 * The payload of a JWT, or `undefined` when the token is not a JWT with a JSON object payload.
 *
 * @internal
 */
export const claims = (token: string): Record<string, unknown> | undefined => {
  const parts = token.split(".")
  if (parts.length !== 3) return undefined
  try {
    const payload = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as unknown
    return typeof payload === "object" && payload !== null && !Array.isArray(payload)
      ? payload as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}
