/**
 * What the redaction audit collects: every log line (with annotations, spans and causes), every tracing span
 * (name, attributes, events, how it ended), every secret that went over the wire (read from the requests by a
 * recording `HttpClient`), and any other text a test adds (error renderings, pages, CLI stderr).
 */
import { HttpClient } from "@effect/platform"
import { TokenClient } from "@flyte-auth/core"
import { Cause, Effect, Encoding, Exit, Inspectable, Layer, Logger, LogLevel, Option, Redacted, Tracer } from "effect"

export interface Audit {
  /** Everything that may reach a person or a log pipeline. */
  readonly texts: Array<string>
  /** Secret values by kind (`access_token`, `code_verifier`, ...). */
  readonly secrets: Map<string, Set<string>>
  readonly addSecret: (kind: string, value: string | Redacted.Redacted<string> | undefined) => void
  readonly addText: (text: string) => void
  /** Every rendering of a failure a caller may print. */
  readonly addExit: (exit: Exit.Exit<unknown, unknown>) => void
  /** Logger (all levels), tracer and the recording of requests, for the effect under audit. */
  readonly instrument: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Wraps the `HttpClient` in context so that every secret sent in a form or a Basic header is recorded. */
  readonly recordRequests: <E, R>(
    transport: Layer.Layer<HttpClient.HttpClient, E, R>
  ) => Layer.Layer<HttpClient.HttpClient, E, R>
  /** The secrets (as sent, form-encoded and URI-encoded) found in the collected texts, with where. */
  readonly leaks: () => Array<{ readonly kind: string; readonly text: string }>
}

/** Form fields whose values are secrets. */
const secretFields = ["code", "code_verifier", "refresh_token", "device_code", "client_secret"]

export const makeAudit = (): Audit => {
  const texts: Array<string> = []
  const secrets = new Map<string, Set<string>>()
  const addSecret = (kind: string, value: string | Redacted.Redacted<string> | undefined) => {
    if (value === undefined) return
    const text = Redacted.isRedacted(value) ? Redacted.value(value) : value
    if (text === "") return
    if (!secrets.has(kind)) secrets.set(kind, new Set())
    secrets.get(kind)!.add(text)
  }
  const addText = (text: string) => {
    texts.push(text)
  }
  const addExit = (exit: Exit.Exit<unknown, unknown>) => {
    addText(String(exit))
    addText(Inspectable.format(exit))
    if (Exit.isFailure(exit)) {
      addText(Cause.pretty(exit.cause, { renderErrorCause: true }))
      for (const error of Cause.failures(exit.cause)) {
        addText(String(error))
        addText(JSON.stringify(error))
        if (error instanceof Error) {
          addText(error.message)
          addText(error.stack ?? "")
        }
      }
      const squashed = Cause.squash(exit.cause)
      addText(String(squashed))
    } else {
      addText(JSON.stringify(exit.value))
    }
  }

  const logger = Logger.make((options) => {
    addText(Logger.logfmtLogger.log(options))
    addText(JSON.stringify(Logger.structuredLogger.log(options)))
    addText(Cause.pretty(options.cause, { renderErrorCause: true }))
  })

  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const attributes = new Map<string, unknown>(Object.entries(options?.attributes ?? {}))
      addText(`span ${name} ${Inspectable.format(Object.fromEntries(attributes))}`)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: Math.random().toString(16).slice(2),
        traceId: Option.isSome(parent) ? parent.value.traceId : "audit",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links,
        sampled: true,
        kind,
        end: (_endTime, exit) => {
          // What an exporter records: the status, and for a failure its cause (a success value, e.g. an HTTP
          // response whose body is still to be read, is not touched).
          addText(`span end ${name} ${exit._tag}`)
          if (Exit.isFailure(exit)) addExit(exit)
        },
        attribute: (key, value) => {
          attributes.set(key, value)
          addText(`span ${name} attribute ${key}=${Inspectable.format(value)}`)
        },
        event: (eventName, _time, eventAttributes) =>
          addText(`span ${name} event ${eventName} ${Inspectable.format(eventAttributes ?? {})}`),
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })

  const recordRequest = (request: { readonly body: unknown; readonly headers: Record<string, string> }) =>
    Effect.sync(() => {
      const body = request.body as { readonly _tag: string; readonly body?: Uint8Array }
      if (body._tag === "Uint8Array" && body.body !== undefined) {
        const form = new URLSearchParams(new TextDecoder().decode(body.body))
        for (const field of secretFields) addSecret(field, form.get(field) ?? undefined)
      }
      const authorization = request.headers.authorization
      if (authorization !== undefined && authorization.startsWith("Basic ")) {
        const encoded = authorization.slice("Basic ".length)
        addSecret("basic_credentials", encoded)
        const decoded = Encoding.decodeBase64String(encoded)
        if (decoded._tag === "Right") {
          const secret = decoded.right.slice(decoded.right.indexOf(":") + 1)
          addSecret("client_secret", decodeURIComponent(secret.replace(/\+/g, " ")))
        }
      }
    })

  return {
    texts,
    secrets,
    addSecret,
    addText,
    addExit,
    instrument: (effect) =>
      effect.pipe(
        Logger.withMinimumLogLevel(LogLevel.All),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Effect.withTracer(tracer)
      ),
    recordRequests: (transport) =>
      Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, HttpClient.tapRequest(recordRequest))
      ).pipe(Layer.provide(transport)),
    leaks: () => {
      const found: Array<{ kind: string; text: string }> = []
      for (const [kind, values] of secrets) {
        for (const value of values) {
          const forms = new Set([value, TokenClient.formEncode(value), encodeURIComponent(value)])
          for (const text of texts) {
            for (const form of forms) {
              if (text.includes(form)) found.push({ kind, text: text.slice(0, 400) })
            }
          }
        }
      }
      return found
    }
  }
}
