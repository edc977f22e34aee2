/**
 * Minimal typings for the parts of `oidc-provider` (v9, untyped JavaScript) that the sandbox uses.
 *
 * The sandbox imports `oidc-provider/lib/provider.js` rather than the package entry point: the entry point only
 * re-exports `Provider` and prints a runtime notice on Node.js versions older than 22 LTS, which would break the
 * "quiet by default" rule on Node 20 (which this workspace supports).
 */
declare module "oidc-provider/lib/provider.js" {
  import type { IncomingMessage, ServerResponse } from "node:http"

  export interface KoaContext {
    readonly req: IncomingMessage
    readonly res: ServerResponse
    readonly method: string
    path: string
    querystring: string
    readonly query: Record<string, string | Array<string> | undefined>
    readonly headers: Record<string, string | Array<string> | undefined>
    status: number
    body: unknown
    type: string
    respond?: boolean
    redirect(url: string): void
    set(field: string, value: string): void
    get(field: string): string
    readonly oidc?: any
  }

  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>

  export interface InteractionDetails {
    readonly uid: string
    readonly returnTo: string
    readonly prompt: {
      readonly name: string
      readonly reasons: ReadonlyArray<string>
      readonly details: {
        readonly missingOIDCScope?: ReadonlyArray<string>
        readonly missingOIDCClaims?: ReadonlyArray<string>
        readonly missingResourceScopes?: Readonly<Record<string, ReadonlyArray<string>>>
        readonly [key: string]: unknown
      }
    }
    readonly params: Readonly<Record<string, unknown>>
    readonly session?: { readonly accountId?: string; readonly uid?: string }
    readonly grantId?: string
    readonly deviceCode?: string
  }

  export interface GrantInstance {
    addOIDCScope(scope: string): void
    addOIDCClaims(claims: ReadonlyArray<string>): void
    addResourceScope(resource: string, scope: string): void
    save(): Promise<string>
  }

  export interface GrantStatic {
    new(properties: { accountId: string; clientId: string }): GrantInstance
    find(id: string): Promise<GrantInstance | undefined>
  }

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    readonly issuer: string
    proxy: boolean
    silent: boolean
    readonly Grant: GrantStatic
    use(middleware: Middleware): this
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    on(event: string, listener: (...args: Array<any>) => void): this
    urlFor(name: string, options?: Record<string, string>): string
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>
    interactionResult(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean }
    ): Promise<string>
  }
}

declare module "oidc-provider/lib/helpers/errors.js" {
  export class InvalidTarget extends Error {
    constructor(description?: string, detail?: string)
  }
}
