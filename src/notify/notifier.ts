/**
 * Delivery of notifications without ever holding up a decision: {@linkcode Notifier.push} is
 * synchronous and O(1), every sink has its own bounded queue and one delivery in flight at a
 * time, each attempt is bounded by the sink's timeout, and a failed attempt is retried with
 * exponential backoff. A delivery that still fails, or an event dropped because the queue was
 * full, is reported (for the event log and the metrics) and announced to the other sinks.
 *
 * @example
 * ```ts
 * import type { LoadedSink } from "./deliver.ts";
 * import type { NotifyEvent } from "./event.ts";
 * declare const sinks: LoadedSink[];
 * declare const event: NotifyEvent;
 * const n = new Notifier(sinks, { onFailure: (_sink, _ev, why) => console.error(why) });
 * n.push(event);
 * await n.close();
 * ```
 *
 * @module
 */
import { deliver as realDeliver, type LoadedSink, sinkName } from "./deliver.ts";
import type { NotifyEvent } from "./event.ts";

/** Options of {@linkcode Notifier}. */
export interface NotifierOptions {
  /** A delivery given up (after retries) or dropped (queue full). */
  onFailure: (sink: string, ev: NotifyEvent, why: string) => void;
  /** Events waiting per sink; the oldest is dropped beyond it (default 100). */
  maxQueue?: number;
  /** Attempts per event (default 3). */
  attempts?: number;
  /** Wait before the first retry, doubled for each next (default 1 s). */
  backoffMs?: number;
  /** One attempt (tests inject a twin). */
  deliver?: (sink: LoadedSink, ev: NotifyEvent) => Promise<void>;
}

interface _Worker {
  target: LoadedSink;
  name: string;
  queue: NotifyEvent[];
  running: Promise<void> | null;
  /** Removed by {@linkcode Notifier.setSinks}: takes no more events, finishes the one in hand. */
  retired: boolean;
}

/** Identity of a sink: a reload that leaves it unchanged keeps its queue and delivery. */
function _sinkKey(target: LoadedSink): string {
  return JSON.stringify([target.sink, target.key]);
}

/** Per-sink queues and delivery loops. */
export class Notifier {
  #workers: _Worker[];
  /** Removed sinks whose last attempt is still in flight (waited for by `close`). */
  #retired = new Set<_Worker>();
  #opts: Required<NotifierOptions>;
  #closed = false;
  #sleeps = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();

  /** Nothing is sent until {@linkcode Notifier.push}. */
  constructor(sinks: LoadedSink[], opts: NotifierOptions) {
    this.#opts = {
      maxQueue: 100,
      attempts: 3,
      backoffMs: 1000,
      deliver: realDeliver,
      ...opts,
    };
    this.#workers = sinks.map((target) => this.#worker(target));
  }

  /**
   * Replace the sinks (a manifest reload): a sink that is unchanged (same settings, same key)
   * keeps its queue and its delivery in flight; a removed one takes no more events, abandons
   * its queue and finishes only the attempt in hand; a new one starts empty.
   */
  setSinks(sinks: LoadedSink[]): void {
    const old = new Map(this.#workers.map((w) => [_sinkKey(w.target), w]));
    const next: _Worker[] = [];
    for (const target of sinks) {
      const key = _sinkKey(target);
      const kept = old.get(key);
      old.delete(key);
      next.push(kept ?? this.#worker(target));
    }
    for (const w of old.values()) {
      w.retired = true;
      w.queue.length = 0;
      if (w.running) this.#retired.add(w);
    }
    this.#workers = next;
  }

  #worker(target: LoadedSink): _Worker {
    return { target, name: sinkName(target.sink), queue: [], running: null, retired: false };
  }

  /** Names of the sinks, in manifest order. */
  get sinks(): string[] {
    return this.#workers.map((w) => w.name);
  }

  /** Queue `ev` for every sink whose filter takes it. Never throws, never waits. */
  push(ev: NotifyEvent): void {
    for (const w of this.#workers) this.#enqueue(w, ev);
  }

  /**
   * Stop: queued events and pending retries are abandoned; deliveries in flight are waited for
   * at most `graceMs` (a hung receiver must not hold up the agent's exit).
   */
  async close(graceMs = 1000): Promise<void> {
    this.#closed = true;
    for (const s of this.#sleeps) {
      clearTimeout(s.timer);
      s.resolve();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#workers, ...this.#retired].map((w) => w.running)),
      new Promise((r) => (timer = setTimeout(r, graceMs))),
    ]);
    clearTimeout(timer);
  }

  #enqueue(w: _Worker, ev: NotifyEvent): void {
    if (this.#closed || w.retired || !accepts(w.target, ev)) return;
    if (w.queue.length >= this.#opts.maxQueue) {
      const dropped = w.queue.shift()!;
      this.#fail(w, dropped, `queue full (${this.#opts.maxQueue} waiting): dropped`);
    }
    w.queue.push(ev);
    w.running ??= this.#drain(w).finally(() => {
      w.running = null;
      this.#retired.delete(w);
    });
  }

  async #drain(w: _Worker): Promise<void> {
    while (!this.#closed && !w.retired && w.queue.length > 0) {
      const ev = w.queue.shift()!;
      let why = "";
      for (let attempt = 1; attempt <= this.#opts.attempts; attempt++) {
        try {
          await this.#opts.deliver(w.target, ev);
          why = "";
          break;
        } catch (err) {
          why = err instanceof Error ? err.message : String(err);
        }
        if (attempt < this.#opts.attempts) {
          await this.#sleep(this.#opts.backoffMs * 2 ** (attempt - 1));
          if (this.#closed || w.retired) return;
        }
      }
      if (why) this.#fail(w, ev, `${why} (after ${this.#opts.attempts} attempts)`);
    }
  }

  /** Report a failure and tell the other sinks; a failure about a failure goes no further. */
  #fail(w: _Worker, ev: NotifyEvent, why: string): void {
    try {
      this.#opts.onFailure(w.name, ev, why);
    } catch { /* a broken observer must not stop delivery */ }
    if (ev.kind === "notify_failed") return;
    const failed: NotifyEvent = {
      ...ev,
      kind: "notify_failed",
      level: "error",
      reason: `${w.name}: ${ev.kind} notification not delivered: ${why}`,
      time: new Date().toISOString(),
    };
    for (const other of this.#workers) if (other !== w) this.#enqueue(other, failed);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = {
        timer: setTimeout(() => {
          this.#sleeps.delete(s);
          resolve();
        }, ms),
        resolve,
      };
      this.#sleeps.add(s);
    });
  }
}

const _RANK = { info: 0, warn: 1, error: 2 } as const;

/** Whether a sink's filter (kinds, lowest level) takes an event. */
export function accepts(target: LoadedSink, ev: NotifyEvent): boolean {
  const { kinds, level } = target.sink;
  if (kinds !== null && !kinds.includes(ev.kind)) return false;
  return _RANK[ev.level] >= _RANK[level];
}
