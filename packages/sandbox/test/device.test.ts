import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Sandbox } from "@flyte-auth/sandbox"
import { startSandbox, UserAgent } from "@flyte-auth/sandbox"
import { decodeJwt, pollDevice, refresh, startDevice, userInfo } from "./helpers.js"

describe("device authorization grant", () => {
  let sandbox: Sandbox.Service
  beforeAll(async () => {
    sandbox = await startSandbox({ devicePollIntervalSeconds: 1 })
  })
  afterAll(() => sandbox.close())

  it("device authorization response carries the codes, URIs and interval", async () => {
    const { json, status } = await startDevice(sandbox)
    expect(status).toBe(200)
    expect(json).toMatchObject({
      verification_uri: `${sandbox.issuer}/device`,
      expires_in: 600,
      interval: 1
    })
    expect(json.user_code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/)
    expect(json.verification_uri_complete).toBe(`${sandbox.issuer}/device?user_code=${json.user_code}`)
    expect(typeof json.device_code).toBe("string")
  })

  it("approve via verification_uri_complete: pending, then tokens (with a refresh token)", async () => {
    sandbox.resetStats()
    const { json: device } = await startDevice(sandbox)
    const pending = await pollDevice(sandbox, device.device_code)
    expect(pending.status).toBe(400)
    expect(pending.json.error).toBe("authorization_pending")

    const result = await UserAgent.approveDevice(
      { verificationUriComplete: device.verification_uri_complete },
      sandbox.user
    )
    expect(result.outcome).toBe("approved")
    expect(result.body).toContain("Device signed in")

    const tokens = await pollDevice(sandbox, device.device_code)
    expect(tokens.status).toBe(200)
    expect(decodeJwt(tokens.json.access_token)).toMatchObject({ sub: sandbox.user.subject, aud: sandbox.audience })
    expect(typeof tokens.json.refresh_token).toBe("string")
    expect((await userInfo(sandbox, tokens.json.access_token)).value?.subject).toBe(sandbox.user.subject)
    const refreshed = await refresh(sandbox, tokens.json.refresh_token)
    expect(refreshed.status).toBe(200)

    const again = await pollDevice(sandbox, device.device_code)
    expect(again.json.error).toBe("invalid_grant")
    expect(sandbox.stats()).toMatchObject({
      deviceAuthorizationRequests: 1,
      tokenRequests: { device_code: 3, refresh_token: 1 },
      tokenErrors: { device_code: 2 }
    })
  })

  it("approve via verification_uri + typed user code", async () => {
    const { json: device } = await startDevice(sandbox)
    const typed = device.user_code.toLowerCase().replace("-", " ")
    const result = await UserAgent.approveDevice(
      { verificationUri: device.verification_uri, userCode: typed },
      sandbox.user
    )
    expect(result.outcome).toBe("approved")
    expect((await pollDevice(sandbox, device.device_code)).status).toBe(200)
  })

  it("deny: abort on the confirmation page → access_denied", async () => {
    const { json: device } = await startDevice(sandbox)
    const result = await UserAgent.denyDevice({ verificationUriComplete: device.verification_uri_complete })
    expect(result.outcome).toBe("denied")
    const poll = await pollDevice(sandbox, device.device_code)
    expect(poll.status).toBe(400)
    expect(poll.json.error).toBe("access_denied")
  })

  it("deny at consent after signing in → access_denied", async () => {
    const { json: device } = await startDevice(sandbox)
    const result = await UserAgent.denyDevice(
      { verificationUriComplete: device.verification_uri_complete },
      sandbox.user
    )
    expect(result.outcome).toBe("denied")
    expect((await pollDevice(sandbox, device.device_code)).json.error).toBe("access_denied")
  })

  it("an unknown or already used code is rejected on the page", async () => {
    await expect(
      UserAgent.approveDevice({ verificationUri: `${sandbox.issuer}/device`, userCode: "BCDF-GHJK" }, sandbox.user)
    ).rejects.toMatchObject({ reason: "DeviceCodeRejected" })

    const { json: device } = await startDevice(sandbox)
    await UserAgent.approveDevice({ verificationUriComplete: device.verification_uri_complete }, sandbox.user)
    await expect(
      UserAgent.approveDevice({ verificationUriComplete: device.verification_uri_complete }, sandbox.user)
    ).rejects.toMatchObject({ reason: "DeviceCodeRejected" })
  })
})

describe("device flow options", () => {
  it("enforceDevicePollInterval answers too-fast polls with slow_down", async () => {
    const sandbox = await startSandbox({ devicePollIntervalSeconds: 1, enforceDevicePollInterval: true })
    try {
      const { json: device } = await startDevice(sandbox)
      expect((await pollDevice(sandbox, device.device_code)).json.error).toBe("authorization_pending")
      expect((await pollDevice(sandbox, device.device_code)).json.error).toBe("slow_down")
    } finally {
      await sandbox.close()
    }
  })

  it("autoApprove: the user agent approves without credentials", async () => {
    const sandbox = await startSandbox({ autoApprove: true })
    try {
      const { json: device } = await startDevice(sandbox)
      const result = await UserAgent.approveDevice({ verificationUriComplete: device.verification_uri_complete })
      expect(result.outcome).toBe("approved")
      expect((await pollDevice(sandbox, device.device_code)).status).toBe(200)
    } finally {
      await sandbox.close()
    }
  })
})
