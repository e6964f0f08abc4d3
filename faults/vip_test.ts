/**
 * Floating IPs in real network namespaces: alpha, beta, a baton witness and a client, each in
 * its own namespace on one bridge. `cluster.vip` is `<subnet>.100/24` on `eth0` (each node's
 * port is renamed to eth0); the movable app `web` answers `ok web ... node=<node>` on every
 * address. The client sends requests to the VIP throughout a fault; after it, the client must
 * reach `web` on the new active through the VIP.
 *
 * From outside, a high-priority shell reads `ip -n NS -o addr show dev eth0` of alpha and beta
 * in turn, every 20 ms. A duplicate is a read of one node holding the address between two reads
 * of the other holding it (so the first held it throughout the middle read): never allowed.
 * And the address must be gone from the old active (a read without it) before the first read
 * that sees it on the new one. The /proc sampler checks `web` never runs twice, as in the
 * partition tests.
 *
 * Faults: alpha cut off the bridge (it fences itself and drops the address, the agent doing it,
 * or its guard if the agent is late); alpha's agent and app SIGKILLed (the guard drops the
 * address on lease expiry). Heartbeat 200 ms, deadAfter 1.5 s, fenceAfter 1.2 s. Skipped (with the reason) where namespaces cannot
 * be made or `curl` is missing. Measured values are printed as `[faults] vip ...` lines.
 *
 * @module
 */
import assert from "node:assert/strict";
import { batonCommand, type Status } from "../scripts/local_cluster.ts";
import { measured, poll, sleep } from "./fault_kit.ts";
import { probeNetns, sh, Topology } from "./netns.ts";
import { appNice, HOST_NICE, NsCluster } from "./ns_cluster.ts";
import { byApp, findAppProcesses } from "./proc_census.ts";
import { formatReport, WorkerSampler } from "./sampler.ts";

