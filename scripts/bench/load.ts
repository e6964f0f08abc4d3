/**
 * Figure 5 — no false failover under CPU load. Two agents and a witness on loopback with a
 * 100 ms heartbeat and deadAfter 500 ms, both cores saturated by `stress-ng --cpu 2`; the
 * benchmark polls both statuses and counts epoch and role changes (must be 0), and records
 * the largest heartbeat age each node reported for its peer and the slowest status answer
 * (how late the agents' event loops ran).
 *
 * @module
 */
import { LocalCluster, type Status } from "../local_cluster.ts";
import { missing } from "./anchors.ts";
import {
  type BenchOptions,
  type FigureResult,
  fmtMs,
  newFigure,
  onInterrupt,
  sleep,
  summarize,
} from "./common.ts";

/** Run figure 5. */
export async function benchLoad(o: BenchOptions): Promise<FigureResult> {
  const fig = newFigure("load", "5. No false failover under CPU load");
  fig.method.push(
    `Two agents (alpha 100, beta 50) and a baton witness on loopback, heartbeat interval ` +
      `100 ms, deadAfter 500 ms (fenceAfter default 300 ms); apps: one movable \`sleep\`. ` +
      `\`stress-ng --cpu 2\` runs for ${o.loadSeconds} s on the 2 cores, then \`--cpu 8\` for ` +
      `${Math.max(5, Math.round(o.loadSeconds / 5))} s.`,
    "Every 250 ms the benchmark reads GET /v1/status of both nodes: it counts epoch changes " +
      "and role changes (a takeover changes both), and records each node's largest reported " +
      "`lastHeartbeatAgeMs` of its peer and the slowest status answer.",
  );
  const skip = missing(o.tools.stressNg, "stress-ng", "stress-ng");
  if (skip) {
    fig.skipped.push(skip);
    fig.targets.push({
      what: "takeovers under load",
      limit: "0",
      measured: "not run",
      met: null,
    });
    return fig;
  }
  const cluster = await LocalCluster.create({
    nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
    witness: true,
    interval: "100ms",
    deadAfter: "500ms",
    apps: () => '  s1:\n    command: ["sleep", "infinity"]',
  });
  let stress: Deno.ChildProcess | null = null;
  const cleanup = async () => {
    try {
      stress?.kill("SIGKILL");
    } catch { /* gone */ }
    await stress?.status;
    await cluster.stop();
  };
  const unregister = onInterrupt(cleanup);
  interface Phase {
    cpus: number;
    seconds: number;
    epochChanges: number;
    roleChanges: number;
    hbAge: Record<string, number>;
    lag: Record<string, number>;
    statusMs: number[];
  }
  const phases: Phase[] = [
    { cpus: 2, seconds: o.loadSeconds },
    // Oversubscribed 4×: how much margin the heartbeat has (reported, not a target).
    { cpus: 8, seconds: Math.max(5, Math.round(o.loadSeconds / 5)) },
  ].map((p) => ({
    ...p,
    epochChanges: 0,
    roleChanges: 0,
    hbAge: { alpha: 0, beta: 0 },
    lag: { alpha: 0, beta: 0 },
    statusMs: [],
  }));
  const events: string[] = [];
  const lagOf = (s: Status | null) =>
    (s as { eventLoop?: { maxLagMs: number } } | null)?.eventLoop?.maxLagMs ?? NaN;
  try {
    cluster.startWitness();
    await cluster.startAgent("alpha");
    await sleep(300);
    await cluster.startAgent("beta");
    await cluster.waitRunning("alpha", ["s1"], 30_000);
    await cluster.waitRole("beta", "standby", 30_000);
    await sleep(2000);
    const last: Record<string, Status> = {};
    for (const n of ["alpha", "beta"]) last[n] = (await cluster.status(n))!;
    for (const ph of phases) {
      // The agents' worst event-loop lag so far: what this phase adds is measured against it.
      const lagBefore: Record<string, number> = {};
      for (const n of ["alpha", "beta"]) lagBefore[n] = lagOf(await cluster.status(n));
      const args = ["--cpu", String(ph.cpus), "--timeout", `${ph.seconds}s`, "--quiet"];
      fig.commands.push(`${o.tools.stressNg} ${args.join(" ")}`);
      stress = new Deno.Command(o.tools.stressNg!, {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const end = performance.now() + ph.seconds * 1000;
      while (performance.now() < end) {
        for (const n of ["alpha", "beta"]) {
          const t = performance.now();
          const s = await cluster.status(n);
          ph.statusMs.push(performance.now() - t);
          if (!s) {
            events.push(`${n} did not answer its status within 2 s`);
            continue;
          }
          const prev = last[n]!;
          if (s.epoch !== prev.epoch) {
            ph.epochChanges++;
            events.push(`--cpu ${ph.cpus}: ${n}: epoch ${prev.epoch} → ${s.epoch}`);
          }
          if (s.role !== prev.role) {
            ph.roleChanges++;
            events.push(`--cpu ${ph.cpus}: ${n}: role ${prev.role} → ${s.role} (${s.roleReason})`);
          }
          for (const p of s.peers) {
            const age = (p as { lastHeartbeatAgeMs?: number | null }).lastHeartbeatAgeMs ?? 0;
            ph.hbAge[n] = Math.max(ph.hbAge[n] ?? 0, age);
          }
          const lag = lagOf(s);
          if (lag > (lagBefore[n] ?? 0)) ph.lag[n] = Math.max(ph.lag[n] ?? 0, lag);
          last[n] = s;
        }
        await sleep(250);
      }
      await stress.status;
      stress = null;
      await sleep(2000); // let the cluster settle between phases
    }
    // Warnings the agents logged during the windows (peer_down, hold, claim, loop_lag …).
    for (const n of ["alpha", "beta"]) {
      const s = await cluster.status(n);
      for (const e of s?.events ?? []) {
        if (e.level !== "info") events.push(`${n} ${e.level} ${e.kind}: ${e.message}`);
      }
    }
  } finally {
    await cleanup();
    unregister();
  }
  for (const ph of phases) {
    const st = summarize(ph.statusMs);
    fig.tables.push({
      title: `${ph.seconds} s of stress-ng --cpu ${ph.cpus}` +
        (ph.cpus > 2 ? " (4× oversubscribed: margin, not a target)" : ""),
      header: ["measure", "value"],
      rows: [
        ["epoch changes (takeovers)", String(ph.epochChanges)],
        ["role changes", String(ph.roleChanges)],
        [
          "max heartbeat age alpha saw for beta (status every 250 ms)",
          `${fmtMs(ph.hbAge.alpha!)} ms`,
        ],
        [
          "max heartbeat age beta saw for alpha (status every 250 ms)",
          `${fmtMs(ph.hbAge.beta!)} ms`,
        ],
        [
          "worst event-loop lag (tick timer lateness) alpha / beta, if above the earlier worst",
          `${fmtMs(ph.lag.alpha!)} / ${fmtMs(ph.lag.beta!)} ms`,
        ],
        [
          "GET /v1/status under load: median / p95 / max",
          `${fmtMs(st.median)} / ${fmtMs(st.p95)} / ${fmtMs(st.max)} ms (n ${st.n})`,
        ],
      ],
    });
    fig.series.push({
      label: `GET /v1/status under stress-ng --cpu ${ph.cpus} (ms)`,
      samples: ph.statusMs,
    });
  }
  const main = phases[0]!;
  fig.targets.push({
    what: "takeovers (epoch changes) under load (stress-ng --cpu 2)",
    limit: "0",
    measured: String(main.epochChanges),
    met: main.epochChanges === 0,
  });
  fig.notes.push(
    "The agents run at the default priority (nice 0), like the stress-ng workers. Apps inherit " +
      "the agent's nice value, so baton does not raise its own priority; on a host that is " +
      "routinely CPU-bound give the agent's cgroup more weight (systemd `CPUWeight=`) rather " +
      "than a lower nice value.",
  );
  for (const e of events.slice(0, 30)) fig.notes.push(e);
  return fig;
}
