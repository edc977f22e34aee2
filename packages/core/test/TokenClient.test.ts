import { describe, expect, it } from "@effect/vitest"
import { TokenClient } from "@flyte-auth/core"
import { Redacted } from "effect"

describe("TokenClient.basicAuthorization", () => {
  it("form-url-encodes both the client id and the secret (RFC 6749 §2.3.1)", () => {
    expect(Redacted.value(TokenClient.basicAuthorization("client_id", Redacted.make("abc")))).toBe(
      "Basic Y2xpZW50X2lkOmFiYw=="
    )
    const encoded = Redacted.value(TokenClient.basicAuthorization("a b:c", Redacted.make("s&=+")))
    expect(Buffer.from(encoded.slice("Basic ".length), "base64").toString()).toBe("a+b%3Ac:s%26%3D%2B")
  })
})
