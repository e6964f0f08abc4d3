/**
 * The takeover protocol of the core (takeover.ts through `step`): roles at boot, standby
 * takeover, witness arbitration, self-fencing, two actives meeting, escalation and switchover
 * handovers on both sides, failed nodes, maintenance, stale epochs and clock gaps.
 *
 * The harness checks after every step that the epoch never decreases and that no spawn runs
 * under an epoch that has not been persisted.
 */
import assert from "node:assert/strict";
import {
  appNames,
  appSpec,
  assertOneActive,
  boot,
  type CoreHarness,
  describe,
  exchange,
  HB,
  indexOf,
  makeManifest,
  type ManifestOptions,
  ofType,
  records,
  replies,
  RESTART,
  runCluster,
  spawns,
  stops,
} from "./helpers/core_fixtures.ts";
import type { Action } from "../src/core/types.ts";

const WEB = appSpec("web");
const DB = appSpec("db");
const LOGS = appSpec("logs", { movable: false });
const APPS = [WEB, DB, LOGS];
const HOUR = 3_600_000;

/** alpha (priority 2) active at epoch 1 and beta (priority 1) standby, heard each other at 8 s. */
function pair(
  opts: ManifestOptions = {},
): { a: CoreHarness; b: CoreHarness; m: ReturnType<typeof makeManifest> } {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS, ...opts });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active", describe([a, b]));
  assert.equal(b.state.role, "standby");
  assert.equal(a.state.epoch, 1);
  assert.equal(b.state.epoch, 1);
  assert.deepEqual(a.running(), ["db", "logs", "web"]);
  assert.deepEqual(b.running(), ["logs"]);
  return { a, b, m };
}

/** Carry `from`'s prepare/commit requests in `actions` to `to`, and the replies back. */
function deliver(from: CoreHarness, to: CoreHarness, actions: Action[], now: number): Action[] {
  const back: Action[] = [];
  for (const act of actions) {
    if (act.type !== "send_prepare" && act.type !== "send_commit") continue;
    assert.equal(act.to, to.state.self);
    const id = `${act.type}-${now}`;
    const ev = { id, from: from.state.self, epoch: act.epoch, reason: act.reason };
    const got = to.feed({
      ...ev,
      type: act.type === "send_prepare" ? "takeover_prepare" : "takeover_commit",
    }, now);
    // A commit is answered once the movable apps started there are ready (ready_wait.ts).
    const settled = to.settle(got, now);
    const reply = replies([...got, ...settled]).find((r) => r.id === id);
    assert.ok(reply, `${to.state.self} did not reply to ${act.type}`);
    const result = {
      to: to.state.self,
      ok: reply.status === 200,
      detail: String(reply.body.error ?? `epoch ${reply.body.epoch}`),
    };
    back.push(
      ...from.feed(
        { ...result, type: act.type === "send_prepare" ? "prepare_result" : "commit_result" },
        now,
      ),
    );
  }
  return back;
}

/** Make `app` on `h` fail twice inside its window (the second time escalates). */
function crashTwice(h: CoreHarness, app: string, at: number): Action[] {
  h.settle(h.exit(app, at), at);
  return h.exit(app, at + 500);
}

// ---------------------------------------------------------------- roles at boot

Deno.test("tickStandby: a single node becomes active at its first tick and spawns its movable apps after persisting", () => {
  const h = boot("alpha", makeManifest({ apps: APPS }), { settle: false });
  assert.equal(h.state.role, "standby");
  const actions = h.tick(0);
  assert.equal(h.state.role, "active");
  assert.equal(h.state.epoch, 1);
  assert.deepEqual(appNames(spawns(actions)), ["db", "web"], "only movable apps: logs ran already");
  const persist = indexOf(actions, (a) => a.type === "persist" && a.state.role === "active");
  assert.ok(persist >= 0 && persist < indexOf(actions, (a) => a.type === "spawn"));
  assert.equal(ofType(actions, "heartbeat").length, 0, "no peers: no heartbeat");
});

Deno.test("tickStandby: two nodes booted together end with one active, the higher priority, after the quiet period", () => {
  const m = makeManifest({ nodes: { alpha: 1, beta: 2 }, apps: APPS });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 4_500);
  assert.equal(a.state.role, "standby", "nobody is active during the boot quiet period");
  assert.equal(b.state.role, "standby");
  runCluster([a, b], 5_000, 20_000);
  assert.equal(b.state.role, "active", describe([a, b]));
  assert.equal(a.state.role, "standby");
  assert.deepEqual(b.running(), ["db", "logs", "web"]);
  assert.deepEqual(a.running(), ["logs"]);
  assert.equal(records(a.log, "active").length, 0, "alpha never was active");
});

Deno.test("tickStandby: with equal priorities the name breaks the tie, the same on both nodes", () => {
  const m = makeManifest({ nodes: { beta: 5, alpha: 5 }, apps: APPS });
  const b = boot("beta", m);
  const a = boot("alpha", m);
  runCluster([b, a], 0, 20_000);
  assert.equal(a.state.role, "active", describe([a, b]));
  assert.equal(b.state.role, "standby");
  assert.equal(records(b.log, "active").length, 0);
});

Deno.test("tickStandby: three nodes, the active dies: exactly one standby (highest priority) takes over", () => {
  const m = makeManifest({ nodes: { alpha: 3, beta: 1, gamma: 2 }, apps: APPS });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  const c = boot("gamma", m);
  runCluster([a, b, c], 0, 10_000);
  assert.equal(a.state.role, "active");
  runCluster([b, c], 10_500, 30_000);
  assert.equal(c.state.role, "active", describe([a, b, c]));
  assert.equal(b.state.role, "standby");
  assert.equal(c.state.epoch, 3, "the next epoch in gamma's ballot slot (3rd of 3 nodes)");
});

// ---------------------------------------------------------------- standby takeover

