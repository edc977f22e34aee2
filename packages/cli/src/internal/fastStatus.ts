/**
 * The fast path of `flyte-auth status`: the same report, read without loading Effect or `@effect/cli`, for the
 * plain case, so that a script testing `flyte-auth status` pays about what `flyte-auth token` does.
 *
 * Like the token fast path it is a read-only peek, and it bails out (the full CLI runs) whenever anything is not
 * the plain case: another option than `--endpoint`, `--config`, `--keyring file` (an OS keyring, `auto` included,
 * is the full path's), `--client-id`, `--auth-mode`, `--insecure`, `--json`; a caller it cannot resolve for sure (`fastToken.resolveCaller`); an
 * insecure setting from the environment or not a boolean in the file; a keyring it cannot list; any entry of the
 * endpoint that is not a clean per-client entry (an old bare-endpoint entry, an unknown field, a bad date, no
 * recorded mode, a file with the wrong owner or mode). The full path handles those, with its warnings. What it
 * prints and its exit code are held to the full path's by `test/e2e/fast-status.test.ts`.
 *
 * @internal
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { preParse } from "./argv.js"
import {
  apiKeyEnvVars,
  type Caller,
  credentialsDirEnv,
  defaultCredentialsDir,
  entryKeys,
  freshUntil,
  isoMillis,
  keyringAccount,
  resolveCaller,
  serviceName
} from "./fastToken.js"
import * as Jwt from "./jwt.js"

type Env = Readonly<Record<string, string | undefined>>

/** One stored entry of the endpoint, as the full path decodes it. */
interface Entry {
  readonly account: string
  readonly clientId: string | undefined
  readonly authMode: string
  readonly accessToken: string
  readonly idToken: string | undefined
  readonly refreshToken: boolean
  readonly expiresAt: number | undefined
  readonly obtainedAt: number | undefined
  readonly scopes: ReadonlyArray<string> | undefined
}

/** What the fast path prints: stdout, the line for stderr (when not logged in) and the exit code. */
export interface FastStatus {
  readonly stdout: string
  readonly stderr: string | undefined
  readonly exitCode: number
}

const acceptedValues = new Set(["endpoint", "config", "keyring", "client-id", "auth-mode"])
const acceptedFlags = new Set(["insecure"])

/** Every entry (account and value) under the service, or `undefined` when the list is not the plain case. */
const listFile = (env: Env): Array<{ account: string; value: string }> | undefined => {
  const raw = env[credentialsDirEnv]
  const dir = Path.resolve(raw !== undefined && raw.trim() !== "" ? raw.trim() : defaultCredentialsDir())
  try {
    const uid = process.getuid?.()
    let names: Array<string>
    try {
      names = Fs.readdirSync(dir)
    } catch (error) {
      return (error as { code?: unknown }).code === "ENOENT" ? [] : undefined
    }
    const dirStat = Fs.statSync(dir)
    if (uid !== undefined && dirStat.uid !== uid) return undefined
    if ((dirStat.mode & 0o777) !== 0o700) return undefined
    const out: Array<{ account: string; value: string }> = []
    for (const name of names) {
      if (!name.endsWith(".json")) return undefined
      const file = Path.join(dir, name)
      const stat = Fs.statSync(file)
      if (!stat.isFile() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o777) !== 0o600) return undefined
      const parsed = JSON.parse(Fs.readFileSync(file, "utf8")) as Record<string, unknown>
      if (typeof parsed !== "object" || parsed === null) return undefined
      const { account, service, value } = parsed
      if (typeof account !== "string" || typeof service !== "string" || typeof value !== "string") return undefined
      if (service === serviceName) out.push({ account, value })
    }
    return out
  } catch {
    return undefined
  }
}

const optionalString = (value: unknown): string | undefined | null =>
  value === undefined ? undefined : typeof value === "string" ? value : null

