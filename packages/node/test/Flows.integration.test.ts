/**
 * The Device Code, Client Credentials and External Command flows against the real sandbox IdP (oidc-provider),
 * over real HTTP (undici), with real processes; the tokens are then presented to the sandbox admin's protected
 * HTTP route.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  Authenticator,
  Browser,
  ClientConfig,
  ClientCredentials,
  DeviceCode,
  DevicePrompt,
  ExternalCommand,
  Flows,
  Keyring
} from "@flyte-auth/core"
import { NodeCommandRunner, NodeLoopbackServer } from "@flyte-auth/node"
import { type Sandbox, startSandbox, UserAgent } from "@flyte-auth/sandbox"
import { DateTime, Effect, Layer, Redacted } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

let sandbox: Sandbox.Service
let config: ClientConfig.ClientConfig
let dir: string

beforeAll(async () => {
  sandbox = await startSandbox({ devicePollIntervalSeconds: 1, enforceDevicePollInterval: true })
  config = new ClientConfig.ClientConfig({
    tokenEndpoint: sandbox.endpoints.token,
    deviceAuthorizationEndpoint: sandbox.endpoints.deviceAuthorization,
    clientId: sandbox.clients.public.clientId,
    scopes: [...sandbox.scopes],
    audience: sandbox.audience
  })
  dir = mkdtempSync(join(tmpdir(), "flyte-auth-flows-"))
})
afterAll(async () => {
  await sandbox?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

/** What the sandbox admin's protected HTTP route says about a token. */
const whoami = (token: Redacted.Redacted<string>) =>
  Effect.promise(async () => {
    const response = await fetch(`${sandbox.adminHttp}/api/v1/whoami`, {
      headers: { [sandbox.headerKey]: `Bearer ${Redacted.value(token)}` }
    })
    return { status: response.status, json: await response.json() as Record<string, unknown> }
  })

const clientCredentials = () =>
  ClientCredentials.authenticate({
    endpoint: sandbox.adminHttp,
    config,
    clientId: sandbox.clients.confidential.clientId,
    clientSecret: Redacted.make(sandbox.clients.confidential.clientSecret)
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))

describe("flows against the sandbox IdP", () => {
  it.live("device flow: the user approves on another device, the token is accepted by the admin", () =>
    Effect.gen(function*() {
      sandbox.resetStats()
      const shown: Array<DevicePrompt.DeviceCodePrompt> = []
      const prompt = DevicePrompt.layerScripted((p) =>
        Effect.sync(() => shown.push(p)).pipe(
          Effect.zipRight(Effect.tryPromise(() =>
            UserAgent.approveDevice({ verificationUriComplete: p.verificationUriComplete! }, sandbox.user)
          ))
        )
      )
      const credentials = yield* DeviceCode.authenticate({ endpoint: sandbox.adminHttp, config }).pipe(
        Effect.provide(Layer.merge(NodeHttpClient.layerUndici, prompt))
      )
      expect(shown).toHaveLength(1)
      expect(shown[0].verificationUriComplete).toContain(shown[0].userCode)
      expect(credentials.refreshToken).toBeDefined()
      expect(DateTime.toEpochMillis(credentials.expiresAt!)).toBeGreaterThan(Date.now())

      const me = yield* whoami(credentials.accessToken)
      expect(me.status).toBe(200)
      expect(me.json.subject).toBe(sandbox.user.subject)

      const stats = sandbox.stats()
      expect(stats.deviceAuthorizationRequests).toBe(1)
      // polled until approved: every poll but the last one was answered with an error (pending)
      expect(stats.tokenRequests.device_code).toBeGreaterThanOrEqual(1)
      expect(stats.tokenErrors.device_code).toBe(stats.tokenRequests.device_code - 1)
    }))

  it.live("device flow: two polls answered 503 by the IdP do not end the login", () =>
    Effect.gen(function*() {
      sandbox.resetStats()
      const prompt = DevicePrompt.layerScripted((p) =>
        Effect.sync(() => sandbox.failNextTokenRequests(2)).pipe(
          Effect.zipRight(
            Effect.tryPromise(() =>
              UserAgent.approveDevice({ verificationUriComplete: p.verificationUriComplete! }, sandbox.user)
            )
          )
        )
      )
      const credentials = yield* DeviceCode.authenticate({ endpoint: sandbox.adminHttp, config }).pipe(
        Effect.provide(Layer.merge(NodeHttpClient.layerUndici, prompt))
      )
      expect((yield* whoami(credentials.accessToken)).status).toBe(200)
      expect(sandbox.stats().injectedTokenFailures).toBe(2)
    }))

  it.live("device flow: the user denies, the flow fails with AccessDenied", () =>
    Effect.gen(function*() {
      const prompt = DevicePrompt.layerScripted((p) =>
        Effect.tryPromise(() => UserAgent.denyDevice({ verificationUri: p.verificationUri, userCode: p.userCode }))
      )
      const error = yield* DeviceCode.authenticate({ endpoint: sandbox.adminHttp, config }).pipe(
        Effect.provide(Layer.merge(NodeHttpClient.layerUndici, prompt)),
        Effect.flip
      )
      expect(error._tag).toBe("AuthenticationError")
      expect(error.reason).toBe("AccessDenied")
      expect(error.error).toBe("access_denied")
    }))

  it.live("client credentials: the token is accepted by the admin's protected route", () =>
    Effect.gen(function*() {
      const credentials = yield* clientCredentials()
      expect(credentials.refreshToken).toBeUndefined()
      expect(credentials.expiresAt).toBeDefined()
      const me = yield* whoami(credentials.accessToken)
      expect(me.status).toBe(200)
      expect(me.json.client_id).toBe(sandbox.clients.confidential.clientId)

      const refused = yield* ClientCredentials.authenticate({
        endpoint: sandbox.adminHttp,
        config,
        clientId: sandbox.clients.confidential.clientId,
        clientSecret: Redacted.make("wrong-secret")
      }).pipe(Effect.provide(NodeHttpClient.layerUndici), Effect.flip)
      expect(refused.reason).toBe("OAuthError")
      expect(refused.error).toBe("invalid_client")
      expect(refused.message).not.toContain("wrong-secret")
    }))

  it.live("external command: a process prints a token, which the admin accepts", () =>
    Effect.gen(function*() {
      const issued = yield* clientCredentials()
      const tokenFile = join(dir, "token.txt")
      writeFileSync(tokenFile, `${Redacted.value(issued.accessToken)}\n`, { mode: 0o600 })
      const credentials = yield* ExternalCommand.authenticate({
        endpoint: sandbox.adminHttp,
        command: [
          process.execPath,
          "-e",
          "process.stdout.write(require('fs').readFileSync(process.argv[1], 'utf8'))",
          tokenFile
        ]
      }).pipe(Effect.provide(NodeCommandRunner.layer))
      expect(Redacted.value(credentials.accessToken)).toBe(Redacted.value(issued.accessToken))
      // the JWT's exp gives the expiry
      expect(credentials.expiresAt).toBeDefined()
      const me = yield* whoami(credentials.accessToken)
      expect(me.status).toBe(200)
      expect(me.json.client_id).toBe(sandbox.clients.confidential.clientId)
    }))
})

