/**
 * The "predicted" column of the benchmark targets: the worst case `baton validate` prints for
 * the very manifest a figure ran (`src/manifest/failover_times.ts`), next to what was measured.
 * The prediction bounds baton's part only; the app's start-up and the round trips come on top
 * (the figures say so in their notes).
 *
 * @example
 * ```ts
 * const t = await timesOf("/tmp/bench-x/baton.yaml");
 * predictedText(t.cluster.hostDeath); // "≤ 1200 ms (deadAfter 1s + interval 200ms …)"
 * ```
 *
 * @module
 */
import { loadManifestFile } from "../../src/manifest/load.ts";
import {
  type Bound,
  type FailoverTimes,
  failoverTimes,
} from "../../src/manifest/failover_times.ts";

/** The worst-case times of the manifest at `path` (throws if it does not load). */
export async function timesOf(path: string): Promise<FailoverTimes> {
  const r = await loadManifestFile(path);
  if (!r.ok) {
    throw new Error(`${path}: ${r.errors.map((e) => e.message).join("; ")}`);
  }
  return failoverTimes(r.manifest);
}

/** A bound as a table cell: `≤ N ms (formula)`, or why there is none. */
export function predictedText(b: Bound | null | undefined): string {
  if (b === null || b === undefined) return "—";
  if (b.ms === null) return `not detected (${b.how})`;
  return `${b.ms === 0 ? "" : "≤ "}${b.ms} ms (${b.how})`;
}

/** The times of one app of `t` (throws if the manifest has no such app). */
export function appTimes(t: FailoverTimes, app: string): FailoverTimes["apps"][number] {
  const a = t.apps.find((x) => x.app === app);
  if (!a) throw new Error(`no app ${app} in the benchmark manifest`);
  return a;
}