Deno.test("tickStandby: a standby takes over after deadAfter of silence from the active, not before", () => {
  const { b } = pair();
  const early = b.ticks(8_100, 8_000 + HB.deadAfterMs - 1, 100);
  assert.deepEqual(spawns(early), []);
  assert.equal(b.state.role, "standby");
  b.tick(8_000 + HB.deadAfterMs - 1);
  assert.equal(b.state.role, "standby", "still alive at deadAfter - 1 ms");
  const actions = b.tick(8_000 + HB.deadAfterMs);
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, 2);
  assert.match(records(actions, "active")[0]?.message ?? "", /no heartbeat from active alpha/);
  assert.deepEqual(appNames(spawns(actions)), ["db", "web"]);
  for (const s of spawns(actions)) assert.equal(s.epoch, 2);
});

/** What a node wrote to its state directory: standby at `epoch`, no apps. */
function persistedStandby(node: string, epoch: number) {
  return {
    version: 1 as const,
    node,
    epoch,
    role: "standby" as const,
    roleSeq: 2,
    maintenance: false,
    failedReason: null,
    apps: {},
  };
}

Deno.test("tickStandby: a standby booted alone does not take over within its boot quiet period", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS });
  const b = boot("beta", m, { persisted: persistedStandby("beta", 4) });
  b.ticks(0, HB.deadAfterMs - 1, 100);
  assert.equal(b.state.role, "standby");
  b.tick(HB.deadAfterMs);
  assert.equal(b.state.role, "active", "no witness configured: silence is enough");
});

Deno.test("tickStandby: a standby that hears the active keeps quiet however long it runs", () => {
  const { a, b } = pair();
  runCluster([a, b], 8_500, 120_000, 1_000);
  assert.equal(records(b.log, "active").length, 0);
  assert.equal(a.state.epoch, 1);
});

// ---------------------------------------------------------------- witness

Deno.test("tickStandby: peer unseen and no witness answer → no takeover, one hold record", () => {
  const { b } = pair({ witness: true });
  const actions = b.ticks(8_100, 30_000, 100);
  assert.equal(b.state.role, "standby");
  assert.ok(ofType(actions, "check_witness").length > 0, "the standby keeps asking the witness");
  const holds = records(actions, "hold");
  assert.equal(holds.length, 1, "the hold is recorded once, not on every tick");
  assert.match(holds[0]!.message, /cannot see alpha nor the witness/);
});

Deno.test("tickStandby: peer unseen, plain witness reachable → takeover", () => {
  const { b } = pair({ witness: true });
  b.witness(12_900, "http");
  const actions = b.tick(13_000);
  assert.equal(b.state.role, "active");
  assert.match(records(actions, "active")[0]?.message ?? "", /witness reachable/);
  assert.deepEqual(appNames(spawns(actions)), ["db", "web"]);
});

Deno.test("tickStandby: peer unseen, baton witness → claim; a granted claim makes it active above every epoch seen", () => {
  const { b } = pair({ witness: true });
  b.witness(12_900, "baton", { node: "alpha", epoch: 1, ageMs: HB.deadAfterMs });
  const claim = b.tick(13_000);
  assert.equal(b.state.role, "standby");
  assert.deepEqual(spawns(claim), []);
  const sent = ofType(claim, "claim_witness");
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.info.role, "active");
  assert.equal(sent[0]!.info.epoch, 2);
  assert.equal(ofType(b.tick(13_100), "claim_witness").length, 0, "one claim at a time");
  const granted = b.feed({ type: "claim_result", epoch: 2, ok: true, detail: "granted" }, 13_200);
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, 2);
  assert.deepEqual(appNames(spawns(granted)), ["db", "web"]);
});

Deno.test("onClaimResult: a refused claim keeps the standby standby and it asks again later", () => {
  const { b } = pair({ witness: true });
  b.witness(12_900, "baton", null);
  assert.equal(ofType(b.tick(13_000), "claim_witness").length, 1);
  const refused = b.feed({
    type: "claim_result",
    epoch: 2,
    ok: false,
    detail: "alpha holds epoch 1",
  }, 13_100);
  assert.equal(b.state.role, "standby");
  assert.deepEqual(spawns(refused), []);
  assert.equal(records(refused, "claim_refused").length, 1);
  b.witness(13_500, "baton", null);
  const again = b.ticks(13_200, 15_000, 100);
  assert.equal(ofType(again, "claim_witness").length, 1);
  // A late answer to an old claim is ignored.
  const stale = b.feed({ type: "claim_result", epoch: 1, ok: true, detail: "late" }, 15_100);
  assert.deepEqual(spawns(stale), []);
  assert.equal(b.state.role, "standby");
});

Deno.test("tickStandby: a witness that still hears a fresh active blocks the takeover", () => {
  const { b } = pair({ witness: true });
  for (let t = 12_000; t <= 30_000; t += 1_000) {
    b.witness(t, "baton", { node: "alpha", epoch: 1, ageMs: 200 });
    b.ticks(t, t + 900, 100);
  }
  assert.equal(b.state.role, "standby");
  assert.equal(ofType(b.log, "claim_witness").length, 0);
  assert.match(records(b.log, "hold")[0]?.message ?? "", /witness still hears active alpha/);
});

// ---------------------------------------------------------------- self-fencing

Deno.test("tickActive: an isolated active fences itself after fenceAfter without peer and witness", () => {
  const { a } = pair({ witness: true });
  a.witness(8_000, "baton");
  const logsPid = a.pid("logs");
  a.ticks(8_100, 8_000 + HB.fenceAfterMs - 100, 100);
  assert.equal(a.state.role, "active");
  const actions = a.tick(8_000 + HB.fenceAfterMs);
  assert.equal(a.state.role, "standby");
  assert.equal(records(actions, "step_down").length, 1);
  assert.deepEqual(stops(actions).map((s) => [s.app, s.mode]).sort(), [["db", "kill"], [
    "web",
    "kill",
  ]]);
  a.settle(actions, 11_000);
  assert.deepEqual(a.running(), ["logs"]);
  assert.equal(a.pid("logs"), logsPid, "non-movable apps keep running");
  a.ticks(11_100, 60_000, 500);
  assert.equal(a.state.role, "standby", "still isolated: it does not take the role back");
});

