/**
 * etcd as the coordinator, end to end: a real three-member etcd on loopback
 * (tests/helpers/etcd_cluster.ts), real baton agents in etcd mode (`cluster.coordinator.etcd`,
 * ttl 3 s, heartbeat 200 ms / 1 s) and real sample apps, sampled from outside every 20 ms
 * (faults/sampler.ts): no sample may show the movable app on two hosts.
 *
 * - one node becomes active and holds the key; BATON_EPOCH is the key's create revision;
 * - the active host dies (agent, guard and apps SIGKILLed) → another node takes over once the
 *   lease expired, at a higher epoch (two and three nodes);
 * - one etcd member killed → nothing moves (same pid, same epoch);
 * - the etcd majority lost → the holder keeps the app while every peer answers (failsafe) and
 *   nobody takes over; once a peer is gone too it fences itself at the lease deadline and still
 *   nobody takes over without etcd; etcd back → the app runs again, once.
 *
 * Measured values are printed as `[etcd] …` lines; nothing asserts a timing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { LocalCluster, type Status } from "../scripts/local_cluster.ts";
import { appsYaml, newRunId, poll, RUN_MARK, sleep } from "../faults/fault_kit.ts";
import { findAppProcesses } from "../faults/proc_census.ts";
import { formatReport, WorkerSampler } from "../faults/sampler.ts";
import { EtcdCluster, etcdMissing } from "./helpers/etcd_cluster.ts";

const missing = etcdMissing();
if (missing) console.log(`[etcd] integration tests ignored: ${missing}`);

const TTL = 3;

function note(text: string): void {
  console.log(`[etcd] ${text}`);
}

/** Where `web` runs (from /proc), with each copy's BATON_EPOCH. */
function webCopies(run: string): { node: string; epoch: number; pid: number }[] {
  return findAppProcesses((x) => x.env[RUN_MARK] === run).filter((p) => p.app === "web")
    .map((p) => ({ node: p.node ?? "?", epoch: Number(p.env["BATON_EPOCH"]), pid: p.pid }));
}

function coordinatorOf(s: Status | null): Record<string, unknown> | undefined {
  return (s as { coordinator?: Record<string, unknown> } | null)?.coordinator;
}

interface World {
  etcd: EtcdCluster;
  cluster: LocalCluster;
  run: string;
  sampler: WorkerSampler;
  names: string[];
}

async function withWorld(
  name: string,
  nodes: { name: string; priority: number }[],
  body: (w: World) => Promise<void>,
): Promise<void> {
  const run = newRunId();
  const etcd = await EtcdCluster.start(3);
  let cluster: LocalCluster | null = null;
  let sampler: WorkerSampler | null = null;
  let ok = false;
  try {
    const env = { [RUN_MARK]: run };
    cluster = await LocalCluster.create({
      nodes,
      interval: "200ms",
      deadAfter: "1s",
      appPorts: 1,
      coordinator: [
        "  coordinator:",
        "    etcd:",
        `      endpoints: ${JSON.stringify(etcd.endpoints)}`,
        `      prefix: /baton-test`,
        `      ttl: ${TTL}`,
      ].join("\n"),
      apps: ([web]) => appsYaml([{ name: "web", port: web!, env, check: null }]),
    });
    sampler = await WorkerSampler.start(["web"], { kind: "env", mark: RUN_MARK, value: run }, {
      nice: -10,
    });
    // The first node first, so it is the first holder whatever the load (then the others).
    await cluster.startAgent(nodes[0]!.name);
    await theActive(cluster, [nodes[0]!.name], 60_000);
    for (const n of nodes.slice(1)) await cluster.startAgent(n.name);
    await body({ etcd, cluster, run, sampler, names: nodes.map((n) => n.name) });
    const report = await sampler.stop();
    sampler = null;
    note(`${name}: ${formatReport(report)}`);
    assert.equal(
      report.duplicateSamples,
      0,
      `samples with web on two hosts:\n${formatReport(report)}`,
    );
    ok = true;
  } finally {
    if (sampler) await sampler.stop().catch(() => {});
    if (!ok) {
      note(`${name} FAILED; baton files in ${cluster?.dir}, etcd in ${etcd.dir}`);
    }
    await cluster?.stop({ keepDir: !ok });
    await etcd.stop({ keepDir: !ok });
  }
}

/** The key as etcdctl sees it: holder and create revision, or null. */
async function etcdKey(etcd: EtcdCluster, cluster: LocalCluster): Promise<
  { holder: string; createRevision: number } | null
