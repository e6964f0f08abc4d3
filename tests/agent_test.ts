/**
 * Tests of the agent's driver wiring, in process: the {@linkcode Agent} around the pure core
 * with the in-memory twins of its side effects (FakeProcessRunner, a scripted PeerTransport,
 * ManualClock). They check what the drivers do with the core's actions: the state write comes
 * before the spawn that depends on it, spawned apps get their BATON_* variables, exits and
 * check results reach the core, a refused reload changes nothing, requests time out.
 */
import assert from "node:assert/strict";
import { Agent, type AgentOptions } from "../src/agent/agent.ts";
import { ManualClock } from "../src/agent/clock.ts";
import type { PeerTransport } from "../src/agent/peer_link.ts";
import type { LeaseSink } from "../src/guard/lease_driver.ts";
import type { NodeInfo, PersistedState } from "../src/core/types.ts";
import { parseManifest } from "../src/manifest/load.ts";
import type { Manifest } from "../src/manifest/types.ts";
import { PeerError } from "../src/peer/client.ts";
import { acquireLock } from "../src/store/state_store.ts";
import { FakeProcessRunner } from "../src/supervisor/fake_runner.ts";
import type { Spawned, SpawnSpec } from "../src/supervisor/process_runner.ts";

// ---------------------------------------------------------------- harness

const FILE = "/virtual/baton.yaml";

async function manifestOf(yaml: string): Promise<Manifest> {
  const r = await parseManifest(yaml, FILE);
  if (!r.ok) throw new Error(`test manifest invalid: ${JSON.stringify(r.errors)}`);
  return r.manifest;
}

/** A one-node manifest with the given `apps:` body (indented by 2). */
function soloYaml(apps: string): string {
  return [
    "cluster: { name: test, witness: none, heartbeat: { interval: 100ms, deadAfter: 600ms } }",
    "nodes:",
    "  solo: { url: http://127.0.0.1:1, priority: 100 }",
    "apps:",
    apps,
    "",
  ].join("\n");
}

const WEB = [
  "  web:",
  "    command: [web-server, --port, '8080']",
  "    env: { FOO: bar }",
  "    stop: { signal: SIGINT, timeout: 2s }",
].join("\n");
const WORKER = "  worker: { command: [sleep, infinity], movable: false }";

/** A FakeProcessRunner that also records what state.json said when each spawn happened. */
class RecordingRunner extends FakeProcessRunner {
  readonly onDisk: (PersistedState | null)[] = [];
  constructor(readonly stateFile: string) {
    super();
  }
  override spawn(spec: SpawnSpec): Promise<Spawned> {
    let disk: PersistedState | null = null;
    try {
      disk = JSON.parse(Deno.readTextFileSync(this.stateFile)) as PersistedState;
    } catch { /* not written yet */ }
    this.onDisk.push(disk);
    return super.spawn(spec);
  }
}

/** Scripted transport: `reply` decides each exchange; every call is recorded. */
class FakeTransport implements PeerTransport {
  readonly calls: { url: string; path: string; body: unknown; timeoutMs: number | undefined }[] =
    [];
  reply: (url: string, path: string, body: unknown) => Promise<unknown> = (url) =>
    Promise.reject(new PeerError(0, `${url} unreachable: connection refused`));
  post<T>(baseUrl: string, path: string, body: unknown, timeoutMs?: number): Promise<T> {
    this.calls.push({ url: baseUrl, path, body, timeoutMs });
    return this.reply(baseUrl, path, body) as Promise<T>;
  }
}

interface Harness {
  agent: Agent;
  runner: RecordingRunner;
  transport: FakeTransport;
  clock: ManualClock;
  dir: string;
  logs: string[];
  /** What the next `reload` reads. */
  next: Awaited<ReturnType<AgentOptions["loadManifest"]>>;
  close(): Promise<void>;
}

