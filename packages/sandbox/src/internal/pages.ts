/**
 * The IdP's HTML pages: login, consent, device code entry/confirmation/success and errors.
 *
 * Plain server-rendered forms that work in a real browser. Each page names itself in
 * `<meta name="flyte-sandbox-page" content="...">` so the scripted user agent (`UserAgent.ts`) knows where it is.
 *
 * @internal
 */

/** @internal */
export type PageKind =
  | "login"
  | "consent"
  | "device-input"
  | "device-confirm"
  | "device-success"
  | "error"

/** @internal */
export const escapeHtml = (value: unknown): string => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const style = `body{font-family:system-ui,sans-serif;background:#f4f4f8;margin:0;padding:40px 16px;color:#222}
main{max-width:380px;margin:0 auto;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);padding:24px 32px}
h1{font-size:1.4em;font-weight:500;margin-top:0}label{display:block;margin:12px 0 4px}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px;font-size:1em}
button{margin-top:16px;padding:8px 16px;font-size:1em;cursor:pointer}button.primary{background:#4b3bbf;color:#fff;border:0}
.error{color:#b00020}.muted{color:#666;font-size:.9em}code{font-size:1.3em}ul{padding-left:20px}`

const layout = (kind: PageKind, title: string, body: string, head = ""): string =>
  `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="flyte-sandbox-page" content="${kind}">
<title>${escapeHtml(title)} · Flyte sandbox</title>
<style>${style}</style>${head}
</head>
<body>
<main>
${body}
</main>
</body>
</html>`

/** @internal */
export const loginPage = (options: {
  readonly uid: string
  readonly clientName: string
  readonly username?: string | undefined
  readonly error?: string | undefined
}): string =>
  layout(
    "login",
    "Sign in",
    `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(options.clientName)}</strong></p>
${
      options.error === undefined
        ? ""
        : `<p class="error" role="alert" data-error="invalid_credentials">${escapeHtml(options.error)}</p>`
    }
<form method="post" action="/interaction/${escapeHtml(options.uid)}" autocomplete="off">
<input type="hidden" name="prompt" value="login">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${escapeHtml(options.username ?? "")}" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<button class="primary" type="submit" name="decision" value="approve">Sign in</button>
<button type="submit" name="decision" value="deny" formnovalidate>Cancel</button>
</form>`
  )

/** @internal */
export const consentPage = (options: {
  readonly uid: string
  readonly clientName: string
  readonly username: string
  readonly scopes: ReadonlyArray<string>
  readonly resources: ReadonlyArray<string>
}): string =>
  layout(
    "consent",
    "Authorize",
    `<h1>Authorize ${escapeHtml(options.clientName)}</h1>
<p>Signed in as <strong>${escapeHtml(options.username)}</strong>.</p>
<p><strong>${escapeHtml(options.clientName)}</strong> asks for:</p>
<ul>${options.scopes.map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`).join("")}</ul>
${
      options.resources.length === 0
        ? ""
        : `<p class="muted">Tokens will be issued for ${
          options.resources.map((r) => `<code>${escapeHtml(r)}</code>`).join(", ")
        }.</p>`
    }
<form method="post" action="/interaction/${escapeHtml(options.uid)}">
<input type="hidden" name="prompt" value="consent">
<button class="primary" type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`
  )

/** `form` is the `<form id="op.deviceInputForm">` that oidc-provider generates (xsrf token and `user_code` field). */
export const deviceInputPage = (options: {
  readonly form: string
  readonly error?: { readonly error: string; readonly description?: string | undefined; readonly name?: string }
}): string => {
  const state = options.error === undefined ? "" : options.error.name === "AbortedError" ? "aborted" : "error"
  const message = options.error === undefined
    ? `<p>Enter the code displayed on your device.</p>`
    : state === "aborted"
    ? `<p class="error" role="alert" data-error="access_denied">The sign-in request was cancelled.</p>`
    : `<p class="error" role="alert" data-error="${escapeHtml(options.error.error)}">${
      escapeHtml(options.error.description ?? options.error.error)
    }</p>`
  return layout(
    "device-input",
    "Device sign-in",
    `<h1>Device sign-in</h1>
${message}
${options.form}
<button class="primary" type="submit" form="op.deviceInputForm">Continue</button>`,
    state === "" ? "" : `\n<meta name="flyte-sandbox-state" content="${state}">`
  )
}

/** `form` is the `<form id="op.deviceConfirmForm">` that oidc-provider generates (xsrf, user_code, confirm=yes). */
export const deviceConfirmPage = (options: {
  readonly form: string
  readonly clientName: string
  readonly userCode: string
  readonly autoSubmit: boolean
}): string =>
  layout(
    "device-confirm",
    "Confirm device",
    `<h1>Confirm device</h1>
<p><strong>${escapeHtml(options.clientName)}</strong> wants to sign in on a device showing the code</p>
<p><code data-user-code>${escapeHtml(options.userCode)}</code></p>
<p class="muted">If you did not start this, or the code does not match, abort.</p>
${options.form}
<button class="primary" type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`,
    // With `autoApprove` a real browser confirms by itself (the sandbox sets no Content-Security-Policy).
    options.autoSubmit
      ? `\n<script>document.addEventListener("DOMContentLoaded",function(){document.getElementById("op.deviceConfirmForm").submit()})</script>`
      : ""
  )

/** @internal */
export const deviceSuccessPage = (clientName: string): string =>
  layout(
    "device-success",
    "Device signed in",
    `<h1>Device signed in</h1>
<p>The sign-in with <strong>${escapeHtml(clientName)}</strong> was successful. You can close this page.</p>`
  )

/** @internal */
export const errorPage = (out: Readonly<Record<string, unknown>>): string =>
  layout(
    "error",
    "Error",
    `<h1>Something went wrong</h1>
<dl>${
      Object.entries(out).filter(([, value]) => value !== undefined).map(([key, value]) =>
        `<dt>${escapeHtml(key)}</dt><dd data-field="${escapeHtml(key)}">${escapeHtml(value)}</dd>`
      ).join("")
    }</dl>`
  )
