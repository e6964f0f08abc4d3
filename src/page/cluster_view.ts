/**
 * The whole cluster as the status page shows it: this node's status document, built at most
 * once per period, and each peer's, fetched in the background (one request per peer in
 * flight, bounded by the period) only while someone is looking. A page view never waits for
 * a peer: it shows what the last fetch brought, and how old it is.
 *
 * @example
 * ```ts
 * import type { Agent } from "../agent/agent.ts";
 * import { PeerClient } from "../peer/client.ts";
 * declare const agent: Agent;
 * const client = new PeerClient({ node: "alpha", secret: "s3cret", timeoutMs: 1_000 });
 * const get = (base: string, path: string, timeoutMs: number) =>
 *   client.get<unknown>(base, path, timeoutMs);
 * const view = new ClusterView({ self: () => agent.status(), get, periodMs: 200 });
 * const snap = view.snapshot(); // cached; starts peer fetches if due
 * ```
 *
 * @module
 */
import type { StatusDoc } from "../peer/api_types.ts";

/** One other node as last fetched. */
export interface PeerView {
  name: string;
  url: string;
  /** Its own status document, or null if never fetched. */
  status: StatusDoc | null;
  /** Age of `status`, ms. */
  ageMs: number | null;
  /** Why the latest fetch failed; null after a success. */
  error: string | null;
}

/** What one render of the page needs. */
export interface ClusterSnapshot {
  self: StatusDoc;
  peers: PeerView[];
  /** Wall time of the snapshot (ISO). */
  time: string;
}

/** Options of {@linkcode ClusterView}. */
export interface ClusterViewOptions {
  self: () => StatusDoc;
  /** GET a peer's `/v1/status` (the node's peer client). */
  get: (baseUrl: string, path: string, timeoutMs: number) => Promise<unknown>;
  /** Refresh period: the heartbeat interval. */
  periodMs: number;
  /** Monotonic ms (default `performance.now`). */
  now?: () => number;
}

interface _Peer {
  status: StatusDoc | null;
  at: number | null;
  error: string | null;
  inFlight: boolean;
}

/** Cached cluster snapshot with background peer fetches. */
export class ClusterView {
  #opts: ClusterViewOptions;
  #now: () => number;
  #cached: { at: number; snap: ClusterSnapshot } | null = null;
  #peers = new Map<string, _Peer>();

  /** Fetches nothing until the first {@linkcode ClusterView.snapshot}. */
  constructor(opts: ClusterViewOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** The current snapshot: rebuilt at most once per period. */
  snapshot(): ClusterSnapshot {
    const now = this.#now();
    if (this.#cached && now - this.#cached.at < this.#opts.periodMs) return this.#cached.snap;
    const self = this.#opts.self();
    const peers: PeerView[] = self.peers.map((p) => {
      const known = this.#peers.get(p.name) ??
        { status: null, at: null, error: null, inFlight: false };
      this.#peers.set(p.name, known);
      if (!known.inFlight && (known.at === null || now - known.at >= this.#opts.periodMs)) {
        this.#fetch(p.name, p.url, known);
      }
      return {
        name: p.name,
        url: p.url,
        status: known.status,
        ageMs: known.at === null ? null : Math.round(now - known.at),
        error: known.error,
      };
    });
    const snap = { self, peers, time: new Date().toISOString() };
    this.#cached = { at: now, snap };
    return snap;
  }

  #fetch(name: string, url: string, peer: _Peer): void {
    peer.inFlight = true;
    const timeout = Math.max(this.#opts.periodMs, 500);
    this.#opts.get(url, "/v1/status", timeout).then(
      (doc) => {
        const d = doc as StatusDoc;
        if (d && typeof d === "object" && d.node === name && Array.isArray(d.apps)) {
          peer.status = d;
          peer.at = this.#now();
          peer.error = null;
        } else {
          peer.error = `${url} did not answer with the status of ${name}`;
        }
      },
      (err) => {
        peer.error = err instanceof Error ? err.message : String(err);
        // Retry after a period, not at once.
        peer.at = peer.status === null ? this.#now() : peer.at;
      },
    ).finally(() => {
      peer.inFlight = false;
    });
  }
}
