/**
 * Start order and readiness in the core (`dependsOn`, `readyTimeout`): the pure order, starts
 * gated on readiness, stops in reverse order, dependents restarted after their dependency, a
 * handover committed only once every movable app is ready on the target, and the app that
 * was not ready named to the operator.
 */
import assert from "node:assert/strict";
import {
  appSpec,
  boot,
  type CoreHarness,
  httpCheck,
  makeManifest,
  ofType,
  records,
  replies,
  runCluster,
  spawns,
  stops,
} from "./helpers/core_fixtures.ts";
import { startOrder } from "../src/core/start_order.ts";
import { readyWaitBoundMs } from "../src/core/ready_wait.ts";
import { nextDeadline } from "../src/core/deadline.ts";
import type { Action } from "../src/core/types.ts";
import type { AppSpec } from "../src/manifest/types.ts";

/** c depends on b depends on a, listed in the "wrong" order on purpose. */
function chain(opts: { check?: boolean; readyTimeoutMs?: number } = {}): AppSpec[] {
  const check = opts.check ? { check: httpCheck(3) } : {};
  const rt = opts.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: opts.readyTimeoutMs };
  return [
    appSpec("c", { dependsOn: ["b"], ...rt }),
    appSpec("b", { dependsOn: ["a"], ...check, ...rt }),
    appSpec("a", { ...check, ...rt }),
  ];
}

const names = (actions: { app: string }[]) => actions.map((a) => a.app);

/** A single active node running the chain (process checks), every app started. */
function single(apps: AppSpec[] = chain()): CoreHarness {
  const h = boot("alpha", makeManifest({ apps }));
  h.settle(h.tick(0), 0);
  assert.equal(h.state.role, "active");
  return h;
}

/** Carry prepare/commit requests of `from` to `to` (a perfect driver there); the replies back. */
function deliver(from: CoreHarness, to: CoreHarness, actions: Action[], now: number): Action[] {
  const back: Action[] = [];
  for (const act of actions) {
    if (act.type !== "send_prepare" && act.type !== "send_commit") continue;
    const id = `${act.type}-${now}`;
    const got = to.feed({
      type: act.type === "send_prepare" ? "takeover_prepare" : "takeover_commit",
      id,
      from: from.state.self,
      epoch: act.epoch,
      reason: act.reason,
    }, now);
    const reply = replies([...got, ...to.settle(got, now)]).find((r) => r.id === id);
    if (!reply) continue;
    back.push(
      ...from.feed(
        act.type === "send_prepare"
          ? { type: "prepare_result", to: to.state.self, ok: reply.status === 200, detail: "ok" }
          : {
            type: "commit_result",
            to: to.state.self,
            ok: reply.body.ok === true,
            detail: "active",
            ...(typeof reply.body.notReady === "string" ? { notReady: reply.body.notReady } : {}),
          },
        now,
      ),
    );
  }
  return back;
}

function pair(apps: AppSpec[]): { a: CoreHarness; b: CoreHarness } {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active");
  // Interface checks pass on alpha, one app after the other.
  for (let t = 8_100; a.running().length < 3 && t < 9_000; t += 100) {
    for (const name of a.running()) {
      if (a.state.manifest.apps[name]?.check.type !== "process") {
        a.settle(a.check(name, true, t), t);
      }
    }
  }
  assert.deepEqual(a.running(), ["a", "b", "c"]);
  return { a, b };
}

// ---------------------------------------------------------------- the pure order

Deno.test("startOrder: every app after the apps it depends on; ties in manifest order", () => {
  const m = makeManifest({ apps: [...chain(), appSpec("z"), appSpec("y", { dependsOn: ["a"] })] });
  assert.deepEqual(startOrder(m.apps), ["a", "b", "c", "z", "y"]);
  const plain = makeManifest({ apps: [appSpec("web"), appSpec("db")] });
  assert.deepEqual(startOrder(plain.apps), ["web", "db"], "no dependsOn: manifest order");
});

Deno.test("startOrder: deterministic, unknown names ignored, a cycle comes last", () => {
  const apps = makeManifest({
    apps: [
      appSpec("x", { dependsOn: ["w"] }),
      appSpec("w", { dependsOn: ["x"] }),
      appSpec("v", { dependsOn: ["ghost"] }),
    ],
  }).apps;
  assert.deepEqual(startOrder(apps), ["v", "x", "w"]);
  assert.deepEqual(startOrder(apps), startOrder(structuredClone(apps)));
});