Deno.test("tickActive: an active that still hears the witness (or the peer) does not fence itself", () => {
  const { a } = pair({ witness: true });
  for (let t = 8_000; t <= 40_000; t += 1_000) {
    a.witness(t, "baton");
    a.ticks(t, t + 900, 100);
  }
  assert.equal(a.state.role, "active");
  const { a: a2, b: b2 } = pair({ witness: true });
  for (let t = 8_000; t <= 40_000; t += 1_000) {
    a2.hear(b2, t);
    a2.ticks(t, t + 900, 100);
  }
  assert.equal(a2.state.role, "active");
  assert.deepEqual(stops(a.log).concat(stops(a2.log)), []);
});

Deno.test("tickActive: contact is dated by when the answered request was sent, not when the slow reply came", () => {
  const { a } = pair({ witness: true });
  // Each witness reply arrives late: sent 1 s before it is answered. Fencing must count
  // from the send time, since the witness may have heard us as early as that.
  for (let t = 8_000; t <= 8_000 + HB.fenceAfterMs; t += 500) {
    a.witness(t, "baton", null, true, t - 1_000);
  }
  const lastSent = 8_000 + HB.fenceAfterMs - 1_000;
  a.ticks(8_000, lastSent + HB.fenceAfterMs - 100, 100);
  assert.equal(a.state.role, "active");
  a.tick(lastSent + HB.fenceAfterMs);
  assert.equal(a.state.role, "standby", "fenced fenceAfter after the last answered send");
  // A heartbeat the peer sent us proves it alive, not that it heard us: no contact.
  const { a: a2, b: b2 } = pair({ witness: true });
  for (let t = 8_000; t <= 8_000 + HB.fenceAfterMs; t += 500) a2.hear(b2, t, null);
  a2.ticks(8_000, 8_000 + HB.fenceAfterMs, 100);
  assert.equal(a2.state.role, "standby");
});

Deno.test("tickActive: without a witness configured an isolated active never fences itself", () => {
  const { a } = pair();
  a.ticks(8_100, 60_000, 500);
  assert.equal(a.state.role, "active");
  assert.deepEqual(stops(a.log), []);
});

// ---------------------------------------------------------------- two actives

Deno.test("onPeerInfo: when two actives meet the lower epoch steps down with SIGKILL, the higher stays", () => {
  const { a, b } = pair();
  // Partition: beta takes over, alpha (no witness) keeps running.
  b.settle(b.ticks(8_100, 13_000, 100), 13_000);
  a.ticks(8_100, 13_000, 100);
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, 2);
  const bPids = b.running().map((n) => b.pid(n));
  const heardA = b.hear(a, 13_500);
  assert.equal(b.state.role, "active", "beta (epoch 2) stays");
  assert.deepEqual(stops(heardA), []);
  const heardB = a.hear(b, 13_500);
  assert.equal(a.state.role, "standby");
  assert.equal(a.state.epoch, 2);
  assert.deepEqual(stops(heardB).map((s) => [s.app, s.mode]).sort(), [["db", "kill"], [
    "web",
    "kill",
  ]]);
  a.settle(heardB, 13_500);
  runCluster([a, b], 14_000, 30_000);
  assert.equal(b.state.role, "active");
  assert.deepEqual(b.running().map((n) => b.pid(n)), bPids);
  assert.deepEqual(a.running(), ["logs"]);
});

Deno.test("nextEpoch: nodes deciding at once never pick the same epoch (ballot slots by name)", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS });
  const a = boot("alpha", m, { mode: "active" });
  const b = boot("beta", m, { mode: "active" });
  assert.equal(a.state.epoch, 1);
  assert.equal(b.state.epoch, 2);
  a.settle(a.hear(b, 100), 100);
  b.settle(b.hear(a, 100), 100);
  assert.equal(b.state.role, "active", "the higher epoch stays, whatever the priorities");
  assert.equal(a.state.role, "standby");
  assertOneActive([a, b]);
  const m3 = makeManifest({ nodes: { alpha: 1, beta: 1, gamma: 1 }, apps: APPS });
  const epochs = ["alpha", "beta", "gamma"].map((n) => boot(n, m3, { mode: "active" }).state.epoch);
  assert.deepEqual(epochs, [1, 2, 3]);
});

Deno.test("onPeerInfo: two actives at the same epoch (a manifest mismatch): priority, then name, decide on both sides", () => {
  // Different node lists give different ballot slots: both pick epoch 2.
  const a = boot("alpha", makeManifest({ nodes: { aaa: 1, alpha: 1, beta: 1 }, apps: APPS }), {
    mode: "active",
  });
  const b = boot("beta", makeManifest({ nodes: { alpha: 1, beta: 1 }, apps: APPS }), {
    mode: "active",
  });
  assert.deepEqual([a.state.epoch, b.state.epoch], [2, 2]);
  a.settle(a.hear(b, 100), 100);
  b.settle(b.hear(a, 100), 100);
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "standby");
  assertOneActive([a, b]);
});

// ---------------------------------------------------------------- escalation handover

