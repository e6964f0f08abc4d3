/**
 * Whether a step persists is decided by `persistedViewMatches` (src/core/out.ts), which checks
 * the state against the last persisted view field by field instead of serializing both. These
 * tests keep it equal to the JSON comparison it replaced, and fail when `toPersisted` gains a
 * key it does not know.
 */
import assert from "node:assert/strict";
import { initNodeState, newApp, toPersisted } from "../src/core/node_state.ts";
import { PERSISTED_APP_KEYS, PERSISTED_KEYS, persistedViewMatches } from "../src/core/out.ts";
import { step } from "../src/core/step.ts";
import type { NodeState, PersistedState, Role } from "../src/core/types.ts";
import { appSpec, makeManifest } from "./helpers/core_fixtures.ts";

/** JSON with sorted keys: the comparison the matcher must agree with. */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const r = v as Record<string, unknown>;
    return `{${
      Object.keys(r).filter((k) => r[k] !== undefined).sort().map((k) =>
        `${JSON.stringify(k)}:${canon(r[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

function running(n: number): NodeState {
  const state = initNodeState(
    "alpha",
    makeManifest({ apps: Array.from({ length: n }, (_, i) => appSpec(`a${i}`)) }),
    "auto",
    0,
  );
  Object.values(state.manifest.apps).forEach((spec, i) => {
    const a = state.apps[spec.name] ??= newApp(spec.name, 1000);
    a.phase = "running";
    a.pid = 100 + i;
    a.startTime = 1000 + i;
    a.specHash = `h${i}`;
  });
  return state;
}

Deno.test("persisted view: the matcher knows every key toPersisted builds", () => {
  const view = toPersisted(running(2));
  assert.deepEqual(Object.keys(view).sort(), [...PERSISTED_KEYS].sort());
  for (const app of Object.values(view.apps)) {
    assert.deepEqual(Object.keys(app).sort(), [...PERSISTED_APP_KEYS].sort());
  }
});

Deno.test("persisted view: the matcher agrees with comparing the JSON, under random changes", () => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const roles: Role[] = ["standby", "active", "failed"];
  for (let round = 0; round < 300; round++) {
    const state = running(1 + rnd(5));
    const view: PersistedState = structuredClone(toPersisted(state));
    assert.equal(persistedViewMatches(state, view), true);
    const apps = Object.values(state.apps);
    const app = apps[rnd(apps.length)]!;
    switch (rnd(12)) {
      case 0:
        state.epoch += rnd(2);
        break;
      case 1:
        state.role = roles[rnd(3)]!;
        break;
      case 2:
        state.roleSeq += rnd(2);
        break;
      case 3:
        state.maintenance = rnd(2) === 1;
        break;
      case 4:
        state.failedReason = rnd(2) ? null : "x";
        break;
      case 5:
        app.pid = rnd(2) ? null : app.pid! + rnd(2);
        break;
      case 6:
        app.startTime = app.startTime! + rnd(2);
        break;
      case 7:
        app.specHash = rnd(2) ? null : `h${rnd(3)}`;
        break;
      case 8:
        app.restarts += rnd(2);
        break;
      case 9:
        delete state.apps[app.name];
        break;
      case 10: {
        const extra = newApp(`new${round}`, 1000);
        if (rnd(2)) Object.assign(extra, { pid: 5, startTime: 6, specHash: "h" });
        state.apps[extra.name] = extra;
        break;
      }
      case 11:
        (view as unknown as Record<string, unknown>)[rnd(2) ? "extra" : "version"] = rnd(2) ? 2 : 1;
        break;
    }
    assert.equal(
      persistedViewMatches(state, view),
      canon(toPersisted(state)) === canon(view),
      `round ${round}`,
    );
  }
});

Deno.test("persisted view: a step saves only when the durable state changed", () => {
  const state = running(3);
  const persists = (r: { actions: { type: string }[] }) =>
    r.actions.filter((a) => a.type === "persist").length;
  const boot = step(state, {
    type: "boot",
    persisted: { ...toPersisted(state), extra: true } as unknown as PersistedState,
    adopted: [],
    lost: [],
  }, 0);
  assert.equal(persists(boot), 1, "a loaded file with an unknown key is rewritten");
  // Let the boot settle (a single node takes the active role, which is a save of its own).
  let now = 0;
  let quiet = false;
  for (let i = 0; i < 40 && !quiet; i++) {
    quiet = persists(step(state, { type: "tick" }, now += 500)) === 0;
  }
  assert.ok(quiet, "ticks of a settled node save nothing");
  state.apps["a1"]!.restarts += 1; // changed outside a step: the next step saves it
  assert.equal(persists(step(state, { type: "tick" }, now += 500)), 1);
  assert.equal(persists(step(state, { type: "tick" }, now += 500)), 0);
});

Deno.test("persisted view: a new view shares the entries of unchanged apps with the previous one, and equals a fresh one", () => {
  const state = running(4);
  const first = toPersisted(state);
  state.apps["a1"]!.pid = 999;
  state.apps["a2"]!.restarts = 3;
  const next = toPersisted(state, first);
  assert.equal(canon(next), canon(toPersisted(state)), "the same view as one built afresh");
  assert.equal(next.apps["a0"], first.apps["a0"], "an unchanged entry is shared");
  assert.equal(next.apps["a3"], first.apps["a3"]);
  assert.notEqual(next.apps["a1"], first.apps["a1"], "a changed pid builds a new entry");
  assert.notEqual(next.apps["a2"], first.apps["a2"], "a changed restart count too");
  assert.equal(first.apps["a1"]!.pid, 101, "the previous view is never mutated");
  // A view not built by toPersisted (a file loaded at boot, maybe with extra keys) is not shared.
  const loaded = structuredClone(first);
  assert.notEqual(toPersisted(state, loaded).apps["a0"], loaded.apps["a0"]);
});
