/**
 * Types of the cluster settings agreement (see settings.ts), apart so the core's state types
 * can name them without importing the functions that read that state.
 *
 * @module
 */

/** The safety-relevant settings of a node, as exchanged in heartbeats. */
export interface ClusterSettings {
  /** Hash of `keys` (FNV-1a, hex): equal hashes, equal settings. */
  hash: string;
  /** Safety key → its value or a short digest of it (`heartbeat.deadAfter` → `"1000"`). */
  keys: Record<string, string>;
  /** The longest `deadAfter` (ms) the sender still honours (its own, or an older one). */
  deadAfterMs: number;
  /** The `fenceAfter` (ms) the sender applies now as an active. */
  fenceAfterMs: number;
}

/** Timings kept from before a reload until every peer has acknowledged the new settings. */
export interface HeldTimings {
  deadAfterMs: number;
  fenceAfterMs: number;
}