async function harness(
  manifest: Manifest,
  opts: Partial<AgentOptions> & { dir?: string; start?: boolean } = {},
): Promise<Harness> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "baton-agent-test-" });
  const runner = new RecordingRunner(`${dir}/state.json`);
  const transport = new FakeTransport();
  const clock = new ManualClock(10_000);
  const logs: string[] = [];
  const h: Harness = {
    agent: null as unknown as Agent,
    runner,
    transport,
    clock,
    dir,
    logs,
    next: { ok: true, manifest, warnings: [] },
    async close() {
      await h.agent.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  h.agent = new Agent({
    node: "solo",
    manifest,
    mode: "auto",
    stateDir: dir,
    runner,
    transport,
    clock,
    // The test drives the ticks itself.
    tickMs: 3_600_000,
    log: (line) => logs.push(line),
    loadManifest: () => Promise.resolve(h.next),
    isSameProcess: (pid, startTime) => runner.isSameProcess(pid, startTime),
    findAppProcesses: () => [],
    ...opts,
  });
  if (opts.start !== false) await h.agent.start();
  return h;
}

/** Poll until `cond` holds (bounded; the agent's I/O chain runs on real time). */
async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function spawns(h: Harness, app?: string): SpawnSpec[] {
  return h.runner.calls.flatMap((c) =>
    c.type === "spawn" && (app === undefined || c.spec.app === app) ? [c.spec] : []
  );
}

function stops(h: Harness, app?: string) {
  return h.runner.calls.flatMap((c) =>
    c.type === "stop" && (app === undefined || c.app === app) ? [c] : []
  );
}

function kinds(h: Harness, app?: string): string[] {
  return h.agent.events.recent(200).filter((e) => app === undefined || e.app === app).map((e) =>
    e.kind
  );
}

function running(h: Harness, app: string): number | null {
  const a = h.agent.state.apps[app];
  return a?.phase === "running" ? a.pid : null;
}

// ---------------------------------------------------------------- persist, spawn, env

Deno.test("Agent.start writes the active role and epoch to disk before it spawns any app", async () => {
  const h = await harness(await manifestOf(soloYaml([WEB, WORKER].join("\n"))));
  try {
    await until("web and worker running", () => !!running(h, "web") && !!running(h, "worker"));
    assert.equal(h.runner.onDisk.length, 2);
    for (const [i, disk] of h.runner.onDisk.entries()) {
      const spec = spawns(h)[i]!;
      assert.ok(disk, `state.json must exist when ${spec.app} is spawned`);
      assert.equal(String(disk.epoch), spec.env["BATON_EPOCH"], `epoch on disk for ${spec.app}`);
      // A non-movable app runs whatever the role; a movable one only under the active role.
      if (spec.app === "web") assert.equal(disk.role, "active", "role on disk when web spawned");
    }
    assert.equal(spawns(h, "web")[0]?.env["BATON_EPOCH"], "1");
    await until("pids persisted", () => {
      try {
        const s = JSON.parse(Deno.readTextFileSync(`${h.dir}/state.json`)) as PersistedState;
        return s.apps["web"]?.pid === running(h, "web") && s.apps["worker"] !== undefined;
      } catch {
        return false;
      }
    });
  } finally {
    await h.close();
  }
});

Deno.test("Agent spawns apps with BATON_NODE, BATON_APP, BATON_EPOCH and their own env", async () => {
  const h = await harness(await manifestOf(soloYaml(WEB)));
  try {
    await until("web running", () => !!running(h, "web"));
    const [spec] = spawns(h, "web");
    assert.ok(spec);
    assert.deepEqual(spec.command, ["web-server", "--port", "8080"]);
    assert.equal(spec.env["BATON_NODE"], "solo");
    assert.equal(spec.env["BATON_APP"], "web");
    assert.equal(spec.env["BATON_EPOCH"], String(h.agent.state.epoch));
    assert.equal(spec.env["BATON_CLUSTER"], "test");
    assert.equal(spec.env["FOO"], "bar");
    assert.equal(spec.logDir, `${h.dir}/logs`);
    assert.equal(h.agent.state.epoch, 1);
  } finally {
    await h.close();
  }
});

Deno.test("Agent does not spawn an app under a new epoch whose state write failed", async () => {
  // Two nodes, the peer silent: after deadAfter the node takes the active role (a new epoch).
  // It booted with a state (standby at epoch 2): a node without one would wait to learn the
  // cluster's epoch first.
  const dir = await Deno.makeTempDir({ prefix: "baton-agent-test-" });
  await Deno.writeTextFile(
    `${dir}/state.json`,
    JSON.stringify({
      version: 1,
      node: "solo",
      epoch: 2,
      role: "standby",
      roleSeq: 1,
      maintenance: false,
      failedReason: null,
      apps: {},
    }),
  );
  const h = await harness(await manifestOf(PAIR(WEB)), { dir });
  try {
    await until("the boot state on disk", () => {
      try {
        return JSON.parse(Deno.readTextFileSync(`${h.dir}/state.json`)).role === "standby";
      } catch {
        return false;
      }
    });
    await new Promise((r) => setTimeout(r, 50));
    // A non-empty directory where state.json belongs: every later save fails.
    await Deno.remove(`${h.dir}/state.json`);
    await Deno.mkdir(`${h.dir}/state.json/blocker`, { recursive: true });
    for (let i = 0; i < 10; i++) {
      h.clock.advance(100); // ticks closer than deadAfter: no clock gap
      h.agent.dispatch({ type: "tick" });
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(
      "the refused spawn reported back",
      () => /cannot write state/.test(h.agent.state.apps["web"]?.lastFailure ?? ""),
    );
    assert.equal(h.agent.state.role, "active", "the core took the active role in memory");
    assert.ok(kinds(h).includes("persist_failed"), `events: ${kinds(h)}`);
    assert.equal(spawns(h, "web").length, 0, "no spawn while the new epoch is not on disk");
    assert.equal(running(h, "web"), null);
  } finally {
    await h.close();
  }
});

Deno.test("Agent restarts a crashed app in place even when only its pid record cannot be saved", async () => {
  const h = await harness(await manifestOf(soloYaml(WEB)));
  try {
    await until("web running", () => !!running(h, "web"));
    await until("pid persisted", () => {
      try {
        const s = JSON.parse(Deno.readTextFileSync(`${h.dir}/state.json`)) as PersistedState;
        return s.apps["web"]?.pid === running(h, "web");
      } catch {
        return false;
      }
    });
    // Role and epoch are on disk; from now on every save (pids, counters) fails.
    await Deno.remove(`${h.dir}/state.json`);
    await Deno.mkdir(`${h.dir}/state.json/blocker`, { recursive: true });
    const first = running(h, "web")!;
    h.runner.crash("web");
    await until("web restarted", () => (running(h, "web") ?? first) !== first);
    await until("the failed save recorded", () => kinds(h).includes("persist_failed"));
    assert.equal(spawns(h, "web").length, 2, "the restart did not wait for the pid record");
    assert.equal(h.agent.state.role, "active");
  } finally {
    await h.close();
  }
});

// ---------------------------------------------------------------- exits and checks

Deno.test("Agent routes app exits to the core: restart once, then escalate and back off", async () => {
  const h = await harness(
    await manifestOf(
      soloYaml(
        [
          "  web:",
          "    command: [web-server]",
          "    restart: { limit: 1, window: 10m, backoff: 5s, backoffMax: 20s }",
          WORKER,
        ].join("\n"),
      ),
    ),
  );
  try {
    await until("web running", () => !!running(h, "web"));
    const worker = running(h, "worker");
    const first = running(h, "web")!;
    h.runner.kill(first);
    await until("web restarted", () => (running(h, "web") ?? first) !== first);
    const second = running(h, "web")!;
    assert.equal(h.agent.state.apps["web"]!.restarts, 1);
    assert.match(h.agent.state.apps["web"]!.lastFailure ?? "", /killed by SIGKILL/);

    h.runner.kill(second);
    await until("escalation recorded", () => kinds(h, "web").includes("escalation"));
    assert.equal(h.agent.state.apps["web"]!.phase, "backoff");
    assert.equal(spawns(h, "web").length, 2, "no restart before the backoff passed");
    h.clock.advance(4_999);
    h.agent.dispatch({ type: "tick" });
    assert.equal(spawns(h, "web").length, 2);
    h.clock.advance(1);
    h.agent.dispatch({ type: "tick" });
    await until("web restarted after backoff", () => (running(h, "web") ?? second) !== second);
    assert.equal(spawns(h, "web").length, 3);
    assert.equal(running(h, "worker"), worker, "the healthy app is untouched");
    assert.equal(h.agent.status().apps.find((a) => a.name === "web")?.escalated, true);
  } finally {
    await h.close();
  }
});

Deno.test("Agent routes check results of the current pid: failures stop and restart the app", async () => {
  let healthy = true;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(healthy ? "ok" : "broken", { status: healthy ? 200 : 500 }),
  );
  const port = server.addr.port;
  const h = await harness(
    await manifestOf(
      soloYaml(
        [
          "  web:",
          "    command: [web-server]",
          `    check: { type: http, url: "http://127.0.0.1:${port}/", interval: 20ms, ` +
          "timeout: 2s, failures: 2 }",
          "    stop: { signal: SIGTERM, timeout: 3s }",
        ].join("\n"),
      ),
    ),
  );
  try {
    await until("web running", () => !!running(h, "web"));
    const first = running(h, "web")!;
    const firstStart = h.agent.state.apps["web"]!.startTime!;
    await until("a passing check", () => h.agent.state.apps["web"]?.lastCheck?.ok === true);
    // A result about another process is ignored.
    for (let i = 0; i < 5; i++) {
      h.agent.dispatch({ type: "check", app: "web", pid: first + 1000, ok: false, detail: "x" });
    }
    assert.equal(h.agent.state.apps["web"]!.consecutiveCheckFailures, 0);
    healthy = false;
    await until("web replaced", () => (running(h, "web") ?? first) !== first);
    const [stop] = stops(h, "web");
    assert.ok(stop, "the failing process was stopped");
    assert.equal(stop.pid, first);
    // With the recorded start time: a reused PID is never signalled.
    assert.deepEqual(stop.options, {
      signal: "SIGTERM",
      timeoutMs: 3000,
      mode: "graceful",
      startTime: firstStart,
    });
    assert.match(h.agent.state.apps["web"]!.lastFailure ?? "", /http check failed 2 time/);
    assert.equal(h.agent.state.apps["web"]!.restarts, 1);
  } finally {
    await h.close();
    await server.shutdown();
  }
});

// ---------------------------------------------------------------- reload

Deno.test("Agent.reload keeps the last good manifest when the new one is refused", async () => {
  const manifest = await manifestOf(soloYaml([WEB, WORKER].join("\n")));
  const h = await harness(manifest);
  try {
    await until("apps running", () => !!running(h, "web") && !!running(h, "worker"));
    const pids = { web: running(h, "web"), worker: running(h, "worker") };
    const callsBefore = h.runner.calls.length;
    h.next = { ok: false, errors: [`${FILE}:7:14: expected a list, found "x"`] };
    const r = await h.agent.reload();
    assert.deepEqual(r, { ok: false, errors: [`${FILE}:7:14: expected a list, found "x"`] });
    assert.equal(h.agent.state.manifest, manifest);
    assert.ok(kinds(h).includes("reload_refused"));
    assert.ok(h.logs.some((l) => l.includes(`${FILE}:7:14:`)), "errors are logged");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.runner.calls.length, callsBefore, "nothing started or stopped");
    assert.deepEqual({ web: running(h, "web"), worker: running(h, "worker") }, pids);

    // A manifest that no longer names this node, or moves it, is refused too.
    h.next = {
      ok: true,
      manifest: await manifestOf(
        soloYaml(WEB).replace(
          "solo: { url: http://127.0.0.1:1",
          "other: { url: http://127.0.0.1:1",
        ),
      ),
      warnings: [],
    };
    const gone = await h.agent.reload();
    assert.equal(gone.ok, false);
    assert.match(!gone.ok ? gone.errors.join() : "", /node "solo" is no longer in nodes/);
    h.next = {
      ok: true,
      manifest: await manifestOf(soloYaml(WEB).replace("127.0.0.1:1", "127.0.0.1:2")),
      warnings: [],
    };
    const moved = await h.agent.reload();
    assert.equal(moved.ok, false);
    assert.equal(h.agent.state.manifest, manifest);
  } finally {
    await h.close();
  }
});

