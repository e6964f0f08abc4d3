/**
 * An active that stalls (SIGSTOP, suspended VM) past deadAfter in the middle of a handover's
 * prepare phase: on resume, replies to requests it sent before the stall are processed late.
 * They must not read as fresh news of the peers, and no missing movable app may start until
 * the peers are heard afresh (the peer may have taken the apps over meanwhile). A duplicate
 * the seeded simulation found (sim_test "slow and failing state writes", seed 9, with
 * `web dependsOn db`).
 */
import assert from "node:assert/strict";
import {
  appSpec,
  boot,
  makeManifest,
  ofType,
  runCluster,
  spawns,
} from "./helpers/core_fixtures.ts";

function stalledDuringPrepare() {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [appSpec("web")] });
  const alpha = boot("alpha", m);
  const beta = boot("beta", m);
  runCluster([alpha, beta], 0, 6_000);
  assert.equal(alpha.state.role, "active");
  assert.deepEqual(alpha.running(), ["web"]);
  // web fails, is restarted once, fails again: escalation, a handover to beta in prepare.
  alpha.settle(alpha.exit("web", 6_100), 6_100);
  const escalated = alpha.exit("web", 6_200);
  assert.equal(ofType(escalated, "send_prepare").length, 1);
  assert.equal(alpha.state.handover?.phase, "preparing");
  assert.equal(alpha.state.apps.web?.phase, "backoff");
  // What beta answered to alpha's heartbeat of 6 200, just before alpha stalled.
  const staleReply = beta.info();
  return { alpha, beta, staleReply };
}

Deno.test("a reply processed late after a stall is dated by its send time: no movable app starts on it", () => {
  const { alpha, staleReply } = stalledDuringPrepare();
  // alpha stalls for 10s (2 × deadAfter); beta has meanwhile taken over. The first step after
  // the stall is the old reply (sent 6 200), before any tick.
  const late = alpha.hear(staleReply, 16_200, 6_200);
  assert.deepEqual(spawns(late), [], "web spawned on a reply 10s old");
  assert.equal(alpha.state.peers.beta?.lastHeardAt, 6_200);
  const tick = alpha.tick(16_250);
  assert.deepEqual(spawns(tick), [], "web spawned before beta was heard afresh");
  // beta, heard afresh, is active at a higher epoch: alpha gives up and never spawns web.
  const fresh = alpha.hear({ ...staleReply, role: "active", epoch: alpha.state.epoch + 1 }, 16_300);
  assert.deepEqual(spawns(fresh), []);
  assert.notEqual(alpha.state.role, "active");
});

Deno.test("after a stall noticed at a tick, a backed-off movable app waits for every peer heard afresh", () => {
  const { alpha, beta } = stalledDuringPrepare();
  assert.deepEqual(spawns(alpha.tick(16_200)), []);
  assert.ok(alpha.log.some((a) => a.type === "record" && a.kind === "clock_gap"));
  assert.deepEqual(spawns(alpha.tick(16_300)), []);
  // beta answers a heartbeat sent after the stall, still standby: web comes back here.
  assert.deepEqual(spawns(alpha.hear(beta, 16_400)).map((a) => a.app), ["web"]);
});
