/**
 * The simulated network of the seeded simulation, and the seeded randomness it draws from.
 *
 * Every message between two endpoints (node names, or `"witness"`) asks {@linkcode SimNetwork}
 * for its fate: a delivery delay, or loss. Loss comes from partitions (directed link blocks)
 * and from random noise; delays are random, so messages overtake each other (reordering).
 * Each call draws the same number of random numbers whatever the outcome, so disabling one
 * fault does not shift the random stream of every later message (which keeps shrunk traces
 * close to the original run).
 *
 * A block `a → b` has one of two meanings ({@linkcode OneWayModel}):
 * - `"connection"` (default): `a` cannot open a connection to `b` (a firewall dropping new
 *   connections, a broken route one way). Requests from `a` to `b` are lost; requests from
 *   `b` to `a` and their replies get through. This is what HTTP over TCP can see: a
 *   direction where single packets are lost makes every exchange fail both ways, which is a
 *   symmetric partition.
 * - `"message"`: every message from `a` to `b` is lost, replies included (a request from `b`
 *   reaches `a`, its reply does not). Harsher than TCP allows; kept for exploration.
 *
 * @example
 * ```ts
 * const net = new SimNetwork(new Rng(42), { lossRate: 0.05, spikeRate: 0.02 });
 * net.block("alpha", "beta");
 * net.transmit("alpha", "beta"); // null: lost in the partition
 * net.transmit("beta", "alpha"); // a delay in ms, or null if the noise lost it
 * ```
 *
 * @module
 */

/**
 * A small seeded PRNG (mulberry32). Same seed, same sequence, on every platform.
 *
 * @example
 * ```ts
 * const rng = new Rng(7);
 * const delay = rng.int(1, 20);
 * const net = new Rng(mixSeed(7, "net")); // an independent stream for one purpose
 * ```
 */
export class Rng {
  #s: number;

  /** A generator whose whole sequence is fixed by `seed` (any integer). */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error("Rng.pick: expected a non-empty array, got []");
    return item;
  }
}

/**
 * Derive the seed of an independent stream from a run seed and a purpose label (FNV-1a over
 * the label, mixed with the seed), so each purpose (network, ticks, processes) has its own
 * sequence.
 *
 * @example
 * ```ts
 * const ticks = new Rng(mixSeed(1234, "ticks"));
 * ```
 */
export function mixSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Random trouble on every link, on top of partitions. */
export interface NetworkNoise {
  /** Probability that one message is lost. */
  lossRate: number;
  /** Probability that one message is slow (80–250 ms, beyond most request timeouts). */
  spikeRate: number;
}

/** A network endpoint: a node name, or `"witness"`. */
export type Endpoint = string;

/** What a one-way block stops: new connections in that direction, or every message. */
export type OneWayModel = "connection" | "message";

/**
 * The links between endpoints: directed blocks (partitions) and noisy delays.
 *
 * @example
 * ```ts
 * const net = new SimNetwork(new Rng(1), { lossRate: 0, spikeRate: 0 });
 * net.block("alpha", "witness");
 * net.isBlocked("alpha", "witness"); // true
 * net.unblock("alpha", "witness");
 * ```
 */
export class SimNetwork {
  #rng: Rng;
  #noise: NetworkNoise;
  /** Count of active partitions blocking each directed link, keyed `from>to`. */
  #blocks = new Map<string, number>();
  #model: OneWayModel;

  /** A network with no partitions; `noise` applies to every message. */
  constructor(rng: Rng, noise: NetworkNoise, model: OneWayModel = "connection") {
    this.#rng = rng;
    this.#noise = { ...noise };
    this.#model = model;
  }

  /** Replace the noise (the simulator turns it off when faults stop). */
  setNoise(noise: NetworkNoise): void {
    this.#noise = { ...noise };
  }

  /** Block messages from `from` to `to` (one direction). Blocks stack. */
  block(from: Endpoint, to: Endpoint): void {
    const key = `${from}>${to}`;
    this.#blocks.set(key, (this.#blocks.get(key) ?? 0) + 1);
  }

  /** Undo one {@linkcode SimNetwork.block} of that direction. */
  unblock(from: Endpoint, to: Endpoint): void {
    const key = `${from}>${to}`;
    const n = (this.#blocks.get(key) ?? 0) - 1;
    if (n <= 0) this.#blocks.delete(key);
    else this.#blocks.set(key, n);
  }

  /** Lift every partition. */
  healAll(): void {
    this.#blocks.clear();
  }

  /** Whether a partition currently blocks `from` → `to`. */
  isBlocked(from: Endpoint, to: Endpoint): boolean {
    return this.#blocks.has(`${from}>${to}`);
  }

  /**
   * The fate of one request sent now from `from` to `to`: its delay in milliseconds, or null
   * when it is lost (partition or noise). Always draws three random numbers.
   */
  transmit(from: Endpoint, to: Endpoint): number | null {
    return this.#fate(this.isBlocked(from, to));
  }

  /**
   * The fate of the reply `responder` sends now to `requester`, over the requester's
   * connection: lost if that connection is blocked now (or, in the `"message"` model, if the
   * direction of the reply is).
   */
  transmitReply(responder: Endpoint, requester: Endpoint): number | null {
    return this.#fate(
      this.isBlocked(requester, responder) ||
        (this.#model === "message" && this.isBlocked(responder, requester)),
    );
  }

  #fate(blocked: boolean): number | null {
    const lossDraw = this.#rng.next();
    const spikeDraw = this.#rng.next();
    const delayDraw = this.#rng.next();
    if (blocked) return null;
    if (lossDraw < this.#noise.lossRate) return null;
    if (spikeDraw < this.#noise.spikeRate) return 80 + Math.floor(delayDraw * 170);
    return 1 + Math.floor(delayDraw * 15);
  }
}
