/**
 * Types shared by the checks and their dispatcher (`run_check.ts`), apart so each check can
 * name its result without importing the dispatcher that imports it.
 *
 * @module
 */
import type { CheckSpec } from "../manifest/types.ts";

/** What one check found: `ok`, and a human sentence saying why (goes into the event log). */
export interface CheckResult {
  ok: boolean;
  detail: string;
}

/** A check that calls the app's interface: every {@linkcode CheckSpec} except `process`. */
export type InterfaceCheckSpec = Exclude<CheckSpec, { type: "process" }>;
