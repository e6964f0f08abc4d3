/**
 * Readiness of a handover: the target answers the commit only once every movable app is
 * ready here (in start order), or as soon as one of them was not ready within its
 * `readyTimeout`, naming it. The sender reports the switchover (or handover) a success only on
 * the first answer; on the second it says which app was not ready.
 *
 * An app's `readyTimeout` counts from when it may start: the takeover, or the moment the last
 * of the apps it depends on became ready, whichever is later. The whole wait is bounded by
 * {@linkcode readyWaitBoundMs}, which the drivers add to the commit's request timeout.
 *
 * @module
 */
import type { Manifest } from "../manifest/types.ts";
import { allowedHere, human } from "./node_state.ts";
import type { Out } from "./out.ts";
import { dependsOf, isReady, readyTimeoutOf, startOrder } from "./start_order.ts";
import type { Event, Handover, NodeState } from "./types.ts";

/**
 * The longest a commit can wait for readiness: every movable app's `readyTimeout` in a row (a
 * chain of dependencies) plus two `deadAfter` for a witness's grant.
 *
 * @example
 * ```ts
 * import type { Manifest } from "../manifest/types.ts";
 * declare const manifest: Manifest;
 * const commitTimeoutMs = 2_000 + readyWaitBoundMs(manifest);
 * ```
 */
export function readyWaitBoundMs(manifest: Manifest): number {
  let sum = 0;
  for (const spec of Object.values(manifest.apps)) if (spec.movable) sum += readyTimeoutOf(spec);
  return sum + 2 * manifest.cluster.heartbeat.deadAfterMs;
}

/**
 * Until when a standby that was handed the apps keeps the commit waiting after a refused
 * claim: two `deadAfter` from the commit (the witness hears the sender's step-down within one
 * beat, and a claim is retried on the next news of it), never past the wait's own bound.
 */
function claimPatienceEnd(state: NodeState, w: { since: number; until: number }): number {
  return Math.min(w.until, w.since + 2 * state.manifest.cluster.heartbeat.deadAfterMs);
}

/**
 * A commit from `from` arrived and this node took over (or claims to): answer it when the
 * movable apps are ready. A commit still waiting is answered first, the way it was before
 * readiness counted (acknowledged).
 */
export function awaitReady(
  state: NodeState,
  id: string,
  from: string,
  now: number,
  out: Out,
): void {
  const old = state.readyWait;
  if (old) {
    out.push({ type: "reply", id: old.id, status: 200, body: acknowledged(state) });
  }
  state.readyWait = { id, from, since: now, until: now + readyWaitBoundMs(state.manifest) };
}

function acknowledged(state: NodeState): Record<string, unknown> {
  return { ok: true, epoch: state.claiming?.epoch ?? state.epoch, claiming: true };
}

/** Movable apps that should run here and are not ready yet, in start order. */
function pendingApps(state: NodeState): string[] {
  return startOrder(state.manifest.apps).filter((name) => {
    const spec = state.manifest.apps[name];
    return spec?.movable && allowedHere(state, spec) && !isReady(state.apps[name]);
  });
}

/** When `name` may start in this wait (null: an app it depends on is not ready). */
function startableAt(state: NodeState, name: string, since: number): number | null {
  const spec = state.manifest.apps[name];
  if (!spec) return null;
  let at = Math.max(since, state.activeSince ?? since);
  for (const dep of dependsOf(spec)) {
    if (!state.manifest.apps[dep]) continue;
    const app = state.apps[dep];
    if (!isReady(app)) return null;
    at = Math.max(at, app?.readyAt ?? at);
  }
  return at;
}

/**
 * The earliest time a tick can end the wait (an app's `readyTimeout` runs out, or the bound),
 * or null when there is none.
 */
export function readyWaitDeadline(state: NodeState): number | null {
  const w = state.readyWait;
  if (!w) return null;
  let next = w.until;
  // Not active yet: a claim in flight waits for the bound; a refused one for the patience.
  if (state.role !== "active") return state.claiming ? next : claimPatienceEnd(state, w);
  for (const name of pendingApps(state)) {
    const from = startableAt(state, name, w.since);
    const spec = state.manifest.apps[name];
    if (from !== null && spec) next = Math.min(next, from + readyTimeoutOf(spec));
  }
  return next;
}

