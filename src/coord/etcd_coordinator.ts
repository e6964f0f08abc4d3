/**
 * {@linkcode EtcdCoordinator}: etcd as the arbiter of takeovers, as a driver. It turns etcd into
 * the core's existing arbiter events and carries out the core's arbiter actions, so the pure
 * core stays as it is (see `src/core/arbiter.ts`):
 *
 * - `check_witness` (every heartbeat interval): renew the lease of the key this node holds (the
 *   send time of an answered renewal is the contact that keeps the apps here), then read the
 *   key; → a `witness` event of kind `etcd` whose `active` is the key's holder and epoch its
 *   create revision (`ok: false` when etcd did not answer).
 * - `claim_witness`: grant a fresh lease and, in one transaction, create the key bound to it
 *   only if the key is absent; → `claim_result` with `granted` = the key's create revision
 *   (the epoch, so it only grows), and `sentAt` = when the lease was requested: the new term's
 *   contact counts from there (the lease runs at least `ttl` from then). A claim slower than
 *   the whole lease window is given up (its lease revoked).
 * - After every step ({@linkcode EtcdCoordinator.observe}): a held key whose node is no longer
 *   active at that epoch is released (its lease revoked, so etcd deletes the key) once no
 *   movable app runs here any more; a resumed active adopts the key it still holds (same node,
 *   create revision = its epoch) and renews that lease.
 *
 * Every etcd call goes through one serial queue, so a read's answer is never older than a claim
 * dispatched before it. The driver decides nothing the core decides: it never starts or stops
 * an app and never changes a role.
 *
 * @module
 */
import type { Event, Level, NodeInfo, NodeState } from "../core/types.ts";
import type { DriverRecordKind } from "../core/types.ts";
import { etcdFenceWindowMs, type EtcdSpec } from "../manifest/coordinator.ts";
import type { EtcdPort } from "./etcd_port.ts";

/** How the coordinator reports what operators should see (the agent's event log). */
export type CoordinatorReport = (level: Level, kind: DriverRecordKind, message: string) => void;

/** What the agent calls: the arbiter actions, and an observation after every step. */
export interface CoordinatorSink {
  /** Where events go and what the core clock is; called once by the agent. */
  attach(dispatch: (e: Event) => void, now: () => number, report: CoordinatorReport): void;
  /** The core's `check_witness` action. */
  check(info: NodeInfo): void;
  /** The core's `claim_witness` action. */
  claim(info: NodeInfo): void;
  /** After every step of the core. */
  observe(state: NodeState): void;
  /** For status. */
  status(): Record<string, unknown>;
  /** Agent shutdown: the key and its lease are left as they are (a restart adopts them). */
  close(): Promise<void>;
}

/** The key of the movable apps of `cluster` under `prefix`. */
export function etcdKey(prefix: string, cluster: string): string {
  return `${prefix === "/" ? "" : prefix}/${cluster}/active`;
}

interface _Held {
  lease: string;
  revision: number;
  /** The node left the role: renewals stop, the lease is being revoked. */
  releasing: boolean;
}

/**
 * The etcd coordinator of one node.
 *
 * @example
 * ```ts
 * import { Agent, type AgentOptions } from "../agent/agent.ts";
 * import { connectEtcd } from "./etcd_port.ts";
 * declare const options: AgentOptions;
 * const etcd = options.manifest.cluster.coordinator!.etcd;
 * const port = await connectEtcd(etcd, 500);
 * const coordinator = new EtcdCoordinator("alpha", "demo", etcd, 200, port);
 * const agent = new Agent({ ...options, coordinator });
 * ```
 */
