/**
 * Survivor fencing in the core (src/core/survivor_fence.ts through `step`): the node that won
 * the takeover from a silent active fences it before any movable app starts; `required` blocks
 * on a failed fence until it succeeds or `fence-ok`; `best-effort` goes on; only the grant's
 * winner fences; without an arbiter the lower-priority node waits `fenceDelay`. And the guard's
 * fence reaches the core as a lost lease, not as an app failure.
 */
import assert from "node:assert/strict";
import {
  appNames,
  appSpec,
  boot,
  type CoreHarness,
  describe,
  HB,
  indexOf,
  makeManifest,
  type ManifestOptions,
  ofType,
  records,
  replies,
  runCluster,
  spawns,
  stops,
} from "./helpers/core_fixtures.ts";
import { nextDeadline } from "../src/core/deadline.ts";
import { fenceWarnings } from "../src/core/survivor_fence.ts";
import { toPersisted } from "../src/core/node_state.ts";
import type { Action, FenceOutcome } from "../src/core/types.ts";

const APPS = [appSpec("web"), appSpec("db"), appSpec("logs", { movable: false })];
const FENCE = { alpha: ["fence-alpha", "{node}"], beta: ["fence-beta", "{node}"] };
const POLICY = { timeoutMs: 30_000, delayMs: 5_000, retryMs: 5_000 };

/** alpha (priority 2) active at epoch 1, beta (1) standby, both with fence commands. */
function pair(opts: ManifestOptions = {}): { a: CoreHarness; b: CoreHarness } {
  const m = makeManifest({
    nodes: { alpha: 2, beta: 1 },
    apps: APPS,
    witness: true,
    nodeFence: FENCE,
    ...opts,
  });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active", describe([a, b]));
  assert.equal(b.state.role, "standby");
  return { a, b };
}

/** beta, alpha silent since 8 s: it claims at 13 s with a baton witness and is granted. */
function betaWins(b: CoreHarness): Action[] {
  b.witness(12_900, "baton", { node: "alpha", epoch: 1, ageMs: HB.deadAfterMs });
  const claim = b.tick(13_000);
  assert.equal(ofType(claim, "claim_witness").length, 1);
  assert.deepEqual(ofType(claim, "fence_peer"), [], "no fence before the grant");
  return b.feed({ type: "claim_result", epoch: 2, ok: true, detail: "granted" }, 13_100);
}

function result(node: string, attempt: number, o: Partial<FenceOutcome> = {}) {
  return {
    type: "fence_peer_result" as const,
    node,
    attempt,
    ok: true,
    exitCode: 0,
    durationMs: 1200,
    firstLine: "Chassis Power Control: Down/Off",
    ...o,
  };
}

Deno.test("survivor fence: the grant's winner fences the silent active before any movable app starts", () => {
  const { b } = pair();
  const granted = betaWins(b);
  assert.equal(b.state.role, "active");
  const fence = ofType(granted, "fence_peer");
  assert.deepEqual(fence.map((f) => [f.node, f.attempt, f.timeoutMs]), [["alpha", 1, 30_000]]);
  assert.deepEqual(spawns(granted), [], "no movable app before the fence");
  const persisted = ofType(granted, "persist").at(-1)!.state;
  assert.deepEqual(persisted.fencing, ["alpha"], "the owed fence is durable with the role");
  const iSave = indexOf(granted, (x) => x.type === "persist" && x.state.role === "active");
  const iFence = indexOf(granted, (x) => x.type === "fence_peer");
  assert.ok(iSave >= 0 && iSave < iFence, "the takeover is saved before the fence runs");
  assert.equal(fenceWarnings(b.state, 13_100).length, 1);
  const done = b.feed(result("alpha", 1), 14_300);
  assert.deepEqual(appNames(spawns(done)), ["db", "web"]);
  assert.match(records(done, "fence")[0]!.message, /fenced alpha: exit 0 after 1\.2s/);
  const all = b.log;
  assert.ok(
    indexOf(all, (x) => x.type === "fence_peer") <
      indexOf(all, (x) => x.type === "spawn" && x.app === "web"),
  );
  assert.equal(toPersisted(b.state).fencing, undefined);
  assert.deepEqual(fenceWarnings(b.state, 14_300), []);
});

