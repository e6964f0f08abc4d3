/**
 * The pure core in etcd mode (`cluster.coordinator.etcd`): etcd reaches the core through the
 * arbiter seam (`witness` events of kind `etcd`, `claim_result` with `granted`), modelled here by
 * a tiny in-test etcd: one key, a revision counter, create-if-absent.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fenceDeadline } from "../src/core/lease.ts";
import { arbiterFenceAfter } from "../src/core/arbiter.ts";
import type { Action, Event } from "../src/core/types.ts";
import type { Manifest } from "../src/manifest/types.ts";
import {
  appSpec,
  boot,
  type CoreHarness,
  exchange,
  HB,
  makeManifest,
  ofType,
  records,
  spawns,
} from "./helpers/core_fixtures.ts";

const TTL = 10; // seconds: window = 10 000 − 1 000 − 300 = 8 700 ms (fenceAfter 3 000 ms)
const WINDOW = TTL * 1000 - HB.intervalMs - 300;

function etcdManifest(nodes: Record<string, number>): Manifest {
  const m = makeManifest({ nodes, apps: [appSpec("web"), appSpec("logs", { movable: false })] });
  m.cluster.coordinator = {
    etcd: { endpoints: ["http://127.0.0.1:2379"], prefix: "/baton", ttlSeconds: TTL, tls: null },
  };
  return m;
}

/** One key, a revision counter: what the coordinator sees of etcd. */
class TinyEtcd {
  revision = 100;
  holder: { node: string; epoch: number } | null = null;
  up = true;

  /** The `witness` event a node's check gets (`renews`: it holds the key, renewal answered). */
  read(node: string, now: number): Event {
    if (!this.up) return { type: "witness", ok: false, kind: null, active: null, error: "down" };
    const renews = this.holder?.node === node;
    return {
      type: "witness",
      ok: true,
      kind: "etcd",
      active: this.holder ? { ...this.holder, ageMs: 0 } : null,
      error: null,
      maxEpoch: this.revision,
      ...(renews ? { sentAt: now } : {}),
    };
  }

  /** The answer to a claim. */
  claim(node: string, epoch: number): Event {
    if (!this.up) return { type: "claim_result", epoch, ok: false, detail: "down" };
    if (this.holder) {
      return { type: "claim_result", epoch, ok: false, detail: `held by ${this.holder.node}` };
    }
    this.revision++;
    this.holder = { node, epoch: this.revision };
    return { type: "claim_result", epoch, ok: true, detail: "created", granted: this.revision };
  }
}

/** Carry a node's arbiter actions to the tiny etcd and its answers back. */
function serve(etcd: TinyEtcd, n: CoreHarness, actions: Action[], now: number): Action[] {
  const out: Action[] = [];
  const queue = [...actions];
  for (let i = 0; i < queue.length && i < 1000; i++) {
    const a = queue[i]!;
    let got: Action[] = [];
    if (a.type === "check_witness") got = n.feed(etcd.read(n.state.self, now), now);
    else if (a.type === "claim_witness") got = n.feed(etcd.claim(n.state.self, a.info.epoch), now);
    else continue;
    got = [...got, ...n.settle(got, now)];
    out.push(...got);
    queue.push(...got);
  }
  return out;
}

function run(etcd: TinyEtcd, nodes: CoreHarness[], from: number, to: number, link = true) {
  for (let t = from; t <= to; t += 250) {
    for (const n of nodes) {
      const acts = n.tick(t);
      serve(etcd, n, [...acts, ...n.settle(acts, t)], t);
    }
    if (link) exchange(t, ...nodes);
  }
}

Deno.test("etcd core: one node claims the absent key and becomes active at its create revision", () => {
  const etcd = new TinyEtcd();
  const m = etcdManifest({ alpha: 2, beta: 1 });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  run(etcd, [a, b], 0, 15_000);
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "standby");
  assert.equal(etcd.holder?.node, "alpha");
  assert.equal(a.state.epoch, 101, "the epoch is the key's create revision, not a ballot slot");
  const web = spawns(a.log).filter((s) => s.app === "web");
  assert.deepEqual(web.map((s) => s.epoch), [101]);
  assert.equal(ofType(b.log, "claim_witness").length, 0, "the standby never races for the key");
});

Deno.test("etcd core: a standby takes over only once the key is gone, at a higher revision", () => {
  const etcd = new TinyEtcd();
  const m = etcdManifest({ alpha: 2, beta: 1 });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  run(etcd, [a, b], 0, 15_000);
  assert.equal(a.state.role, "active");
  // alpha's host dies: beta hears nobody, but the key is still there (the lease runs).
  run(etcd, [b], 15_250, 25_000, false);
  assert.equal(b.state.role, "standby", "key still held: no takeover");
  assert.match(records(b.log, "hold").at(-1)?.message ?? "", /still hears active alpha/);
  etcd.holder = null; // the lease expired
  etcd.revision++;
  run(etcd, [b], 25_250, 30_000, false);
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, 103);
  assert.equal((etcd.holder as { node: string } | null)?.node, "beta");
});

