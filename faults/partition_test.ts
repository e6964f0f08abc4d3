/**
 * Real network partitions between real agents: alpha, beta and a baton witness each run in
 * their own network namespace, joined by a bridge; faults are cut on the bridge (a port set
 * down, or nftables drops). A sampler thread reads /proc every 20 ms and checks that no
 * movable app ever runs twice at the same instant. Heartbeat 100 ms, deadAfter 600 ms,
 * fenceAfter default; two movable sample apps and one non-movable.
 *
 * The simulated hosts share this machine's CPUs, so their agents and witness run at nice -10
 * and the apps at 0 (`BATON_FAULTS_NICE=0` turns that off). `BATON_FAULTS_VERBOSE=1` prints
 * both nodes' decisions merged by time; `BATON_FAULTS_KEEP=1` keeps the files. A failed test
 * always prints the timeline and keeps its files.
 *
 * Skipped (with the reason printed) where network namespaces cannot be made; the selective
 * partitions also need nftables.
 *
 * @module
 */
import assert from "node:assert/strict";
import { sampleAppCommand, type Status } from "../scripts/local_cluster.ts";
import { appsYaml, measured, poll, sleep } from "./fault_kit.ts";
import { probeNetns, Topology } from "./netns.ts";
import { appNice, HOST_NICE, NsCluster } from "./ns_cluster.ts";
import { byApp, findAppProcesses } from "./proc_census.ts";
import { formatReport, type SamplerReport, WorkerSampler } from "./sampler.ts";

const support = probeNetns();
const noNetns = !support.ok;
const noNft = !support.ok || !support.nft;
if (noNetns) console.log(`[faults] partition tests SKIPPED: ${support.reason}`);
else if (noNft) {
  console.log(`[faults] partition tests needing nftables SKIPPED: ${support.nftReason}`);
}

const MOVABLE = ["web", "api"];
const OPTS = { sanitizeOps: false, sanitizeResources: false };

/** Everything a partition scenario works with. */
interface Env {
  topo: Topology;
  cluster: NsCluster;
  /** Start the /proc sampler (on a worker thread). */
  startSampler(): Promise<WorkerSampler>;
  /** app → host of each live copy, from /proc. */
  census(): Map<string, string[]>;
  /** app → pid of each live copy. */
  pids(): Map<string, number[]>;
  status(node: string): Promise<Status | null>;
}

function apps(): string {
  const check = (port: number) =>
    `{ type: http, url: "http://127.0.0.1:${port}/health", interval: 500ms, timeout: 1s, ` +
    `failures: 3, initialDelay: 2s }`;
  const cmd = (port: number, name: string) => [...appNice(), ...sampleAppCommand(port, name)];
  return appsYaml([
    { name: "web", port: 18081, check: check(18081), command: cmd(18081, "web") },
    { name: "api", port: 18082, check: check(18082), command: cmd(18082, "api") },
    { name: "logger", port: 18083, movable: false, check: null, command: cmd(18083, "logger") },
  ]);
}

/** Build topology and cluster, bring alpha up active and beta standby, run `fn`, clean up. */
async function scenario(title: string, fn: (env: Env) => Promise<void>): Promise<void> {
  const topo = await Topology.create(["alpha", "beta", "witness"]);
  let cluster: NsCluster | null = null;
  let ok = false;
  try {
    cluster = await NsCluster.create({
      topo,
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      apps: apps(),
      witnessHost: "witness",
      interval: "100ms",
      deadAfter: "600ms",
    });
    const c = cluster;
    const procs = () =>
      findAppProcesses().map((p) => ({ ...p, host: topo.hostOfPid(p.pid) ?? "" }))
        .filter((p) => p.host !== "");
    const env: Env = {
      topo,
      cluster: c,
      census: () => byApp(procs(), (p) => p.host),
      pids: () => {
        const m = new Map<string, number[]>();
        for (const p of procs()) m.set(p.app, [...(m.get(p.app) ?? []), p.pid].sort());
        return m;
      },
      status: (n) => c.status(n),
      startSampler: () =>
        WorkerSampler.start(MOVABLE, { kind: "netns", inodes: topo.inodes() }, {
          nice: HOST_NICE,
        }),
    };
    await c.startWitness();
    await c.startAgent("alpha");
    // Every scenario starts from "alpha active, beta standby": beta starts once alpha is active,
    // or a slow start of alpha's runtime (a loaded host) would rightly make beta the active.
    await poll(
      "alpha active",
      async () => (await c.status("alpha"))?.role === "active" || null,
      30_000,
    );
    await c.startAgent("beta");
    await waitSteady(env, "alpha");
    await fn(env);
    ok = true;
    if (Deno.env.get("BATON_FAULTS_VERBOSE") === "1") {
      console.log(`[faults] ${title} timeline:\n${await timeline(c)}`);
    }
  } catch (err) {
    if (cluster) {
      console.log(
        `[faults] ${title} FAILED; files in ${cluster.dir}\n${await timeline(cluster)}\n` +
          (await cluster.logs(15)),
      );
    }
    throw err;
  } finally {
    await cluster?.stop({ keepDir: !ok || Deno.env.get("BATON_FAULTS_KEEP") === "1" });
    if (cluster && Deno.env.get("BATON_FAULTS_KEEP") === "1") console.log(`kept ${cluster.dir}`);
    await topo.destroy();
  }
}