// ---------------------------------------------------------------- starts gated on readiness

Deno.test("reconcile: a process-check chain starts one app per step, each once the one before runs", () => {
  const h = boot("alpha", makeManifest({ apps: chain() }), { settle: false });
  const first = h.tick(0);
  assert.deepEqual(names(spawns(first)), ["a"], "b and c wait for their dependencies");
  const afterA = h.started("a", 10);
  assert.deepEqual(names(spawns(afterA)), ["b"]);
  const afterB = h.started("b", 20);
  assert.deepEqual(names(spawns(afterB)), ["c"]);
  assert.deepEqual(spawns(h.started("c", 30)), []);
});

Deno.test("reconcile: with an interface check, a dependency is ready only once its check passed", () => {
  const h = boot("alpha", makeManifest({ apps: chain({ check: true }) }), { settle: false });
  h.tick(0);
  assert.deepEqual(spawns(h.started("a", 10)), [], "a runs but has not passed its check");
  assert.deepEqual(spawns(h.check("a", false, 1_000)), [], "a failed check is not ready");
  const ok = h.check("a", true, 2_000);
  assert.deepEqual(names(spawns(ok)), ["b"]);
  assert.equal(records(ok, "ready").length, 1);
  h.started("b", 2_010);
  assert.deepEqual(spawns(h.check("a", true, 3_000)), [], "a second pass starts nothing");
  assert.deepEqual(names(spawns(h.check("b", true, 3_010))), ["c"]);
});

// ---------------------------------------------------------------- dependents follow

Deno.test("dependsOn: a crashed dependency restarts first; its dependents stop in reverse order, then start after it", () => {
  const h = single();
  const crash = h.exit("a", 1_000);
  assert.deepEqual(names(spawns(crash)), ["a"], "a restarts at once");
  assert.deepEqual(names(stops(crash)), ["c"], "c stops first; b waits for it");
  assert.deepEqual(spawns(h.started("a", 1_010)), [], "b has not stopped yet");
  const cDown = h.exit("c", 1_020, "killed by SIGTERM");
  assert.deepEqual(names(stops(cDown)), ["b"]);
  assert.deepEqual(spawns(cDown), []);
  const bDown = h.exit("b", 1_030, "killed by SIGTERM");
  assert.deepEqual(names(spawns(bDown)), ["b"], "a is ready again: b starts");
  assert.deepEqual(names(spawns(h.started("b", 1_040))), ["c"]);
  h.started("c", 1_050);
  assert.deepEqual(h.running(), ["a", "b", "c"]);
  assert.equal(
    h.state.apps["b"]!.restarts,
    0,
    "a dependent restarted for its dependency is no failure",
  );
  assert.equal(h.state.apps["c"]!.restarts, 0);
  assert.equal(h.state.apps["a"]!.restarts, 1);
});

Deno.test("dependsOn: a changed spec of the dependency stops the dependents first, restarts it, then them", () => {
  const h = single();
  const apps = chain();
  const a2 = { ...apps[2]!, hash: "a-v2" };
  const reload = h.feed({
    type: "manifest",
    manifest: makeManifest({ apps: [apps[0]!, apps[1]!, a2] }),
  }, 1_000);
  assert.deepEqual(names(stops(reload)), ["c"], "reverse order: c before b before a");
  assert.deepEqual(names(stops(h.exit("c", 1_100, "killed"))), ["b"]);
  assert.deepEqual(names(stops(h.exit("b", 1_200, "killed"))), ["a"]);
  const aDown = h.exit("a", 1_300, "killed");
  assert.deepEqual(names(spawns(aDown)), ["a"]);
  assert.deepEqual(names(spawns(h.started("a", 1_400))), ["b"]);
  assert.deepEqual(names(spawns(h.started("b", 1_500))), ["c"]);
});

Deno.test("dependsOn: maintenance restarts nothing, not even dependents", () => {
  const h = single();
  h.command({ type: "maintenance", on: true }, 500);
  const crash = h.exit("a", 1_000);
  assert.deepEqual(spawns(crash), []);
  assert.deepEqual(stops(crash), [], "b and c are left alone in maintenance");
});

