/**
 * `explain` (src/explain/explain.ts) on status documents built by the real core: a pair of
 * cores driven by the harness, their status from `buildStatus`, their decision log stamped
 * with the harness's times. Checks the sentences an operator reads after a restart, an
 * escalation, on a standby, with no standby available and in maintenance.
 */
import assert from "node:assert/strict";
import { buildStatus } from "../src/agent/status.ts";
import type { EventRecord } from "../src/store/event_log.ts";
import type { Action } from "../src/core/types.ts";
import { explain, type ExplainInput, formatExplanation } from "../src/explain/explain.ts";
import {
  appSpec,
  boot,
  type CoreHarness,
  httpCheck,
  makeManifest,
  runCluster,
} from "./helpers/core_fixtures.ts";

/** Wall time of core time 0: 2026-01-01 10:00:00 UTC. */
const T0 = Date.UTC(2026, 0, 1, 10, 0, 0);
const APPS = [
  appSpec("web", { check: httpCheck(3) }),
  appSpec("api"),
  appSpec("logs", { movable: false }),
];

/** The harness's records since `from` (an index in its log), stamped at core time `now`. */
class Stamper {
  readonly events: EventRecord[] = [];
  #seen = new Map<CoreHarness, number>();

  /** Stamp what `h` recorded since the last call with time `now`. */
  stamp(h: CoreHarness, now: number): void {
    const from = this.#seen.get(h) ?? 0;
    for (const a of h.log.slice(from)) {
      if (a.type !== "record") continue;
      this.events.push({
        time: new Date(T0 + now).toISOString(),
        node: h.state.self,
        level: a.level,
        app: a.app,
        kind: a.kind,
        message: a.message,
        epoch: h.state.epoch,
      });
    }
    this.#seen.set(h, h.log.length);
  }
}

function setup() {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  const st = new Stamper();
  runCluster([a, b], 0, 8_000);
  st.stamp(a, 8_000);
  st.stamp(b, 8_000);
  return { m, a, b, st };
}

function input(h: CoreHarness, st: Stamper, now: number): ExplainInput {
  const status = buildStatus(h.state, now, []);
  return {
    status,
    events: st.events.filter((e) => e.node === h.state.self),
    manifest: h.state.manifest,
    now: T0 + now,
  };
}

/** Fail web's http check 3 times from `t` (100 ms apart); it is restarted. */
function failWebChecks(a: CoreHarness, st: Stamper, t: number): void {
  for (let i = 0; i < 3; i++) {
    a.settle(a.check("web", false, t + i * 100, "HTTP 503"), t + i * 100);
    st.stamp(a, t + i * 100);
  }
}

Deno.test("explain: before any failure, the next failure restarts web and the one after moves the movable apps", () => {
  const { a, st } = setup();
  const e = explain(input(a, st, 9_000), "web");
  assert.match(e.role, /^alpha is active at epoch 1 since 10:00:0\d: /);
  assert.deepEqual(e.apps.map((x) => x.app), ["web"]);
  const web = e.apps[0]!;
  assert.match(web.state, /^running as pid \d+ for/);
  assert.equal(web.history, "");
  assert.match(web.next, /http check failing 3 time\(s\) in a row \(every 1s, timeout 500ms\)/);
  assert.match(web.next, /The next one restarts web here \(restart 1 of 1 in 1m\)/);
  assert.match(web.next, /within 1m moves web, api to beta/);
});

Deno.test("explain web after a restart names the failure and the next step with its deadline", () => {
  const { a, st } = setup();
  failWebChecks(a, st, 9_000);
  const e = explain(input(a, st, 12_000), "web");
  const web = e.apps[0]!;
  assert.match(
    web.history,
    /^web was restarted once at 10:00:09 after its http check failed 3 time\(s\) in a row: HTTP 503\.$/,
  );
  // Restarted at 9.2 s, window 1 m: another failure before 10:01:09 escalates.
  assert.match(
    web.next,
    /Another failure before 10:01:09 moves web, api to beta, and alpha becomes failed; after that the counter is back to 0/,
  );
  const text = formatExplanation(e);
  assert.match(text, /^alpha is active/);
  assert.match(text, /\nweb: running as pid/);
  assert.match(text, /Next failure: A failure is/);
});

