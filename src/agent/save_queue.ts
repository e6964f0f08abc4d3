/**
 * {@linkcode SaveQueue}: the agent's state saves, one at a time, coalesced.
 *
 * The state file holds the whole node state, so of several saves waiting their turn only the
 * newest counts: a save still waiting is replaced by a newer one with the same durable fields
 * (epoch, role, role counter, maintenance; its `key`). A burst of N app starts then costs a
 * few writes instead of N, and the queue never holds N full copies of an N-app state (at
 * 1,000 apps that was ~200 pending copies, 40 MiB of heap, and a start-all slowed by 1,000
 * fsyncs). A save with other durable fields is never skipped: it is a new entry, written
 * after the ones before it, so every role or epoch change reaches the disk in order.
 *
 * @example
 * ```ts
 * import { MemoryStateStore, newMemoryDisk } from "../store/memory_store.ts";
 * const q = new SaveQueue(new MemoryStateStore(newMemoryDisk()), (_state, _gen, err) =>
 *   err === null ? null : String(err)
 * );
 * const state = {
 *   version: 1 as const, node: "a", epoch: 1, role: "active" as const, roleSeq: 1,
 *   maintenance: false, failedReason: null, apps: {},
 * };
 * const error = await q.push(state, "1/active/1/false", 1); // null: on disk
 * ```
 *
 * @module
 */
import type { PersistedState } from "../core/types.ts";
import type { StateStorage } from "../store/state_store.ts";

/**
 * Told once per write that finished: the state written, the barrier generation of its entry,
 * and the error (null on success). Returns what the entry's promise resolves to.
 */
export type SaveDone = (state: PersistedState, gen: number, error: unknown) => string | null;

interface _Entry {
  state: PersistedState;
  key: string;
  gen: number;
  done: PromiseWithResolvers<string | null>;
}

/** Serialized, coalescing saves to a {@linkcode StateStorage}. */
export class SaveQueue {
  readonly #store: StateStorage;
  readonly #onDone: SaveDone;
  /** Saves waiting their turn (the one being written is not here). */
  #queue: _Entry[] = [];
  #saving = false;
  /** Writes started so far (benchmarks, tests). */
  writes = 0;

  /** A queue over `store`; `onDone` is told of every write's outcome. */
  constructor(store: StateStorage, onDone: SaveDone) {
    this.#store = store;
    this.#onDone = onDone;
  }

  /**
   * Queue a save of `state` with durable fields `key` and barrier generation `gen`. Resolves
   * once a state at least as new is written: to null on success, else to `onDone`'s answer.
   */
  push(state: PersistedState, key: string, gen: number): Promise<string | null> {
    const last = this.#queue.at(-1);
    if (last !== undefined && last.key === key && last.gen === gen) {
      last.state = state;
      return last.done.promise;
    }
    const entry: _Entry = { state, key, gen, done: Promise.withResolvers<string | null>() };
    this.#queue.push(entry);
    if (!this.#saving) void this.#drain();
    return entry.done.promise;
  }

  async #drain(): Promise<void> {
    this.#saving = true;
    for (let entry = this.#queue.shift(); entry; entry = this.#queue.shift()) {
      this.writes++;
      let error: unknown = null;
      try {
        await this.#store.save(entry.state);
      } catch (err) {
        error = err ?? new Error("save failed");
      }
      let result: string | null;
      try {
        result = this.#onDone(entry.state, entry.gen, error);
      } catch (err) {
        result = String(err);
      }
      entry.done.resolve(result);
    }
    this.#saving = false;
  }
}