> {
  const key = `/baton-test/local-${cluster.id}/active`;
  const r = await etcd.etcdctl(["get", key, "-w", "json"]);
  if (r.code !== 0) return null;
  const kv = (JSON.parse(r.stdout) as { kvs?: { value: string; create_revision: number }[] })
    .kvs?.[0];
  return kv ? { holder: atob(kv.value), createRevision: kv.create_revision } : null;
}

/** The one active node and its status, waiting for it. */
async function theActive(c: LocalCluster, names: string[], timeoutMs = 30_000) {
  return await poll("one active node", async () => {
    for (const n of names) {
      const s = await c.status(n);
      if (s?.role === "active" && s.apps.find((a) => a.name === "web" && a.pid)) return s;
    }
    return null;
  }, timeoutMs);
}

for (const size of [2, 3]) {
  Deno.test({
    name: `etcd: ${size} nodes, one holds the key (BATON_EPOCH = create revision); its host ` +
      `dies → another takes over at a higher epoch, never two copies`,
    ignore: missing !== null,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const nodes = [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }];
      if (size === 3) nodes.push({ name: "gamma", priority: 10 });
      await withWorld(`${size} nodes host death`, nodes, async ({ etcd, cluster, run, names }) => {
        const first = await theActive(cluster, names);
        const key = await etcdKey(etcd, cluster);
        assert.ok(key, "expected the key in etcd");
        assert.equal(key.holder, first.node);
        assert.equal(key.createRevision, first.epoch, "epoch = the key's create revision");
        const copies = webCopies(run);
        assert.deepEqual(copies.map((c) => [c.node, c.epoch]), [[first.node, first.epoch]]);
        for (const n of names.filter((x) => x !== first.node)) {
          await cluster.waitRole(n, "standby", 30_000);
        }
        const co = coordinatorOf(await cluster.status(first.node));
        note(`holder status: ${JSON.stringify(co)}`);
        assert.equal(co?.["reachable"], true);

        const t0 = performance.now();
        await cluster.killHost(first.node);
        const rest = names.filter((x) => x !== first.node);
        const next = await theActive(cluster, rest, 60_000);
        note(
          `${size} nodes: ${first.node} died → ${next.node} active at epoch ${next.epoch} ` +
            `after ${Math.round(performance.now() - t0)} ms (ttl ${TTL} s)`,
        );
        assert.ok(next.epoch > first.epoch, `epoch ${next.epoch} > ${first.epoch}`);
        const after = await etcdKey(etcd, cluster);
        assert.equal(after?.holder, next.node);
        assert.equal(after?.createRevision, next.epoch);
        await poll("web once, on the new active", () => {
          const c = webCopies(run);
          return c.length === 1 && c[0]!.node === next.node && c[0]!.epoch === next.epoch;
        }, 20_000);
      });
    },
  });
}

Deno.test({
  name: "etcd: the etcd leader killed → nothing moves (same pid, same epoch)",
  ignore: missing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nodes = [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }];
    await withWorld("one member killed", nodes, async ({ etcd, cluster, run, names }) => {
      const first = await theActive(cluster, names);
      await cluster.waitRole("beta", "standby", 30_000);
      const before = webCopies(run);
      // The leader: its death also makes etcd elect another (leases are extended, not cut).
      const leader = await etcd.leader() ?? "etcd0";
      note(`killing etcd member ${leader} (leader)`);
      await etcd.killMember(leader);
      await sleep(3 * TTL * 1000);
      const s = await cluster.status(first.node);
      assert.equal(s?.role, "active");
      assert.equal(s?.epoch, first.epoch);
      assert.deepEqual(webCopies(run), before, "the app did not move nor restart");
      assert.equal((await cluster.status("beta"))?.role, "standby");
      note(`member killed: holder ${JSON.stringify(coordinatorOf(s))}`);
    });
  },
});

