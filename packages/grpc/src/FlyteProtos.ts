/**
 * The flyteidl service definitions of `@flyteorg/flyteidl`, loaded with `@grpc/proto-loader`, so that any Flyte
 * service client is one line away.
 *
 * @example
 * ```ts
 * import { FlyteProtos, GrpcAuth } from "@flyte-auth/grpc"
 *
 * const IdentityService = FlyteProtos.load("flyteidl/service/identity.proto").flyteidl.service.IdentityService
 * const client = new IdentityService("127.0.0.1:8089", credentials.createInsecure(), { interceptors })
 * client.UserInfo({}, (error, response) => console.log(error ?? response))
 * ```
 *
 * @since 0.1.0
 */
import type * as grpc from "@grpc/grpc-js"
import { loadPackageDefinition } from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * The include directories: flyteidl's `protos/` and this package's `protos/` (stand-ins for the grpc-gateway and
 * OpenAPI annotation files that flyteidl imports but does not ship). Resolved from this module's location, so they
 * work from `src/` and from `dist/`.
 *
 * @since 0.1.0
 * @category constants
 */
export const includeDirs: ReadonlyArray<string> = [
  path.join(path.dirname(createRequire(import.meta.url).resolve("@flyteorg/flyteidl/package.json")), "protos"),
  fileURLToPath(new URL("../protos", import.meta.url))
]

/**
 * The proto-loader options used for every flyteidl file: field names as in the `.proto` files (`client_id`),
 * 64-bit integers and enums as strings, scalar defaults filled in (so an unset string reads as `""`), oneofs
 * named.
 *
 * @since 0.1.0
 * @category constants
 */
export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [...includeDirs]
}

/**
 * A client of a loaded service: a grpc-js `Client` with one method per RPC (`client.UserInfo(request, callback)`).
 *
 * @since 0.1.0
 * @category models
 */
export type ServiceClient = grpc.Client & { readonly [method: string]: any }

/**
 * The client constructor of a loaded service: `new IdentityService(address, credentials, { interceptors })`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServiceConstructor {
  new(address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>): ServiceClient
}

/**
 * A loaded proto package: nested namespaces down to message types and service client constructors, reached with
 * property access (`.flyteidl.service.IdentityService`). Loosely typed: what a name is depends on the file (use
 * `service` for a checked lookup).
 *
 * @since 0.1.0
 * @category models
 */
export interface Namespace {
  readonly [name: string]: Namespace & ServiceConstructor
}

const loaded = new Map<string, Namespace>()

/**
 * Loads flyteidl proto files (paths relative to flyteidl's `protos/`, e.g. `"flyteidl/service/admin.proto"`) and
 * returns their package tree. Results are cached per file list. Loading reads the files synchronously and throws
 * if one is missing or invalid.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (files: string | ReadonlyArray<string>): Namespace => {
  const list = typeof files === "string" ? [files] : [...files]
  const key = list.join("\u0000")
  const cached = loaded.get(key)
  if (cached !== undefined) return cached
  const namespace = loadPackageDefinition(protoLoader.loadSync(list, loaderOptions)) as unknown as Namespace
  loaded.set(key, namespace)
  return namespace
}

/**
 * The client constructor of one service, by file and fully qualified name:
 * `FlyteProtos.service("flyteidl/service/identity.proto", "flyteidl.service.IdentityService")`. Throws if the file
 * cannot be loaded or does not define that service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const service = (file: string, name: string): grpc.ServiceClientConstructor => {
  let node: unknown = load(file)
  for (const part of name.split(".")) {
    node = typeof node === "object" || typeof node === "function" ? (node as Record<string, unknown>)[part] : undefined
  }
  if (typeof node !== "function" || !("service" in node)) {
    throw new Error(`${file} defines no service named ${name}`)
  }
  return node as grpc.ServiceClientConstructor
}
