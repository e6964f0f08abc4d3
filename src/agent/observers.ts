/**
 * What watches the agent without deciding anything: metrics, notifications and the status
 * page. Wired by `baton run` around an {@linkcode Agent}: the agent's records feed the
 * metrics, the notifier and the flapping check; the heartbeat transport and the check loop
 * are timed for the histograms. Nothing here can hold up the agent: every observer is
 * synchronous and cheap, or hands its work to a bounded background queue.
 *
 * @example
 * ```ts
 * import { Agent, type AgentOptions } from "./agent.ts";
 * import type { Manifest } from "../manifest/types.ts";
 * import { PeerClient } from "../peer/client.ts";
 * declare const manifest: Manifest;
 * declare const opts: AgentOptions;
 * const client = new PeerClient({ node: "alpha", secret: "s3cret", timeoutMs: 1_000 });
 * let agent: Agent | null = null;
 * const obs = await createObservers({ manifest, node: "alpha", client, agent: () => agent });
 * agent = new Agent({ ...opts, transport: obs.transport, checks: obs.checks,
 *   onRecord: obs.onRecord });
 * ```
 *
 * @module
 */
import { CheckScheduler } from "../checks/check_scheduler.ts";
import type { Manifest } from "../manifest/types.ts";
import { Metrics } from "../metrics/metrics.ts";
import type { LoadedSink } from "../notify/deliver.ts";
import { FlapDetector, toNotification } from "../notify/event.ts";
import { Notifier, type NotifierOptions } from "../notify/notifier.ts";
import { ClusterView } from "../page/cluster_view.ts";
import { ReadApi } from "../page/read_api.ts";
import { loadSecret } from "../peer/secret.ts";
import type { EventRecord } from "../store/event_log.ts";
import type { Agent } from "./agent.ts";
import type { PeerTransport } from "./peer_link.ts";

/** The client the observers use (a `PeerClient` fits). */
export interface ObservedClient extends PeerTransport {
  get<T>(baseUrl: string, path: string, timeoutMs?: number): Promise<T>;
}

/** Options of {@linkcode createObservers}. */
export interface ObserverOptions {
  manifest: Manifest;
  node: string;
  client: ObservedClient;
  /** The agent, once built (records can only come after). */
  agent: () => Agent | null;
  /** Notifier tuning (tests). */
  notifier?: Partial<NotifierOptions>;
}

/** The wired observers. */
export interface Observers {
  metrics: Metrics;
  notifier: Notifier;
  read: ReadApi;
  /** The peer transport, timing acknowledged heartbeats. */
  transport: PeerTransport;
  /** The check loop, timing each check. */
  checks: CheckScheduler;
  /** Give to the agent as `onRecord`. */
  onRecord: (rec: EventRecord) => void;
  /** Stop streams and notification deliveries. */
  close(): Promise<void>;
}

/**
 * Build the observers. Throws if a notify sink's secret file cannot be loaded: better to
 * refuse to start than to send unsigned notifications to a receiver expecting signed ones.
 */
export async function createObservers(opts: ObserverOptions): Promise<Observers> {
  const { manifest, node, client } = opts;
  const status = () => {
    const a = opts.agent();
    if (!a) throw new Error("agent not started");
    return a.status();
  };
  const metrics = new Metrics(status, { node, cluster: manifest.cluster.name });
  const notifier = new Notifier(await loadSinks(manifest), {
    onFailure: (sink, ev, why) => {
      metrics.notifyFailed(sink);
      opts.agent()?.note("error", ev.app, "notify_failed", `${sink}: ${ev.kind}: ${why}`);
    },
    ...opts.notifier,
  });
  const flaps = new FlapDetector();
  // Sinks follow the manifest: a reload (SIGHUP, `baton reload`) that changes cluster.notify
  // loads the new ones; one whose secret cannot be read keeps the previous sinks, loudly.
  let sinksOf = JSON.stringify(manifest.cluster.notify ?? []);
  let sinkLoads = Promise.resolve();
  const reloadSinks = (m: Manifest) => {
    const want = JSON.stringify(m.cluster.notify ?? []);
    if (want === sinksOf) return;
    sinksOf = want;
    sinkLoads = sinkLoads.then(() => loadSinks(m)).then(
      (sinks) => {
        if (sinksOf !== want) return; // a later reload came first
        notifier.setSinks(sinks);
        opts.agent()?.note(
          "info",
          null,
          "notify_reload",
          `notification sinks: ${notifier.sinks.join(", ") || "none"}`,
        );
      },
      (err) => {
        opts.agent()?.note(
          "error",
          null,
          "notify_failed",
          `new notification sinks not loaded, keeping ${notifier.sinks.join(", ") || "none"}: ${
            err instanceof Error ? err.message : err
          }`,
        );
      },
    );
  };
  const onRecord = (rec: EventRecord) => {
    metrics.onRecord(rec);
    const agent = opts.agent();
    if (rec.kind === "reload" && agent) reloadSinks(agent.state.manifest);
    const n = toNotification(rec, {
      cluster: agent?.state.manifest.cluster.name ?? manifest.cluster.name,
      role: agent?.state.role ?? "unknown",
    });
    if (n) notifier.push(n);
    const flapping = flaps.observe(rec, performance.now());
    if (flapping) agent?.note("warn", rec.app, "flapping", flapping);
  };

  const peerByUrl = (url: string) => {
    const m = opts.agent()?.state.manifest ?? manifest;
    return Object.values(m.nodes).find((n) => n.url === url)?.name ?? url;
  };
  const transport: PeerTransport = {
    post<T>(baseUrl: string, path: string, body: unknown, timeoutMs?: number): Promise<T> {
      const t0 = performance.now();
      const p = client.post<T>(baseUrl, path, body, timeoutMs);
      if (path === "/v1/heartbeat") {
        p.then(
          () => metrics.observeHeartbeat(peerByUrl(baseUrl), performance.now() - t0),
          () => {},
        );
      }
      return p;
    },
  };
  const checks = new CheckScheduler(
    (r) =>
      opts.agent()?.dispatch({ type: "check", app: r.app, pid: r.pid, ok: r.ok, detail: r.detail }),
    { onTimed: (app, ok, ms) => metrics.observeCheck(app, ok, ms) },
  );
  const periodMs = Math.max(manifest.cluster.heartbeat.intervalMs, 100);
  const view = new ClusterView({
    self: status,
    get: (url, path, timeoutMs) => client.get(url, path, timeoutMs),
    periodMs,
  });
  const read = new ReadApi({ view, metrics, periodMs });
  return {
    metrics,
    notifier,
    read,
    transport,
    checks,
    onRecord,
    async close() {
      read.close();
      await notifier.close();
    },
  };
}

/**
 * The manifest's notification sinks with their signing keys. Throws if a sink's secret file
 * cannot be loaded.
 */
export async function loadSinks(manifest: Manifest): Promise<LoadedSink[]> {
  const sinks: LoadedSink[] = [];
  for (const sink of manifest.cluster.notify ?? []) {
    let key: string | null = null;
    if (sink.secretFile !== null) {
      const r = await loadSecret({ env: undefined, file: sink.secretFile });
      if (!r.ok) throw new Error(`cluster.notify ${sink.webhook}: ${r.error}`);
      key = r.secret;
    }
    sinks.push({ sink, key });
  }
  return sinks;
}
