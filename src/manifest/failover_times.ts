/**
 * Worst-case times from each kind of failure to the app running again, computed from the
 * manifest alone (`baton validate` prints them). They bound what baton adds; the app's own
 * start-up time (until it serves) and network round trips (a few ms on a LAN) come on top.
 * `docs/benchmarks.md` measures the same paths; its predicted column is these numbers.
 *
 * Notation, per app: check interval `I`, timeout `T`, failures `N`, initial delay `D0`,
 * `stop.timeout` `S`, `restart.backoff` `B`; per cluster: heartbeat interval `i`, `deadAfter`
 * `d`, `fenceAfter` `f`; a tick is at most `TICK` = 50 ms late (the margin the timing rule
 * `f + i + 100ms ≤ d` reserves; `status.eventLoop` shows the measured lateness).
 *
 * - **crash → restarted here**: 0. The exit of a child is seen at once (an app adopted after an
 *   agent restart is polled every 100 ms), and the first restart has no delay.
 * - **hang → detected and replaced here**: `H + S`, with detection
 *   `H = max(I, D0) + (N − 1)·max(I, T) + T`: the first check that can fail starts at most
 *   `max(I, D0)` after the hang (checks run start to start every `I`, the first `D0` after a
 *   start), the next ones every `max(I, T)` (never two at once), the N-th fails `T` after it
 *   started; then the hung process gets SIGTERM + SIGCONT and SIGKILL after `S`, and is
 *   restarted at once. A `process` check cannot see a hang (null).
 * - **second failure → running on the peer**: detection (0 for a crash, `H` for a hang) +
 *   `max S` over the movable apps (they stop in parallel, the failing one too) + the fence
 *   command if any (bounded to 60 s) + the prepare/commit/witness-claim round trips. A
 *   non-movable app itself stays and is restarted after `B`; the movable apps move.
 * - **host death → running on the standby**: `d + i`. The standby takes over `d` after it last
 *   heard the active; with a baton witness the witness must not have heard it for `d` either,
 *   and a claim it refuses because its view is a little fresher is asked again one `i` later.
 *   Without a witness (or with a plain HTTP one) it is `d`.
 * - **partition** (the active cut off from the standby and the witness): the isolated active
 *   SIGKILLs its movable apps by `f + TICK` after the send time of its last answered request;
 *   the standby may start them no earlier than `d` after it last heard the active (which is
 *   at or after that send time). The gap `d − f − TICK` > 0 is the proof of no overlap; the apps
 *   run again on the standby by `d + i`. With two nodes and no witness both sides keep the
 *   apps (no fencing): the gap is absent and `baton validate` warns.
 *
 * @module
 */
import { etcdFenceWindowMs } from "./coordinator.ts";
import { formatDuration } from "./duration.ts";
import type { AppSpec, Manifest } from "./types.ts";

/** Lateness of a tick the timing rule allows for (see the module doc). */
export const TICK_MS = 50;
/** Bound of the fence command (the agent kills it after this). */
export const FENCE_BOUND_MS = 60_000;

/** One worst-case time: milliseconds (null: not detected / does not apply) and how. */
export interface Bound {
  ms: number | null;
  /** The formula with the manifest's values, e.g. `1s + 2×1s + 1s + stop 10s`. */
  how: string;
}

/** The times of one app. */
export interface AppTimes {
  app: string;
  movable: boolean;
  crash: Bound;
  hang: Bound;
  /** A failure of the restarted app inside its window (null on a single node). */
  secondCrash: Bound | null;
  secondHang: Bound | null;
}

/** The times of the cluster. */
export interface ClusterTimes {
  /** Null on a single node. */
  hostDeath: Bound | null;
  /** Null on a single node. */
  partition: {
    /** The isolated active has SIGKILLed its movable apps by then (after its last contact). */
    activeStoppedMs: number | null;
    /** The standby may start them from then (after it last heard the active). */
    standbyStartsMs: number;
    /** `standbyStartsMs − activeStoppedMs`, null when nothing fences (no witness). */
    gapMs: number | null;
    /** The apps run again on the standby by then. */
    runningAgainMs: number;
    how: string;
  } | null;
}

