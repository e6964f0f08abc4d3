/**
 * Issue 11 ("trust nothing unproven") in the fault suite, with real agents in network
 * namespaces and the /proc sampler every 20 ms:
 * - a baton witness behind a proxy that answers 503, then alpha | beta cut: the 503 is no
 *   witness answer, so beta never takes over while alpha is active;
 * - a man in the middle (`mitm_proxy.ts`, put in the path by an nftables redirect) that forges
 *   beta's heartbeat replies to alpha (role active at epoch 2^53−1 or +5): alpha keeps its
 *   role, its epoch and its apps (no SIGKILL by a forged epoch);
 * - the same middle in front of the witness forging "nobody active" and `{granted: true}` for
 *   beta, then alpha | beta cut: beta never takes the active role on a forged grant;
 * - a rolling reload of timings (alpha deadAfter 10 s, beta reloaded to 1 s), then alpha cut
 *   off: beta waits for alpha's 10 s, never two copies.
 *
 * Needs root, `ip` and nftables; skipped with the reason printed otherwise.
 *
 * @module
 */
import assert from "node:assert/strict";
import { sampleAppCommand, type Status } from "../scripts/local_cluster.ts";
import { appsYaml, measured, poll, sleep } from "./fault_kit.ts";
import { probeNetns, Topology } from "./netns.ts";
import { AGENT_PORT, appNice, HOST_NICE, NsCluster, WITNESS_PORT } from "./ns_cluster.ts";
import { byApp, findAppProcesses } from "./proc_census.ts";
import { formatReport, type SamplerReport, WorkerSampler } from "./sampler.ts";

const support = probeNetns();
const noNft = !support.ok || !support.nft;
if (noNft) {
  console.log(`[faults] trust tests SKIPPED: ${support.ok ? support.nftReason : support.reason}`);
}

const MOVABLE = ["web", "api"];
const OPTS = { sanitizeOps: false, sanitizeResources: false };
const PROXY = new URL("./mitm_proxy.ts", import.meta.url).pathname;
const MITM_PORT = 7501;

interface Env {
  topo: Topology;
  cluster: NsCluster;
  census(): Map<string, string[]>;
  pids(): string;
  status(node: string): Promise<Status | null>;
  startSampler(): Promise<WorkerSampler>;
  /** Put the middle in front of `host`'s `port` for connections from `from`. */
  mitm(host: string, port: number, from: string[]): Promise<Mitm>;
}

interface Mitm {
  setMode(mode: "pass" | "503" | "forge-epoch" | "forge-grant"): Promise<void>;
  counts(): Record<string, number>;
}

interface ScenarioOptions {
  witness: boolean;
  interval: string;
  deadAfter: string;
  /** Run before the agents start (a middle must see their first connections). */
  before?: (env: Env) => Promise<void>;
}

function apps(): string {
  const check = (port: number) =>
    `{ type: http, url: "http://127.0.0.1:${port}/health", interval: 500ms, timeout: 1s, ` +
    `failures: 3, initialDelay: 2s }`;
  const cmd = (port: number, name: string) => [...appNice(), ...sampleAppCommand(port, name)];
  return appsYaml([
    { name: "web", port: 18091, check: check(18091), command: cmd(18091, "web") },
    { name: "api", port: 18092, check: check(18092), command: cmd(18092, "api") },
  ]);
}

async function scenario(
  title: string,
  opts: ScenarioOptions,
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  const topo = await Topology.create(["alpha", "beta", "witness"]);
  let cluster: NsCluster | null = null;
  let ok = false;
  try {
    cluster = await NsCluster.create({
      topo,
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      apps: apps(),
      ...(opts.witness ? { witnessHost: "witness" } : {}),
      interval: opts.interval,
      deadAfter: opts.deadAfter,
    });
    const c = cluster;
    const procs = () =>
      findAppProcesses().map((p) => ({ ...p, host: topo.hostOfPid(p.pid) ?? "" }))
        .filter((p) => p.host !== "");
    const env: Env = {
      topo,
      cluster: c,
      census: () => byApp(procs(), (p) => p.host),
      pids: () => procs().map((p) => `${p.app}:${p.pid}@${p.host}`).sort().join(" "),
      status: (n) => c.status(n),
      startSampler: () =>
        WorkerSampler.start(MOVABLE, { kind: "netns", inodes: topo.inodes() }, {
          nice: HOST_NICE,
        }),
      mitm: (host, port, from) => startMitm(c, topo, host, port, from),
    };
    await opts.before?.(env);
    if (opts.witness) await c.startWitness();
    await c.startAgent("alpha");
    await c.startAgent("beta");
    await waitSteady(env, "alpha", 40_000);
    await fn(env);
    ok = true;
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
    await topo.destroy();
  }
}

