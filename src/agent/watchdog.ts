/**
 * Petting watchdogs only while the agent is healthy. Two watchdogs may be armed: systemd's
 * (`WATCHDOG=1` over the notify socket, when `WATCHDOG_USEC` is set for us) and a Linux
 * watchdog device (`/dev/watchdog`, optional, like Patroni's): a host whose agent stops petting
 * is restarted (systemd) or reset (the device).
 *
 * A pet is not a free-running timer: every `periodMs` the petter runs one decision cycle of the
 * agent (a core tick) and pets only if that cycle completed without error and the timer fired
 * within `maxLagMs` of its due time (the event loop is responsive). A hung loop never fires
 * the timer; a broken core never completes a step; a starved host fires it late: no pet in
 * all three cases.
 *
 * The device is written one byte per healthy cycle; on a clean shutdown the magic character
 * `V` is written before closing so the kernel disarms it (magic close). A device that cannot
 * be opened is reported to the caller, which tells the core (`watchdog: required` refuses the
 * active role without it).
 *
 * @module
 */

/** A device the petter writes to (a real `/dev/watchdog` or, in tests, a plain file). */
export interface WatchdogDevice {
  write(data: Uint8Array): Promise<number>;
  close(): void;
}

/** Open a watchdog device for writing; throws what the open threw. */
export async function openWatchdogDevice(path: string): Promise<WatchdogDevice> {
  const file = await Deno.open(path, { write: true });
  return {
    write: (data) => file.write(data),
    close: () => file.close(),
  };
}

/** Options of {@linkcode HealthPetter}. */
export interface PetterOptions {
  /** How often to run a cycle and pet (ms). */
  periodMs: number;
  /** Largest lateness of the timer that still counts as a responsive loop (ms). */
  maxLagMs: number;
  /** Run one decision cycle; returns whether it completed without error. */
  cycle: () => boolean;
  /** systemd's watchdog (`WATCHDOG=1`), if enabled. */
  notify?: (() => Promise<unknown>) | null;
  /** The watchdog device, if open. */
  device?: WatchdogDevice | null;
  /** Log line for a skipped pet or a device error. */
  log: (line: string) => void;
  /** The device failed (`ok` false) or works again (true): the core is told (a fact). */
  onDevice?: (ok: boolean, detail: string) => void;
  /** Monotonic ms (tests may pin it). */
  now?: () => number;
}

/** Counters of {@linkcode HealthPetter}, for status and tests. */
export interface PetterStats {
  pets: number;
  skipped: number;
  lastSkip: string | null;
}

/** Runs the health-gated pet loop. */
export class HealthPetter {
  readonly stats: PetterStats = { pets: 0, skipped: 0, lastSkip: null };
  #opts: PetterOptions;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;
  #now: () => number;

  /** Build it; nothing runs until {@linkcode HealthPetter.start}. */
  constructor(opts: PetterOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Start the loop (the first cycle runs after one period). */
  start(): void {
    this.#arm();
  }

  #arm(): void {
    if (this.#stopped) return;
    const due = this.#now() + this.#opts.periodMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.beat(this.#now() - due).finally(() => this.#arm());
    }, this.#opts.periodMs);
  }

  /**
   * One round: run the cycle and pet if it was healthy. `lateMs`: how late the timer fired.
   * Returns whether it petted.
   */
  async beat(lateMs: number): Promise<boolean> {
    let why: string | null = null;
    if (lateMs > this.#opts.maxLagMs) {
      why = `event loop ${Math.round(lateMs)} ms late (bound ${this.#opts.maxLagMs} ms)`;
    } else {
      let ok = false;
      try {
        ok = this.#opts.cycle();
      } catch {
        ok = false;
      }
      if (!ok) why = "the decision cycle failed";
    }
    if (why !== null) {
      this.stats.skipped++;
      if (this.stats.lastSkip !== why) this.#opts.log(`baton: watchdog not petted: ${why}`);
      this.stats.lastSkip = why;
      return false;
    }
    this.stats.lastSkip = null;
    this.stats.pets++;
    await Promise.all([
      this.#opts.notify?.(),
      this.#writeDevice(new Uint8Array([0x2e])), // any byte but 'V' pets
    ]);
    return true;
  }

  #deviceOk = true;

  async #writeDevice(data: Uint8Array): Promise<void> {
    const dev = this.#opts.device;
    if (!dev) return;
    try {
      await dev.write(data);
      if (!this.#deviceOk) {
        this.#deviceOk = true;
        this.#opts.onDevice?.(true, "writes succeed again");
      }
    } catch (err) {
      if (this.#deviceOk) {
        this.#deviceOk = false;
        this.#opts.log(`baton: watchdog device write failed: ${err}`);
        this.#opts.onDevice?.(false, `write failed: ${err}`);
      }
    }
  }

  /** Stop petting. `clean`: magic close of the device ('V'), so it does not reset the host. */
  async stop(clean: boolean): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const dev = this.#opts.device;
    if (!dev) return;
    if (clean) await this.#writeDevice(new TextEncoder().encode("V"));
    try {
      dev.close();
    } catch { /* closed */ }
  }
}

/**
 * The pet period for a watchdog of `watchdogMs` (systemd advises half; a third leaves room for
 * one late cycle), capped by `capMs`.
 *
 * @example
 * ```ts
 * petPeriod(10_000, 1_000); // 1000
 * petPeriod(900, 1_000); // 300
 * ```
 */
export function petPeriod(watchdogMs: number, capMs: number): number {
  return Math.max(10, Math.min(Math.floor(watchdogMs / 3), capMs));
}