/** Everything {@linkcode failoverTimes} computes. */
export interface FailoverTimes {
  apps: AppTimes[];
  cluster: ClusterTimes;
}

const fd = formatDuration;

/** Hang detection `H` of one app (null for a process check), with its formula. */
export function hangDetection(spec: AppSpec): Bound {
  const c = spec.check;
  if (c.type === "process") return { ms: null, how: "a process check cannot see a hang" };
  const first = Math.max(c.intervalMs, c.initialDelayMs);
  const step = Math.max(c.intervalMs, c.timeoutMs);
  const ms = first + (c.failures - 1) * step + c.timeoutMs;
  const mid = c.failures > 1 ? ` + ${c.failures - 1}×${fd(step)}` : "";
  return { ms, how: `${fd(first)}${mid} + ${fd(c.timeoutMs)}` };
}

/**
 * The worst-case times of every app and of the cluster.
 *
 * @example
 * ```ts
 * import type { Manifest } from "./types.ts";
 * declare const manifest: Manifest;
 * const t = failoverTimes(manifest);
 * t.apps[0]?.hang.ms; // e.g. 14000 for checks every 1s, timeout 1s, 3 failures, stop 10s
 * ```
 */
export function failoverTimes(m: Manifest): FailoverTimes {
  const hb = m.cluster.heartbeat;
  const multi = Object.keys(m.nodes).length > 1;
  const movable = Object.values(m.apps).filter((a) => a.movable);
  const maxStop = Math.max(0, ...movable.map((a) => a.stop.timeoutMs));
  const fence = m.cluster.fence ? FENCE_BOUND_MS : 0;
  const handoverHow = `stop ${fd(maxStop)}` + (fence ? ` + fence ≤ ${fd(fence)}` : "");
  const apps = Object.values(m.apps).map((spec): AppTimes => {
    const h = hangDetection(spec);
    const stop = spec.stop.timeoutMs;
    const second = (detect: number | null, how: string): Bound | null => {
      if (!multi) return null;
      if (detect === null) return { ms: null, how };
      if (!spec.movable) {
        const b = spec.restart.backoffMs;
        const hung = detect > 0;
        return {
          ms: detect + (hung ? stop : 0) + b,
          how: `${how}${hung ? ` + stop ${fd(stop)}` : ""} + backoff ${fd(b)}`,
        };
      }
      return { ms: detect + maxStop + fence, how: `${how} + ${handoverHow}` };
    };
    return {
      app: spec.name,
      movable: spec.movable,
      crash: { ms: 0, how: "exit seen at once, restarted without delay" },
      hang: h.ms === null ? h : { ms: h.ms + stop, how: `${h.how} + stop ${fd(stop)}` },
      secondCrash: second(0, "exit seen at once"),
      secondHang: second(h.ms, h.how),
    };
  });
  if (!multi) return { apps, cluster: { hostDeath: null, partition: null } };
  const etcd = m.cluster.coordinator?.etcd;
  if (etcd) {
    // etcd as the coordinator (issue 14): the key goes when its lease expires (ttl after the
    // last renewal); the isolated holder stops at the lease window (docs/design.md §7).
    const ttl = etcd.ttlSeconds * 1000;
    const window = etcdFenceWindowMs(ttl, hb.intervalMs);
    const start = Math.max(ttl, hb.deadAfterMs) + hb.intervalMs;
    const stop = Math.max(window, hb.fenceAfterMs) + TICK_MS;
    return {
      apps,
      cluster: {
        hostDeath: {
          ms: start,
          how: `etcd lease ttl ${fd(ttl)} (or deadAfter, the longer) + interval ${
            fd(hb.intervalMs)
          } (the next claim)`,
        },
        partition: {
          activeStoppedMs: stop,
          standbyStartsMs: ttl,
          gapMs: ttl - stop,
          runningAgainMs: start,
          how: `active stops by the lease window ${fd(window)} + tick ${fd(TICK_MS)}; the key ` +
            `is gone from ttl ${fd(ttl)}`,
        },
      },
    };
  }
  const baton = m.cluster.witness !== null;
  const takeover = baton ? hb.deadAfterMs + hb.intervalMs : hb.deadAfterMs;
  const takeoverHow = baton
    ? `deadAfter ${fd(hb.deadAfterMs)} + interval ${
      fd(hb.intervalMs)
    } (a refused claim of a baton witness)`
    : `deadAfter ${fd(hb.deadAfterMs)}`;
  const stopped = baton ? hb.fenceAfterMs + TICK_MS : null;
  // Survivor fencing: the apps start once the fence of the dead host exited 0 (one attempt is
  // bounded by fenceTimeout; without a baton witness the lower-priority node waits fenceDelay).
  const f = m.cluster.fencing;
  const fenced = f !== undefined && f.mode !== "off" &&
    Object.values(m.nodes).some((n) => (n.fence?.length ?? 0) > 0);
  const fenceMs = fenced ? f.timeoutMs + (m.cluster.witness?.kind === "baton" ? 0 : f.delayMs) : 0;
  const fenceHow = !fenced ? "" : ` + the fence, up to fenceTimeout ${fd(f.timeoutMs)}` +
    (m.cluster.witness?.kind === "baton" ? "" : ` (+ fenceDelay ${fd(f.delayMs)})`) +
    (f.mode === "required" ? "; fencing required: none until a fence succeeds" : "");
  return {
    apps,
    cluster: {
      hostDeath: { ms: takeover + fenceMs, how: takeoverHow + fenceHow },
      partition: {
        activeStoppedMs: stopped,
        standbyStartsMs: hb.deadAfterMs,
        gapMs: stopped === null ? null : hb.deadAfterMs - stopped,
        runningAgainMs: takeover,
        how: stopped === null
          ? "no witness: the isolated active keeps its apps and the standby starts them too"
          : `active stops by fenceAfter ${fd(hb.fenceAfterMs)} + tick ${fd(TICK_MS)}; standby ` +
            `starts from deadAfter ${fd(hb.deadAfterMs)}`,
      },
    },
  };
}