/** Start the middle in `host`'s namespace and redirect `from`'s connections to `port` to it. */
async function startMitm(
  c: NsCluster,
  topo: Topology,
  host: string,
  port: number,
  from: string[],
): Promise<Mitm> {
  const modeFile = `${c.dir}/mitm-${host}.mode`;
  await Deno.writeTextFile(modeFile, "pass\n");
  const addr = topo.addr(host);
  const niced = HOST_NICE !== 0 ? ["nice", "-n", String(HOST_NICE)] : [];
  await c.spawnOn(host, `mitm-${host}`, [
    ...niced,
    Deno.execPath(),
    "run",
    "-A",
    PROXY,
    "--listen",
    `0.0.0.0:${MITM_PORT}`,
    "--to",
    `${addr}:${port}`,
    "--mode-file",
    modeFile,
  ]);
  // Listening (any HTTP answer from the middle itself, reached directly on its own port).
  await poll(
    `the middle on ${host} to listen`,
    async () => {
      try {
        const res = await fetch(`http://${addr}:${MITM_PORT}/v1/none`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.body?.cancel();
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    200,
  );
  await topo.redirect(host, port, MITM_PORT, from);
  return {
    setMode: (mode) => Deno.writeTextFile(modeFile, mode + "\n"),
    counts: () => {
      try {
        return JSON.parse(Deno.readTextFileSync(`${modeFile}.count`));
      } catch {
        return {};
      }
    },
  };
}

/** Exactly one active, each movable app once on it (per /proc), three polls in a row. */
async function waitSteady(env: Env, expectActive?: string, timeoutMs = 30_000): Promise<Status> {
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
        });
      streak = good ? streak + 1 : 0;
      return streak >= 3 ? active : null;
    },
    timeoutMs,
    150,
  );
}

/** Both nodes' event logs merged by time. */
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

/** Roles of both nodes, polled in rounds until stopped. */
function recordRoles(env: Env): { stop(): Promise<{ rounds: string[][]; seen: string[] }> } {
  const rounds: string[][] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const [a, b] = await Promise.all([env.status("alpha"), env.status("beta")]);
      rounds.push([a, b].map((s) => s ? `${s.role}@${s.epoch}` : "unreachable"));
      await sleep(200);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      const seen = ["alpha", "beta"].map((n, i) =>
        `${n} [${[...new Set(rounds.map((r) => r[i]))].join(", ")}]`
      );
      return { rounds, seen };
    },
  };
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

function assertNeverTwoActives(rounds: string[][]): void {
  const both = rounds.filter((r) => r.every((x) => x.startsWith("active")));
  assert.deepEqual(both, [], "expected never two nodes answering active in one round");
}

Deno.test({
  name: "trust: baton witness behind a proxy answering 503, alpha | beta cut → the 503 is no " +
    "witness answer: beta never takes over while alpha runs, never two copies",
  ignore: noNft,
  ...OPTS,
  fn: () => {
    let mitm: Mitm | null = null;
    return scenario("witness behind a 503 proxy", {
      witness: true,
      interval: "100ms",
      deadAfter: "600ms",
      before: async (env) => {
        mitm = await env.mitm("witness", WITNESS_PORT, ["alpha", "beta"]);
      },
    }, async (env) => {
      const m = mitm!;
      const sampler = await env.startSampler();
      await m.setMode("503");
      await poll("both nodes to meet the 503", () => (m.counts()["503"] ?? 0) >= 20, 20_000);
      const rec = recordRoles(env);
      await env.topo.blockBoth("alpha", "beta");
      await sleep(6000);
      const during = env.census();
      const { rounds, seen } = await rec.stop();
      const [a, b] = [await env.status("alpha"), await env.status("beta")];
      await env.topo.unblockAll();
      await m.setMode("pass");
      const after = await waitSteady(env);
      await sleep(1000);
      const r = await sampler.stop();
      measured(
        "witness behind a 503 proxy",
        `503 answers ${m.counts()["503"]}; roles seen: ${seen.join("; ")}; alpha said: ` +
          `${a?.roleReason}; beta said: ${b?.roleReason}; active after healing: ` +
          `${after.node}@${after.epoch}`,
      );
      assertNoDuplicates(r, "witness behind a 503 proxy");
      assertNeverTwoActives(rounds);
      for (const app of MOVABLE) {
        assert.ok(
          !(during.get(app) ?? []).includes("beta"),
          `expected ${app} not on beta during the cut (no witness answered)`,
        );
      }
      assert.deepEqual(
        rounds.filter((x) => x[1]!.startsWith("active")),
        [],
        "expected beta never active with only a 503 at the witness URL",
      );
    });
  },
});

