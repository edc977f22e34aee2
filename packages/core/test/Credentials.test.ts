import { describe, expect, it } from "@effect/vitest"
import { Credentials } from "@flyte-auth/core"
import { DateTime, Duration, Effect, Encoding, Option, ParseResult, Redacted } from "effect"

const at = (millis: number) => DateTime.unsafeMake(millis)

const credentials = (fields: Partial<ConstructorParameters<typeof Credentials.Credentials>[0]> = {}) =>
  new Credentials.Credentials({ accessToken: Redacted.make("at"), endpoint: "flyte.example:443", ...fields })

describe("Credentials.isFresh", () => {
  it("a token without a known expiry is fresh", () => {
    expect(Credentials.isFresh(credentials(), at(Number.MAX_SAFE_INTEGER / 2))).toBe(true)
  })

  it("uses the default 60 s skew before expiry", () => {
    const hour = credentials({ obtainedAt: at(0), expiresAt: at(3_600_000) })
    expect(Credentials.isFresh(hour, at(0))).toBe(true)
    expect(Credentials.isFresh(hour, at(3_540_000 - 1))).toBe(true)
    expect(Credentials.isFresh(hour, at(3_540_000))).toBe(false)
    expect(Credentials.isFresh(hour, at(3_600_000))).toBe(false)
    expect(Credentials.isFresh(hour, at(4_000_000))).toBe(false)
  })

  it("takes a custom skew", () => {
    const hour = credentials({ obtainedAt: at(0), expiresAt: at(3_600_000) })
    expect(Credentials.isFresh(hour, at(2_999_999), Duration.minutes(10))).toBe(true)
    expect(Credentials.isFresh(hour, at(3_000_000), "10 minutes")).toBe(false)
    expect(Credentials.isFresh(hour, at(2_999_999), "11 minutes")).toBe(false)
    expect(Credentials.isFresh(hour, at(3_599_999), Duration.zero)).toBe(true)
  })

  it("caps the skew at half the lifetime of a short-lived token", () => {
    // A 10 s token would never be fresh with a 60 s skew; with the cap it is fresh for its first 5 s.
    const short = credentials({ obtainedAt: at(1_000), expiresAt: at(11_000) })
    expect(Credentials.isFresh(short, at(1_000))).toBe(true)
    expect(Credentials.isFresh(short, at(5_999))).toBe(true)
    expect(Credentials.isFresh(short, at(6_000))).toBe(false)
  })

  it("without obtainedAt the skew is not capped", () => {
    const short = credentials({ expiresAt: at(10_000) })
    expect(Credentials.isFresh(short, at(0))).toBe(false)
  })

  it("a token that was already expired when obtained is never fresh", () => {
    const expired = credentials({ obtainedAt: at(10_000), expiresAt: at(10_000) })
    expect(Credentials.isFresh(expired, at(10_000))).toBe(false)
  })
})

describe("Credentials.jwtExpiry", () => {
  const jwt = (claims: unknown) =>
    Redacted.make(
      `${Encoding.encodeBase64Url("{\"alg\":\"RS256\"}")}.${Encoding.encodeBase64Url(JSON.stringify(claims))}.s`
    )

  it("reads the exp claim of a JWT", () => {
    const expiry = Credentials.jwtExpiry(jwt({ exp: 1_700_000_000, sub: "u" }))
    expect(Option.map(expiry, DateTime.toEpochMillis)).toEqual(Option.some(1_700_000_000_000))
  })

  it("is none for opaque tokens, JWTs without a numeric exp and broken payloads", () => {
    expect(Credentials.jwtExpiry(Redacted.make("opaque-token"))).toEqual(Option.none())
    expect(Credentials.jwtExpiry(jwt({ sub: "u" }))).toEqual(Option.none())
    expect(Credentials.jwtExpiry(jwt({ exp: "1700000000" }))).toEqual(Option.none())
    expect(Credentials.jwtExpiry(jwt("a string"))).toEqual(Option.none())
    expect(Credentials.jwtExpiry(jwt({ exp: 1e300 }))).toEqual(Option.none())
    expect(Credentials.jwtExpiry(Redacted.make("a.!!!.c"))).toEqual(Option.none())
    expect(Credentials.jwtExpiry(Redacted.make(`a.${Encoding.encodeBase64Url("{not json")}.c`))).toEqual(Option.none())
  })
})

