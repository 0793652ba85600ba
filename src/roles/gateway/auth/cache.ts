// A small in-process cache for what every authenticated request looks up: the user behind a token, the API key
// behind a hash, a user's memberships and their access to a workspace. Without it a JWT request to /api/me ran three
// queries, and with embedded PGlite (one WASM backend, one query at a time) that was most of the CPU per request.
//
// Consistency: every change made through this process (key revoked, user disabled or re-roled, membership or
// workspace changed) invalidates the affected entries before the change is acknowledged, so it applies to the very
// next request. A change made by another replica, by the CLI or straight in SQL is not seen here: this pod keeps
// using its copy until the entry expires. That is why the lifetime is short (DOCUPOD_AUTH_CACHE_TTL, 5 s by default;
// 0 turns the cache off): with several gateway replicas, a revoked key or disabled user can still pass on the other
// replicas for up to that long. A cross-replica invalidation (Postgres LISTEN/NOTIFY) would remove that window.

export class TtlCache<K, V> {
  private readonly map = new Map<K, { at: number; value: V }>();
  /**
   * Bumped by every invalidation. A loader reads it before its query and passes it to set(): when an invalidation
   * happened meanwhile, the row it read may predate the change, so it is not cached.
   */
  generation = 0;

  constructor(
    private readonly ttlMs: number,
    /** Entries beyond this are dropped oldest first, so a flood of distinct keys cannot grow memory without bound. */
    private readonly maxEntries = 10_000,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  get(key: K, now = Date.now()): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    if (now - hit.at >= this.ttlMs) {
      this.map.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: K, value: V, generation: number, now = Date.now()): void {
    if (!this.enabled || generation !== this.generation) return;
    this.map.delete(key);
    this.map.set(key, { at: now, value });
    if (this.map.size > this.maxEntries) {
      // Map iterates in insertion order: the first key is the oldest write.
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.generation++;
    this.map.delete(key);
  }

  /** Drops every entry whose value matches; for invalidations that know the value (a user id) but not the key. */
  deleteWhere(match: (value: V, key: K) => boolean): void {
    this.generation++;
    for (const [k, v] of this.map) if (match(v.value, k)) this.map.delete(k);
  }

  clear(): void {
    this.generation++;
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
