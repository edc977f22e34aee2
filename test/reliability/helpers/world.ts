/**
 * The world the reliability suites run in: the sandbox IdP, the fault proxy in front of it, and one builder per
 * flow that yields an `Authenticator` whose token and device endpoints go through the proxy.
 */
import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import {
  Authenticator,
  type AuthError,
  Browser,
  ClientConfig,
  Credentials,
  DevicePrompt,
  Flows,
  Keyring,
  Pkce
} from "@flyte-auth/core"
import { NodeCommandRunner, NodeLoopbackServer } from "@flyte-auth/node"
import { type Sandbox, startSandbox, UserAgent } from "@flyte-auth/sandbox"
import { Context, DateTime, Duration, Effect, Layer, Option, Redacted, Ref, type Scope, TestServices } from "effect"
import { type FaultProxy, startFaultProxy } from "./faultProxy.js"

export interface World {
  readonly sandbox: Sandbox.Service
  readonly proxy: FaultProxy
  /** The public client's configuration, with the token and device endpoints behind the proxy. */
  readonly config: ClientConfig.ClientConfig
  /** The token endpoint's path (what proxy rules match). */
  readonly tokenPath: string
  readonly devicePath: string
  /** The keyring account of every flow. */
  readonly endpoint: string
  readonly close: () => Promise<void>
}

export const startWorld = async (options: { readonly tokenTtlSeconds?: number } = {}): Promise<World> => {
  const sandbox = await startSandbox({ devicePollIntervalSeconds: 1, ...options })
  const proxy = await startFaultProxy(sandbox.issuer)
  const deviceAuthorization = sandbox.endpoints.deviceAuthorization!
  return {
    sandbox,
    proxy,
    config: new ClientConfig.ClientConfig({
      tokenEndpoint: proxy.url(sandbox.endpoints.token),
      deviceAuthorizationEndpoint: proxy.url(deviceAuthorization),
      authorizationEndpoint: sandbox.endpoints.authorization,
      redirectUri: "http://127.0.0.1:0/callback",
      clientId: sandbox.clients.public.clientId,
      scopes: [...sandbox.scopes],
      audience: sandbox.audience,
      headerKey: sandbox.headerKey
    }),
    tokenPath: new URL(sandbox.endpoints.token).pathname,
    devicePath: new URL(deviceAuthorization).pathname,
    endpoint: sandbox.adminHttp,
    close: async () => {
      await proxy.close()
      await sandbox.close()
    }
  }
}

/** The flows run through the faults. */
export type FlowName =
  | "client credentials"
  | "device authorization"
  | "device poll"
  | "PKCE code exchange"
  | "refresh"

export const flowNames: ReadonlyArray<FlowName> = [
  "client credentials",
  "device authorization",
  "device poll",
  "PKCE code exchange",
  "refresh"
]

/** A browser that signs the demo user in and allows, in the background; it records every URL it opened. */
export const sandboxBrowser = (sandbox: Sandbox.Service, opened?: Ref.Ref<ReadonlyArray<string>>) =>
  Browser.layerScripted((url) =>
    Effect.zipRight(
      opened === undefined ? Effect.void : Ref.update(opened, (all) => [...all, url]),
      Effect.tryPromise(() => UserAgent.authorize(url, sandbox.user))
    )
  )

/** A device prompt that approves the code on the "other device" before the flow starts polling. */
export const approvingPrompt = (sandbox: Sandbox.Service) =>
  Layer.succeed(DevicePrompt.DevicePrompt, {
    show: (prompt) =>
      Effect.promise(() =>
        UserAgent.approveDevice(
          prompt.verificationUriComplete !== undefined
            ? { verificationUriComplete: prompt.verificationUriComplete }
            : { verificationUri: prompt.verificationUri, userCode: prompt.userCode },
          sandbox.user
        )
      ).pipe(Effect.asVoid)
  })

