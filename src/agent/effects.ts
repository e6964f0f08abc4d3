/**
 * The effects of the core's actions: what carrying out one action does to the world (spawn or
 * stop a process, send a peer message, run a fence command, answer a request, watch a check,
 * add a floating IP). The agent (agent.ts) decides when an action runs (after the saves it
 * waits for); this module only performs it.
 *
 * @module
 */
import type { CheckScheduler } from "../checks/check_scheduler.ts";
import { assertNever } from "../core/assert.ts";
import { toPersisted } from "../core/node_state.ts";
import { describeOutcome } from "../core/survivor_fence.ts";
import { vipKey } from "../core/vip.ts";
import type {
  Action,
  Event,
  FenceOutcome,
  NodeState,
  PersistedState,
  RecordKind,
} from "../core/types.ts";
import type { Reply } from "../peer/api_types.ts";
import type { AgentOptions } from "./agent_options.ts";
import { fenceArgv, fencePeer, runFenceCommand } from "./fence_runner.ts";
import type { PeerLink } from "./peer_link.ts";
import { spawnExtras } from "../supervisor/spawn_extras.ts";

/** What carrying out an action touches: the agent's state, its ports and its own callbacks. */
export interface EffectContext {
  /** The node's state (read only here: the core changes it). */
  readonly state: NodeState;
  /** The agent's options: runner, fence, fencePeer, vip, coordinator, stateDir... */
  readonly opts: AgentOptions;
  /** Messages to the peers and the witness. */
  readonly link: PeerLink;
  /** The check loops of the running apps. */
  readonly checks: CheckScheduler;
  /** Requests waiting for their reply, by id. */
  readonly pending: Map<string, (r: Reply) => void>;
  /** Feed an event to the core (results of effects). */
  dispatch(event: Event): void;
  /** Write an event record. */
  record(
    level: "info" | "warn" | "error",
    app: string | null,
    kind: RecordKind,
    message: string,
  ): void;
  /** Queue a save of the state (executor.ts: barriers). */
  persist(state: PersistedState): void;
  /** Why a movable app decided at `epoch` must not start now (null: it may). */
  staleSpawn(epoch: number): string | null;
}

/**
 * Carry out one action. `failedPersist` is why the durable state this action runs under is not
 * on disk (null: it is): a spawn, a survivor fence and a positive reply are refused then.
 * Returns a promise when later actions must wait for this one (a floating-IP add).
 */
