/**
 * The per-app policy of the core (app_policy.ts through `step`): restart once, escalate on a
 * second failure inside the window, capped backoff when nothing can take over, interface
 * checks, maintenance, reloads during backoff.
 */
import assert from "node:assert/strict";
import {
  appNames,
  appSpec,
  boot,
  type CoreHarness,
  httpCheck,
  makeManifest,
  records,
  RESTART,
  spawns,
  stops,
} from "./helpers/core_fixtures.ts";
import type { AppSpec } from "../src/manifest/types.ts";

const WEB = appSpec("web");
const DB = appSpec("db");
const LOGS = appSpec("logs", { movable: false });
const API = appSpec("api", { check: httpCheck(3) });

/** A single node, active, every app running. */
function single(apps: AppSpec[] = [WEB, DB, LOGS, API]): CoreHarness {
  const h = boot("alpha", makeManifest({ apps }));
  h.settle(h.tick(0), 0);
  assert.equal(h.state.role, "active");
  assert.deepEqual(h.running(), apps.map((a) => a.name).sort());
  return h;
}

/** Tick every 100 ms from `from` until `app` is spawned; start it; return the spawn time. */
function untilSpawn(h: CoreHarness, app: string, from: number, maxMs = 120_000): number {
  for (let t = from; t <= from + maxMs; t += 100) {
    const actions = h.tick(t);
    if (spawns(actions).some((s) => s.app === app)) {
      h.settle(actions, t);
      return t;
    }
  }
  assert.fail(`${app} was not spawned within ${maxMs} ms of ${from}`);
}

/** Pids of every app but `except`. */
function otherPids(h: CoreHarness, except: string): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const a of Object.values(h.state.apps)) if (a.name !== except) out[a.name] = a.pid;
  return out;
}

Deno.test("onExited: a first crash restarts the app on this node at once (restarts 1)", () => {
  const h = single();
  const actions = h.exit("web", 1_000);
  assert.deepEqual(appNames(spawns(actions)), ["web"]);
  assert.deepEqual(stops(actions), []);
  assert.equal(records(actions, "restart").length, 1);
  assert.equal(records(actions, "escalation").length, 0);
  const web = h.state.apps.web!;
  assert.equal(web.restarts, 1);
  assert.equal(web.totalRestarts, 1);
  assert.equal(web.phase, "starting");
});

Deno.test("onExited: a second crash inside the window escalates; a single node backs off and leaves healthy apps alone", () => {
  const h = single();
  h.settle(h.exit("web", 1_000), 1_000);
  const before = otherPids(h, "web");
  const actions = h.exit("web", 2_000);
  assert.equal(records(actions, "escalation").length, 1);
  assert.equal(records(actions, "escalation")[0]!.level, "error");
  assert.equal(records(actions, "no_handover").length, 1, "a single node says loudly why");
  assert.equal(records(actions, "backoff").length, 1);
  assert.deepEqual(spawns(actions), [], "backoff: no immediate restart");
  assert.deepEqual(stops(actions), [], "no healthy app is stopped");
  assert.equal(ofSend(actions), 0, "no peer to prepare");
  const web = h.state.apps.web!;
  assert.equal(web.escalated, true);
  assert.equal(web.phase, "backoff");
  assert.equal(web.backoffUntil, 2_000 + RESTART.backoffMs);
  assert.deepEqual(spawns(h.tick(2_999)), []);
  assert.deepEqual(appNames(spawns(h.tick(3_000))), ["web"]);
  assert.deepEqual(otherPids(h, "web"), before);
  assert.equal(h.state.role, "active", "a single node stays active");
});

function ofSend(actions: ReturnType<CoreHarness["tick"]>): number {
  return actions.filter((a) => a.type === "send_prepare" || a.type === "send_commit").length;
}

Deno.test("onExited: a crash after the window has passed is a plain restart (counter reset)", () => {
  const h = single();
  h.settle(h.exit("web", 1_000), 1_000);
  const late = 1_000 + RESTART.windowMs + 1;
  const actions = h.exit("web", late);
  assert.equal(records(actions, "escalation").length, 0);
  assert.equal(records(actions, "restart").length, 1);
  assert.deepEqual(appNames(spawns(actions)), ["web"]);
  assert.equal(h.state.apps.web!.restarts, 1);
  assert.equal(h.state.apps.web!.totalRestarts, 2);
});