Deno.test("etcd core: a granted revision not above a known epoch is outdated", () => {
  const etcd = new TinyEtcd();
  const m = etcdManifest({ alpha: 2, beta: 1 });
  const a = boot("alpha", m);
  let claim: Extract<Action, { type: "claim_witness" }> | undefined;
  for (let t = 0; t <= 20_000 && !claim; t += 250) {
    a.feed(etcd.read("alpha", t), t);
    claim = ofType(a.tick(t), "claim_witness")[0];
  }
  assert.ok(claim, "alpha claims the absent key");
  assert.ok(a.state.epoch < etcd.revision);
  const acts = a.feed({
    type: "claim_result",
    epoch: claim.info.epoch,
    ok: true,
    detail: "created",
    granted: etcd.revision, // = maxEpoch alpha already heard: not above it
  }, a.now + 10);
  assert.equal(a.state.role, "standby");
  assert.equal(records(acts, "claim_outdated").length, 1);
  assert.deepEqual(spawns(acts).filter((x) => x.app === "web"), []);
});

Deno.test("etcd core: an active steps down when etcd says the key is absent or someone else's", () => {
  for (const holder of [null, { node: "beta", epoch: 500 }]) {
    const etcd = new TinyEtcd();
    const m = etcdManifest({ alpha: 2, beta: 1 });
    const a = boot("alpha", m);
    const b = boot("beta", m);
    run(etcd, [a, b], 0, 15_000);
    assert.equal(a.state.role, "active");
    etcd.holder = holder;
    const acts = a.feed(etcd.read("alpha", 15_300), 15_300);
    assert.equal(a.state.role, "standby");
    assert.match(records(acts, "step_down")[0]?.message ?? "", /etcd: the key/);
    assert.ok(acts.some((x) => x.type === "stop" && x.app === "web" && x.mode === "kill"));
  }
});

Deno.test("etcd core: self-fencing counts etcd by the lease window, peers by fenceAfter", () => {
  const etcd = new TinyEtcd();
  const m = etcdManifest({ alpha: 2, beta: 1 });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  run(etcd, [a, b], 0, 15_000);
  assert.equal(a.state.role, "active");
  assert.equal(arbiterFenceAfter(a.state), WINDOW);
  const etcdAck = a.state.witness.lastAckAt!;
  const peerAck = a.state.peers["beta"]!.lastAckAt!;
  assert.equal(
    fenceDeadline(a.state, a.state.activeSince),
    Math.max(etcdAck + WINDOW, peerAck + HB.fenceAfterMs),
  );
  // etcd and beta both silent: fenceAfter passes (3 s) but the lease window (8.7 s) does not.
  etcd.up = false;
  for (let t = 15_250; t < etcdAck + WINDOW; t += 250) serve(etcd, a, a.tick(t), t);
  assert.equal(a.state.role, "active", "inside the lease window");
  serve(etcd, a, a.tick(etcdAck + WINDOW), etcdAck + WINDOW);
  assert.equal(a.state.role, "standby");
  assert.match(records(a.log, "step_down").at(-1)?.message ?? "", /isolated: no answer from etcd/);
});

Deno.test("etcd core: failsafe: without etcd the active keeps its apps while every peer answers", () => {
  const etcd = new TinyEtcd();
  const m = etcdManifest({ alpha: 2, beta: 1, gamma: 0 });
  const nodes = ["alpha", "beta", "gamma"].map((n) => boot(n, m));
  run(etcd, nodes, 0, 15_000);
  const [a, b, g] = nodes as [CoreHarness, CoreHarness, CoreHarness];
  assert.equal(a.state.role, "active");
  etcd.up = false;
  run(etcd, nodes, 15_250, 60_000);
  assert.equal(a.state.role, "active", "every peer answers: the apps stay");
  assert.equal(b.state.role, "standby");
  assert.equal(g.state.role, "standby");
  assert.equal(ofType([...b.log, ...g.log], "claim_witness").length, 0);
  // gamma is gone too: alpha fences at its deadline; nobody takes over without etcd.
  run(etcd, [a, b], 60_250, 90_000);
  assert.equal(a.state.role, "standby");
  assert.equal(b.state.role, "standby");
  assert.equal(a.running().includes("web"), false);
});

Deno.test("etcd core: a granted claim's term counts from when its lease was requested", () => {
  const etcd = new TinyEtcd();
  const m = etcdManifest({ alpha: 2, beta: 1 });
  const a = boot("alpha", m);
  let claim: Extract<Action, { type: "claim_witness" }> | undefined;
  for (let t = 0; t <= 20_000 && !claim; t += 250) {
    a.feed(etcd.read("alpha", t), t);
    claim = ofType(a.tick(t), "claim_witness")[0];
  }
  assert.ok(claim);
  const requested = a.now;
  const answered = requested + 2_000; // a slow etcd
  a.feed({
    type: "claim_result",
    epoch: claim.info.epoch,
    ok: true,
    detail: "created",
    granted: etcd.revision + 1,
    sentAt: requested,
  }, answered);
  assert.equal(a.state.role, "active");
  assert.equal(a.state.activeSince, requested, "not the (later) answer");
  assert.equal(a.state.witness.lastAckAt, requested);
  assert.equal(fenceDeadline(a.state, a.state.activeSince), requested + WINDOW);
});
