import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox, UserAgent } from "@flyte-auth/sandbox"
import * as grpc from "@grpc/grpc-js"
import {
  authorizeUrl,
  decodeJwt,
  exchangeCode,
  grpcCall,
  pkcePair,
  refresh,
  startLoopback,
  tokenRequest,
  userInfo,
  whoami
} from "./helpers.js"

describe("authorization code + PKCE", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox()
  })
  afterAll(() => sandbox.close())

  const login = async (scope?: string) => {
    const loopback = await startLoopback()
    try {
      const { challenge, verifier } = pkcePair()
      const url = authorizeUrl(sandbox, {
        redirectUri: loopback.redirectUri,
        challenge,
        state: "state-123",
        ...(scope === undefined ? {} : { scope })
      })
      const page = await UserAgent.authorize(url, sandbox.user)
      expect(page.status).toBe(200)
      expect(page.body).toContain("Signed in")
      const received = await loopback.received
      expect(received.searchParams.get("state")).toBe("state-123")
      expect(received.searchParams.get("iss")).toBe(sandbox.issuer)
      expect(page.callbackUrl).toBe(`${loopback.redirectUri}${received.search}`)
      const tokens = await exchangeCode(sandbox, received.searchParams.get("code")!, loopback.redirectUri, verifier)
      expect(tokens.status).toBe(200)
      return tokens.json
    } finally {
      await loopback.close()
    }
  }

  it("user agent signs in on a loopback redirect with any port; code exchange yields a JWT for the admin", async () => {
    const tokens = await login()
    expect(tokens).toMatchObject({ token_type: "Bearer", expires_in: 600, scope: "all" })
    expect(typeof tokens.refresh_token).toBe("string")
    const claims = decodeJwt(tokens.access_token)
    expect(claims).toMatchObject({
      iss: sandbox.issuer,
      aud: sandbox.audience,
      sub: sandbox.user.subject,
      client_id: "flytectl",
      scope: "all"
    })

    const viaHeaderKey = await userInfo(sandbox, tokens.access_token)
    expect(viaHeaderKey.error).toBeUndefined()
    expect(viaHeaderKey.value).toMatchObject({
      subject: sandbox.user.subject,
      preferred_username: "demo",
      email: "demo@flyte-sandbox.local"
    })
    const viaAuthorization = await userInfo(sandbox, tokens.access_token, "authorization")
    expect(viaAuthorization.value?.subject).toBe(sandbox.user.subject)
    const http = await whoami(sandbox, tokens.access_token, sandbox.headerKey)
    expect(http.status).toBe(200)
    expect(http.json.subject).toBe(sandbox.user.subject)
  })

  it("an extra audience parameter (sent by Flyte clients when configured) is accepted", async () => {
    const { challenge } = pkcePair()
    const url = new URL(authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/callback", challenge }))
    url.searchParams.set("audience", sandbox.audience)
    const redirect = await UserAgent.authorizeRedirect(url, sandbox.user)
    expect(redirect.searchParams.get("code")).toBeTruthy()
  })

  it("with openid: an ID token too, and the access token is still a JWT for the admin", async () => {
    const tokens = await login("openid profile email offline_access all")
    expect(typeof tokens.id_token).toBe("string")
    expect(decodeJwt(tokens.id_token)).toMatchObject({ sub: sandbox.user.subject, aud: "flytectl", name: "Demo User" })
    expect(decodeJwt(tokens.access_token).aud).toBe(sandbox.audience)
    expect((await userInfo(sandbox, tokens.access_token)).value?.subject).toBe(sandbox.user.subject)
  })

  it("refresh tokens rotate; reusing a rotated one is invalid_grant and revokes the grant", async () => {
    const first = await login()
    const second = await refresh(sandbox, first.refresh_token)
    expect(second.status).toBe(200)
    expect(second.json.refresh_token).toBeDefined()
    expect(second.json.refresh_token).not.toBe(first.refresh_token)
    expect(second.json.access_token).not.toBe(first.access_token)
    expect((await userInfo(sandbox, second.json.access_token)).value?.subject).toBe(sandbox.user.subject)

    const third = await refresh(sandbox, second.json.refresh_token)
    expect(third.status).toBe(200)

    const reused = await refresh(sandbox, first.refresh_token)
    expect(reused.status).toBe(400)
    expect(reused.json.error).toBe("invalid_grant")
    // A reused refresh token means it leaked (OAuth 2.0 Security BCP §4.14.2): the whole grant goes, so the newest
    // refresh token of the chain is refused too.
    const newest = await refresh(sandbox, third.json.refresh_token)
    expect(newest.status).toBe(400)
    expect(newest.json.error).toBe("invalid_grant")
  })

  it("without offline_access there is no refresh token", async () => {
    const tokens = await login("all")
    expect(tokens.refresh_token).toBeUndefined()
  })

  it("accepts http://localhost/callback on any port (RFC 8252)", async () => {
    const { challenge } = pkcePair()
    const redirect = await UserAgent.authorizeRedirect(
      authorizeUrl(sandbox, { redirectUri: "http://localhost:53593/callback", challenge, state: "s" }),
      sandbox.user
    )
    expect(redirect.origin).toBe("http://localhost:53593")
    expect(redirect.searchParams.get("code")).toBeTruthy()
  })

  it("rejects a code exchange with the wrong verifier, and a redirect URI with another path", async () => {
    const loopback = await startLoopback()
    try {
      const { challenge } = pkcePair()
      const url = authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge })
      const redirect = await UserAgent.authorizeRedirect(url, sandbox.user)
      const exchange = await exchangeCode(
        sandbox,
        redirect.searchParams.get("code")!,
        loopback.redirectUri,
        pkcePair().verifier
      )
      expect(exchange.status).toBe(400)
      expect(exchange.json.error).toBe("invalid_grant")
    } finally {
      await loopback.close()
    }
    const error = await UserAgent.authorize(
      authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/elsewhere", challenge: pkcePair().challenge }),
      sandbox.user
    ).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UserAgent.UserAgentError)
    expect(error).toMatchObject({ reason: "ErrorPage", error: "invalid_redirect_uri" })
  })

  it("public clients must use PKCE", async () => {
    const url = new URL(authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/callback", challenge: "x" }))
    url.searchParams.delete("code_challenge")
    url.searchParams.delete("code_challenge_method")
    const redirect = await UserAgent.authorizeRedirect(url, sandbox.user)
    expect(redirect.searchParams.get("error")).toBe("invalid_request")
    expect(redirect.searchParams.get("error_description")).toMatch(/PKCE/)
  })

  it("a wrong password shows the login form again with an error", async () => {
    sandbox.resetStats()
    const error = await UserAgent.authorizeRedirect(
      authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/callback", challenge: pkcePair().challenge }),
      { username: "demo", password: "wrong" }
    ).catch((e: unknown) => e)
    expect(error).toMatchObject({ _tag: "UserAgentError", reason: "LoginFailed" })
    const page = (error as UserAgent.UserAgentError).page!
    expect(page).toContain(`name="flyte-sandbox-page" content="login"`)
    expect(page).toContain("Invalid username or password.")
    expect(sandbox.stats()).toMatchObject({ failedLogins: 1, logins: 0 })

    const noCredentials = await UserAgent.authorizeRedirect(
      authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/callback", challenge: pkcePair().challenge })
    ).catch((e: unknown) => e)
    expect(noCredentials).toMatchObject({ reason: "CredentialsRequired" })
  })

  it("deny: cancel at login, or deny at consent, redirects with access_denied", async () => {
    const loopback = await startLoopback()
    try {
      const url = () => authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge: pkcePair().challenge })
      const cancelled = await UserAgent.deny(url())
      expect(cancelled.status).toBe(400)
      expect(new URL(cancelled.callbackUrl).searchParams.get("error")).toBe("access_denied")
      const denied = await UserAgent.authorizeRedirect(url(), undefined).catch((e: unknown) => e)
      expect(denied).toMatchObject({ reason: "CredentialsRequired" })
      const atConsent = await UserAgent.make().deny(url(), sandbox.user)
      expect(new URL(atConsent.callbackUrl).searchParams.get("error")).toBe("access_denied")
    } finally {
      await loopback.close()
    }
  })

  it("a user agent keeps its session: the second authorization needs no password", async () => {
    const agent = UserAgent.make()
    const url = () =>
      authorizeUrl(sandbox, { redirectUri: "http://127.0.0.1:1234/callback", challenge: pkcePair().challenge })
    const first = await agent.authorizeRedirect(url(), sandbox.user)
    expect(first.searchParams.get("code")).toBeTruthy()
    const second = await agent.authorizeRedirect(url())
    expect(second.searchParams.get("code")).toBeTruthy()
    agent.clearCookies()
    await expect(agent.authorizeRedirect(url())).rejects.toMatchObject({ reason: "CredentialsRequired" })
  })

  it("rejectTokensIssuedBefore: the admin refuses held tokens, refreshed ones work", async () => {
    const tokens = await login()
    expect((await userInfo(sandbox, tokens.access_token)).value?.subject).toBe(sandbox.user.subject)
    sandbox.rejectTokensIssuedBefore()
    const rejected = await userInfo(sandbox, tokens.access_token)
    expect(rejected.error?.code).toBe(grpc.status.UNAUTHENTICATED)
    expect((await whoami(sandbox, tokens.access_token)).status).toBe(401)
    expect(sandbox.adminStats().lastAuthFailure).toMatch(/cutoff/)

    const refreshed = await refresh(sandbox, tokens.refresh_token)
    expect((await userInfo(sandbox, refreshed.json.access_token)).value?.subject).toBe(sandbox.user.subject)

    sandbox.acceptAllTokens()
    expect((await userInfo(sandbox, tokens.access_token)).error).toBeUndefined()
  })

  it("UserInfo without, or with a bad, token is UNAUTHENTICATED", async () => {
    const missing = await userInfo(sandbox)
    expect(missing.error?.code).toBe(grpc.status.UNAUTHENTICATED)
    expect(missing.error?.details).toMatch(/missing bearer token/)
    const garbage = await userInfo(sandbox, "not-a-jwt")
    expect(garbage.error?.code).toBe(grpc.status.UNAUTHENTICATED)
    const wrongScheme = await grpcCall(sandbox.adminGrpc, "IdentityService", "UserInfo", {
      [sandbox.headerKey]: "Basic Zm9vOmJhcg=="
    })
    expect(wrongScheme.error?.code).toBe(grpc.status.UNAUTHENTICATED)
    expect(wrongScheme.error?.details).toMatch(/not a Bearer token/)
  })

  it("the token endpoint reports errors as RFC 6749 JSON", async () => {
    const response = await tokenRequest(sandbox, {
      grant_type: "authorization_code",
      code: "nope",
      client_id: "flytectl",
      redirect_uri: "http://127.0.0.1:1234/callback",
      code_verifier: pkcePair().verifier
    })
    expect(response.status).toBe(400)
    expect(response.json.error).toBe("invalid_grant")
  })
})

