/**
 * The etcd coordinator driver (src/coord/etcd_coordinator.ts) over an in-memory twin of its
 * {@linkcode EtcdPort}: which events it makes of etcd's answers, when it renews, when it releases
 * the key (only once the role is left and no movable app runs), adoption after a restart, and a
 * slow claim given up.
 *
 * @module
 */
import assert from "node:assert/strict";
import { EtcdCoordinator, etcdKey } from "../src/coord/etcd_coordinator.ts";
import type { CreateResult, EtcdKey, EtcdPort } from "../src/coord/etcd_port.ts";
import type { Event, NodeState } from "../src/core/types.ts";
import { initNodeState, nodeInfo } from "../src/core/node_state.ts";
import { appSpec, makeManifest } from "./helpers/core_fixtures.ts";

const SPEC = { endpoints: ["http://x:2379"], prefix: "/baton", ttlSeconds: 5, tls: null };
const KEY = etcdKey("/baton", "test");

/** One etcd in memory: leases, one key space, a revision counter, a clock it advances. */
class FakeEtcd implements EtcdPort {
  revision = 10;
  leases = new Map<string, number>();
  kv = new Map<string, EtcdKey>();
  calls: string[] = [];
  down = false;
  /** Milliseconds each call takes (advances `clock.t`). */
  delayMs = 0;
  #next = 1;
  constructor(readonly clock: { t: number }) {}
  #call(name: string) {
    this.calls.push(name);
    this.clock.t += this.delayMs;
    if (this.down) throw new Error("UNAVAILABLE");
  }
  grant(ttlSeconds: number) {
    this.#call("grant");
    const id = String(this.#next++);
    this.leases.set(id, ttlSeconds);
    return Promise.resolve({ id, ttlSeconds });
  }
  keepAlive(id: string) {
    this.#call(`keepAlive ${id}`);
    return Promise.resolve(this.leases.get(id) ?? 0);
  }
  revoke(id: string) {
    this.#call(`revoke ${id}`);
    this.leases.delete(id);
    for (const [k, v] of this.kv) if (v.lease === id) this.kv.delete(k);
    this.revision++;
    return Promise.resolve();
  }
  createIfAbsent(key: string, value: string, lease: string): Promise<CreateResult> {
    this.#call("txn");
    const holder = this.kv.get(key) ?? null;
    if (holder) return Promise.resolve({ created: false, holder, revision: this.revision });
    this.revision++;
    this.kv.set(key, { value, createRevision: this.revision, lease });
    return Promise.resolve({ created: true, revision: this.revision });
  }
  read(key: string) {
    this.#call("read");
    return Promise.resolve({ holder: this.kv.get(key) ?? null, revision: this.revision });
  }
  close() {}
}

function setup(self = "alpha") {
  const clock = { t: 1_000 };
  const etcd = new FakeEtcd(clock);
  const c = new EtcdCoordinator(self, "test", SPEC, 200, etcd);
  const events: Event[] = [];
  const notes: string[] = [];
  c.attach((e) => events.push(e), () => clock.t, (_l, _k, m) => notes.push(m));
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [appSpec("web")] });
  const state = initNodeState(self, m, "auto", 0);
  return { clock, etcd, c, events, notes, state };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

function active(state: NodeState, epoch: number, webPid: number | null): NodeState {
  state.role = "active";
  state.epoch = epoch;
  state.apps["web"] = {
    ...(state.apps["web"] ?? {
      name: "web",
      phase: "stopped",
      pid: null,
      startTime: null,
      specHash: null,
      startedAt: null,
      restarts: 0,
      totalRestarts: 0,
      lastFailureAt: null,
      lastFailure: null,
      backoffUntil: null,
      backoffMs: 0,
      consecutiveCheckFailures: 0,
      lastCheck: null,
      escalated: false,
      stopping: null,
      stopWith: null,
    }),
    pid: webPid,
    phase: webPid === null ? "stopped" : "running",
  };
  return state;
}

Deno.test("etcd coordinator: a claim creates the key under a fresh lease; granted = create revision", async () => {
  const { etcd, c, events, state } = setup();
  c.claim({ ...nodeInfo(state), epoch: 3 });
  await c.settled();
  assert.deepEqual(etcd.calls, ["grant", "txn"]);
  assert.deepEqual(events, [{
    type: "claim_result",
    epoch: 3,
    ok: true,
    detail: "etcd: key created at revision 11",
    granted: 11,
    sentAt: 1_000,
  }]);
  assert.equal(etcd.kv.get(KEY)?.value, "alpha");
});

