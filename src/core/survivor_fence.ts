/**
 * Fencing by the survivor (STONITH-style): a standby that takes over because the active went
 * silent (dead, hung, or cut off) runs that node's fence command (`nodes.<name>.fence`: a BMC
 * power-off, a PDU, a cloud API, a storage fence) before it starts any movable app.
 *
 * Rules (docs/design.md, "Fencing by the survivor", has the timing argument):
 * - Only the node that won the takeover fences. With a baton witness that is the one the
 *   witness granted the epoch to, so two cut-off nodes never shoot each other. Without an
 *   arbiter, the lower-priority node (by priority, then name, as two actives resolve) waits
 *   `cluster.fenceDelay` first, like Pacemaker's `pcmk_delay_base`: the other one fires first.
 * - A planned handover or an escalation this node was told about fences nobody: the old active
 *   stopped its apps itself and said so.
 * - Movable apps start here only once every fence owed by the takeover is settled: it exited 0
 *   within `cluster.fenceTimeout`; or the operator ran `baton fence-ok NODE`; or, with
 *   `fencing: best-effort`, one attempt was made whatever its outcome.
 * - With `fencing: required` a failed fence is retried every `cluster.fenceRetry` and blocks the
 *   takeover loudly (status, event log) until it succeeds or is confirmed by hand.
 * - Leaving the active role drops every fence job: the takeover it belonged to is over.
 *
 * The core decides; the driver (`src/agent/fence_runner.ts`) runs the command and reports a
 * {@linkcode FenceOutcome} (exit code, duration, a redacted first line: never the command line).
 *
 * @module
 */
import { human, peerAlive, selfPriority } from "./node_state.ts";
import type { Out } from "./out.ts";
import type { FencingSpec, Manifest } from "../manifest/types.ts";
import type { FenceJob, FenceOutcome, NodeState } from "./types.ts";

/** Defaults of the fencing settings. */
export const FENCING_DEFAULTS: Omit<FencingSpec, "mode"> = {
  timeoutMs: 30_000,
  delayMs: 5_000,
  retryMs: 5_000,
};

/** Extra time the core allows a driver beyond `fenceTimeout` before it counts the attempt lost. */
const LOST_RESULT_GRACE_MS = 10_000;

/**
 * The fencing settings in force: `cluster.fencing` as written, else `required` when any node
 * has a fence command and `off` when none has.
 *
 * @example
 * ```ts
 * import type { Manifest } from "../manifest/types.ts";
 * declare const manifest: Manifest;
 * if (fencingPolicy(manifest).mode === "required") console.log("no takeover without a fence");
 * ```
 */
export function fencingPolicy(m: Manifest): FencingSpec {
  if (m.cluster.fencing) return m.cluster.fencing;
  const any = Object.values(m.nodes).some((n) => (n.fence?.length ?? 0) > 0);
  return { mode: any ? "required" : "off", ...FENCING_DEFAULTS };
}

/**
 * A standby is about to take over (`takeOver`) for `reason` at `epoch`: note which silent
 * actives it must fence if it wins. Called only where the takeover is a death or a cut-off
 * (an active silent for `deadAfter`), never for a handover.
 */
export function oweFence(state: NodeState, reason: string, epoch: number, now: number): void {
  state.fencing.owed = null;
  if (fencingPolicy(state.manifest).mode === "off") return;
  const targets = Object.values(state.peers).filter((p) =>
    p.role === "active" && !p.maintenance && !peerAlive(state, p, now)
  ).map((p) => p.name);
  if (targets.length > 0) state.fencing.owed = { targets, reason, epoch };
}

/**
 * This node becomes active at `state.epoch` for `reason` (`becomeActive`): if that takeover is
 * the one {@linkcode oweFence} noted, open a fence job per silent active. Any other takeover
 * (a handover, `--mode active`) fences nobody.
 */
