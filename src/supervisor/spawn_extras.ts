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

/**
 * The argv to put before an app's command so that its stdout and stderr go to `pipe`, opened
 * read-write (the app then holds a reader itself and never gets SIGPIPE); the PID stays the
 * app's own.
 *
 * @example
 * ```ts
 * pipePrefix("/var/lib/baton/alpha/logwriter/web.pipe");
 * // ["/bin/sh", "-c", 'exec 1<>"$1" 2>&1; shift; exec "$@"', "baton-log", "/var/...pipe"]
 * ```
 */
export function pipePrefix(pipe: string): string[] {
  return ["/bin/sh", "-c", 'exec 1<>"$1" 2>&1; shift; exec "$@"', "baton-log", pipe];
}
