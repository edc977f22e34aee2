/**
 * A throw-away self-signed certificate for 127.0.0.1, made with the system's openssl for one test file.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface TestCertificate {
  readonly dir: string
  readonly certPath: string
  readonly cert: Buffer
  readonly key: Buffer
  readonly remove: () => void
}

export const makeCertificate = (): TestCertificate => {
  const dir = mkdtempSync(join(tmpdir(), "flyte-auth-grpc-tls-"))
  const certPath = join(dir, "cert.pem")
  const keyPath = join(dir, "key.pem")
  execFileSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost"
  ], { stdio: "ignore" })
  return {
    dir,
    certPath,
    cert: readFileSync(certPath),
    key: readFileSync(keyPath),
    remove: () => rmSync(dir, { recursive: true, force: true })
  }
}
