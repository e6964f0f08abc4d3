/**
 * The action executor: carries out a step's actions in order, behind the state saves they
 * depend on (see {@linkcode ActionExecutor.execute}). The effects themselves are in
 * effects.ts; the saves are queued in save_queue.ts.
 *
 * @module
 */
import type { Action, PersistedState } from "../core/types.ts";
import type { StateStorage } from "../store/state_store.ts";
import { type EffectContext, errText, performAction } from "./effects.ts";
import { SaveQueue } from "./save_queue.ts";

/** The queue of a running agent's actions and state saves. */
export class ActionExecutor {
  /** Queued actions, in order; a rejected link is caught (never holds back later ones). */
  #chain: Promise<void> = Promise.resolve();
  #saves: SaveQueue;
  /** What the effects of the actions touch (effects.ts). */
  #fx: EffectContext;
  /** Why the latest state save failed; null once one succeeds. */
  #persistError: string | null = null;
  /** Durable fields (epoch/role/roleSeq/maintenance) of the latest save queued. */
  #barrierKey: string | null = null;
  /** Grows with every save that changes those fields. */
  #barrierGen = 0;
  /** Highest barrier generation known to be on disk. */
  #durableGen = 0;
  /** Role and epoch of the latest save known to be on disk. */
  #onDisk: { role: string; epoch: number } | null = null;
  /** The latest save queued: resolves to its error, or null once on disk. */
  #lastSave: Promise<string | null> = Promise.resolve(null);

  /** An executor saving to `store`, with the agent's state, ports and callbacks (`deps`). */
  constructor(store: StateStorage, deps: Omit<EffectContext, "persist" | "staleSpawn">) {
    this.#saves = new SaveQueue(store, (state, gen, err) => this.#saved(state, gen, err));
    this.#fx = {
      ...deps,
      persist: (state) => this.persist(state),
      staleSpawn: (epoch) => this.#staleSpawn(epoch),
    };
  }

  /** Why the latest state save failed; null once one succeeds. */
  get persistError(): string | null {
    return this.#persistError;
  }

  /** At boot: the role and epoch of the state file read (on disk already). */
  setOnDisk(role: string, epoch: number): void {
    this.#onDisk = { role, epoch };
  }

  /** Wait for the queued actions, then for the latest save. */
  async drain(): Promise<void> {
    await this.#chain;
    await this.#lastSave;
  }

  /**
   * Carry out a step's actions in order. Saves are serialized and atomic (the store), but only
   * a save that changes the role, epoch, role counter or maintenance flag is a barrier: the
   * actions after it wait until it is on disk, and a spawn or a positive reply is refused while
   * that durable state is not (a new role or epoch reaches the disk before anything is started
   * under it). Other saves (pids, restart counters) go on in the background: a restart in place
   * does not wait for two fsyncs.
   */
  execute(actions: Action[]): void {
    for (const action of actions) {
      if (action.type === "record") {
        this.#fx.record(action.level, action.app, action.kind, action.message);
        continue;
      }
      if (action.type === "persist") {
        this.persist(action.state);
        continue;
      }
      if (action.type === "vip" && action.op === "remove") {
        // Removing is always safe: it starts at once (nothing queued holds it back), and what
        // comes after it (a handover's commit) waits until the addresses are gone.
        // The guard keeps its lease meanwhile: it removes them itself if this agent is late.
        const gone = this.#fx.opts.vip?.apply(action);
        if (gone) {
          this.#chain = this.#chain.then(() => gone);
          this.#fx.opts.lease?.hold?.(gone);
        }
        continue;
      }
      // The durable state this action runs under: the latest barrier queued before it.
      const need = this.#barrierGen;
      const lastSave = action.type === "reply" ? this.#lastSave : null;
      this.#chain = this.#chain.then(async () => {
        // A reply also waits for every save before it: an operator's "ok" means on disk.
        const replyError = lastSave === null ? null : await lastSave;
        // Sticky until a save of that durable state succeeds: a later batch without a barrier
        // of its own (a backoff restart) must not start an app under a role or epoch that
        // never reached the disk.
        const unsaved = this.#durableGen < need
          ? (this.#persistError ?? "cannot write state")
          : replyError;
        // A movable app starts only with its floating IPs (an add refused or failed before).
        const addresses = action.type === "spawn" && action.spec.movable && unsaved === null
          ? this.#fx.opts.vip?.ensure()
          : null;
        if (addresses) await addresses;
        // A floating-IP order is awaited: the apps start after their addresses, and the peer
        // hears of a handover only once they are gone.
        const done = performAction(this.#fx, action, unsaved);
        if (done) await done;
      }).catch((err) =>
        // A rejected chain would hold back every later action for good.
        this.#fx.record("error", null, "internal_error", `${action.type}: ${errText(err)}`)
      );
    }
  }

  /**
   * Queue one save (coalesced with a save of the same durable fields still waiting: see
   * save_queue.ts); a save of new durable fields also holds back the actions after it.
   */
  persist(state: PersistedState): void {
    const key = `${state.epoch}/${state.role}/${state.roleSeq}/${state.maintenance}`;
    const barrier = key !== this.#barrierKey;
    if (barrier) {
      this.#barrierKey = key;
      this.#barrierGen++;
    }
    const saved = this.#saves.push(state, key, this.#barrierGen);
    this.#lastSave = saved;
    if (barrier) this.#chain = this.#chain.then(() => saved.then(() => {}));
  }

  /** A save finished (save_queue.ts): what its waiters are told. */
  #saved(state: PersistedState, gen: number, err: unknown): string | null {
    if (err === null) {
      this.#persistError = null;
      this.#onDisk = { role: state.role, epoch: state.epoch };
      this.#durableGen = Math.max(this.#durableGen, gen);
      return null;
    }
    this.#persistError = `cannot write state: ${errText(err)}`;
    this.#fx.record("error", null, "persist_failed", this.#persistError);
    return this.#persistError;
  }

  /**
   * Why a movable app decided at `epoch` must not start now (null: it may): the node left the
   * active role or that epoch, in memory or on disk, while the spawn waited for its write.
   */
  #staleSpawn(epoch: number): string | null {
    const disk = this.#onDisk;
    if (this.#fx.state.role !== "active" || this.#fx.state.epoch !== epoch) {
      return `superseded: the node is ${this.#fx.state.role} at epoch ${this.#fx.state.epoch} now`;
    }
    if (disk === null || disk.role !== "active" || disk.epoch !== epoch) {
      return `superseded: the state on disk is ${disk ? `${disk.role} e${disk.epoch}` : "none"}`;
    }
    return null;
  }
}
