/**
 * App faults on a real loopback cluster: a hung app (SIGSTOP), a slow app (answers after the
 * check timeout), a crash loop with and without a peer to hand over to, and an app that
 * ignores SIGTERM. Every test watches /proc from a sampler thread: a movable app never has two
 * copies at once, and healthy apps keep their PIDs.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  alive,
  LocalCluster,
  type LocalClusterOptions,
  type Status,
} from "../scripts/local_cluster.ts";
import { type AppEntry, appsYaml, measured, newRunId, poll, RUN_MARK, sleep } from "./fault_kit.ts";
import { formatReport, type SamplerReport, WorkerSampler } from "./sampler.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const SCRIPTS = ["sample_app.ts", "slow_app.ts"];

/** A test app that answers `/health` after the delay (ms) written in a file, read per request. */
const SLOW_APP = `
const arg = (k: string) => { const i = Deno.args.indexOf(k); return i >= 0 ? Deno.args[i + 1] : undefined; };
const port = Number(arg("--port"));
const name = arg("--name") ?? "slow";
const file = arg("--delay-file")!;
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async () => {
  let delay = 0;
  try { delay = Number(Deno.readTextFileSync(file).trim()) || 0; } catch { /* none */ }
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  return new Response("ok " + name + "\\n");
});
`;

function appOf(s: Status | null, name: string) {
  return s?.apps.find((a) => a.name === name) ?? null;
}

/** A check of `/health` every 200 ms, 300 ms timeout, 2 failures. */
function quickCheck(port: number): string {
  return `{ type: http, url: "http://127.0.0.1:${port}/health", interval: 200ms, ` +
    `timeout: 300ms, failures: 2, initialDelay: 1s }`;
}

interface Ctx {
  cluster: LocalCluster;
  run: string;
  /** Scratch directory of the test (scripts, control files). */
  dir: string;
  sampler(apps: string[]): Promise<WorkerSampler>;
}

