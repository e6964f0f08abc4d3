/**
 * {@linkcode VipDriver}: carries out the core's `vip` orders on a {@linkcode VipHost} and
 * remembers what this node holds, for status and for a start that must not run without its
 * addresses.
 *
 * - `add`: an address already on the interface that this driver did not add is a **conflict**
 *   (another holder configured it, or a leftover): recorded as an error and shown in status,
 *   never taken silently. It is kept (it is on this host, where the apps now run) and removed
 *   with the others. At a boot that resumes the active role (`adopt`) a present address is this
 *   node's own. Each address added is announced (gratuitous ARP / unsolicited NA).
 * - `remove`: every address is removed; one already gone is no error.
 * - An add refused because the role is not on disk yet, or that failed, stays wanted:
 *   {@linkcode VipDriver.ensure} adds it before the next movable app starts.
 *
 * Orders are carried out one at a time, in the order given.
 *
 * @module
 */
import type { DriverRecordKind } from "../core/types.ts";
import { vipKey } from "../core/vip.ts";
import type { VipSpec } from "../manifest/types.ts";
import type { VipHost } from "./ip_addr.ts";

/** How a driver reports what operators should see (the agent's event log). */
export type VipReport = (
  level: "info" | "warn" | "error",
  kind: DriverRecordKind,
  message: string,
) => void;

/** One floating IP in status. */
export interface VipStatus {
  address: string;
  interface: string;
  /** This node holds it (added it, or adopted it). */
  held: boolean;
  /** The latest problem with it (a conflict, a failed add or remove); null if none. */
  error: string | null;
}

/** A `vip` order of the core (its action; `type` is ignored). */
export interface VipOrder {
  op: "add" | "remove";
  vips: VipSpec[];
  adopt: boolean;
  reason: string;
}

/** What the agent calls; see {@linkcode VipDriver}. */
export interface VipSink {
  /** Where to report (the agent's event log). */
  attach(report: VipReport): void;
  /** Carry out an order; `refused`: the agent may not add now (why), only remember it. */
  apply(order: VipOrder, refused?: string | null): Promise<void>;
  /** Add what is wanted but not held; null when there is nothing to do. */
  ensure(): Promise<void> | null;
  /** Each configured floating IP and whether it is held. */
  status(configured: VipSpec[]): VipStatus[];
  /** Agent shutdown: the addresses stay (a restarted agent adopts them). */
  close(): void;
}

/**
 * The floating-IP driver.
 *
 * @example
 * ```ts
 * import { realVipHost } from "./ip_addr.ts";
 * const vips = new VipDriver(realVipHost());
 * vips.attach((level, kind, message) => console.error(level, kind, message));
 * ```
 */
export class VipDriver implements VipSink {
  readonly #host: VipHost;
  #report: VipReport = () => {};
  /** key → spec of what this node holds. */
  #held = new Map<string, VipSpec>();
  /** key → spec of what the core wants held but is not (refused or failed adds). */
  #pending = new Map<string, VipSpec>();
  #errors = new Map<string, string>();
  #chain: Promise<void> = Promise.resolve();

  /** `host`: where the addresses live. */
  constructor(host: VipHost) {
    this.#host = host;
  }

  /** {@inheritDoc VipSink.attach} */
  attach(report: VipReport): void {
    this.#report = report;
  }

  /** {@inheritDoc VipSink.apply} */
  apply(order: VipOrder, refused: string | null = null): Promise<void> {
    return this.#queue(() => order.op === "add" ? this.#add(order, refused) : this.#remove(order));
  }

  /** {@inheritDoc VipSink.ensure} */
  ensure(): Promise<void> | null {
    if (this.#pending.size === 0) return null;
    const vips = [...this.#pending.values()];
    return this.#queue(() =>
      this.#add({ op: "add", vips, adopt: false, reason: "before a movable app starts" }, null)
    );
  }

  /** {@inheritDoc VipSink.status} */
  status(configured: VipSpec[]): VipStatus[] {
    return configured.map((v) => ({
      address: v.cidr,
      interface: v.interface,
      held: this.#held.has(vipKey(v)),
      error: this.#errors.get(vipKey(v)) ?? null,
    }));
  }

  /** {@inheritDoc VipSink.close} */
  close(): void {
    this.#host.close();
  }

  #queue(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(fn).catch((err) =>
      this.#report("error", "vip_error", `floating IP: ${_message(err)}`)
    );
    this.#chain = next;
    return next;
  }

  async #add(order: VipOrder, refused: string | null): Promise<void> {
    for (const v of order.vips) {
      const key = vipKey(v);
      if (refused !== null) {
        this.#pending.set(key, v);
        this.#fail(key, `${v.cidr} not added on ${v.interface} yet: ${refused}`);
        continue;
      }
      this.#pending.delete(key);
      if (this.#held.has(key)) continue;
      let present: boolean;
      try {
        present = (await this.#host.list(v.interface)).includes(v.address);
      } catch (err) {
        this.#pending.set(key, v);
        this.#fail(key, `cannot read the addresses of ${v.interface}: ${_message(err)}`);
        continue;
      }
      if (present && order.adopt) {
        this.#held.set(key, v);
        this.#errors.delete(key);
        this.#report("info", "vip_added", `${v.cidr} on ${v.interface}: ours from before, kept`);
        continue;
      }
      if (present) {
        this.#held.set(key, v);
        const msg = `${v.cidr} was already on ${v.interface} before this node took over ` +
          `(${order.reason}): another host may hold it too, or it is a leftover; it is kept ` +
          `here and removed with the apps. Check every host (ip -o addr show to ${v.address})`;
        this.#errors.set(key, `CONFLICT: ${msg}`);
        this.#report("error", "vip_conflict", msg);
        this.#host.announce(v);
        continue;
      }
      try {
        await this.#host.add(v);
      } catch (err) {
        this.#pending.set(key, v);
        this.#fail(key, `cannot add ${v.cidr} on ${v.interface}: ${_message(err)}`);
        continue;
      }
      this.#held.set(key, v);
      this.#errors.delete(key);
      this.#host.announce(v);
      this.#report("info", "vip_added", `${v.cidr} on ${v.interface} (${order.reason})`);
    }
  }

  async #remove(order: VipOrder): Promise<void> {
    for (const v of order.vips) {
      const key = vipKey(v);
      this.#pending.delete(key);
      const wasHeld = this.#held.delete(key);
      try {
        const present = wasHeld || (await this.#host.list(v.interface)).includes(v.address);
        if (!present) {
          this.#errors.delete(key);
          continue;
        }
        await this.#host.remove(v);
      } catch (err) {
        this.#fail(key, `cannot remove ${v.cidr} from ${v.interface}: ${_message(err)}`);
        continue;
      }
      this.#errors.delete(key);
      this.#report(
        wasHeld ? "info" : "warn",
        "vip_removed",
        `${v.cidr} off ${v.interface}${wasHeld ? "" : " (a leftover)"} (${order.reason})`,
      );
    }
  }

  #fail(key: string, message: string): void {
    if (this.#errors.get(key) !== message) this.#report("error", "vip_error", message);
    this.#errors.set(key, message);
  }
}

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
