/**
 * etcd as the coordinator under real network partitions: a real three-member etcd runs in its
 * own network namespace (`etcd`), alpha and beta each in theirs, all joined by the bridge of
 * {@linkcode Topology}; faults are cut on the bridge (nftables drops, or a port set down). A
 * sampler thread reads /proc every 20 ms and fails the test on any sample with the movable app
 * alive on two hosts. ttl 3 s, heartbeat 200 ms / deadAfter 1 s.
 *
 * - the active cut from etcd alone (its peer still hears it): never two copies; the peer does
 *   not claim while it hears a live active (docs/design.md §7, case 2); healed → one active,
 *   `web` once;
 * - the active isolated from etcd and its peer: it fences itself (the lease window runs out and
 *   its peer is silent), the standby takes the key once etcd expired it; healed → alpha rejoins
 *   as standby, `web` once on beta;
 * - the standby cut from etcd: nothing moves (same pid, same epoch).
 *
 * Measured values are printed as `[faults] etcd …` lines; nothing asserts a timing.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Status } from "../scripts/local_cluster.ts";
import { EtcdCluster, etcdMissing } from "../tests/helpers/etcd_cluster.ts";
import { appsYaml, poll, sleep } from "./fault_kit.ts";
import { probeNetns, Topology } from "./netns.ts";
import { appNice, HOST_NICE, NsCluster } from "./ns_cluster.ts";
import { findAppProcesses } from "./proc_census.ts";
import { formatReport, WorkerSampler } from "./sampler.ts";
import { sampleAppCommand } from "../scripts/local_cluster.ts";

const support = probeNetns();
const missing = !support.ok ? support.reason : !support.nft ? support.nftReason : etcdMissing();
if (missing) console.log(`[faults] etcd partition tests SKIPPED: ${missing}`);

const TTL = 3;
const OPTS = { sanitizeOps: false, sanitizeResources: false, ignore: missing !== null };

function note(text: string): void {
  console.log(`[faults] etcd ${text}`);
}

interface Env {
  topo: Topology;
  cluster: NsCluster;
  etcd: EtcdCluster;
  /** Live copies of `web`: host and pid, from /proc. */
  web(): { host: string; pid: number }[];
}

/** Topology, etcd in its namespace, alpha active and beta standby; `fn`; sampler; clean up. */
async function scenario(title: string, fn: (env: Env) => Promise<void>): Promise<void> {
  const topo = await Topology.create(["alpha", "beta", "etcd"]);
  let etcd: EtcdCluster | null = null;
  let cluster: NsCluster | null = null;
  let sampler: WorkerSampler | null = null;
  let ok = false;
  try {
    etcd = await EtcdCluster.start(3, 60_000, {
      host: topo.addr("etcd"),
      wrap: (argv) => ["ip", ...topo.wrap("etcd", argv)],
    });
    cluster = await NsCluster.create({
      topo,
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      apps: appsYaml([{
        name: "web",
        port: 18091,
        check: null,
        command: [...appNice(), ...sampleAppCommand(18091, "web")],
      }]),
      interval: "200ms",
      deadAfter: "1s",
      coordinator: [
        "  coordinator:",
        "    etcd:",
        `      endpoints: ${JSON.stringify(etcd.endpoints)}`,
        "      prefix: /baton-faults",
        `      ttl: ${TTL}`,
      ],
    });
    const c = cluster;
    const env: Env = {
      topo,
      cluster: c,
      etcd,
      web: () =>
        findAppProcesses().filter((p) => p.app === "web")
          .map((p) => ({ host: topo.hostOfPid(p.pid) ?? "", pid: p.pid }))
          .filter((p) => p.host !== ""),
    };
    sampler = await WorkerSampler.start(["web"], { kind: "netns", inodes: topo.inodes() }, {
      nice: HOST_NICE,
    });
    await c.startAgent("alpha");
    await theActive(env, "alpha", 60_000);
    await c.startAgent("beta");
    await c.waitRole("beta", "standby", 30_000);
    await fn(env);
    const report = await sampler.stop();
    sampler = null;
    note(`${title}: ${formatReport(report)}`);
    assert.equal(
      report.duplicateSamples,
      0,
      `samples with web on two hosts:\n${formatReport(report)}`,
    );
    ok = true;
  } catch (err) {
    if (cluster) {
      console.log(`[faults] etcd ${title} FAILED; files in ${cluster.dir}, etcd in ${etcd?.dir}`);
      console.log(await cluster.logs(20));
    }
    throw err;
  } finally {
    if (sampler) await sampler.stop().catch(() => {});
    await cluster?.stop({ keepDir: !ok });
    await etcd?.stop({ keepDir: !ok });
    await topo.destroy();
  }
}

