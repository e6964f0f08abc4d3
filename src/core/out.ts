/**
 * The output collector of one core step: actions in the order drivers must carry them out.
 *
 * @module
 */
import { toPersisted } from "./node_state.ts";
import type { Action, CoreRecordKind, Level, NodeState } from "./types.ts";

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
  /** The persisted view (JSON) last queued in this step, or as it was before it. */
  savedView: string | null = null;

  /** Queue an action. */
  push(action: Action): void {
    this.actions.push(action);
  }

  /**
   * Queue a save of the persisted view if it differs from the one queued last (or loaded):
   * whether to persist is derived by comparison, not remembered by each handler.
   */
  persist(state: NodeState): void {
    const view = toPersisted(state);
    const key = JSON.stringify(view);
    if (key === this.savedView) return;
    this.savedView = key;
    this.actions.push({ type: "persist", state: view });
  }

  /** Record a decision with its reason (kept in memory and in the event log by the driver). */
  record(level: Level, app: string | null, kind: CoreRecordKind, message: string): void {
    this.actions.push({ type: "record", level, app, kind, message });
  }
}