Deno.test("escalate: full handover — prepare, stop movable apps, persist failed before commit, peer starts them at a higher epoch", () => {
  const { a, b } = pair();
  const logsA = a.pid("logs");
  const logsB = b.pid("logs");
  const esc = crashTwice(a, "web", 9_000);
  assert.equal(records(esc, "escalation").length, 1);
  const prepares = ofType(esc, "send_prepare");
  assert.deepEqual(prepares.map((p) => [p.to, p.epoch]), [["beta", 1]]);
  assert.deepEqual(stops(esc), [], "nothing stops before the standby is ready");
  assert.equal(a.state.handover?.phase, "preparing");

  // beta acknowledges.
  const prep = b.feed({
    type: "takeover_prepare",
    id: "p1",
    from: "alpha",
    epoch: 1,
    reason: prepares[0]!.reason,
  }, 9_600);
  assert.deepEqual(replies(prep).map((r) => r.status), [200]);
  assert.deepEqual(spawns(prep), []);

  // alpha stops every movable app, and only those.
  const ready = a.feed({ type: "prepare_result", to: "beta", ok: true, detail: "ok" }, 9_700);
  assert.deepEqual(
    stops(ready).map((s) => [s.app, s.mode]),
    [["db", "graceful"]],
    "web was down already",
  );
  assert.equal(ofType(ready, "send_commit").length, 0);
  assert.equal(a.state.role, "active");

  // The last exit: persist role failed, then commit.
  const done = a.exit("db", 9_800, "killed by SIGTERM");
  const persistAt = indexOf(done, (x) => x.type === "persist" && x.state.role === "failed");
  const commitAt = indexOf(done, (x) => x.type === "send_commit");
  assert.ok(persistAt >= 0, "the failed role is persisted");
  assert.ok(commitAt > persistAt, "persist comes before send_commit");
  assert.equal(a.state.role, "failed");
  assert.deepEqual(ofType(done, "send_commit").map((c) => [c.to, c.epoch]), [["beta", 1]]);

  // beta takes over: persist the new epoch, then spawn the movable apps only.
  const commit = b.feed({
    type: "takeover_commit",
    id: "c1",
    from: "alpha",
    epoch: 1,
    reason: "web failed",
  }, 9_900);
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, 2);
  const bPersist = indexOf(commit, (x) => x.type === "persist" && x.state.epoch === 2);
  assert.ok(bPersist >= 0 && bPersist < indexOf(commit, (x) => x.type === "spawn"));
  assert.deepEqual(appNames(spawns(commit)), ["db", "web"]);
  assert.deepEqual(replies(commit), [], "answered once the apps are ready there");
  const started = b.settle(commit, 9_900);
  assert.deepEqual(replies(started).map((r) => [r.status, r.body.epoch]), [[200, 2]]);

  const result = a.feed({ type: "commit_result", to: "beta", ok: true, detail: "epoch 2" }, 10_000);
  assert.equal(records(result, "handover_done").length, 1);
  assert.equal(a.state.handover, null);

  runCluster([a, b], 10_500, 60_000);
  assert.equal(a.state.role, "failed");
  assert.equal(b.state.role, "active");
  assert.equal(a.state.epoch, 2, "the failed node learns the new epoch");
  assert.deepEqual(a.running(), ["logs"]);
  assert.equal(a.pid("logs"), logsA, "non-movable apps on the old host are untouched");
  assert.equal(b.pid("logs"), logsB);
  assert.ok(!stops(a.log).some((s) => s.app === "logs"));
  assert.equal(spawns(a.log).filter((s) => s.app !== "logs" && s.epoch === 2).length, 0);
});

Deno.test("progressHandover: the escalation runs the fence command after the stops and commits after it", () => {
  const { a, b } = pair({ fence: ["/usr/bin/poweroff-peer"] });
  const esc = crashTwice(a, "web", 9_000);
  const back = deliver(a, b, esc, 9_600);
  const fence = ofType(a.settle(back, 9_700), "fence");
  assert.deepEqual(fence.map((f) => f.command), [["/usr/bin/poweroff-peer"]]);
  assert.equal(a.state.role, "active", "not failed before the fence ran");
  assert.equal(ofType(a.log, "send_commit").length, 0);
  const fenced = a.feed({ type: "fence_result", ok: false, detail: "exit 1" }, 9_800);
  assert.equal(a.state.role, "failed");
  assert.equal(ofType(fenced, "send_commit").length, 1);
  deliver(a, b, fenced, 9_900);
  assert.equal(b.state.role, "active");
  assert.deepEqual(b.running(), ["db", "logs", "web"]);
});

Deno.test("progressHandover: a movable app still starting holds the commit until it has started and stopped", () => {
  const { a, b } = pair();
  const restarted = a.exit("db", 9_000); // db restarts: its spawn is in flight
  assert.deepEqual(appNames(spawns(restarted)), ["db"]);
  const esc = crashTwice(a, "web", 9_100);
  const back = deliver(a, b, esc, 9_700);
  assert.equal(ofType(back, "send_commit").length, 0, "db may still come up here");
  assert.equal(a.state.role, "active");
  const started = a.started("db", 9_800);
  assert.deepEqual(stops(started).map((s) => s.app), ["db"]);
  const exited = a.settle(started, 9_900);
  assert.equal(ofType(exited, "send_commit").length, 1);
  deliver(a, b, exited, 10_000);
  assert.equal(b.state.role, "active");
  assertOneActive([a, b]);
});

Deno.test("onPrepareResult: a refused prepare keeps the apps here, backs off, and retries the handover later", () => {
  const { a, b } = pair();
  const dbPid = a.pid("db");
  crashTwice(a, "web", 9_000);
  const refused = a.feed({
    type: "prepare_result",
    to: "beta",
    ok: false,
    detail: "beta is in maintenance",
  }, 9_600);
  assert.equal(records(refused, "handover_refused").length, 1);
  assert.deepEqual(stops(refused), []);
  assert.equal(a.state.role, "active");
  assert.equal(a.state.handover, null);
  const back = a.ticks(9_700, 10_500, 100);
  assert.deepEqual(appNames(spawns(back)), ["web"], "web comes back after its backoff");
  a.settle(back, 10_500);
  assert.equal(a.pid("db"), dbPid);
  // The handover is retried once the retry delay passed, if a standby is there.
  let retried = false;
  for (let t = 11_000; t <= 20_000 && !retried; t += 500) {
    a.hear(b, t);
    retried = ofType(a.tick(t), "send_prepare").length > 0;
    if (retried) assert.ok(t >= 9_600 + HB.deadAfterMs, `retried too early, at ${t}`);
  }
  assert.ok(retried, "the escalated app asks for a handover again");
});