Deno.test("Agent.reload with a loader that throws refuses the manifest and keeps running", async () => {
  const manifest = await manifestOf(soloYaml(WEB));
  const h = await harness(manifest, {
    loadManifest: () => Promise.reject(new RangeError("Maximum call stack size exceeded")),
  });
  try {
    await until("web running", () => !!running(h, "web"));
    const r = await h.agent.reload();
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.errors[0]!, /cannot load the manifest: Maximum call stack/);
    assert.equal(h.agent.state.manifest, manifest);
    assert.ok(kinds(h).includes("reload_refused"));
    h.agent.dispatch({ type: "tick" });
    assert.ok(running(h, "web"), "the agent still decides");
  } finally {
    await h.close();
  }
});

Deno.test("Agent.reload starts added apps and stops removed ones with their own stop settings", async () => {
  const h = await harness(await manifestOf(soloYaml([WEB, WORKER].join("\n"))));
  try {
    await until("apps running", () => !!running(h, "web") && !!running(h, "worker"));
    const web = running(h, "web")!;
    const webStart = h.agent.state.apps["web"]!.startTime!;
    const next = await manifestOf(soloYaml([WORKER, "  extra: { command: [extra] }"].join("\n")));
    h.next = { ok: true, manifest: next, warnings: ["a warning"] };
    const r = await h.agent.reload();
    assert.deepEqual(r, { ok: true, hash: next.hash, warnings: ["a warning"] });
    await until(
      "extra running, web gone",
      () => !!running(h, "extra") && !h.agent.state.apps["web"],
    );
    const [stop] = stops(h, "web");
    assert.ok(stop);
    assert.equal(stop.pid, web);
    // The removed app is no longer in the manifest: its stop settings come from its old spec.
    assert.deepEqual(stop.options, {
      signal: "SIGINT",
      timeoutMs: 2000,
      mode: "graceful",
      startTime: webStart,
    });
    assert.equal(stops(h, "worker").length, 0);
  } finally {
    await h.close();
  }
});

