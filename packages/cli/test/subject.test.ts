import { Credentials } from "@flyte-auth/core"
import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { subjectOf } from "../src/internal/authCommands.js"

const jwt = (claims: Record<string, unknown>) => `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2ln`

const credentials = (accessToken: string, idToken?: string) =>
  new Credentials.Credentials({
    accessToken: Redacted.make(accessToken),
    ...(idToken === undefined ? {} : { idToken: Redacted.make(idToken) }),
    endpoint: "dns:///flyte.example:443"
  })

describe("subjectOf (who `login` and `status` say the credentials are for)", () => {
  it("an opaque client-credentials token is the client's own (RFC 9068 §2.2): the client id", () => {
    expect(subjectOf(credentials("opaque-token"), "flytepropeller")).toBe("flytepropeller")
    expect(subjectOf(credentials("opaque-token"))).toBeUndefined()
    expect(subjectOf(credentials("opaque-token"), "")).toBeUndefined()
  })

  it("claims win over the client id: sub of the id token, then of the access token, then client_id", () => {
    expect(subjectOf(credentials(jwt({ sub: "at" }), jwt({ sub: "id" })), "c")).toBe("id")
    expect(subjectOf(credentials(jwt({ sub: "at" })), "c")).toBe("at")
    expect(subjectOf(credentials(jwt({ client_id: "svc" })), "c")).toBe("svc")
  })
})