Deno.test({
  name: "etcd: majority lost → the holder keeps the app while every peer answers (failsafe), " +
    "fences itself once a peer is gone too; nobody takes over without etcd; etcd back → once",
  ignore: missing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nodes = [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }];
    await withWorld("majority lost", nodes, async ({ etcd, cluster, run, names }) => {
      const first = await theActive(cluster, names);
      assert.equal(first.node, "alpha");
      await cluster.waitRole("beta", "standby", 30_000);
      const before = webCopies(run);
      await etcd.killMember("etcd0");
      await etcd.killMember("etcd1");
      // Failsafe: both baton nodes still hear each other, so alpha keeps web and beta holds.
      await sleep(3 * TTL * 1000);
      assert.equal((await cluster.status("alpha"))?.role, "active");
      assert.deepEqual(webCopies(run), before, "web stays on alpha while beta answers");
      assert.equal((await cluster.status("beta"))?.role, "standby");
      // A peer gone too: alpha must fence itself at the lease deadline; nobody takes over.
      await cluster.killAgent("beta");
      const t0 = performance.now();
      await poll("web gone from alpha", () => webCopies(run).length === 0, 20_000);
      note(
        `majority lost + peer gone: alpha fenced after ${Math.round(performance.now() - t0)} ms`,
      );
      await sleep(2 * TTL * 1000);
      assert.equal(webCopies(run).length, 0, "nobody runs web without etcd");
      // etcd back: the app runs again, exactly once.
      await etcd.startMember("etcd0");
      await etcd.startMember("etcd1");
      await etcd.waitHealthy();
      await cluster.startAgent("beta");
      const again = await theActive(cluster, names, 60_000);
      assert.ok(again.epoch > first.epoch, `epoch ${again.epoch} > ${first.epoch}`);
      await poll("web once", () => webCopies(run).length === 1, 20_000);
    });
  },
});

Deno.test({
  name: "etcd: switchover over HTTP moves the app 4 times, each time under a new key revision",
  ignore: missing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nodes = [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }];
    await withWorld("switchover", nodes, async ({ etcd, cluster, run, names }) => {
      let cur = await theActive(cluster, names);
      for (let i = 1; i <= 4; i++) {
        const to = cur.node === "alpha" ? "beta" : "alpha";
        await cluster.waitFor(`${cur.node} to see ${to} as standby`, async () => {
          const s = await cluster.status(cur.node);
          return s?.role === "active" &&
            s.peers.some((p) => p.name === to && p.reachable && p.role === "standby");
        }, 30_000);
        const t0 = performance.now();
        const r = await cluster.cli(cur.node, "switchover");
        assert.equal(r.code, 0, `switchover ${i}: ${r.stdout}${r.stderr}`);
        const next = await theActive(cluster, [to], 30_000);
        note(
          `switchover ${i}: ${cur.node} → ${to} at epoch ${next.epoch} in ` +
            `${Math.round(performance.now() - t0)} ms`,
        );
        assert.ok(next.epoch > cur.epoch);
        assert.deepEqual(await etcdKey(etcd, cluster), {
          holder: to,
          createRevision: next.epoch,
        });
        await poll("web once, on the target", () => {
          const c = webCopies(run);
          return c.length === 1 && c[0]!.node === to;
        }, 20_000);
        cur = next;
      }
    });
  },
});

Deno.test({
  name: "etcd: the holder's agent paused (SIGSTOP) → its guard kills the app at the lease " +
    "deadline, before the standby creates the key; never two copies",
  ignore: missing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nodes = [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }];
    await withWorld("agent paused", nodes, async ({ etcd, cluster, run, names }) => {
      const first = await theActive(cluster, names);
      await cluster.waitRole("beta", "standby", 30_000);
      await poll("alpha's guard armed", async () => {
        const s = await cluster.status("alpha") as { guard?: Record<string, unknown> } | null;
        return s?.guard?.["lease"] === "armed";
      }, 20_000);
      const agent = cluster.agents.get("alpha")!;
      Deno.kill(agent.pid, "SIGSTOP");
      const t0 = performance.now();
      try {
        await poll("web gone from alpha (guard)", () => webCopies(run).length === 0, 20_000);
        note(`agent paused: the guard killed web after ${Math.round(performance.now() - t0)} ms`);
        const next = await theActive(cluster, ["beta"], 30_000);
        note(
          `agent paused: beta active at epoch ${next.epoch} after ` +
            `${Math.round(performance.now() - t0)} ms`,
        );
        assert.ok(next.epoch > first.epoch);
        assert.equal((await etcdKey(etcd, cluster))?.holder, "beta");
      } finally {
        Deno.kill(agent.pid, "SIGCONT");
      }
      await cluster.waitRole("alpha", "standby", 30_000);
      await poll("web once, on beta", () => {
        const c = webCopies(run);
        return c.length === 1 && c[0]!.node === "beta";
      }, 20_000);
    });
  },
});
