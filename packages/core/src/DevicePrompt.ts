/**
 * Telling the user where to approve a device-flow login.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * What the user must do: open `verificationUriComplete` if present, else `verificationUri` and type `userCode`.
 * The user code is not a secret (it is meant to be shown); the device code never reaches the prompt.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceCodePrompt {
  readonly verificationUri: string
  readonly verificationUriComplete?: string | undefined
  readonly userCode: string
  readonly expiresIn: Duration.Duration
}

/**
 * Shows the device-flow prompt to the user (stderr in the CLI, a callback in the facade).
 *
 * @since 0.1.0
 * @category tags
 */
export class DevicePrompt extends Context.Tag("@flyte-auth/core/DevicePrompt")<DevicePrompt, DevicePrompt.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace DevicePrompt {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly show: (prompt: DeviceCodePrompt) => Effect.Effect<void>
  }
}

/**
 * The text a person should see for a prompt: the complete URI when the server gave one (no code to type),
 * otherwise the URI and the code.
 *
 * @since 0.1.0
 * @category utils
 */
export const format = (prompt: DeviceCodePrompt): string =>
  prompt.verificationUriComplete !== undefined
    ? `To log in, open ${prompt.verificationUriComplete} (code ${prompt.userCode}) on any device.`
    : `To log in, open ${prompt.verificationUri} on any device and enter the code ${prompt.userCode}.`

/**
 * A prompt that logs the instructions at `Info` level.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLog: Layer.Layer<DevicePrompt> = Layer.succeed(DevicePrompt, {
  show: (prompt) => Effect.logInfo(format(prompt))
})

/**
 * A prompt that hands the instructions to a script (a simulated second device in tests and the demo).
 * The script runs in the background, so the flow goes on polling.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerScripted = (
  approve: (prompt: DeviceCodePrompt) => Effect.Effect<unknown, unknown>
): Layer.Layer<DevicePrompt> =>
  Layer.succeed(DevicePrompt, {
    show: (prompt) => Effect.asVoid(Effect.forkDaemon(Effect.ignoreLogged(approve(prompt))))
  })
