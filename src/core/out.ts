/**
 * The output collector of one core step: actions in the order drivers must carry them out.
 *
 * @module
 */
import type { Action, Level } from "./types.ts";

/** Collects the actions of one step and whether the durable state changed. */
export class Out {
  /** Actions, in order. */
  readonly actions: Action[] = [];
  /** Set when a durable field changed and has not been persisted yet in this step. */
  dirty = false;

  /** Queue an action. */
  push(action: Action): void {
    this.actions.push(action);
  }

  /** Record a decision with its reason (kept in memory and in the event log by the driver). */
  record(level: Level, app: string | null, kind: string, message: string): void {
    this.actions.push({ type: "record", level, app, kind, message });
  }
}
