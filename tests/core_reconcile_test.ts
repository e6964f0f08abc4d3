/**
 * Reconciliation (reconcile.ts through `step`): what runs where by role, reloads, and the
 * agent restart (boot with adopted and lost processes).
 */
import assert from "node:assert/strict";
import {
  adopted,
  appNames,
  appSpec,
  boot,
  exchange,
  makeManifest,
  persisted,
  records,
  spawns,
  stops,
} from "./helpers/core_fixtures.ts";

const WEB = appSpec("web");
const DB = appSpec("db");
const LOGS = appSpec("logs", { movable: false });
const ALPHA_ONLY = appSpec("probe", { movable: false, nodes: ["alpha"] });
const APPS = [WEB, DB, LOGS];
const TWO = { alpha: 2, beta: 1 };

Deno.test("reconcile: a single node starts non-movable apps at boot and movable ones once active", () => {
  const h = boot("alpha", makeManifest({ apps: APPS }), { settle: false });
  assert.deepEqual(appNames(spawns(h.log)), ["logs"]);
  const tick = h.tick(0);
  assert.equal(h.state.role, "active");
  assert.deepEqual(appNames(spawns(tick)), ["db", "web"]);
  for (const s of spawns(tick)) assert.equal(s.epoch, 1);
});

Deno.test("reconcile: a standby runs only its non-movable apps, and `nodes` limits where an app runs", () => {
  const m = makeManifest({ nodes: TWO, apps: [...APPS, ALPHA_ONLY] });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  for (let t = 0; t <= 8_000; t += 500) {
    a.settle(a.tick(t), t);
    b.settle(b.tick(t), t);
    exchange(t, a, b);
  }
  assert.equal(a.state.role, "active");
  assert.equal(b.state.role, "standby");
  assert.deepEqual(a.running(), ["db", "logs", "probe", "web"]);
  assert.deepEqual(b.running(), ["logs"]);
  assert.deepEqual(spawns(b.log).map((s) => s.app), ["logs"], "beta never tried the others");
});

Deno.test("onManifest: reload starts added apps, stops removed ones, restarts changed ones and leaves the rest alone", () => {
  const h = boot("alpha", makeManifest({ apps: APPS }));
  h.settle(h.tick(0), 0);
  const webPid = h.pid("web");
  const dbPid = h.pid("db");
  const logsPid = h.pid("logs");
  const next = makeManifest({ apps: [WEB, appSpec("db", { hash: "db-v2" }), appSpec("cache")] });
  const actions = h.feed({ type: "manifest", manifest: next }, 1_000);
  assert.deepEqual(appNames(spawns(actions)), ["cache"]);
  assert.deepEqual(
    stops(actions).map((s) => [s.app, s.pid, s.mode, s.reason]).sort(),
    [
      ["db", dbPid, "graceful", "manifest changed"],
      ["logs", logsPid, "graceful", "removed from the manifest"],
    ],
  );
  assert.match(
    records(actions, "reload")[0]?.message ?? "",
    /1 added, 1 removed, 1 changed \(\+cache -logs ~db\)/,
  );
  h.settle(spawns(actions), 1_000);
  assert.deepEqual(spawns(h.exit("logs", 1_100, "killed by SIGTERM")), []);
  assert.equal(h.state.apps.logs, undefined, "a removed app is forgotten once stopped");
  const restarted = h.exit("db", 1_200, "killed by SIGTERM");
  assert.deepEqual(appNames(spawns(restarted)), ["db"]);
  h.settle(restarted, 1_200);
  assert.equal(h.state.apps.db!.specHash, "db-v2");
  assert.equal(h.state.apps.db!.restarts, 0, "a reload restart is not a failure");
  const later = h.ticks(1_300, 10_000, 500);
  assert.deepEqual([...spawns(later), ...stops(later)], []);
  assert.equal(h.pid("web"), webPid, "untouched app keeps its process");
  assert.deepEqual(
    [...spawns(h.log), ...stops(h.log)].filter((a) => a.app === "web").length,
    1,
    "web was spawned once, at boot, and never stopped",
  );
});