Deno.test("explain: with the standby unreachable, an escalation restarts with backoff and says why", () => {
  const { a, st } = setup();
  failWebChecks(a, st, 9_000);
  // Nothing heard from beta for longer than deadAfter (5 s).
  a.ticks(9_500, 16_000, 500);
  st.stamp(a, 16_000);
  const e = explain(input(a, st, 16_000), "web");
  assert.match(
    e.apps[0]!.next,
    /restarts it here with backoff \(1s, doubling up to 8s\), since no standby can take over \(beta is unreachable\)/,
  );
  assert.ok(e.cluster.some((c) => /Peer beta is unreachable/.test(c)), e.cluster.join("\n"));
});

Deno.test("explain: a non-movable app's escalation still moves the movable apps, it stays", () => {
  const { a, st } = setup();
  const e = explain(input(a, st, 9_000), "logs");
  assert.match(e.apps[0]!.next, /moves web, api to beta \(logs is not movable: it stays/);
});

Deno.test("explain on the standby: the movable apps run on the active; who takes over", () => {
  const { b, st } = setup();
  const e = explain(input(b, st, 9_000));
  assert.match(e.role, /^beta is standby at epoch 1: .*The active node is alpha \(epoch 1\)/);
  assert.match(e.role, /this node takes over web, api\./);
  const web = e.apps.find((x) => x.app === "web")!;
  assert.match(
    web.state,
    /stopped here: it is movable and beta is standby; it runs on the active node alpha/,
  );
  assert.match(web.next, /it does not run here/);
  const logs = e.apps.find((x) => x.app === "logs")!;
  assert.match(logs.next, /restarts it here with backoff .*a standby moves nothing/);
});

Deno.test("explain after an escalation: the failed node says why and what clears it; maintenance stops everything", () => {
  const { a, b, st } = setup();
  failWebChecks(a, st, 9_000);
  // The restarted app fails again: escalation, carried to beta like the takeover tests do.
  let pending = [] as Action[];
  for (let i = 0; i < 3; i++) {
    const acts = a.check("web", false, 10_000 + i * 100, "HTTP 503");
    pending.push(...acts, ...a.settle(acts, 10_000 + i * 100));
  }
  for (let guard = 0; guard < 10 && pending.length > 0; guard++) {
    const next: Action[] = [];
    for (const act of pending) {
      if (act.type !== "send_prepare" && act.type !== "send_commit") continue;
      const id = `${act.type}-${guard}`;
      const ev = { id, from: "alpha", epoch: act.epoch, reason: act.reason };
      const got = b.feed({
        ...ev,
        type: act.type === "send_prepare" ? "takeover_prepare" : "takeover_commit",
      }, 10_500);
      b.settle(got, 10_500);
      const reply = got.find((x) => x.type === "reply" && x.id === id);
      const ok = reply?.type === "reply" && reply.status === 200;
      const back = a.feed({
        type: act.type === "send_prepare" ? "prepare_result" : "commit_result",
        to: "beta",
        ok,
        detail: "test",
      }, 10_500);
      next.push(...back, ...a.settle(back, 10_500));
    }
    pending = next;
  }
  st.stamp(a, 10_500);
  assert.equal(a.state.role, "failed");
  const e = explain(input(a, st, 11_000));
  assert.match(e.role, /^alpha is failed at epoch 1 since 10:00:10: web: .*until "baton clear"/);
  assert.match(e.apps.find((x) => x.app === "web")!.state, /stopped here: it is movable/);
  assert.match(e.apps.find((x) => x.app === "web")!.history, /escalated, the host is suspect/);
  a.command({ type: "maintenance", on: true }, 11_100);
  const m = explain(input(a, st, 11_200), "logs");
  assert.ok(m.cluster.some((c) => /Maintenance is on/.test(c)));
  assert.equal(m.apps[0]!.next, "nothing is restarted or moved (maintenance mode).");
});

Deno.test("explain: a local manifest that differs from the agent's is named, and no deadline is guessed", () => {
  const { a, st } = setup();
  failWebChecks(a, st, 9_000);
  const other = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: APPS, hash: "other-hash" });
  const e = explain({ ...input(a, st, 12_000), manifest: other }, "web");
  assert.ok(e.cluster.some((c) => /is not the one alpha runs/.test(c)), e.cluster.join("\n"));
  assert.doesNotMatch(e.apps[0]!.next, /before 10:/);
});
