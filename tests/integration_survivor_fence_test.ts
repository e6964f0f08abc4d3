/**
 * Survivor fencing with real processes: two agents and a baton witness on loopback, each node
 * with a fence command (`nodes.X.fence`) that is a script: it records a timestamp and SIGKILLs
 * the fenced node's agent (the "power off"), and prints a line with a password in it.
 *
 * - The active's agent hangs (SIGSTOP): the standby wins the witness's grant, runs the hung
 *   node's fence, and only then starts the movable app: the event log shows the fence before
 *   the first app start, and the script's timestamp is earlier than the start. The fence's
 *   output reaches only a 0600 file; status and events show exit code, duration and a redacted
 *   first line.
 * - A fence that fails blocks the takeover with `fencing: required` (the default): the node is
 *   active with the app held and a FENCING warning, retrying, until `baton fence-ok NODE`.
 */
import assert from "node:assert/strict";
import { LocalCluster, sampleAppCommand, type Status } from "../scripts/local_cluster.ts";
import { runBaton } from "./helpers/cli_run.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;
const WAIT_MS = 60_000;

type Ev = Status["events"][number] & { time: string };

async function events(c: LocalCluster, node: string): Promise<Ev[]> {
  const res = await fetch(`${c.url(node)}/v1/events?n=1000`, {
    signal: AbortSignal.timeout(5000),
  });
  return (await res.json() as { events: Ev[] }).events;
}