/** Create a cluster whose apps carry this run's marker; run `fn`; always clean up. */
async function withCluster(
  title: string,
  opts: Omit<LocalClusterOptions, "apps"> & { apps: (ports: number[], dir: string) => AppEntry[] },
  fn: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  const run = newRunId();
  const dir = await Deno.makeTempDir({ prefix: "baton-faults-app-" });
  const cluster = await LocalCluster.create({
    interval: "100ms",
    deadAfter: "3s",
    ...opts,
    apps: (ports) =>
      appsYaml(opts.apps(ports, dir).map((e) => ({ ...e, env: { ...e.env, [RUN_MARK]: run } }))),
  });
  const samplers: WorkerSampler[] = [];
  let ok = false;
  try {
    await fn({
      cluster,
      run,
      dir,
      sampler: async (apps) => {
        const s = await WorkerSampler.start(apps, { kind: "env", mark: RUN_MARK, value: run }, {
          scripts: SCRIPTS,
          nice: -10,
        });
        samplers.push(s);
        return s;
      },
    });
    ok = true;
  } finally {
    for (const s of samplers) await s.stop().catch(() => {});
    if (!ok) console.log(`[faults] ${title} FAILED; files in ${cluster.dir}`);
    await cluster.stop({ keepDir: !ok });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Start witness, alpha, beta (if in the cluster) and wait for alpha active with `apps`. */
async function bringUp(c: LocalCluster, apps: string[], nodes = ["alpha", "beta"]) {
  if (nodes.length > 1) c.startWitness();
  for (const n of nodes) await c.startAgent(n);
  const s = await c.waitRunning("alpha", apps, 30_000);
  if (nodes.includes("beta")) await c.waitRole("beta", "standby", 30_000);
  await poll(
    "alpha to record its apps",
    async () => (await c.recordedPids("alpha")).length === apps.length,
    20_000,
  );
  return s;
}

function assertNoDuplicates(r: SamplerReport, title: string): void {
  measured(title, `sampler\n${formatReport(r)}`);
  assert.equal(r.duplicateSamples, 0, `expected no app with two copies at once`);
}

Deno.test({
  name: "app faults: SIGSTOPped app (hung) → check fails, it is killed and replaced in place; " +
    "the other app untouched, never two copies",
  ...OPTS,
  fn: () =>
    withCluster("SIGSTOP hang", {
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      apps: ([web, api]) => [
        { name: "web", port: web!, check: quickCheck(web!), stop: "{ timeout: 1s }" },
        { name: "api", port: api!, check: null },
      ],
    }, async ({ cluster, sampler }) => {
      const s0 = await bringUp(cluster, ["web", "api"]);
      const [web0, api0] = [appOf(s0, "web")!.pid!, appOf(s0, "api")!.pid!];
      const smp = await sampler(["web", "api"]);
      const t0 = performance.now();
      Deno.kill(web0, "SIGSTOP");
      try {
        const s = await poll("a new web process on alpha", async () => {
          const st = await cluster.status("alpha");
          const w = appOf(st, "web");
          return w && w.state === "running" && w.pid && w.pid !== web0 ? st : null;
        }, 30_000);
        const replacedMs = Math.round(performance.now() - t0);
        const r = await smp.stop();
        measured("SIGSTOP hang", `stopped web (pid ${web0}) replaced after ${replacedMs} ms`);
        assertNoDuplicates(r, "SIGSTOP hang");
        assert.ok(!alive(web0), `expected the hung pid ${web0} to be killed`);
        assert.equal(appOf(s, "api")!.pid, api0, "expected api untouched");
        assert.equal(appOf(s, "web")!.restarts, 1, "expected one restart in place");
        assert.equal(s.role, "active");
      } finally {
        try {
          Deno.kill(web0, "SIGCONT");
        } catch { /* killed, as expected */ }
      }
    }),
});

Deno.test({
  name: "app faults: slow app (answers after the check timeout) → replaced in place; an app " +
    "that is slow but inside the timeout is left alone",
  ...OPTS,
  fn: () =>
    withCluster("slow app", {
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      apps: ([slow, api], dir) => {
        Deno.writeTextFileSync(`${dir}/slow_app.ts`, SLOW_APP);
        Deno.writeTextFileSync(`${dir}/delay`, "0");
        return [
          {
            name: "slow",
            port: slow!,
            check: quickCheck(slow!),
            command: [
              Deno.execPath(),
              "run",
              "--allow-net",
              "--allow-read",
              `${dir}/slow_app.ts`,
              "--port",
              String(slow),
              "--name",
              "slow",
              "--delay-file",
              `${dir}/delay`,
            ],
          },
          { name: "api", port: api!, check: null },
        ];
      },
    }, async ({ cluster, sampler, dir }) => {
      const s0 = await bringUp(cluster, ["slow", "api"]);
      const delayFile = `${dir}/delay`;
      const [slow0, api0] = [appOf(s0, "slow")!.pid!, appOf(s0, "api")!.pid!];
      const smp = await sampler(["slow", "api"]);
      // Slow but within the 300 ms timeout: no restart.
      await Deno.writeTextFile(delayFile, "100");
      await sleep(3000);
      const calm = await cluster.status("alpha");
      assert.equal(appOf(calm, "slow")!.pid, slow0, "expected a 100 ms answer to be good enough");
      assert.equal(appOf(calm, "slow")!.restarts, 0);
      // Slower than the timeout: replaced.
      const t0 = performance.now();
      await Deno.writeTextFile(delayFile, "1500");
      await poll("the slow app's pid to be gone", () => !alive(slow0), 30_000);
      await Deno.writeTextFile(delayFile, "0");
      const s = await poll("a new slow process on alpha", async () => {
        const st = await cluster.status("alpha");
        const a = appOf(st, "slow");
        return a && a.state === "running" && a.pid && a.pid !== slow0 ? st : null;
      }, 30_000);
      const replacedMs = Math.round(performance.now() - t0);
      await sleep(2000);
      const after = (await cluster.status("alpha"))!;
      const r = await smp.stop();
      measured("slow app", `slow web (pid ${slow0}) replaced after ${replacedMs} ms`);
      assertNoDuplicates(r, "slow app");
      assert.equal(appOf(after, "slow")!.pid, appOf(s, "slow")!.pid, "expected the new one kept");
      assert.equal(appOf(after, "slow")!.restarts, 1);
      assert.equal(appOf(after, "api")!.pid, api0, "expected api untouched");
      assert.equal(after.role, "active");
    }),
});

/** Backoff delays in ms, in order, from the node's "restarting here in X (backoff)" events. */
async function backoffDelays(c: LocalCluster, node: string, app: string): Promise<number[]> {
  const text = await Deno.readTextFile(`${c.stateDir(node)}/events.jsonl`).catch(() => "");
  const out: number[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let e: { kind: string; app: string | null; message: string };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.kind !== "backoff" || e.app !== app) continue;
    const m = /restarting here in ([\d.]+)(ms|s|m)\b/.exec(e.message);
    if (!m) continue;
    const n = Number(m[1]);
    out.push(m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000);
  }
  return out;
}

Deno.test({
  name: "app faults: crash loop with no peer → escalates, keeps restarting with growing " +
    "backoff, the healthy app is untouched",
  ...OPTS,
  fn: () =>
    withCluster("crash loop, single node", {
      nodes: [{ name: "alpha", priority: 100 }],
      apps: ([crashy, web]) => [
        { name: "crashy", port: crashy!, extra: ["--crash-after", "200"], check: null },
        { name: "web", port: web!, check: quickCheck(web!) },
      ],
    }, async ({ cluster, sampler }) => {
      await cluster.startAgent("alpha");
      const s0 = await cluster.waitRunning("alpha", ["web"], 30_000);
      const web0 = appOf(s0, "web")!.pid!;
      const smp = await sampler(["crashy", "web"]);
      const delays = await poll(
        "five backoff restarts of crashy",
        async () => {
          const d = await backoffDelays(cluster, "alpha", "crashy");
          return d.length >= 5 ? d : null;
        },
        60_000,
        200,
      );
      const s = (await cluster.status("alpha"))!;
      const r = await smp.stop();
      measured("crash loop, single node", `backoff delays ${delays.join(", ")} ms`);
      assertNoDuplicates(r, "crash loop, single node");
      for (let i = 1; i < delays.length; i++) {
        assert.ok(delays[i]! >= delays[i - 1]!, `expected growing backoff, got ${delays}`);
      }
      assert.ok(delays.at(-1)! > delays[0]!, `expected the backoff to grow, got ${delays}`);
      assert.ok(appOf(s, "crashy")!.escalated, "expected crashy escalated");
      assert.equal(appOf(s, "web")!.pid, web0, "expected web untouched");
      assert.equal(appOf(s, "web")!.restarts, 0);
      assert.equal(s.role, "active");
      assert.ok(
        s.events.some((e) => e.kind === "backoff" && /no peer can take over/.test(e.message)),
        "expected the reason (no peer) in the events",
      );
    }),
});

Deno.test({
  name: "app faults: crash loop with a peer → alpha hands every movable app to beta and " +
    "marks itself failed; never two copies",
  ...OPTS,
  fn: () =>
    withCluster("crash loop, handover", {
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      apps: ([crashy, web]) => [
        // Healthy long enough to come up everywhere, then it crashes.
        { name: "crashy", port: crashy!, extra: ["--crash-after", "1500"], check: null },
        { name: "web", port: web!, check: quickCheck(web!) },
      ],
    }, async ({ cluster, sampler }) => {
      cluster.startWitness();
      await cluster.startAgent("alpha");
      // beta starts once alpha is active: a slow start of alpha must not make beta active.
      await cluster.waitRole("alpha", "active", 30_000);
      await cluster.startAgent("beta");
      await cluster.waitRunning("alpha", ["web"], 30_000);
      const smp = await sampler(["crashy", "web"]);
      const beta = await poll(
        "beta active with web",
        async () => {
          const s = await cluster.status("beta");
          const w = appOf(s, "web");
          return s?.role === "active" && w?.state === "running" ? s : null;
        },
        60_000,
        100,
      );
      const alpha = await cluster.waitRole("alpha", "failed", 20_000);
      await sleep(1000);
      const r = await smp.stop();
      measured("crash loop, handover", `alpha: ${alpha.roleReason}`);
      assertNoDuplicates(r, "crash loop, handover");
      assert.equal(beta.role, "active");
      assert.ok(alpha.apps.every((a) => !a.movable || a.pid === null), "expected alpha empty");
      const webMoves = r.transitions.filter((t) => t.app === "web").map((t) => t.hosts.join());
      assert.equal(webMoves.at(-1), "beta", "expected web to end on beta");
    }),
});

Deno.test({
  name: "app faults: app that ignores SIGTERM → SIGKILLed after its stop timeout on " +
    "switchover, started on beta only after that; never two copies",
  ...OPTS,
  fn: () =>
    withCluster("ignores SIGTERM", {
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      apps: ([web, api]) => [
        {
          name: "web",
          port: web!,
          extra: ["--ignore-sigterm"],
          check: quickCheck(web!),
          stop: "{ timeout: 1500ms }",
        },
        { name: "api", port: api!, check: null },
      ],
    }, async ({ cluster, sampler }) => {
      const s0 = await bringUp(cluster, ["web", "api"]);
      const web0 = appOf(s0, "web")!.pid!;
      const smp = await sampler(["web", "api"]);
      const t0 = performance.now();
      const out = await cluster.cli("alpha", "switchover");
      const tookMs = Math.round(performance.now() - t0);
      assert.equal(out.code, 0, `expected switchover to succeed: ${out.stdout}${out.stderr}`);
      await cluster.waitRunning("beta", ["web", "api"], 30_000);
      const r = await smp.stop();
      const log = await Deno.readTextFile(`${cluster.stateDir("alpha")}/logs/web.log`);
      measured(
        "ignores SIGTERM",
        `switchover took ${tookMs} ms; web was missing for ${r.maxAbsentMs["web"]} ms`,
      );
      assertNoDuplicates(r, "ignores SIGTERM");
      assert.ok(!alive(web0), "expected the stubborn web to be killed");
      assert.match(log, /ignoring SIGTERM/, "expected web to have been asked with SIGTERM first");
      const alpha = (await cluster.status("alpha"))!;
      assert.equal(alpha.role, "standby");
    }),
});
