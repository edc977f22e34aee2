/**
 * Mutable request counters shared by the IdP and the admin; `Sandbox.stats()` returns snapshots.
 *
 * @internal
 */

/** @internal */
export type GrantTypeKey = "authorization_code" | "refresh_token" | "client_credentials" | "device_code" | "other"

/** @internal */
export type ByGrantType = Record<GrantTypeKey, number>

/** @internal */
export const grantTypeKey = (grantType: unknown): GrantTypeKey => {
  switch (grantType) {
    case "authorization_code":
    case "refresh_token":
    case "client_credentials":
      return grantType
    case "urn:ietf:params:oauth:grant-type:device_code":
      return "device_code"
    default:
      return "other"
  }
}

const byGrantType = (): ByGrantType => ({
  authorization_code: 0,
  refresh_token: 0,
  client_credentials: 0,
  device_code: 0,
  other: 0
})

/** What one admin saw (each admin has its own). @internal */
export class AdminCounters {
  userInfoCalls = 0
  whoamiCalls = 0
  oauth2MetadataCalls = 0
  publicClientConfigCalls = 0
  watchCalls = 0
  authFailures = 0
  lastAuthFailure: string | undefined = undefined
  proxyRejections = 0

  reset(): void {
    Object.assign(this, new AdminCounters())
  }
}

/** @internal */
export class Counters {
  tokenRequests = byGrantType()
  tokenErrors = byGrantType()
  injectedTokenFailures = 0
  authorizationRequests = 0
  deviceAuthorizationRequests = 0
  logins = 0
  failedLogins = 0
  consents = 0
  denials = 0
  serverErrors = 0
  idpProxyRejections = 0
  /** The Flyte 1 admin. */
  readonly admin = new AdminCounters()
  /** The Flyte 2 admin. */
  readonly connectAdmin = new AdminCounters()

  reset(): void {
    this.tokenRequests = byGrantType()
    this.tokenErrors = byGrantType()
    this.injectedTokenFailures = 0
    this.authorizationRequests = 0
    this.deviceAuthorizationRequests = 0
    this.logins = 0
    this.failedLogins = 0
    this.consents = 0
    this.denials = 0
    this.serverErrors = 0
    this.idpProxyRejections = 0
    this.admin.reset()
    this.connectAdmin.reset()
  }
}