Deno.test("resetHealthyWindows: an app healthy for its window gets its counter and backoff back", () => {
  const h = single();
  h.settle(h.exit("web", 1_000), 1_000);
  h.exit("web", 2_000); // escalated, backoff 1 s
  const started = untilSpawn(h, "web", 2_100);
  assert.equal(h.state.apps.web!.backoffMs, 2 * RESTART.backoffMs);
  assert.deepEqual(records(h.tick(started + RESTART.windowMs - 1), "window_reset"), []);
  const actions = h.tick(started + RESTART.windowMs);
  assert.equal(records(actions, "window_reset").length, 1);
  const web = h.state.apps.web!;
  assert.equal(web.restarts, 0);
  assert.equal(web.escalated, false);
  assert.equal(web.backoffMs, RESTART.backoffMs);
  // The next crash is a first failure again.
  const next = h.exit("web", started + RESTART.windowMs + 10);
  assert.equal(records(next, "restart").length, 1);
  assert.deepEqual(appNames(spawns(next)), ["web"]);
});

Deno.test("fail: flapping app (crash 3 s after every start) backs off up to the cap and never stops another app", () => {
  const h = single();
  const before = otherPids(h, "web");
  h.settle(h.exit("web", 1_000), 1_000);
  let t = 1_000;
  const delays: number[] = [];
  for (let cycle = 0; cycle < 12; cycle++) {
    t += 3_000;
    h.exit("web", t);
    const started = untilSpawn(h, "web", t + 100);
    delays.push(started - t);
    t = started;
  }
  assert.deepEqual(delays, [
    1_000,
    2_000,
    4_000,
    8_000,
    8_000,
    8_000,
    8_000,
    8_000,
    8_000,
    8_000,
    8_000,
    8_000,
  ]);
  assert.deepEqual(stops(h.log), [], "nothing was ever stopped");
  assert.deepEqual(otherPids(h, "web"), before);
  assert.equal(h.state.role, "active");
  assert.equal(h.state.apps.web!.totalRestarts, 13);
});

Deno.test("onCheck: failures below the threshold only record; at the threshold stop (graceful), then restart after the exit", () => {
  const h = single();
  const pid = h.pid("api");
  for (const n of [1, 2]) {
    const actions = h.check("api", false, 1_000 * n);
    assert.deepEqual(stops(actions), []);
    assert.equal(records(actions, "check_failed").length, 1);
    assert.match(records(actions, "check_failed")[0]!.message, new RegExp(`${n} of 3`));
  }
  const third = h.check("api", false, 3_000);
  assert.deepEqual(stops(third).map((s) => [s.app, s.pid, s.mode]), [["api", pid, "graceful"]]);
  assert.deepEqual(spawns(third), [], "no second copy while the first is alive");
  assert.equal(h.state.apps.api!.phase, "stopping");
  const exited = h.exit("api", 3_500, "killed by SIGTERM");
  assert.deepEqual(appNames(spawns(exited)), ["api"]);
  assert.equal(h.state.apps.api!.restarts, 1);
});

Deno.test("onCheck: a passing result resets the consecutive failure count", () => {
  const h = single();
  h.check("api", false, 1_000);
  h.check("api", false, 2_000);
  const ok = h.check("api", true, 3_000);
  assert.equal(records(ok, "check_ok").length, 1);
  h.check("api", false, 4_000);
  const actions = h.check("api", false, 5_000);
  assert.deepEqual(stops(actions), []);
  assert.equal(h.state.apps.api!.consecutiveCheckFailures, 2);
});

