/**
 * Issue 11, finding 7: a node whose state directory was wiped rejoins. Each boot has an
 * incarnation id, so peers take the restarted node's messages (role counter and epoch back at
 * 0) as news, not as stale; and a node without state takes no epoch before a peer or the
 * witness has told it the cluster's epoch.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  appSpec,
  boot,
  type CoreHarness,
  makeManifest,
  ofType,
  records,
  runCluster,
} from "./helpers/core_fixtures.ts";
import type { Manifest } from "../src/manifest/types.ts";

const WEB = appSpec("web");

function bootWith(node: string, m: Manifest, incarnation: string, now = 0): CoreHarness {
  const h = boot(node, m, { now, settle: false });
  h.state.incarnation = incarnation; // as the boot event of the agent sets it
  return h;
}

Deno.test("onPeerInfo: a peer that restarted with a wiped state (roleSeq 0, epoch 0) is heard as standby", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [WEB] });
  const a = bootWith("alpha", m, "a-1");
  const b = bootWith("beta", m, "b-1");
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active");
  assert.ok(a.state.roleSeq > 0);
  // alpha's agent dies and its state directory is wiped: it boots with nothing.
  const a2 = bootWith("alpha", m, "a-2", 9_000);
  assert.equal(a2.state.epoch, 0);
  assert.equal(a2.state.roleSeq, 0);
  b.hear(a2, 9_000);
  assert.equal(b.state.peers["alpha"]?.role, "standby", "the new incarnation is news, not stale");
  assert.equal(records(b.log, "peer_restarted").length, 1);
  // A late message of the old incarnation does not bring the old role back.
  b.hear({ ...a.info() }, 9_100);
  assert.equal(b.state.peers["alpha"]?.role, "standby");
  // The cluster then has exactly one active again within 2 × deadAfter.
  runCluster([a2, b], 9_200, 9_000 + 2 * m.cluster.heartbeat.deadAfterMs);
  const actives = [a2, b].filter((n) => n.state.role === "active");
  assert.equal(actives.length, 1);
  assert.ok(actives[0]!.state.epoch > 1, "the new active takes an epoch above every used one");
});

Deno.test("tickStandby: a node without state and a baton witness takes no epoch before it learned one", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [WEB], witness: "baton" });
  const a = bootWith("alpha", m, "a-1");
  // The witness answers (an old one, that does not say its highest epoch).
  const run = (from: number, to: number) => {
    const acts = [];
    for (let t = from; t <= to; t += 100) {
      a.witness(t, "baton", null);
      acts.push(...a.tick(t));
    }
    return acts;
  };
  const acts = run(0, 60_000);
  assert.equal(a.state.role, "standby");
  assert.equal(ofType(acts, "claim_witness").length, 0, "no claim at an epoch it may have used");
  assert.match(records(acts, "hold")[0]?.message ?? "", /cluster's epoch is unknown/);
  // Once a peer has told it the cluster's epoch, it claims above it.
  const b = bootWith("beta", m, "b-1", 60_000);
  b.state.epoch = 7;
  a.hear(b, 60_100);
  const later = run(60_200, 60_200 + 3 * m.cluster.heartbeat.deadAfterMs);
  const claim = ofType(later, "claim_witness")[0];
  assert.ok(claim, "alpha claims once it knows the floor");
  assert.ok(claim.info.epoch > 7, `epoch ${claim.info.epoch} must be above the 7 it learned`);
});

Deno.test("tickStandby: without a baton witness a lone node without state waits 2 × deadAfter, then goes on loudly", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [WEB] });
  const a = bootWith("alpha", m, "a-1");
  const dead = m.cluster.heartbeat.deadAfterMs;
  a.ticks(0, 2 * dead - 100, 100);
  assert.equal(a.state.role, "standby");
  const acts = a.ticks(2 * dead, 3 * dead, 100);
  assert.equal(a.state.role, "active");
  assert.equal(records(acts, "epoch_unknown").length, 1);
});

Deno.test("tickStandby: a baton witness's highest epoch is an epoch floor for a node without state", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [WEB], witness: "baton" });
  const a = bootWith("alpha", m, "a-1");
  a.ticks(0, 6_000, 100);
  a.feed({
    type: "witness",
    ok: true,
    kind: "baton",
    active: null,
    error: null,
    sentAt: 6_050,
    maxEpoch: 12,
  }, 6_100);
  const acts = a.ticks(6_200, 20_000, 100);
  const claim = ofType(acts, "claim_witness")[0];
  assert.ok(claim, "alpha claims once it knows the floor");
  assert.ok(claim.info.epoch > 12, `claimed epoch ${claim.info.epoch} must be above 12`);
});