Deno.test("escalate: with no standby alive there is no prepare, a loud record and a backoff restart", () => {
  const { a } = pair();
  a.ticks(8_100, 14_000, 500); // beta silent for longer than deadAfter
  const esc = crashTwice(a, "web", 14_000);
  assert.equal(ofType(esc, "send_prepare").length, 0);
  const loud = records(esc, "no_handover");
  assert.equal(loud.length, 1);
  assert.equal(loud[0]!.level, "error");
  assert.match(loud[0]!.message, /beta unreachable/);
  assert.equal(records(esc, "backoff").length, 1);
  assert.deepEqual(stops(esc), []);
  assert.equal(a.state.role, "active");
  assert.equal(a.state.apps.web!.backoffUntil, 14_500 + RESTART.backoffMs);
});

Deno.test("escalate: a standby in maintenance is not asked to take over", () => {
  const { a, b } = pair();
  b.command({ type: "maintenance", on: true }, 8_200);
  a.hear(b, 8_300);
  const esc = crashTwice(a, "web", 9_000);
  assert.equal(ofType(esc, "send_prepare").length, 0);
  assert.match(records(esc, "no_handover")[0]?.message ?? "", /beta in maintenance/);
});

Deno.test("escalate: a standby that escalates is failed at once (never deferred); the app backs off", () => {
  const { b } = pair();
  const esc = crashTwice(b, "logs", 9_000);
  assert.equal(ofType(esc, "send_prepare").length, 0);
  assert.equal(b.state.apps.logs!.phase, "backoff");
  assert.equal(b.state.role, "failed");
  assert.match(b.state.failedReason ?? "", /logs: .*escalated while standby/);
  assert.match(records(esc, "failed")[0]?.message ?? "", /escalation while standby/);
  const p = ofType(esc, "persist").at(-1);
  assert.equal(p?.state.role, "failed", "the failed role reaches the disk");
});

// ---------------------------------------------------------------- switchover

Deno.test("onCommand switchover: replies 200 after the commit; the old active becomes standby and stays so", () => {
  const { a, b } = pair();
  const bStandby = b.info();
  const sw = a.command({ type: "switchover", to: null }, 9_000, "sw1");
  assert.deepEqual(replies(sw), [], "the reply waits for the outcome");
  assert.equal(ofType(sw, "send_prepare").length, 1);
  const back = deliver(a, b, sw, 9_100);
  assert.deepEqual(stops(back).map((s) => [s.app, s.mode]).sort(), [["db", "graceful"], [
    "web",
    "graceful",
  ]]);
  const done = a.settle(back, 9_200);
  assert.equal(a.state.role, "standby", "a switchover does not mark the node failed");
  const p = indexOf(done, (x) => x.type === "persist" && x.state.role === "standby");
  assert.ok(p >= 0 && p < indexOf(done, (x) => x.type === "send_commit"));
  assert.deepEqual(replies(done), []);
  const result = deliver(a, b, done, 9_300);
  assert.deepEqual(replies(result).map((r) => [r.id, r.status]), [["sw1", 200]]);
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, 2);
  // alpha (higher priority) does not take the role back while it still hears beta as standby.
  a.hear(bStandby, 9_250);
  a.ticks(9_300, 9_200 + HB.deadAfterMs - 100, 100);
  assert.equal(a.state.role, "standby");
  runCluster([a, b], 14_150, 60_000);
  assert.equal(a.state.role, "standby");
  assert.equal(b.state.role, "active");
  assert.deepEqual(b.running(), ["db", "logs", "web"]);
});

Deno.test("onCommand switchover: refused on a standby (409, names the active), unknown node (400), during a handover (409)", () => {
  const { a, b } = pair();
  const onStandby = replies(b.command({ type: "switchover", to: null }, 9_000, "x"));
  assert.deepEqual(onStandby.map((r) => r.status), [409]);
  assert.match(String(onStandby[0]!.body.error), /run switchover on the active node \(alpha\)/);
  const unknown = replies(a.command({ type: "switchover", to: "zeta" }, 9_000, "y"));
  assert.deepEqual(unknown.map((r) => r.status), [400]);
  a.command({ type: "switchover", to: "beta" }, 9_100, "z1");
  const twice = replies(a.command({ type: "switchover", to: null }, 9_200, "z2"));
  assert.deepEqual(twice.map((r) => [r.id, r.status]), [["z2", 409]]);
});

Deno.test("onSwitchover: with no standby available it waits deadAfter, then answers 409 saying what it waited for", () => {
  const { a } = pair();
  a.ticks(8_100, 14_000, 500);
  const first = a.command({ type: "switchover", to: null }, 14_000, "s");
  assert.deepEqual(replies(first), [], "no refusal at once");
  assert.match(
    records(first, "switchover_wait")[0]?.message ?? "",
    /waiting up to 5s .* a standby .*beta unreachable/,
  );
  assert.deepEqual(replies(a.ticks(14_100, 14_000 + HB.deadAfterMs - 100, 100)), []);
  const r = replies(a.tick(14_000 + HB.deadAfterMs));
  assert.deepEqual(r.map((x) => [x.id, x.status]), [["s", 409]]);
  assert.match(
    String(r[0]!.body.error),
    /no standby can take over after waiting 5s: beta unreachable/,
  );
  assert.equal(a.state.role, "active");
  assert.equal(a.state.switchoverWait, null);
});

Deno.test("onSwitchover: right after `clear` of the failed target it waits for the target's heartbeat, then hands over", () => {
  const { a, b } = afterEscalation();
  runCluster([a, b], 9_500, 12_000);
  const cleared = a.command({ type: "clear" }, 12_100, "cl");
  assert.deepEqual(replies(cleared).map((r) => r.body.role), ["standby"]);
  // beta still has alpha as failed: its heartbeat has not arrived yet.
  assert.equal(b.state.peers.alpha!.role, "failed");
  const sw = b.command({ type: "switchover", to: "alpha" }, 12_150, "sw");
  assert.deepEqual(replies(sw), []);
  assert.deepEqual(ofType(sw, "send_prepare"), []);
  assert.match(
    records(sw, "switchover_wait")[0]?.message ?? "",
    /for alpha .*\(now: alpha is failed\)/,
  );
  assert.deepEqual(replies(b.tick(12_200)), []);
  const heard = b.hear(a, 12_300);
  assert.deepEqual(ofType(heard, "send_prepare").map((p) => p.to), ["alpha"]);
  const back = deliver(b, a, heard, 12_400);
  const done = b.settle(back, 12_500);
  const result = deliver(b, a, done, 12_600);
  assert.deepEqual(replies(result).map((r) => [r.id, r.status]), [["sw", 200]]);
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "standby");
  assert.equal(b.state.switchoverWait, null);
});

