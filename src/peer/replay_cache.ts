/**
 * Bounded memory of request nonces, so that a signed request captured on the wire cannot be
 * played again while its timestamp is still inside the accepted clock-skew window.
 *
 * A request stamped `time` is accepted by {@linkcode RequestVerifier} only while
 * `|now - time| <= window`, so its nonce has to be remembered until `time + window` and no
 * longer: after that the timestamp alone gets any replay rejected as stale.
 *
 * **When the cache is full it fails closed.** If `maxEntries` nonces are all still inside
 * their window, a new nonce is *refused* (`"full"`) rather than recorded by forgetting an
 * older one. Forgetting a nonce that is still inside its window would let that request be
 * replayed; refusing costs availability only while the cluster sends more than `maxEntries`
 * authenticated requests per window, which for a handful of nodes means something is wrong
 * anyway. Only requests with a valid signature reach the cache, so an outsider cannot fill it.
 *
 * @example
 * ```ts
 * const cache = new ReplayCache(30_000);
 * cache.seen("a1b2", 1_000, 1_000); // false: first time, now recorded
 * cache.seen("a1b2", 1_000, 2_000); // true: replay
 * ```
 *
 * @module
 */

/** Outcome of {@linkcode ReplayCache.record}. */
export type ReplayOutcome = "recorded" | "replayed" | "full";

/**
 * Remembers nonces until their timestamp leaves the window, holding at most `maxEntries`.
 *
 * @example
 * ```ts
 * declare const nonce: string; // X-Baton-Nonce
 * declare const time: number; // X-Baton-Time
 * const cache = new ReplayCache(30_000, 10_000);
 * if (cache.record(nonce, time, Date.now()) !== "recorded") throw new Error("replayed");
 * ```
 */
export class ReplayCache {
  /** nonce → last time (ms) at which a request carrying it could still be accepted. */
  readonly #expiry = new Map<string, number>();
  readonly #windowMs: number;
  readonly #maxEntries: number;
  /** A lower bound of every stored expiry: before it, a full sweep would free nothing. */
  #lowestExpiry = Number.POSITIVE_INFINITY;

  /**
   * @param windowMs how long after its timestamp a nonce must be remembered (the verifier's
   *   maximum clock skew).
   * @param maxEntries most nonces kept at once; beyond that new nonces are refused.
   */
  constructor(windowMs: number, maxEntries = 100_000) {
    if (!Number.isFinite(windowMs) || windowMs < 0) {
      throw new RangeError(`ReplayCache: expected windowMs >= 0, got ${windowMs}`);
    }
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`ReplayCache: expected an integer maxEntries >= 1, got ${maxEntries}`);
    }
    this.#windowMs = windowMs;
    this.#maxEntries = maxEntries;
  }

  /** Number of nonces currently remembered. */
  get size(): number {
    return this.#expiry.size;
  }

  /**
   * Returns true if the nonce must be rejected: it was seen before inside its window, or the
   * cache is full (fail closed, see the module doc). Otherwise records it and returns false.
   *
   * @example
   * ```ts
   * declare const cache: ReplayCache;
   * declare const nonce: string;
   * declare const time: number;
   * if (cache.seen(nonce, time, Date.now())) console.log("replayed");
   * ```
   */
  seen(nonce: string, time: number, now: number): boolean {
    return this.record(nonce, time, now) !== "recorded";
  }

  /**
   * Like {@linkcode seen} but says why a nonce was refused: `"replayed"` (seen inside its
   * window) or `"full"` (no room without forgetting a nonce still inside its window).
   *
   * @example
   * ```ts
   * declare const cache: ReplayCache;
   * declare const nonce: string;
   * declare const time: number;
   * const outcome = cache.record(nonce, time, Date.now()); // "recorded" | "replayed" | "full"
   * ```
   */
  record(nonce: string, time: number, now: number): ReplayOutcome {
    this.#evictFront(now);
    const expiresAt = this.#expiry.get(nonce);
    if (expiresAt !== undefined) {
      if (expiresAt >= now) return "replayed";
      this.#expiry.delete(nonce); // expired but not yet swept: forget it
    }
    if (this.#expiry.size >= this.#maxEntries) {
      this.#evictAll(now);
      if (this.#expiry.size >= this.#maxEntries) return "full";
    }
    const newExpiry = time + this.#windowMs;
    this.#expiry.set(nonce, newExpiry);
    if (newExpiry < this.#lowestExpiry) this.#lowestExpiry = newExpiry;
    return "recorded";
  }

  /**
   * Drops expired nonces from the oldest insertion on, stopping at the first live one.
   * Insertion order follows timestamps up to the clock skew, so this frees nearly everything
   * in amortized O(1); a nonce stamped in the future can hold back the ones behind it for at
   * most two windows, which {@linkcode #evictAll} handles when the cache fills.
   */
  #evictFront(now: number): void {
    for (const [nonce, expiresAt] of this.#expiry) {
      if (expiresAt >= now) return;
      this.#expiry.delete(nonce);
    }
  }

  /** Drops every expired nonce; skipped while no entry can have expired yet. */
  #evictAll(now: number): void {
    if (now <= this.#lowestExpiry) return;
    let lowest = Number.POSITIVE_INFINITY;
    for (const [nonce, expiresAt] of this.#expiry) {
      if (expiresAt < now) this.#expiry.delete(nonce);
      else if (expiresAt < lowest) lowest = expiresAt;
    }
    this.#lowestExpiry = lowest;
  }
}