/** Wait until `node` is active with `web` running once, on it; returns its status. */
function theActive(env: Env, node: string, timeoutMs = 30_000): Promise<Status> {
  return poll(`${node} active with web once, on it`, async () => {
    const s = await env.cluster.status(node);
    const web = env.web();
    return s?.role === "active" && web.length === 1 && web[0]!.host === node ? s : null;
  }, timeoutMs);
}

Deno.test({
  name: "etcd partition: the active cut from etcd alone (its peer hears it) → never two " +
    "copies, the peer does not claim while it hears the active; healed → one active, web once",
  ...OPTS,
  fn: () =>
    scenario("active cut from etcd", async ({ topo, cluster, web }) => {
      const before = await cluster.status("alpha");
      await topo.blockBoth("alpha", "etcd");
      const t0 = performance.now();
      // Past the key's ttl: etcd expires alpha's lease (a majority is up), so the key is gone;
      // beta hears alpha's heartbeats all along and must not create it.
      const until = performance.now() + 3 * TTL * 1000;
      while (performance.now() < until) {
        const b = await cluster.status("beta");
        assert.notEqual(b?.role, "active", "beta claimed while it heard a live active");
        await sleep(250);
      }
      const during = web();
      note(
        `cut from etcd for ${Math.round(performance.now() - t0)} ms: web on ` +
          `${during.map((w) => w.host).join(", ") || "no host"}; alpha ` +
          `${(await cluster.status("alpha"))?.role}`,
      );
      await topo.unblockAll();
      const s = await poll("one active again, web once", async () => {
        for (const n of ["alpha", "beta"]) {
          const st = await cluster.status(n);
          const w = web();
          if (st?.role === "active" && w.length === 1 && w[0]!.host === n) return st;
        }
        return null;
      }, 60_000);
      note(`healed: ${s.node} active at epoch ${s.epoch} (before: epoch ${before?.epoch})`);
      assert.ok(s.epoch >= (before?.epoch ?? 0), "epochs only grow");
    }),
});

Deno.test({
  name: "etcd partition: the active isolated from etcd and its peer → it fences itself, the " +
    "standby takes the key after etcd expired it, never two copies; healed → alpha standby",
  ...OPTS,
  fn: () =>
    scenario("active isolated", async (env) => {
      const { topo, cluster, web } = env;
      const before = await cluster.status("alpha");
      await topo.linkDown("alpha");
      const t0 = performance.now();
      const next = await theActive(env, "beta", 60_000);
      note(
        `alpha isolated: beta active at epoch ${next.epoch} after ` +
          `${Math.round(performance.now() - t0)} ms (ttl ${TTL} s)`,
      );
      assert.ok(next.epoch > (before?.epoch ?? 0), `epoch ${next.epoch} > ${before?.epoch}`);
      await topo.linkUp("alpha");
      await cluster.waitRole("alpha", "standby", 60_000);
      await poll("web once, on beta", () => {
        const w = web();
        return w.length === 1 && w[0]!.host === "beta";
      }, 30_000);
    }),
});

Deno.test({
  name: "etcd partition: the standby cut from etcd → nothing moves (same pid, same epoch)",
  ...OPTS,
  fn: () =>
    scenario("standby cut from etcd", async ({ topo, cluster, web }) => {
      const before = await cluster.status("alpha");
      const pids = web().map((w) => w.pid);
      await topo.blockBoth("beta", "etcd");
      await sleep(3 * TTL * 1000);
      await topo.unblockAll();
      await sleep(2 * TTL * 1000);
      const after = await cluster.status("alpha");
      assert.equal(after?.role, "active");
      assert.equal(after?.epoch, before?.epoch, "same epoch");
      assert.deepEqual(web().map((w) => w.pid), pids, "web neither moved nor restarted");
      assert.equal((await cluster.status("beta"))?.role, "standby");
    }),
});