Deno.test("onSwitchover: a waiting switchover is refused when the target stays failed, or when this node steps down", () => {
  const { a, b } = afterEscalation();
  runCluster([a, b], 9_500, 12_000);
  b.command({ type: "switchover", to: "alpha" }, 12_100, "w1");
  const again = replies(b.command({ type: "switchover", to: null }, 12_200, "w2"));
  assert.deepEqual(again.map((r) => [r.id, r.status]), [["w2", 409]]);
  assert.match(String(again[0]!.body.error), /already waiting for alpha/);
  b.hear(a, 12_500); // still failed
  const r = replies(b.ticks(12_600, 12_100 + HB.deadAfterMs, 100));
  assert.deepEqual(r.map((x) => [x.id, x.status]), [["w1", 409]]);
  assert.match(
    String(r[0]!.body.error),
    /alpha is not an available standby after waiting 5s \(deadAfter\): alpha is failed/,
  );
  // Stepping down while waiting ends the wait at once.
  b.command({ type: "switchover", to: "alpha" }, 20_000, "w3");
  const down = b.hear({ ...a.info(), role: "active", epoch: 9 }, 20_100);
  assert.deepEqual(replies(down).map((x) => [x.id, x.status]), [["w3", 409]]);
  assert.equal(b.state.switchoverWait, null);
});

// ---------------------------------------------------------------- failed nodes

/** alpha escalated to beta: alpha failed, beta active at epoch 2. */
function afterEscalation(opts: ManifestOptions = {}) {
  const { a, b, m } = pair(opts);
  const esc = crashTwice(a, "web", 9_000);
  const back = deliver(a, b, esc, 9_100);
  deliver(a, b, a.settle(back, 9_200), 9_300);
  assert.equal(a.state.role, "failed");
  assert.equal(b.state.role, "active");
  return { a, b, m };
}

Deno.test("failed: a failed node never becomes active, refuses prepare and commit, until clear", () => {
  const { a, b } = afterEscalation();
  // beta dies: alpha stays failed however long it waits.
  a.ticks(9_400, 120_000, 1_000);
  assert.equal(a.state.role, "failed");
  assert.equal(records(a.log, "active").length, 1, "only its first activation");
  const prep = a.feed(
    { type: "takeover_prepare", id: "p", from: "beta", epoch: 2, reason: "x" },
    121_000,
  );
  assert.deepEqual(replies(prep).map((r) => r.status), [409]);
  const commit = a.feed(
    { type: "takeover_commit", id: "c", from: "beta", epoch: 2, reason: "x" },
    121_000,
  );
  assert.deepEqual(replies(commit).map((r) => r.status), [409]);
  assert.deepEqual(spawns(commit), []);
  const clear = a.command({ type: "clear" }, 122_000, "cl");
  assert.deepEqual(replies(clear).map((r) => [r.status, r.body.role]), [[200, "standby"]]);
  const early = a.ticks(122_100, 122_000 + HB.deadAfterMs - 100, 100);
  assert.equal(a.state.role, "standby", "a cleared node first relearns the cluster for deadAfter");
  assert.deepEqual(spawns(early), []);
  const up = a.ticks(122_000 + HB.deadAfterMs, 123_000 + HB.deadAfterMs, 100);
  assert.equal(a.state.role, "active", "cleared, and no active is alive");
  assert.equal(b.state.epoch, 2);
  assert.equal(a.state.epoch, 3, "above the epoch beta took over at, though never heard from it");
  assert.deepEqual(appNames(spawns(up)), ["db", "web"]);
});

Deno.test("failed: after failedCooldown the node is standby again with its counters cleared", () => {
  const { a, b } = afterEscalation({ failedCooldownMs: 60_000 });
  const failedAt = a.state.failedAt!;
  runCluster([a, b], 9_500, failedAt + 59_500);
  assert.equal(a.state.role, "failed");
  runCluster([a, b], failedAt + 60_000, failedAt + 61_000);
  assert.equal(a.state.role, "standby");
  assert.equal(a.state.apps.web!.escalated, false, "the cooldown clears like `baton clear`");
  assert.equal(a.state.apps.web!.restarts, 0);
  assert.equal(b.state.role, "active", "beta keeps the apps");
});

Deno.test("failed: a node that comes back from cooldown does not hand its apps on at once", () => {
  const m = makeManifest({
    nodes: { alpha: 3, beta: 2, gamma: 1 },
    apps: APPS,
    failedCooldownMs: 30_000,
  });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  const c = boot("gamma", m);
  runCluster([a, b, c], 0, 8_000);
  assert.equal(a.state.role, "active");
  const esc = crashTwice(a, "web", 9_000);
  deliver(a, b, a.settle(deliver(a, b, esc, 9_100), 9_200), 9_300);
  assert.equal(b.state.role, "active");
  runCluster([a, b, c], 10_000, 45_000);
  assert.equal(a.state.role, "standby");
  // beta dies; alpha (highest priority standby) takes over and must keep the apps.
  const mark = a.log.length;
  runCluster([a, c], 45_500, 80_000);
  assert.equal(a.state.role, "active", describe([a, b, c]));
  assert.equal(ofType(a.log.slice(mark), "send_prepare").length, 0, "no stale escalation");
  assert.deepEqual(a.running(), ["db", "logs", "web"]);
});

// ---------------------------------------------------------------- maintenance, stale epochs

