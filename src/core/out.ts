/**
 * The output collector of one core step: actions in the order drivers must carry them out.
 *
 * @module
 */
import { toPersisted } from "./node_state.ts";
import type { Action, CoreRecordKind, Level, NodeState, PersistedState } from "./types.ts";

/**
 * The persisted view each state had at the end of its last step (the view last queued for a
 * save, or loaded, or found equal to it). A step compares against it instead of rebuilding
 * and serializing the view of every app first: at 1,000 apps, start-all takes ~2,000 steps,
 * and three JSON copies of the whole view per step were O(N²) garbage (docs/memory.md). If
 * a driver changed durable fields outside a step, the next step sees the difference and saves.
 */
const lastView = new WeakMap<NodeState, PersistedState>();

/** The persisted view `state` had when its last step ended (built now if none is known). */
export function viewBeforeStep(state: NodeState): PersistedState {
  return lastView.get(state) ?? toPersisted(state);
}

/** Top-level keys of a persisted view, as {@linkcode toPersisted} builds it. */
export const PERSISTED_KEYS = [
  "version",
  "node",
  "epoch",
  "role",
  "roleSeq",
  "maintenance",
  "failedReason",
  "apps",
] as const;
/** Keys of one app's entry in a persisted view, as {@linkcode toPersisted} builds it. */
export const PERSISTED_APP_KEYS = ["pid", "startTime", "specHash", "restarts"] as const;

/** Number of own keys of `o`, without building an array of them. */
function keyCount(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

/**
 * Whether `toPersisted(state)` would equal `view` (as JSON, key order aside), without building
 * it: field by field, allocation-free, O(apps). It mirrors {@linkcode toPersisted}; the keys
 * it knows are {@linkcode PERSISTED_KEYS} and {@linkcode PERSISTED_APP_KEYS}, and
 * tests/core_persist_view_test.ts fails when `toPersisted` builds a key they do not list.
 * A view with any other key (an older file loaded at boot) never matches, so it is rewritten.
 */
export function persistedViewMatches(state: NodeState, view: PersistedState): boolean {
  if (
    view.version !== 1 || view.node !== state.self || view.epoch !== state.epoch ||
    view.role !== state.role || view.roleSeq !== state.roleSeq ||
    view.maintenance !== state.maintenance || view.failedReason !== state.failedReason ||
    keyCount(view) !== PERSISTED_KEYS.length || view.apps === null ||
    typeof view.apps !== "object"
  ) {
    return false;
  }
  let running = 0;
  for (const name in state.apps) {
    const app = state.apps[name]!;
    if (app.pid === null || app.startTime === null || app.specHash === null) continue;
    running++;
    const p = Object.hasOwn(view.apps, app.name) ? view.apps[app.name] : undefined;
    if (
      p === undefined || p.pid !== app.pid || p.startTime !== app.startTime ||
      p.specHash !== app.specHash || p.restarts !== app.restarts ||
      keyCount(p) !== PERSISTED_APP_KEYS.length
    ) {
      return false;
    }
  }
  return running === keyCount(view.apps);
}

/** An app failed again inside its window: the host is suspect. */
export interface Escalation {
  app: string;
  reason: string;
  /** The backoff of its restart here if nobody takes the apps. */
  backoffMs: number;
}

/** Collects the actions of one step. */
export class Out {
  /** Actions, in order. */
  readonly actions: Action[] = [];
  /** Escalation intents of the restart policy, resolved by the step (handover or backoff). */
  readonly escalations: Escalation[] = [];
  /** The persisted view last queued in this step, or as it was before it (null: none). */
  savedView: PersistedState | null = null;

  /** Queue an action. */
  push(action: Action): void {
    this.actions.push(action);
  }

  /**
   * Queue a save of the persisted view if it differs from the one queued last (or loaded):
   * whether to persist is derived by comparison, not remembered by each handler.
   */
  persist(state: NodeState): void {
    if (this.savedView !== null && persistedViewMatches(state, this.savedView)) {
      lastView.set(state, this.savedView);
      return;
    }
    const view = toPersisted(state, this.savedView ?? lastView.get(state) ?? null);
    this.savedView = view;
    lastView.set(state, view);
    this.actions.push({ type: "persist", state: view });
  }

  /** Record a decision with its reason (kept in memory and in the event log by the driver). */
  record(level: Level, app: string | null, kind: CoreRecordKind, message: string): void {
    this.actions.push({ type: "record", level, app, kind, message });
  }
}
