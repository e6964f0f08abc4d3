/**
 * `baton run`: wire the real drivers (processes, checks, HTTP peers, state directory) to an
 * {@linkcode Agent}, serve its API on the node's URL, and handle SIGHUP/SIGTERM.
 *
 * @module
 */
import { Agent } from "./agent.ts";
import { checkReboot } from "./boot_id.ts";
import { takeNotifyEnv } from "./notify.ts";
import { openManifestWatchdog, superviseAgent } from "./service_manager.ts";
import { checkLockHeld, FatalAgentError, installCrashGuard } from "./crash_guard.ts";
import { formatDiagnostic, loadManifestFile } from "../manifest/load.ts";
import type { Manifest } from "../manifest/types.ts";
import type { StartMode } from "../core/types.ts";
import { PeerClient } from "../peer/client.ts";
import { RequestVerifier } from "../peer/auth.ts";
import { createPeerApi } from "../peer/peer_api.ts";
import { serveHttpGuarded, trustedAddresses } from "../peer/conn_guard.ts";
import { RealProcessRunner } from "../supervisor/real_runner.ts";
import { SpawnLedger } from "../supervisor/spawn_token.ts";
import { checkSecretFile } from "../peer/secret.ts";
import { LogWriter } from "../logs/log_writer.ts";
import { READ_PATHS } from "../page/read_api.ts";
import { createObservers } from "./observers.ts";
import { openNodeCgroups } from "../supervisor/cgroup.ts";
import { GuardLeaseDriver, realGuardHost } from "../guard/lease_driver.ts";
import { realVipHost } from "../vip/ip_addr.ts";
import { VipDriver } from "../vip/vip_driver.ts";
import { etcdCallTimeoutMs, EtcdCoordinator } from "../coord/etcd_coordinator.ts";
import { connectEtcd } from "../coord/etcd_port.ts";

/** Options of `baton run`, resolved by the CLI. */
export interface RunOptions {
  manifest: Manifest;
  manifestPath: string;
  node: string;
  stateDir: string;
  mode: StartMode;
  secret: string;
  /** The file the secret was read from (checked again on reload), or null (environment). */
  secretFile?: string | null;
  /** Warnings about the secret, shown in status while the agent runs (BATON_SECRET). */
  secretWarnings?: string[];
  /** `--http HOST:PORT`: serve the page and /metrics there instead of on the node's URL. */
  http?: string;
}