/**
 * Wait until exactly one node is active, every movable app runs exactly once on it (per
 * /proc), the non-movable app once on each node, and the active's state file records the
 * apps; holds for three polls in a row. Returns the active's status.
 */
async function waitSteady(env: Env, expectActive?: string, timeoutMs = 20_000): Promise<Status> {
  let streak = 0;
  return await poll(
    `one active${expectActive ? ` (${expectActive})` : ""} running each app once`,
    async () => {
      const [a, b] = [await env.status("alpha"), await env.status("beta")];
      const actives = [a, b].filter((s): s is Status => s?.role === "active");
      const census = env.census();
      const active = actives[0];
      const good = actives.length === 1 && active !== undefined &&
        (expectActive === undefined || active.node === expectActive) &&
        MOVABLE.every((app) => {
          const hosts = census.get(app) ?? [];
          return hosts.length === 1 && hosts[0] === active.node &&
            active.apps.some((x) => x.name === app && x.state === "running");
        }) &&
        [...(census.get("logger") ?? [])].sort().join(",") === "alpha,beta";
      streak = good ? streak + 1 : 0;
      return streak >= 3 ? active : null;
    },
    timeoutMs,
    150,
  );
}

/** Both nodes' event logs merged by time, for the output of a failed or verbose run. */
async function timeline(c: NsCluster): Promise<string> {
  const rows: { t: string; line: string }[] = [];
  for (const node of ["alpha", "beta"]) {
    const text = await Deno.readTextFile(`${c.stateDir(node)}/events.jsonl`).catch(() => "");
    for (const l of text.split("\n")) {
      if (!l.trim()) continue;
      try {
        const e = JSON.parse(l);
        rows.push({
          t: e.time,
          line: `${e.time.slice(11, 23)} ${node.padEnd(5)} @${e.epoch} ${e.kind}: ${e.message}`,
        });
      } catch { /* a torn last line */ }
    }
  }
  return rows.sort((a, b) => a.t.localeCompare(b.t)).map((r) => `  ${r.line}`).join("\n");
}

/** Poll both nodes in the background until stopped, recording every role@epoch each took. */
function recordRoles(env: Env): { stop(): Promise<Record<string, Set<string>>> } {
  const seen: Record<string, Set<string>> = { alpha: new Set(), beta: new Set() };
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const n of ["alpha", "beta"]) {
        const s = await env.status(n);
        seen[n]!.add(s ? `${s.role}@${s.epoch}` : "unreachable");
      }
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

/** Poll both nodes during `ms`, recording every role each took. */
async function watchRoles(env: Env, ms: number): Promise<Record<string, Set<string>>> {
  const rec = recordRoles(env);
  await sleep(ms);
  return await rec.stop();
}

function fmtRoles(seen: Record<string, Set<string>>): string {
  return Object.entries(seen).map(([n, s]) => `${n} [${[...s].join(", ")}]`).join("; ");
}

function assertNoDuplicates(r: SamplerReport, title: string): void {
  measured(title, `sampler\n${formatReport(r)}`);
  assert.ok(r.samples > 50, `expected the sampler to run, found ${r.samples} samples`);
  assert.equal(
    r.duplicateSamples,
    0,
    `expected no sample with a movable app running twice, found ${r.duplicateSamples}`,
  );
}

/** No host but `host` ever ran a movable app during the sampling. */
function assertOnlyOn(r: SamplerReport, host: string): void {
  for (const t of r.transitions) {
    for (const h of t.hosts) {
      assert.equal(h, host, `expected ${t.app} only on ${host}, found it on ${h} at +${t.atMs} ms`);
    }
  }
}

