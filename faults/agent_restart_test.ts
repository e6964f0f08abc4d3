/**
 * Agent crashes: the agent is `kill -9`ed and restarted at once, 100 times in a row, under a
 * running two-node cluster with a witness (loopback). The apps must not notice: the restarted
 * agent adopts them. Checked from outside, in /proc, every 20 ms: each movable app has exactly
 * one copy (on alpha) at every sample, and every app keeps its PID to the end.
 *
 * deadAfter is 8 s here, not 600 ms: the design requires an agent to be back, and answered by
 * the witness or its peer, within its lease (the guard SIGKILLs the movable apps `fenceAfter`
 * after the last answered request, docs/guard.md), and `deno run` needs 0.3–4 s to bring an
 * agent up on a loaded machine. The restart times are printed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { LocalCluster, type Status } from "../scripts/local_cluster.ts";
import { appsYaml, measured, newRunId, poll, RUN_MARK } from "./fault_kit.ts";
import { findAppProcesses } from "./proc_census.ts";
import { formatReport, WorkerSampler } from "./sampler.ts";

const RESTARTS = 100;
const MOVABLE = ["web", "api"];

/** app@node → pid, from /proc. */
function pidsByAppNode(run: string): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const p of findAppProcesses((x) => x.env[RUN_MARK] === run)) {
    const key = `${p.app}@${p.node}`;
    m.set(key, [...(m.get(key) ?? []), p.pid].sort());
  }
  return new Map([...m].sort(([a], [b]) => a.localeCompare(b)));
}

function appPids(s: Status): string {
  return s.apps.map((a) => `${a.name}:${a.pid}:${a.state}`).sort().join(",");
}

Deno.test({
  name: `agent restart: kill -9 and immediate restart ${RESTARTS} times under a running ` +
    `cluster → 0 apps lost, 0 duplicated, 0 restarted (PIDs unchanged, one copy each)`,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const run = newRunId();
    const env = { [RUN_MARK]: run };
    const cluster = await LocalCluster.create({
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      appPorts: 2,
      interval: "100ms",
      deadAfter: "8s",
      apps: ([web, api]) =>
        appsYaml([
          {
            name: "web",
            port: web!,
            env,
            check: `{ type: http, url: "http://127.0.0.1:${web}/health", interval: 500ms, ` +
              `timeout: 1s, failures: 3 }`,
          },
          { name: "api", port: api!, env, check: null },
          // Runs on both nodes of one machine: port 0 lets each pick its own.
          { name: "logger", port: 0, env, movable: false, check: null },
        ]),
    });
    let ok = false;
    let sampler: WorkerSampler | null = null;
    try {
      cluster.startWitness();
      await cluster.startAgent("alpha");
      // beta starts once alpha is active: a slow start of alpha must not make beta active.
      await cluster.waitRole("alpha", "active", 30_000);
      await cluster.startAgent("beta");
      await cluster.waitRunning("alpha", ["web", "api", "logger"], 30_000);
      await cluster.waitRunning("beta", ["logger"], 30_000);
      await cluster.waitRole("beta", "standby", 30_000);
      // Every app must be on disk before the first kill (else it is not adopted, by design).
      await poll(
        "alpha and beta to record their apps",
        async () =>
          (await cluster.recordedPids("alpha")).length === 3 &&
          (await cluster.recordedPids("beta")).length === 1,
        20_000,
      );
      const baseline = pidsByAppNode(run);
      const first = (await cluster.status("alpha"))!;
      assert.deepEqual(
        [...baseline.keys()],
        ["api@alpha", "logger@alpha", "logger@beta", "web@alpha"],
        "expected one copy of each app where it belongs before the loop",
      );

      sampler = await WorkerSampler.start(MOVABLE, { kind: "env", mark: RUN_MARK, value: run }, {
        nice: -10,
      });
      const restartMs: number[] = [];
      for (let i = 0; i < RESTARTS; i++) {
        const victim = i % 2 === 0 ? "alpha" : "beta";
        const role = victim === "alpha" ? "active" : "standby";
        await cluster.killAgent(victim, "SIGKILL");
        const t0 = performance.now();
        await cluster.startAgent(victim);
        await poll(
          `restart ${i + 1}: ${victim} back as ${role} with its apps adopted`,
          async () => {
            const s = await cluster.status(victim);
            if (!s) return null;
            restartMs[i] ??= performance.now() - t0;
            const apps = s.apps.filter((a) => a.state === "running" && a.pid !== null);
            const wanted = victim === "alpha" ? 3 : 1;
            return s.role === role && apps.length === wanted &&
                s.peers.every((p) => p.reachable)
              ? s
              : null;
          },
          30_000,
          20,
        );
      }
      const report = await sampler.stop();
      sampler = null;
      const last = (await cluster.status("alpha"))!;
      const beta = (await cluster.status("beta"))!;
      const end = pidsByAppNode(run);
      const sorted = [...restartMs].sort((a, b) => a - b);
      const pct = (q: number) => Math.round(sorted[Math.floor(q * (sorted.length - 1))] ?? 0);
      measured(
        "agent restart",
        `${RESTARTS} kill -9 + restart (alpha and beta in turn); agent back after ` +
          `p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms, max ${pct(1)} ms; epoch ${first.epoch} → ` +
          `${last.epoch}\n${formatReport(report)}`,
      );
      assert.equal(report.duplicateSamples, 0, "expected no sample with two copies of an app");
      for (const app of MOVABLE) {
        assert.equal(report.absentSamples[app], 0, `expected ${app} never missing`);
        assert.deepEqual(
          report.transitions.filter((t) => t.app === app).map((t) => t.hosts),
          [["alpha"]],
          `expected ${app} on alpha throughout`,
        );
      }
      assert.deepEqual(end, baseline, "expected every app to keep its PID (none restarted)");
      assert.equal(last.role, "active");
      assert.equal(beta.role, "standby");
      assert.equal(last.epoch, first.epoch, "expected no takeover (same epoch)");
      assert.equal(appPids(last), appPids(first));
      for (const a of last.apps) assert.equal(a.restarts, 0, `expected no restart of ${a.name}`);
      ok = true;
    } finally {
      if (sampler) await sampler.stop();
      if (!ok) console.log(`[faults] agent restart FAILED; files in ${cluster.dir}`);
      await cluster.stop({ keepDir: !ok });
    }
  },
});