Deno.test({
  name: "trust: a man in the middle forges beta's heartbeat replies (active at 2^53−1 / +5, " +
    "unsigned or with a copied signature) → alpha keeps its role, epoch and app PIDs",
  ignore: noNft,
  ...OPTS,
  fn: () => {
    let mitm: Mitm | null = null;
    return scenario("forged heartbeat replies", {
      witness: true,
      interval: "100ms",
      deadAfter: "2s",
      before: async (env) => {
        mitm = await env.mitm("beta", AGENT_PORT, ["alpha"]);
      },
    }, async (env) => {
      const m = mitm!;
      const before = (await env.status("alpha"))!;
      const pids = env.pids();
      const sampler = await env.startSampler();
      const rec = recordRoles(env);
      await m.setMode("forge-epoch");
      await poll(
        "30 forged heartbeat replies",
        () => (m.counts()["forged-heartbeat"] ?? 0) >= 30,
        20_000,
      );
      await sleep(3000);
      const { rounds, seen } = await rec.stop();
      const a = await env.status("alpha");
      await m.setMode("pass");
      const after = await waitSteady(env, "alpha");
      const r = await sampler.stop();
      const alphaPeer = a?.peers.find((p) => p.name === "beta");
      measured(
        "forged heartbeat replies",
        `forged ${m.counts()["forged-heartbeat"]}; roles seen: ${seen.join("; ")}; alpha's ` +
          `view of beta: reachable ${alphaPeer?.reachable} epoch ${alphaPeer?.epoch}; ` +
          `alpha's last events: ${
            a?.events.slice(-3).map((e) => `${e.kind}: ${e.message}`).join(" | ")
          }`,
      );
      assertNoDuplicates(r, "forged heartbeat replies");
      assertNeverTwoActives(rounds);
      assert.ok(Number.isSafeInteger(after.epoch + 1), "expected a usable epoch afterwards");
      assert.ok(after.epoch < 100, `expected no forged epoch adopted, found ${after.epoch}`);
      // The forged replies make beta unreachable for alpha, which then leans on the witness
      // alone: on this loaded machine a late witness answer may fence it (safe, and printed).
      // Any step-down must be that, never a forged epoch; without one nothing may change.
      const downs = (a?.events ?? []).filter((e) => e.kind === "step_down");
      for (const d of downs) {
        assert.match(
          d.message,
          /isolated/,
          `expected no step-down by a forged epoch: ${d.message}`,
        );
      }
      if (downs.length === 0) {
        assert.equal(a?.role, "active", "expected alpha to stay active under forged replies");
        assert.equal(after.epoch, before.epoch, "expected no new epoch");
        assert.equal(env.pids(), pids, "expected the same app PIDs (nothing SIGKILLed)");
      } else {
        measured("forged heartbeat replies", `alpha fenced itself: ${downs[0]!.message}`);
      }
      assert.ok(
        (alphaPeer?.epoch ?? 0) < 2 ** 40,
        `expected alpha never to adopt a forged epoch, found ${alphaPeer?.epoch}`,
      );
    });
  },
});