Deno.test({
  name: "partition: alpha cut off from beta and witness for 5 s → alpha fences, beta takes " +
    "over, never two copies; after healing one active and each app once",
  ignore: noNetns,
  ...OPTS,
  fn: () =>
    scenario("symmetric partition", async (env) => {
      const before = (await env.status("alpha"))!;
      const sampler = await env.startSampler();
      await sleep(300);
      const cutAt = sampler.elapsed();
      await env.topo.linkDown("alpha");
      const rec = recordRoles(env);
      // Beta must take over while alpha is cut off (bounded; 5 s of cut at least).
      const takeover = await poll("beta to run every movable app during the cut", () => {
        const c = env.census();
        return MOVABLE.every((a) => (c.get(a) ?? []).join() === "beta") ? sampler.elapsed() : 0;
      }, 20_000);
      await sleep(Math.max(0, cutAt + 5000 - sampler.elapsed()));
      const during = env.census();
      const alphaDuring = await env.status("alpha");
      await env.topo.linkUp("alpha");
      const healedAt = sampler.elapsed();
      const after = await waitSteady(env, "beta");
      await sleep(1500);
      const final = await waitSteady(env);
      const roles = await rec.stop();
      const r = await sampler.stop();
      const gone = (app: string) =>
        r.transitions.find((x) => x.app === app && x.atMs > cutAt && !x.hosts.includes("alpha"))
          ?.atMs;
      measured(
        "symmetric partition",
        `cut at +${Math.round(cutAt)} ms, healed at +${Math.round(healedAt)} ms; ` +
          `alpha's copies gone at web +${gone("web")} / api +${gone("api")} ms, both up on ` +
          `beta (to stay) at +${Math.round(takeover)} ms; epoch ${before.epoch} → ` +
          `${after.epoch}; roles seen: ${fmtRoles(roles)}; active at the end: ` +
          `${final.node}@${final.epoch}; alpha during the cut: ` +
          `${alphaDuring?.role ?? "?"} (${alphaDuring?.roleReason ?? ""})`,
      );
      assertNoDuplicates(r, "symmetric partition");
      for (const app of MOVABLE) {
        assert.deepEqual(during.get(app), ["beta"], `expected ${app} on beta during the cut`);
      }
      assert.equal(after.node, "beta");
      assert.ok(after.epoch > before.epoch, "expected the takeover to raise the epoch");
      assert.notEqual(alphaDuring?.role, "active", "expected the cut-off alpha to fence itself");
    }),
});

Deno.test({
  name: "partition: alpha | beta with both still reaching the witness → no failover, no " +
    "restart, never two copies",
  ignore: noNft,
  ...OPTS,
  fn: () =>
    scenario("alpha|beta partition", async (env) => {
      const before = (await env.status("alpha"))!;
      const pids = env.pids();
      const sampler = await env.startSampler();
      await env.topo.blockBoth("alpha", "beta");
      const roles = await watchRoles(env, 5000);
      const [a, b] = [await env.status("alpha"), await env.status("beta")];
      await env.topo.unblockAll();
      const after = await waitSteady(env, "alpha");
      await sleep(1000);
      const r = await sampler.stop();
      measured(
        "alpha|beta partition",
        `roles seen: ${fmtRoles(roles)}; beta said: ${b?.roleReason}; ` +
          `beta's last events: ${
            b?.events.slice(-3).map((e) => `${e.kind}: ${e.message}`).join(" | ")
          }`,
      );
      assertNoDuplicates(r, "alpha|beta partition");
      assertOnlyOn(r, "alpha");
      assert.equal(a?.role, "active", "expected alpha to stay active during the partition");
      assert.equal(b?.role, "standby", "expected beta to stay standby during the partition");
      assert.deepEqual([...roles.beta!].filter((x) => x.startsWith("active")), []);
      assert.equal(after.epoch, before.epoch, "expected no new epoch");
      assert.deepEqual(env.pids(), pids, "expected the same app PIDs (no restart)");
    }),
});

Deno.test({
  name: "partition: witness cut off from both nodes → no change, no takeover, no self-fence",
  ignore: noNetns,
  ...OPTS,
  fn: () =>
    scenario("witness cut off", async (env) => {
      const before = (await env.status("alpha"))!;
      const pids = env.pids();
      const sampler = await env.startSampler();
      await env.topo.linkDown("witness");
      const roles = await watchRoles(env, 5000);
      const a = await env.status("alpha");
      await env.topo.linkUp("witness");
      const after = await waitSteady(env, "alpha");
      await sleep(1000);
      const r = await sampler.stop();
      measured("witness cut off", `roles seen: ${fmtRoles(roles)}`);
      assertNoDuplicates(r, "witness cut off");
      assertOnlyOn(r, "alpha");
      assert.equal(a?.role, "active");
      assert.deepEqual([...roles.alpha!], [`active@${before.epoch}`]);
      assert.deepEqual([...roles.beta!], [`standby@${before.epoch}`]);
      assert.equal(after.epoch, before.epoch);
      assert.deepEqual(env.pids(), pids, "expected the same app PIDs (no restart)");
    }),
});