const support = probeNetns();
const hasCurl = (() => {
  try {
    return new Deno.Command("curl", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
const skip = !support.ok ? support.reason : !hasCurl ? "curl is missing" : null;
if (skip) console.log(`[faults] vip tests SKIPPED: ${skip}`);

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const PORT = 18090;
const NODES = ["alpha", "beta"];
/**
 * Heartbeat timings (fenceAfter is the default, deadAfter − interval − 100 ms). Wider than the
 * partition tests' so a loaded shared machine does not make the cluster flap before the fault.
 */
const HB = { interval: "200ms", deadAfter: "1500ms" };

/** One read of one node's addresses by the outside sampler. */
export interface VipRead {
  /** Wall time of the read, ms. */
  t: number;
  node: string;
  held: boolean;
}

/**
 * Sampled instants with two holders: a read of one node holding the address between two reads
 * of another node holding it (reads are sequential, so that node held it throughout).
 */
export function duplicateReads(reads: VipRead[]): VipRead[] {
  const out: VipRead[] = [];
  for (let i = 1; i + 1 < reads.length; i++) {
    const [a, b, c] = [reads[i - 1]!, reads[i]!, reads[i + 1]!];
    if (a.held && b.held && c.held && a.node === c.node && a.node !== b.node) out.push(b);
  }
  return out;
}

/**
 * Whether the address was gone from `from` before `to` held it, after `since`: the last read of
 * `from` holding it and the first of `to` holding it have a read of `from` without it between.
 * Returns the times (null when `to` never held it).
 */
export function handoff(
  reads: VipRead[],
  from: string,
  to: string,
  since: number,
): { lastFromHeld: number | null; fromGone: number | null; toHeld: number | null } {
  const after = reads.filter((r) => r.t >= since);
  const firstTo = after.findIndex((r) => r.node === to && r.held);
  if (firstTo < 0) return { lastFromHeld: null, fromGone: null, toHeld: null };
  const before = after.slice(0, firstTo);
  let lastHeld = -1;
  before.forEach((r, i) => {
    if (r.node === from && r.held) lastHeld = i;
  });
  const gone = before.findIndex((r, i) => i > lastHeld && r.node === from && !r.held);
  return {
    lastFromHeld: lastHeld >= 0 ? before[lastHeld]!.t : null,
    fromGone: gone >= 0 ? before[gone]!.t : null,
    toHeld: after[firstTo]!.t,
  };
}

/** The outside sampler: one high-priority bash loop reading each node's eth0 in turn. */
class VipSampler {
  #child: Deno.ChildProcess;
  #stop: string;
  #out: Promise<string>;

  private constructor(child: Deno.ChildProcess, stop: string) {
    this.#child = child;
    this.#stop = stop;
    this.#out = new Response(child.stdout).text();
  }

  static start(topo: Topology, address: string, dir: string): VipSampler {
    const stop = `${dir}/vip-sampler.stop`;
    const script = `
      vip=$1; stop=$2; shift 2
      while [ ! -e "$stop" ]; do
        for pair in "$@"; do
          ns=\${pair%%=*}; node=\${pair#*=}
          out=$(ip -n "$ns" -o addr show dev eth0 2>/dev/null)
          case "$out" in *" $vip/"*) h=1 ;; *) h=0 ;; esac
          echo "$EPOCHREALTIME $node $h"
        done
        sleep 0.02
      done`;
    const pairs = NODES.map((n) => `${topo.host(n).ns}=${n}`);
    const nice = HOST_NICE !== 0 ? ["-n", String(HOST_NICE)] : ["-n", "0"];
    const child = new Deno.Command("nice", {
      args: [...nice, "bash", "-c", script, "vip-sampler", address, stop, ...pairs],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    return new VipSampler(child, stop);
  }

  /** Stop and return every read, in order. */
  async stop(): Promise<VipRead[]> {
    await Deno.writeTextFile(this.#stop, "");
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5_000);
    const text = await this.#out;
    await this.#child.status;
    clearTimeout(timer);
    return text.split("\n").filter((l) => l.trim() !== "").map((l) => {
      const [t, node, h] = l.split(" ");
      return { t: Number(t!.replace(",", ".")) * 1000, node: node!, held: h === "1" };
    });
  }
}

/** The client: curl to the VIP from the client namespace every 100 ms, in the background. */
class Client {
  readonly answers: { t: number; node: string | null }[] = [];
  #running = true;
  #loop: Promise<void>;

  constructor(topo: Topology, address: string) {
    this.#loop = (async () => {
      while (this.#running) {
        this.answers.push({ t: Date.now(), node: await ask(topo, address) });
        await sleep(100);
      }
    })();
  }

  /** The first answer at or after `since` from `node` (bounded), as its time. */
  reached(node: string, since: number, timeoutMs = 20_000): Promise<number> {
    return poll(
      `the client to reach web on ${node} through the VIP`,
      () => {
        const a = this.answers.find((x) => x.t >= since && x.node === node);
        return a ? a.t : null;
      },
      timeoutMs,
      50,
    );
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** One request to `web` through the VIP: the node that answered, or null. */
async function ask(topo: Topology, address: string): Promise<string | null> {
  const out = await new Deno.Command("ip", {
    args: topo.wrap("client", [
      "curl",
      "-s",
      "-m",
      "0.5",
      `http://${address}:${PORT}/`,
    ]),
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) return null;
  return /node=(\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? null;
}

function appsYaml(): string {
  const command = [
    ...appNice(),
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-env",
    `${ROOT}/examples/sample_app.ts`,
    "--port",
    String(PORT),
    "--name",
    "web",
    "--hostname",
    "0.0.0.0",
  ];
  return [
    "  web:",
    `    command: ${JSON.stringify(command)}`,
    `    check: { type: http, url: "http://127.0.0.1:${PORT}/health", interval: 500ms, ` +
    "timeout: 1s, failures: 3, initialDelay: 2s }",
    "    restart: { limit: 1, window: 10m, backoff: 200ms, backoffMax: 2s }",
    "    stop: { timeout: 2s }",
  ].join("\n");
}

interface Env {
  topo: Topology;
  cluster: NsCluster;
  address: string;
  client: Client;
  status(node: string): Promise<Status | null>;
  webHosts(): string[];
}

/** Build the four namespaces and the cluster, alpha active holding the VIP; run `fn`. */
async function scenario(title: string, fn: (env: Env) => Promise<void>): Promise<void> {
  const topo = await Topology.create(["alpha", "beta", "witness", "client"]);
  let cluster: NsCluster | null = null;
  let client: Client | null = null;
  let ok = false;
  try {
    // One interface name on every node, as cluster.vip names one.
    for (const n of NODES) {
      const h = topo.host(n);
      await sh("ip", "-n", h.ns, "link", "set", h.hostIf, "down");
      await sh("ip", "-n", h.ns, "link", "set", h.hostIf, "name", "eth0");
      await sh("ip", "-n", h.ns, "link", "set", "eth0", "up");
    }
    const address = `${topo.subnet}.100`;
    cluster = await NsCluster.create({
      topo,
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      apps: appsYaml(),
      witnessHost: "witness",
      interval: HB.interval,
      deadAfter: HB.deadAfter,
      clusterLines: ["  vip:", `    - { address: ${address}/24, interface: eth0 }`],
    });
    const c = cluster;
    await c.startWitness();
    await c.startAgent("alpha");
    await c.waitRole("alpha", "active", 30_000);
    await c.startAgent("beta");
    await c.waitRole("beta", "standby", 30_000);
    client = new Client(topo, address);
    const env: Env = {
      topo,
      cluster: c,
      address,
      client,
      status: (n) => c.status(n),
      webHosts: () =>
        byApp(
          findAppProcesses().map((p) => ({ ...p, host: topo.hostOfPid(p.pid) ?? "" }))
            .filter((p) => p.host !== ""),
          (p) => p.host,
        ).get("web") ?? [],
    };
    await client.reached("alpha", 0, 30_000);
    const a = await c.status("alpha");
    const b = await c.status("beta");
    assert.deepEqual(a?.vips?.map((v) => [v.address, v.held]), [[`${address}/24`, true]]);
    assert.deepEqual(b?.vips?.map((v) => [v.address, v.held]), [[`${address}/24`, false]]);
    await fn(env);
    ok = true;
  } catch (err) {
    if (cluster) {
      console.log(
        `[faults] vip ${title} FAILED; files in ${cluster.dir}\n${await cluster.logs(20)}`,
      );
    }
    throw err;
  } finally {
    await client?.stop();
    await cluster?.stop({ keepDir: !ok || Deno.env.get("BATON_FAULTS_KEEP") === "1" });
    await topo.destroy();
  }
}

/** Milliseconds from a node's first `from` event to its first `to` event after `since`. */
async function eventGap(c: NsCluster, node: string, since: number, from: string, to: string) {
  const text = await Deno.readTextFile(`${c.stateDir(node)}/events.jsonl`).catch(() => "");
  const rows = text.split("\n").filter((l) => l.trim() !== "").flatMap((l) => {
    try {
      const e = JSON.parse(l);
      return [{ t: Date.parse(e.time), kind: String(e.kind) }];
    } catch {
      return [];
    }
  }).filter((e) => e.t >= since);
  const a = rows.find((e) => e.kind === from);
  const b = a ? rows.find((e) => e.kind === to && e.t >= a.t) : undefined;
  return a && b ? `${b.t - a.t} ms` : "?";
}

/** Stop both samplers and assert: never two holders, never two copies of web, a clean handoff. */
async function judge(
  title: string,
  vip: VipSampler,
  procs: WorkerSampler,
  faultAt: number,
  from: string,
  to: string,
  extra: string,
): Promise<void> {
  const reads = await vip.stop();
  const r = await procs.stop();
  const dups = duplicateReads(reads);
  const h = handoff(reads, from, to, faultAt);
  const rounds = Math.floor(reads.length / NODES.length);
  const span = reads.length > 1 ? reads[reads.length - 1]!.t - reads[0]!.t : 0;
  measured(
    `vip ${title}`,
    `${reads.length} address reads (${rounds} rounds, one every ${
      Math.round(span / Math.max(1, rounds))
    } ms); the address left ${from} at +${
      h.fromGone === null ? "?" : Math.round(h.fromGone - faultAt)
    } ms and reached ${to} at +${h.toHeld === null ? "?" : Math.round(h.toHeld - faultAt)} ms ` +
      `after the fault (gap ≥ ${
        h.fromGone === null || h.toHeld === null ? "?" : Math.round(h.toHeld - h.fromGone)
      } ms); ${extra}\n${formatReport(r)}`,
  );
  assert.ok(rounds > 10, `expected the address sampler to run, found ${rounds} rounds`);
  assert.deepEqual(
    dups.map((d) => `${d.node} at ${new Date(d.t).toISOString()}`),
    [],
    "expected no sampled instant with the address on two nodes",
  );
  assert.ok(h.toHeld !== null, `expected ${to} to hold the address after the fault`);
  assert.ok(
    h.fromGone !== null,
    `expected the address gone from ${from} (a read without it) before ${to} added it`,
  );
  assert.ok(r.samples > 10, `expected the /proc sampler to run, found ${r.samples} samples`);
  assert.equal(r.duplicateSamples, 0, "expected web never alive on two hosts at once");
}

Deno.test({
  name: "vip: alpha cut off → it drops the address, beta adds it; the client reaches web on beta " +
    "through the VIP; never two holders; after healing still only beta",
  ignore: skip !== null,
  ...OPTS,
  fn: () =>
    scenario("partition", async (env) => {
      const vip = VipSampler.start(env.topo, env.address, env.cluster.dir);
      const procs = await WorkerSampler.start(["web"], {
        kind: "netns",
        inodes: env.topo.inodes(),
      }, { nice: HOST_NICE });
      await sleep(500);
      const faultAt = Date.now();
      await env.topo.linkDown("alpha");
      await env.cluster.waitRole("beta", "active", 20_000);
      const reachedAt = await env.client.reached("beta", faultAt);
      const alphaDuring = await env.status("alpha");
      await sleep(Math.max(0, faultAt + 3_000 - Date.now()));
      await env.topo.linkUp("alpha");
      const healedAt = Date.now();
      await env.cluster.waitRole("alpha", "standby", 20_000);
      const backOnBeta = await env.client.reached("beta", Date.now());
      const b = await env.status("beta");
      const a = await env.status("alpha");
      await judge(
        "partition",
        vip,
        procs,
        faultAt,
        "alpha",
        "beta",
        `client reached beta at +${reachedAt - faultAt} ms; healed at +${healedAt - faultAt} ms; ` +
          `alpha's step_down → vip_removed: ${await eventGap(
            env.cluster,
            "alpha",
            faultAt,
            "step_down",
            "vip_removed",
          )}; beta's active → vip_added: ${await eventGap(
            env.cluster,
            "beta",
            faultAt,
            "active",
            "vip_added",
          )}; ` +
          `alpha during the cut: ${alphaDuring?.role} (${alphaDuring?.roleReason})`,
      );
      assert.notEqual(alphaDuring?.role, "active", "expected the cut-off alpha to fence itself");
      assert.ok(backOnBeta >= healedAt, "expected the client to reach beta after healing");
      const wrong = env.client.answers.filter((x) =>
        x.t > reachedAt && x.node !== null &&
        x.node !== "beta"
      );
      assert.deepEqual(wrong, [], "expected every answer after the takeover to come from beta");
      assert.deepEqual(b?.vips?.map((v) => v.held), [true]);
      assert.deepEqual(a?.vips?.map((v) => v.held), [false]);
      assert.deepEqual(env.webHosts(), ["beta"]);
    }),
});

Deno.test({
  name: "vip: alpha's agent and app SIGKILLed → its guard drops the address on lease expiry, " +
    "beta adds it; the client reaches web on beta; never two holders",
  ignore: skip !== null,
  ...OPTS,
  fn: () =>
    scenario("agent+app killed", async (env) => {
      const vip = VipSampler.start(env.topo, env.address, env.cluster.dir);
      const procs = await WorkerSampler.start(["web"], {
        kind: "netns",
        inodes: env.topo.inodes(),
      }, { nice: HOST_NICE });
      await sleep(500);
      const webPids = findAppProcesses().filter((p) =>
        p.app === "web" && env.topo.hostOfPid(p.pid) === "alpha"
      ).map((p) => p.pid);
      assert.equal(webPids.length, 1, "expected web on alpha");
      const faultAt = Date.now();
      await env.cluster.killAgent("alpha");
      for (const pid of webPids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await env.cluster.waitRole("beta", "active", 20_000);
      const reachedAt = await env.client.reached("beta", faultAt);
      const fenced = await Deno.readTextFile(`${env.cluster.stateDir("alpha")}/guard/fenced`)
        .catch(() => "");
      await sleep(1_500);
      const wrong = env.client.answers.filter((x) =>
        x.t > reachedAt && x.node !== null &&
        x.node !== "beta"
      );
      await judge(
        "agent+app killed",
        vip,
        procs,
        faultAt,
        "alpha",
        "beta",
        `client reached beta at +${reachedAt - faultAt} ms; alpha's guard: ${
          fenced.trim() || "did not fence"
        }`,
      );
      assert.match(fenced, /expired/, "expected alpha's guard to fence on lease expiry");
      assert.deepEqual(wrong, [], "expected every answer after the takeover to come from beta");
      const held = await sh(
        "ip",
        "-n",
        env.topo.host("alpha").ns,
        "-o",
        "addr",
        "show",
        "dev",
        "eth0",
      );
      assert.ok(!held.includes(` ${env.address}/`), "expected the address gone from alpha");
    }),
});

Deno.test({
  name: "vip: planned switchover alpha → beta removes the address before the commit and adds it " +
    "on beta after its save; the client reaches web on beta; never two holders",
  ignore: skip !== null,
  ...OPTS,
  fn: () =>
    scenario("switchover", async (env) => {
      const vip = VipSampler.start(env.topo, env.address, env.cluster.dir);
      const procs = await WorkerSampler.start(["web"], {
        kind: "netns",
        inodes: env.topo.inodes(),
      }, { nice: HOST_NICE });
      await sleep(500);
      const faultAt = Date.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: batonCommand(
          "switchover",
          "--to",
          "beta",
          "--manifest",
          env.cluster.manifest,
          "--node",
          "alpha",
        ).slice(1),
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).output();
      const dec = new TextDecoder();
      assert.equal(
        out.code,
        0,
        `expected the switchover to succeed: ${dec.decode(out.stdout)}${dec.decode(out.stderr)}`,
      );
      const reachedAt = await env.client.reached("beta", faultAt);
      await sleep(1_500);
      const wrong = env.client.answers.filter((x) =>
        x.t > reachedAt && x.node !== null && x.node !== "beta"
      );
      await judge(
        "switchover",
        vip,
        procs,
        faultAt,
        "alpha",
        "beta",
        `client reached beta at +${reachedAt - faultAt} ms; alpha's handover_ready → ` +
          `vip_removed: ${await eventGap(
            env.cluster,
            "alpha",
            faultAt,
            "handover_ready",
            "vip_removed",
          )}; beta's active → vip_added: ${await eventGap(
            env.cluster,
            "beta",
            faultAt,
            "active",
            "vip_added",
          )}`,
      );
      assert.deepEqual(wrong, [], "expected every answer after the switchover to come from beta");
      assert.deepEqual(env.webHosts(), ["beta"]);
    }),
});