Deno.test("onManifest: an app removed while it was starting is stopped once it has started", () => {
  const h = boot("alpha", makeManifest({ apps: APPS }));
  const tick = h.tick(0);
  assert.deepEqual(appNames(spawns(tick)), ["db", "web"]);
  h.started("db", 0);
  const removed = h.feed({ type: "manifest", manifest: makeManifest({ apps: [DB, LOGS] }) }, 10);
  assert.deepEqual(stops(removed), []);
  const started = h.started("web", 20);
  assert.deepEqual(stops(started).map((s) => s.app), ["web"]);
  assert.deepEqual(spawns(h.settle(started, 30)), []);
  assert.equal(h.state.apps.web, undefined);
});

Deno.test("onManifest: an app made movable stops on a standby; an app assigned away stops", () => {
  const m = makeManifest({ nodes: TWO, apps: [LOGS, appSpec("probe", { movable: false })] });
  const b = boot("beta", m);
  assert.deepEqual(b.running(), ["logs", "probe"]);
  const next = makeManifest({
    nodes: TWO,
    apps: [
      appSpec("logs", { hash: "logs-v2" }),
      appSpec("probe", { movable: false, nodes: ["alpha"], hash: "p2" }),
    ],
  });
  const actions = b.feed({ type: "manifest", manifest: next }, 100);
  assert.deepEqual(appNames(stops(actions)), ["logs", "probe"]);
  assert.deepEqual(spawns(b.settle(actions, 100)), []);
  assert.deepEqual(b.running(), []);
});

Deno.test("boot: an agent restart adopts live processes without spawning or stopping them (single node)", () => {
  const m = makeManifest({ apps: APPS });
  const live = [adopted(WEB, 501), adopted(DB, 502), adopted(LOGS, 503)];
  const h = boot("alpha", m, { persisted: persisted("alpha", "active", 3, live), adopted: live });
  const later = h.ticks(0, 70_000, 500);
  assert.deepEqual([...spawns(h.log), ...stops(h.log)], []);
  assert.equal(records(later, "active").length, 0);
  assert.equal(h.state.role, "active");
  assert.equal(h.state.epoch, 3);
  assert.deepEqual(
    Object.values(h.state.apps).map((a) => [a.name, a.pid, a.phase]).sort(),
    [["db", 502, "running"], ["logs", 503, "running"], ["web", 501, "running"]],
  );
});

Deno.test("boot: a resumed active of a two-node cluster keeps its adopted movable apps while it learns the cluster", () => {
  const m = makeManifest({ nodes: TWO, apps: APPS });
  const live = [adopted(WEB, 501), adopted(DB, 502), adopted(LOGS, 503)];
  const a = boot("alpha", m, { persisted: persisted("alpha", "active", 3, live), adopted: live });
  a.ticks(0, 2_000, 500);
  assert.deepEqual([...spawns(a.log), ...stops(a.log)], [], "nothing stopped before beta is heard");
  const b = boot("beta", m, { now: 2_000, persisted: persisted("beta", "standby", 3) });
  exchange(2_100, a, b);
  a.ticks(2_200, 20_000, 500);
  assert.deepEqual([...spawns(a.log), ...stops(a.log)], []);
  assert.equal(a.state.role, "active");
  assert.deepEqual(a.running(), ["db", "logs", "web"]);
});

Deno.test("boot: a process that died while the agent was down counts as a restart (single node)", () => {
  const m = makeManifest({ apps: APPS });
  const live = [adopted(DB, 502), adopted(LOGS, 503)];
  const p = persisted("alpha", "active", 2, [...live, adopted(WEB, 501)]);
  const h = boot("alpha", m, { persisted: p, adopted: live, lost: ["web"], settle: false });
  assert.deepEqual(appNames(spawns(h.log)), ["web"]);
  assert.deepEqual(stops(h.log), []);
  assert.equal(records(h.log, "restart").length, 1);
  assert.equal(h.state.apps.web!.restarts, 1);
  assert.equal(h.state.apps.web!.totalRestarts, 1);
});

Deno.test("boot: a lost process that had already been restarted escalates (single node: backoff)", () => {
  const m = makeManifest({ apps: APPS });
  const live = [adopted(DB, 502), adopted(LOGS, 503)];
  const p = persisted("alpha", "active", 2, [...live, adopted(WEB, 501, 1)]);
  const h = boot("alpha", m, { persisted: p, adopted: live, lost: ["web"], settle: false });
  assert.equal(records(h.log, "escalation").length, 1);
  assert.deepEqual(spawns(h.log), []);
  assert.equal(h.state.apps.web!.phase, "backoff");
});