/** A clean per-client entry of `endpoint`, `undefined` for another endpoint's, `null` for anything else. */
const decode = (account: string, value: string, endpoint: string): Entry | undefined | null => {
  const hash = account.lastIndexOf("#")
  if (hash < 0) return account === endpoint ? null : undefined
  if (account.slice(0, hash) !== endpoint) return undefined
  let clientId: string | undefined
  let record: Record<string, unknown>
  try {
    const encoded = account.slice(hash + 1)
    clientId = encoded === "" ? undefined : decodeURIComponent(encoded)
    record = JSON.parse(value) as Record<string, unknown>
  } catch {
    return null
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) return null
  if (!Object.keys(record).every((key) => entryKeys.has(key))) return null
  const { accessToken, authMode } = record
  const idToken = optionalString(record.idToken)
  const refreshToken = optionalString(record.refreshToken)
  const recordedClient = optionalString(record.clientId)
  const expiresAt = isoMillis(record.expiresAt)
  const obtainedAt = isoMillis(record.obtainedAt)
  const scopes = record.scopes
  if (typeof accessToken !== "string" || accessToken === "" || record.endpoint !== endpoint) return null
  if (
    authMode !== "Pkce" && authMode !== "DeviceFlow" && authMode !== "ClientSecret" && authMode !== "ExternalCommand"
  ) {
    return null
  }
  if (
    idToken === null || refreshToken === null || recordedClient === null || expiresAt === null || obtainedAt === null
  ) {
    return null
  }
  if (recordedClient !== clientId) return null
  if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every((s) => typeof s === "string"))) return null
  return {
    account,
    clientId,
    authMode,
    accessToken,
    idToken,
    refreshToken: refreshToken !== undefined,
    expiresAt,
    obtainedAt,
    scopes: scopes as ReadonlyArray<string> | undefined
  }
}

const isFresh = (entry: Entry, now: number) => now < freshUntil(entry.expiresAt, entry.obtainedAt)

const renewable = (entry: Entry, mode: string, now: number) =>
  isFresh(entry, now) || entry.refreshToken || !(mode === "Pkce" || mode === "DeviceFlow")

const subjectOf = (entry: Entry, clientId: string | undefined): string | undefined => {
  for (const token of [entry.idToken, entry.accessToken]) {
    if (token === undefined) continue
    const sub = Jwt.claims(token)?.sub
    if (typeof sub === "string" && sub !== "") return sub
  }
  const claimed = Jwt.claims(entry.accessToken)?.client_id
  if (typeof claimed === "string" && claimed !== "") return claimed
  return clientId === "" ? undefined : clientId
}

const scopesOf = (entry: Entry): ReadonlyArray<string> | undefined => {
  if (entry.scopes !== undefined) return entry.scopes
  const scope = Jwt.claims(entry.accessToken)?.scope
  return typeof scope === "string" ? scope.split(" ").filter((s) => s !== "") : undefined
}

const iso = (millis: number | undefined) => millis === undefined ? null : new Date(millis).toISOString()

/** effect's `Duration.format` of whole seconds: `1d 1h 1m 1s`, zero parts left out, `0` for none. */
const span = (seconds: number) => {
  const parts: Array<string> = []
  const units: ReadonlyArray<[string, number]> = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]]
  let left = seconds
  for (const [unit, size] of units) {
    const count = Math.floor(left / size)
    left -= count * size
    if (count > 0) parts.push(`${count}${unit}`)
  }
  return parts.length === 0 ? "0" : parts.join(" ")
}

const describeExpiry = (entry: Entry, now: number): string => {
  if (entry.expiresAt === undefined) return "no expiry known (used until the server rejects it)"
  const left = entry.expiresAt - now
  const when = new Date(entry.expiresAt).toISOString()
  const ago = span(Math.round(Math.abs(left) / 1000))
  if (left > 0) return `expires ${when} (in ${ago})`
  return `expired ${when} (${ago} ago${entry.refreshToken ? "; refreshed on next use" : ""})`
}

/**
 * The output of `status` for `args` (the command line without `node` and the script), or `undefined` when the
 * full CLI must run.
 *
 * @internal
 */