describe("Credentials keyring entry", () => {
  it.effect("round-trips every field through one JSON string", () =>
    Effect.gen(function*() {
      const original = credentials({
        accessToken: Redacted.make("access-1"),
        refreshToken: Redacted.make("refresh-1"),
        idToken: Redacted.make("id-1"),
        expiresAt: at(1_700_000_000_000),
        obtainedAt: at(1_699_999_000_000),
        scopes: ["all", "offline"]
      })
      const entry = yield* Credentials.encodeKeyringEntry(original)
      expect(typeof entry).toBe("string")
      expect(JSON.parse(entry)).toEqual({
        accessToken: "access-1",
        refreshToken: "refresh-1",
        idToken: "id-1",
        expiresAt: "2023-11-14T22:13:20.000Z",
        obtainedAt: "2023-11-14T21:56:40.000Z",
        endpoint: "flyte.example:443",
        scopes: ["all", "offline"]
      })
      const decoded = yield* Credentials.decodeKeyringEntry(entry)
      expect(Redacted.value(decoded.accessToken)).toBe("access-1")
      expect(Redacted.value(decoded.refreshToken!)).toBe("refresh-1")
      expect(Redacted.value(decoded.idToken!)).toBe("id-1")
      expect(DateTime.toEpochMillis(decoded.expiresAt!)).toBe(1_700_000_000_000)
      expect(DateTime.toEpochMillis(decoded.obtainedAt!)).toBe(1_699_999_000_000)
      expect(decoded.endpoint).toBe("flyte.example:443")
      expect(decoded.scopes).toEqual(["all", "offline"])
    }))

  it.effect("writes no stale field for absent values", () =>
    Effect.gen(function*() {
      const entry = yield* Credentials.encodeKeyringEntry(credentials())
      expect(JSON.parse(entry)).toEqual({ accessToken: "at", endpoint: "flyte.example:443" })
      const decoded = yield* Credentials.decodeKeyringEntry(entry)
      expect(decoded.refreshToken).toBeUndefined()
      expect(decoded.expiresAt).toBeUndefined()
    }))

  it.effect("a corrupt entry is a ParseError that does not echo the entry", () =>
    Effect.gen(function*() {
      const corrupt = [
        "",
        "not json",
        "{\"accessToken\":\"secret-in-entry\"",
        "{}",
        "[]",
        "{\"accessToken\":5,\"endpoint\":\"e\"}",
        "{\"accessToken\":\"secret-in-entry\",\"endpoint\":\"e\",\"expiresAt\":\"yesterday\"}",
        "{\"accessToken\":\"secret-in-entry\"}"
      ]
      for (const entry of corrupt) {
        const error = yield* Effect.flip(Credentials.decodeKeyringEntry(entry))
        expect(ParseResult.isParseError(error), entry).toBe(true)
      }
    }))

  it("credentials do not show their tokens when printed", () => {
    const printed = credentials({ accessToken: Redacted.make("access-secret"), refreshToken: Redacted.make("rt-x") })
    expect(String(printed)).not.toContain("access-secret")
    expect(JSON.stringify(printed)).not.toContain("access-secret")
    expect(JSON.stringify(printed)).not.toContain("rt-x")
  })
})

describe("Credentials.normalizeEndpoint", () => {
  it("drops gRPC's dns:/// scheme (any case) and surrounding white space, and nothing else", () => {
    expect(Credentials.normalizeEndpoint(" dns:///flyte.example.com:443\n")).toBe("flyte.example.com:443")
    expect(Credentials.normalizeEndpoint("DNS:///[::1]:8089")).toBe("[::1]:8089")
    expect(Credentials.normalizeEndpoint("https://flyte.example.com/api")).toBe("https://flyte.example.com/api")
    expect(Credentials.normalizeEndpoint("flyte.example.com:443")).toBe("flyte.example.com:443")
    expect(Credentials.normalizeEndpoint("dns://flyte.example.com")).toBe("dns://flyte.example.com")
  })
})

describe("Credentials.fromTokens", () => {
  it("keeps every granted token, expiry and scope, and adds the endpoint", () => {
    const obtainedAt = DateTime.unsafeMake(1_000)
    const expiresAt = DateTime.unsafeMake(61_000)
    const credentials = Credentials.fromTokens({
      accessToken: Redacted.make("at"),
      refreshToken: Redacted.make("rt"),
      idToken: Redacted.make("idt"),
      obtainedAt,
      expiresAt,
      scopes: ["all"]
    }, "flyte.example:443")
    expect(credentials).toBeInstanceOf(Credentials.Credentials)
    expect(credentials.endpoint).toBe("flyte.example:443")
    expect(Redacted.value(credentials.accessToken)).toBe("at")
    expect(credentials.refreshToken && Redacted.value(credentials.refreshToken)).toBe("rt")
    expect(credentials.idToken && Redacted.value(credentials.idToken)).toBe("idt")
    expect(credentials.obtainedAt).toEqual(obtainedAt)
    expect(credentials.expiresAt).toEqual(expiresAt)
    expect(credentials.scopes).toEqual(["all"])
    expect(credentials.authMode).toBeUndefined()
  })
})
