/**
 * What both admins (Flyte 1 over grpc-js and HTTP, Flyte 2 over connect-node) do with a bearer token: verify it as
 * an access token of the sandbox IdP (signature, issuer, audience, type, expiry) and against the revocation cutoff
 * (`Sandbox.rejectTokensIssuedBefore`), which the admins share.
 *
 * @internal
 */
import * as jose from "jose"
import type * as crypto from "node:crypto"
import { issuedAtMsClaim } from "./idp.js"

/** The identity behind a valid access token. @internal */
export interface Identity {
  readonly subject: string
  readonly name?: string
  readonly preferredUsername?: string
  readonly email?: string
  readonly clientId?: string
  readonly scope?: string
}

/** @internal */
export type Rejection = {
  readonly _tag: "Rejected"
  readonly error: "missing_token" | "invalid_token"
  readonly description: string
}

/** @internal */
export type Authentication = { readonly _tag: "Authenticated"; readonly identity: Identity } | Rejection

/** @internal */
export interface VerifierConfig {
  readonly issuer: string
  readonly audience: string
  /** The header the token is read from (`authorization` is accepted too). */
  readonly headerKey: string
  readonly jwks: { readonly keys: ReadonlyArray<crypto.JsonWebKey> }
}

/** @internal */
export interface Verifier {
  /** The first non-empty header value wins: pass `[<headerKey>'s, authorization's]`. */
  readonly authenticate: (headerValues: ReadonlyArray<string | undefined>) => Promise<Authentication>
  /** Rejects every access token issued before `epochMillis` (`undefined`: none). */
  readonly rejectTokensIssuedBefore: (epochMillis: number | undefined) => void
}

const str = (u: unknown): string | undefined => typeof u === "string" && u.length > 0 ? u : undefined

/** @internal */
export const makeVerifier = (config: VerifierConfig): Verifier => {
  const jwks = jose.createLocalJWKSet({ keys: config.jwks.keys.map((key) => ({ ...key })) as Array<jose.JWK> })
  let rejectBefore: number | undefined = undefined

  const authenticate = async (headerValues: ReadonlyArray<string | undefined>): Promise<Authentication> => {
    const header = headerValues.find((value) => value !== undefined && value.length > 0)
    if (header === undefined) {
      return {
        _tag: "Rejected",
        error: "missing_token",
        description: `missing bearer token (send "${config.headerKey}: Bearer <token>")`
      }
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (!match) return { _tag: "Rejected", error: "invalid_token", description: "authorization is not a Bearer token" }
    try {
      const { payload } = await jose.jwtVerify(match[1]!, jwks, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: ["ES256"],
        typ: "at+jwt",
        requiredClaims: ["sub", "exp", "iat"]
      })
      const issuedAtMs = typeof payload[issuedAtMsClaim] === "number"
        ? payload[issuedAtMsClaim] as number
        : (payload.iat ?? 0) * 1000
      if (rejectBefore !== undefined && issuedAtMs < rejectBefore) {
        return {
          _tag: "Rejected",
          error: "invalid_token",
          description: "token was issued before the revocation cutoff"
        }
      }
      const identity: Identity = {
        subject: payload.sub!,
        ...(str(payload.name) === undefined ? {} : { name: str(payload.name)! }),
        ...(str(payload.preferred_username) === undefined
          ? {}
          : { preferredUsername: str(payload.preferred_username)! }),
        ...(str(payload.email) === undefined ? {} : { email: str(payload.email)! }),
        ...(str(payload.client_id) === undefined ? {} : { clientId: str(payload.client_id)! }),
        ...(str(payload.scope) === undefined ? {} : { scope: str(payload.scope)! })
      }
      return { _tag: "Authenticated", identity }
    } catch (error) {
      const description = error instanceof jose.errors.JWTExpired
        ? "token expired"
        : `invalid token: ${error instanceof Error ? error.message : String(error)}`
      return { _tag: "Rejected", error: "invalid_token", description }
    }
  }

  return {
    authenticate,
    rejectTokensIssuedBefore: (epochMillis) => {
      rejectBefore = epochMillis
    }
  }
}

/** `UserInfoResponse` of flyteidl's (and flyteidl2's) `IdentityService`, in proto field names. @internal */
export const userInfo = (identity: Identity) => ({
  subject: identity.subject,
  name: identity.name ?? "",
  preferred_username: identity.preferredUsername ?? "",
  given_name: "",
  family_name: "",
  email: identity.email ?? "",
  picture: ""
})
