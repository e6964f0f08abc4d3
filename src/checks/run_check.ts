/**
 * One call of an app's interface (flow 2, step t1 of the design): dispatches an interface
 * check spec to the http, tcp or exec check. Never throws and is bounded by `spec.timeoutMs`.
 *
 * @module
 */

import { httpCheck } from "./http_check.ts";
import { tcpCheck } from "./tcp_check.ts";
import { execCheck } from "./exec_check.ts";

import type { CheckResult, InterfaceCheckSpec } from "./check_types.ts";

export type { CheckResult, InterfaceCheckSpec } from "./check_types.ts";

/**
 * Runs one interface check. Resolves (never rejects) within about `spec.timeoutMs`;
 * a stall is a failure whose detail says how long was waited.
 *
 * @example
 * ```ts
 * const r = await runCheck({
 *   type: "tcp", host: "127.0.0.1", port: 5432,
 *   intervalMs: 5000, timeoutMs: 1000, failures: 3, initialDelayMs: 0,
 * });
 * if (!r.ok) console.log(`check failed: ${r.detail}`);
 * ```
 */
export async function runCheck(spec: InterfaceCheckSpec): Promise<CheckResult> {
  try {
    switch (spec.type) {
      case "http":
        return await httpCheck(spec);
      case "tcp":
        return await tcpCheck(spec);
      case "exec":
        return await execCheck(spec);
    }
  } catch (e) {
    // The checks catch their own errors; this is the last line of the "never throws" promise.
    return { ok: false, detail: `check crashed: ${e instanceof Error ? e.message : String(e)}` };
  }
  const unknown: never = spec;
  return {
    ok: false,
    detail: `unknown check type: expected http, tcp or exec, found ${
      JSON.stringify((unknown as { type: unknown }).type)
    }`,
  };
}