export function performAction(
  fx: EffectContext,
  action: Action,
  failedPersist: string | null,
): Promise<void> | void {
  const m = fx.state.manifest;
  switch (action.type) {
    case "spawn": {
      if (failedPersist) {
        // Never start an app under a role or epoch that is not on disk. Write it again: a
        // failed write is otherwise retried only when the durable state changes once more,
        // so a disk that recovered would leave the node refusing every start for good.
        fx.persist(toPersisted(fx.state));
        fx.dispatch({ type: "app_start_failed", app: action.app, error: failedPersist });
        return;
      }
      const spec = action.spec;
      // Timers first: a spawn decided before a pause (SIGSTOP, a starved loop) must not run
      // once the lease has run out; the tick fences the core first, and the spawn is stale.
      if (spec.movable) fx.dispatch({ type: "tick" });
      const stale = spec.movable ? fx.staleSpawn(action.epoch) : null;
      if (stale !== null) {
        // Decided under a role this node has left while the state write was pending.
        fx.dispatch({ type: "app_start_failed", app: action.app, error: stale });
        return;
      }
      fx.opts.runner.spawn({
        app: spec.name,
        command: spec.command,
        cwd: spec.cwd,
        ...(spec.runAs ? { runAs: spec.runAs } : {}),
        ...(spec.inheritEnv ? { inheritEnv: spec.inheritEnv } : {}),
        env: {
          ...spec.env,
          BATON_NODE: fx.state.self,
          BATON_APP: spec.name,
          BATON_EPOCH: String(action.epoch),
          BATON_CLUSTER: m.cluster.name,
        },
        logDir: `${fx.opts.stateDir}/logs`,
        ...spawnExtras(spec),
      }).then(
        (s) =>
          fx.dispatch({
            type: "app_started",
            app: spec.name,
            pid: s.pid,
            startTime: s.startTime,
            specHash: spec.hash,
          }),
        (err) => fx.dispatch({ type: "app_start_failed", app: spec.name, error: errText(err) }),
      );
      return;
    }
    case "vip": {
      if (action.op === "remove") return; // carried out in executor.ts's execute, not queued
      // An add (removals do not wait in the queue: see executor.ts). One the core withdrew
      // while it waited for its save (the node stepped down) is dropped.
      const held = new Set((fx.state.vipHeld ?? []).map(vipKey));
      const vips = action.vips.filter((v) => held.has(vipKey(v)));
      if (!fx.opts.vip || vips.length === 0) return;
      return fx.opts.vip.apply({ ...action, vips }, failedPersist);
    }
    case "stop": {
      const known = fx.state.apps[action.app];
      fx.opts.runner.stop(action.app, action.pid, {
        signal: action.signal,
        timeoutMs: action.timeoutMs,
        mode: action.mode,
        ...(known?.pid === action.pid && known.startTime !== null
          ? { startTime: known.startTime }
          : {}),
      }).catch((err) =>
        fx.record(
          "error",
          action.app,
          "stop_failed",
          `stop of pid ${action.pid}: ${errText(err)}`,
        )
      );
      return;
    }
    case "heartbeat":
      fx.link.heartbeat(action.info);
      return;
    case "check_witness":
      if (fx.opts.coordinator) fx.opts.coordinator.check(action.info);
      else fx.link.witness(action.info);
      return;
    case "claim_witness":
      if (fx.opts.coordinator) fx.opts.coordinator.claim(action.info);
      else fx.link.claim(action.info);
      return;
    case "send_prepare":
      fx.link.prepare(action.to, action.epoch, action.reason);
      return;
    case "send_commit":
      fx.link.commit(action.to, action.epoch, action.reason);
      return;
    case "fence": {
      // Self-fencing: {node} and {url} are this node's own.
      const self = fx.state.manifest.nodes[fx.state.self];
      const argv = self ? fenceArgv({ ...self, fence: action.command }) : action.command;
      (fx.opts.fence ?? ((c) => runFence(c, fx.opts.stateDir)))(argv).then((r) =>
        fx.dispatch({ type: "fence_result", ...r })
      );
      return;
    }
    case "fence_peer": {
      const { node, attempt, timeoutMs } = action;
      const report = (o: FenceOutcome) =>
        fx.dispatch({ type: "fence_peer_result", node, attempt, ...o });
      if (failedPersist) {
        // Never fence on behalf of a takeover that is not on disk.
        report({ ok: false, exitCode: null, durationMs: 0, firstLine: failedPersist });
        return;
      }
      const run = fx.opts.fencePeer ??
        ((r) =>
          fencePeer(
            fx.state.manifest.nodes[r.node],
            r.timeoutMs,
            fx.opts.stateDir,
            r.attempt,
          ));
      run({ node, attempt, timeoutMs }).then(report, (err) =>
        report({
          ok: false,
          exitCode: null,
          durationMs: 0,
          firstLine: `fence runner failed: ${err instanceof Error ? err.name : "error"}`,
        }));
      return;
    }
    case "reply": {
      const resolve = fx.pending.get(action.id);
      fx.pending.delete(action.id);
      if (failedPersist && action.status < 300) {
        resolve?.({ status: 503, body: { ok: false, error: failedPersist } });
      } else {
        resolve?.({ status: action.status, body: action.body });
      }
      return;
    }
    case "watch_check":
      fx.checks.watch({ app: action.app, pid: action.pid, spec: action.check });
      return;
    case "unwatch_check":
      fx.checks.unwatch(action.app);
      return;
    case "record":
    case "persist":
      return;
    default:
      assertNever(action);
  }
}

/** Run the self-fencing command (`cluster.fence`), bounded to 60 s; output to a 0600 file. */
async function runFence(
  command: string[],
  stateDir: string,
): Promise<{ ok: boolean; detail: string }> {
  const o = await runFenceCommand(command, {
    timeoutMs: 60_000,
    logFile: `${stateDir}/fence/self.log`,
    secrets: [],
    label: "self-fence",
  });
  return { ok: o.ok, detail: describeOutcome(o) };
}

/** The message of an error, or the thrown value as text. */
export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
