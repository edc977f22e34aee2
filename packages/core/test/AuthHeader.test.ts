import { describe, expect, it } from "@effect/vitest"
import { AuthHeader, Credentials } from "@flyte-auth/core"
import { Redacted } from "effect"

const credentials = (token: string) => new Credentials.Credentials({ accessToken: Redacted.make(token), endpoint: "e" })

describe("AuthHeader", () => {
  it("make: a lower-case key and `Bearer <token>`, still redacted", () => {
    for (
      const header of [
        AuthHeader.make("Flyte-Authorization", credentials("tok-123")),
        AuthHeader.make("Flyte-Authorization", Redacted.make("tok-123"))
      ]
    ) {
      expect(header.key).toBe("flyte-authorization")
      expect(Redacted.value(header.value)).toBe("Bearer tok-123")
      expect(String(header.value)).not.toContain("tok-123")
      expect(JSON.stringify(header)).not.toContain("tok-123")
    }
  })

  it("carries: only the header made for exactly that access token", () => {
    const held = credentials("tok-123")
    expect(AuthHeader.carries(AuthHeader.make("authorization", held), held)).toBe(true)
    expect(AuthHeader.carries(AuthHeader.make("x-other", Redacted.make("tok-123")), held)).toBe(true)
    for (const value of ["tok-123", "Basic tok-123", "bearer tok-1234", "Bearer tok-1234", "Bearer xtok-123", ""]) {
      expect(AuthHeader.carries({ key: "authorization", value: Redacted.make(value) }, held)).toBe(false)
    }
  })
})