Deno.test({
  name: "trust: a man in front of the witness forges 'nobody active' and {granted: true} for " +
    "beta, alpha | beta cut → beta never takes over on a forged grant, never two copies",
  ignore: noNft,
  ...OPTS,
  fn: () => {
    let mitm: Mitm | null = null;
    return scenario("forged witness grant", {
      witness: true,
      interval: "100ms",
      deadAfter: "600ms",
      before: async (env) => {
        mitm = await env.mitm("witness", WITNESS_PORT, ["alpha", "beta"]);
      },
    }, async (env) => {
      const m = mitm!;
      const before = (await env.status("alpha"))!;
      const sampler = await env.startSampler();
      await m.setMode("forge-grant");
      await poll("forged witness beats", () => (m.counts()["forged-beat"] ?? 0) >= 20, 20_000);
      const rec = recordRoles(env);
      await env.topo.blockBoth("alpha", "beta");
      await sleep(6000);
      const { rounds, seen } = await rec.stop();
      const [a, b] = [await env.status("alpha"), await env.status("beta")];
      await env.topo.unblockAll();
      await m.setMode("pass");
      const after = await waitSteady(env);
      await sleep(1000);
      const r = await sampler.stop();
      measured(
        "forged witness grant",
        `forged ${JSON.stringify(m.counts())}; roles seen: ${seen.join("; ")}; alpha said: ` +
          `${a?.roleReason}; beta said: ${b?.roleReason}; active after healing: ` +
          `${after.node}@${after.epoch} (before ${before.node}@${before.epoch})`,
      );
      assertNoDuplicates(r, "forged witness grant");
      assertNeverTwoActives(rounds);
      assert.deepEqual(
        rounds.filter((x) => x[1]!.startsWith("active")),
        [],
        "expected beta never active on forged witness replies",
      );
    });
  },
});

Deno.test({
  name: "trust: rolling reload of timings (alpha deadAfter 10 s, beta reloaded to 1 s), then " +
    "alpha cut off → beta waits for the longest deadAfter in force, never two copies",
  ignore: noNft,
  ...OPTS,
  fn: () =>
    scenario("rolling reload of timings", {
      // With `witness: none` a cut-off active stays active by design (validate warns): the
      // witness is what makes alpha fence; the question is whose timings everybody waits for.
      witness: true,
      interval: "200ms",
      deadAfter: "10s",
      // Beta runs on its own copy from the start, so its reload reads the new timings.
      before: (env) => env.cluster.writeOwnManifest("beta", (y) => y),
    }, async (env) => {
      const c = env.cluster;
      await c.writeOwnManifest("beta", (y) => {
        const out = y.replace("deadAfter: 10s", "deadAfter: 1s");
        assert.notEqual(out, y, "expected the manifest to name deadAfter: 10s");
        return out;
      });
      c.signalAgent("beta", "SIGHUP");
      const warned = await poll(
        "beta to report the settings differing from alpha",
        async () => {
          const s = await env.status("beta");
          return s?.warnings.find((w) => /settings differ/i.test(w)) ?? null;
        },
        20_000,
        200,
      );
      const before = (await env.status("alpha"))!;
      const sampler = await env.startSampler();
      await sleep(300);
      const cutAt = sampler.elapsed();
      await env.topo.linkDown("alpha");
      const rec = recordRoles(env);
      await poll(
        "beta to run every movable app",
        () => {
          const census = env.census();
          return MOVABLE.every((app) => (census.get(app) ?? []).join() === "beta");
        },
        60_000,
        100,
      );
      await sleep(1000);
      const { rounds, seen } = await rec.stop();
      await env.topo.linkUp("alpha");
      const after = await waitSteady(env, undefined, 40_000);
      await sleep(1000);
      const r = await sampler.stop();
      const at = (app: string, pred: (hosts: string[]) => boolean) =>
        r.transitions.find((t) => t.app === app && t.atMs > cutAt && pred(t.hosts))?.atMs;
      const rel = (x: number | undefined) => x === undefined ? "?" : `${Math.round(x - cutAt)}`;
      measured(
        "rolling reload of timings",
        `beta warned: "${warned}"; after the cut: alpha's copies gone at web ` +
          `+${rel(at("web", (h) => !h.includes("alpha")))} / api ` +
          `+${rel(at("api", (h) => !h.includes("alpha")))} ms, up on beta at web ` +
          `+${rel(at("web", (h) => h.includes("beta")))} / api ` +
          `+${rel(at("api", (h) => h.includes("beta")))} ms; epoch ${before.epoch} → ` +
          `${after.epoch}; roles seen: ${seen.join("; ")}`,
      );
      assertNoDuplicates(r, "rolling reload of timings");
      assertNeverTwoActives(rounds);
    }),
});