/** Run the agent until SIGTERM/SIGINT. Apps keep running after the agent exits. */
export async function runAgent(opts: RunOptions): Promise<number> {
  const { manifest, node } = opts;
  const self = manifest.nodes[node];
  if (!self) throw new Error(`node ${node} not in manifest`);
  const tls = manifest.cluster.tls;
  const url = new URL(self.url);
  if (url.protocol === "https:" && !tls) {
    throw new Error(
      `node ${node}: url ${self.url} is https: expected cluster.tls { cert, key } to serve it, ` +
        "found no cluster.tls",
    );
  }
  // Read before anything starts: a missing certificate must not leave apps started by an agent
  // that cannot serve its API.
  const serveTls = tls && url.protocol === "https:"
    ? { cert: await Deno.readTextFile(tls.cert), key: await Deno.readTextFile(tls.key) }
    : {};
  const caCert = tls?.ca ? await Deno.readTextFile(tls.ca) : null;
  // Taken before any app starts: the apps must not inherit systemd's notify socket.
  const notifyEnv = takeNotifyEnv();
  const watchdog = await openManifestWatchdog(manifest, (line) => console.error(line));
  const client = new PeerClient({
    node,
    secret: opts.secret,
    timeoutMs: Math.max(manifest.cluster.heartbeat.intervalMs, 100),
    caCert,
  });
  // One cgroup v2 per app where the hierarchy is writable, else process groups. The token of
  // every spawn is recorded in the state directory first: adoption proves a process by it.
  const runner = new RealProcessRunner({
    cgroups: openNodeCgroups(manifest.cluster.name, node),
    spawnLedger: new SpawnLedger(`${opts.stateDir}/spawns`),
    names: { cluster: manifest.cluster.name, node },
    logWriter: LogWriter.available()
      ? new LogWriter(`${opts.stateDir}/logwriter`, `${opts.stateDir}/logs`)
      : null,
  });
  // etcd as the coordinator (issue 14): it arbitrates takeovers instead of a witness.
  const etcd = manifest.cluster.coordinator?.etcd;
  const interval = manifest.cluster.heartbeat.intervalMs;
  const coordinator = etcd
    ? new EtcdCoordinator(
      node,
      manifest.cluster.name,
      etcd,
      interval,
      await connectEtcd(etcd, etcdCallTimeoutMs(etcd, interval)),
    )
    : null;
  let agent: Agent | null = null;
  const obs = await createObservers({ manifest, node, client, agent: () => agent });
  agent = new Agent({
    node,
    manifest,
    mode: opts.mode,
    stateDir: opts.stateDir,
    runner,
    // The movable apps die when the lease runs out, even if this agent is dead or paused.
    lease: new GuardLeaseDriver(runner.cgroups, realGuardHost(`${opts.stateDir}/guard`)),
    // Floating IPs (cluster.vip): `ip addr` and gratuitous ARP / unsolicited NA.
    vip: new VipDriver(realVipHost()),
    transport: obs.transport,
    checks: obs.checks,
    onRecord: obs.onRecord,
    checkReboot: () => checkReboot(opts.stateDir),
    ...(coordinator ? { coordinator } : {}),
    watchdogFact: watchdog.fact,
    warnings: () => opts.secretWarnings ?? [],
    loadManifest: async () => {
      const r = await loadManifestFile(opts.manifestPath);
      if (!r.ok) return { ok: false, errors: r.errors.map(formatDiagnostic) };
      // A secret file someone made readable since the start refuses the reload.
      const unsafe = await secretFileProblems(opts.secretFile ?? null, r.manifest, manifest);
      return unsafe.length > 0
        ? { ok: false, errors: unsafe }
        : { ok: true, manifest: r.manifest, warnings: r.warnings.map(formatDiagnostic) };
    },
  });
  await agent.start();

  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  // Only requests signed for this node's own URL: one captured on its way to a peer cannot be
  // replayed here.
  const verifier = new RequestVerifier(opts.secret, { hosts: [url.host] });
  const api = createPeerApi(agent, verifier);
  const readPaths = new Set(opts.http ? [] : READ_PATHS);
  // The public port is guarded (connection caps, header and idle deadlines) in front of the
  // API on a unix socket in the state directory: see conn_guard.ts.
  const server = await serveHttpGuarded({
    hostname,
    port,
    tls: serveTls.cert !== undefined && serveTls.key !== undefined
      ? { cert: serveTls.cert, key: serveTls.key }
      : null,
    socketPath: `${opts.stateDir}/api.sock`,
    trusted: trustedAddresses([
      ...Object.values(manifest.nodes).filter((n) => n.name !== node).map((n) => n.url),
      ...(manifest.cluster.witness ? [manifest.cluster.witness.url] : []),
    ]),
  }, (req) => (readPaths.has(new URL(req.url).pathname) ? obs.read.app : api).fetch(req));
  const httpServer = opts.http ? serveRead(opts.http, obs.read.app.fetch) : null;
  console.error(
    `baton: node ${node} listening on ${self.url}, state in ${opts.stateDir}, mode ${opts.mode}`,
  );
  const supervision = superviseAgent(agent, {
    env: notifyEnv,
    device: watchdog.device,
    log: (line) => console.error(line),
    maxLagMs: Math.max(manifest.cluster.heartbeat.fenceAfterMs, 100),
  });

  const done = Promise.withResolvers<number>();
  const stop = (sig: string, code = 0) => {
    console.error(`baton: ${sig}: agent stopping; apps keep running and are adopted on restart`);
    done.resolve(code);
  };
  // Nothing uncaught stops the agent, except a lost state directory lock.
  const uninstallGuard = installCrashGuard({
    log: (line) => console.error(line),
    onFatal: (err) => stop(err.message, 1),
  });
  const lockTimer = setInterval(() => {
    checkLockHeld(opts.stateDir).catch((err) => {
      if (err instanceof FatalAgentError) stop(err.message, 1);
    });
  }, LOCK_CHECK_MS);
  const onHup = () => {
    agent.reload().then((r) => {
      if (!r.ok) console.error(`baton: reload refused:\n${r.errors.join("\n")}`);
    }).catch((err) => console.error(`baton: reload failed: ${err}`));
  };
  Deno.addSignalListener("SIGHUP", onHup);
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  const code = await done.promise;
  Deno.removeSignalListener("SIGHUP", onHup);
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGINT", onInt);
  clearInterval(lockTimer);
  // A clean stop disarms the device; a fatal one (code 1) leaves it to reset a host whose
  // agent does not come back.
  await supervision.stop(code === 0);
  await agent.shutdown();
  await obs.close();
  await server.shutdown();
  await httpServer?.shutdown();
  client.close();
  uninstallGuard();
  return code;
}

/**
 * What is wrong with the secret file in use (`file`) and, when the secret came from the
 * manifest's file, with the new manifest's (the one the next start reads).
 */
async function secretFileProblems(
  file: string | null,
  next: Manifest,
  first: Manifest,
): Promise<string[]> {
  if (file === null) return [];
  const files = new Set([file]);
  if (file === first.cluster.secretFile && next.cluster.secretFile !== null) {
    files.add(next.cluster.secretFile);
  }
  const problems: string[] = [];
  for (const f of files) {
    const bad = await checkSecretFile(f);
    if (bad !== null) problems.push(`${next.path}: ${bad}`);
  }
  return problems;
}

/** Serve the read-only routes on `HOST:PORT` (`baton run --http`). */
function serveRead(addr: string, fetch: (req: Request) => Response | Promise<Response>) {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new Error(`--http: expected HOST:PORT such as 127.0.0.1:7480, found "${addr}"`);
  const server = Deno.serve({
    hostname: m[1]!.replace(/^\[|\]$/g, ""),
    port: Number(m[2]),
    onListen: () => {},
  }, fetch);
  console.error(`baton: status page and /metrics on http://${addr}/`);
  return server;
}

/** How often the agent checks that it still holds the state directory lock. */
const LOCK_CHECK_MS = 2_000;
