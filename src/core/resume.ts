/**
 * Rejoining after a reboot or a long agent outage. An agent that starts with "active" in its
 * state does not act on that stale role: until it has re-established its lease it starts,
 * restarts and stops no movable app ({@linkcode resuming}), and it judges the apps that died
 * while it was away only once it knows whether it is still the active:
 *
 * - still active (a baton witness answered and knows no newer active, or every peer answered
 *   and none is at a higher epoch): a lost app after a reboot is simply started again (the
 *   host died, not the app); after an agent restart on the same boot it is a failure, counted;
 * - stepped down (a peer or the witness knows a newer active): the lost apps are history,
 *   started elsewhere at a higher epoch, and count for nothing;
 * - no answer: with a witness configured, the lease is lost at `fenceAfter` and the node steps
 *   down (its adopted movable apps are killed, as self-fencing would); without a witness the
 *   node resumes on its own at `deadAfter`, the guess a standby of such a cluster makes too.
 *
 * Whether the host rebooted is an input fact (`boot.reboot`, from the kernel's boot id).
 *
 * @module
 */
import { onLost } from "./app_policy.ts";
import { human } from "./node_state.ts";
import type { Out } from "./out.ts";
import { stepDown } from "./takeover.ts";
import { hasArbiter } from "./arbiter.ts";
import type { Event, NodeState } from "./types.ts";

/** What a reboot fact says, for messages. */
export function bootKind(reboot: boolean | null | undefined): string {
  return reboot === true
    ? "the host rebooted"
    : reboot === false
    ? "the agent restarted (same boot)"
    : "agent restart or reboot (boot id unknown)";
}

/**
 * Whether this node is a resumed active that has not re-established its lease yet: it must
 * not start, restart or stop any movable app (a stepping down still kills them).
 */
export function resuming(state: NodeState): boolean {
  return state.resume !== null;
}

/** Begin resuming (from `boot`, for a persisted active with peers). */
export function beginResume(
  state: NodeState,
  lost: string[],
  reboot: boolean | null,
  now: number,
  out: Out,
): void {
  const fence = state.manifest.cluster.heartbeat.fenceAfterMs;
  state.resume = { since: now, until: now + fence, lost, reboot, heard: [], witnessOk: false };
  out.record(
    "warn",
    null,
    "resuming",
    `${bootKind(reboot)}; was active at epoch ${state.epoch}: asking the ` +
      `${hasArbiter(state.manifest) ? "arbiter and " : ""}peers before starting, ` +
      `restarting or stopping any movable app` +
      (lost.length > 0 ? ` (gone while away: ${lost.join(", ")})` : ""),
  );
}

/** Note what an event proves about the lease (called before {@linkcode settleResume}). */
export function noteResumeEvidence(state: NodeState, ev: Event): void {
  const r = state.resume;
  if (!r) return;
  if (ev.type === "peer_info" && !r.heard.includes(ev.info.node) && state.peers[ev.info.node]) {
    r.heard.push(ev.info.node);
  }
  if (
    ev.type === "witness" && ev.ok && (ev.kind === "baton" || ev.kind === "etcd") &&
    (ev.sentAt ?? r.since) >= r.since
  ) {
    r.witnessOk = true;
  }
}

/**
 * End the resume when its outcome is known: the node stepped down (history), its lease is
 * confirmed (judge the lost apps), or its time ran out. Called after every event.
 */
export function settleResume(state: NodeState, now: number, out: Out): void {
  const r = state.resume;
  if (!r) return;
  const lostApps = () =>
    r.lost.flatMap((name) => {
      const app = state.apps[name];
      return app && app.pid === null ? [app] : [];
    });
  if (state.role !== "active") {
    state.resume = null;
    for (const app of lostApps()) {
      out.record(
        "info",
        app.name,
        "history",
        `exited while the agent was not running (${bootKind(r.reboot)}); another node took ` +
          `over at a higher epoch: history, not a failure (restarts ${app.restarts})`,
      );
    }
    return;
  }
  const peers = Object.keys(state.peers);
  const allHeard = peers.every((p) => r.heard.includes(p));
  const witness = hasArbiter(state.manifest);
  let how: string | null = null;
  if (r.witnessOk) how = "the witness knows no newer active";
  else if (allHeard) how = `every peer answered (${peers.join(", ")}), none newer`;
  else if (!witness && now >= state.bootUntil) {
    how = `no witness and no answer from ${
      peers.filter((p) => !r.heard.includes(p)).join(", ")
    } within deadAfter: resuming on our own`;
  }
  if (how === null) {
    if (witness && now >= r.until) {
      stepDown(
        state,
        `could not re-establish the lease within fenceAfter (${
          human(state.manifest.cluster.heartbeat.fenceAfterMs)
        }) after ${bootKind(r.reboot)}`,
        now,
        out,
      );
      settleResume(state, now, out);
    }
    return;
  }
  state.resume = null;
  state.bootUntil = now;
  out.record("info", null, "lease_resumed", `still active at epoch ${state.epoch}: ${how}`);
  for (const app of lostApps()) {
    if (r.reboot === true) {
      out.record(
        "info",
        app.name,
        "start_after_reboot",
        "exited with the host (it rebooted): starting it again, not counted as a failure",
      );
    } else {
      onLost(state, app, now, out);
    }
  }
}
