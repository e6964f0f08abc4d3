/**
 * Floating IPs in the core (src/core/vip.ts): the `vip` orders and where they fall in a step.
 * Up: persist of the new role and epoch → add → spawn of the movable apps. Down: SIGKILLs →
 * remove → persist on every step-down; on a handover, remove once every movable app has
 * exited and before the commit.
 */
import assert from "node:assert/strict";
import type { Action } from "../src/core/types.ts";
import { describeMismatch } from "../src/core/settings.ts";
import type { Manifest, VipSpec } from "../src/manifest/types.ts";
import {
  appSpec,
  boot,
  type CoreHarness,
  describe,
  HB,
  indexOf,
  makeManifest,
  type ManifestOptions,
  ofType,
  runCluster,
} from "./helpers/core_fixtures.ts";

const VIP: VipSpec = {
  address: "10.0.0.100",
  prefix: 24,
  family: 4,
  cidr: "10.0.0.100/24",
  interface: "eth0",
};
const VIP6: VipSpec = {
  address: "2001:db8::100",
  prefix: 64,
  family: 6,
  cidr: "2001:db8::100/64",
  interface: "eth0",
};
const APPS = [appSpec("web"), appSpec("logs", { movable: false })];

function withVips(m: Manifest, vips: VipSpec[]): Manifest {
  return { ...m, cluster: { ...m.cluster, vip: vips } };
}

function manifest(opts: ManifestOptions = {}, vips = [VIP, VIP6]): Manifest {
  return withVips(makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS, ...opts }), vips);
}

function vips(actions: Action[]) {
  return ofType(actions, "vip");
}

const isVip = (op: "add" | "remove") => (a: Action) => a.type === "vip" && a.op === op;

function pair(opts: ManifestOptions = {}) {
  const m = manifest(opts);
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active", describe([a, b]));
  return { a, b, m };
}

/** The step in `h`'s log where it became active (from its first `active` record). */
function activationStep(h: CoreHarness): Action[] {
  const i = h.log.findIndex((x) => x.type === "record" && x.kind === "active");
  assert.ok(i >= 0, `${h.state.self} never became active`);
  const end = h.log.findIndex((x, j) => j > i && x.type === "spawn" && x.spec.movable);
  return h.log.slice(i, end + 1);
}

Deno.test("vip: a node taking the active role persists its epoch, then adds its addresses, then spawns", () => {
  const { a, b } = pair();
  const step = activationStep(a);
  const persist = indexOf(step, (x) => x.type === "persist" && x.state.role === "active");
  const add = indexOf(step, isVip("add"));
  const spawn = indexOf(step, (x) => x.type === "spawn" && x.app === "web");
  assert.ok(persist >= 0 && persist < add && add < spawn, `order: ${step.map((x) => x.type)}`);
  const order = vips(step)[0]!;
  assert.deepEqual(order.vips.map((v) => v.cidr), ["10.0.0.100/24", "2001:db8::100/64"]);
  assert.equal(order.adopt, false, "a takeover adopts nothing: a present address is a conflict");
  assert.deepEqual(vips(b.log).filter((v) => v.op === "add"), [], "the standby adds none");
  assert.deepEqual(a.state.vipHeld?.map((v) => v.cidr), ["10.0.0.100/24", "2001:db8::100/64"]);
});

Deno.test("vip: a boot as standby removes what is configured (a leftover), once", () => {
  const m = manifest();
  const b = boot("beta", m);
  const first = vips(b.log);
  assert.deepEqual(first.map((v) => [v.op, v.vips.length]), [["remove", 2]]);
  b.ticks(100, 3_000, 100);
  assert.equal(vips(b.log).length, 1, "no order again while nothing changes");
  assert.deepEqual(b.state.vipHeld, []);
});

Deno.test("vip: stepping down to a higher epoch SIGKILLs, then removes, then persists", () => {
  const { a, b } = pair();
  const newer = { ...b.info(), role: "active" as const, epoch: a.state.epoch + 1 };
  const actions = a.hear(newer, 9_000);
  assert.equal(a.state.role, "standby");
  const kill = indexOf(actions, (x) => x.type === "stop" && x.mode === "kill");
  const remove = indexOf(actions, isVip("remove"));
  const persist = indexOf(actions, (x) => x.type === "persist" && x.state.role === "standby");
  assert.ok(kill >= 0 && kill < remove && remove < persist, `order: ${actions.map((x) => x.type)}`);
  assert.equal(vips(actions).length, 1);
  assert.deepEqual(a.state.vipHeld, []);
});

Deno.test("vip: self-fencing of an isolated active removes the addresses in the same step as the kill", () => {
  const { a } = pair({ witness: true });
  a.witness(8_000, "baton");
  const from = a.log.length;
  a.ticks(8_100, 8_000 + HB.fenceAfterMs - 100, 100);
  assert.deepEqual(vips(a.log.slice(from)), [], "held until the fence");
  const actions = a.tick(8_000 + HB.fenceAfterMs);
  assert.equal(a.state.role, "standby");
  const kill = indexOf(actions, (x) => x.type === "stop" && x.mode === "kill");
  const remove = indexOf(actions, isVip("remove"));
  assert.ok(kill >= 0 && kill < remove, `order: ${actions.map((x) => x.type)}`);
});

