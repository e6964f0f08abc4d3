/**
 * The witness's decision rule, pure and clock-free (times are passed in): it records the
 * nodes' beats and grants claims for the active role. Shared by the real witness
 * (`witness_app.ts`) and the seeded simulation, so the simulation checks this exact rule.
 *
 * Rule: a claim for epoch E by node N is granted only if
 * - the witness has listened for a whole lease since it started (a restarted witness has
 *   forgotten who is active);
 * - E is above every epoch it granted before (one grant per epoch), unless it is N's own
 *   current grant asked again (a lost reply);
 * - no other node is active in its view, fresh within the lease: a node that beat as active,
 *   or the holder of a grant that neither lapsed nor was given up. A grant is kept alive by its
 *   holder's active beats and given up by a beat of another role at the same or a later epoch,
 *   so a stale standby beat still in flight cannot release it.
 *
 * @module
 */
import type { Role } from "../core/types.ts";

/** The freshest active the witness knows. */
export interface ArbiterActive {
  node: string;
  epoch: number;
  ageMs: number;
}

/** What the witness knows of one node. */
export interface ArbiterNode {
  role: Role;
  epoch: number;
  ageMs: number;
}

/**
 * Beats and grants of one witness.
 *
 * @example
 * ```ts
 * const w = new WitnessArbiter(1_000, 0);
 * w.beat("alpha", "active", 1, 1_500);
 * w.claim("beta", 2, 1_600).granted; // false: alpha was heard 100 ms ago
 * ```
 */
export class WitnessArbiter {
  #beats = new Map<string, { role: Role; epoch: number; at: number; leaseMs: number }>();
  #grant: { node: string; epoch: number; at: number; leaseMs: number } | null = null;
  #maxGranted = 0;
  /** Highest epoch granted or heard in any beat since the witness started. */
  #maxEpoch = 0;
  #startedAt: number;
  readonly leaseMs: number;

  /** `leaseMs`: how long a beat or a grant keeps other claims out (the cluster's deadAfter). */
  constructor(leaseMs: number, startedAt: number) {
    this.leaseMs = leaseMs;
    this.#startedAt = startedAt;
  }

  /** Forget everything, as a restarted witness does. */
  restart(now: number): void {
    this.#beats.clear();
    this.#grant = null;
    this.#maxGranted = 0;
    this.#maxEpoch = 0;
    this.#startedAt = now;
  }

  /**
   * Record a node's beat. `deadAfterMs`: the longest deadAfter in force at that node; its
   * lease here lasts at least that long (a node on longer timings is not given up early).
   */
  beat(node: string, role: Role, epoch: number, now: number, deadAfterMs = 0): void {
    const leaseMs = Math.max(this.leaseMs, deadAfterMs);
    this.#beats.delete(node); // re-insert: the map stays ordered by last beat
    this.#beats.set(node, { role, epoch, at: now, leaseMs });
    this.#maxEpoch = Math.max(this.#maxEpoch, epoch);
    const g = this.#grant;
    if (g && g.node === node) {
      if (role === "active" && epoch === g.epoch) g.at = now;
      else if (role !== "active" && epoch >= g.epoch) this.#grant = null;
    }
  }

  /** Drop the oldest node's record (bounded memory). */
  forgetOldest(): void {
    const oldest = this.#beats.keys().next();
    if (!oldest.done) this.#beats.delete(oldest.value);
  }

  /**
   * Highest epoch granted or heard since the witness started: a node that lost its state
   * takes its next epoch above it.
   */
  get maxEpoch(): number {
    return this.#maxEpoch;
  }

  /** Number of nodes recorded. */
  get size(): number {
    return this.#beats.size;
  }

  /** The freshest active: highest epoch among active beats and the live grant, then freshest. */
  active(now: number): ArbiterActive | null {
    let best: ArbiterActive | null = null;
    const consider = (node: string, epoch: number, at: number) => {
      const ageMs = Math.max(0, now - at);
      if (!best || epoch > best.epoch || (epoch === best.epoch && ageMs < best.ageMs)) {
        best = { node, epoch, ageMs };
      }
    };
    for (const [node, b] of this.#beats) if (b.role === "active") consider(node, b.epoch, b.at);
    if (this.#grant) consider(this.#grant.node, this.#grant.epoch, this.#grant.at);
    return best;
  }

  /** Every node's last beat. */
  nodes(now: number): Record<string, ArbiterNode> {
    const out: Record<string, ArbiterNode> = {};
    for (const [node, b] of this.#beats) {
      out[node] = { role: b.role, epoch: b.epoch, ageMs: Math.max(0, now - b.at) };
    }
    return out;
  }

  /** The lease (ms) that holds for `node`: the witness's, or longer if the node said so. */
  #leaseOf(node: string): number {
    return Math.max(
      this.leaseMs,
      this.#beats.get(node)?.leaseMs ?? 0,
      this.#grant?.node === node ? this.#grant.leaseMs : 0,
    );
  }

  /** Decide a claim for the active role (see the module doc for the rule). */
  claim(
    node: string,
    epoch: number,
    now: number,
    deadAfterMs = 0,
  ): { granted: boolean; reason: string } {
    if (now - this.#startedAt < this.leaseMs) {
      return { granted: false, reason: "witness just started; listening first" };
    }
    const g = this.#grant;
    const again = g !== null && g.node === node && g.epoch === epoch;
    if (!again && epoch <= this.#maxGranted) {
      return {
        granted: false,
        reason: `epoch ${epoch} is not above the highest granted (${this.#maxGranted})`,
      };
    }
    const current = this.active(now);
    if (current && current.node !== node) {
      if (current.ageMs < this.#leaseOf(current.node)) {
        return {
          granted: false,
          reason: `${current.node} is active at epoch ${current.epoch} ` +
            `(heard ${Math.round(current.ageMs)}ms ago)`,
        };
      }
      if (current.epoch >= epoch) {
        return {
          granted: false,
          reason: `epoch ${epoch} is not above ${current.node}'s ${current.epoch}`,
        };
      }
    }
    this.#grant = { node, epoch, at: now, leaseMs: Math.max(this.leaseMs, deadAfterMs) };
    this.#maxGranted = Math.max(this.#maxGranted, epoch);
    this.beat(node, "active", epoch, now, deadAfterMs);
    return { granted: true, reason: `granted epoch ${epoch}` };
  }
}