export class EtcdCoordinator implements CoordinatorSink {
  readonly #self: string;
  readonly #key: string;
  readonly #spec: EtcdSpec;
  readonly #renewMs: number;
  readonly #port: EtcdPort;
  #dispatch: (e: Event) => void = () => {};
  #now: () => number = () => performance.now();
  #report: CoordinatorReport = () => {};
  #queue: Promise<void> = Promise.resolve();
  #checkQueued = false;
  #held: _Held | null = null;
  #closed = false;
  /** The core as of the latest step. */
  #core: { role: string; epoch: number; movableRunning: boolean } = {
    role: "standby",
    epoch: 0,
    movableRunning: false,
  };
  /** For status. */
  #view = {
    lastOkAt: null as number | null,
    lastRenewSentAt: null as number | null,
    lastError: null as string | null,
    holder: null as { node: string; revision: number } | null,
    failing: false,
  };

  /**
   * `self`: this node; `cluster`: the cluster name (part of the key); `renewMs`: the renewal
   * interval (the heartbeat interval); `port`: etcd.
   */
  constructor(self: string, cluster: string, spec: EtcdSpec, renewMs: number, port: EtcdPort) {
    this.#self = self;
    this.#key = etcdKey(spec.prefix, cluster);
    this.#spec = spec;
    this.#renewMs = renewMs;
    this.#port = port;
  }

  /** {@inheritDoc CoordinatorSink.attach} */
  attach(dispatch: (e: Event) => void, now: () => number, report: CoordinatorReport): void {
    this.#dispatch = dispatch;
    this.#now = now;
    this.#report = report;
  }

  /** {@inheritDoc CoordinatorSink.check} */
  check(_info: NodeInfo): void {
    if (this.#checkQueued || this.#closed) return; // one waiting check is enough
    this.#checkQueued = true;
    this.#enqueue(async () => {
      this.#checkQueued = false;
      await this.#check();
    });
  }

  /** {@inheritDoc CoordinatorSink.claim} */
  claim(info: NodeInfo): void {
    if (this.#closed) return;
    this.#enqueue(() => this.#claim(info.epoch));
  }

  /** {@inheritDoc CoordinatorSink.observe} */
  observe(state: NodeState): void {
    const movableRunning = Object.values(state.apps).some((a) =>
      state.manifest.apps[a.name]?.movable && (a.pid !== null || a.phase === "starting")
    );
    this.#core = { role: state.role, epoch: state.epoch, movableRunning };
    this.#maybeRelease();
  }

  /** {@inheritDoc CoordinatorSink.status} */
  status(): Record<string, unknown> {
    const now = this.#now();
    const v = this.#view;
    const ttlMs = this.#spec.ttlSeconds * 1000;
    return {
      kind: "etcd",
      endpoints: this.#spec.endpoints,
      key: this.#key,
      ttlSeconds: this.#spec.ttlSeconds,
      reachable: !v.failing && v.lastOkAt !== null,
      lastOkAgoMs: v.lastOkAt === null ? null : Math.round(now - v.lastOkAt),
      lastError: v.lastError,
      holder: v.holder,
      held: this.#held === null
        ? null
        : { revision: this.#held.revision, releasing: this.#held.releasing },
      // etcd cannot expire the key before this (the latest answered renewal's send time + ttl).
      leaseLeftMs: this.#held !== null && v.lastRenewSentAt !== null
        ? Math.max(0, Math.round(v.lastRenewSentAt + ttlMs - now))
        : null,
    };
  }

  /** Resolves once every etcd call queued so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    let q: Promise<void>;
    do {
      q = this.#queue;
      await q;
    } while (q !== this.#queue);
  }

  /** {@inheritDoc CoordinatorSink.close} */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    this.#port.close();
  }

  #enqueue(op: () => Promise<void>): void {
    this.#queue = this.#queue.then(op).catch((err) =>
      this.#report("error", "internal_error", `etcd coordinator: ${_msg(err)}`)
    );
  }

  /** Renew the held lease, read the key, tell the core. */
  async #check(): Promise<void> {
    if (this.#closed) return;
    const sentAt = this.#now();
    let renewed = false;
    try {
      const held = this.#held;
      if (held && !held.releasing) {
        const ttl = await this.#port.keepAlive(held.lease);
        if (ttl > 0) renewed = true;
        else if (this.#held === held) {
          this.#held = null;
          this.#report("error", "coordinator", "etcd: our lease expired: the key is gone");
        }
      }
      const r = await this.#port.read(this.#key);
      const h = r.holder;
      const cur = this.#held;
      if (cur && !cur.releasing && (h === null || h.createRevision !== cur.revision)) {
        this.#held = null;
        renewed = false;
      }
      let at = sentAt;
      if (
        this.#held === null && h !== null && h.value === this.#self &&
        this.#core.role === "active" && this.#core.epoch === h.createRevision && h.lease !== "0"
      ) {
        // A restarted agent still active at the key's revision: the key (and lease) are ours.
        this.#held = { lease: h.lease, revision: h.createRevision, releasing: false };
        at = this.#now();
        renewed = (await this.#port.keepAlive(h.lease)) > 0;
        if (renewed) {
          this.#report(
            "info",
            "coordinator",
            `etcd: adopted our key (revision ${h.createRevision})`,
          );
        } else this.#held = null;
      }
      this.#ok(
        h === null ? null : { node: h.value, revision: h.createRevision },
        renewed ? at : null,
      );
      this.#dispatch({
        type: "witness",
        ok: true,
        kind: "etcd",
        active: h === null ? null : { node: h.value, epoch: h.createRevision, ageMs: 0 },
        error: null,
        maxEpoch: r.revision,
        ...(renewed ? { sentAt: at } : {}),
      });
    } catch (err) {
      this.#failed(err);
      this.#dispatch({ type: "witness", ok: false, kind: null, active: null, error: _msg(err) });
    }
    this.#maybeRelease();
  }

  /** Create the key if absent, bound to a fresh lease; → `claim_result`. */
  async #claim(epoch: number): Promise<void> {
    if (this.#closed) return;
    const result = (ok: boolean, detail: string, granted?: number, sentAt?: number) =>
      this.#dispatch({
        type: "claim_result",
        epoch,
        ok,
        detail,
        ...(granted !== undefined ? { granted } : {}),
        ...(sentAt !== undefined ? { sentAt } : {}),
      });
    if (this.#held) {
      return result(false, "etcd: the key of an earlier term is still being released");
    }
    const t0 = this.#now();
    let lease: string | null = null;
    try {
      lease = (await this.#port.grant(this.#spec.ttlSeconds)).id;
      const r = await this.#port.createIfAbsent(this.#key, this.#self, lease);
      if (!r.created) {
        const id = lease;
        lease = null;
        await this.#port.revoke(id).catch(() => {});
        const h = r.holder;
        this.#ok(h === null ? null : { node: h.value, revision: h.createRevision }, null);
        return result(
          false,
          h ? `etcd: the key is held by ${h.value} (revision ${h.createRevision})` : "etcd: taken",
        );
      }
      const took = this.#now() - t0;
      const window = etcdFenceWindowMs(this.#spec.ttlSeconds * 1000, this.#renewMs);
      if (took >= window) {
        // The new term would have to fence at once: give the key back.
        const id = lease;
        lease = null;
        await this.#port.revoke(id).catch(() => {});
        return result(false, `etcd: the claim took ${Math.round(took)} ms (≥ ${window} ms)`);
      }
      this.#held = { lease, revision: r.revision, releasing: false };
      lease = null;
      this.#ok({ node: this.#self, revision: r.revision }, t0);
      result(true, `etcd: key created at revision ${r.revision}`, r.revision, t0);
    } catch (err) {
      // The transaction may have succeeded with its answer lost: revoke the lease we granted.
      if (lease !== null) await this.#port.revoke(lease).catch(() => {});
      this.#failed(err);
      result(false, `etcd: ${_msg(err)}`);
    }
  }

  /** Release the held key once this node left the role and no movable app runs here. */
  #maybeRelease(): void {
    const held = this.#held;
    if (!held || this.#closed) return;
    const c = this.#core;
    if (c.role === "active" && c.epoch === held.revision) return;
    if (c.movableRunning) {
      held.releasing = true; // no renewal for a role we left: the lease runs out on its own
      return;
    }
    if (held.releasing && this.#releaseQueued) return;
    held.releasing = true;
    this.#releaseQueued = true;
    this.#enqueue(async () => {
      this.#releaseQueued = false;
      if (this.#held !== held) return;
      try {
        await this.#port.revoke(held.lease);
        if (this.#held === held) this.#held = null;
        this.#report("info", "coordinator", `etcd: released the key (revision ${held.revision})`);
      } catch (err) {
        this.#failed(err); // retried after the next step; the lease runs out meanwhile
      }
    });
  }
  #releaseQueued = false;

  #ok(holder: { node: string; revision: number } | null, renewSentAt: number | null): void {
    const v = this.#view;
    if (v.failing) this.#report("info", "coordinator", "etcd reachable again");
    v.failing = false;
    v.lastOkAt = this.#now();
    v.lastError = null;
    v.holder = holder;
    if (renewSentAt !== null) v.lastRenewSentAt = renewSentAt;
  }

  #failed(err: unknown): void {
    const v = this.#view;
    if (!v.failing) this.#report("warn", "coordinator", `etcd unreachable: ${_msg(err)}`);
    v.failing = true;
    v.lastError = _msg(err);
  }
}

/**
 * Bound of one etcd call: a third of the lease window (so two calls can fail and a third still
 * renew in time), at least 500 ms.
 */
export function etcdCallTimeoutMs(spec: EtcdSpec, renewMs: number): number {
  return Math.max(500, Math.floor(etcdFenceWindowMs(spec.ttlSeconds * 1000, renewMs) / 3));
}

function _msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