/** A cluster whose fence command is `fence.sh {node} <exit code>`. */
async function fencedCluster(exitCode: number, tag: string, extra = "") {
  const dir = await Deno.makeTempDir({ prefix: "baton-sfence-" });
  const script = `${dir}/fence.sh`;
  await Deno.writeTextFile(
    script,
    [
      "#!/bin/sh",
      `d=${dir}`,
      'echo "$(date +%s%3N)" >> "$d/fenced-$1"',
      `if [ ${exitCode} -eq 0 ]; then kill -9 "$(cat "$d/agent-$1.pid")"; fi`,
      'echo "Chassis Power Control: Down/Off (password=hunter2 user admin)"',
      "echo second line of output",
      `exit ${exitCode}`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  const fence = `fence: ["${script}", "{node}"]`;
  const c = await LocalCluster.create({
    nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
    witness: true,
    interval: "200ms",
    deadAfter: "2s",
    clusterExtra: "  fenceTimeout: 10s\n  fenceRetry: 1s" + extra,
    nodeExtra: { alpha: fence, beta: fence },
    apps: () =>
      `  web:\n    command: ${JSON.stringify(sampleAppCommand(0, `web-${tag}`))}\n` +
      "    check: { type: process }\n    stop: { timeout: 3s }",
  });
  return { c, dir };
}

async function start(c: LocalCluster, dir: string): Promise<void> {
  c.startWitness();
  await c.startAgent("alpha");
  await Deno.writeTextFile(`${dir}/agent-alpha.pid`, String(c.agents.get("alpha")!.pid));
  await c.waitRole("alpha", "active", WAIT_MS);
  await c.waitRunning("alpha", ["web"], WAIT_MS);
  await c.startAgent("beta");
  await c.waitFor("beta standby hearing alpha", async () => {
    const s = await c.status("beta");
    return s?.role === "standby" && s.peers.some((p) => p.name === "alpha" && p.reachable);
  }, WAIT_MS);
}

Deno.test(
  "survivor fencing: a hung active is fenced by the grant's winner before the first app starts",
  IT,
  async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const { c, dir } = await fencedCluster(0, tag);
    try {
      await start(c, dir);
      const alphaAgent = c.agents.get("alpha")!;
      Deno.kill(alphaAgent.pid, "SIGSTOP"); // hung: its guard kills web at fenceAfter
      const s = await c.waitRunning("beta", ["web"], WAIT_MS);
      assert.equal(s.role, "active");
      const killed = await alphaAgent.status; // the fence script "powered it off"
      assert.equal(killed.signal, "SIGKILL");
      c.agents.delete("alpha");

      const evs = await events(c, "beta");
      const iFenced = evs.findIndex((e) =>
        e.kind === "fence" && /^fenced alpha: exit 0/.test(e.message)
      );
      const iStart = evs.findIndex((e) => e.kind === "started" && e.app === "web");
      const iActive = evs.findIndex((e) => e.kind === "active");
      const why = evs.map((e) => `${e.time} ${e.kind}: ${e.message}`).join("\n");
      assert.ok(iActive >= 0 && iFenced > iActive, why);
      assert.ok(iStart > iFenced, `the fence comes before the first start:\n${why}`);
      const fencedAt = Number(
        (await Deno.readTextFile(`${dir}/fenced-alpha`)).trim().split("\n")[0],
      );
      assert.ok(fencedAt <= Date.parse(evs[iStart]!.time), why);
      assert.equal(
        evs.filter((e) => e.kind === "fence" && /fencing alpha/.test(e.message)).length,
        1,
      );

      // Nothing of the command or its secret is readable from the API; the file has it all.
      const text = JSON.stringify(evs) + JSON.stringify(await c.status("beta"));
      assert.ok(!text.includes("hunter2"), "no secret in events or status");
      assert.ok(!text.includes("fence.sh"), "no fence command line in events or status");
      assert.ok(!text.includes("second line"), "only the first line");
      assert.match(
        evs[iFenced]!.message,
        /Chassis Power Control: Down\/Off \(password=\*\*\* user admin\)/,
      );
      const log = `${c.stateDir("beta")}/fence/alpha.log`;
      assert.equal((await Deno.stat(log)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${c.stateDir("beta")}/fence`)).mode! & 0o777, 0o700);
      const full = await Deno.readTextFile(log);
      assert.match(full, /hunter2/);
      assert.match(full, /second line of output/);
      assert.ok(!full.includes("fence.sh"), "the log file has the output, not the command line");
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "survivor fencing: a failing fence blocks the takeover (required) until baton fence-ok",
  IT,
  async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const { c, dir } = await fencedCluster(3, tag);
    try {
      await start(c, dir);
      await c.killHost("alpha");
      await c.waitFor("two failed attempts on beta", async () => {
        const evs = await events(c, "beta").catch(() => []);
        return evs.filter((e) => e.kind === "fence" && /^FENCE FAILED: alpha/.test(e.message))
          .length >= 2;
      }, WAIT_MS);
      const held = (await c.status("beta"))!;
      const evs = await events(c, "beta");
      const why = evs.map((e) => `${e.time} ${e.kind}: ${e.message}`).join("\n");
      assert.equal(held.role, "active", why);
      assert.equal(held.apps.find((a) => a.name === "web")?.pid ?? null, null, "web held");
      assert.ok(!evs.some((e) => e.kind === "started" && e.app === "web"), why);
      assert.ok(
        held.warnings.some((w) => /^FENCING alpha: .*exit 3/.test(w)),
        held.warnings.join("; "),
      );
      assert.ok(
        evs.some((e) =>
          e.level === "error" && /fencing is required: no movable app starts/.test(e.message)
        ),
      );

      const env = {};
      const refused = await runBaton(
        ["fence-ok", "gamma", "--manifest", c.manifest, "--node", "beta"],
        { env },
      );
      assert.notEqual(refused.code, 0, refused.stdout + refused.stderr);
      // The command exactly as the README shows it (plus the test cluster's manifest).
      const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
      const shown = /^\s*baton (fence-ok [^#\n]*?)\s*(#.*)?$/m.exec(readme)?.[1] ?? "";
      assert.equal(shown, "fence-ok alpha --node beta", "the README's fence-ok command");
      const ok = await runBaton([...shown.split(" "), "--manifest", c.manifest], { env });
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /fence of alpha confirmed/);
      const after = await c.waitRunning("beta", ["web"], WAIT_MS);
      assert.equal(after.role, "active");
      const evs2 = await events(c, "beta");
      assert.ok(evs2.some((e) => e.kind === "fence_confirmed"));
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "survivor fencing: with best-effort a failing fence does not block the takeover",
  IT,
  async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const { c, dir } = await fencedCluster(3, tag, "\n  fencing: best-effort");
    try {
      await start(c, dir);
      await c.killHost("alpha");
      const s = await c.waitRunning("beta", ["web"], WAIT_MS);
      assert.equal(s.role, "active");
      const evs = await events(c, "beta");
      const why = evs.map((e) => `${e.time} ${e.kind}: ${e.message}`).join("\n");
      const iFailed = evs.findIndex((e) =>
        e.kind === "fence" &&
        /^FENCE FAILED: alpha .*best-effort: starting the movable apps/.test(e.message)
      );
      const iStart = evs.findIndex((e) => e.kind === "started" && e.app === "web");
      assert.ok(iFailed >= 0 && iStart > iFailed, why);
      assert.equal(
        (await Deno.readTextFile(`${dir}/fenced-alpha`)).trim().split("\n").length,
        1,
        "one attempt",
      );
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