// ---------------------------------------------------------------- handover order

Deno.test("switchover: the old active stops in reverse order; the target starts in order and answers once all are ready", () => {
  const { a, b } = pair(chain());
  const asked = a.command({ type: "switchover", to: "beta" }, 9_000);
  const prepared = deliver(a, b, asked, 9_000);
  assert.deepEqual(names(stops(prepared)), ["c"], "c first");
  assert.deepEqual(names(stops(a.exit("c", 9_100, "killed"))), ["b"]);
  assert.deepEqual(names(stops(a.exit("b", 9_200, "killed"))), ["a"]);
  const last = a.exit("a", 9_300, "killed");
  assert.equal(ofType(last, "send_commit").length, 1, "commit after the last stop");

  // beta, a driver that completes every spawn: a, then b, then c.
  const commit = b.feed({
    type: "takeover_commit",
    id: "c1",
    from: "alpha",
    epoch: 1,
    reason: "switchover",
  }, 9_400);
  assert.equal(b.state.role, "active");
  assert.deepEqual(names(spawns(commit)), ["a"]);
  assert.deepEqual(replies(commit), [], "not answered before the apps are ready");
  const sA = b.started("a", 9_410);
  assert.deepEqual(names(spawns(sA)), ["b"]);
  const sB = b.started("b", 9_420);
  assert.deepEqual(names(spawns(sB)), ["c"]);
  assert.deepEqual(replies([...sA, ...sB]), []);
  const sC = b.started("c", 9_430);
  const answer = replies(sC);
  assert.deepEqual(answer.map((r) => [r.id, r.status, r.body.ready]), [["c1", 200, true]]);

  const done = a.feed({ type: "commit_result", to: "beta", ok: true, detail: "ok" }, 9_500);
  const op = replies(done);
  assert.deepEqual(op.map((r) => [r.id, r.status, r.body.ok]), [["req", 200, true]]);
});

Deno.test("switchover: an app not ready within its readyTimeout is named, and the operator gets no success", () => {
  const { a, b } = pair(chain({ check: true, readyTimeoutMs: 5_000 }));
  const asked = a.command({ type: "switchover", to: "beta" }, 9_000);
  a.settle(deliver(a, b, asked, 9_000), 9_100);
  assert.equal(a.state.handover?.phase, "committing", "alpha stopped its apps");
  const commit = ofType(a.log, "send_commit");
  assert.equal(commit.length, 1);
  const got = b.feed({
    type: "takeover_commit",
    id: "c1",
    from: "alpha",
    epoch: commit[0]!.epoch,
    reason: "switchover",
  }, 10_000);
  b.settle(got, 10_000);
  assert.deepEqual(b.running(), ["a"], "a never passes its check: b and c never start");
  const due = nextDeadline(b.state, 10_000);
  assert.ok(due <= 15_000, `a tick is due when a's readyTimeout ends (due ${due})`);
  assert.deepEqual(replies(b.ticks(10_100, 14_900)), [], "still waiting inside readyTimeout");
  const late = b.tick(15_000);
  const answer = replies(late);
  assert.equal(answer.length, 1);
  assert.equal(answer[0]!.body.ready, false);
  assert.match(
    String(answer[0]!.body.notReady),
    /app a was not ready within its readyTimeout \(5s\)/,
  );
  assert.equal(records(late, "not_ready")[0]?.app, "a");

  const result = a.feed({
    type: "commit_result",
    to: "beta",
    ok: true,
    detail: "active",
    notReady: String(answer[0]!.body.notReady),
  }, 15_100);
  const op = replies(result);
  assert.equal(op.length, 1);
  assert.equal(op[0]!.status, 504);
  assert.equal(op[0]!.body.ok, false);
  assert.match(String(op[0]!.body.error), /switchover to beta not complete: app a was not ready/);
  assert.equal(a.state.handover, null);
});

