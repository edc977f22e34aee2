/**
 * The IdP's storage: an in-memory `oidc-provider` adapter, one per sandbox.
 *
 * oidc-provider's bundled memory adapter prints a warning when used and is an LRU capped at 1000 entries, which a
 * long test run or a benchmark can overflow (evicting live sessions). This store is unbounded, drops expired
 * entries lazily, and lets the sandbox's test controls reach into it (e.g. revoke every refresh token).
 *
 * @internal
 */

type Payload = Record<string, unknown> & {
  readonly grantId?: string
  readonly userCode?: string
  readonly uid?: string
  consumed?: number
}

interface Entry {
  readonly model: string
  readonly payload: Payload
  readonly expiresAt: number | undefined
}

/** Models whose entries belong to a grant and disappear with it (`revokeByGrantId`). */
const grantable = new Set([
  "AccessToken",
  "AuthorizationCode",
  "RefreshToken",
  "DeviceCode",
  "BackchannelAuthenticationRequest",
  "PreAuthorizedCode"
])

/** Entries are kept a little past their expiry so oidc-provider can still report "expired" instead of "not found". */
const retentionMs = 60_000

/** @internal */
export interface Adapter {
  upsert(id: string, payload: Payload, expiresIn?: number): Promise<void>
  find(id: string): Promise<Payload | undefined>
  findByUserCode(userCode: string): Promise<Payload | undefined>
  findByUid(uid: string): Promise<Payload | undefined>
  consume(id: string): Promise<void>
  destroy(id: string): Promise<void>
  revokeByGrantId(grantId: string): Promise<void>
}

/** @internal */
export class Store {
  private readonly entries = new Map<string, Entry>()
  private readonly sessionsByUid = new Map<string, string>()
  private readonly userCodes = new Map<string, string>()
  private readonly grants = new Map<string, Set<string>>()
  private writes = 0

  /** The adapter factory to pass as oidc-provider's `adapter` configuration. */
  readonly factory = (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`
    return {
      upsert: async (id, payload, expiresIn) => this.upsert(model, key(id), payload, expiresIn),
      find: async (id) => this.get(key(id)),
      findByUserCode: async (userCode) => {
        const id = this.userCodes.get(userCode)
        return id === undefined ? undefined : this.get(key(id))
      },
      findByUid: async (uid) => {
        const id = this.sessionsByUid.get(uid)
        return id === undefined ? undefined : this.get(key(id))
      },
      consume: async (id) => {
        const payload = this.get(key(id))
        if (payload) payload.consumed = Math.floor(Date.now() / 1000)
      },
      destroy: async (id) => this.delete(key(id)),
      revokeByGrantId: async (grantId) => {
        const members = this.grants.get(grantId)
        this.grants.delete(grantId)
        for (const member of members ?? []) this.delete(member)
      }
    }
  }

  /** Deletes every stored entry of one model (e.g. `"RefreshToken"`); returns how many were deleted. */
  deleteModel(model: string): number {
    let deleted = 0
    for (const [key, entry] of this.entries) {
      if (entry.model === model) {
        this.delete(key)
        deleted++
      }
    }
    return deleted
  }

  private upsert(model: string, key: string, payload: Payload, expiresIn: number | undefined): void {
    this.delete(key)
    const expiresAt = typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 + retentionMs : undefined
    this.entries.set(key, { model, payload, expiresAt })
    const id = key.slice(model.length + 1)
    if (model === "Session" && typeof payload.uid === "string") this.sessionsByUid.set(payload.uid, id)
    if (typeof payload.userCode === "string") this.userCodes.set(payload.userCode, id)
    if (grantable.has(model) && typeof payload.grantId === "string") {
      let members = this.grants.get(payload.grantId)
      if (!members) {
        members = new Set()
        this.grants.set(payload.grantId, members)
      }
      members.add(key)
    }
    if (++this.writes % 500 === 0) this.sweep()
  }

  private get(key: string): Payload | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.delete(key)
      return undefined
    }
    return entry.payload
  }

  private delete(key: string): void {
    const entry = this.entries.get(key)
    if (!entry) return
    this.entries.delete(key)
    const id = key.slice(entry.model.length + 1)
    const { grantId, uid, userCode } = entry.payload
    if (typeof uid === "string" && this.sessionsByUid.get(uid) === id) this.sessionsByUid.delete(uid)
    if (typeof userCode === "string" && this.userCodes.get(userCode) === id) this.userCodes.delete(userCode)
    if (typeof grantId === "string") {
      const members = this.grants.get(grantId)
      members?.delete(key)
      if (members?.size === 0) this.grants.delete(grantId)
    }
  }

  private sweep(): void {
    const now = Date.now()
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.delete(key)
    }
  }
}
