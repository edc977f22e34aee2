import { describe, expect, it } from "@effect/vitest"
import { AuthMode } from "@flyte-auth/core"
import { Effect, Either, Schema } from "effect"

describe("AuthMode", () => {
  it.each(
    [
      ["Pkce", "Pkce"],
      ["pkce", "Pkce"],
      ["PKCE", "Pkce"],
      ["standard", "Pkce"],
      ["Standard", "Pkce"],
      ["ClientSecret", "ClientSecret"],
      ["clientsecret", "ClientSecret"],
      ["basic", "ClientSecret"],
      ["BASIC", "ClientSecret"],
      ["client_credentials", "ClientSecret"],
      ["Client_Credentials", "ClientSecret"],
      ["ExternalCommand", "ExternalCommand"],
      ["externalcommand", "ExternalCommand"],
      ["external_process", "ExternalCommand"],
      ["DeviceFlow", "DeviceFlow"],
      ["deviceflow", "DeviceFlow"],
      ["device_flow", "DeviceFlow"],
      ["  Pkce \n", "Pkce"]
    ] as const
  )("parses %j as %s", (input, mode) => {
    expect(AuthMode.parseEither(input)).toEqual(Either.right(mode))
  })

  it.effect("an unknown mode is a Config error that lists the valid ones", () =>
    Effect.gen(function*() {
      for (const input of ["oauth", "", "client-credentials", "constructor", "toString"]) {
        const error = yield* Effect.flip(AuthMode.parse(input))
        expect(error._tag).toBe("AuthenticationError")
        expect(error.reason).toBe("Config")
        for (const mode of ["Pkce", "ClientSecret", "ExternalCommand", "DeviceFlow", "standard", "basic"]) {
          expect(error.message).toContain(mode)
        }
      }
    }))

  it("decodes through AuthModeFromString, failing with the same message", () => {
    expect(Schema.decodeUnknownSync(AuthMode.AuthModeFromString)("basic")).toBe("ClientSecret")
    expect(() => Schema.decodeUnknownSync(AuthMode.AuthModeFromString)("kerberos")).toThrow(/valid modes are Pkce/)
  })

  it("knows which modes need a user", () => {
    expect(AuthMode.AuthMode.literals.filter(AuthMode.isInteractive)).toEqual(["Pkce", "DeviceFlow"])
  })
})
