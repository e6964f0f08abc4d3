/**
 * Peer API fuzzing against a running agent (loopback): 10,000 requests mixing malformed and
 * schema-breaking JSON (correctly signed, so they get past authentication), bodies over 1 MiB
 * (declared and chunked), forged, stale and replayed signatures, unknown signers, and wrong
 * methods and paths, with bounded concurrency. Every reply must be a 4xx, the agent must stay
 * up, and its role, epoch and apps must be unchanged afterwards; /proc is watched throughout.
 *
 * One seed drives every choice; it is printed, and `BATON_FAULTS_SEED=<n>` replays a run.
 *
 * @module
 */
import assert from "node:assert/strict";
import { alive, LocalCluster, type Status } from "../scripts/local_cluster.ts";
import { signRequest } from "../src/peer/auth.ts";
import {
  EmptySchema,
  MaintenanceSchema,
  NodeInfoSchema,
  SwitchoverSchema,
  TakeoverSchema,
} from "../src/peer/messages.ts";
import { appsYaml, measured, newRunId, poll, RUN_MARK } from "./fault_kit.ts";
import { HOST_NICE } from "./ns_cluster.ts";
import { formatReport, WorkerSampler } from "./sampler.ts";

const REQUESTS = 10_000;
const CONCURRENCY = 16;
const MIB = 1024 * 1024;

/** Small seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Routes that change state, with the schema their body must fail. */
const POST_ROUTES: [string, { safeParse(v: unknown): { success: boolean } }][] = [
  ["/v1/heartbeat", NodeInfoSchema],
  ["/v1/takeover/prepare", TakeoverSchema],
  ["/v1/takeover/commit", TakeoverSchema],
  ["/v1/switchover", SwitchoverSchema],
  ["/v1/maintenance", MaintenanceSchema],
  ["/v1/clear", EmptySchema],
  ["/v1/reload", EmptySchema],
];

/** One fuzz case: what to send, and its category for the tally. */
interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array<ArrayBuffer>>;
}

interface Gen {
  rnd: () => number;
  secret: string;
  to: string;
  pick<T>(xs: readonly T[]): T;
  int(n: number): number;
}