Deno.test("vip: a switchover removes the addresses once every movable app exited, before the commit; the peer adds them after its persist", () => {
  const { a, b } = pair();
  const sw = a.command({ type: "switchover", to: "beta" }, 9_000, "sw");
  const prepare = ofType(sw, "send_prepare")[0]!;
  const ack = b.feed({
    type: "takeover_prepare",
    id: "p",
    from: "alpha",
    epoch: prepare.epoch,
    reason: prepare.reason,
  }, 9_050);
  assert.equal(ack.filter((x) => x.type === "reply")[0]?.type, "reply");
  const stopping = a.feed({ type: "prepare_result", to: "beta", ok: true, detail: "ok" }, 9_100);
  assert.ok(stopping.some((x) => x.type === "stop" && x.mode === "graceful"));
  assert.equal(vips(stopping).length, 0, "still held while the apps stop");
  const web = a.state.apps["web"]!;
  const done = a.feed({ type: "app_exited", app: "web", pid: web.pid!, detail: "exit 0" }, 9_200);
  const remove = indexOf(done, isVip("remove"));
  const commit = indexOf(done, (x) => x.type === "send_commit");
  assert.ok(remove >= 0 && remove < commit, `order: ${done.map((x) => x.type)}`);
  const commitOrder = ofType(done, "send_commit")[0]!;
  const taken = b.feed({
    type: "takeover_commit",
    id: "c",
    from: "alpha",
    epoch: commitOrder.epoch,
    reason: commitOrder.reason,
  }, 9_300);
  assert.equal(b.state.role, "active");
  const persist = indexOf(taken, (x) => x.type === "persist" && x.state.role === "active");
  const add = indexOf(taken, isVip("add"));
  const spawn = indexOf(taken, (x) => x.type === "spawn" && x.app === "web");
  assert.ok(persist >= 0 && persist < add && add < spawn, `order: ${taken.map((x) => x.type)}`);
});

Deno.test("vip: a resumed active touches no address until it knows; then adopts what is there", () => {
  const m = manifest({ witness: "baton" });
  const a = boot("alpha", m, {
    persisted: {
      version: 1,
      node: "alpha",
      epoch: 5,
      role: "active",
      roleSeq: 3,
      maintenance: false,
      failedReason: null,
      apps: { web: { pid: 4242, startTime: 7, specHash: m.apps["web"]!.hash, restarts: 0 } },
    },
    adopted: [{ app: "web", pid: 4242, startTime: 7, specHash: m.apps["web"]!.hash, restarts: 0 }],
  });
  assert.ok(a.state.resume !== null);
  assert.deepEqual(vips(a.log), [], "neither added nor removed while resuming");
  const settled = a.witness(100, "baton", null, true, 50);
  assert.equal(a.state.resume, null);
  const order = vips(settled);
  assert.deepEqual(order.map((v) => [v.op, v.adopt]), [["add", true]]);
});

Deno.test("vip: a resumed active that cannot re-establish its lease removes the addresses as it steps down", () => {
  const m = manifest({ witness: "baton" });
  const a = boot("alpha", m, {
    persisted: {
      version: 1,
      node: "alpha",
      epoch: 5,
      role: "active",
      roleSeq: 3,
      maintenance: false,
      failedReason: null,
      apps: {},
    },
  });
  const actions = a.tick(HB.fenceAfterMs);
  assert.equal(a.state.role, "standby");
  assert.deepEqual(vips(actions).map((v) => [v.op, v.vips.length]), [["remove", 2]]);
});

Deno.test("vip: a reload while active adds a new address and removes a dropped one", () => {
  const { a, m } = pair();
  const extra: VipSpec = { ...VIP, address: "10.0.0.101", cidr: "10.0.0.101/24" };
  const next = { ...withVips(m, [VIP6, extra]), hash: "m2" };
  const actions = a.feed({ type: "manifest", manifest: next }, 9_000);
  assert.deepEqual(
    vips(actions).map((v) => [v.op, v.vips.map((x) => x.cidr)]),
    [["remove", ["10.0.0.100/24"]], ["add", ["10.0.0.101/24"]]],
  );
});

Deno.test("vip: without cluster.vip the core emits no vip order at all", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  const newer = { ...b.info(), role: "active" as const, epoch: a.state.epoch + 1 };
  a.hear(newer, 9_000);
  assert.deepEqual([...vips(a.log), ...vips(b.log)], []);
});

Deno.test("vip: peers whose cluster.vip differ see it as a settings mismatch (a warning naming vip)", () => {
  const ma = manifest({}, [VIP]);
  const mb = manifest({}, [VIP6]);
  const a = boot("alpha", ma);
  const b = boot("beta", mb);
  runCluster([a, b], 0, 2_000);
  assert.match(describeMismatch(b.state).join("\n"), /\bvip\b/);
  const same = manifest({}, [VIP]);
  const c = boot("alpha", same);
  const d = boot("beta", same);
  runCluster([c, d], 0, 2_000);
  assert.deepEqual(describeMismatch(d.state), []);
});