export function beginFences(state: NodeState, reason: string, now: number, out: Out): void {
  const owed = state.fencing.owed;
  state.fencing.owed = null;
  state.fencing.jobs = [];
  if (!owed || owed.epoch !== state.epoch || !reason.startsWith(owed.reason)) return;
  const policy = fencingPolicy(state.manifest);
  for (const node of owed.targets) {
    const command = state.manifest.nodes[node]?.fence;
    if (!command || command.length === 0) {
      if (policy.mode === "required") {
        out.record(
          "error",
          null,
          "fence",
          `fencing is required but ${node} has no fence command: movable apps held until ` +
            `"baton fence-ok ${node}"`,
        );
      } else {
        out.record("warn", null, "fence", `${node} has no fence command: not fenced`);
        continue;
      }
    }
    const wait = arbiter(state) ? 0 : yieldsTo(state, node) ? policy.delayMs : 0;
    state.fencing.jobs.push({
      node,
      epoch: state.epoch,
      phase: "waiting",
      due: now + wait,
      attempts: 0,
      since: now,
      last: null,
      settled: null,
    });
    if (wait > 0) {
      out.record(
        "warn",
        null,
        "fence_wait",
        `no arbiter and ${node} outranks this node: waiting fenceDelay ${human(wait)} before ` +
          `fencing it (its fence of this node, if any, goes first)`,
      );
    }
  }
}

/**
 * Boot as a resumed active that still owed fences (persisted): owe them again, due now. The
 * agent died between the takeover and the fence; the apps have not started.
 */
export function resumeFences(state: NodeState, nodes: string[], now: number, out: Out): void {
  state.fencing.jobs = nodes.filter((n) => state.manifest.nodes[n]).map((node) => ({
    node,
    epoch: state.epoch,
    phase: "waiting" as const,
    due: now,
    attempts: 0,
    since: now,
    last: null,
    settled: null,
  }));
  if (state.fencing.jobs.length > 0) {
    out.record(
      "warn",
      null,
      "fence",
      `resumed as active with the fence of ${nodes.join(", ")} still owed: fencing first`,
    );
  }
}

/** Whether a baton witness arbitrates takeovers (then its grant picks the one who fences). */
function arbiter(state: NodeState): boolean {
  return state.manifest.cluster.witness?.kind === "baton" || state.witness.kind === "baton";
}

/** Whether `node` wins a tie against this node (higher priority, then the lower name). */
function yieldsTo(state: NodeState, node: string): boolean {
  const theirs = state.manifest.nodes[node]?.priority ?? 0;
  const mine = selfPriority(state);
  if (theirs !== mine) return theirs > mine;
  return node < state.self;
}

/** Whether the movable apps wait for a fence here (`desiredHere` asks). */
export function fenceHoldsApps(state: NodeState): boolean {
  return state.fencing.jobs.some((j) => j.settled === null);
}

/**
 * The periodic part: drop jobs once the node is no longer active; start attempts that are due;
 * count an attempt whose result never came as failed.
 */
export function tickFences(state: NodeState, now: number, out: Out): void {
  const f = state.fencing;
  if (state.role !== "active") {
    f.owed = state.role === "standby" ? f.owed : null;
    const open = f.jobs.filter((j) => j.settled === null).map((j) => j.node);
    if (open.length > 0) {
      out.record(
        "warn",
        null,
        "fence",
        `no longer active: the fence of ${open.join(", ")} is no longer owed`,
      );
    }
    f.jobs = [];
    return;
  }
  const policy = fencingPolicy(state.manifest);
  for (const job of f.jobs) {
    if (job.settled !== null) continue;
    if (job.phase === "running") {
      if (now >= job.due) {
        fenceFailed(
          state,
          job,
          {
            ok: false,
            exitCode: null,
            durationMs: policy.timeoutMs + LOST_RESULT_GRACE_MS,
            firstLine: "no result from the fence runner",
          },
          now,
          out,
        );
      }
      continue;
    }
    if (now < job.due) continue;
    job.phase = "running";
    job.attempts++;
    job.due = now + policy.timeoutMs + LOST_RESULT_GRACE_MS;
    if (job.attempts <= 3 || job.attempts % 12 === 0) {
      out.record(
        "warn",
        null,
        "fence",
        `fencing ${job.node} (attempt ${job.attempts}) before any movable app starts here`,
      );
    }
    out.push({
      type: "fence_peer",
      node: job.node,
      attempt: job.attempts,
      timeoutMs: policy.timeoutMs,
    });
  }
}

