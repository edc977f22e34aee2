/**
 * Opening the authorization URL for the user.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import type { AuthenticationError } from "./AuthError.js"

/**
 * Shows the user a URL to log in at. Implementations open the system browser, run a command, or (in tests)
 * hand the URL to a scripted user agent. Opening a browser can fail silently, so the PKCE flow also logs the URL.
 *
 * @since 0.1.0
 * @category tags
 */
export class Browser extends Context.Tag("@flyte-auth/core/Browser")<Browser, Browser.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Browser {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly open: (url: string) => Effect.Effect<void, AuthenticationError>
  }
}

/**
 * A browser driven by a script: `visit` is run in the background (forked into the scope of the flow) with the
 * URL, as a user would act on it. Use it with a user agent that logs in through the IdP's pages.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerScripted = (visit: (url: string) => Effect.Effect<unknown, unknown>): Layer.Layer<Browser> =>
  Layer.succeed(Browser, {
    open: (url) => Effect.asVoid(Effect.forkDaemon(Effect.ignoreLogged(visit(url))))
  })

/**
 * A browser that only records the URLs it was asked to open (and never visits them).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRecording: Effect.Effect<
  { readonly service: Browser.Service; readonly opened: Ref.Ref<Array<string>> }
> = Effect.map(Ref.make<Array<string>>([]), (opened) => ({
  opened,
  service: { open: (url) => Ref.update(opened, (urls) => [...urls, url]) }
}))
