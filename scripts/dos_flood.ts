/**
 * `deno run -A scripts/dos_flood.ts [--conns 1000] [--seconds 20]`: measure what a flood of
 * hostile connections before authentication does to a node (issue 11, finding 6).
 *
 * A two-node loopback cluster (alpha active, beta standby, heartbeat interval 200 ms) runs;
 * then a Python attacker keeps `--conns` connections open to alpha from 100 loopback source
 * addresses (127.0.0.2…), half of them sending a request head one byte at a time, half a
 * 10 MB body a byte at a time, reconnecting whenever alpha closes one. Meanwhile the script
 * samples, every 50 ms, how long ago each node last heard the other (`lastHeartbeatAgeMs` in
 * status) and alpha's resident memory. It prints one JSON line of figures.
 *
 * @module
 */
import { LocalCluster, poll } from "./local_cluster.ts";
import { rssKiB, spawnAttacker } from "./flood_attacker.ts";

const args = Deno.args;
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const CONNS = arg("conns", 1000);
const SECONDS = arg("seconds", 20);
/** `--v8 <flags>`: V8 flags of the agents (e.g. `--max-semi-space-size=1`, to tell heap from buffers). */
const V8 = args.includes("--v8") ? args[args.indexOf("--v8") + 1] ?? "" : "";

async function ages(c: LocalCluster): Promise<{ alphaHearsBeta: number; betaHearsAlpha: number }> {
  const get = async (node: string) => {
    const res = await fetch(`${c.url(node)}/v1/status`);
    const doc = await res.json() as { peers: { name: string; lastHeartbeatAgeMs: number }[] };
    return doc.peers[0]?.lastHeartbeatAgeMs ?? Infinity;
  };
  const [a, b] = await Promise.all([get("alpha"), get("beta")]);
  return { alphaHearsBeta: a, betaHearsAlpha: b };
}

const c = await LocalCluster.create({
  nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
  apps: () => "  idle: { command: [sleep, infinity] }",
  interval: "200ms",
  deadAfter: "1s",
  ...(V8 ? { denoFlags: [`--v8-flags=${V8}`] } : {}),
  // `--arenas n`: glibc malloc arenas of the attacked agent (to tell allocator retention apart).
  ...(args.includes("--arenas")
    ? { env: { alpha: { MALLOC_ARENA_MAX: String(arg("arenas", 2)) } } }
    : {}),
});
try {
  await c.startAgent("alpha");
  await c.waitRole("alpha", "active", 20_000);
  await c.startAgent("beta");
  await c.waitRole("beta", "standby", 20_000);
  await poll("both hear each other", async () => {
    const a = await ages(c);
    return a.alphaHearsBeta < 1_000 && a.betaHearsAlpha < 1_000 ? a : null;
  }, 20_000);
  const pid = c.agents.get("alpha")!.pid;

  const sample = async (ms: number) => {
    let maxAge = 0;
    let maxRss = 0;
    let n = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const a = await ages(c);
      maxAge = Math.max(maxAge, a.alphaHearsBeta, a.betaHearsAlpha);
      maxRss = Math.max(maxRss, rssKiB(pid));
      n++;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { maxAge, maxRss, n };
  };

  const before = await sample(5_000);
  const attacker = spawnAttacker("127.0.0.1", c.ports["alpha"]!, CONNS, SECONDS);
  const during = await sample(SECONDS * 1000);
  const reconnects = await attacker.reconnects;
  const st = await (await fetch(`${c.url("alpha")}/v1/status`)).json() as { role: string };
  console.log(JSON.stringify({
    conns: CONNS,
    seconds: SECONDS,
    intervalMs: 200,
    before: { maxHeartbeatAgeMs: before.maxAge, rssMiB: +(before.maxRss / 1024).toFixed(1) },
    during: {
      maxHeartbeatAgeMs: during.maxAge,
      rssMiB: +(during.maxRss / 1024).toFixed(1),
      samples: during.n,
    },
    rssGrowthMiB: +((during.maxRss - before.maxRss) / 1024).toFixed(1),
    attackerReconnects: reconnects,
    alphaRoleAfter: st.role,
  }));
} finally {
  await c.stop();
}
