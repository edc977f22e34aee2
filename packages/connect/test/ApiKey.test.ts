import { describe, expect, it } from "@effect/vitest"
import { ApiKey } from "@flyte-auth/connect"
import { Effect, Redacted } from "effect"

const encode = (text: string) => Buffer.from(text, "utf8").toString("base64")

describe("ApiKey.decode", () => {
  it.effect("splits endpoint:client_id:client_secret:org; the secret stays redacted", () =>
    Effect.gen(function*() {
      const key = yield* ApiKey.decode(encode("example.union.ai:my-client-id:my-secret:my-org"))
      expect(key).toMatchObject({ endpoint: "example.union.ai", clientId: "my-client-id", org: "my-org" })
      expect(Redacted.value(key.clientSecret)).toBe("my-secret")
      expect(String(key.clientSecret)).not.toContain("my-secret")
    }))

  it.effect("keeps dns:///, a scheme and a port in the endpoint, and a colon inside the secret", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string, string, string | undefined]> = [
        ["dns:///tenant.example.com:svc:s3cret:acme", "dns:///tenant.example.com", "s3cret", "acme"],
        ["dns:///tenant.example.com:443:svc:s3cret:acme", "dns:///tenant.example.com:443", "s3cret", "acme"],
        ["https://tenant.example.com:svc:s3cret:", "https://tenant.example.com", "s3cret", undefined],
        ["localhost:8090:svc:a:b:c:None", "localhost:8090", "a:b:c", undefined],
        ["[::1]:8090:svc:s3cret:acme", "[::1]:8090", "s3cret", "acme"],
        // A client id of digits after a bare host is the client id, not a port.
        ["flyte.example.com:12345:s3cret:acme", "flyte.example.com", "s3cret", "acme"]
      ]
      for (const [text, endpoint, secret, org] of cases) {
        const key = yield* ApiKey.decode(encode(text))
        expect({ text, endpoint: key.endpoint, secret: Redacted.value(key.clientSecret), org: key.org }).toEqual({
          text,
          endpoint,
          secret,
          org
        })
      }
    }))

  it.effect("a malformed key is a Config error naming the problem, never quoting the key", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, RegExp]> = [
        ["", /it is empty/],
        ["%%%not-base64%%%", /it is not base64/],
        [Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString("base64"), /does not decode to text/],
        [encode("host-only-s3cret"), /does not hold endpoint:client_id:client_secret:org/],
        [encode("host:svc:s3cret"), /does not hold endpoint:client_id:client_secret:org/],
        [encode("host::s3cret:org"), /its client id is empty/],
        [encode("host:svc::org"), /its client secret is empty/]
      ]
      for (const [key, problem] of cases) {
        const error = yield* Effect.flip(ApiKey.decode(Redacted.make(key), "FLYTE_API_KEY"))
        expect(error.reason).toBe("Config")
        expect(error.message).toMatch(/^FLYTE_API_KEY is not a valid Flyte API key: /)
        expect(error.message).toMatch(problem)
        expect(error.message).not.toContain("s3cret")
        if (key !== "") expect(error.message).not.toContain(key)
      }
    }))
})

describe("ApiKey.fromEnv", () => {
  it.effect("reads FLYTE_API_KEY, then the in-cluster variables; none set is undefined", () =>
    Effect.gen(function*() {
      expect(yield* ApiKey.fromEnv({})).toBeUndefined()
      expect(yield* ApiKey.fromEnv({ FLYTE_API_KEY: "  " })).toBeUndefined()
      const eager = yield* ApiKey.fromEnv({ _UNION_EAGER_API_KEY: encode("a.example.com:pod:s:o") })
      expect(eager).toMatchObject({
        envVar: "_UNION_EAGER_API_KEY",
        key: { endpoint: "a.example.com", clientId: "pod" }
      })
      const both = yield* ApiKey.fromEnv({
        FLYTE_API_KEY: encode("b.example.com:me:s:o"),
        EAGER_API_KEY: encode("a.example.com:pod:s:o")
      })
      expect(both?.envVar).toBe("FLYTE_API_KEY")
      const error = yield* Effect.flip(ApiKey.fromEnv({ EAGER_API_KEY: "!!" }))
      expect(error.message).toMatch(/^EAGER_API_KEY is not a valid Flyte API key/)
    }))
})
