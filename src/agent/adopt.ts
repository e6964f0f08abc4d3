/**
 * Adoption at boot: the apps still running from before the agent (re)started. The state file's
 * records whose process is the same one (pid and start time), then the processes of this
 * node's apps that no record names (adopted, or killed as a second copy), then the leftovers
 * of a dead copy in the app cgroups.
 *
 * @module
 */
import type { AdoptedApp, PersistedState, RecordKind } from "../core/types.ts";
import { findAppProcesses } from "../supervisor/orphans.ts";
import { isSameProcess } from "../supervisor/proc.ts";
import { spawnExtras } from "../supervisor/spawn_extras.ts";
import type { AgentOptions } from "./agent_options.ts";

/** Writes an event record (the agent's). */
export type RecordFn = (
  level: "info" | "warn" | "error",
  app: string | null,
  kind: RecordKind,
  message: string,
) => void;

/**
 * Adopt the apps of `persisted` still running and the unrecorded ones of this node: the
 * `adopted` and `lost` facts of the core's `boot` event.
 */
export function adoptRunning(
  opts: AgentOptions,
  persisted: PersistedState | null,
  record: RecordFn,
): { adopted: AdoptedApp[]; lost: string[] } {
  const adopted: AdoptedApp[] = [];
  const lost: string[] = [];
  for (const [app, rec] of Object.entries(persisted?.apps ?? {})) {
    if ((opts.isSameProcess ?? isSameProcess)(rec.pid, rec.startTime)) {
      opts.runner.adopt(app, rec.pid, rec.startTime, spawnExtras(opts.manifest.apps[app] ?? {}));
      adopted.push({ app, ...rec });
    } else {
      lost.push(app);
    }
  }
  adoptOrphans(opts, record, adopted, lost);
  for (const app of opts.runner.cleanStale?.(adopted.map((a) => a.app)) ?? []) {
    record("warn", app, "stale_killed", "processes left by a dead copy: cgroup killed");
  }
  return { adopted, lost };
}

/**
 * Processes of this node's apps that the state file does not name (the agent died between
 * starting one and recording it): adopt one per app that has no live record, SIGKILL the
 * process group of any other (a duplicate).
 */
function adoptOrphans(
  opts: AgentOptions,
  record: RecordFn,
  adopted: AdoptedApp[],
  lost: string[],
): void {
  const m = opts.manifest;
  const runner = opts.runner;
  // Only processes proven ours: a spawn token of the ledger, or the app's cgroup.
  const find = opts.findAppProcesses ??
    (() =>
      findAppProcesses(
        m.cluster.name,
        opts.node,
        runner.cgroups ?? null,
        runner.spawnLedger?.snapshot() ?? null,
      ));
  for (const p of find()) {
    if (adopted.some((a) => a.pid === p.pid)) continue;
    const spec = m.apps[p.app];
    if (adopted.some((a) => a.app === p.app)) {
      // Never a PID whose start time is not the one seen (it was reused meanwhile).
      if (!(opts.isSameProcess ?? isSameProcess)(p.pid, p.startTime)) continue;
      record("warn", p.app, "orphan_killed", `pid ${p.pid} is a second copy: SIGKILL`);
      const kill = opts.kill ?? Deno.kill;
      for (const target of [-p.pid, p.pid]) {
        try {
          kill(target, "SIGKILL");
        } catch { /* gone */ }
      }
      continue;
    }
    opts.runner.adopt(p.app, p.pid, p.startTime, spawnExtras(spec ?? {}));
    // Started from the current spec as far as we know; a removed app is stopped by reconcile.
    adopted.push({
      app: p.app,
      pid: p.pid,
      startTime: p.startTime,
      specHash: spec?.hash ?? "",
      restarts: 0,
    });
    const i = lost.indexOf(p.app);
    if (i >= 0) lost.splice(i, 1);
    record("warn", p.app, "orphan_adopted", `pid ${p.pid} was running unrecorded: adopted`);
  }
}
