/**
 * Rejoining after a reboot or a long agent outage (resume.ts through `step`): a node that
 * boots with "active" in its state starts, restarts and stops no movable app until its lease is
 * re-established; apps lost while it was away are history if a newer active exists, a start
 * (not a failure) after a reboot, a failure after an agent restart on the same boot; an
 * escalation while not active fails the node at once.
 */
import assert from "node:assert/strict";
import {
  adopted,
  appNames,
  appSpec,
  boot,
  HB,
  makeManifest,
  ofType,
  persisted,
  records,
  spawns,
  stops,
} from "./helpers/core_fixtures.ts";
import type { NodeInfo } from "../src/core/types.ts";
import { nextDeadline } from "../src/core/deadline.ts";

const WEB = appSpec("web");
const DB = appSpec("db", { hash: "db-v1" });
const LOGS = appSpec("logs", { movable: false });
const APPS = [WEB, DB, LOGS];
const TWO = { alpha: 2, beta: 1 };

function beta(role: "active" | "standby", epoch: number, hash: string): NodeInfo {
  return {
    node: "beta",
    role,
    roleSeq: 9,
    hears: [],
    epoch,
    priority: 1,
    maintenance: false,
    manifestHash: hash,
  };
}

/** alpha was active at epoch 3 with web (restarted once already), db and logs; all died. */
function rebooted(opts: { witness?: boolean; reboot?: boolean } = {}) {
  const m = makeManifest({ nodes: TWO, apps: APPS, witness: opts.witness ?? true });
  const gone = [adopted(WEB, 501, 1), adopted(DB, 502), adopted(LOGS, 503)];
  const a = boot("alpha", m, {
    persisted: persisted("alpha", "active", 3, gone, 3),
    lost: ["web", "db", "logs"],
    reboot: opts.reboot ?? true,
  });
  return { a, m };
}

Deno.test("resume: a rebooted active starts no movable app before the witness or a peer answers", () => {
  const { a } = rebooted();
  assert.equal(a.state.role, "active");
  assert.deepEqual(appNames(spawns(a.log)), ["logs"], "only the non-movable app starts");
  assert.equal(records(a.log, "restart").length, 0, "nothing counted as a restart");
  assert.match(records(a.log, "resuming")[0]?.message ?? "", /host rebooted.*web, db/);
  assert.match(records(a.log, "boot")[0]?.message ?? "", /after the host rebooted/);
  assert.deepEqual(spawns(a.ticks(0, HB.fenceAfterMs - 100, 100)), []);
});

Deno.test("resume: the witness knows a newer active → step down; lost apps are history, nothing counted or failed", () => {
  const { a } = rebooted();
  const out = a.witness(50, "baton", { node: "beta", epoch: 4, ageMs: 10 });
  assert.equal(a.state.role, "standby");
  assert.deepEqual(spawns(out), []);
  const history = records(out, "history");
  assert.deepEqual(history.map((r) => r.app).sort(), ["db", "web"]);
  assert.match(history[0]!.message, /host rebooted.*history, not a failure/);
  assert.equal(a.state.apps.web!.restarts, 1, "the count is not raised");
  assert.equal(a.state.apps.web!.escalated, false);
  assert.equal(records(a.log, "escalation").length, 0);
  assert.deepEqual(spawns(a.ticks(100, 30_000, 500)), [], "a standby starts nothing");
  assert.notEqual(a.state.role, "failed");
});

Deno.test("resume: a peer reporting a higher epoch → step down, history; an adopted movable app is killed", () => {
  const m = makeManifest({ nodes: TWO, apps: APPS });
  const live = [adopted(WEB, 501)];
  const a = boot("alpha", m, {
    persisted: persisted("alpha", "active", 3, [...live, adopted(DB, 502)], 3),
    adopted: live,
    lost: ["db"],
    reboot: false,
  });
  assert.deepEqual(stops(a.log), [], "nothing stopped while resuming");
  const out = a.hear(beta("active", 4, m.hash), 100);
  assert.equal(a.state.role, "standby");
  assert.deepEqual(stops(out).map((s) => [s.app, s.mode]), [["web", "kill"]]);
  assert.match(records(out, "history")[0]?.message ?? "", /agent restarted \(same boot\)/);
  assert.equal(a.state.apps.db!.restarts, 0);
});

Deno.test("resume: the witness confirms the lease → a reboot's lost apps start, uncounted", () => {
  const { a } = rebooted();
  const out = a.witness(50, "baton", { node: "alpha", epoch: 3, ageMs: 5_000 });
  assert.equal(a.state.role, "active");
  assert.match(records(out, "lease_resumed")[0]?.message ?? "", /witness knows no newer active/);
  assert.deepEqual(appNames(spawns(out)), ["db", "web"]);
  assert.equal(records(out, "start_after_reboot").length, 2);
  assert.equal(a.state.apps.web!.restarts, 1, "a reboot is not the app's failure");
  assert.equal(records(out, "escalation").length, 0);
});

Deno.test("resume: same boot, lease confirmed by every peer → the lost app is a counted failure", () => {
  const { a, m } = rebooted({ witness: false, reboot: false });
  const out = a.hear(beta("standby", 3, m.hash), 50);
  assert.match(records(out, "lease_resumed")[0]?.message ?? "", /every peer answered/);
  // web had used its one restart: a second failure inside the window escalates (to beta).
  assert.equal(records(out, "escalation").length, 1);
  assert.equal(a.state.apps.db!.restarts, 1);
});