Deno.test("tickStandby: maintenance blocks the takeover; maintenance off lets it happen", () => {
  const { b } = pair();
  b.command({ type: "maintenance", on: true }, 8_200);
  b.ticks(8_300, 60_000, 500);
  assert.equal(b.state.role, "standby");
  assert.deepEqual(spawns(b.log).filter((s) => s.app !== "logs"), []);
  const prep = b.feed(
    { type: "takeover_prepare", id: "p", from: "alpha", epoch: 1, reason: "x" },
    60_100,
  );
  assert.deepEqual(replies(prep).map((r) => r.status), [409]);
  b.command({ type: "maintenance", on: false }, 60_200);
  b.tick(60_300);
  assert.equal(b.state.role, "active");
});

Deno.test("onCommit / onPrepare: a request from a stale epoch is refused", () => {
  const { b } = pair();
  const active4 = {
    node: "alpha",
    role: "active" as const,
    roleSeq: 1,
    hears: [],
    epoch: 4,
    priority: 2,
  };
  b.hear({ ...active4, maintenance: false, manifestHash: "x" }, 8_500);
  assert.equal(b.state.epoch, 4);
  const prep = b.feed(
    { type: "takeover_prepare", id: "p", from: "alpha", epoch: 3, reason: "old" },
    8_600,
  );
  assert.deepEqual(replies(prep).map((r) => r.status), [409]);
  assert.match(String(replies(prep)[0]!.body.error), /stale epoch 3 \(ours 4\)/);
  assert.equal(b.state.expecting, null);
  const commit = b.feed({
    type: "takeover_commit",
    id: "c",
    from: "alpha",
    epoch: 3,
    reason: "old",
  }, 8_700);
  assert.deepEqual(replies(commit).map((r) => r.status), [409]);
  assert.equal(b.state.role, "standby");
  assert.deepEqual(spawns(commit), []);
  const unknown = b.feed(
    { type: "takeover_commit", id: "u", from: "zeta", epoch: 9, reason: "?" },
    8_800,
  );
  assert.deepEqual(replies(unknown).map((r) => r.status), [409]);
  assert.equal(b.state.role, "standby");
});

// ---------------------------------------------------------------- clock gaps

Deno.test("tickCluster: a standby resumed after a 1 h gap listens before it takes over (the active is fine)", () => {
  const { a, b } = pair();
  // beta's VM was suspended for an hour; alpha kept running and ticking.
  a.ticks(8_500, 8_000 + HOUR, 10_000);
  const t = 8_000 + HOUR;
  const resumed = b.tick(t);
  assert.equal(b.state.role, "standby", "stale peer data is not a dead peer");
  assert.deepEqual(spawns(resumed), []);
  assert.ok(ofType(resumed, "heartbeat").length === 1, "it says hello at once");
  exchange(t + 50, a, b);
  runCluster([a, b], t + 500, t + 30_000);
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "standby");
  assert.deepEqual(stops(a.log), [], "the healthy active lost nothing");
});

Deno.test("tickCluster: a standby resumed after a 1 h gap takes over deadAfter later if the active is really gone", () => {
  const { b } = pair();
  const t = 8_000 + HOUR;
  b.tick(t);
  b.ticks(t + 100, t + HB.deadAfterMs - 100, 100);
  assert.equal(b.state.role, "standby");
  b.tick(t + HB.deadAfterMs);
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, 2);
});

Deno.test("tickCluster: an active with a witness resumed after a 1 h gap fences itself at once", () => {
  const { a } = pair({ witness: true });
  a.witness(8_000, "baton");
  const actions = a.tick(8_000 + HOUR);
  assert.equal(a.state.role, "standby");
  assert.deepEqual(stops(actions).map((s) => [s.app, s.mode]).sort(), [["db", "kill"], [
    "web",
    "kill",
  ]]);
});

Deno.test("tickCluster: timers fire after a 1 h gap (backoff restart, failed cooldown, expired expectations)", () => {
  const h = boot("alpha", makeManifest({ apps: APPS }));
  h.settle(h.tick(0), 0);
  crashTwice(h, "web", 1_000); // backoff until 2.5 s
  const late = h.tick(1_500 + HOUR);
  assert.deepEqual(appNames(spawns(late)), ["web"]);
  h.settle(late, 1_500 + HOUR);
  const again = h.exit("web", 2_000 + HOUR);
  assert.equal(records(again, "escalation").length, 1, "the restart is only 500 ms old");

  const { a } = afterEscalation({ failedCooldownMs: 60_000 });
  a.tick(9_500 + HOUR);
  assert.equal(a.state.role, "standby");
  const { b: standby } = pair();
  standby.feed({ type: "takeover_prepare", id: "p", from: "alpha", epoch: 1, reason: "x" }, 8_100);
  assert.ok(standby.state.expecting);
  const expired = standby.tick(8_200 + HOUR);
  assert.equal(records(expired, "expect_expired").length, 1);
  assert.equal(standby.state.expecting, null);
});

Deno.test("tickCluster: a time earlier than the last event (negative ages) changes nothing", () => {
  const { a, b } = pair({ witness: true });
  a.witness(8_000, "baton");
  b.witness(8_000, "baton", { node: "alpha", epoch: 1, ageMs: 0 });
  const back = [...a.tick(7_000), ...b.tick(7_000), ...a.tick(-HOUR), ...b.tick(-HOUR)];
  assert.deepEqual([...spawns(back), ...stops(back)], []);
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "standby");
  runCluster([a, b], 8_500, 20_000);
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "standby");
});

Deno.test("step: epochs never decrease and ages stay sane across boot, takeovers, handovers and gaps", () => {
  const { a, b } = afterEscalation({ failedCooldownMs: 30_000, witness: true });
  const epochs: number[] = [];
  for (let t = 10_000; t < 200_000; t += 1_000) {
    a.witness(t, "baton", {
      node: b.state.role === "active" ? "beta" : "alpha",
      epoch: b.state.epoch,
      ageMs: 0,
    });
    b.witness(t, "baton", { node: "beta", epoch: b.state.epoch, ageMs: 0 });
    runCluster([a, b], t, t + 500);
    epochs.push(Math.max(a.state.epoch, b.state.epoch));
  }
  runCluster([a, b], 200_000 + HOUR, 200_000 + HOUR + 30_000);
  epochs.push(Math.max(a.state.epoch, b.state.epoch));
  for (let i = 1; i < epochs.length; i++) assert.ok(epochs[i]! >= epochs[i - 1]!);
  assertOneActive([a, b]);
  assert.ok(a.state.epoch >= 2 && b.state.epoch >= 2);
});