/** After every step: answer the waiting commit once the apps are ready or one is late. */
export function progressReadyWait(state: NodeState, now: number, out: Out): void {
  const w = state.readyWait;
  if (!w) return;
  const reply = (body: Record<string, unknown>) => {
    state.readyWait = null;
    out.push({ type: "reply", id: w.id, status: 200, body });
  };
  if (state.role !== "active") {
    if (state.claiming && now < w.until) return; // the witness has not answered yet
    // A refused claim is retried (the witness may not have heard the sender step down yet:
    // its beat and our claim race): a standby keeps the commit waiting for that, bounded.
    if (state.role === "standby" && now < claimPatienceEnd(state, w)) return;
    // Acknowledged (it takes over when it can), but nothing runs here yet.
    const why = `${state.self} is not active (${state.roleReason}): no app started there yet`;
    out.record("warn", null, "not_ready", `${why}: answering ${w.from}`);
    return reply({ ...acknowledged(state), notReady: why });
  }
  const pending = pendingApps(state);
  if (pending.length === 0) {
    out.record(
      "info",
      null,
      "ready",
      `every movable app is ready after ${human(now - w.since)}: answering ${w.from}`,
    );
    return reply({ ok: true, epoch: state.epoch, ready: true });
  }
  let late: { app: string; why: string } | null = null;
  for (const name of pending) {
    const from = startableAt(state, name, w.since);
    const spec = state.manifest.apps[name];
    if (spec && from !== null && now >= from + readyTimeoutOf(spec)) {
      const why = `app ${name} was not ready within its readyTimeout (${
        human(readyTimeoutOf(spec))
      })`;
      late = { app: name, why };
      break;
    }
  }
  const first = pending[0];
  if (late === null && now >= w.until && first !== undefined) {
    late = { app: first, why: `app ${first} was not ready after ${human(now - w.since)}` };
  }
  if (late === null) return;
  out.record("error", late.app, "not_ready", `${late.why}: answering ${w.from}`);
  reply({ ok: true, epoch: state.epoch, ready: false, notReady: late.why });
}

/**
 * The sending side of a handover that took the apps back while the commit still waited for the
 * target's readiness (the target went silent and this node took over again): the handover is
 * over, and its operator is told so.
 */
export function endStaleCommit(state: NodeState, out: Out): void {
  const h = state.handover;
  if (!h || h.phase !== "committing" || state.role !== "active") return;
  state.handover = null;
  const error = `this node took the apps back before ${h.to} answered the commit`;
  out.record("warn", null, "handover_commit", error);
  if (h.requestId) {
    out.push({ type: "reply", id: h.requestId, status: 409, body: { ok: false, error } });
  }
}

/**
 * The reply to the operator of a switchover whose commit was answered: success only when the
 * target confirmed and said nothing was late; a 504 naming the app that was not ready, or
 * saying the target did not confirm (whether its apps are ready is then unknown).
 */
export function switchoverOutcome(
  state: NodeState,
  h: Handover,
  ev: Extract<Event, { type: "commit_result" }>,
  out: Out,
): void {
  const error = !ev.ok
    ? `${ev.to} did not confirm the takeover (${ev.detail}); it takes over when it sees this ` +
      `node ${state.role}, but whether its apps are ready is unknown`
    : ev.notReady !== undefined
    ? `switchover to ${ev.to} not complete: ${ev.notReady}`
    : null;
  if (ev.notReady !== undefined) out.record("error", null, "not_ready", error ?? ev.notReady);
  if (!h.requestId) return;
  if (error !== null) {
    out.push({
      type: "reply",
      id: h.requestId,
      status: 504,
      body: {
        ok: false,
        to: ev.to,
        confirmed: ev.ok,
        ...(ev.notReady !== undefined ? { notReady: ev.notReady } : {}),
        error,
      },
    });
    return;
  }
  out.push({
    type: "reply",
    id: h.requestId,
    status: 200,
    body: { ok: true, to: ev.to, confirmed: ev.ok, detail: ev.detail },
  });
}
