/**
 * The agent's side of its supervisors: systemd (`Type=notify`: READY, WATCHDOG, STATUS,
 * STOPPING) and the optional Linux watchdog device. Wires {@linkcode Notifier} and
 * {@linkcode HealthPetter} to a running agent.
 *
 * @module
 */
import type { Event, NodeState } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import { Notifier, type NotifyEnv } from "./notify.ts";
import { HealthPetter, openWatchdogDevice, petPeriod, type WatchdogDevice } from "./watchdog.ts";

/** What the service manager needs of the agent (an `Agent` fits). */
export interface SupervisedAgent {
  readonly state: NodeState;
  cycle(): boolean;
  dispatch(event: Event): void;
}

/** Longest wait for apps being started before READY=1 is sent anyway. */
export const READY_WAIT_MS = 30_000;
/** Longest period between two pets of the device (and STATUS updates). */
const DEVICE_PET_MS = 1_000;

/**
 * Open the watchdog device the manifest names, before the agent starts (the core learns the
 * result in its boot event). Returns the device or null, and what to tell the core.
 *
 * @example
 * ```ts
 * import type { Manifest } from "../manifest/types.ts";
 * declare const manifest: Manifest;
 * const wd = await openManifestWatchdog(manifest, console.error);
 * // wd.fact: true (open), false (configured but unavailable), null (not configured)
 * ```
 */
export async function openManifestWatchdog(
  manifest: Manifest,
  log: (line: string) => void,
): Promise<{ device: WatchdogDevice | null; fact: boolean | null; detail: string }> {
  const w = manifest.cluster.watchdog;
  if (!w || w.mode === "off") return { device: null, fact: null, detail: "off" };
  try {
    const device = await openWatchdogDevice(w.device);
    log(`baton: watchdog device ${w.device} open (${w.mode}): petted while healthy`);
    return { device, fact: true, detail: `${w.device} open` };
  } catch (err) {
    const why = `cannot open ${w.device}: ${err instanceof Error ? err.message : err}`;
    log(
      `baton: watchdog ${w.mode}: ${why}` +
        (w.mode === "required" ? "; this node will not take the active role" : ""),
    );
    return { device: null, fact: false, detail: why };
  }
}

/** One line for `STATUS=`: role, epoch and apps running. */
export function statusLine(state: NodeState): string {
  const apps = Object.values(state.apps);
  const running = apps.filter((a) => a.phase === "running").length;
  return `${state.role} at epoch ${state.epoch}, ${running}/${apps.length} apps running` +
    (state.maintenance ? ", maintenance" : "");
}

/** Options of {@linkcode superviseAgent}. */
export interface SuperviseOptions {
  env: NotifyEnv;
  device: WatchdogDevice | null;
  log: (line: string) => void;
  /** Largest event-loop lag at which the agent still counts as healthy (ms). */
  maxLagMs: number;
}

/** The running supervision; `stop` at shutdown. */
export interface Supervision {
  /** Resolves once READY=1 was sent (or attempted) and petting began. */
  readonly ready: Promise<void>;
  /** The pet loop (null with nothing to pet). */
  readonly petter: HealthPetter | null;
  /** STOPPING=1, stop petting; `clean` disarms the device (magic close). */
  stop(clean: boolean): Promise<void>;
}

/**
 * After `agent.start()`, in the background: wait until no app is still starting (bounded),
 * send READY=1 with a STATUS line, then pet systemd's watchdog (if WATCHDOG_USEC enables it)
 * and the device after each healthy cycle.
 */
export function superviseAgent(agent: SupervisedAgent, opts: SuperviseOptions): Supervision {
  const notifier = new Notifier(opts.env.socket, opts.log);
  const wdMs = opts.env.watchdogMs;
  let stopped = false;
  // Petting starts at once (a device armed at open must not wait for READY).
  const petter = wdMs === null && opts.device === null && !notifier.enabled
    ? null
    : new HealthPetter({
      periodMs: wdMs !== null ? petPeriod(wdMs, DEVICE_PET_MS) : DEVICE_PET_MS,
      maxLagMs: opts.maxLagMs,
      cycle: () => agent.cycle(),
      notify: notifier.enabled
        ? async () => {
          if (wdMs !== null) await notifier.send(["WATCHDOG=1"]);
          await notifier.status(statusLine(agent.state));
        }
        : null,
      device: opts.device,
      log: opts.log,
      onDevice: (ok, detail) => agent.dispatch({ type: "watchdog", ok, detail }),
    });
  petter?.start();
  const ready = (async () => {
    const until = performance.now() + READY_WAIT_MS;
    while (
      !stopped && notifier.enabled && performance.now() < until &&
      Object.values(agent.state.apps).some((a) => a.phase === "starting")
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (stopped) return;
    await notifier.send(["READY=1", `STATUS=${statusLine(agent.state)}`, `MAINPID=${Deno.pid}`]);
  })();
  return {
    ready,
    petter,
    async stop(clean: boolean) {
      stopped = true;
      await ready;
      await notifier.send(["STOPPING=1", "STATUS=stopping; apps keep running"]);
      await petter?.stop(clean);
      notifier.close();
    },
  };
}
