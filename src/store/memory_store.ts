/**
 * In-memory twins of the state directory: {@linkcode MemoryStateStore} (of `StateStore`) and
 * {@linkcode MemoryEventLog} (of `EventLog`). The data lives in a {@linkcode MemoryDisk} that
 * outlives the store, as a state directory outlives the agent: a restarted agent gets a new
 * store over the same disk. The simulation makes writes slow or failing through a
 * {@linkcode WritePolicy}; the timers it waits on are the writing agent's, so a paused agent's
 * write waits too, and a killed agent's write never lands.
 *
 * @example
 * ```ts
 * const disk = newMemoryDisk();
 * const store = new MemoryStateStore(disk);
 * const release = await store.lock();
 * await store.save({
 *   version: 1, node: "a", epoch: 1, role: "active", roleSeq: 1, maintenance: false,
 *   failedReason: null, apps: {},
 * });
 * release();
 * ```
 *
 * @module
 */
import type { Timers } from "../clock/clock.ts";
import type { PersistedState } from "../core/types.ts";
import { type EventRecord, type EventSink, RECENT_CAPACITY } from "./event_log.ts";
import {
  type LoadResult,
  parseState,
  persistedStateSchema,
  type StateStorage,
} from "./state_store.ts";

/** The contents of one simulated state directory. */
export interface MemoryDisk {
  /** Text of `state.json`, or null before the first save. */
  stateText: string | null;
  /** Whether an agent holds the lock. */
  locked: boolean;
  /** Every event record appended, oldest first (bounded to `RECENT_CAPACITY` × 4). */
  events: EventRecord[];
}

/** An empty state directory. */
export function newMemoryDisk(): MemoryDisk {
  return { stateText: null, locked: false, events: [] };
}

/** How one write goes: after `delayMs` it lands, or fails with `error`. */
export interface WriteOutcome {
  delayMs: number;
  error: string | null;
}

/** Decides each write's outcome (the simulation's slow and failing disks). */
export type WritePolicy = (state: PersistedState) => WriteOutcome;

/** Options of {@linkcode MemoryStateStore}. */
export interface MemoryStoreOptions {
  /** Timers a slow write waits on (the writing agent's). Default: writes never wait. */
  timers?: Timers;
  /** Default: every write lands at once. */
  policy?: WritePolicy;
}

/** In-memory {@linkcode StateStorage} over a {@linkcode MemoryDisk}. */
export class MemoryStateStore implements StateStorage {
  readonly #disk: MemoryDisk;
  readonly #timers: Timers | null;
  readonly #policy: WritePolicy;
  #chain: Promise<void> = Promise.resolve();

  /** A store over `disk`. */
  constructor(disk: MemoryDisk, opts: MemoryStoreOptions = {}) {
    this.#disk = disk;
    this.#timers = opts.timers ?? null;
    this.#policy = opts.policy ?? (() => ({ delayMs: 0, error: null }));
  }

  /** {@inheritDoc StateStorage.load} */
  load(): Promise<LoadResult> {
    const text = this.#disk.stateText;
    return Promise.resolve(text === null ? { ok: true, state: null } : parseState(text, "memory"));
  }

  /** {@inheritDoc StateStorage.save} */
  save(state: PersistedState): Promise<void> {
    const run = this.#chain.then(() => this.#save(state));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #save(state: PersistedState): Promise<void> {
    const checked = persistedStateSchema.safeParse(state);
    if (!checked.success) {
      throw new Error(
        `state to save: expected a version-1 PersistedState, found ${
          checked.error.issues[0]?.message
        }`,
      );
    }
    const text = JSON.stringify(state);
    const outcome = this.#policy(state);
    if (outcome.delayMs > 0 && this.#timers !== null) {
      const timers = this.#timers;
      await new Promise<void>((resolve) => timers.set(resolve, outcome.delayMs));
    }
    if (outcome.error !== null) {
      throw new Error(`state file memory: cannot save it: ${outcome.error}`);
    }
    this.#disk.stateText = text;
  }

  /** {@inheritDoc StateStorage.lock} */
  lock(): Promise<() => void> {
    if (this.#disk.locked) {
      return Promise.reject(
        new Error(
          "another agent (pid unknown) uses this state directory memory (lock file memory)",
        ),
      );
    }
    this.#disk.locked = true;
    let released = false;
    return Promise.resolve(() => {
      if (released) return;
      released = true;
      this.#disk.locked = false;
    });
  }
}

/** In-memory {@linkcode EventSink} over a {@linkcode MemoryDisk}: survives a new instance. */
export class MemoryEventLog implements EventSink {
  readonly #disk: MemoryDisk;

  /** A log over `disk` (its earlier records are the recent ones). */
  constructor(disk: MemoryDisk) {
    this.#disk = disk;
  }

  /** {@inheritDoc EventSink.append} */
  append(record: EventRecord): void {
    const list = this.#disk.events;
    list.push(record);
    if (list.length > RECENT_CAPACITY * 4) list.splice(0, list.length - RECENT_CAPACITY);
  }

  /** {@inheritDoc EventSink.recent} */
  recent(n: number): EventRecord[] {
    if (n <= 0) return [];
    return this.#disk.events.slice(-Math.min(n, RECENT_CAPACITY));
  }
}