Deno.test("onCheck: results for an older pid are ignored", () => {
  const h = single();
  const old = h.pid("api");
  h.settle(h.exit("api", 1_000), 1_000);
  assert.notEqual(h.pid("api"), old);
  for (let i = 0; i < 5; i++) {
    const actions = h.feed(
      { type: "check", app: "api", pid: old, ok: false, detail: "503" },
      2_000,
    );
    assert.deepEqual(actions.filter((a) => a.type !== "persist"), []);
  }
  assert.equal(h.state.apps.api!.consecutiveCheckFailures, 0);
  assert.equal(h.state.apps.api!.lastCheck, null);
});

Deno.test("onCheck: a timeout's detail reaches the records and the failure reason", () => {
  const h = single();
  const detail = "timed out after 500ms";
  h.check("api", false, 1_000, detail);
  h.check("api", false, 2_000, detail);
  const actions = h.check("api", false, 3_000, detail);
  const restart = records(actions, "restart");
  assert.equal(restart.length, 1);
  assert.match(
    restart[0]!.message,
    /http check failed 3 time\(s\) in a row: timed out after 500ms/,
  );
  assert.equal(h.state.apps.api!.lastCheck?.detail, detail);
  assert.match(h.state.apps.api!.lastFailure ?? "", /timed out after 500ms/);
});

Deno.test("onCheck: a process-type app ignores check events", () => {
  const h = single();
  for (let i = 0; i < 5; i++) h.check("web", false, 1_000 + i);
  assert.equal(h.state.apps.web!.phase, "running");
  assert.deepEqual(stops(h.log), []);
});

Deno.test("onCheck: an app that keeps failing its check escalates; alive, it is stopped first and restarted after the backoff", () => {
  const h = single();
  for (const t of [1_000, 2_000, 3_000]) h.check("api", false, t);
  h.settle(h.exit("api", 3_100, "killed by SIGTERM"), 3_100);
  const pid = h.pid("api");
  h.check("api", false, 4_000);
  h.check("api", false, 5_000);
  const actions = h.check("api", false, 6_000);
  assert.equal(records(actions, "escalation").length, 1);
  assert.deepEqual(stops(actions).map((s) => [s.app, s.pid, s.mode]), [["api", pid, "graceful"]]);
  assert.deepEqual(
    spawns(h.exit("api", 6_200, "killed by SIGTERM")),
    [],
    "backoff starts at the exit",
  );
  assert.equal(h.state.apps.api!.backoffUntil, 6_200 + RESTART.backoffMs);
  assert.equal(untilSpawn(h, "api", 6_300), 7_200);
});

Deno.test("onStartFailed: a spawn failure counts as a failure (restart, then escalation with backoff)", () => {
  const h = single();
  const first = h.exit("db", 3_000);
  assert.deepEqual(appNames(spawns(first)), ["db"]);
  const failed = h.feed({ type: "app_start_failed", app: "db", error: "ENOENT" }, 3_010);
  assert.equal(records(failed, "escalation").length, 1);
  assert.match(records(failed, "escalation")[0]!.message, /cannot start: ENOENT/);
  assert.deepEqual(spawns(failed), []);
  assert.equal(h.state.apps.db!.phase, "backoff");
  assert.equal(h.state.apps.db!.backoffUntil, 3_010 + RESTART.backoffMs);
  assert.equal(untilSpawn(h, "db", 3_100), 4_100);
});

Deno.test("onStartFailed: the first spawn failure of a healthy app restarts it at once", () => {
  const h = boot("alpha", makeManifest({ apps: [WEB] }));
  const spawned = h.tick(0);
  assert.deepEqual(appNames(spawns(spawned)), ["web"]);
  const failed = h.feed({ type: "app_start_failed", app: "web", error: "EACCES" }, 10);
  assert.equal(records(failed, "restart").length, 1);
  assert.deepEqual(appNames(spawns(failed)), ["web"]);
  assert.equal(h.state.apps.web!.restarts, 1);
  // A start failure for an app that is not starting is ignored.
  h.settle(failed, 20);
  const stray = h.feed({ type: "app_start_failed", app: "web", error: "late" }, 30);
  assert.deepEqual(stray.filter((a) => a.type !== "persist"), []);
  assert.equal(h.state.apps.web!.phase, "running");
});