/** Reads the raw keyring entry of the world's endpoint (of whichever client: one flow per keyring). */
export const entryOf = (keyring: Keyring.Keyring.Service, world: World) =>
  Effect.gen(function*() {
    const accounts = (yield* keyring.accounts(Keyring.serviceName)).filter((account) =>
      Credentials.parseKeyringAccount(account).endpoint === world.endpoint
    )
    if (accounts.length > 1) return yield* Effect.die(`several entries for ${world.endpoint}: ${accounts.join(", ")}`)
    return accounts.length === 0
      ? undefined
      : Option.getOrUndefined(yield* keyring.get(Keyring.serviceName, accounts[0]))
  }).pipe(Effect.orDie)

/**
 * Logs the demo user in with PKCE straight at the sandbox (not through the proxy), on the live clock, and stores
 * the credentials in `keyring` as already expired: the next `credentials` call must use the refresh token.
 */
export const seedExpired = (world: World, keyring: Keyring.Keyring.Service) =>
  Effect.gen(function*() {
    const direct = new ClientConfig.ClientConfig({ ...world.config, tokenEndpoint: world.sandbox.endpoints.token })
    const fresh = yield* Pkce.authenticate({ endpoint: world.endpoint, config: direct }).pipe(
      Effect.provide(
        Layer.mergeAll(NodeLoopbackServer.layer, sandboxBrowser(world.sandbox), NodeHttpClient.layerUndici)
      ),
      TestServices.provideLive
    )
    const now = yield* DateTime.now
    const expired = new Credentials.Credentials({
      ...fresh,
      obtainedAt: DateTime.subtractDuration(now, Duration.hours(1)),
      expiresAt: DateTime.subtractDuration(now, Duration.minutes(1))
    })
    const entry = yield* Effect.orDie(Credentials.encodeKeyringEntry(expired))
    yield* Effect.orDie(keyring.set(Keyring.serviceName, Credentials.keyringAccount(world.endpoint, undefined), entry))
    return expired
  })

export interface FlowSetup {
  readonly auth: Authenticator.Authenticator.Service
  readonly keyring: Keyring.Keyring.Service
  /** URLs a browser was asked to open. */
  readonly opened: Ref.Ref<ReadonlyArray<string>>
  /** The credentials stored before the flow ran (the refresh flow only). */
  readonly seeded: Credentials.Credentials | undefined
}

/**
 * Builds, in the current scope, the `Authenticator` that runs `flow` through the proxy with a memory keyring.
 * `transport` is the HTTP client every OAuth call goes through; `browser` replaces the recording sandbox browser.
 */
export const setupFlow = (
  world: World,
  flow: FlowName,
  transport: Layer.Layer<HttpClient.HttpClient, unknown>,
  browser?: Layer.Layer<Browser.Browser>
): Effect.Effect<FlowSetup, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const keyring = yield* Keyring.makeMemory
    const opened = yield* Ref.make<ReadonlyArray<string>>([])
    const seeded = flow === "refresh" ? yield* seedExpired(world, keyring) : undefined
    const base = Layer.mergeAll(
      transport,
      Layer.succeed(Keyring.Keyring, keyring),
      ClientConfig.layerStatic(world.config),
      NodeLoopbackServer.layer,
      NodeCommandRunner.layer,
      browser ?? sandboxBrowser(world.sandbox, opened),
      approvingPrompt(world.sandbox)
    )
    const { sandbox, endpoint } = world
    const authenticator: Layer.Layer<
      Authenticator.Authenticator,
      AuthError.AuthenticationError,
      Layer.Layer.Success<typeof base>
    > = flow === "client credentials"
      ? Flows.layerFromMode("ClientSecret", {
        endpoint,
        clientId: sandbox.clients.confidential.clientId,
        clientSecret: Redacted.make(sandbox.clients.confidential.clientSecret)
      })
      : flow === "device authorization" || flow === "device poll"
      ? Flows.layerFromMode("DeviceFlow", { endpoint })
      : Flows.layerFromMode("Pkce", { endpoint })
    const context = yield* Layer.build(Layer.provide(authenticator, base))
    return { auth: Context.get(context, Authenticator.Authenticator), keyring, opened, seeded }
  })