Deno.test("switchover: the readyTimeout of a dependent counts from when its dependency became ready", () => {
  const { a, b } = pair(chain({ check: true, readyTimeoutMs: 5_000 }));
  const asked = a.command({ type: "switchover", to: "beta" }, 9_000);
  a.settle(deliver(a, b, asked, 9_000), 9_100);
  assert.equal(a.state.handover?.phase, "committing");
  b.settle(
    b.feed({ type: "takeover_commit", id: "c1", from: "alpha", epoch: 1, reason: "x" }, 10_000),
    10_000,
  );
  b.settle(b.check("a", true, 14_000), 14_000); // a ready at 14 s, inside its timeout: b starts
  assert.deepEqual(b.running(), ["a", "b"]);
  assert.deepEqual(replies(b.ticks(14_100, 18_900)), [], "b has until 19 s");
  const late = replies(b.tick(19_000));
  assert.match(String(late[0]?.body.notReady), /app b was not ready/);
});

Deno.test("readyWaitBoundMs: every movable app's readyTimeout plus two deadAfter", () => {
  const m = makeManifest({
    apps: [...chain({ readyTimeoutMs: 1_000 }), appSpec("logs", { movable: false })],
  });
  assert.equal(readyWaitBoundMs(m), 3 * 1_000 + 2 * m.cluster.heartbeat.deadAfterMs);
});

// ---------------------------------------------------------------- determinism

Deno.test("dependsOn: the same events give the same actions (deterministic order)", () => {
  const run = () => {
    const h = single();
    h.settle(h.exit("a", 1_000), 1_000);
    h.settle(h.exit("b", 2_000), 2_000);
    return JSON.stringify(h.log);
  };
  assert.equal(run(), run());
});

// ---------------------------------------------------------------- the sender's side

/** alpha switched over to beta and stopped its apps; the commit is on its way. */
function committing(): { a: CoreHarness; b: CoreHarness } {
  const { a, b } = pair(chain());
  const asked = a.command({ type: "switchover", to: "beta" }, 9_000);
  a.settle(deliver(a, b, asked, 9_000), 9_100);
  assert.equal(a.state.handover?.phase, "committing");
  assert.equal(a.state.role, "standby");
  return { a, b };
}

Deno.test("switchover: a commit the target did not confirm is no success (readiness unknown)", () => {
  const { a } = committing();
  const r = a.feed({ type: "commit_result", to: "beta", ok: false, detail: "timed out" }, 9_500);
  const op = replies(r);
  assert.deepEqual(op.map((x) => [x.id, x.status, x.body.ok]), [["req", 504, false]]);
  assert.match(String(op[0]!.body.error), /beta did not confirm the takeover \(timed out\)/);
  assert.equal(a.state.handover, null);
});

Deno.test("switchover: a sender that takes the apps back while the commit waits ends the handover and tells the operator", () => {
  const { a } = committing();
  // beta goes silent for good; alpha, the best standby left, takes over again.
  let out: Action[] = [];
  for (let t = 9_500; a.state.role !== "active" && t < 30_000; t += 500) {
    const acts = a.tick(t);
    out = [...out, ...acts, ...a.settle(acts, t)];
  }
  assert.equal(a.state.role, "active");
  assert.equal(a.state.handover, null, "the handover is over");
  const op = replies(out);
  assert.deepEqual(op.map((x) => [x.id, x.status]), [["req", 409]]);
  assert.match(String(op[0]!.body.error), /took the apps back before beta answered/);
  assert.deepEqual(a.running(), ["a", "b", "c"], "and its apps start again, in order");
  assert.deepEqual(names(spawns(out)), ["a", "b", "c"]);
});

Deno.test("onPrepare: a heartbeat of the sender's older epoch delivered after its prepare is not a handover (no duplicate)", () => {
  const { a, b } = pair(chain());
  // beta last heard alpha as standby at epoch 1 (alpha then became active at epoch 2, unheard).
  const old = { ...a.info(), role: "standby" as const, roleSeq: a.state.roleSeq + 1 };
  b.hear(old, 8_100, null);
  const prep = b.feed({
    type: "takeover_prepare",
    id: "p1",
    from: "alpha",
    epoch: 2,
    reason: "escalation",
  }, 8_200);
  assert.deepEqual(replies(prep).map((r) => r.status), [200]);
  // The stale heartbeat arrives late, after the prepare.
  b.hear(old, 8_300, null);
  const after = b.ticks(8_300, 9_000);
  assert.equal(b.state.role, "standby", "alpha still runs its apps: beta must not take them");
  assert.deepEqual(spawns(after), []);
});