/** A body that is not JSON at all (JSON.parse throws), never empty or blank. */
function brokenJson(g: Gen): string {
  const valid = JSON.stringify({
    node: "beta",
    role: "active",
    epoch: g.int(1e6),
    reason: "x".repeat(g.int(50)),
    on: true,
  });
  const variants = [
    () => valid.slice(0, 1 + g.int(valid.length - 2)),
    () => valid + "}".repeat(1 + g.int(3)),
    () => valid.replace(/"/g, "'"),
    () => "{" + "[".repeat(1 + g.int(2000)),
    () =>
      Array.from({ length: 1 + g.int(200) }, () => String.fromCharCode(33 + g.int(90))).join(""),
    () => "\u0000\u0001\u0002" + valid,
    () => '{"epoch": 1,,}',
    () => "NaN",
  ];
  for (;;) {
    const text = g.pick(variants)();
    if (text.trim() === "") continue;
    try {
      JSON.parse(text);
    } catch {
      return text;
    }
  }
}

/** JSON that parses but breaks the route's schema (checked, so nothing valid slips through). */
function wrongShape(g: Gen, schema: { safeParse(v: unknown): { success: boolean } }): string {
  const candidates: unknown[] = [
    null,
    42,
    "text",
    [],
    [1, 2],
    { epoch: -1, reason: "x" },
    { epoch: 1.5, reason: "x" },
    { epoch: 2 ** 60, reason: "x" },
    { epoch: "1", reason: "x" },
    { epoch: 1, reason: "x".repeat(5000) },
    { epoch: 1, reason: "x", extra: true },
    { on: "yes" },
    { on: 1 },
    { to: "../../etc" },
    { to: 7 },
    { __proto__: { on: true } },
    { constructor: { prototype: { on: true } } },
    { node: "beta", role: "king", epoch: 1 },
    { node: "beta" },
    { unexpected: "key" },
  ];
  const texts = [
    "[".repeat(50_000) + "]".repeat(50_000), // deep nesting
    `{"on": true, "on": "x"}`, // duplicate keys: the last wins
    `{"epoch": 1e400, "reason": "x"}`, // Infinity
    `{"epoch": 1, "reason": "\ud800"}`, // lone surrogate
  ];
  for (;;) {
    // Checked on the text the server will parse: `{ __proto__: ... }` serializes to "{}".
    const text = g.rnd() < 0.2 ? g.pick(texts) : JSON.stringify(g.pick(candidates));
    if (!schema.safeParse(JSON.parse(text)).success) return text;
  }
}

async function signed(
  g: Gen,
  node: string,
  method: string,
  path: string,
  body: string,
  opts: { now?: number; secret?: string } = {},
): Promise<Record<string, string>> {
  return await signRequest(
    opts.secret ?? g.secret,
    node,
    method,
    path,
    body,
    opts.now ?? Date.now(),
    g.to,
  );
}

/** Build one case; `replays` collects signed requests to send again later. */
async function makeCase(g: Gen, replays: Case[]): Promise<Case> {
  const r = g.rnd();
  const [path, schema] = g.pick(POST_ROUTES);
  if (r < 0.22) {
    const body = brokenJson(g);
    const c: Case = {
      kind: "malformed JSON (signed)",
      method: "POST",
      path,
      headers: await signed(g, "beta", "POST", path, body),
      body,
    };
    if (replays.length < 500 && g.rnd() < 0.3) replays.push({ ...c, kind: "replayed" });
    return c;
  }
  if (r < 0.4) {
    const body = wrongShape(g, schema);
    return {
      kind: "wrong shape (signed)",
      method: "POST",
      path,
      headers: await signed(g, "beta", "POST", path, body),
      body,
    };
  }
  if (r < 0.43) {
    const size = MIB + 1 + g.int(64 * 1024);
    const chunked = g.rnd() < 0.5;
    const bytes = new Uint8Array(size).fill(0x7b); // "{{{{"
    const headers = g.rnd() < 0.5 ? await signed(g, "beta", "POST", path, "") : {};
    if (!chunked) {
      return { kind: "oversized (declared)", method: "POST", path, headers, body: bytes };
    }
    let sent = 0;
    const stream = new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull(ctrl) {
        if (sent >= size) return ctrl.close();
        const n = Math.min(64 * 1024, size - sent);
        ctrl.enqueue(bytes.subarray(sent, sent + n));
        sent += n;
      },
    });
    return { kind: "oversized (chunked)", method: "POST", path, headers, body: stream };
  }
  if (r < 0.6) {
    // Forged: a well-formed signature that does not match.
    const body = brokenJson(g);
    const h = await signed(g, "beta", "POST", path, body);
    const forge = g.int(6);
    if (forge === 0) {
      h["X-Baton-Signature"] = Array.from({ length: 64 }, () => "0123456789abcdef"[g.int(16)])
        .join("");
    } else if (forge === 1) {
      Object.assign(h, await signed(g, "beta", "POST", path, body, { secret: "not-the-secret" }));
    } else if (forge === 2) {
      Object.assign(h, await signed(g, "beta", "POST", "/v1/other", body));
    } else if (forge === 3) {
      Object.assign(h, await signed(g, "beta", "POST", path, body + " "));
    } else if (forge === 4) {
      Object.assign(h, await signed(g, "beta", "PUT", path, body));
    } else {
      h["X-Baton-Node"] = "alpha";
    }
    return { kind: "forged signature", method: "POST", path, headers: h, body };
  }
  if (r < 0.68) {
    const body = brokenJson(g);
    const skew = (g.rnd() < 0.5 ? -1 : 1) * (31_000 + g.int(3_600_000));
    return {
      kind: "stale or future signature",
      method: "POST",
      path,
      headers: await signed(g, "beta", "POST", path, body, { now: Date.now() + skew }),
      body,
    };
  }
  if (r < 0.76) {
    const body = brokenJson(g);
    const h = await signed(g, "beta", "POST", path, body);
    const bad = g.int(6);
    if (bad === 0) delete h["X-Baton-Signature"];
    else if (bad === 1) h["X-Baton-Time"] = "soon";
    else if (bad === 2) h["X-Baton-Nonce"] = "short";
    else if (bad === 3) h["X-Baton-Node"] = "bad name!";
    else if (bad === 4) h["X-Baton-Signature"] = "XYZ";
    else for (const k of Object.keys(h)) delete h[k];
    return { kind: "malformed auth headers", method: "POST", path, headers: h, body };
  }
  if (r < 0.84) {
    // Correctly signed by someone who is no peer: the node itself, or a stranger.
    const who = g.pick(["alpha", "mallory", "witness", "beta-2"]);
    const peerPath = g.pick(["/v1/heartbeat", "/v1/takeover/prepare", "/v1/takeover/commit"]);
    const body = g.rnd() < 0.5 ? brokenJson(g) : JSON.stringify({ epoch: 99, reason: "fuzz" });
    return {
      kind: "signed by a non-peer",
      method: "POST",
      path: peerPath,
      headers: await signed(g, who, "POST", peerPath, body),
      body,
    };
  }
  // Wrong methods and paths (no signature needed to be refused).
  const w = g.int(8);
  if (w === 0) {
    return { kind: "wrong method", method: g.pick(["PUT", "DELETE", "PATCH"]), path, headers: {} };
  }
  if (w === 1) return { kind: "wrong method", method: "GET", path, headers: {} };
  if (w === 2) {
    return {
      kind: "unknown path",
      method: g.pick(["GET", "POST"]),
      path: g.pick(["/v2/status", "/v1/", "/admin", "/v1/status/x", "/%2e%2e/etc/passwd"]),
      headers: {},
    };
  }
  if (w === 3) {
    return {
      kind: "long path",
      method: "GET",
      path: "/v1/" + "a".repeat(1000 + g.int(6000)),
      headers: {},
    };
  }
  if (w === 4) {
    return {
      kind: "bad query",
      method: "GET",
      path: `/v1/events?n=${g.pick(["0", "-1", "1001", "x", "1.5", "1e9", "%00", ""])}`,
      headers: {},
    };
  }
  if (w === 5) {
    return { kind: "odd method", method: g.pick(["BREW", "PROPFIND", "PURGE"]), path, headers: {} };
  }
  if (w === 6) {
    const body = brokenJson(g);
    return {
      kind: "wrong content",
      method: "POST",
      path,
      headers: {
        ...(await signed(g, "beta", "POST", path, body)),
        "content-type": g.pick(["text/plain", "application/x-www-form-urlencoded", "image/png"]),
      },
      body,
    };
  }
  const body = brokenJson(g);
  return {
    kind: "signed for another path",
    method: "POST",
    path: path + "?x=1",
    headers: await signed(g, "beta", "POST", path, body),
    body,
  };
}