Deno.test("survivor fence: required + failed fence → no movable app, loud record, retries after fenceRetry", () => {
  const { b } = pair();
  betaWins(b);
  const failed = b.feed(
    result("alpha", 1, { ok: false, exitCode: 1, firstLine: "Unable to establish session" }),
    14_000,
  );
  assert.deepEqual(spawns(failed), []);
  const rec = records(failed, "fence")[0]!;
  assert.equal(rec.level, "error");
  assert.match(rec.message, /FENCE FAILED: alpha .*exit 1.*fence-ok alpha/);
  assert.match(fenceWarnings(b.state, 14_000)[0]!, /FENCING alpha.*attempt 1 failed: exit 1/);
  assert.equal(nextDeadline(b.state, 14_000) <= 19_000, true, "the retry is a timer");
  // The witness keeps answering (else beta would fence itself as isolated).
  for (const t of [15_000, 17_000, 18_800]) {
    b.witness(t, "baton", { node: "beta", epoch: 2, ageMs: 0 });
  }
  assert.deepEqual(ofType(b.tick(18_900), "fence_peer"), [], "not before fenceRetry");
  const retry = ofType(b.tick(19_000), "fence_peer");
  assert.deepEqual(retry.map((f) => f.attempt), [2]);
  // A late result of attempt 1 changes nothing.
  assert.deepEqual(spawns(b.feed(result("alpha", 1), 19_100)), []);
  const ok = b.feed(result("alpha", 2), 20_000);
  assert.deepEqual(appNames(spawns(ok)), ["db", "web"]);
});

Deno.test("survivor fence: best-effort + failed fence → the movable apps start anyway, with an error record", () => {
  const { b } = pair({ fencing: { mode: "best-effort", ...POLICY } });
  betaWins(b);
  const failed = b.feed(result("alpha", 1, { ok: false, exitCode: null, firstLine: "" }), 14_000);
  assert.deepEqual(appNames(spawns(failed)), ["db", "web"]);
  assert.match(records(failed, "fence")[0]!.message, /best-effort: starting the movable apps/);
});

Deno.test("survivor fence: baton fence-ok NODE unblocks a required fence; fence-ok of another node is refused", () => {
  const { b } = pair();
  betaWins(b);
  b.feed(result("alpha", 1, { ok: false, exitCode: 2 }), 14_000);
  const wrong = b.command({ type: "fence_ok", node: "gamma" }, 14_500, "r1");
  assert.equal(replies(wrong)[0]!.status, 409);
  assert.deepEqual(spawns(wrong), []);
  const ok = b.command({ type: "fence_ok", node: "alpha" }, 15_000, "r2");
  assert.equal(replies(ok)[0]!.status, 200);
  assert.equal(records(ok, "fence_confirmed").length, 1);
  assert.deepEqual(appNames(spawns(ok)), ["db", "web"]);
  // Nothing pending any more: a second fence-ok is refused, no retry runs.
  assert.equal(
    replies(b.command({ type: "fence_ok", node: "alpha" }, 15_100, "r3"))[0]!.status,
    409,
  );
  assert.deepEqual(ofType(b.ticks(15_200, 25_000, 500), "fence_peer"), []);
});

Deno.test("survivor fence: a refused claim fences nobody (two cut-off nodes never shoot each other)", () => {
  const { b } = pair();
  b.witness(12_900, "baton", { node: "alpha", epoch: 1, ageMs: HB.deadAfterMs });
  b.tick(13_000);
  const refused = b.feed(
    { type: "claim_result", epoch: 2, ok: false, detail: "alpha holds" },
    13_100,
  );
  assert.deepEqual(ofType(refused, "fence_peer"), []);
  assert.deepEqual(ofType(b.ticks(13_200, 13_900), "fence_peer"), []);
  assert.equal(b.state.fencing.jobs.length, 0);
});

Deno.test("survivor fence: a planned switchover fences nobody", () => {
  const { a, b } = pair();
  let out = a.command({ type: "switchover", to: "beta" }, 8_100);
  for (let i = 0; i < 5; i++) {
    const next: Action[] = [];
    for (const act of out) {
      if (act.type === "send_prepare" || act.type === "send_commit") {
        const got = b.feed({
          type: act.type === "send_prepare" ? "takeover_prepare" : "takeover_commit",
          id: `${act.type}`,
          from: "alpha",
          epoch: act.epoch,
          reason: act.reason,
        }, 8_200);
        // A commit is answered once the movable apps are ready here (dependsOn/readyTimeout).
        const settled = b.settle(got, 8_200);
        const reply = replies([...got, ...settled])[0]!;
        next.push(...a.feed({
          type: act.type === "send_prepare" ? "prepare_result" : "commit_result",
          to: "beta",
          ok: reply.status === 200,
          detail: "ok",
        }, 8_200));
      }
    }
    next.push(...a.settle(out, 8_200));
    out = next;
  }
  assert.equal(b.state.role, "active", describe([a, b]));
  assert.deepEqual(ofType(b.log, "fence_peer"), []);
  assert.deepEqual(b.running(), ["db", "logs", "web"]);
});