export const tryFastStatus = async (
  args: ReadonlyArray<string>,
  env: Env = process.env,
  now: () => number = Date.now
): Promise<FastStatus | undefined> => {
  const json = args.filter((arg) => arg === "--json").length
  if (json > 1) return undefined
  const parsed = preParse(args.filter((arg) => arg !== "--json"))
  if (parsed.other || parsed.command !== "status") return undefined
  if (json === 1 && args.indexOf("--json") < args.indexOf("status")) return undefined
  if (![...parsed.values.keys()].every((name) => acceptedValues.has(name))) return undefined
  if (![...parsed.flags].every((name) => acceptedFlags.has(name))) return undefined
  // The file keyring only: an OS keyring's choice (auto's probe) and listing stay with the full path.
  if (parsed.values.get("keyring") !== "file") return undefined
  if (apiKeyEnvVars.some((name) => (env[name] ?? "").trim() !== "")) return undefined
  const caller: Caller | undefined = await resolveCaller({
    endpoint: parsed.values.get("endpoint"),
    config: parsed.values.get("config"),
    clientId: parsed.values.get("client-id"),
    authMode: parsed.values.get("auth-mode")
  }, env).catch(() => undefined)
  if (caller === undefined) return undefined
  const insecure = parsed.flags.has("insecure") || caller.insecure
  if (insecure === undefined) return undefined
  const listed = listFile(env)
  if (listed === undefined) return undefined
  const entries: Array<Entry> = []
  for (const { account, value } of listed) {
    const entry = decode(account, value, caller.endpoint)
    if (entry === null) return undefined
    if (entry !== undefined) entries.push(entry)
  }
  entries.sort((a, b) => (a.clientId ?? "").localeCompare(b.clientId ?? ""))
  const at = now()

  // AuthLayer.authModeFor over the caller's own entry (StoredCredentials.find), then Credentials.isFor.
  const own = entries.find((entry) => entry.account === keyringAccount(caller.endpoint, caller.clientId))
  const authMode = caller.authMode ??
    (own !== undefined && (own.authMode === "Pkce" || own.authMode === "DeviceFlow") ? own.authMode : "Pkce")
  const selected = own !== undefined && own.authMode === authMode ? own : undefined
  const loggedIn = selected !== undefined && renewable(selected, authMode, at)
  const logins = entries.map((entry) => ({
    endpoint: caller.endpoint,
    clientId: entry.clientId ?? null,
    authMode: entry.authMode,
    account: entry.account,
    legacy: false,
    selected: entry === selected,
    loggedIn: renewable(entry, entry.authMode, at),
    subject: subjectOf(entry, entry.authMode === "ClientSecret" ? entry.clientId : undefined) ?? null,
    expiresAt: iso(entry.expiresAt),
    expired: entry.expiresAt === undefined ? null : entry.expiresAt <= at,
    refreshToken: entry.refreshToken
  }))
  const report = {
    endpoint: caller.endpoint,
    clientId: caller.clientId ?? null,
    authMode,
    keyringBackend: "file",
    insecure,
    loggedIn,
    subject: selected === undefined
      ? null
      : subjectOf(selected, authMode === "ClientSecret" ? caller.clientId : undefined) ?? null,
    scopes: selected === undefined ? null : scopesOf(selected) ?? null,
    expiresAt: iso(selected?.expiresAt),
    expiresInSeconds: selected?.expiresAt === undefined ? null : Math.round((selected.expiresAt - at) / 1000),
    expired: selected === undefined ? null : selected.expiresAt === undefined ? null : selected.expiresAt <= at,
    refreshToken: selected?.refreshToken ?? false,
    logins
  }
  let stdout: string
  if (json === 1) {
    stdout = JSON.stringify(report)
  } else {
    const rows: Array<[string, string]> = [
      ["endpoint", `${report.endpoint}${report.insecure ? " (insecure)" : ""}`],
      ["client id", report.clientId ?? "the admin's"],
      ["auth mode", report.authMode],
      ["keyring", report.keyringBackend],
      [
        "logged in",
        report.loggedIn
          ? "yes"
          : selected === undefined
          ? "no"
          : `no (${report.expired === true ? "expired" : "about to expire"}, no refresh token: run flyte-auth login)`
      ]
    ]
    if (selected !== undefined) {
      rows.push(
        ["subject", report.subject ?? "unknown (opaque token)"],
        ["scopes", report.scopes === null ? "unknown" : report.scopes.join(" ")],
        ["expiry", describeExpiry(selected, at)],
        ["refresh token", report.refreshToken ? "yes" : "no"]
      )
    }
    const width = Math.max(...rows.map(([key]) => key.length)) + 2
    const lines = rows.map(([key, value]) => `${key.padEnd(width)}${value}`)
    lines.push("", `stored logins on ${report.endpoint}:`)
    if (logins.length === 0) lines.push("  none")
    const table = logins.map((login) => [
      login.selected ? "*" : " ",
      login.clientId ?? "(admin's client)",
      login.authMode,
      login.subject ?? "(opaque token)",
      login.expiresAt === null ? "no expiry" : `${login.expired === true ? "expired" : "expires"} ${login.expiresAt}`,
      login.loggedIn ? "logged in" : "needs a login"
    ])
    const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => row[i].length))) ?? []
    for (const row of table) lines.push(row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd())
    stdout = lines.join("\n")
  }
  return loggedIn
    ? { stdout: `${stdout}\n`, stderr: undefined, exitCode: 0 }
    : {
      stdout: `${stdout}\n`,
      stderr: `flyte-auth status: not logged in to ${report.endpoint}${
        report.clientId === null ? "" : ` as client ${report.clientId}`
      } (${report.authMode}) — run \`flyte-auth login\`\n`,
      exitCode: 1
    }
}