/** Outcome of one case: the status, or null if the connection ended without a reply. */
async function send(base: string, c: Case): Promise<{ status: number | null; detail: string }> {
  try {
    const res = await fetch(base + c.path, {
      method: c.method,
      headers: c.headers,
      ...(c.body !== undefined ? { body: c.body } : {}),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text().catch(() => "");
    return { status: res.status, detail: text.slice(0, 160) };
  } catch (err) {
    return { status: null, detail: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * What a request to alpha could change: alpha's role, epoch, maintenance flag and apps (a
 * pid or restart count changes if an app was stopped, moved or restarted), and the standby's
 * role, epoch and maintenance flag (an accepted takeover or switchover would move them). The
 * standby's view of its peers and the event lists are left out: they move with every heartbeat.
 */
function snapshot(s: Status, withApps: boolean): string {
  return JSON.stringify({
    role: s.role,
    epoch: s.epoch,
    maintenance: s.maintenance,
    ...(withApps ? { apps: s.apps.map((a) => [a.name, a.state, a.pid, a.restarts]).sort() } : {}),
  });
}

/** Both views of the cluster, once they agree (see {@linkcode converged}). */
interface Views {
  alpha: Status;
  beta: Status;
}

/**
 * The cluster has settled: alpha is active with both apps running, beta is standby, both
 * report the same epoch, and each has heard the other in its current role and epoch. Before
 * this, a heartbeat still on its way could move beta's epoch between two snapshots.
 */
function converged(a: Status | null, b: Status | null): Views | null {
  if (!a || !b) return null;
  const peer = (s: Status, name: string) => s.peers.find((p) => p.name === name);
  const pa = peer(b, "alpha");
  const pb = peer(a, "beta");
  const ok = a.role === "active" && b.role === "standby" && a.epoch === b.epoch &&
    a.apps.every((x) => x.state === "running" && x.pid !== null) &&
    pa?.reachable === true && pa.role === "active" && pa.epoch === a.epoch &&
    pb?.reachable === true && pb.role === "standby" && pb.epoch === b.epoch;
  return ok ? { alpha: a, beta: b } : null;
}

/** Wait for {@linkcode converged}; the failure names both views as last seen. */
async function settle(cluster: LocalCluster, what: string): Promise<Views> {
  let last = "";
  try {
    return await poll(what, async () => {
      const a = await cluster.status("alpha");
      const b = await cluster.status("beta");
      last = `alpha ${brief(a)}; beta ${brief(b)}`;
      return converged(a, b);
    }, 30_000);
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; last seen: ${last}`);
  }
}

function brief(s: Status | null): string {
  if (!s) return "no answer";
  return JSON.stringify({
    role: s.role,
    epoch: s.epoch,
    apps: s.apps.map((a) => `${a.name}:${a.state}`),
    peers: s.peers.map((p) =>
      `${p.name}:${p.role}@${p.epoch}${p.reachable ? "" : " (unreachable)"}`
    ),
  });
}

Deno.test({
  name: `peer API fuzz: ${REQUESTS} malformed, oversized, forged, stale, replayed and misrouted ` +
    `requests → every reply 4xx, the agent stays up, role/epoch/apps unchanged`,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const seed = Number(Deno.env.get("BATON_FAULTS_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    const runId = newRunId();
    const cluster = await LocalCluster.create({
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      interval: "100ms",
      deadAfter: "3s",
      appPorts: 2,
      // The fuzz and a busy machine share the CPUs with these "hosts": like the netns
      // clusters, they run at HOST_NICE, and web's check tolerates a slow reply (the check is
      // not under test here; a 300 ms timeout fails on a loaded machine and moves the apps).
      nice: HOST_NICE,
      apps: ([web, api]) =>
        appsYaml([
          {
            name: "web",
            port: web!,
            env: { [RUN_MARK]: runId },
            check: `{ type: http, url: "http://127.0.0.1:${web!}/health", interval: 500ms, ` +
              `timeout: 2s, failures: 3, initialDelay: 1s }`,
          },
          { name: "api", port: api!, env: { [RUN_MARK]: runId }, check: null },
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
      await cluster.waitRunning("alpha", ["web", "api"], 30_000);
      await cluster.waitRole("beta", "standby", 30_000);
      const before = await settle(cluster, "alpha and beta to agree on the epoch before fuzzing");
      const agentPid = cluster.agents.get("alpha")!.pid;
      const base = cluster.url("alpha");
      const rnd = prng(seed);
      const g: Gen = {
        rnd,
        secret: cluster.secret,
        to: new URL(base).host,
        pick: (xs) => xs[Math.floor(rnd() * xs.length)]!,
        int: (n) => Math.floor(rnd() * n),
      };

      // The harness must sign like a peer: a correctly signed broken body is a 400, not a 401.
      const probeBody = "{";
      const probe = await send(base, {
        kind: "probe",
        method: "POST",
        path: "/v1/heartbeat",
        headers: await signed(g, "beta", "POST", "/v1/heartbeat", probeBody),
        body: probeBody,
      });
      assert.equal(probe.status, 400, `expected the harness's signature accepted: ${probe.detail}`);

      sampler = await WorkerSampler.start(["web", "api"], {
        kind: "env",
        mark: RUN_MARK,
        value: runId,
      }, { nice: -10 });
      const tally = new Map<string, Map<string, number>>();
      const bad: string[] = [];
      const noReply: string[] = [];
      const replays: Case[] = [];
      let next = 0;
      const t0 = performance.now();
      const record = (c: Case, r: { status: number | null; detail: string }) => {
        const key = r.status === null ? "no reply" : String(r.status);
        const m = tally.get(c.kind) ?? new Map<string, number>();
        m.set(key, (m.get(key) ?? 0) + 1);
        tally.set(c.kind, m);
        if (r.status === null) noReply.push(`${c.kind} ${c.method} ${c.path}: ${r.detail}`);
        else if (r.status < 400 || r.status >= 500) {
          bad.push(`${c.kind} ${c.method} ${c.path.slice(0, 80)} → ${r.status} ${r.detail}`);
        }
      };
      const worker = async () => {
        while (next < REQUESTS) {
          next++;
          // Replays go out once their original has been answered.
          const c = next % 20 === 0 && replays.length > 0
            ? replays.shift()!
            : await makeCase(g, replays);
          record(c, await send(base, c));
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const elapsed = Math.round(performance.now() - t0);

      await poll("alpha to answer after the fuzzing", () => cluster.status("alpha"), 20_000);
      // Read once, not settled: a change the fuzz caused must show, not be waited out.
      const after = {
        alpha: (await cluster.status("alpha"))!,
        beta: (await poll("beta to answer after the fuzzing", () => cluster.status("beta")))!,
      };
      const r = await sampler.stop();
      sampler = null;
      const lines = [...tally].sort().map(([kind, m]) =>
        `  ${kind}: ${[...m].map(([s, n]) => `${s}×${n}`).join(" ")}`
      );
      measured(
        "peer API fuzz",
        `seed ${seed}: ${REQUESTS} requests in ${elapsed} ms, concurrency ${CONCURRENCY}\n` +
          `${lines.join("\n")}\n${formatReport(r)}` +
          (bad.length ? `\n  NOT 4xx:\n    ${bad.slice(0, 20).join("\n    ")}` : "") +
          (noReply.length ? `\n  no reply:\n    ${noReply.slice(0, 10).join("\n    ")}` : ""),
      );
      assert.deepEqual(bad.slice(0, 20), [], `expected only 4xx replies (seed ${seed})`);
      // A server may close an oversized upload before reading it all; nothing else may go unanswered.
      assert.deepEqual(
        noReply.filter((x) => !x.startsWith("oversized")).slice(0, 10),
        [],
        `expected a reply to everything but oversized uploads (seed ${seed})`,
      );
      assert.ok(alive(agentPid), "expected alpha's agent to be alive");
      assert.equal(
        snapshot(after.alpha, true),
        snapshot(before.alpha, true),
        `expected alpha unchanged (seed ${seed})`,
      );
      assert.equal(
        snapshot(after.beta, false),
        snapshot(before.beta, false),
        `expected beta unchanged (seed ${seed})`,
      );
      assert.equal(r.duplicateSamples, 0);
      assert.deepEqual(r.absentSamples, { web: 0, api: 0 }, "expected the apps up throughout");
      ok = true;
    } finally {
      if (sampler) await sampler.stop().catch(() => {});
      if (!ok) console.log(`[faults] peer API fuzz FAILED (seed ${seed}); files in ${cluster.dir}`);
      await cluster.stop({ keepDir: !ok });
    }
  },
});