describe("Flows: the Pkce mode without a browser (deviceFlowWithoutBrowser)", () => {
  /** A Pkce login whose browser is the sandbox's user agent; `device` says whether the config has the device endpoint. */
  const login = (device: boolean, prompt: Layer.Layer<DevicePrompt.DevicePrompt> | undefined) => {
    const pkceConfig = new ClientConfig.ClientConfig({
      ...config,
      authorizationEndpoint: sandbox.endpoints.authorization,
      redirectUri: "http://127.0.0.1:0/callback",
      deviceAuthorizationEndpoint: device ? sandbox.endpoints.deviceAuthorization : undefined
    })
    const opened: Array<string> = []
    const browser = Browser.layerScripted((url) =>
      Effect.sync(() => opened.push(url)).pipe(
        Effect.zipRight(Effect.tryPromise(() => UserAgent.authorize(url, sandbox.user)))
      )
    )
    const services = Layer.mergeAll(
      Keyring.layerMemory,
      ClientConfig.layerStatic(pkceConfig),
      NodeHttpClient.layerUndici,
      browser,
      NodeLoopbackServer.layer,
      prompt ?? Layer.empty
    )
    return Effect.flatMap(Authenticator.Authenticator, (auth) => auth.credentials).pipe(
      Effect.provide(
        Flows.layerFromMode("Pkce", {
          endpoint: sandbox.adminHttp,
          deviceFlowWithoutBrowser: { because: "there is no display", hint: "pin Pkce to keep it" }
        }).pipe(Layer.provide(services))
      ),
      Effect.map((credentials) => ({ credentials, opened }))
    )
  }
  const approving = DevicePrompt.layerScripted((p) =>
    Effect.tryPromise(() =>
      UserAgent.approveDevice({ verificationUriComplete: p.verificationUriComplete! }, sandbox.user)
    )
  )

  it.live("with a device endpoint and a prompt: the device flow, recorded as DeviceFlow; no browser opened", () =>
    Effect.gen(function*() {
      const { credentials, opened } = yield* login(true, approving)
      expect(credentials.authMode).toBe("DeviceFlow")
      expect(opened).toEqual([])
    }))

  it.live("without a device endpoint, or without a DevicePrompt: the PKCE login", () =>
    Effect.gen(function*() {
      for (const [device, prompt] of [[false, approving], [true, undefined]] as const) {
        const { credentials, opened } = yield* login(device, prompt)
        expect(credentials.authMode).not.toBe("DeviceFlow")
        expect(opened).toHaveLength(1)
      }
    }))
})