/** How a blip cuts alpha off from beta and the witness. */
type BlipKind = "packet loss" | "link flap";

const BLIPS: { ms: number; kind: BlipKind; strict: boolean }[] = [
  { ms: 100, kind: "packet loss", strict: true },
  { ms: 300, kind: "packet loss", strict: false },
  { ms: 300, kind: "link flap", strict: false },
];

for (const blip of BLIPS) {
  const title = `${blip.ms} ms ${blip.kind}`;
  Deno.test({
    name: `partition: ${title} between alpha and beta+witness (< deadAfter) → ` +
      (blip.kind === "link flap"
        ? "never two copies (the kernel brings a flapped link back up to ~1 s late)"
        : "beta never takes over, never two copies" +
          (blip.strict ? ", alpha keeps its epoch and app PIDs" : "")),
    ignore: blip.kind === "packet loss" ? noNft : noNetns,
    ...OPTS,
    fn: () =>
      scenario(title, async (env) => {
        const before = (await env.status("alpha"))!;
        const pids = env.pids();
        const sampler = await env.startSampler();
        await sleep(200);
        const rec = recordRoles(env);
        const outage = blip.kind === "packet loss"
          ? await env.topo.dropBlip("alpha", blip.ms)
          : await env.topo.blip("alpha", blip.ms);
        await sleep(3000);
        const roles = await rec.stop();
        const after = await waitSteady(env);
        await sleep(1000);
        const r = await sampler.stop();
        const restarted = JSON.stringify([...env.pids()]) !== JSON.stringify([...pids]);
        const fenced = after.events.some((e) => e.kind === "step_down") ||
          (await env.status("alpha"))?.events.some((e) => e.kind === "step_down");
        measured(
          title,
          `cut between ${outage.minMs} and ${outage.maxMs} ms; roles seen: ` +
            `${fmtRoles(roles)}; alpha fenced itself: ${fenced}; apps restarted: ` +
            `${restarted}; epoch ${before.epoch} → ${after.epoch}; active ${after.node}`,
        );
        assertNoDuplicates(r, title);
        // A flapped veth carries traffic again only when the kernel's link watch re-enables it
        // (up to ~1 s), so the outage can exceed deadAfter: only safety is asserted.
        if (blip.kind === "link flap") return;
        assertOnlyOn(r, "alpha");
        assert.deepEqual(
          [...roles.beta!].filter((x) => x.startsWith("active")),
          [],
          "expected beta never to take over",
        );
        if (blip.strict) {
          assert.equal(after.epoch, before.epoch, "expected no new epoch");
          assert.ok(!restarted, "expected the same app PIDs (no restart)");
        }
      }),
  });
}

Deno.test({
  name: "partition: one-way, every packet alpha→beta dropped (beta→alpha delivered) → never " +
    "two copies; after healing one active and each app once",
  ignore: noNft,
  ...OPTS,
  fn: () =>
    scenario("one-way alpha→beta (all packets)", async (env) => {
      const sampler = await env.startSampler();
      await env.topo.block({ from: "alpha", to: "beta" });
      const roles = await watchRoles(env, 5000);
      await env.topo.unblockAll();
      const after = await waitSteady(env);
      await sleep(1000);
      const r = await sampler.stop();
      measured(
        "one-way alpha→beta (all packets)",
        `roles seen: ${fmtRoles(roles)}; active after healing: ${after.node}@${after.epoch}`,
      );
      assertNoDuplicates(r, "one-way alpha→beta (all packets)");
    }),
});

Deno.test({
  name: "partition: one-way, alpha cannot open connections to beta (beta's to alpha work) → " +
    "never two copies; after healing one active and each app once",
  ignore: noNft,
  ...OPTS,
  fn: () =>
    scenario("one-way alpha→beta (connections)", async (env) => {
      const sampler = await env.startSampler();
      await env.topo.block({ from: "alpha", to: "beta", tcpDport: 7401 });
      const roles = await watchRoles(env, 5000);
      await env.topo.unblockAll();
      const after = await waitSteady(env);
      await sleep(1000);
      const r = await sampler.stop();
      measured(
        "one-way alpha→beta (connections)",
        `roles seen: ${fmtRoles(roles)}; active after healing: ${after.node}@${after.epoch}`,
      );
      assertNoDuplicates(r, "one-way alpha→beta (connections)");
    }),
});