Deno.test("onExited: an exit of an older pid is ignored", () => {
  const h = single();
  const old = h.pid("web");
  h.settle(h.exit("web", 1_000), 1_000);
  const actions = h.feed({ type: "app_exited", app: "web", pid: old, detail: "late" }, 1_100);
  assert.deepEqual(actions, []);
  assert.equal(h.state.apps.web!.phase, "running");
  assert.equal(h.state.apps.web!.restarts, 1);
});

Deno.test("maintenance: an exit is not restarted; maintenance off restarts it", () => {
  const h = single();
  h.command({ type: "maintenance", on: true }, 500);
  const actions = h.exit("web", 1_000);
  assert.deepEqual(spawns(actions), []);
  assert.match(records(actions, "failed")[0]?.message ?? "", /maintenance/);
  assert.deepEqual(spawns(h.ticks(1_100, 20_000, 500)), []);
  assert.equal(h.state.apps.web!.phase, "stopped");
  assert.equal(h.state.apps.web!.restarts, 0);
  const off = h.command({ type: "maintenance", on: false }, 21_000);
  assert.deepEqual(appNames(spawns(off)), ["web"]);
  assert.deepEqual(stops(h.log), [], "maintenance stops nothing");
});

Deno.test("maintenance: a failing check does not stop the app", () => {
  const h = single();
  h.command({ type: "maintenance", on: true }, 500);
  for (const t of [1_000, 2_000, 3_000, 4_000]) h.check("api", false, t);
  assert.deepEqual(stops(h.log), []);
  assert.equal(h.state.apps.api!.phase, "running");
});

Deno.test("onManifest: a changed spec of an app in backoff starts at once with the new spec", () => {
  const h = single();
  h.settle(h.exit("web", 1_000), 1_000);
  h.exit("web", 2_000); // escalated: backoff until 3 s
  h.settle(h.tick(3_000), 3_000);
  h.exit("web", 4_000); // backoff 2 s, until 6 s
  assert.equal(h.state.apps.web!.backoffUntil, 6_000);
  const web2 = appSpec("web", { hash: "web-v2" });
  const actions = h.feed(
    { type: "manifest", manifest: makeManifest({ apps: [web2, DB, LOGS, API] }) },
    4_100,
  );
  assert.deepEqual(appNames(spawns(actions)), ["web"], "no waiting for the old backoff");
  assert.deepEqual(stops(actions), []);
  h.settle(actions, 4_100);
  assert.equal(h.state.apps.web!.specHash, "web-v2");
  // The new spec starts with fresh counters: its first crash is a plain restart.
  const crash = h.exit("web", 5_000);
  assert.equal(records(crash, "escalation").length, 0);
  assert.deepEqual(appNames(spawns(crash)), ["web"]);
});

Deno.test("onManifest: an app in backoff that is removed is not restarted", () => {
  const h = single();
  h.settle(h.exit("web", 1_000), 1_000);
  h.exit("web", 2_000);
  const actions = h.feed(
    { type: "manifest", manifest: makeManifest({ apps: [DB, LOGS, API] }) },
    2_100,
  );
  assert.deepEqual(spawns(actions), []);
  assert.deepEqual(stops(actions), []);
  assert.equal(h.state.apps.web, undefined);
  assert.deepEqual(spawns(h.ticks(2_200, 30_000, 500)), []);
});

Deno.test("onManifest: a changed spec of an app stopping after a failed check starts at once after the exit", () => {
  const h = single();
  for (const t of [1_000, 2_000, 3_000]) h.check("api", false, t);
  h.settle(h.exit("api", 3_100, "killed by SIGTERM"), 3_100);
  for (const t of [4_000, 5_000, 6_000]) h.check("api", false, t); // escalated: stop, then backoff
  const api2 = appSpec("api", { check: httpCheck(3), hash: "api-v2" });
  h.feed({ type: "manifest", manifest: makeManifest({ apps: [WEB, DB, LOGS, api2] }) }, 6_100);
  const exited = h.exit("api", 6_200, "killed by SIGTERM");
  assert.deepEqual(appNames(spawns(exited)), ["api"]);
});