function show(b: Bound | null): string {
  if (b === null) return "-";
  return b.ms === null ? `not detected (${b.how})` : `≤ ${fd(b.ms)}  (${b.how})`;
}

/**
 * The times as the lines `baton validate` prints.
 *
 * @example
 * ```ts
 * import type { Manifest } from "./types.ts";
 * declare const manifest: Manifest;
 * for (const line of formatFailoverTimes(failoverTimes(manifest))) console.log(line);
 * ```
 */
export function formatFailoverTimes(t: FailoverTimes): string[] {
  const lines = [
    "worst-case time to running again (baton's part; add the app's start-up and round trips):",
  ];
  const row = (label: string, value: string) => lines.push(`    ${label.padEnd(40)} ${value}`);
  for (const a of t.apps) {
    lines.push(`  ${a.app}${a.movable ? "" : " (not movable: stays, restarted with backoff)"}:`);
    row("crash → restarted here", show(a.crash).replace("≤ 0s", "0s"));
    row("hang → replaced here", show(a.hang));
    if (a.secondCrash) {
      const where = a.movable ? "on the standby" : "restarted here";
      row(`2nd failure, crash → ${where}`, show(a.secondCrash));
      row(`2nd failure, hang → ${where}`, show(a.secondHang));
    }
  }
  const c = t.cluster;
  if (!c.hostDeath || !c.partition) {
    lines.push("  cluster: one node, nothing to fail over to");
    return lines;
  }
  const p = c.partition;
  lines.push("  cluster:");
  row("host death → on the standby", show(c.hostDeath));
  if (p.activeStoppedMs === null || p.gapMs === null) {
    row("partition", `NO FENCING: ${p.how}`);
  } else {
    row("partition: isolated active stopped by", `${fd(p.activeStoppedMs)}  (${p.how})`);
    row("           standby may start from", fd(p.standbyStartsMs));
    row(
      "           gap",
      `${fd(p.gapMs)}  (${p.gapMs > 0 ? "no overlap" : "OVERLAP POSSIBLE"}); running again ` +
        `on the standby by ${fd(p.runningAgainMs)}`,
    );
  }
  return lines;
}
