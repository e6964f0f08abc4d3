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
      `100 ms, deadAfter 500 ms (fenceAfter default 250 ms); apps: one movable \`sleep\`. ` +
      `\`stress-ng --cpu 2\` runs for ${o.loadSeconds} s on the 2 cores.`,
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
  let epochChanges = 0;
  let roleChanges = 0;
  const hbAge: Record<string, number> = { alpha: 0, beta: 0 };
  const statusMs: number[] = [];
  const events: string[] = [];
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
    const args = ["--cpu", "2", "--timeout", `${o.loadSeconds}s`, "--quiet"];
    fig.commands.push(`${o.tools.stressNg} ${args.join(" ")}`);
    stress = new Deno.Command(o.tools.stressNg!, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const end = performance.now() + o.loadSeconds * 1000;
    while (performance.now() < end) {
      for (const n of ["alpha", "beta"]) {
        const t = performance.now();
        const s = await cluster.status(n);
        statusMs.push(performance.now() - t);
        if (!s) {
          events.push(`${n} did not answer its status within 2 s`);
          continue;
        }
        const prev = last[n]!;
        if (s.epoch !== prev.epoch) {
          epochChanges++;
          events.push(`${n}: epoch ${prev.epoch} → ${s.epoch}`);
        }
        if (s.role !== prev.role) {
          roleChanges++;
          events.push(`${n}: role ${prev.role} → ${s.role} (${s.roleReason})`);
        }
        for (const p of s.peers) {
          const age = (p as { lastHeartbeatAgeMs?: number | null }).lastHeartbeatAgeMs ?? 0;
          hbAge[n] = Math.max(hbAge[n] ?? 0, age);
        }
        last[n] = s;
      }
      await sleep(250);
    }
    // Warnings the agents logged during the window (peer_down, hold, claim, isolated …).
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
  const st = summarize(statusMs);
  fig.tables.push({
    title: `${o.loadSeconds} s of stress-ng --cpu 2`,
    header: ["measure", "value"],
    rows: [
      ["epoch changes (takeovers)", String(epochChanges)],
      ["role changes", String(roleChanges)],
      ["max heartbeat age alpha saw for beta", `${fmtMs(hbAge.alpha ?? NaN)} ms`],
      ["max heartbeat age beta saw for alpha", `${fmtMs(hbAge.beta ?? NaN)} ms`],
      [
        "GET /v1/status under load: median / p95 / max",
        `${fmtMs(st.median)} / ${fmtMs(st.p95)} / ${fmtMs(st.max)} ms (n ${st.n})`,
      ],
    ],
  });
  fig.series.push({ label: "GET /v1/status under load (ms)", samples: statusMs });
  fig.targets.push({
    what: "takeovers (epoch changes) under load",
    limit: "0",
    measured: String(epochChanges),
    met: epochChanges === 0,
  });
  for (const e of events.slice(0, 30)) fig.notes.push(e);
  return fig;
}
