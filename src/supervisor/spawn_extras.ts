/**
 * The s3proc part of a {@linkcode SpawnSpec} taken from an app's spec (pidFile, limits, logs),
 * so the agent's spawn call stays one line longer.
 *
 * @example
 * ```ts
 * spawnExtras({ pidFile: "/run/nginx.pid" }); // { pidFile: "/run/nginx.pid" }
 * ```
 *
 * @module
 */
import type { AppSpec } from "../manifest/types.ts";
import type { SpawnSpec } from "./process_runner.ts";

/** The optional spawn fields of an app's spec (only those it sets). */
export function spawnExtras(
  spec: Pick<AppSpec, "pidFile" | "limits" | "logs">,
): Pick<SpawnSpec, "pidFile" | "limits" | "logs"> {
  return {
    ...(spec.pidFile ? { pidFile: spec.pidFile } : {}),
    ...(spec.limits ? { limits: spec.limits } : {}),
    ...(spec.logs ? { logs: spec.logs } : {}),
  };
}