// ---------------------------------------------------------------- requests

Deno.test("Agent.request answers 504 when the core never replies in time, 503 once stopping", async () => {
  const h = await harness(await manifestOf(soloYaml(WORKER)));
  try {
    const late = await h.agent.request(() => ({ type: "tick" }), 30);
    assert.equal(late.status, 504);
    assert.equal(late.body["ok"], false);

    const on = await h.agent.command({ type: "maintenance", on: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.equal(h.agent.state.maintenance, true);

    const pending = h.agent.request(() => ({ type: "tick" }), 60_000);
    await h.agent.shutdown();
    assert.equal((await pending).status, 503);
    const after = await h.agent.request(() => ({ type: "tick" }), 60_000);
    assert.equal(after.status, 503);
  } finally {
    await h.close();
  }
});

// ---------------------------------------------------------------- boot and shutdown

Deno.test("Agent.start adopts recorded live processes and restarts the lost ones", async () => {
  const manifest = await manifestOf(soloYaml([WEB, WORKER].join("\n")));
  const dir = await Deno.makeTempDir({ prefix: "baton-agent-test-" });
  const h = await harness(manifest, { dir, start: false });
  try {
    const live = h.runner.startExternal();
    const state: PersistedState = {
      version: 1,
      node: "solo",
      epoch: 4,
      role: "active",
      roleSeq: 1,
      maintenance: false,
      failedReason: null,
      apps: {
        web: {
          pid: live.pid,
          startTime: live.startTime,
          specHash: manifest.apps["web"]!.hash,
          restarts: 0,
        },
        worker: {
          pid: 999_999,
          startTime: 7,
          specHash: manifest.apps["worker"]!.hash,
          restarts: 0,
        },
      },
    };
    await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify(state));
    await h.agent.start();
    assert.deepEqual(h.runner.calls[0], {
      type: "adopt",
      app: "web",
      pid: live.pid,
      startTime: live.startTime,
    });
    await until("worker restarted", () => !!running(h, "worker"));
    assert.equal(running(h, "web"), live.pid);
    assert.equal(spawns(h, "web").length, 0, "an adopted app is not started again");
    assert.equal(h.agent.state.epoch, 4);
    assert.equal(h.agent.state.role, "active");
    assert.ok(kinds(h, "web").includes("adopted"));
    assert.match(h.agent.state.apps["worker"]!.lastFailure ?? "", /not running/);
  } finally {
    await h.close();
  }
});

Deno.test("Agent.start refuses a garbage state file, starts nothing and frees the directory", async () => {
  const h = await harness(await manifestOf(soloYaml(WEB)), { start: false });
  try {
    await Deno.writeTextFile(`${h.dir}/state.json`, "{ not json");
    await assert.rejects(
      h.agent.start(),
      /expected a JSON object written by baton.*will not guess/s,
    );
    assert.deepEqual(h.runner.calls, []);
    const release = await acquireLock(h.dir);
    release();

    await Deno.writeTextFile(
      `${h.dir}/state.json`,
      JSON.stringify({
        version: 1,
        node: "elsewhere",
        epoch: 1,
        role: "standby",
        roleSeq: 0,
        maintenance: false,
        failedReason: null,
        apps: {},
      }),
    );
    const other = await harness(await manifestOf(soloYaml(WEB)), { dir: h.dir, start: false });
    await assert.rejects(other.agent.start(), /belongs to node "elsewhere", not "solo"/);
    assert.deepEqual(other.runner.calls, []);
  } finally {
    await h.close();
  }
});

Deno.test("Agent.shutdown leaves the apps running, detached, and frees the state directory", async () => {
  const h = await harness(await manifestOf(soloYaml(WEB)));
  try {
    await until("web running", () => !!running(h, "web"));
    const pid = running(h, "web")!;
    await assert.rejects(acquireLock(h.dir), /another agent/);
    await h.agent.shutdown();
    assert.deepEqual(h.runner.calls.at(-1), { type: "detachAll" });
    assert.equal(stops(h).length, 0, "no app is stopped");
    assert.ok(h.runner.running().some((p) => p.pid === pid));
    const release = await acquireLock(h.dir);
    release();
  } finally {
    await h.close();
  }
});

// ---------------------------------------------------------------- peers

const PAIR = (apps: string) =>
  [
    "cluster: { name: test, witness: none, heartbeat: { interval: 100ms, deadAfter: 600ms } }",
    "nodes:",
    "  solo: { url: http://127.0.0.1:1, priority: 100 }",
    "  peer: { url: http://127.0.0.1:2, priority: 50 }",
    "apps:",
    apps,
    "",
  ].join("\n");

function peerInfo(manifest: Manifest, role: NodeInfo["role"], epoch = 0): NodeInfo {
  return {
    node: "peer",
    role,
    roleSeq: 0,
    hears: [],
    epoch,
    priority: 50,
    maintenance: false,
    manifestHash: manifest.hash,
  };
}

Deno.test("Agent heartbeats peers through the transport and records what they answer", async () => {
  const manifest = await manifestOf(PAIR(WORKER));
  const h = await harness(manifest, { mode: "active", start: false });
  try {
    h.transport.reply = (_url, path) =>
      path === "/v1/heartbeat"
        ? Promise.resolve(peerInfo(manifest, "standby"))
        : Promise.reject(new PeerError(404, "HTTP 404"));
    await h.agent.start();
    await until("a heartbeat sent", () => h.transport.calls.length > 0);
    const hb = h.transport.calls.find((c) => c.path === "/v1/heartbeat");
    assert.ok(hb, "a heartbeat was sent");
    // Bounded, and within the time after which a silent peer counts as dead (600ms).
    assert.ok(
      hb.timeoutMs !== undefined && hb.timeoutMs > 0 && hb.timeoutMs <= 600,
      `heartbeat timeout ${hb.timeoutMs}`,
    );
    assert.equal(hb.url, "http://127.0.0.1:2");
    assert.equal((hb.body as NodeInfo).node, "solo");
    assert.equal((hb.body as NodeInfo).role, "active");
    await until("peer reachable", () => h.agent.status().peers[0]?.reachable === true);
    assert.equal(h.agent.status().peers[0]?.role, "standby");

    h.transport.reply = () => Promise.reject(new PeerError(0, "peer unreachable: refused"));
    h.clock.advance(100);
    h.agent.dispatch({ type: "tick" });
    await until("peer error recorded", () => h.agent.status().peers[0]?.error !== null);
    assert.match(h.agent.status().peers[0]?.error ?? "", /refused/);
  } finally {
    await h.close();
  }
});

Deno.test("Agent escalation hands over: prepare, stop movable apps, persist failed, then commit", async () => {
  const manifest = await manifestOf(
    PAIR(
      [
        "  web:",
        "    command: [web-server]",
        "    restart: { limit: 1, window: 10m, backoff: 5s }",
        WORKER,
      ].join("\n"),
    ),
  );
  const h = await harness(manifest, { mode: "active" });
  let roleOnDiskAtCommit: string | null = null;
  try {
    h.transport.reply = (_url, path, body) => {
      if (path === "/v1/heartbeat") return Promise.resolve(peerInfo(manifest, "standby"));
      if (path === "/v1/takeover/prepare") return Promise.resolve({ ok: true });
      if (path === "/v1/takeover/commit") {
        roleOnDiskAtCommit = JSON.parse(Deno.readTextFileSync(`${h.dir}/state.json`)).role;
        return Promise.resolve({ ok: true, epoch: (body as { epoch: number }).epoch + 1 });
      }
      return Promise.reject(new PeerError(404, "HTTP 404"));
    };
    h.clock.advance(100);
    h.agent.dispatch({ type: "tick" });
    await until("peer reachable", () => h.agent.status().peers[0]?.reachable === true);
    await until("web running", () => !!running(h, "web") && !!running(h, "worker"));
    const worker = running(h, "worker");

    const first = running(h, "web")!;
    h.runner.kill(first);
    await until("web restarted", () => (running(h, "web") ?? first) !== first);
    h.runner.kill(running(h, "web")!);
    await until("commit answered", () => kinds(h).includes("handover_done"), 10_000);

    const paths = h.transport.calls.map((c) => c.path).filter((p) => p !== "/v1/heartbeat");
    assert.deepEqual(paths, ["/v1/takeover/prepare", "/v1/takeover/commit"]);
    const prepare = h.transport.calls.find((c) => c.path === "/v1/takeover/prepare")!;
    assert.equal(prepare.url, "http://127.0.0.1:2");
    assert.equal((prepare.body as { epoch: number }).epoch, h.agent.state.epoch);
    assert.equal(roleOnDiskAtCommit, "failed", "the failed role is on disk before the commit");
    assert.equal(h.agent.state.role, "failed");
    assert.equal(running(h, "web"), null, "the movable app is not running here");
    assert.equal(running(h, "worker"), worker, "the non-movable app keeps running");
  } finally {
    await h.close();
  }
});

/** A lease sink whose guard "fenced" when the test says so; the agent polls it at each exit. */
class FencingLease implements LeaseSink {
  fenced = false;
  #onLost: ((detail: string) => void) | undefined;
  attach(_report: unknown, onLeaseLost?: (detail: string) => void): void {
    this.#onLost = onLeaseLost;
  }
  observe(): void {}
  status(): Record<string, unknown> {
    return { running: true };
  }
  close(): void {}
  poll(): void {
    if (!this.fenced) return;
    this.fenced = false;
    this.#onLost?.("the lease ran out: the guard SIGKILLed the movable apps");
  }
}

Deno.test("Agent: an app killed by the guard is a lost lease (step down), not an app failure to restart", async () => {
  const manifest = await manifestOf(PAIR(["  web: { command: [web-server] }", WORKER].join("\n")));
  const lease = new FencingLease();
  const h = await harness(manifest, { mode: "active", start: false, lease });
  try {
    h.transport.reply = (_url, path) =>
      path === "/v1/heartbeat"
        ? Promise.resolve(peerInfo(manifest, "standby"))
        : Promise.reject(new PeerError(404, "HTTP 404"));
    await h.agent.start();
    await until("web running", () => !!running(h, "web"));
    const web = running(h, "web")!;
    // The guard fenced (a late renewal), and the agent sees web die.
    lease.fenced = true;
    h.runner.kill(web);
    await until("stepped down", () => h.agent.state.role === "standby");
    await until("web stopped", () => h.agent.state.apps["web"]?.phase === "stopped");
    const k = kinds(h);
    assert.ok(k.includes("lease_lost"), k.join(", "));
    assert.ok(k.includes("step_down"));
    assert.ok(!kinds(h, "web").includes("restart"), "not counted as an app failure");
    assert.equal(h.agent.state.apps["web"]!.restarts, 0);
    assert.equal(h.agent.state.apps["web"]!.lastFailure, null);
    assert.equal(spawns(h, "web").length, 1, "not restarted here");
    assert.ok(running(h, "worker") !== null, "the non-movable app runs on");
  } finally {
    await h.close();
  }
});