describe("autoApprove", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({ autoApprove: true })
  })
  afterAll(() => sandbox.close())

  it("the user agent needs no credentials and sees no pages", async () => {
    const loopback = await startLoopback()
    try {
      const { challenge, verifier } = pkcePair()
      const page = await UserAgent.authorize(authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge }))
      expect(page.status).toBe(200)
      const code = (await loopback.received).searchParams.get("code")!
      const tokens = await exchangeCode(sandbox, code, loopback.redirectUri, verifier)
      expect(tokens.status).toBe(200)
      expect(decodeJwt(tokens.json.access_token).sub).toBe(sandbox.user.subject)
      expect(sandbox.stats()).toMatchObject({ logins: 1, consents: 1 })
    } finally {
      await loopback.close()
    }
  })

  it("works for a cookie-less 'browser' (a bare fetch following redirects)", async () => {
    const loopback = await startLoopback()
    try {
      const { challenge, verifier } = pkcePair()
      const response = await fetch(authorizeUrl(sandbox, { redirectUri: loopback.redirectUri, challenge }))
      expect(response.status).toBe(200)
      expect(await response.text()).toContain("Signed in")
      const code = (await loopback.received).searchParams.get("code")!
      expect((await exchangeCode(sandbox, code, loopback.redirectUri, verifier)).status).toBe(200)
    } finally {
      await loopback.close()
    }
  })
})
