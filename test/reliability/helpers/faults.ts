/**
 * The catalogue of faults every flow is run through (the rows of SECURITY.md's fault table).
 */
import type { AuthError } from "@flyte-auth/core"
import { hugeJson } from "./faultProxy.js"
import type { Fault } from "./faultProxy.js"

export interface FaultCase {
  readonly name: string
  readonly fault: Fault
  /**
   * A transient fault is injected once: an idempotent call (client credentials) must succeed after a backed-off
   * retry; any other call fails typed and leaves the keyring alone.
   * A persistent fault is injected on every request.
   */
  readonly transient: boolean
  /** Which client timeout ends the fault: the transport's response timeout, or the whole-call `httpTimeout`. */
  readonly waitsFor?: "responseTimeout" | "httpTimeout"
  /** The typed reasons a failing flow may end with. */
  readonly reasons: ReadonlyArray<AuthError.AuthenticationErrorReason>
  /** Text the error message must contain (it says what went wrong). */
  readonly message?: string
  /** The answer is still usable (only its label is wrong): every flow succeeds. */
  readonly usable?: true
}

const html = "<!doctype html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"

export const faultCases: ReadonlyArray<FaultCase> = [
  {
    name: "HTTP 500, text body, no Retry-After",
    fault: { _tag: "Status", status: 500, contentType: "text/plain", body: "Internal Server Error" },
    transient: true,
    reasons: ["InvalidResponse"]
  },
  {
    name: "HTTP 500 with Retry-After: 120",
    fault: { _tag: "Status", status: 500, contentType: "text/plain", body: "Internal Server Error", retryAfter: "120" },
    transient: true,
    reasons: ["InvalidResponse"]
  },
  {
    name: "HTTP 503 temporarily_unavailable, no Retry-After",
    fault: { _tag: "Status", status: 503 },
    transient: true,
    reasons: ["OAuthError"]
  },
  {
    name: "HTTP 503 with Retry-After: 3600",
    fault: { _tag: "Status", status: 503, retryAfter: "3600" },
    transient: true,
    reasons: ["OAuthError"]
  },
  {
    name: "no answer at all (delay past the response timeout)",
    fault: { _tag: "StallBeforeHeaders" },
    transient: true,
    waitsFor: "responseTimeout",
    reasons: ["Transport"],
    message: "no response within 5s"
  },
  {
    name: "body stalls after the headers",
    fault: { _tag: "StallMidBody" },
    transient: true,
    waitsFor: "httpTimeout",
    reasons: ["Transport"],
    message: "did not answer in time (30s)"
  },
  {
    name: "connection reset before the answer",
    fault: { _tag: "ResetBeforeResponse" },
    transient: true,
    reasons: ["Transport"],
    message: "Could not reach"
  },
  {
    name: "connection reset mid-answer",
    fault: { _tag: "ResetMidResponse" },
    transient: true,
    reasons: ["Transport"],
    message: "broke off"
  },
  {
    name: "truncated body (connection closed before content-length)",
    fault: { _tag: "TruncatedConnection" },
    transient: true,
    reasons: ["Transport"],
    message: "broke off"
  },
  {
    name: "HTML error page with HTTP 502",
    fault: { _tag: "Replace", status: 502, contentType: "text/html", body: html },
    transient: true,
    reasons: ["InvalidResponse"]
  },
  {
    name: "truncated JSON in a well-formed answer",
    fault: { _tag: "TruncatedJson" },
    transient: false,
    reasons: ["InvalidResponse"]
  },
  {
    name: "HTML page with HTTP 200 (captive portal)",
    fault: { _tag: "Replace", contentType: "text/html", body: html.replace("502 Bad Gateway", "Sign in") },
    transient: false,
    reasons: ["InvalidResponse"]
  },
  {
    name: "non-JSON text with HTTP 200",
    fault: { _tag: "Replace", contentType: "text/plain", body: "OK access granted" },
    transient: false,
    reasons: ["InvalidResponse"]
  },
  {
    name: "empty body with HTTP 200",
    fault: { _tag: "Replace", contentType: "application/json", body: "" },
    transient: false,
    reasons: ["InvalidResponse"]
  },
  {
    name: "10 MB JSON body",
    fault: { _tag: "Replace", contentType: "application/json", body: hugeJson() },
    transient: false,
    reasons: ["InvalidResponse"],
    message: "larger than 1048576 bytes"
  },
  {
    name: "HTML labelled application/json",
    fault: { _tag: "Replace", contentType: "application/json", body: html },
    transient: false,
    reasons: ["InvalidResponse"]
  },
  {
    name: "valid JSON labelled text/html (wrong content type)",
    fault: { _tag: "ContentType", contentType: "text/html; charset=iso-8859-1" },
    transient: false,
    reasons: [],
    usable: true
  }
]
