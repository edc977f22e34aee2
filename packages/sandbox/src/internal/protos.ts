/**
 * Loads flyteidl's `AuthMetadataService` and `IdentityService` definitions with `@grpc/proto-loader`.
 *
 * The flyteidl protos come from `@flyteorg/flyteidl`; the third-party annotation imports they need resolve against
 * this package's `protos/` directory (see `protos/README.md`), found relative to this module so it works from both
 * `src/internal/` and `dist/internal/`.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** @internal */
export const stubIncludeDir = fileURLToPath(new URL("../../protos/", import.meta.url))

/** @internal */
export const flyteidlIncludeDir = (): string => {
  const require = createRequire(import.meta.url)
  return path.join(path.dirname(require.resolve("@flyteorg/flyteidl/package.json")), "protos")
}

/** @internal */
export interface FlyteServices {
  readonly AuthMetadataService: grpc.ServiceDefinition
  readonly IdentityService: grpc.ServiceDefinition
}

let cached: FlyteServices | undefined

/** @internal */
export const loadFlyteServices = (): FlyteServices => {
  if (cached) return cached
  const definition = protoLoader.loadSync(["flyteidl/service/auth.proto", "flyteidl/service/identity.proto"], {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [flyteidlIncludeDir(), stubIncludeDir]
  })
  const service = (name: string): grpc.ServiceDefinition => {
    const found = definition[`flyteidl.service.${name}`]
    if (found === undefined || "format" in found) {
      throw new Error(`flyteidl.service.${name} not found in flyteidl protos`)
    }
    return found as grpc.ServiceDefinition
  }
  cached = { AuthMetadataService: service("AuthMetadataService"), IdentityService: service("IdentityService") }
  return cached
}