Deno.test("resume: a witness beat sent before the boot proves nothing; no answer by fenceAfter → step down", () => {
  const { a } = rebooted();
  a.witness(50, "baton", null, true, -1);
  assert.ok(a.state.resume, "an old beat does not re-establish the lease");
  assert.equal(nextDeadline(a.state, 100) <= HB.fenceAfterMs, true);
  const out = a.tick(HB.fenceAfterMs);
  assert.equal(a.state.role, "standby");
  assert.match(records(out, "step_down")[0]?.message ?? "", /isolated|could not re-establish/);
  assert.deepEqual(spawns(out), []);
  assert.equal(records(out, "history").length, 2);
});

Deno.test("resume: a plain http witness does not confirm the lease; at fenceAfter the node steps down", () => {
  const { a } = rebooted();
  for (let t = 50; t < HB.fenceAfterMs; t += 500) {
    a.witness(t, "http");
    assert.deepEqual(spawns(a.tick(t)), []);
  }
  assert.ok(a.state.resume);
  a.witness(HB.fenceAfterMs - 10, "http");
  const out = a.tick(HB.fenceAfterMs);
  assert.match(records(out, "step_down")[0]?.message ?? "", /could not re-establish the lease/);
  assert.equal(a.state.role, "standby");
});

Deno.test("resume: a single node (no peers) resumes at once, as before", () => {
  const m = makeManifest({ apps: [WEB] });
  const a = boot("alpha", m, {
    persisted: persisted("alpha", "active", 3, [adopted(WEB, 501)], 3),
    lost: ["web"],
    reboot: true,
  });
  assert.equal(a.state.resume, null);
  assert.deepEqual(appNames(spawns(a.log)), ["web"]);
  assert.equal(a.state.apps.web!.restarts, 0, "not counted after a reboot");
});

Deno.test("resume: a rebooted standby restarts nothing it lost and counts nothing", () => {
  const m = makeManifest({ nodes: TWO, apps: APPS, witness: true });
  const a = boot("alpha", m, {
    persisted: persisted("alpha", "standby", 4, [adopted(LOGS, 503, 1)], 3),
    lost: ["logs"],
    reboot: true,
  });
  assert.equal(a.state.resume, null);
  assert.equal(a.state.apps.logs!.restarts, 1);
  assert.equal(records(a.log, "escalation").length, 0);
  assert.equal(a.state.role, "standby");
  assert.equal(ofType(a.log, "spawn").length, 1, "the non-movable app is started again");
});

Deno.test("resume: a changed spec of an adopted movable app is not restarted while resuming", () => {
  const m = makeManifest({ nodes: TWO, apps: APPS, witness: true });
  const old = [adopted(WEB, 501, 0, "web-v0")];
  const a = boot("alpha", m, {
    persisted: persisted("alpha", "active", 3, old, 3),
    adopted: old,
    reboot: false,
  });
  assert.deepEqual(stops(a.log), []);
  const out = a.witness(50, "baton", null);
  assert.deepEqual(stops(out).map((s) => [s.app, s.reason]), [["web", "manifest changed"]]);
});

// ---------------------------------------------------------------- watchdog: required

function withWatchdog(mode: "automatic" | "required") {
  const m = makeManifest({ nodes: TWO, apps: APPS });
  m.cluster.watchdog = { mode, device: "/dev/fake-watchdog" };
  return m;
}

Deno.test("watchdog required: a standby without its device never takes over and refuses handovers", () => {
  const m = withWatchdog("required");
  const b = boot("beta", m, { watchdog: false });
  const out = b.ticks(0, 30_000, 500);
  assert.equal(b.state.role, "standby");
  assert.deepEqual(spawns(out).filter((s) => s.app !== "logs"), []);
  // (A node without state first waits to learn the cluster's epoch; then the watchdog holds it.)
  assert.ok(
    records(b.log, "hold").some((r) => /watchdog required/.test(r.message)),
    `no hold names the watchdog: ${JSON.stringify(records(b.log, "hold"))}`,
  );
  const prep = b.feed(
    { type: "takeover_prepare", id: "p1", from: "alpha", epoch: 1, reason: "switchover" },
    30_500,
  );
  const reply = ofType(prep, "reply")[0];
  assert.equal(reply?.status, 409);
  assert.match(String(reply?.body.error), /watchdog required/);
});

Deno.test("watchdog required: an active whose device fails steps down; automatic does not", () => {
  const m = withWatchdog("required");
  const a = boot("alpha", m, { watchdog: true });
  a.settle(a.ticks(0, 12_000, 500), 12_000);
  assert.equal(a.state.role, "active");
  const out = a.feed({ type: "watchdog", ok: false, detail: "write failed" }, 12_100);
  assert.equal(a.state.role, "standby");
  assert.deepEqual(stops(out).map((s) => s.mode), ["kill", "kill"]);

  const auto = boot("alpha", withWatchdog("automatic"), { watchdog: false });
  auto.settle(auto.ticks(0, 12_000, 500), 12_000);
  assert.equal(auto.state.role, "active", "automatic: the device is used if present");
});

Deno.test("watchdog required: a persisted active booting without its device steps down at once", () => {
  const m = withWatchdog("required");
  const live = [adopted(WEB, 501)];
  const a = boot("alpha", m, {
    persisted: persisted("alpha", "active", 3, live, 3),
    adopted: live,
    watchdog: false,
  });
  assert.equal(a.state.role, "standby");
  assert.deepEqual(stops(a.log).map((s) => [s.app, s.mode]), [["web", "kill"]]);
  assert.equal(a.state.resume, null);
});