Deno.test("onCommit: the witness's grant after a handover commit makes the target active, though the sender's last heartbeat said active", () => {
  // Soak run: beta heard alpha active (heartbeat), got the commit, claimed from the witness
  // and dropped the grant because alpha still looked active: the switchover answered
  // "beta is not active (starting)". The commit itself says alpha left the active role.
  const { a, b } = pair({ witness: true });
  b.witness(9_000, "baton", { node: "alpha", epoch: 1, ageMs: 0 });
  exchange(9_050, a, b);
  assert.equal(b.state.peers.alpha?.role, "active");
  const prep = b.feed(
    { type: "takeover_prepare", id: "p1", from: "alpha", epoch: 1, reason: "switchover" },
    9_100,
  );
  assert.deepEqual(replies(prep).map((r) => r.status), [200]);
  const commit = b.feed(
    { type: "takeover_commit", id: "c1", from: "alpha", epoch: 1, reason: "switchover" },
    9_150,
  );
  const claim = ofType(commit, "claim_witness");
  assert.equal(claim.length, 1, "the target asks the witness for the next epoch");
  assert.equal(claim[0]!.info.epoch, 2);
  const granted = b.feed({ type: "claim_result", epoch: 2, ok: true, detail: "granted" }, 9_160);
  assert.deepEqual(records(granted, "claim_dropped"), []);
  assert.equal(b.state.role, "active");
  assert.deepEqual(appNames(spawns(granted)), ["db", "web"]);
  // A heartbeat alpha sent while still active, delivered late, changes nothing.
  b.hear(a, 9_170, null);
  assert.equal(b.state.peers.alpha?.role, "standby");
});

Deno.test("onCommit: a claim the witness refuses (it has not heard the sender step down yet) keeps the commit waiting; the retried claim answers it ready", () => {
  // Soak run under stress: alpha's standby beat to the witness and beta's claim raced; the
  // witness refused ("alpha is active at epoch 1, heard 42ms ago"), beta answered the commit
  // "not active (starting)" at once and the switchover failed with 504, though beta took over
  // 200 ms later on the retried claim.
  const { a, b } = pair({ witness: true });
  b.witness(9_000, "baton", { node: "alpha", epoch: 1, ageMs: 0 });
  exchange(9_050, a, b);
  const sw = a.command({ type: "switchover", to: "beta" }, 9_100, "sw1");
  const done = a.settle(deliver(a, b, sw, 9_100), 9_110);
  assert.equal(a.state.role, "standby");
  const send = ofType(done, "send_commit")[0]!;
  const commit = b.feed(
    { type: "takeover_commit", id: "c1", from: "alpha", epoch: send.epoch, reason: send.reason },
    9_150,
  );
  assert.equal(ofType(commit, "claim_witness").length, 1);
  const refused = b.feed(
    {
      type: "claim_result",
      epoch: 2,
      ok: false,
      detail: "alpha is active at epoch 1 (heard 42ms ago)",
    },
    9_160,
  );
  assert.deepEqual(replies(refused).filter((r) => r.id === "c1"), [], "answered not ready at once");
  assert.equal(b.state.role, "standby");
  // alpha's standby beat reaches beta, and the witness says nobody is active now: the claim
  // is retried, and nothing answers the commit meanwhile.
  let retried = false;
  // A refused claim waits one interval (quietUntil) before the next.
  let at = 0;
  for (let t = 9_200; t < 11_000 && !retried; t += 50) {
    at = t + 10;
    const acts = [...b.hear(a, t, null), ...b.witness(t + 5, "baton", null), ...b.tick(t + 10)];
    assert.deepEqual(replies(acts).filter((r) => r.id === "c1"), [], `answered at ${t}`);
    retried = ofType(acts, "claim_witness").length > 0;
  }
  assert.ok(retried, "expected beta to claim again");
  const granted = b.feed({ type: "claim_result", epoch: 2, ok: true, detail: "granted" }, at + 5);
  assert.equal(b.state.role, "active");
  const settled = b.settle(granted, at + 5);
  const answer = replies([...granted, ...settled]).find((r) => r.id === "c1");
  assert.equal(answer?.status, 200);
  assert.equal((answer?.body as { ready?: boolean }).ready, true, JSON.stringify(answer?.body));
});

Deno.test("onCommit: a standby whose claims stay refused answers the commit 'not active' after two deadAfter, not never", () => {
  const { a, b, m } = pair({ witness: true });
  b.witness(9_000, "baton", { node: "alpha", epoch: 1, ageMs: 0 });
  exchange(9_050, a, b);
  b.feed(
    { type: "takeover_prepare", id: "p1", from: "alpha", epoch: 1, reason: "switchover" },
    9_100,
  );
  b.feed(
    { type: "takeover_commit", id: "c1", from: "alpha", epoch: 1, reason: "switchover" },
    9_150,
  );
  const patience = 2 * m.cluster.heartbeat.deadAfterMs;
  let answeredAt: number | null = null;
  for (let t = 9_160; t <= 9_150 + patience + 500 && answeredAt === null; t += 50) {
    const acts = [
      ...b.feed({ type: "claim_result", epoch: 2, ok: false, detail: "refused" }, t),
      ...b.tick(t),
    ];
    if (replies(acts).some((r) => r.id === "c1")) answeredAt = t;
  }
  assert.ok(answeredAt !== null, "expected an answer");
  assert.ok(answeredAt >= 9_150 + patience, `answered at ${answeredAt}, before the patience`);
  assert.equal(b.state.role, "standby");
});