Deno.test("boot: a resumed active judges a lost movable app only once the peer is heard, then counts it", () => {
  const m = makeManifest({ nodes: TWO, apps: APPS });
  const live = [adopted(DB, 502), adopted(LOGS, 503)];
  const p = persisted("alpha", "active", 2, [...live, adopted(WEB, 501)]);
  const a = boot("alpha", m, { persisted: p, adopted: live, lost: ["web"] });
  assert.equal(a.state.apps.web!.restarts, 0, "not judged before the lease is re-established");
  assert.deepEqual(spawns(a.ticks(0, 1_000, 500)), [], "not started before beta is heard");
  const heard = a.hear({
    node: "beta",
    role: "standby",
    roleSeq: 0,
    hears: [],
    epoch: 2,
    priority: 1,
    maintenance: false,
    manifestHash: m.hash,
  }, 1_500);
  assert.deepEqual(appNames(spawns(heard)), ["web"]);
  assert.equal(a.state.apps.web!.restarts, 1, "same boot: the loss is the app's failure");
});

Deno.test("boot: a resumed active that never hears its peer starts lost movable apps after deadAfter", () => {
  const m = makeManifest({ nodes: TWO, apps: APPS });
  const p = persisted("alpha", "active", 2, [adopted(WEB, 501)]);
  const a = boot("alpha", m, { persisted: p, lost: ["web"] });
  assert.deepEqual(appNames(spawns(a.log)), ["logs"]);
  const early = a.ticks(0, 4_900, 100);
  assert.deepEqual(spawns(early), []);
  assert.deepEqual(appNames(spawns(a.tick(5_000))), ["db", "web"]);
});

Deno.test("boot: an adopted app that is no longer in the manifest is stopped and forgotten", () => {
  const m = makeManifest({ apps: APPS });
  const gone = adopted(appSpec("old"), 599);
  const live = [adopted(WEB, 501), adopted(DB, 502), adopted(LOGS, 503), gone];
  const h = boot("alpha", m, {
    persisted: persisted("alpha", "active", 2, live),
    adopted: live,
    settle: false,
  });
  assert.deepEqual(stops(h.log).map((s) => [s.app, s.pid, s.mode]), [["old", 599, "graceful"]]);
  assert.deepEqual(spawns(h.log), []);
  const exited = h.feed({ type: "app_exited", app: "old", pid: 599, detail: "killed" }, 100);
  assert.deepEqual(spawns(exited), []);
  assert.equal(h.state.apps.old, undefined);
});

Deno.test("boot: an adopted app whose spec hash changed is restarted exactly once", () => {
  const m = makeManifest({ apps: APPS });
  const live = [adopted(WEB, 501, 0, "web-v0"), adopted(DB, 502), adopted(LOGS, 503)];
  const h = boot("alpha", m, {
    persisted: persisted("alpha", "active", 2, live),
    adopted: live,
    settle: false,
  });
  assert.deepEqual(stops(h.log).map((s) => [s.app, s.pid, s.reason]), [[
    "web",
    501,
    "manifest changed",
  ]]);
  const exited = h.exit("web", 100, "killed by SIGTERM");
  assert.deepEqual(appNames(spawns(exited)), ["web"]);
  h.settle(exited, 100);
  h.ticks(200, 10_000, 500);
  assert.equal(spawns(h.log).length, 1);
  assert.equal(stops(h.log).length, 1);
  assert.equal(h.state.apps.web!.specHash, "web-v1");
  assert.equal(h.state.apps.web!.restarts, 0);
});

Deno.test("onManifest: in maintenance a changed app keeps running; the restart waits for maintenance off", () => {
  const h = boot("alpha", makeManifest({ apps: APPS }));
  h.settle(h.tick(0), 0);
  const dbPid = h.pid("db");
  h.command({ type: "maintenance", on: true }, 100);
  const next = makeManifest({ apps: [WEB, appSpec("db", { hash: "db-v2" }), LOGS] });
  const reload = h.feed({ type: "manifest", manifest: next }, 200);
  assert.deepEqual(stops(reload), [], "no restart in maintenance, so no stop either");
  h.ticks(300, 10_000, 500);
  assert.equal(h.pid("db"), dbPid);
  const off = h.command({ type: "maintenance", on: false }, 10_100);
  assert.deepEqual(stops(off).map((s) => [s.app, s.reason]), [["db", "manifest changed"]]);
  assert.deepEqual(appNames(spawns(h.settle(off, 10_200))), ["db"]);
  assert.equal(h.state.apps.db!.specHash, "db-v2");
});