/** The driver reports one fence attempt. */
export function onFencePeerResult(
  state: NodeState,
  ev: { node: string; attempt: number } & FenceOutcome,
  now: number,
  out: Out,
): void {
  const job = state.fencing.jobs.find((j) => j.node === ev.node);
  if (!job || job.settled !== null || job.phase !== "running" || job.attempts !== ev.attempt) {
    return; // a late result of an attempt already counted, or of a takeover that is over
  }
  const outcome: FenceOutcome = {
    ok: ev.ok,
    exitCode: ev.exitCode,
    durationMs: ev.durationMs,
    firstLine: ev.firstLine,
  };
  if (ev.ok) {
    job.last = outcome;
    job.settled = "fenced";
    out.record(
      "info",
      null,
      "fence",
      `fenced ${job.node}: ${describeOutcome(outcome)}` +
        (fenceHoldsApps(state) ? "" : "; starting the movable apps"),
    );
    return;
  }
  fenceFailed(state, job, outcome, now, out);
}

function fenceFailed(
  state: NodeState,
  job: FenceJob,
  outcome: FenceOutcome,
  now: number,
  out: Out,
): void {
  const policy = fencingPolicy(state.manifest);
  job.last = outcome;
  job.phase = "waiting";
  if (policy.mode === "best-effort") {
    job.settled = "tried";
    out.record(
      "error",
      null,
      "fence",
      `FENCE FAILED: ${job.node} (${describeOutcome(outcome)}); fencing is best-effort: ` +
        "starting the movable apps anyway",
    );
    return;
  }
  job.due = now + policy.retryMs;
  if (job.attempts <= 3 || job.attempts % 12 === 0) {
    out.record(
      "error",
      null,
      "fence",
      `FENCE FAILED: ${job.node} (attempt ${job.attempts}: ${describeOutcome(outcome)}); ` +
        `fencing is required: no movable app starts here; retrying in ${human(policy.retryMs)}` +
        `, or run "baton fence-ok ${job.node}" once ${job.node} is powered off`,
    );
  }
}

/**
 * `baton fence-ok NODE`: the operator confirms the node is off (like `pcs stonith confirm`).
 * Answers 409 when no fence of that node is pending here.
 */
export function onFenceOk(
  state: NodeState,
  id: string,
  node: string,
  out: Out,
): void {
  const job = state.fencing.jobs.find((j) => j.node === node && j.settled === null);
  if (!job) {
    const open = state.fencing.jobs.filter((j) => j.settled === null).map((j) => j.node);
    const error = `no fence of ${node} is pending on ${state.self}` +
      (open.length > 0 ? ` (pending: ${open.join(", ")})` : "");
    out.push({ type: "reply", id, status: 409, body: { ok: false, error } });
    return;
  }
  job.settled = "confirmed";
  job.phase = "waiting";
  out.record(
    "warn",
    null,
    "fence_confirmed",
    `the operator confirmed ${node} is powered off ("baton fence-ok"); ` +
      (fenceHoldsApps(state) ? "other fences still pending" : "starting the movable apps"),
  );
  out.push({ type: "reply", id, status: 200, body: { ok: true, node, confirmed: true } });
}

/** Exit code, duration and the redacted first line, for records and status. */
export function describeOutcome(o: FenceOutcome): string {
  const how = o.exitCode === null ? "no exit" : `exit ${o.exitCode}`;
  return `${how} after ${human(o.durationMs)}${o.firstLine ? `: ${o.firstLine}` : ""}`;
}

/** The earliest time a fence job needs a tick (`nextDeadline`). */
export function fenceDeadline(state: NodeState): number | null {
  let next: number | null = null;
  for (const j of state.fencing.jobs) {
    if (j.settled === null && (next === null || j.due < next)) next = j.due;
  }
  return next;
}

/** Status lines for operators: one warning per fence that holds the apps. */
export function fenceWarnings(state: NodeState, now: number): string[] {
  return state.fencing.jobs.filter((j) => j.settled === null).map((j) =>
    `FENCING ${j.node}: movable apps held for ${human(now - j.since)} (` +
    (j.last === null
      ? (j.phase === "running" ? "attempt running" : `first attempt in ${human(j.due - now)}`)
      : `attempt ${j.attempts} failed: ${describeOutcome(j.last)}`) +
    `); "baton fence-ok ${j.node}" once it is powered off`
  );
}
