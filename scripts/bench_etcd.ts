/**
 * Benchmark of etcd as the coordinator: the active host dies (agent, guard and apps SIGKILLed)
 * → the movable app runs on another host, measured from outside (/proc, every 10 ms), over a real
 * three-member etcd on loopback, with 3 and 5 baton nodes. After each trial the dead node's agent
 * comes back (as a standby) before the next one. Prints a markdown section (median / p95 / max)
 * and, with `--out FILE`, appends it there.
 *
 * Usage: `deno run -A scripts/bench_etcd.ts [--trials 20] [--nodes 3,5] [--ttl 3] [--out FILE]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LocalCluster } from "./local_cluster.ts";
import { EtcdCluster } from "../tests/helpers/etcd_cluster.ts";
import { appsYaml, newRunId, poll, RUN_MARK } from "../faults/fault_kit.ts";
import { findAppProcesses } from "../faults/proc_census.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    trials: { type: "string", default: "20" },
    nodes: { type: "string", default: "3,5" },
    ttl: { type: "string", default: "3" },
    out: { type: "string" },
  },
});
const trials = Number(values.trials);
const ttl = Number(values.ttl);
const sizes = values.nodes.split(",").map(Number);

function webHosts(run: string): string[] {
  return findAppProcesses((x) => x.env[RUN_MARK] === run).filter((p) => p.app === "web")
    .map((p) => p.node ?? "?");
}

async function activeNode(c: LocalCluster, names: string[]): Promise<string> {
  return await poll("an active node running web", async () => {
    for (const n of names) {
      const s = await c.status(n);
      if (s?.role === "active" && s.apps.some((a) => a.name === "web" && a.pid)) return n;
    }
    return null;
  }, 60_000);
}

async function bench(size: number): Promise<number[]> {
  const etcd = await EtcdCluster.start(3);
  const run = newRunId();
  const names = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"].slice(0, size);
  const cluster = await LocalCluster.create({
    nodes: names.map((name, i) => ({ name, priority: 100 - i })),
    interval: "200ms",
    deadAfter: "1s",
    appPorts: 1,
    coordinator: [
      "  coordinator:",
      "    etcd:",
      `      endpoints: ${JSON.stringify(etcd.endpoints)}`,
      `      ttl: ${ttl}`,
    ].join("\n"),
    apps: ([web]) => appsYaml([{ name: "web", port: web!, env: { [RUN_MARK]: run }, check: null }]),
  });
  const times: number[] = [];
  try {
    for (const n of names) await cluster.startAgent(n);
    for (let i = 0; i < trials; i++) {
      const victim = await activeNode(cluster, names);
      for (const n of names.filter((x) => x !== victim)) {
        await cluster.waitRole(n, "standby", 60_000);
      }
      const t0 = performance.now();
      await cluster.killHost(victim);
      let elapsed = 0;
      for (;;) {
        const hosts = webHosts(run);
        if (hosts.length > 1) throw new Error(`two copies of web: ${hosts.join(", ")}`);
        if (hosts.length === 1 && hosts[0] !== victim) {
          elapsed = performance.now() - t0;
          break;
        }
        if (performance.now() - t0 > 60_000) throw new Error("web not running after 60 s");
        await new Promise((r) => setTimeout(r, 10));
      }
      times.push(elapsed);
      console.error(`${size} nodes, trial ${i + 1}: ${Math.round(elapsed)} ms`);
      await cluster.startAgent(victim);
      await cluster.waitRole(victim, "standby", 60_000);
    }
  } finally {
    await cluster.stop();
    await etcd.stop();
  }
  return times;
}

function stats(xs: number[]): { median: number; p95: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN);
  return { median: at(0.5), p95: at(0.95), max: Math.round(s.at(-1) ?? NaN) };
}

const rows: string[] = [];
for (const size of sizes) {
  const t = stats(await bench(size));
  rows.push(`| ${size} | ${trials} | ${t.median} | ${t.p95} | ${t.max} | ≤ ${ttl * 1000 + 1000} |`);
}
const load = Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
const section = [
  "",
  "## 7. etcd mode: active host dies → the app running on another host",
  "",
  `\`deno run -A scripts/bench_etcd.ts --trials ${trials} --nodes ${values.nodes} --ttl ${ttl}\` ` +
  "(not part of `deno task bench` yet; this section is appended by hand). A real three-member " +
  `etcd 3.4 on loopback, \`ttl\` ${ttl} s, heartbeat 200 ms / deadAfter 1 s; the active host's ` +
  "agent, guard and apps are SIGKILLed; measured from outside (/proc every 10 ms) until `web` " +
  `runs on another host. Load average at the end: ${load}. Target (issue 14): ≤ ttl + 1 s ` +
  "(Patroni's model: leader key TTL, 30 s by default).",
  "",
  "| baton nodes | trials | median ms | p95 ms | max ms | target ms |",
  "| ----------- | ------ | --------- | ------ | ------ | --------- |",
  ...rows,
  "",
].join("\n");
console.log(section);
if (values.out) await Deno.writeTextFile(values.out, section, { append: true });