Deno.test("survivor fence: no arbiter, the lower-priority survivor waits fenceDelay; the higher one does not", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS, nodeFence: FENCE });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  // beta stops hearing alpha (a partition without a witness): beta takes over at once...
  const tookOver = b.ticks(8_100, 13_000);
  assert.equal(b.state.role, "active", describe([a, b]));
  assert.equal(records(tookOver, "fence_wait").length, 1);
  assert.deepEqual(ofType(tookOver, "fence_peer"), [], "beta yields to alpha: it waits");
  const since = b.state.fencing.jobs[0]!.since;
  assert.equal(nextDeadline(b.state, since) <= since + 5_000, true);
  assert.deepEqual(ofType(b.tick(since + 4_999), "fence_peer"), []);
  assert.equal(ofType(b.tick(since + 5_000), "fence_peer").length, 1);
  // alpha, the higher priority, fences beta at once when it is the one left alone.
  const m2 = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS, nodeFence: FENCE });
  const a2 = boot("alpha", m2);
  const b2 = boot("beta", m2);
  runCluster([a2, b2], 0, 8_000);
  // Make beta the active, then let it go silent towards alpha.
  b2.state.role = "active";
  a2.state.role = "standby";
  a2.hear(b2, 8_100);
  const alphaTakes = a2.ticks(8_200, 14_000);
  assert.equal(a2.state.role, "active", describe([a2, b2]));
  assert.equal(records(alphaTakes, "fence_wait").length, 0);
  assert.deepEqual(ofType(alphaTakes, "fence_peer").map((f) => f.node), ["beta"]);
  assert.deepEqual(spawns(alphaTakes).filter((s) => s.app === "web"), []);
});

Deno.test("survivor fence: fencing off, or no fence command under best-effort, starts the apps at once", () => {
  const { b } = pair({ fencing: { mode: "off", ...POLICY } });
  const granted = betaWins(b);
  assert.deepEqual(ofType(granted, "fence_peer"), []);
  assert.deepEqual(appNames(spawns(granted)), ["db", "web"]);
  const { b: b2 } = pair({ nodeFence: {}, fencing: { mode: "best-effort", ...POLICY } });
  assert.deepEqual(appNames(spawns(betaWins(b2))), ["db", "web"]);
});

Deno.test("survivor fence: an agent restart with the fence owed fences again before any app starts", () => {
  const { b } = pair();
  betaWins(b);
  const persisted = toPersisted(b.state);
  assert.deepEqual(persisted.fencing, ["alpha"]);
  const m = b.state.manifest;
  const again = boot("beta", m, { persisted, now: 20_000, settle: false });
  const bootActions = again.log;
  assert.equal(again.state.role, "active");
  assert.deepEqual(ofType(bootActions, "fence_peer").map((f) => f.node), ["alpha"]);
  assert.deepEqual(spawns(bootActions).filter((s) => s.app === "web"), []);
});

Deno.test("survivor fence: stepping down drops the owed fence", () => {
  const { b } = pair();
  betaWins(b);
  const down = b.feed({ type: "lease_lost", detail: "test" }, 13_500);
  assert.equal(b.state.role, "standby");
  assert.equal(records(down, "fence").some((r) => /no longer owed/.test(r.message)), true);
  assert.equal(b.state.fencing.jobs.length, 0);
  assert.deepEqual(spawns(b.feed(result("alpha", 1), 14_000)), []);
});

Deno.test("lease_lost: the guard's fence makes the active step down; the apps' exits are no app failure", () => {
  const { a } = pair({ nodeFence: {} });
  const lost = a.feed({ type: "lease_lost", detail: "the guard's lease expired" }, 8_200);
  assert.equal(a.state.role, "standby");
  assert.equal(records(lost, "lease_lost").length, 1);
  assert.equal(records(lost, "step_down").length, 1);
  assert.deepEqual(appNames(stops(lost)), ["db", "web"]);
  const exits = [
    ...a.feed(
      { type: "app_exited", app: "web", pid: a.pid("web"), detail: "killed by SIGKILL" },
      8_210,
    ),
    ...a.feed(
      { type: "app_exited", app: "db", pid: a.pid("db"), detail: "killed by SIGKILL" },
      8_210,
    ),
  ];
  assert.deepEqual(records(exits, "restart"), []);
  assert.deepEqual(spawns(exits), []);
  assert.equal(a.state.apps["web"]!.restarts, 0);
  assert.equal(a.state.apps["web"]!.lastFailure, null);
  assert.equal(a.state.apps["logs"]!.pid !== null, true, "non-movable apps untouched");
});