Deno.test("etcd coordinator: a check renews the held lease, then reads: the renewal's send time is the contact", async () => {
  const { clock, etcd, c, events, state } = setup();
  c.claim({ ...nodeInfo(state), epoch: 3 });
  await settle();
  c.observe(active(state, 11, 100));
  clock.t = 2_000;
  c.check(nodeInfo(state));
  await settle();
  await settle();
  const w = events.at(-1);
  assert.deepEqual(w, {
    type: "witness",
    ok: true,
    kind: "etcd",
    active: { node: "alpha", epoch: 11, ageMs: 0 },
    error: null,
    maxEpoch: 11,
    sentAt: 2_000,
  });
  assert.deepEqual(etcd.calls.slice(2), ["keepAlive 1", "read"]);
  assert.equal(c.status()["leaseLeftMs"], 5_000);
});

Deno.test("etcd coordinator: the key is released only once the role is left AND no movable app runs", async () => {
  const { etcd, c, state } = setup();
  c.claim({ ...nodeInfo(state), epoch: 3 });
  await settle();
  c.observe(active(state, 11, 100));
  // Stepped down, web still dying: no renewal, no release yet.
  state.role = "standby";
  c.observe(state);
  c.check(nodeInfo(state));
  await settle();
  await settle();
  assert.ok(!etcd.calls.some((x) => x.startsWith("keepAlive")), "no renewal for a role we left");
  assert.ok(!etcd.calls.some((x) => x.startsWith("revoke")));
  // web exited: release.
  state.apps["web"]!.pid = null;
  state.apps["web"]!.phase = "stopped";
  c.observe(state);
  await c.settled();
  assert.ok(etcd.calls.includes("revoke 1"));
  assert.equal(etcd.kv.get(KEY), undefined);
});

Deno.test("etcd coordinator: a claim against a held key is refused with the holder; its lease revoked", async () => {
  const { etcd, c, events, state } = setup("beta");
  etcd.kv.set(KEY, { value: "alpha", createRevision: 7, lease: "99" });
  c.claim({ ...nodeInfo(state), epoch: 4 });
  await c.settled();
  assert.deepEqual(etcd.calls, ["grant", "txn", "revoke 1"]);
  const r = events.at(-1) as Extract<Event, { type: "claim_result" }>;
  assert.equal(r.ok, false);
  assert.match(r.detail, /held by alpha \(revision 7\)/);
});

Deno.test("etcd coordinator: a claim slower than the lease window is given up", async () => {
  const { etcd, c, events, state } = setup();
  etcd.delayMs = (5_000 - 200 - 300) / 2; // grant + txn = the whole window
  c.claim({ ...nodeInfo(state), epoch: 3 });
  await c.settled();
  const r = events.at(-1) as Extract<Event, { type: "claim_result" }>;
  assert.equal(r.ok, false);
  assert.match(r.detail, /the claim took \d+ ms/);
  assert.equal(etcd.kv.get(KEY), undefined, "its lease was revoked, the key is gone");
});

Deno.test("etcd coordinator: a restarted active adopts its own key at its epoch and renews that lease", async () => {
  const { etcd, c, events, notes, state } = setup();
  etcd.leases.set("42", 5);
  etcd.kv.set(KEY, { value: "alpha", createRevision: 9, lease: "42" });
  c.observe(active(state, 9, 100));
  c.check(nodeInfo(state));
  await c.settled();
  assert.deepEqual(etcd.calls, ["read", "keepAlive 42"]);
  const w = events.at(-1) as Extract<Event, { type: "witness" }>;
  assert.equal(w.ok, true);
  assert.ok(w.sentAt !== undefined, "a renewal answered: a contact");
  assert.ok(notes.some((n) => /adopted our key/.test(n)));
});

Deno.test("etcd coordinator: etcd down → witness ok:false (no contact); a key of another epoch is not adopted", async () => {
  const { etcd, c, events, state } = setup();
  etcd.kv.set(KEY, { value: "alpha", createRevision: 5, lease: "42" });
  c.observe(active(state, 9, 100));
  c.check(nodeInfo(state));
  await settle();
  await settle();
  const w = events.at(-1) as Extract<Event, { type: "witness" }>;
  assert.equal(w.sentAt, undefined, "not ours at our epoch: no renewal, no contact");
  assert.deepEqual(w.active, { node: "alpha", epoch: 5, ageMs: 0 });
  etcd.down = true;
  c.check(nodeInfo(state));
  await c.settled();
  const down = events.at(-1) as Extract<Event, { type: "witness" }>;
  assert.equal(down.ok, false);
  assert.equal(c.status()["reachable"], false);
});
